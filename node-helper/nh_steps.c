/*
 * nh_steps.c - the steps of one checkpoint job (see nh_job.h and
 * docs/node-helper.md): the job's primitives (journal, notify, guarded
 * re-read, status writes, Events, failing), read the CR and the pod, kubelet
 * calls, bundle. What the job is (from the CR and the pod) is nh_jobspec.c;
 * from `durable` on (status, pod delete) nh_finish.c.
 *
 * The PodCheckpoint in the API server decides. Before every status write,
 * every kubelet call and the pod delete the job re-reads the CR and runs
 * pst_guard (same uid, not terminal, status.nodeName == this node,
 * status.podUID == the pod's); when it fails the job stops, cleans up and
 * writes nothing (nh_superseded).
 */
#include "nh_run.h"

#include <errno.h>
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
#include "nh_util.h"
#include "pst.h"

#define NH_STATUS_DEADLINE_MS 30000
#define NH_STATUS_ATTEMPTS 8
#define NH_EVENT_SOURCE "checkpointing.dev/node-helper"
/* How far after the request the kubelet's name time may lie (connect, TLS). */
#define NH_SWEEP_SLACK_S 10

/* ---------------------------------------------------------------- helpers */

void nh_notify(struct nh_run *run)
{
	struct ch_state st;

	nh_record_to_ch_state(run->r, &st);
	if (run->w)
		st.bytes = art_writer_bytes_out(run->w);
	nh_journal_progress(run->rn->journal, run->r->job.uid, st.bytes, st.container);
	if (run->rn->notify)
		run->rn->notify(run->rn->notify_arg, &st);
}

int nh_save(struct nh_run *run, enum nh_jstate s)
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

/* nh_save, and a failed journal write fails the job (StorageFailed). */
static bool nh_step(struct nh_run *run, enum nh_jstate s)
{
	int rc = nh_save(run, s);

	if (rc == 0)
		return true;
	nh_fail(run, "StorageFailed", "the node helper on %s cannot write its job journal in %s: %s",
		run->rn->opt.node_name, run->rn->opt.state_dir, strerror(-rc));
	return false;
}

void nh_sleep_ms(struct nh_runner *rn, long ms)
{
	while (ms > 0 && !rn->stop) {
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
		ms -= 100;
	}
}

static void nh_guard_expect(const struct nh_run *run, struct pst_expect *e)
{
	e->uid = run->r->job.uid;
	e->node = run->rn->opt.node_name;
	e->pod_uid = run->r->job.pod_uid[0] ? run->r->job.pod_uid : NULL;
}

/*
 * GET the CR into run->cr and guard it. 0: ours to write; -ENOENT: gone or
 * replaced; -ESTALE: terminal, or not dispatched here (run->why says); other:
 * the API server did not answer (after a few tries).
 */
int nh_refresh(struct nh_run *run)
{
	struct nh_record *r = run->r;
	struct pst_expect e;
	char path[1024];
	int rc = -EIO;

	rc = kc_path(path, sizeof(path), &KC_RES_PODCHECKPOINTS, r->job.ns, r->job.name, NULL, NULL);
	if (rc)
		return rc;
	for (int attempt = 0; attempt < 3 && !run->rn->stop; attempt++) {
		json_object *obj = NULL;
		struct kc_status st;

		kc_status_clear(&st);
		rc = kc_get(run->kc, path, &obj, &st);
		if (rc == 0) {
			json_object_put(run->cr);
			run->cr = obj;
			break;
		}
		if (rc == -ENOENT) {
			json_object_put(run->cr);
			run->cr = NULL;
			break;
		}
		LOG_WARN("msg=\"cannot read the PodCheckpoint\" pcp=%s/%s uid=%s http=%ld err=\"%s\"",
			 r->job.ns, r->job.name, r->job.uid, st.http, st.message);
		nh_sleep_ms(run->rn, 500L * (attempt + 1));
	}
	if (rc && rc != -ENOENT)
		return rc;
	nh_guard_expect(run, &e);
	switch (pst_guard(run->cr, &e, run->why, sizeof(run->why))) {
	case PST_WRITABLE:
		return 0;
	case PST_GONE:
		return -ENOENT;
	case PST_IS_TERMINAL:
	case PST_NOT_OURS:
	default:
		return -ESTALE;
	}
}


