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

