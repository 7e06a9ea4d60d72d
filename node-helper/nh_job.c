/*
 * nh_job.c - the job runner (see nh_job.h and docs/node-helper.md).
 */
#include "nh_run.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "art.h"
#include "fsutil.h"
#include "kc.h"
#include "log.h"
#include "nh_metrics.h"
#include "nh_status.h"
#include "pst.h"
#include "nh_util.h"

#define NH_STATUS_DEADLINE_MS 30000
#define NH_STATUS_ATTEMPTS 8
#define NH_API_TIMEOUT_MS 10000L
#define NH_EVENT_SOURCE "checkpointing.dev/node-helper"

/* ---------------------------------------------------------------- helpers */

const char *nh_writer_reason(int rc, bool encrypt)
{
	switch (-rc) {
	case ENOSPC:
	case EDQUOT:
	case EIO:
	case EROFS:
	case EACCES:
	case EPERM:
	case ENOENT:
	case ENAMETOOLONG:
	case EFBIG:
	case EMFILE:
	case ENFILE:
	case EEXIST:
	case ENOTDIR:
		return "StorageFailed";
	default:
		return encrypt ? "EncryptionFailed" : "StorageFailed";
	}
}

int nh_artifact_path(const char *artifact_dir, const struct nh_jobspec *job, char *buf, size_t cap)
{
	int n;

	if (!nh_safe_segment(job->ns) || !nh_safe_segment(job->name) || !nh_safe_segment(job->uid))
		return -EINVAL;
	n = snprintf(buf, cap, "%s/%s/%s-%s.tar%s", artifact_dir, job->ns, job->name, job->uid,
		     job->encrypt ? ".cms" : "");
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return 0;
}

static struct ch_job *nh_job_dup(const struct ch_job *job)
{
	struct ch_job *c = malloc(sizeof(*c));

	if (!c)
		return NULL;
	memcpy(c, job, sizeof(*c));
	c->cert_pem = NULL;
	if (job->cert_pem) {
		c->cert_pem = strdup(job->cert_pem);
		if (!c->cert_pem) {
			free(c);
			return NULL;
		}
	}
	return c;
}

static void nh_job_free(struct ch_job *job)
{
	if (!job)
		return;
	free(job->cert_pem);
	free(job);
}

/* ---------------------------------------------------------------- worker */

static void nh_run_item(struct nh_runner *rn, struct kc_client *kc, struct nh_item *it)
{
	struct nh_run run;
	struct ch_state st;
	int rc;

	nh_metrics_job_begin();
	memset(&run, 0, sizeof(run));
	run.rn = rn;
	run.kc = kc;
	run.job = it->job;
	run.r = malloc(sizeof(*run.r));
	if (!run.r) {
		LOG_ERROR("msg=\"out of memory\" uid=%s", it->uid);
		goto out;
	}
	rc = nh_journal_get(rn->journal, it->uid, run.r);
	if (rc) {
		LOG_ERROR("msg=\"journal record unreadable\" uid=%s rc=%d", it->uid, rc);
		goto out;
	}
	if (run.r->state == NH_J_ACCEPTED && it->job)
		nh_run_checkpoint(&run);
	else if (nh_resume_decide(run.r) == NH_RESUME_CONTINUE)
		nh_finish(&run);
	else if (run.r->state == NH_J_FAILED) {
		/* recovered Interrupted: write its status (guarded) */
		char reason[64], msg[512];
		nh_strlcpy(reason, run.r->reason, sizeof(reason));
		nh_strlcpy(msg, run.r->message, sizeof(msg));
		nh_fail(&run, reason, "%s", msg);
	}
	if (run.r->state == NH_J_DONE || run.r->state == NH_J_FAILED) {
		nh_record_to_ch_state(run.r, &st);
		nh_metrics_job_result(run.r->state == NH_J_DONE, run.r->reason, run.r->artifact.size_bytes);
		LOG_INFO("msg=\"job finished\" pcp=%s/%s uid=%s state=%s reason=%s", run.r->job.ns,
			 run.r->job.name, run.r->job.uid, ch_state_name(st.state), run.r->reason);
	}
out:
	nh_metrics_job_end();
	art_writer_abort(run.w);
	art_cert_free(run.cert);
	json_object_put(run.cr);
	json_object_put(run.pod);
	free(run.r);
}

