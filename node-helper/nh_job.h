/*
 * nh_job.h - the job runner: one worker thread, one job at a time per node,
 * fed by a bounded queue (NH_QUEUE_MAX). Each step is written to the
 * journal before the next begins; progress goes to the channel through the
 * notify callback.
 *
 * Checkpoint steps: status Running (GET + merge patch with resourceVersion)
 * -> kubelet call per container -> bundle (tar, optional CMS) committed
 * durably -> remove the kubelet's plaintext archives -> journal durable ->
 * status Succeeded -> [delete the pod, UID precondition] -> done.
 * Any failure: no partial artifact, no plaintext archive, status Failed with
 * the reason, a Warning Event, journal failed.
 *
 * Threads: submit/resume are called from the channel thread; everything
 * else happens on the worker thread, which owns its kc_client and kubelet
 * client. nh_runner_free aborts a kubelet call in flight and joins.
 */
#ifndef PCP_NH_JOB_H
#define PCP_NH_JOB_H

#include <stdbool.h>
#include <stddef.h>

#include "ch.h"
#include "nh_journal.h"
#include "nh_kubelet.h"
#include "nh_options.h"

#define NH_QUEUE_MAX 16

struct kc_config;

struct nh_runner_opts {
	const struct nh_options *opt; /* borrowed */
	struct kc_config *cfg;        /* borrowed */
	struct nh_journal *journal;   /* borrowed */
	nh_token_fn kubelet_token;    /* the helper's own SA token for the kubelet */
	void *kubelet_token_arg;
	void (*notify)(void *arg, const struct ch_state *st); /* may be NULL */
	void *notify_arg;
};

struct nh_runner;

int nh_runner_new(const struct nh_runner_opts *opts, struct nh_runner **out, char *err,
		  size_t errlen);
/* Starts the worker thread. */
int nh_runner_start(struct nh_runner *rn);
/* Stops (aborting a kubelet call in flight), joins, frees. NULL ok. */
void nh_runner_free(struct nh_runner *rn);

/*
 * Journals a new checkpoint job as accepted and queues it (the certificate
 * PEM is copied). -EBUSY when the queue is full (nothing journaled).
 */
int nh_runner_submit(struct nh_runner *rn, const struct ch_job *job);
/* Queues the continuation of a journaled job (durable or later). -EBUSY when
 * full, -EALREADY when it is already queued or running. */
int nh_runner_resume(struct nh_runner *rn, const char *uid);
/* At start: fails jobs interrupted before `durable` (reason Interrupted,
 * kubelet archives removed) and queues the continuation of later ones. */
int nh_runner_recover(struct nh_runner *rn);

/*
 * delete-artifact: removes the artifact recorded for the job (journal first,
 * else job->artifact_path) only if it lies under artifact_dir with no ".."
 * segment and its real parent directory is under artifact_dir, then the
 * journal record. Fills st (succeeded, or failed/refused with reason).
 */
int nh_delete_artifact(const char *artifact_dir, struct nh_journal *j, const struct ch_job *job,
		       struct ch_state *st);

/* Maps an art_writer error to StorageFailed or EncryptionFailed. */
const char *nh_writer_reason(int rc, bool encrypt);

/* <artifact_dir>/<ns>/<name>-<uid>.tar[.cms]; -EINVAL for unsafe segments. */
int nh_artifact_path(const char *artifact_dir, const struct ch_job *job, char *buf, size_t cap);

#endif
