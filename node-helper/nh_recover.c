/*
 * nh_recover.c - what the runner does at start with the journal's records
 * (see nh_job.h nh_runner_recover and docs/node-helper.md "Failure modes").
 */
#include "nh_run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "art.h"
#include "fsutil.h"
#include "log.h"
#include "nh_util.h"

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
	nh_runner_prune(rn);
out:
	free(uids);
	free(r);
	return rc;
}