/* A progress write at most this often: short jobs pay none, long ones are not silent. */
#define NH_PROGRESS_EVERY_MS 2000

/*
 * Writes a status patch built from the freshest guarded CR: patch with the
 * resourceVersion precondition, on 409 GET, guard and rebuild. -ENOENT or
 * -ESTALE when the guard says no (nothing written). Bounded.
 */
int nh_write_status(struct nh_run *run, enum nh_patch_kind kind, const char *reason,
			   const char *message)
{
	struct nh_record *r = run->r;
	int64_t deadline = nh_mono_ms() + NH_STATUS_DEADLINE_MS;
	char path[1024], now[32];
	int rc = -EIO;

	rc = kc_path(path, sizeof(path), &KC_RES_PODCHECKPOINTS, r->job.ns, r->job.name, "status",
		     NULL);
	if (rc)
		return rc;
	for (int attempt = 0; attempt < NH_STATUS_ATTEMPTS && !run->rn->stop; attempt++) {
		json_object *patch = NULL, *res = NULL;
		struct kc_status st;

		rc = nh_refresh(run);
		if (rc == -ENOENT || rc == -ESTALE)
			return rc;
		if (rc)
			goto retry;
		nh_time_now(now);
		switch (kind) {
		case NH_P_RUNNING:
			rc = nh_status_running(run->cr, message, r->start_time, now, &patch);
			if (rc == 0 && r->job.ncontainers)
				rc = nh_status_add_progress(patch, r->job.containers[0], 0,
							    r->job.ncontainers);
			break;
		case NH_P_PROGRESS:
			rc = nh_status_progress(run->cr, message, r->container, run->progress_done,
						r->job.ncontainers, now, &patch);
			break;
		case NH_P_SUCCEEDED:
			rc = nh_status_succeeded(run->cr, r, now, &patch);
			break;
		case NH_P_DELETING_POD:
			rc = nh_status_deleting_pod(run->cr, r, now, &patch);
			break;
		case NH_P_KEPT:
			rc = nh_status_artifact_kept(run->cr, r, reason, message, now, &patch);
			break;
		case NH_P_FAILED:
		default:
			rc = nh_status_failed(run->cr, reason, message, now, &patch);
			break;
		}
		if (rc)
			return rc;
		kc_status_clear(&st);
		rc = kc_merge_patch(run->kc, path, patch, &res, &st);
		json_object_put(patch);
		if (rc == 0) {
			json_object_put(run->cr);
			run->cr = res; /* the updated CR, for Events */
			run->progress_ms = nh_mono_ms();
			return 0;
		}
		json_object_put(res);
		if (rc == -ENOENT)
			return rc;
		LOG_WARN("msg=\"status write failed\" pcp=%s/%s uid=%s attempt=%d http=%ld reason=%s err=\"%s\"",
			 r->job.ns, r->job.name, r->job.uid, attempt + 1, st.http, st.reason,
			 st.message);
		if (rc == -EAGAIN)
			continue; /* stale resourceVersion: re-read, guard, decide again */
retry:
		if (nh_mono_ms() > deadline)
			break;
		nh_sleep_ms(run->rn, 500L * (attempt + 1));
	}
	return rc ? rc : -ETIMEDOUT;
}

void nh_event_on(struct nh_run *run, json_object *obj, const char *type,
			const char *reason, const char *action, const char *note)
{
	struct kc_event_source src = { NH_EVENT_SOURCE, run->rn->opt.node_name };
	struct kc_status st;
	int rc;

	if (!obj)
		return;
	kc_status_clear(&st);
	rc = kc_event_emit(run->kc, &src, obj, type, reason, action, &st, "%s", note);
	if (rc)
		LOG_WARN("msg=\"event failed\" pcp=%s/%s uid=%s reason=%s http=%ld", run->r->job.ns,
			 run->r->job.name, run->r->job.uid, reason, st.http);
}

void nh_event(struct nh_run *run, const char *type, const char *reason,
		     const char *action, const char *note)
{
	nh_event_on(run, run->cr, type, reason, action, note);
}

void nh_remove_archives(const struct nh_record *r)
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

