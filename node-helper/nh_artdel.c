/*
 * nh_artdel.c - delete-artifact (see nh_job.h).
 */
#include "nh_job.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "kc.h"
#include "log.h"
#include "nh_util.h"

static void nh_set_state(struct ch_state *st, enum ch_state_kind k, const char *reason)
{
	st->state = k;
	nh_strlcpy(st->reason, reason ? reason : "", sizeof(st->reason));
}

/* Unlinks path if it lies under artifact_dir (really): 0, -EPERM, -errno. */
static int nh_unlink_under(const char *artifact_dir, const char *path, bool *removed)
{
	*removed = false;
	if (!nh_path_under(artifact_dir, path))
		return -EPERM;
	if (access(path, F_OK) != 0)
		return 0;
	if (!nh_path_real_under(artifact_dir, path))
		return -EPERM;
	if (unlink(path) != 0)
		return errno == ENOENT ? 0 : -errno;
	fsu_fsync_parent(path);
	*removed = true;
	return 0;
}

int nh_delete_artifact(const char *artifact_dir, struct nh_journal *j, const struct ch_job *job,
		       json_object *cr, struct ch_state *st)
{
	struct nh_record *r = NULL;
	struct nh_jobspec spec;
	char paths[2][4096];
	size_t npaths = 0, nremoved = 0;
	enum nh_jstate js;
	const char *uid = cr ? kc_json_str(cr, "metadata.uid") : NULL;
	int rc = 0;

	memset(st, 0, sizeof(*st));
	nh_strlcpy(st->uid, job->uid, sizeof(st->uid));
	/* Only for a CR that is gone (or replaced) or being deleted. */
	if (cr && uid && strcmp(uid, job->uid) == 0 && !kc_json_get(cr, "metadata.deletionTimestamp")) {
		nh_set_state(st, CH_REFUSED, "NotDeleting");
		snprintf(st->message, sizeof(st->message),
			 "PodCheckpoint %.60s/%.200s is not being deleted; its artifact stays",
			 job->ns, job->name);
		LOG_WARN("msg=\"delete-artifact refused: the CR is not being deleted\" pcp=%s/%s uid=%s",
			 job->ns, job->name, job->uid);
		return -EPERM;
	}
	if (nh_journal_state(j, job->uid, NULL, &js) == 0 && js != NH_J_DONE && js != NH_J_FAILED) {
		nh_set_state(st, CH_BUSY, "Busy");
		snprintf(st->message, sizeof(st->message),
			 "the checkpoint job %s is still running (%s); ask again later", job->uid,
			 nh_jstate_name(js));
		return 0;
	}
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	if (nh_journal_get(j, job->uid, r) == 0 && r->job.uid[0] && strcmp(r->job.ns, job->ns) == 0 &&
	    strcmp(r->job.name, job->name) == 0) {
		if (r->artifact.path[0])
			nh_strlcpy(paths[npaths++], r->artifact.path, sizeof(paths[0]));
	} else {
		/* No record (pruned, or another helper's): the name it would have. */
		memset(&spec, 0, sizeof(spec));
		nh_strlcpy(spec.uid, job->uid, sizeof(spec.uid));
		nh_strlcpy(spec.ns, job->ns, sizeof(spec.ns));
		nh_strlcpy(spec.name, job->name, sizeof(spec.name));
		for (int enc = 0; enc < 2; enc++) {
			spec.encrypt = enc == 1;
			if (nh_artifact_path(artifact_dir, &spec, paths[npaths], sizeof(paths[0])) == 0)
				npaths++;
		}
	}
	for (size_t i = 0; i < npaths; i++) {
		bool removed;

		rc = nh_unlink_under(artifact_dir, paths[i], &removed);
		if (rc == -EPERM) {
			nh_set_state(st, CH_REFUSED, "InvalidPath");
			snprintf(st->message, sizeof(st->message),
				 "refusing to delete %.400s: not a file under %.60s", paths[i], artifact_dir);
			LOG_WARN("msg=\"delete-artifact refused\" pcp=%s/%s uid=%s path=%s", job->ns,
				 job->name, job->uid, paths[i]);
			goto out;
		}
		if (rc) {
			nh_set_state(st, CH_FAILED, "StorageFailed");
			snprintf(st->message, sizeof(st->message), "cannot delete %.400s: %s", paths[i],
				 strerror(-rc));
			goto out;
		}
		if (removed) {
			nremoved++;
			LOG_INFO("msg=\"artifact deleted\" pcp=%s/%s uid=%s step=delete-artifact path=%s",
				 job->ns, job->name, job->uid, paths[i]);
		}
	}
	nh_journal_remove(j, job->uid);
	nh_set_state(st, CH_SUCCEEDED, NULL);
	snprintf(st->message, sizeof(st->message), "Deleted %zu artifact file%s of PodCheckpoint %.60s/%.200s",
		 nremoved, nremoved == 1 ? "" : "s", job->ns, job->name);
	rc = 0;
out:
	free(r);
	return rc;
}

int nh_runner_delete_artifact(struct nh_runner *rn, const char *artifact_dir, struct nh_journal *j,
			      const struct ch_job *job, json_object *cr, struct ch_state *st)
{
	const char *uid = cr ? kc_json_str(cr, "metadata.uid") : NULL;

	/* Only for a CR that is gone, replaced or being deleted (nh_delete_artifact
	 * refuses the others): its job stops first. A queued one leaves the queue
	 * (never started, nothing to remove); a running one is aborted and the
	 * answer is busy until it has stopped and cleaned up. */
	if (rn && (!cr || !uid || strcmp(uid, job->uid) != 0 ||
		   kc_json_get(cr, "metadata.deletionTimestamp")))
		nh_runner_cancel(rn, job->uid);
	return nh_delete_artifact(artifact_dir, j, job, cr, st);
}
