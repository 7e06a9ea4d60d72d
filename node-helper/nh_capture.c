/*
 * nh_capture.c - the checkpoint proper of one job (see nh_job.h and
 * docs/node-helper.md, steps 3-5): the kubelet call per container, each
 * archive journaled and checked, then the bundle into one durable artifact
 * and the plaintext removed.
 */
#include "nh_run.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "art.h"
#include "fsutil.h"
#include "log.h"
#include "nh_status.h"
#include "nh_util.h"

/* How far after the request the kubelet's name time may lie (connect, TLS). */
#define NH_SWEEP_SLACK_S 10
/* A progress write at most this often: short jobs pay none, long ones are not silent. */
#define NH_PROGRESS_EVERY_MS 2000

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

bool nh_step_kubelet(struct nh_run *run)
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
		/* The CR decides, again, right before the runtime freezes anything:
		 * the answer of the write just made, else a re-read (the previous
		 * container's call was a long wait). */
		rc = nh_cr_current(run);
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
		nh_cr_stale(run); /* a freeze can take minutes: re-read before the next act */
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

bool nh_step_bundle(struct nh_run *run)
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