static void *nh_worker(void *arg)
{
	struct nh_runner *rn = arg;
	struct kc_client *kc = NULL;
	int rc;

	rc = kc_client_new(rn->cfg, &kc);
	if (rc) {
		LOG_ERROR("msg=\"worker cannot create an API client\" rc=%d", rc);
		return NULL;
	}
	kc_client_set_timeout(kc, NH_API_TIMEOUT_MS);
	kc_client_set_user_agent(kc, "podcheckpoint-node-helper");
	for (;;) {
		struct nh_item it;
		struct timespec until;

		pthread_mutex_lock(&rn->lock);
		while (!rn->stop && rn->len == 0) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&rn->cond, &rn->lock, &until);
		}
		if (rn->stop) {
			pthread_mutex_unlock(&rn->lock);
			break;
		}
		it = rn->queue[rn->head];
		rn->head = (rn->head + 1) % NH_QUEUE_MAX;
		rn->len--;
		nh_metrics_queue(rn->len);
		nh_strlcpy(rn->current, it.uid, sizeof(rn->current));
		rn->cancelled = 0;
		rn->abort = rn->stop;
		pthread_mutex_unlock(&rn->lock);

		nh_run_item(rn, kc, &it);

		pthread_mutex_lock(&rn->lock);
		rn->current[0] = '\0';
		rn->cancelled = 0;
		rn->abort = rn->stop;
		pthread_mutex_unlock(&rn->lock);
		nh_journal_set_queued(rn->journal, it.uid, false);
		nh_job_free(it.job);
		nh_journal_prune(rn->journal, rn->opt.journal_keep_seconds);
	}
	kc_client_free(kc);
	return NULL;
}

/* Caller holds the lock. */
static int nh_push(struct nh_runner *rn, const char *uid, struct ch_job *job)
{
	struct nh_item *it;

	if (rn->len == NH_QUEUE_MAX)
		return -EBUSY;
	it = &rn->queue[(rn->head + rn->len) % NH_QUEUE_MAX];
	nh_strlcpy(it->uid, uid, sizeof(it->uid));
	it->job = job;
	rn->len++;
	nh_metrics_queue(rn->len);
	pthread_cond_signal(&rn->cond);
	return 0;
}

int nh_runner_submit(struct nh_runner *rn, const struct ch_job *job)
{
	struct nh_record *r = NULL;
	struct ch_job *copy = NULL;
	int rc;

	r = calloc(1, sizeof(*r));
	copy = nh_job_dup(job);
	if (!r || !copy) {
		rc = -ENOMEM;
		goto out;
	}
	/* Identity only: the rest is read from the CR when the job starts. */
	r->job.op = CH_OP_CHECKPOINT;
	nh_strlcpy(r->job.uid, job->uid, sizeof(r->job.uid));
	nh_strlcpy(r->job.ns, job->ns, sizeof(r->job.ns));
	nh_strlcpy(r->job.name, job->name, sizeof(r->job.name));
	r->state = NH_J_ACCEPTED;
	nh_time_now(r->accepted_time);
	snprintf(r->message, sizeof(r->message), "Queued on the node helper on %s",
		 rn->opt.node_name);
	pthread_mutex_lock(&rn->lock);
	if (rn->len == NH_QUEUE_MAX) {
		rc = -EBUSY;
	} else {
		rc = nh_journal_save(rn->journal, r);
		if (rc == 0) {
			nh_journal_set_queued(rn->journal, r->job.uid, true);
			rc = nh_push(rn, r->job.uid, copy);
			if (rc == 0)
				copy = NULL;
		}
	}
	pthread_mutex_unlock(&rn->lock);
	if (rc == 0)
		LOG_INFO("msg=\"job queued\" pcp=%s/%s uid=%s step=accepted", job->ns, job->name,
			 job->uid);
out:
	nh_job_free(copy);
	free(r);
	return rc;
}

