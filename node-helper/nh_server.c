/*
 * nh_server.c - channel callbacks: validate, look up, journal + enqueue.
 */
#include "nh_server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kc.h"
#include "log.h"
#include "nh_jwt.h"
#include "nh_util.h"

/* Fills `now` with a state of its own (message set by the caller). */
static void nh_answer(struct ch_state *now, const char *uid, enum ch_state_kind k,
		      const char *reason)
{
	memset(now, 0, sizeof(*now));
	nh_strlcpy(now->uid, uid, sizeof(now->uid));
	now->state = k;
	nh_strlcpy(now->reason, reason, sizeof(now->reason));
}

static int nh_refuse(struct ch_state *now, const char *uid, const char *reason, const char *msg)
{
	nh_answer(now, uid, CH_REFUSED, reason);
	nh_strlcpy(now->message, msg, sizeof(now->message));
	return -EINVAL;
}

int nh_job_validate(const struct nh_options *opt, const struct ch_job *job, struct ch_state *now)
{
	(void)opt;
	if (!nh_safe_segment(job->uid) || !nh_safe_segment(job->ns) || !nh_safe_segment(job->name))
		return nh_refuse(now, job->uid, "InvalidJob",
				 "the job's uid, namespace or name is not a valid Kubernetes name");
	return 0;
}

/* GET the CR for delete-artifact: 0 with *cr (NULL when gone) or -errno. */
static int nh_read_cr(struct nh_server_ctx *ctx, const struct ch_job *job, json_object **cr)
{
	struct kc_status st;
	char path[1024];
	int rc;

	*cr = NULL;
	if (!ctx->api)
		return -ENOTCONN;
	rc = kc_path(path, sizeof(path), &KC_RES_PODCHECKPOINTS, job->ns, job->name, NULL, NULL);
	if (rc)
		return rc;
	kc_status_clear(&st);
	rc = kc_get(ctx->api, path, cr, &st);
	if (rc == -ENOENT) {
		*cr = NULL;
		return 0;
	}
	return rc;
}

static int nh_on_delete_artifact(struct nh_server_ctx *ctx, const struct ch_job *job,
				 struct ch_state *now)
{
	json_object *cr = NULL;
	int rc = nh_read_cr(ctx, job, &cr);

	if (rc) {
		nh_answer(now, job->uid, CH_FAILED, "ApiServerUnavailable");
		snprintf(now->message, sizeof(now->message),
			 "the node helper cannot read PodCheckpoint %.60s/%.200s to check it is being deleted: %s",
			 job->ns, job->name, strerror(-rc));
		return 0;
	}
	rc = nh_runner_delete_artifact(ctx->runner, ctx->opt->artifact_dir, ctx->journal, job, cr, now);
	json_object_put(cr);
	return rc == 0 ? 0 : -EINVAL;
}

static int nh_on_cancel(struct nh_server_ctx *ctx, const struct ch_job *job, struct ch_state *now)
{
	int rc = ctx->runner ? nh_runner_cancel(ctx->runner, job->uid) : -ENOENT;

	LOG_INFO("msg=\"cancel\" pcp=%s/%s uid=%s found=%s", job->ns, job->name, job->uid,
		 rc == 0 ? "true" : "false");
	if (nh_journal_state(ctx->journal, job->uid, now, NULL) != 0) {
		nh_answer(now, job->uid, CH_FAILED, "Cancelled");
		nh_strlcpy(now->message, "no such job on this node", sizeof(now->message));
	}
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
		return nh_on_delete_artifact(ctx, job, now);
	if (job->op == CH_OP_CANCEL)
		return nh_on_cancel(ctx, job, now);
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
		/* Not an error: nothing is journaled, the controller asks again. */
		nh_answer(now, job->uid, CH_BUSY, "Busy");
		snprintf(now->message, sizeof(now->message),
			 "the node helper on %.200s has %ld jobs running and %ld queued; the controller asks again later",
			 ctx->opt->node_name, ctx->opt->max_parallel_jobs, ctx->opt->max_queued_jobs);
		LOG_INFO("msg=\"job not queued: queue full\" pcp=%s/%s uid=%s reason=Busy", job->ns,
			 job->name, job->uid);
		return 0;
	}
	if (rc) {
		char msg[512];
		snprintf(msg, sizeof(msg), "the node helper cannot journal the job: %s", strerror(-rc));
		nh_refuse(now, job->uid, "StorageFailed", msg);
		return rc;
	}
	if (nh_journal_state(ctx->journal, job->uid, now, NULL) != 0)
		nh_answer(now, job->uid, CH_QUEUED, "");
	return 0;
}

int nh_server_precheck(void *arg, const char *token)
{
	struct nh_server_ctx *ctx = arg;
	return nh_auth_precheck(ctx->auth, token);
}

int64_t nh_server_token_expiry(void *arg, const char *token)
{
	struct nh_jwt_claims cl;
	char why[128];

	(void)arg;
	if (nh_jwt_peek(token, CH_AUDIENCE, &cl, why, sizeof(why)) != 0)
		return 0;
	return cl.exp > 0 ? cl.exp : 0;
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