/* Removes a durable artifact no CR points at. */
static void nh_remove_artifact(struct nh_record *r)
{
	if (!r->artifact.path[0])
		return;
	if (unlink(r->artifact.path) == 0) {
		fsu_fsync_parent(r->artifact.path);
		LOG_WARN("msg=\"artifact removed: its PodCheckpoint no longer wants it\" pcp=%s/%s uid=%s path=%s",
			 r->job.ns, r->job.name, r->job.uid, r->artifact.path);
	} else if (errno != ENOENT) {
		LOG_ERROR("msg=\"cannot remove an unwanted artifact\" pcp=%s/%s uid=%s path=%s errno=%d",
			  r->job.ns, r->job.name, r->job.uid, r->artifact.path, errno);
	}
	memset(&r->artifact, 0, sizeof(r->artifact));
}

/*
 * The CR is gone, terminal, or not ours: stop without writing status. The
 * plaintext goes; an artifact goes too unless the CR's status records it
 * (keep_artifact).
 */
void nh_superseded(struct nh_run *run, bool keep_artifact)
{
	struct nh_record *r = run->r;

	art_writer_abort(run->w);
	run->w = NULL;
	nh_remove_archives(r);
	if (!keep_artifact)
		nh_remove_artifact(r);
	nh_strlcpy(r->reason, "Superseded", sizeof(r->reason));
	snprintf(r->message, sizeof(r->message), "the node helper stopped the job: %s",
		 run->why[0] ? run->why : "the PodCheckpoint no longer exists");
	r->container[0] = '\0';
	nh_time_now(r->completion_time);
	LOG_WARN("msg=\"job stopped: the PodCheckpoint decides otherwise\" pcp=%s/%s uid=%s why=\"%s\"",
		 r->job.ns, r->job.name, r->job.uid, r->message);
	nh_save(run, NH_J_FAILED);
}

