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

/* ---------------------------------------------------------------- queue */

/* Caller holds the lock. Slots with no job. */
static size_t nh_idle_locked(const struct nh_runner *rn)
{
	size_t n = 0;

	for (size_t i = 0; i < rn->nslots; i++)
		if (!rn->slots[i].uid[0])
			n++;
	return n;
}

/* Caller holds the lock. Whether a slot other than `self` holds pod. */
static bool nh_pod_held_locked(const struct nh_runner *rn, const char *pod,
			       const struct nh_slot *self)
{
	for (size_t i = 0; i < rn->nslots; i++)
		if (&rn->slots[i] != self && rn->slots[i].pod[0] && strcmp(rn->slots[i].pod, pod) == 0)
			return true;
	return false;
}

/* Caller holds the lock. Room for one more waiting job (see nh_run.h). */
static bool nh_room_locked(const struct nh_runner *rn)
{
	return rn->len < rn->qmax + nh_idle_locked(rn) && rn->len < rn->cap;
}

/* Caller holds the lock. The first item whose pod no slot holds, or -1. */
static long nh_pick_locked(const struct nh_runner *rn)
{
	for (size_t i = 0; i < rn->len; i++)
		if (!rn->queue[i].pod[0] || !nh_pod_held_locked(rn, rn->queue[i].pod, NULL))
			return (long)i;
	return -1;
}

/* Caller holds the lock. Removes item i (order kept). */
static void nh_take_locked(struct nh_runner *rn, size_t i, struct nh_item *out)
{
	*out = rn->queue[i];
	memmove(&rn->queue[i], &rn->queue[i + 1], (rn->len - i - 1) * sizeof(rn->queue[0]));
	rn->len--;
	nh_metrics_queue(rn->len);
}

/* Caller holds the lock and has checked nh_room_locked (or parks: cap has
 * room for every slot's item). at_head: a parked job keeps its turn. */
static void nh_put_locked(struct nh_runner *rn, const struct nh_item *it, bool at_head)
{
	if (at_head) {
		memmove(&rn->queue[1], &rn->queue[0], rn->len * sizeof(rn->queue[0]));
		rn->queue[0] = *it;
	} else {
		rn->queue[rn->len] = *it;
	}
	rn->len++;
	nh_metrics_queue(rn->len);
	pthread_cond_signal(&rn->cond);
}

static void nh_pod_key(const struct nh_jobspec *job, char *buf, size_t cap)
{
	if (job->pod[0])
		snprintf(buf, cap, "%s/%s", job->ns, job->pod);
	else
		buf[0] = '\0';
}

int nh_runner_claim_pod(struct nh_run *run)
{
	struct nh_runner *rn = run->rn;
	char key[NH_POD_KEY];
	int rc = 0;

	nh_pod_key(&run->r->job, key, sizeof(key));
	if (!key[0])
		return 0;
	pthread_mutex_lock(&rn->lock);
	if (nh_pod_held_locked(rn, key, run->slot)) {
		run->parked = true;
		rc = -EBUSY;
	} else {
		nh_strlcpy(run->slot->pod, key, sizeof(run->slot->pod));
	}
	pthread_mutex_unlock(&rn->lock);
	if (rc)
		LOG_INFO("msg=\"job waits: another job of the same pod runs\" pcp=%s/%s uid=%s pod=%s",
			 run->r->job.ns, run->r->job.name, run->r->job.uid, key);
	return rc;
}

/* ---------------------------------------------------------------- worker */

/* A new job that waited past --max-queue-wait-seconds: never started. */
static bool nh_queue_expired(const struct nh_runner *rn, const struct nh_item *it)
{
	return it->job && rn->opt.max_queue_wait_seconds > 0 &&
	       kc_now_ms() - it->accepted_ms > (int64_t)rn->opt.max_queue_wait_seconds * 1000;
}

