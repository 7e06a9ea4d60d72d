/*
 * nh_server.c - channel callbacks: validate, look up, journal + enqueue.
 */
#include "nh_server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "nh_util.h"

static int nh_refuse(struct ch_state *now, const char *uid, const char *reason, const char *msg)
{
	memset(now, 0, sizeof(*now));
	nh_strlcpy(now->uid, uid, sizeof(now->uid));
	now->state = CH_REFUSED;
	nh_strlcpy(now->reason, reason, sizeof(now->reason));
	nh_strlcpy(now->message, msg, sizeof(now->message));
	return -EINVAL;
}

int nh_job_validate(const struct nh_options *opt, const struct ch_job *job, struct ch_state *now)
{
	char msg[512];

	if (!nh_safe_segment(job->uid) || !nh_safe_segment(job->ns) || !nh_safe_segment(job->name))
		return nh_refuse(now, job->uid, "InvalidJob",
				 "the job's uid, namespace or name is not a valid Kubernetes name");
	if (strcmp(job->node, opt->node_name) != 0) {
		snprintf(msg, sizeof(msg), "this node helper serves node %.200s, not node %.200s",
			 opt->node_name, job->node);
		return nh_refuse(now, job->uid, "WrongNode", msg);
	}
	if (job->op == CH_OP_DELETE_ARTIFACT)
		return 0;
	if (!job->pod[0])
		return nh_refuse(now, job->uid, "InvalidJob", "the job names no pod");
	if (job->encrypt && (!job->cert_pem || !job->cert_pem[0]))
		return nh_refuse(now, job->uid, "InvalidCertificate",
				 "encryption was requested but the job carries no certificate");
	if (job->timeout_seconds < 0 || job->timeout_seconds > 3600)
		return nh_refuse(now, job->uid, "InvalidJob", "timeoutSeconds must be 1..3600");
	if (job->ncontainers > CH_MAX_CONTAINERS)
		return nh_refuse(now, job->uid, "InvalidJob", "too many containers");
	return 0;
}

int nh_server_on_job(void *arg, const struct ch_job *job, struct ch_state *now)
{
	struct nh_server_ctx *ctx = arg;
	enum nh_jstate js;
	int rc;

	rc = nh_job_validate(ctx->opt, job, now);
	if (rc) {
		LOG_WARN("msg=\"job refused\" pcp=%s/%s uid=%s reason=%s message=\"%s\"", job->ns,
			 job->name, job->uid, now->reason, now->message);
		return rc;
	}
	if (job->op == CH_OP_DELETE_ARTIFACT)
		return nh_delete_artifact(ctx->opt->artifact_dir, ctx->journal, job, now) == 0 ? 0
											       : -EINVAL;
	if (nh_journal_state(ctx->journal, job->uid, now, &js) == 0) {
		/* Known job: answer its state. A job that stopped short of done
		 * (API server unreachable, queue full at start) is resumed. */
		if ((js >= NH_J_DURABLE && js <= NH_J_POD_DELETED) &&
		    !nh_journal_is_queued(ctx->journal, job->uid)) {
			rc = nh_runner_resume(ctx->runner, job->uid);
			LOG_INFO("msg=\"job resumed on request\" pcp=%s/%s uid=%s step=%s rc=%d",
				 job->ns, job->name, job->uid, nh_jstate_name(js), rc);
		}
		return 0;
	}
	rc = nh_runner_submit(ctx->runner, job);
	if (rc == -EBUSY) {
		char msg[512];
		snprintf(msg, sizeof(msg),
			 "the node helper on %.200s has %d jobs queued; the controller should retry",
			 ctx->opt->node_name, NH_QUEUE_MAX);
		nh_refuse(now, job->uid, "Busy", msg);
		LOG_WARN("msg=\"job refused\" pcp=%s/%s uid=%s reason=Busy", job->ns, job->name,
			 job->uid);
		return -EBUSY;
	}
	if (rc) {
		char msg[512];
		snprintf(msg, sizeof(msg), "the node helper cannot journal the job: %s", strerror(-rc));
		nh_refuse(now, job->uid, "StorageFailed", msg);
		return rc;
	}
	if (nh_journal_state(ctx->journal, job->uid, now, NULL) != 0) {
		memset(now, 0, sizeof(*now));
		nh_strlcpy(now->uid, job->uid, sizeof(now->uid));
		now->state = CH_ACCEPTED;
	}
	return 0;
}

int nh_server_precheck(void *arg, const char *token)
{
	struct nh_server_ctx *ctx = arg;
	return nh_auth_precheck(ctx->auth, token);
}

int nh_server_authenticate(void *arg, const char *token)
{
	struct nh_server_ctx *ctx = arg;
	return nh_auth_check(ctx->auth, token);
}

void nh_server_notify(void *arg, const struct ch_state *st)
{
	struct nh_server_ctx *ctx = arg;
	if (ctx && ctx->srv)
		ch_server_notify(ctx->srv, st);
}
