/*
 * nh_job.c - the job runner (see nh_job.h and docs/node-helper.md).
 */
#include "nh_job.h"

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
#include "nh_status.h"
#include "nh_util.h"

#define NH_STATUS_DEADLINE_MS 30000
#define NH_STATUS_ATTEMPTS 8
#define NH_API_TIMEOUT_MS 10000L
#define NH_EVENT_SOURCE "checkpointing.dev/node-helper"

struct nh_item {
	char uid[64];
	struct ch_job *job; /* NULL: resume from the journal */
};

struct nh_runner {
	struct nh_options opt; /* copy */
	struct kc_config *cfg;
	struct nh_journal *journal;
	struct nh_kubelet *kubelet;
	void (*notify)(void *arg, const struct ch_state *st);
	void *notify_arg;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct nh_item queue[NH_QUEUE_MAX];
	size_t head, len;
	volatile sig_atomic_t stop;
	pthread_t thread;
	bool started;
};

/* One job being run (worker thread only). */
struct nh_run {
	struct nh_runner *rn;
	struct kc_client *kc;
	struct nh_record *r;
	const struct ch_job *job; /* new jobs: with the certificate; NULL on resume */
	struct art_cert *cert;
	struct art_writer *w;
	json_object *cr;  /* last CR seen (owned) */
	json_object *pod; /* the live pod (owned) */
	bool cr_gone;
};

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

int nh_artifact_path(const char *artifact_dir, const struct ch_job *job, char *buf, size_t cap)
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

static void nh_notify(struct nh_run *run)
{
	struct ch_state st;

	nh_record_to_ch_state(run->r, &st);
	if (run->w)
		st.bytes = art_writer_bytes_out(run->w);
	nh_journal_progress(run->rn->journal, run->r->job.uid, st.bytes, st.container);
	if (run->rn->notify)
		run->rn->notify(run->rn->notify_arg, &st);
}

static int nh_save(struct nh_run *run, enum nh_jstate s)
{
	struct nh_record *r = run->r;
	int rc;

	r->state = s;
	rc = nh_journal_save(run->rn->journal, r);
	LOG_INFO("msg=\"job step\" pcp=%s/%s uid=%s step=%s rc=%d", r->job.ns, r->job.name,
		 r->job.uid, nh_jstate_name(s), rc);
	nh_notify(run);
	return rc;
}

static void nh_sleep_ms(struct nh_runner *rn, long ms)
{
	while (ms > 0 && !rn->stop) {
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
		ms -= 100;
	}
}

/* GET the CR into run->cr: 0, -ENOENT (gone or replaced: run->cr_gone) or other. */
static int nh_get_cr(struct nh_run *run)
{
	struct nh_record *r = run->r;
	struct kc_status st;
	json_object *obj = NULL;
	char path[1024];
	const char *uid;
	int rc;

	kc_status_clear(&st);
	rc = kc_path(path, sizeof(path), &KC_RES_PODCHECKPOINTS, r->job.ns, r->job.name, NULL, NULL);
	if (rc)
		return rc;
	rc = kc_get(run->kc, path, &obj, &st);
	if (rc == -ENOENT) {
		run->cr_gone = true;
		return rc;
	}
	if (rc) {
		LOG_WARN("msg=\"cannot read the PodCheckpoint\" pcp=%s/%s uid=%s http=%ld err=\"%s\"",
			 r->job.ns, r->job.name, r->job.uid, st.http, st.message);
		return rc;
	}
	uid = kc_json_str(obj, "metadata.uid");
	if (!uid || strcmp(uid, r->job.uid) != 0) {
		json_object_put(obj);
		run->cr_gone = true;
		return -ENOENT;
	}
	json_object_put(run->cr);
	run->cr = obj;
	return 0;
}

enum nh_patch_kind { NH_P_RUNNING, NH_P_SUCCEEDED, NH_P_FAILED };

/*
 * Writes a status patch built from the freshest CR: GET, patch with the
 * resourceVersion precondition, on 409 GET again and rebuild. -ENOENT when
 * the CR is gone or replaced (uid differs). Bounded in attempts and time.
 */