/* Runs one item; true when it was parked (its pod is busy), untouched. */
static bool nh_run_item(struct nh_slot *sl, struct kc_client *kc, struct nh_item *it)
{
	struct nh_runner *rn = sl->rn;
	struct nh_run run;
	struct ch_state st;
	int rc;

	nh_metrics_job_begin();
	memset(&run, 0, sizeof(run));
	run.rn = rn;
	run.slot = sl;
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
	if (run.r->state == NH_J_ACCEPTED && it->job && nh_queue_expired(rn, it)) {
		/* The wait for a slot has its own bound, from the accept. */
		nh_fail(&run, "QueueTimeout",
			"PodCheckpoint %s/%s waited more than %ld s for a free slot on the node helper on %s (--max-parallel-jobs %ld); it was not started",
			run.r->job.ns, run.r->job.name, rn->opt.max_queue_wait_seconds,
			rn->opt.node_name, (long)rn->nslots);
	} else if (run.r->state == NH_J_ACCEPTED && it->job) {
		nh_run_checkpoint(&run);
	} else if (nh_runner_claim_pod(&run) != 0) {
		; /* resumed, but its pod is busy: parked */
	} else if (nh_resume_decide(run.r) == NH_RESUME_CONTINUE) {
		nh_finish(&run);
	} else if (run.r->state == NH_J_FAILED) {
		/* recovered Interrupted: write its status (guarded) */
		char reason[64], msg[512];
		nh_strlcpy(reason, run.r->reason, sizeof(reason));
		nh_strlcpy(msg, run.r->message, sizeof(msg));
		nh_fail(&run, reason, "%s", msg);
	}
	if (run.parked) {
		nh_pod_key(&run.r->job, it->pod, sizeof(it->pod));
	} else if (run.r->state == NH_J_DONE || run.r->state == NH_J_FAILED) {
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
	return run.parked;
}

static void *nh_worker(void *arg)
{
	struct nh_slot *sl = arg;
	struct nh_runner *rn = sl->rn;
	struct kc_client *kc = NULL;
	int rc;

	rc = kc_client_new(rn->cfg, &kc);
	if (rc) {
		LOG_ERROR("msg=\"runner cannot create an API client\" rc=%d", rc);
		return NULL;
	}
	kc_client_set_timeout(kc, NH_API_TIMEOUT_MS);
	kc_client_set_user_agent(kc, "podcheckpoint-node-helper");
	for (;;) {
		struct nh_item it;
		struct timespec until;
		bool parked, forget;
		long i = -1;

		pthread_mutex_lock(&rn->lock);
		while (!rn->stop && (i = nh_pick_locked(rn)) < 0) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&rn->cond, &rn->lock, &until);
		}
		if (rn->stop) {
			pthread_mutex_unlock(&rn->lock);
			break;
		}
		nh_take_locked(rn, (size_t)i, &it);
		nh_strlcpy(sl->uid, it.uid, sizeof(sl->uid));
		nh_strlcpy(sl->pod, it.pod, sizeof(sl->pod)); /* known: free (nh_pick_locked) */
		sl->cancelled = 0;
		sl->abort = rn->stop;
		pthread_mutex_unlock(&rn->lock);

		parked = nh_run_item(sl, kc, &it);

		pthread_mutex_lock(&rn->lock);
		sl->uid[0] = '\0';
		sl->pod[0] = '\0';
		/* Parked: back at the head, unless it was cancelled meanwhile (never
		 * started: forgotten) or the daemon stops (a restart forgets it). */
		forget = parked && sl->cancelled;
		if (parked && !forget && !rn->stop)
			nh_put_locked(rn, &it, true);
		sl->cancelled = 0;
		sl->abort = rn->stop;
		pthread_cond_broadcast(&rn->cond); /* a pod is free again */
		pthread_mutex_unlock(&rn->lock);
		if (parked && !forget && !rn->stop)
			continue;
		nh_journal_set_queued(rn->journal, it.uid, false);
		if (forget)
			nh_journal_remove(rn->journal, it.uid);
		nh_job_free(it.job);
		nh_runner_prune(rn);
	}
	kc_client_free(kc);
	return NULL;
}

static struct nh_item nh_item_of(const char *uid, struct ch_job *job)
{
	struct nh_item it;

	memset(&it, 0, sizeof(it));
	nh_strlcpy(it.uid, uid, sizeof(it.uid));
	it.job = job;
	it.accepted_ms = kc_now_ms();
	return it;
}

int nh_runner_submit(struct nh_runner *rn, const struct ch_job *job)
{
	struct nh_record *r = NULL;
	struct ch_job *copy = NULL;
	size_t ahead = 0;
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
	pthread_mutex_lock(&rn->lock);
	if (!nh_room_locked(rn)) {
		rc = -EBUSY;
	} else {
		size_t idle = nh_idle_locked(rn);

		ahead = rn->len;
		if (ahead < idle)
			snprintf(r->message, sizeof(r->message), "Starting on the node helper on %s",
				 rn->opt.node_name);
		else
			snprintf(r->message, sizeof(r->message),
				 "Queued on the node helper on %s: %zu running (at most %zu at once), %zu ahead of it",
				 rn->opt.node_name, rn->nslots - idle, rn->nslots, ahead - idle);
		/* One fsync under the lock: the lws thread is the only submitter. */
		rc = nh_journal_save(rn->journal, r);
		if (rc == 0) {
			struct nh_item it = nh_item_of(r->job.uid, copy);

			nh_journal_set_queued(rn->journal, r->job.uid, true);
			nh_put_locked(rn, &it, false);
			copy = NULL;
		}
	}
	pthread_mutex_unlock(&rn->lock);
	if (rc == 0)
		LOG_INFO("msg=\"job queued\" pcp=%s/%s uid=%s step=accepted ahead=%zu", job->ns,
			 job->name, job->uid, ahead);
out:
	nh_job_free(copy);
	free(r);
	return rc;
}

