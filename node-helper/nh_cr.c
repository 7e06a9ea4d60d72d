/*
 * nh_cr.c - a job's view of its PodCheckpoint (see nh_run.h and
 * docs/node-helper.md, "The PodCheckpoint decides"): the guarded copy
 * (run->cr), the re-read, the status writes and the Events.
 *
 * The PodCheckpoint in the API server decides. Every copy the job acts on
 * passed pst_guard (same uid, not terminal, status.nodeName == this node,
 * status.podUID == the pod's); when it fails the caller stops, cleans up and
 * writes nothing (nh_superseded).
 */
#include "nh_run.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kc.h"
#include "log.h"
#include "nh_status.h"
#include "nh_util.h"
#include "pst.h"

#define NH_STATUS_DEADLINE_MS 30000
#define NH_STATUS_ATTEMPTS 8
#define NH_EVENT_SOURCE "checkpointing.dev/node-helper"

static void nh_guard_expect(const struct nh_run *run, struct pst_expect *e)
{
	e->uid = run->r->job.uid;
	e->node = run->rn->opt.node_name;
	e->pod_uid = run->r->job.pod_uid[0] ? run->r->job.pod_uid : NULL;
}

/* pst_guard on run->cr as it is: 0 ours; -ENOENT gone or replaced; -ESTALE
 * terminal or not dispatched here (run->why says). */
static int nh_guard(struct nh_run *run)
{
	struct pst_expect e;

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

/* run->cr is now obj (owned, NULL: gone), just read from the API server. */
static void nh_cr_set(struct nh_run *run, json_object *obj)
{
	json_object_put(run->cr);
	run->cr = obj;
	run->cr_ms = obj ? nh_mono_ms() : 0;
}

int nh_refresh(struct nh_run *run)
{
	struct nh_record *r = run->r;
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
		if (rc == 0 || rc == -ENOENT) {
			nh_cr_set(run, rc == 0 ? obj : NULL);
			break;
		}
		LOG_WARN("msg=\"cannot read the PodCheckpoint\" pcp=%s/%s uid=%s http=%ld err=\"%s\"",
			 r->job.ns, r->job.name, r->job.uid, st.http, st.message);
		nh_sleep_ms(run->rn, 500L * (attempt + 1));
	}
	if (rc && rc != -ENOENT)
		return rc;
	return nh_guard(run);
}

int nh_cr_current(struct nh_run *run)
{
	if (run->cr && run->cr_ms > 0 && nh_mono_ms() - run->cr_ms <= NH_CR_FRESH_MS)
		return nh_guard(run);
	return nh_refresh(run);
}

void nh_cr_stale(struct nh_run *run)
{
	run->cr_ms = 0;
}

/*
 * A terminal status that is the job's own result: an earlier attempt whose
 * answer was lost (timeout, connection reset, 5xx, or a 409 to a resent
 * request) was applied, or the job wrote it before a restart and had not
 * journaled it. That is "written", not "someone else decided" (which would
 * remove the artifact the status records). Only the helper writes
 * status.artifact, and its failure messages are its own.
 */
static bool nh_cr_shows_ours(struct nh_run *run, enum nh_patch_kind kind, const char *message)
{
	const char *phase = kc_json_str(run->cr, "status.phase");
	const char *sha = kc_json_str(run->cr, "status.artifact.sha256");
	const char *msg = kc_json_str(run->cr, "status.message");

	if (!phase)
		return false;
	switch (kind) {
	case NH_P_SUCCEEDED:
		return strcmp(phase, "Succeeded") == 0 && sha && run->r->artifact.sha256[0] &&
		       strcmp(sha, run->r->artifact.sha256) == 0;
	case NH_P_KEPT:
		return strcmp(phase, "Failed") == 0 && sha && run->r->artifact.sha256[0] &&
		       strcmp(sha, run->r->artifact.sha256) == 0;
	case NH_P_FAILED:
		return strcmp(phase, "Failed") == 0 && msg && message && strcmp(msg, message) == 0;
	default:
		return false;
	}
}

static int nh_build_patch(struct nh_run *run, enum nh_patch_kind kind, const char *reason,
			  const char *message, json_object **patch)
{
	struct nh_record *r = run->r;
	char now[32];
	int rc;

	nh_time_now(now);
	switch (kind) {
	case NH_P_RUNNING:
		rc = nh_status_running(run->cr, message, r->start_time, now, patch);
		if (rc == 0 && r->job.ncontainers)
			rc = nh_status_add_progress(*patch, r->job.containers[0], 0, r->job.ncontainers);
		break;
	case NH_P_PROGRESS:
		rc = nh_status_progress(run->cr, message, r->container, run->progress_done,
					r->job.ncontainers, now, patch);
		break;
	case NH_P_SUCCEEDED:
		rc = nh_status_succeeded(run->cr, r, now, patch);
		break;
	case NH_P_DELETING_POD:
		rc = nh_status_deleting_pod(run->cr, r, now, patch);
		break;
	case NH_P_KEPT:
		rc = nh_status_artifact_kept(run->cr, r, reason, message, now, patch);
		break;
	case NH_P_FAILED:
	default:
		rc = nh_status_failed(run->cr, reason, message, now, patch);
		break;
	}
	return rc;
}

/*
 * The first attempt patches from run->cr as it is (a GET or the answer of
 * the job's last write: its resourceVersion is the precondition, so a write
 * by anyone else since makes this one fail with 409); after a 409 or any
 * failed attempt it re-reads first. Either way the copy is guarded first.
 */
int nh_write_status(struct nh_run *run, enum nh_patch_kind kind, const char *reason,
		    const char *message)
{
	struct nh_record *r = run->r;
	int64_t deadline = nh_mono_ms() + NH_STATUS_DEADLINE_MS;
	bool reread = !run->cr;
	char path[1024];
	int rc = -EIO;

	rc = kc_path(path, sizeof(path), &KC_RES_PODCHECKPOINTS, r->job.ns, r->job.name, "status",
		     NULL);
	if (rc)
		return rc;
	for (int attempt = 0; attempt < NH_STATUS_ATTEMPTS && !run->rn->stop; attempt++) {
		json_object *patch = NULL, *res = NULL;
		struct kc_status st;

		rc = reread ? nh_refresh(run) : nh_guard(run);
		if (rc == -ESTALE && nh_cr_shows_ours(run, kind, message)) {
			LOG_INFO("msg=\"status already written\" pcp=%s/%s uid=%s attempt=%d",
				 r->job.ns, r->job.name, r->job.uid, attempt + 1);
			return 0;
		}
		if (rc == -ENOENT || rc == -ESTALE)
			return rc;
		reread = true; /* from here on, every attempt re-reads first */
		if (rc)
			goto retry;
		rc = nh_build_patch(run, kind, reason, message, &patch);
		if (rc)
			return rc;
		kc_status_clear(&st);
		rc = kc_merge_patch(run->kc, path, patch, &res, &st);
		json_object_put(patch);
		if (rc == 0) {
			/* The CR as written: the current copy (guarded at its next use). */
			nh_cr_set(run, res);
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
			continue; /* someone else wrote: re-read, guard, decide again */
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