static int nh_write_status(struct nh_run *run, enum nh_patch_kind kind, const char *reason,
			   const char *message)
{
	struct nh_record *r = run->r;
	int64_t deadline = nh_mono_ms() + NH_STATUS_DEADLINE_MS;
	char path[1024], now[32];
	int rc = -EIO;

	if (run->cr_gone)
		return -ENOENT;
	rc = kc_path(path, sizeof(path), &KC_RES_PODCHECKPOINTS, r->job.ns, r->job.name, "status",
		     NULL);
	if (rc)
		return rc;
	for (int attempt = 0; attempt < NH_STATUS_ATTEMPTS && !run->rn->stop; attempt++) {
		json_object *patch = NULL, *res = NULL;
		struct kc_status st;

		if (attempt > 0 || !run->cr) {
			rc = nh_get_cr(run);
			if (rc == -ENOENT)
				return rc;
			if (rc)
				goto retry;
		}
		nh_time_now(now);
		if (kind == NH_P_RUNNING)
			rc = nh_status_running(run->cr, message, now, &patch);
		else if (kind == NH_P_SUCCEEDED)
			rc = nh_status_succeeded(run->cr, r, now, &patch);
		else
			rc = nh_status_failed(run->cr, reason, message, now, &patch);
		if (rc)
			return rc;
		kc_status_clear(&st);
		rc = kc_merge_patch(run->kc, path, patch, &res, &st);
		json_object_put(patch);
		if (rc == 0) {
			json_object_put(run->cr);
			run->cr = res; /* the updated CR, for Events and the next patch */
			return 0;
		}
		json_object_put(res);
		if (rc == -ENOENT) {
			run->cr_gone = true;
			return rc;
		}
		LOG_WARN("msg=\"status write failed\" pcp=%s/%s uid=%s attempt=%d http=%ld reason=%s err=\"%s\"",
			 r->job.ns, r->job.name, r->job.uid, attempt + 1, st.http, st.reason,
			 st.message);
		if (rc == -EAGAIN)
			continue; /* stale resourceVersion: re-read and decide again */
retry:
		if (nh_mono_ms() > deadline)
			break;
		nh_sleep_ms(run->rn, 500L * (attempt + 1));
	}
	return rc ? rc : -ETIMEDOUT;
}

static void nh_event(struct nh_run *run, const char *type, const char *reason,
		     const char *action, const char *note)
{
	struct kc_event_source src = { NH_EVENT_SOURCE, run->rn->opt.node_name };
	struct kc_status st;
	int rc;

	if (!run->cr)
		return;
	kc_status_clear(&st);
	rc = kc_event_emit(run->kc, &src, run->cr, type, reason, action, &st, "%s", note);
	if (rc)
		LOG_WARN("msg=\"event failed\" pcp=%s/%s uid=%s reason=%s http=%ld", run->r->job.ns,
			 run->r->job.name, run->r->job.uid, reason, st.http);
}

/* Removes the kubelet's plaintext archives recorded in the record. */
static void nh_remove_archives(struct nh_record *r)
{
	for (size_t i = 0; i < r->nresults; i++) {
		const char *a = r->results[i].archive;
		if (!a[0])
			continue;
		if (unlink(a) == 0)
			LOG_INFO("msg=\"kubelet archive removed\" pcp=%s/%s uid=%s path=%s", r->job.ns,
				 r->job.name, r->job.uid, a);
		else if (errno != ENOENT)
			LOG_ERROR("msg=\"cannot remove kubelet archive\" pcp=%s/%s uid=%s path=%s errno=%d err=\"%s\"",
				  r->job.ns, r->job.name, r->job.uid, a, errno, strerror(errno));
	}
}

