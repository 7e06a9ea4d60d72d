/*
 * nh_finish.c - the steps of a job from `durable` on (see nh_job.h and
 * docs/node-helper.md): status Succeeded, or for leaveRunning: false the
 * commit point, the re-read, the pod delete by UID and Succeeded with
 * podDeleted. Safe to repeat: a restart resumes here (guarded writes, delete
 * by UID).
 */
#include "nh_run.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kc.h"
#include "log.h"
#include "nh_status.h"
#include "nh_util.h"

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

static void nh_done_events(struct nh_run *run, const char *note)
{
	nh_event(run, "Normal", "CheckpointCompleted", "Checkpoint", note);
	nh_event_on(run, run->pod, "Normal", "Checkpointed", "Checkpoint", note);
}

/*
 * From the first status write on the status is the truth; a journal write
 * that fails then is logged and the job goes on (a restart repeats the
 * idempotent remainder: status writes are guarded, the delete is by UID).
 */
static void nh_save_soft(struct nh_run *run, enum nh_jstate s)
{
	int rc = nh_save(run, s);

	if (rc)
		LOG_ERROR("msg=\"journal write failed; the job goes on\" pcp=%s/%s uid=%s step=%s err=\"%s\"",
			  run->r->job.ns, run->r->job.name, run->r->job.uid, nh_jstate_name(s),
			  strerror(-rc));
}

void nh_finish(struct nh_run *run)
{
	struct nh_record *r = run->r;
	char note[1024], why[512];
	int rc;

	if (r->state == NH_J_DURABLE && r->job.leave_running) {
		r->pod_deleted = false;
		rc = nh_write_status(run, NH_P_SUCCEEDED, NULL, NULL);
		if (rc == -ENOENT || rc == -ESTALE) {
			nh_superseded(run, false);
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
		nh_done_events(run, note);
		/* done at once: status-written would be followed by done with
		 * nothing in between, and a crash before this write resumes from
		 * durable either way (one fsync'd journal write less per job) */
		nh_save_soft(run, NH_J_DONE);
		return;
	}
	if (r->state == NH_J_STATUS_WRITTEN) { /* journaled so by an earlier version */
		nh_save(run, NH_J_DONE);
		return;
	}
	if (r->state == NH_J_DURABLE) {
		/* leaveRunning: false. The commit point: the CR records the artifact
		 * and that the pod is being deleted, still Running. */
		rc = nh_write_status(run, NH_P_DELETING_POD, NULL, NULL);
		if (rc == -ENOENT || rc == -ESTALE) {
			nh_superseded(run, false);
			return;
		}
		if (rc) {
			nh_notify(run);
			return; /* stays durable */
		}
		nh_save_soft(run, NH_J_DELETING_POD);
	}
	if (r->state == NH_J_DELETING_POD) {
		/* Once more, right before the delete, always a GET (the one act that
		 * cannot be undone; the controller fails a CR at the commit point
		 * when the helper's Lease is stale): a Failed or deleted CR keeps
		 * its pod. */
		rc = nh_refresh(run);
		if (rc == -ENOENT || rc == -ESTALE) {
			nh_superseded(run, rc == -ESTALE); /* the status records the artifact */
			return;
		}
		if (rc) {
			nh_notify(run);
			return;
		}
		rc = nh_delete_pod(run);
		if (run->rn->stop)
			return;
		if (rc) {
			nh_strlcpy(why, r->message, sizeof(why));
			snprintf(r->message, sizeof(r->message),
				 "the checkpoint is stored at %.400s and kept, but pod %s/%s could not be deleted: %.200s",
				 r->artifact.path, r->job.ns, r->job.pod, why[0] ? why : strerror(-rc));
			nh_strlcpy(r->reason, "PodDeleteFailed", sizeof(r->reason));
			nh_time_now(r->completion_time);
			nh_save(run, NH_J_FAILED);
			rc = nh_write_status(run, NH_P_KEPT, r->reason, r->message);
			if (rc == 0 || rc == -ENOENT || rc == -ESTALE)
				nh_mark_final(run);
			if (rc == 0)
				nh_event(run, "Warning", r->reason, "DeletePod", r->message);
			return;
		}
		r->pod_deleted = true;
		nh_save_soft(run, NH_J_POD_DELETED);
	}
	if (r->state == NH_J_POD_DELETED) {
		r->pod_deleted = true;
		rc = nh_write_status(run, NH_P_SUCCEEDED, NULL, NULL);
		if (rc && rc != -ENOENT && rc != -ESTALE) {
			nh_notify(run);
			return;
		}
		nh_success_message(r, note, sizeof(note));
		if (rc == 0) {
			nh_done_events(run, note);
			snprintf(note, sizeof(note), "Deleted pod %s/%s (UID %s) after the checkpoint",
				 r->job.ns, r->job.pod, r->pod_uid);
			nh_event(run, "Normal", "PodDeleted", "DeletePod", note);
			nh_event_on(run, run->pod, "Normal", "DeletedAfterCheckpoint", "DeletePod", note);
		}
		nh_success_message(r, r->message, sizeof(r->message));
		nh_save(run, NH_J_DONE);
	}
}