void nh_fail(struct nh_run *run, const char *reason, const char *fmt, ...)
{
	struct nh_record *r = run->r;
	va_list ap;
	int rc;

	art_writer_abort(run->w);
	run->w = NULL;
	nh_remove_archives(r);
	nh_remove_artifact(r); /* a failed CR records no artifact */
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
		LOG_WARN("msg=\"failure status not written\" pcp=%s/%s uid=%s rc=%d why=\"%s\"",
			 r->job.ns, r->job.name, r->job.uid, rc, run->why);
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

/* GET the pod: the one the CR was dispatched for, on this node, every
 * selected container running. */
static bool nh_check_pod(struct nh_run *run)
{
	struct nh_record *r = run->r;
	struct kc_status st;
	char path[1024], reason[64], msg[512];
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
	if (!uid || strcmp(uid, r->job.pod_uid) != 0) {
		nh_fail(run, "SourcePodReplaced", "pod %s/%s was replaced (UID %s, dispatched for %s)",
			r->job.ns, r->job.pod, uid ? uid : "?", r->job.pod_uid);
		return false;
	}
	if (!node || strcmp(node, run->rn->opt.node_name) != 0) {
		nh_fail(run, "WrongNode", "pod %s/%s runs on node %s, not on node %s", r->job.ns,
			r->job.pod, node ? node : "(none)", run->rn->opt.node_name);
		return false;
	}
	nh_strlcpy(r->pod_uid, uid, sizeof(r->pod_uid));
	if (nh_select_containers(run->pod, &r->job, reason, sizeof(reason), msg, sizeof(msg)) != 0) {
		nh_fail(run, reason, "%s", msg);
		return false;
	}
	return true;
}

/* After a kubelet call the helper gave up on: watch for its late archive. */
static void nh_sweep_later(struct nh_run *run, const char *ctr, int64_t started_s)
{
	struct nh_record *r = run->r;
	int64_t to = started_s + NH_SWEEP_SLACK_S;
	int64_t now = (int64_t)time(NULL);

	if (to > now)
		to = now;
	if (nh_sweep_add(run->rn->sweep, r->job.uid, r->job.ns, r->job.pod, ctr, started_s - 1, to))
		LOG_ERROR("msg=\"cannot journal the sweep of a late kubelet archive\" pcp=%s/%s uid=%s container=%s",
			  r->job.ns, r->job.name, r->job.uid, ctr);
}

static bool nh_step_kubelet(struct nh_run *run)
{
	struct nh_record *r = run->r;
	struct nh_kubelet_result kres;

	for (size_t i = 0; i < r->job.ncontainers; i++) {
		const char *ctr = r->job.containers[i];
		struct nh_cresult *c = &r->results[r->nresults];
		struct stat sb;
		int64_t started;
		int rc;

		if (run->rn->stop)
			return false;
		/* The CR decides, again, right before the runtime freezes anything. */
		rc = nh_refresh(run);
		if (rc == -ENOENT || rc == -ESTALE || run->slot->cancelled) {
			nh_superseded(run, false);
			return false;
		}
		if (rc) {
			nh_fail(run, "ApiServerUnavailable",
				"the node helper cannot re-read PodCheckpoint %s/%s before checkpointing container %s",
				r->job.ns, r->job.name, ctr);
			return false;
		}
		nh_strlcpy(r->container, ctr, sizeof(r->container));
		if (i > 0 && nh_mono_ms() - run->progress_ms >= NH_PROGRESS_EVERY_MS) {
			char msg[512];

			run->progress_done = i;
			snprintf(msg, sizeof(msg), "Checkpointing container %.200s (%zu of %zu) of pod %s/%.200s",
				 ctr, i + 1, r->job.ncontainers, r->job.ns, r->job.pod);
			rc = nh_write_status(run, NH_P_PROGRESS, NULL, msg);
			if (rc == -ENOENT || rc == -ESTALE) {
				nh_superseded(run, false);
				return false;
			}
			/* other failures: progress is best effort, the job goes on */
		}
		started = (int64_t)time(NULL);
		r->kubelet_started = started;
		snprintf(r->message, sizeof(r->message),
			 "Checkpointing container %s (%zu of %zu) of pod %s/%s", ctr, i + 1,
			 r->job.ncontainers, r->job.ns, r->job.pod);
		/* Journaled first: a crash during the call still sweeps its archive. */
		if (!nh_step(run, NH_J_CHECKPOINTING))
			return false;
		LOG_INFO("msg=\"kubelet checkpoint\" pcp=%s/%s uid=%s step=kubelet container=%s timeout=%d",
			 r->job.ns, r->job.name, r->job.uid, ctr, r->job.timeout_seconds);
		rc = nh_kubelet_checkpoint(run->slot->kubelet, r->job.ns, r->job.pod, ctr,
					   r->job.timeout_seconds, &kres);
		if (rc == -ETIMEDOUT || rc == -EINTR)
			nh_sweep_later(run, ctr, started);
		r->kubelet_started = 0;
		if (rc == -EINTR && run->rn->stop)
			return false; /* stopping: the next start fails it as Interrupted */
		if (rc == -EINTR && run->slot->cancelled) {
			nh_strlcpy(run->why, "the controller cancelled the job", sizeof(run->why));
			nh_superseded(run, false);
			return false;
		}
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
		if (!nh_step(run, NH_J_CHECKPOINTING))
			return false;
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

	if (!nh_step(run, NH_J_BUNDLING))
		return false;
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
		if (run->slot->cancelled) {
			nh_strlcpy(run->why, "the controller cancelled the job", sizeof(run->why));
			nh_superseded(run, false);
			return false;
		}
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
	return nh_step(run, NH_J_DURABLE);
}

/* The job disagrees with its CR, or the CR is not (or no longer) ours to act
 * on before anything was done: forget it and answer refused. */
static void nh_drop(struct nh_run *run, const char *reason)
{
	struct nh_record *r = run->r;
	struct ch_state st;

	LOG_WARN("msg=\"job dropped: it disagrees with its PodCheckpoint\" pcp=%s/%s uid=%s reason=%s why=\"%s\"",
		 r->job.ns, r->job.name, r->job.uid, reason, run->why);
	memset(&st, 0, sizeof(st));
	nh_strlcpy(st.uid, r->job.uid, sizeof(st.uid));
	st.state = CH_REFUSED;
	nh_strlcpy(st.reason, reason, sizeof(st.reason));
	snprintf(st.message, sizeof(st.message), "the node helper on %.200s does not act on this job: %.280s",
		 run->rn->opt.node_name, run->why);
	nh_journal_remove(run->rn->journal, r->job.uid);
	r->state = NH_J_FAILED;
	if (run->rn->notify)
		run->rn->notify(run->rn->notify_arg, &st);
}

void nh_run_checkpoint(struct nh_run *run)
{
	struct nh_record *r = run->r;
	char msg[512];
	enum art_cert_error why = ART_CERT_OK;
	const char *want_fp;
	int rc;

	/* Only what the API server says: the CR dispatched to this node. */
	rc = nh_refresh(run);
	if (rc == -ENOENT || rc == -ESTALE) {
		nh_drop(run, rc == -ENOENT ? "PodCheckpointGone" : "NotDispatchedHere");
		return;
	}
	if (rc) {
		nh_fail(run, "ApiServerUnavailable", "the node helper on %s cannot read PodCheckpoint %s/%s",
			run->rn->opt.node_name, r->job.ns, r->job.name);
		return;
	}
	if (nh_spec_from_cr(run->cr, run->rn->opt.node_name, &r->job) != 0) {
		nh_strlcpy(run->why, "the PodCheckpoint names no pod, or was not dispatched with a pod UID",
			   sizeof(run->why));
		nh_drop(run, "NotDispatchedHere");
		return;
	}
	if (nh_runner_claim_pod(run) != 0)
		return; /* another job of the same pod runs; this one waits, untouched */
	want_fp = kc_json_str(run->cr, "status.recipientFingerprint");
	if (r->job.encrypt) {
		const char *pem = run->job ? run->job->cert_pem : NULL;

		if (!pem || !want_fp || !*want_fp) {
			nh_strlcpy(run->why, "the PodCheckpoint asks for encryption but the job carries no certificate, or the status records no recipient fingerprint",
				   sizeof(run->why));
			nh_drop(run, "JobMismatch");
			return;
		}
		msg[0] = '\0';
		rc = art_cert_parse(pem, strlen(pem), false, time(NULL), &run->cert, &why, msg,
				    sizeof(msg));
		if (rc) {
			nh_fail(run, "InvalidCertificate", "the certificate of Secret %s/%s cannot be used: %s",
				r->job.ns, r->job.secret_name, msg[0] ? msg : "not a certificate");
			return;
		}
		if (strcmp(art_cert_fingerprint(run->cert), want_fp) != 0) {
			snprintf(run->why, sizeof(run->why),
				 "the job's certificate (SHA-256 %.16s...) is not the recipient recorded at dispatch (%.16s...)",
				 art_cert_fingerprint(run->cert), want_fp);
			nh_drop(run, "JobMismatch");
			return;
		}
	}
	if (!nh_step(run, NH_J_ACCEPTED))
		return;
	LOG_INFO("msg=\"job started\" pcp=%s/%s uid=%s pod=%s pod_uid=%s encrypt=%s leave_running=%s timeout=%d",
		 r->job.ns, r->job.name, r->job.uid, r->job.pod, r->job.pod_uid,
		 r->job.encrypt ? "true" : "false", r->job.leave_running ? "true" : "false",
		 r->job.timeout_seconds);
	if (!nh_free_space_ok(run))
		return;
	if (!nh_check_pod(run))
		return;
	if (!nh_step(run, NH_J_CHECKPOINTING))
		return;
	snprintf(msg, sizeof(msg), "Checkpointing %zu container%s of pod %s/%.200s on node %.150s",
		 r->job.ncontainers, r->job.ncontainers == 1 ? "" : "s", r->job.ns, r->job.pod,
		 r->job.node);
	nh_strlcpy(r->message, msg, sizeof(r->message));
	nh_time_now(r->start_time);
	rc = nh_write_status(run, NH_P_RUNNING, NULL, msg);
	if (rc == -ENOENT || rc == -ESTALE) {
		nh_superseded(run, false);
		return;
	}
	if (rc) {
		nh_fail(run, "ApiServerUnavailable", "the node helper on %s cannot record that PodCheckpoint %s/%s started",
			run->rn->opt.node_name, r->job.ns, r->job.name);
		return;
	}
	nh_event(run, "Normal", "CheckpointStarted", "Checkpoint", msg);
	nh_metrics_phase(NULL);
	if (!nh_step_kubelet(run) || run->rn->stop)
		return;
	nh_metrics_phase("kubelet");
	if (!nh_step_bundle(run) || run->rn->stop)
		return;
	nh_metrics_phase(r->job.encrypt ? "encrypt" : "bundle");
	nh_finish(run);
	nh_metrics_phase("write");
}