int nh_runner_cancel(struct nh_runner *rn, const char *uid)
{
	struct nh_item it;
	bool withdrawn = false;
	int rc = -ENOENT;

	memset(&it, 0, sizeof(it));
	pthread_mutex_lock(&rn->lock);
	for (size_t i = 0; i < rn->nslots && rc; i++) {
		struct nh_slot *sl = &rn->slots[i];

		if (strcmp(sl->uid, uid) == 0) {
			sl->cancelled = 1;
			sl->abort = 1; /* the kubelet call in flight ends now */
			rc = 0;
		}
	}
	for (size_t i = 0; i < rn->len && rc; i++) {
		if (strcmp(rn->queue[i].uid, uid) != 0)
			continue;
		rc = 0;
		/* A new job that never started leaves the queue at once; a resumed
		 * one (durable or later) stays: it reads its terminal CR and cleans up. */
		if (rn->queue[i].job) {
			nh_take_locked(rn, i, &it);
			withdrawn = true;
		}
	}
	pthread_mutex_unlock(&rn->lock);
	if (withdrawn) {
		nh_journal_remove(rn->journal, uid); /* accepted: nothing happened */
		nh_job_free(it.job);
		LOG_INFO("msg=\"queued job withdrawn\" uid=%s", uid);
	}
	return rc;
}

int nh_runner_resume(struct nh_runner *rn, const char *uid)
{
	int rc;

	pthread_mutex_lock(&rn->lock);
	if (nh_journal_is_queued(rn->journal, uid)) {
		rc = -EALREADY;
	} else if (!nh_room_locked(rn)) {
		rc = -EBUSY;
	} else {
		struct nh_item it = nh_item_of(uid, NULL);

		nh_journal_set_queued(rn->journal, uid, true);
		nh_put_locked(rn, &it, false);
		rc = 0;
	}
	pthread_mutex_unlock(&rn->lock);
	return rc;
}

int nh_runner_new(const struct nh_runner_opts *opts, struct nh_runner **out, char *err,
		  size_t errlen)
{
	struct nh_runner *rn = NULL;
	struct nh_kubelet_opts kopts;
	int rc = 0;

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
	rn->nslots = rn->opt.max_parallel_jobs > 0 ? (size_t)rn->opt.max_parallel_jobs : 1;
	rn->qmax = rn->opt.max_queued_jobs > 0 ? (size_t)rn->opt.max_queued_jobs : 0;
	rn->cap = rn->qmax + rn->nslots;
	rn->queue = calloc(rn->cap, sizeof(*rn->queue));
	rn->slots = calloc(rn->nslots, sizeof(*rn->slots));
	if (!rn->queue || !rn->slots) {
		rc = -ENOMEM;
		goto out;
	}
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
	for (size_t i = 0; i < rn->nslots; i++) {
		rn->slots[i].rn = rn;
		kopts.stop = &rn->slots[i].abort;
		rc = nh_kubelet_new(&kopts, &rn->slots[i].kubelet, err, errlen);
		if (rc)
			goto out;
	}
	*out = rn;
	rn = NULL;
out:
	nh_runner_free(rn);
	return rc;
}

int nh_runner_start(struct nh_runner *rn)
{
	for (size_t i = 0; i < rn->nslots; i++) {
		int rc;

		if (rn->slots[i].started)
			continue;
		rc = -pthread_create(&rn->slots[i].thread, NULL, nh_worker, &rn->slots[i]);
		if (rc)
			return rc;
		rn->slots[i].started = true;
	}
	return 0;
}

void nh_runner_free(struct nh_runner *rn)
{
	if (!rn)
		return;
	pthread_mutex_lock(&rn->lock);
	rn->stop = 1;
	for (size_t i = 0; rn->slots && i < rn->nslots; i++)
		rn->slots[i].abort = 1;
	pthread_cond_broadcast(&rn->cond);
	pthread_mutex_unlock(&rn->lock);
	for (size_t i = 0; rn->slots && i < rn->nslots; i++)
		if (rn->slots[i].started)
			pthread_join(rn->slots[i].thread, NULL);
	for (size_t i = 0; i < rn->len; i++)
		nh_job_free(rn->queue[i].job);
	for (size_t i = 0; rn->slots && i < rn->nslots; i++)
		nh_kubelet_free(rn->slots[i].kubelet);
	free(rn->queue);
	free(rn->slots);
	pthread_cond_destroy(&rn->cond);
	pthread_mutex_destroy(&rn->lock);
	free(rn);
}
