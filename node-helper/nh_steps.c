/*
 * nh_steps.c - one checkpoint job from its start (see nh_job.h and
 * docs/node-helper.md): the job's primitives (journal, notify, stopping:
 * failed or superseded), then the start: read the CR and the pod, check
 * them, write Running. The CR copy, status writes and Events are nh_cr.c;
 * what the job is (from the CR and the pod) nh_jobspec.c; the kubelet calls
 * and the bundle nh_capture.c; from `durable` on (status, pod delete)
 * nh_finish.c.
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
bool nh_step(struct nh_run *run, enum nh_jstate s)
{
	int rc = nh_save(run, s);

	if (rc == 0)
		return true;
	nh_fail(run, "StorageFailed", "the node helper on %s cannot write its job journal in %s: %s",
		run->rn->opt.node_name, run->rn->opt.state_dir, strerror(-rc));
	return false;
}

void nh_runner_prune(struct nh_runner *rn)
{
	struct nh_prune_policy p = {
		.keep_seconds = rn->opt.journal_keep_seconds,
		.settled_keep_seconds = rn->opt.journal_settled_keep_seconds,
		.max_records = (size_t)rn->opt.journal_max_records,
	};

	nh_journal_prune(rn->journal, &p);
}

void nh_mark_final(struct nh_run *run)
{
	struct nh_record *r = run->r;
	int rc;

	if (r->final_written)
		return;
	r->final_written = true;
	rc = nh_journal_save(run->rn->journal, r);
	if (rc) {
		r->final_written = false; /* not on disk: kept by --journal-keep-seconds */
		LOG_WARN("msg=\"journal write failed; record kept longer\" pcp=%s/%s uid=%s err=%d",
			 r->job.ns, r->job.name, r->job.uid, rc);
	}
}

void nh_sleep_ms(struct nh_runner *rn, long ms)
{
	while (ms > 0 && !rn->stop) {
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
		ms -= 100;
	}
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
	r->final_written = true; /* the CR wants no status from this job */
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
	r->final_written = false; /* settled only once this Failed is applied */
	nh_save(run, NH_J_FAILED);
	rc = nh_write_status(run, NH_P_FAILED, reason, r->message);
	if (rc == 0 || rc == -ENOENT || rc == -ESTALE)
		nh_mark_final(run);
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