int nh_runner_cancel(struct nh_runner *rn, const char *uid)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&rn->lock);
	if (strcmp(rn->current, uid) == 0) {
		rn->cancelled = 1;
		rn->abort = 1; /* the kubelet call in flight ends now */
		rc = 0;
	} else {
		for (size_t i = 0; i < rn->len; i++) {
			struct nh_item *it = &rn->queue[(rn->head + i) % NH_QUEUE_MAX];

			/* Queued: it reads its (terminal) CR first and does nothing. */
			if (strcmp(it->uid, uid) == 0)
				rc = 0;
		}
	}
	pthread_mutex_unlock(&rn->lock);
	return rc;
}

int nh_runner_resume(struct nh_runner *rn, const char *uid)
{
	int rc;

	pthread_mutex_lock(&rn->lock);
	if (nh_journal_is_queued(rn->journal, uid)) {
		rc = -EALREADY;
	} else {
		rc = nh_push(rn, uid, NULL);
		if (rc == 0)
			nh_journal_set_queued(rn->journal, uid, true);
	}
	pthread_mutex_unlock(&rn->lock);
	return rc;
}

/* A record found at start that stopped before durable. */
static void nh_recover_interrupted(struct nh_runner *rn, struct nh_record *r)
{
	char final_path[4096];
	unsigned stale = 0;

	nh_remove_archives(r);
	/* A kubelet call in flight at the crash still writes its archive. */
	if (r->kubelet_started > 0 && r->container[0])
		nh_sweep_add(rn->sweep, r->job.uid, r->job.ns, r->job.pod, r->container,
			     r->kubelet_started - 1, r->kubelet_started + 10);
	if (nh_artifact_path(rn->opt.artifact_dir, &r->job, final_path, sizeof(final_path)) == 0) {
		/* A bundle cut off mid-write left its temporary file ... */
		if (art_writer_discard_stale(final_path, &stale) == 0 && stale)
			LOG_INFO("msg=\"removed a partial artifact\" pcp=%s/%s uid=%s files=%u",
				 r->job.ns, r->job.name, r->job.uid, stale);
		/* ... and a crash between the rename and "durable" a complete
		 * artifact nobody points at. */
		if (r->state == NH_J_BUNDLING && unlink(final_path) == 0) {
			fsu_fsync_parent(final_path);
			LOG_WARN("msg=\"removed an artifact that was never recorded\" pcp=%s/%s uid=%s path=%s",
				 r->job.ns, r->job.name, r->job.uid, final_path);
		}
	}
	nh_strlcpy(r->reason, "Interrupted", sizeof(r->reason));
	snprintf(r->message, sizeof(r->message),
		 "the node helper on %s restarted during the checkpoint (at step %s); no second checkpoint is taken for the same request: delete and re-create the PodCheckpoint",
		 rn->opt.node_name, nh_jstate_name(r->state));
	nh_time_now(r->completion_time);
	r->state = NH_J_FAILED;
	r->container[0] = '\0';
	r->kubelet_started = 0;
	nh_journal_save(rn->journal, r);
	LOG_WARN("msg=\"job interrupted by a restart\" pcp=%s/%s uid=%s reason=Interrupted",
		 r->job.ns, r->job.name, r->job.uid);
	/* Write its Failed status from the worker (guarded). */
	if (nh_runner_resume(rn, r->job.uid) != 0)
		LOG_WARN("msg=\"queue full; status of interrupted job not written\" pcp=%s/%s uid=%s",
			 r->job.ns, r->job.name, r->job.uid);
}