/* Fails the job: clean up, journal, status, Warning Event, notify. */
static void nh_fail(struct nh_run *run, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void nh_fail(struct nh_run *run, const char *reason, const char *fmt, ...)
{
	struct nh_record *r = run->r;
	va_list ap;
	int rc;

	art_writer_abort(run->w);
	run->w = NULL;
	nh_remove_archives(r);
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
	nh_strlcpy(r->reason, reason, sizeof(r->reason));
	r->container[0] = '\0';
	nh_time_now(r->completion_time);
	LOG_WARN("msg=\"job failed\" pcp=%s/%s uid=%s reason=%s message=\"%s\"", r->job.ns,
		 r->job.name, r->job.uid, reason, r->message);
	nh_save(run, NH_J_FAILED);
	rc = nh_write_status(run, NH_P_FAILED, reason, r->message);
	if (rc == 0)
		nh_event(run, "Warning", reason, "Checkpoint", r->message);
	else
		LOG_WARN("msg=\"failure status not written\" pcp=%s/%s uid=%s rc=%d", r->job.ns,
			 r->job.name, r->job.uid, rc);
}

/* ---------------------------------------------------------------- steps */

static bool nh_free_space_ok(struct nh_run *run)
{
	uint64_t free_b = 0;
	int rc = fsu_free_bytes(run->rn->opt.artifact_dir, &free_b);

	if (rc) {
		nh_fail(run, "StorageFailed", "cannot check free space in %s: %s",
			run->rn->opt.artifact_dir, strerror(-rc));
		return false;
	}
	if (free_b < run->rn->opt.min_free_bytes) {
		nh_fail(run, "StorageFailed",
			"only %.1f MiB free in %s on node %s, below the %.1f MiB the node helper keeps free",
			(double)free_b / 1048576.0, run->rn->opt.artifact_dir, run->rn->opt.node_name,
			(double)run->rn->opt.min_free_bytes / 1048576.0);
		return false;
	}
	return true;
}

/* GET the pod and check it is the one we were asked about. */
static bool nh_check_pod(struct nh_run *run)
{
	struct nh_record *r = run->r;
	struct kc_status st;
	char path[1024];
	const char *uid, *node;
	int rc = -EIO;

	for (int attempt = 0; attempt < 3 && !run->rn->stop; attempt++) {
		kc_status_clear(&st);
		rc = kc_path(path, sizeof(path), &KC_RES_PODS, r->job.ns, r->job.pod, NULL, NULL);
		if (rc)
			break;
		rc = kc_get(run->kc, path, &run->pod, &st);
		if (rc == 0 || rc == -ENOENT)
			break;
		nh_sleep_ms(run->rn, 1000);
	}
	if (rc == -ENOENT) {
		nh_fail(run, "PodNotFound", "pod %s/%s no longer exists", r->job.ns, r->job.pod);
		return false;
	}
	if (rc) {
		nh_fail(run, "ApiServerUnavailable", "the node helper cannot read pod %s/%s: %s",
			r->job.ns, r->job.pod, st.message[0] ? st.message : strerror(-rc));
		return false;
	}
	uid = kc_json_str(run->pod, "metadata.uid");
	node = kc_json_str(run->pod, "spec.nodeName");
	if (r->job.pod_uid[0] && (!uid || strcmp(uid, r->job.pod_uid) != 0)) {
		nh_fail(run, "SourcePodReplaced", "pod %s/%s was replaced (UID %s, expected %s)",
			r->job.ns, r->job.pod, uid ? uid : "?", r->job.pod_uid);
		return false;
	}
	if (!node || strcmp(node, run->rn->opt.node_name) != 0) {
		nh_fail(run, "WrongNode", "pod %s/%s runs on node %s, not on node %s", r->job.ns,
			r->job.pod, node ? node : "(none)", run->rn->opt.node_name);
		return false;
	}
	nh_strlcpy(r->pod_uid, uid ? uid : "", sizeof(r->pod_uid));
	/* No container list: all regular containers of the pod. */
	if (r->job.ncontainers == 0) {
		json_object *ctrs = kc_json_get(run->pod, "spec.containers");
		size_t n = ctrs && json_object_is_type(ctrs, json_type_array)
				   ? json_object_array_length(ctrs)
				   : 0;
		for (size_t i = 0; i < n && i < CH_MAX_CONTAINERS; i++) {
			const char *name = kc_json_str(json_object_array_get_idx(ctrs, i), "name");
			if (name && nh_strlcpy(r->job.containers[r->job.ncontainers], name,
					       sizeof(r->job.containers[0])) == 0)
				r->job.ncontainers++;
		}
	}
	if (r->job.ncontainers == 0) {
		nh_fail(run, "KubeletError", "pod %s/%s has no containers to checkpoint", r->job.ns,
			r->job.pod);
		return false;
	}
	return true;
}

static bool nh_step_kubelet(struct nh_run *run)
{
	struct nh_record *r = run->r;
	struct nh_kubelet_result kres;

	for (size_t i = 0; i < r->job.ncontainers; i++) {
		const char *ctr = r->job.containers[i];
		struct nh_cresult *c = &r->results[r->nresults];
		struct stat sb;
		int rc;

		if (run->rn->stop)
			return false;
		nh_strlcpy(r->container, ctr, sizeof(r->container));
		snprintf(r->message, sizeof(r->message),
			 "Checkpointing container %s (%zu of %zu) of pod %s/%s", ctr, i + 1,
			 r->job.ncontainers, r->job.ns, r->job.pod);
		nh_notify(run);
		LOG_INFO("msg=\"kubelet checkpoint\" pcp=%s/%s uid=%s step=kubelet container=%s timeout=%d",
			 r->job.ns, r->job.name, r->job.uid, ctr, r->job.timeout_seconds);
		rc = nh_kubelet_checkpoint(run->rn->kubelet, r->job.ns, r->job.pod, ctr,
					   r->job.timeout_seconds, &kres);
		if (rc == -EINTR && run->rn->stop)
			return false; /* stopping: the next start fails it as Interrupted */
		if (rc) {
			nh_fail(run, kres.reason, "%s", kres.message);
			return false;
		}
		memset(c, 0, sizeof(*c));
		nh_strlcpy(c->name, ctr, sizeof(c->name));
		nh_strlcpy(c->archive, kres.local_path, sizeof(c->archive));
		nh_time_now(c->checkpoint_time);
		r->nresults++;
		/* Journal the archive at once: a restart must find it to remove it. */
		nh_save(run, NH_J_CHECKPOINTING);
		int e = stat(kres.local_path, &sb) != 0 ? errno : !S_ISREG(sb.st_mode) ? EINVAL : 0;
		if (e) {
			nh_fail(run, "KubeletError",
				"cannot read the kubelet's archive %s for container %s at %s: %s%s",
				kres.node_path, ctr, kres.local_path,
				e == EINVAL ? "not a regular file" : strerror(e),
				e == ENOENT ? " (is the kubelet's checkpoints directory mounted at --host-root?)" : "");
			return false;
		}
		c->size_bytes = (uint64_t)sb.st_size;
		{
			char why[256];

			/* Bundled unchanged, so a cut-short archive must stop here. */
			if (art_tar_check(kres.local_path, NULL, why, sizeof(why)) != 0) {
				nh_fail(run, "KubeletError",
					"the kubelet's checkpoint archive for container %s is damaged (%s)",
					ctr, why);
				return false;
			}
		}
		LOG_INFO("msg=\"kubelet archive\" pcp=%s/%s uid=%s step=kubelet container=%s path=%s size=%llu",
			 r->job.ns, r->job.name, r->job.uid, ctr, kres.local_path,
			 (unsigned long long)sb.st_size);
	}
	r->container[0] = '\0';
	return true;
}

static bool nh_step_bundle(struct nh_run *run)
{
	struct nh_record *r = run->r;
	char final_path[4096], dir[4096], msg[512] = "", now[32];
	json_object *manifest = NULL;
	const char *text;
	size_t len = 0;
	int rc, n;

	nh_save(run, NH_J_BUNDLING);
	rc = nh_artifact_path(run->rn->opt.artifact_dir, &r->job, final_path, sizeof(final_path));
	if (rc) {
		nh_fail(run, "StorageFailed", "cannot name the artifact for %s/%s: %s", r->job.ns,
			r->job.name, strerror(-rc));
		return false;
	}
	n = snprintf(dir, sizeof(dir), "%s/%s", run->rn->opt.artifact_dir, r->job.ns);
	rc = (n < 0 || (size_t)n >= sizeof(dir)) ? -ENAMETOOLONG : fsu_mkdir_p(dir, 0700);
	if (rc) {
		nh_fail(run, "StorageFailed", "cannot create %s: %s", dir, strerror(-rc));
		return false;
	}
	rc = art_writer_open(final_path, run->cert, &run->w, msg, sizeof(msg));
	if (rc) {
		nh_fail(run, nh_writer_reason(rc, run->cert != NULL), "cannot create the artifact %s: %s",
			final_path, msg[0] ? msg : strerror(-rc));
		return false;
	}
	for (size_t i = 0; i < r->nresults; i++) {
		struct nh_cresult *c = &r->results[i];
		uint64_t size = 0;

		if (run->rn->stop)
			return false;
		msg[0] = '\0';
		rc = art_writer_add_file(run->w, nh_basename(c->archive), c->archive, c->sha256, &size,
					 msg, sizeof(msg));
		if (rc) {
			nh_fail(run, nh_writer_reason(rc, run->cert != NULL),
				"cannot add container %s's archive to %s: %s", c->name, final_path,
				msg[0] ? msg : strerror(-rc));
			return false;
		}
		c->size_bytes = size;
		snprintf(r->message, sizeof(r->message), "Bundled container %s (%zu of %zu)", c->name,
			 i + 1, r->nresults);
		nh_notify(run);
	}
	nh_time_now(now);
	rc = nh_manifest_build(r, run->pod, now, run->cert ? art_cert_fingerprint(run->cert) : NULL,
			       &manifest);
	if (rc) {
		nh_fail(run, "StorageFailed", "cannot build the manifest: %s", strerror(-rc));
		return false;
	}
	text = json_object_to_json_string_length(manifest, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	msg[0] = '\0';
	rc = text ? art_writer_add_bytes(run->w, "manifest.json", text, len, msg, sizeof(msg))
		  : -ENOMEM;
	json_object_put(manifest);
	if (rc) {
		nh_fail(run, nh_writer_reason(rc, run->cert != NULL),
			"cannot add the manifest to %s: %s", final_path, msg[0] ? msg : strerror(-rc));
		return false;
	}
	msg[0] = '\0';
	rc = art_writer_commit(run->w, &r->artifact, msg, sizeof(msg));
	run->w = NULL; /* freed by commit in every case */
	if (rc) {
		nh_fail(run, nh_writer_reason(rc, run->cert != NULL), "cannot store the artifact %s: %s",
			final_path, msg[0] ? msg : strerror(-rc));
		return false;
	}
	LOG_INFO("msg=\"artifact durable\" pcp=%s/%s uid=%s step=bundle path=%s size=%llu sha256=%s encrypted=%s",
		 r->job.ns, r->job.name, r->job.uid, r->artifact.path,
		 (unsigned long long)r->artifact.size_bytes, r->artifact.sha256,
		 r->artifact.encrypted ? "true" : "false");
	/* The plaintext never outlives the request. */
	nh_remove_archives(r);
	nh_time_now(r->completion_time);
	nh_success_message(r, r->message, sizeof(r->message));
	return nh_save(run, NH_J_DURABLE) == 0;
}

static int nh_delete_pod(struct nh_run *run)
{
	struct nh_record *r = run->r;
	struct kc_delete_opts dopts = { r->pod_uid[0] ? r->pod_uid : r->job.pod_uid, NULL, NULL, -1 };
	struct kc_status st;
	char path[1024];
	int rc = -EIO;

	if (!dopts.uid || !dopts.uid[0])
		return -EINVAL; /* never delete without a UID precondition */
	rc = kc_path(path, sizeof(path), &KC_RES_PODS, r->job.ns, r->job.pod, NULL, NULL);
	if (rc)
		return rc;
	for (int attempt = 0; attempt < 5 && !run->rn->stop; attempt++) {
		kc_status_clear(&st);
		rc = kc_delete(run->kc, path, &dopts, NULL, &st);
		if (rc == 0 || rc == -ENOENT || (rc == -EAGAIN && st.http == 409)) {
			/* 404, or the UID precondition failed: that pod is gone already. */
			LOG_INFO("msg=\"pod deleted\" pcp=%s/%s uid=%s step=delete-pod pod=%s pod_uid=%s http=%ld",
				 r->job.ns, r->job.name, r->job.uid, r->job.pod, dopts.uid, st.http);
			return 0;
		}
		LOG_WARN("msg=\"pod delete failed\" pcp=%s/%s uid=%s attempt=%d http=%ld err=\"%s\"",
			 r->job.ns, r->job.name, r->job.uid, attempt + 1, st.http, st.message);
		nh_strlcpy(r->message, st.message, sizeof(r->message));
		if (rc == -EACCES)
			break;
		nh_sleep_ms(run->rn, 1000L * (attempt + 1));
	}
	return rc ? rc : -EIO;
}

/* From durable on: status, pod delete, done. Safe to repeat. */
static void nh_finish(struct nh_run *run)
{
	struct nh_record *r = run->r;
	char note[1024];
	int rc;

	if (r->state == NH_J_DURABLE) {
		r->pod_deleted = false;
		rc = nh_write_status(run, NH_P_SUCCEEDED, NULL, NULL);
		if (rc == -ENOENT) {
			LOG_WARN("msg=\"PodCheckpoint gone; artifact kept\" pcp=%s/%s uid=%s path=%s",
				 r->job.ns, r->job.name, r->job.uid, r->artifact.path);
			nh_save(run, NH_J_DONE);
			return;
		}
		if (rc) {
			snprintf(r->message, sizeof(r->message),
				 "artifact %.400s is stored; waiting for the API server to record it",
				 r->artifact.path);
			nh_notify(run);
			return; /* stays durable; resumed when the controller asks again */
		}
		nh_success_message(r, note, sizeof(note));
		nh_event(run, "Normal", "CheckpointCompleted", "Checkpoint", note);
		if (nh_save(run, NH_J_STATUS_WRITTEN))
			return;
	}
	if (r->state == NH_J_STATUS_WRITTEN) {
		if (r->job.leave_running) {
			nh_save(run, NH_J_DONE);
			return;
		}
		if (nh_save(run, NH_J_DELETING_POD))
			return;
	}
	if (r->state == NH_J_DELETING_POD) {
		rc = nh_delete_pod(run);
		if (run->rn->stop)
			return;
		if (rc) {
			char why[512];
			nh_strlcpy(why, r->message, sizeof(why));
			nh_fail(run, "PodDeleteFailed",
				"the checkpoint is stored at %s but pod %s/%s could not be deleted: %s",
				r->artifact.path, r->job.ns, r->job.pod, why[0] ? why : strerror(-rc));
			return;
		}
		r->pod_deleted = true;
		if (nh_save(run, NH_J_POD_DELETED))
			return;
	}
	if (r->state == NH_J_POD_DELETED) {
		r->pod_deleted = true;
		rc = nh_write_status(run, NH_P_SUCCEEDED, NULL, NULL);
		if (rc && rc != -ENOENT) {
			nh_notify(run);
			return;
		}
		if (rc == 0) {
			snprintf(note, sizeof(note), "Deleted pod %s/%s (UID %s) after the checkpoint",
				 r->job.ns, r->job.pod, r->pod_uid);
			nh_event(run, "Normal", "PodDeleted", "DeletePod", note);
		}
		nh_success_message(r, r->message, sizeof(r->message));
		nh_save(run, NH_J_DONE);
	}
}

static void nh_run_checkpoint(struct nh_run *run)
{
	struct nh_record *r = run->r;
	char msg[512];
	enum art_cert_error why = ART_CERT_OK;
	int rc;

	LOG_INFO("msg=\"job started\" pcp=%s/%s uid=%s pod=%s containers=%zu encrypt=%s leave_running=%s",
		 r->job.ns, r->job.name, r->job.uid, r->job.pod, r->job.ncontainers,
		 r->job.encrypt ? "true" : "false", r->job.leave_running ? "true" : "false");
	rc = nh_get_cr(run);
	if (rc == -ENOENT) {
		nh_strlcpy(r->reason, "PodCheckpointGone", sizeof(r->reason));
		snprintf(r->message, sizeof(r->message),
			 "PodCheckpoint %s/%s was deleted or replaced before the checkpoint started",
			 r->job.ns, r->job.name);
		nh_save(run, NH_J_FAILED);
		return;
	}
	if (!nh_free_space_ok(run))
		return;
	if (r->job.encrypt) {
		const char *pem = run->job ? run->job->cert_pem : NULL;
		msg[0] = '\0';
		rc = pem ? art_cert_parse(pem, strlen(pem), false, time(NULL), &run->cert, &why, msg,
					  sizeof(msg))
			 : -EINVAL;
		if (rc) {
			nh_fail(run, "InvalidCertificate", "the certificate of Secret %s/%s cannot be used: %s",
				r->job.ns, r->job.secret_name, msg[0] ? msg : "no certificate in the job");
			return;
		}
	}
	if (!nh_check_pod(run))
		return;
	if (nh_save(run, NH_J_CHECKPOINTING))
		return;
	snprintf(msg, sizeof(msg), "Checkpointing %zu container%s of pod %s/%.200s on node %.150s",
		 r->job.ncontainers, r->job.ncontainers == 1 ? "" : "s", r->job.ns, r->job.pod,
		 r->job.node);
	nh_strlcpy(r->message, msg, sizeof(r->message));
	rc = nh_write_status(run, NH_P_RUNNING, NULL, msg);
	if (rc == -ENOENT) {
		nh_strlcpy(r->reason, "PodCheckpointGone", sizeof(r->reason));
		snprintf(r->message, sizeof(r->message),
			 "PodCheckpoint %s/%s was deleted before the checkpoint started", r->job.ns,
			 r->job.name);
		nh_save(run, NH_J_FAILED);
		return;
	}
	if (rc == 0)
		nh_event(run, "Normal", "CheckpointStarted", "Checkpoint", msg);
	if (!nh_step_kubelet(run) || run->rn->stop)
		return;
	if (!nh_step_bundle(run) || run->rn->stop)
		return;
	nh_finish(run);
}

/* ---------------------------------------------------------------- worker */

static void nh_run_item(struct nh_runner *rn, struct kc_client *kc, struct nh_item *it)
{
	struct nh_run run;
	struct ch_state st;
	int rc;

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
	else if (run.r->state == NH_J_FAILED) { /* recovered Interrupted: write its status */
		char reason[64], msg[512];
		nh_strlcpy(reason, run.r->reason, sizeof(reason));
		nh_strlcpy(msg, run.r->message, sizeof(msg));
		nh_fail(&run, reason, "%s", msg);
	}
	if (run.r->state == NH_J_DONE || run.r->state == NH_J_FAILED) {
		nh_record_to_ch_state(run.r, &st);
		LOG_INFO("msg=\"job finished\" pcp=%s/%s uid=%s state=%s reason=%s", run.r->job.ns,
			 run.r->job.name, run.r->job.uid, ch_state_name(st.state), run.r->reason);
	}
out:
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
		pthread_mutex_unlock(&rn->lock);

		nh_run_item(rn, kc, &it);
		nh_journal_set_queued(rn->journal, it.uid, false);
		nh_job_free(it.job);
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
	memcpy(&r->job, job, sizeof(r->job));
	r->job.cert_pem = NULL;
	r->state = NH_J_ACCEPTED;
	nh_time_now(r->accepted_time);
	snprintf(r->message, sizeof(r->message), "Accepted by the node helper on %s",
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
		LOG_INFO("msg=\"job accepted\" pcp=%s/%s uid=%s step=accepted pod=%s", job->ns,
			 job->name, job->uid, job->pod);
out:
	nh_job_free(copy);
	free(r);
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
		switch (nh_resume_decide(r)) {
		case NH_RESUME_INTERRUPTED: {
			char final_path[4096];
			unsigned stale = 0;

			nh_remove_archives(r);
			/* A bundle cut off mid-write left its temporary file. */
			if (nh_artifact_path(rn->opt.artifact_dir, &r->job, final_path,
					     sizeof(final_path)) == 0 &&
			    art_writer_discard_stale(final_path, &stale) == 0 && stale)
				LOG_INFO("msg=\"removed a partial artifact\" pcp=%s/%s uid=%s files=%u",
					 r->job.ns, r->job.name, r->job.uid, stale);
			nh_strlcpy(r->reason, "Interrupted", sizeof(r->reason));
			snprintf(r->message, sizeof(r->message),
				 "the node helper on %s restarted during the checkpoint (at step %s); no second checkpoint is taken for the same request: delete and re-create the PodCheckpoint",
				 r->job.node, nh_jstate_name(r->state));
			nh_time_now(r->completion_time);
			r->state = NH_J_FAILED;
			nh_journal_save(rn->journal, r);
			LOG_WARN("msg=\"job interrupted by a restart\" pcp=%s/%s uid=%s reason=Interrupted",
				 r->job.ns, r->job.name, r->job.uid);
			/* Write its Failed status from the worker. */
			if (nh_runner_resume(rn, r->job.uid) != 0)
				LOG_WARN("msg=\"queue full; status of interrupted job not written\" pcp=%s/%s uid=%s",
					 r->job.ns, r->job.name, r->job.uid);
			break;
		}
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
	kopts.stop = &rn->stop;
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

/* ---------------------------------------------------------------- delete-artifact */

int nh_delete_artifact(const char *artifact_dir, struct nh_journal *j, const struct ch_job *job,
		       struct ch_state *st)
{
	struct nh_record *r = NULL;
	char path[4096] = "";
	enum nh_jstate js;
	int rc = 0;

	memset(st, 0, sizeof(*st));
	nh_strlcpy(st->uid, job->uid, sizeof(st->uid));
	if (nh_journal_state(j, job->uid, NULL, &js) == 0 && js != NH_J_DONE && js != NH_J_FAILED) {
		st->state = CH_REFUSED;
		nh_strlcpy(st->reason, "Busy", sizeof(st->reason));
		snprintf(st->message, sizeof(st->message),
			 "the checkpoint job %s is still running (%s); ask again later", job->uid,
			 nh_jstate_name(js));
		return -EBUSY;
	}
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	if (nh_journal_get(j, job->uid, r) == 0 && r->artifact.path[0])
		nh_strlcpy(path, r->artifact.path, sizeof(path));
	else
		nh_strlcpy(path, job->artifact_path, sizeof(path));
	if (path[0]) {
		if (!nh_path_under(artifact_dir, path) ||
		    (access(path, F_OK) == 0 && !nh_path_real_under(artifact_dir, path))) {
			st->state = CH_REFUSED;
			nh_strlcpy(st->reason, "InvalidPath", sizeof(st->reason));
			snprintf(st->message, sizeof(st->message),
				 "refusing to delete %.400s: not a file under %.60s", path, artifact_dir);
			LOG_WARN("msg=\"delete-artifact refused\" pcp=%s/%s uid=%s path=%s", job->ns,
				 job->name, job->uid, path);
			rc = -EPERM;
			goto out;
		}
		if (unlink(path) != 0 && errno != ENOENT) {
			rc = -errno;
			st->state = CH_FAILED;
			nh_strlcpy(st->reason, "StorageFailed", sizeof(st->reason));
			snprintf(st->message, sizeof(st->message), "cannot delete %.400s: %s", path,
				 strerror(-rc));
			goto out;
		}
		fsu_fsync_parent(path);
	}
	nh_journal_remove(j, job->uid);
	st->state = CH_SUCCEEDED;
	snprintf(st->message, sizeof(st->message), "Deleted artifact %.400s", path[0] ? path : "(none)");
	LOG_INFO("msg=\"artifact deleted\" pcp=%s/%s uid=%s step=delete-artifact path=%s", job->ns,
		 job->name, job->uid, path[0] ? path : "-");
out:
	free(r);
	return rc;
}