int nh_runner_recover(struct nh_runner *rn)
{
	char(*uids)[64] = NULL;
	struct nh_record *r = NULL;
	size_t n = 0;
	int rc;

	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	rc = nh_journal_uids(rn->journal, &uids, &n);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (nh_journal_get(rn->journal, uids[i], r) != 0)
			continue;
		if (r->state == NH_J_ACCEPTED && !r->job.pod[0]) {
			/* Queued, never started: nothing happened. Forget it; the
			 * controller re-sends the job (with its certificate). */
			nh_journal_remove(rn->journal, r->job.uid);
			LOG_INFO("msg=\"queued job forgotten at restart; the controller re-sends it\" pcp=%s/%s uid=%s",
				 r->job.ns, r->job.name, r->job.uid);
			continue;
		}
		switch (nh_resume_decide(r)) {
		case NH_RESUME_INTERRUPTED:
			nh_recover_interrupted(rn, r);
			break;
		case NH_RESUME_CONTINUE:
			LOG_INFO("msg=\"job resumes\" pcp=%s/%s uid=%s step=%s", r->job.ns, r->job.name,
				 r->job.uid, nh_jstate_name(r->state));
			if (nh_runner_resume(rn, r->job.uid) != 0)
				LOG_WARN("msg=\"queue full; job resumes when the controller asks again\" pcp=%s/%s uid=%s",
					 r->job.ns, r->job.name, r->job.uid);
			break;
		case NH_RESUME_NOTHING:
			break;
		}
	}
	nh_journal_prune(rn->journal, rn->opt.journal_keep_seconds);
out:
	free(uids);
	free(r);
	return rc;
}

int nh_runner_new(const struct nh_runner_opts *opts, struct nh_runner **out, char *err,
		  size_t errlen)
{
	struct nh_runner *rn = NULL;
	struct nh_kubelet_opts kopts;
	int rc;

	*out = NULL;
	rn = calloc(1, sizeof(*rn));
	if (!rn)
		return -ENOMEM;
	pthread_mutex_init(&rn->lock, NULL);
	pthread_cond_init(&rn->cond, NULL);
	rn->opt = *opts->opt;
	rn->cfg = opts->cfg;
	rn->journal = opts->journal;
	rn->notify = opts->notify;
	rn->notify_arg = opts->notify_arg;
	rn->sweep = opts->sweep;
	memset(&kopts, 0, sizeof(kopts));
	kopts.url = rn->opt.kubelet_url;
	kopts.node_name = rn->opt.node_name;
	kopts.address = rn->opt.kubelet_address;
	kopts.ca_file = rn->opt.kubelet_ca;
	kopts.insecure_skip_verify = rn->opt.kubelet_insecure_skip_verify;
	kopts.margin_seconds = rn->opt.kubelet_timeout_margin_seconds;
	kopts.host_root = rn->opt.host_root;
	kopts.token = opts->kubelet_token;
	kopts.token_arg = opts->kubelet_token_arg;
	kopts.kubelet_root = rn->opt.kubelet_root_dir;
	kopts.stop = &rn->abort;
	rc = nh_kubelet_new(&kopts, &rn->kubelet, err, errlen);
	if (rc)
		goto out;
	*out = rn;
	rn = NULL;
out:
	nh_runner_free(rn);
	return rc;
}

int nh_runner_start(struct nh_runner *rn)
{
	int rc = -pthread_create(&rn->thread, NULL, nh_worker, rn);

	if (rc == 0)
		rn->started = true;
	return rc;
}

void nh_runner_free(struct nh_runner *rn)
{
	if (!rn)
		return;
	pthread_mutex_lock(&rn->lock);
	rn->stop = 1;
	rn->abort = 1;
	pthread_cond_broadcast(&rn->cond);
	pthread_mutex_unlock(&rn->lock);
	if (rn->started)
		pthread_join(rn->thread, NULL);
	for (size_t i = 0; i < rn->len; i++)
		nh_job_free(rn->queue[(rn->head + i) % NH_QUEUE_MAX].job);
	nh_kubelet_free(rn->kubelet);
	pthread_cond_destroy(&rn->cond);
	pthread_mutex_destroy(&rn->lock);
	free(rn);
}

