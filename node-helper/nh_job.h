/*
 * nh_job.h - the job runner: --max-parallel-jobs runner threads ("slots",
 * default 4) fed by one queue of --max-queued-jobs (default 64). A new job
 * is journaled `accepted` and answered queued; a slot picks it within
 * milliseconds when one is free. Beyond max-queued-jobs waiting (plus the
 * idle slots) a new job is answered busy and nothing is journaled. Two jobs
 * of the same pod never run together: the pod is known once the CR is read,
 * and a job whose pod another slot holds goes back to the head of the queue
 * untouched ("parked") until that slot lets go. Each step is written to the
 * journal before the next begins; progress goes to the channel through the
 * notify callback.
 *
 * Deadlines: the wait for a slot counts from the accept, parked time
 * included: a job not started --max-queue-wait-seconds after it was accepted
 * is failed QueueTimeout (guarded) without starting. Once started, every
 * kubelet call has its own deadline (timeoutSeconds + margin) and the
 * controller's Timeout counts from status.startTime.
 *
 * A job from the channel is only an identity (uid, namespace, name, and the
 * recipient certificate). The runner reads the PodCheckpoint and acts only
 * when it was dispatched to this node (status.nodeName), is not terminal,
 * and its pod's UID is status.podUID; pod, containers, leaveRunning,
 * encrypt and timeoutSeconds come from the CR, and the certificate's
 * fingerprint must be status.recipientFingerprint. A job that disagrees is
 * dropped (journal record removed, answer refused), nothing is written.
 *
 * Checkpoint steps: check every selected container runs -> status Running
 * with startTime -> per container: re-read + guard, kubelet call -> bundle
 * (tar, optional CMS) committed durably -> remove the kubelet's plaintext
 * archives -> journal durable -> leaveRunning: status Succeeded -> done;
 * else status Running+deletingPod (the commit point) -> re-read + guard ->
 * delete the pod (UID precondition) -> Succeeded+podDeleted -> done.
 * Any failure: no partial artifact, no plaintext archive, status Failed with
 * the reason, a Warning Event, journal failed. When the guard says no (the
 * CR is gone, terminal or elsewhere) the job stops and writes nothing.
 * A kubelet call given up on (timeout, cancel, shutdown) leaves an entry in
 * the sweeper (nh_sweep.h) that removes its late archive.
 *
 * Threads and ownership (nh_run.h has the fields): submit, resume, cancel
 * and delete-artifact are called from the channel thread; recover before
 * start; a job runs on one slot thread, which owns its kc_client and its
 * kubelet client (one curl handle each). The queue, every slot's current
 * uid/pod and the cancel flags are under the runner's one mutex; the
 * journal (its own mutex; one writer per uid: the slot running it, or the
 * channel thread before it is queued), the sweeper (its own mutex) and the
 * metrics (atomic gauges, per-thread phase laps) are shared by all slots.
 * nh_runner_free aborts every kubelet call in flight and joins.
 */
#ifndef PCP_NH_JOB_H
#define PCP_NH_JOB_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "ch.h"
#include "nh_journal.h"
#include "nh_kubelet.h"
#include "nh_options.h"

struct nh_sweep;

struct kc_config;

struct nh_runner_opts {
	const struct nh_options *opt; /* borrowed */
	struct kc_config *cfg;        /* borrowed */
	struct nh_journal *journal;   /* borrowed */
	nh_token_fn kubelet_token;    /* the helper's own SA token for the kubelet */
	void *kubelet_token_arg;
	void (*notify)(void *arg, const struct ch_state *st); /* may be NULL */
	void *notify_arg;
	struct nh_sweep *sweep; /* borrowed, may be NULL (no late-archive sweeping) */
};

struct nh_runner;

int nh_runner_new(const struct nh_runner_opts *opts, struct nh_runner **out, char *err,
		  size_t errlen);
/* Starts the slot threads. */
int nh_runner_start(struct nh_runner *rn);
/* Stops (aborting a kubelet call in flight), joins, frees. NULL ok. */
void nh_runner_free(struct nh_runner *rn);

/*
 * Journals a new checkpoint job as accepted and queues it (the certificate
 * PEM is copied). -EBUSY when max-queued-jobs wait beyond the idle slots
 * (nothing journaled).
 */
int nh_runner_submit(struct nh_runner *rn, const struct ch_job *job);
/* cancel: the controller failed the CR. The running job's kubelet call is
 * aborted and the job stops (its archive is swept); a queued new job leaves
 * the queue and its journal record (it never started); a queued resume
 * stays (it reads its terminal CR and cleans up). 0, or -ENOENT when uid is
 * not queued/running. */
int nh_runner_cancel(struct nh_runner *rn, const char *uid);
/* Queues the continuation of a journaled job (durable or later). -EBUSY when
 * full, -EALREADY when it is already queued or running. */
int nh_runner_resume(struct nh_runner *rn, const char *uid);
/* At start: fails jobs interrupted before `durable` (reason Interrupted,
 * kubelet archives removed) and queues the continuation of later ones. */
int nh_runner_recover(struct nh_runner *rn);

/*
 * delete-artifact, for a CR that is gone or being deleted (`cr`: the CR as
 * just read, NULL when it is gone): removes only the path the journal
 * recorded for that uid, or, without a record, the path recomputed from
 * namespace/name/uid (.tar and .tar.cms) - never a path from the message;
 * then the journal record. A job still running is answered busy. Fills st.
 */
int nh_delete_artifact(const char *artifact_dir, struct nh_journal *j, const struct ch_job *job,
		       json_object *cr, struct ch_state *st);

/* delete-artifact from the channel: for a CR that is gone, replaced or
 * being deleted, first cancels its job (nh_runner_cancel: a queued one is
 * withdrawn, a running one aborted), then nh_delete_artifact. rn may be NULL. */
int nh_runner_delete_artifact(struct nh_runner *rn, const char *artifact_dir, struct nh_journal *j,
			      const struct ch_job *job, json_object *cr, struct ch_state *st);

/* Maps an art_writer error to StorageFailed or EncryptionFailed. */
const char *nh_writer_reason(int rc, bool encrypt);

/* <artifact_dir>/<ns>/<name>-<uid>.tar[.cms]; -EINVAL for unsafe segments. */
int nh_artifact_path(const char *artifact_dir, const struct nh_jobspec *job, char *buf, size_t cap);

/* Pure parts of a job's start (exposed for tests). */
/* Fills pod, pod_uid (status.podUID), node, containers, timeout,
 * leave_running, encrypt, secret_name from the CR: 0 or -EINVAL. */
int nh_spec_from_cr(json_object *cr, const char *node, struct nh_jobspec *spec);
/* spec->containers empty: all regular containers plus the native sidecars
 * (initContainers with restartPolicy Always) that run. Then every selected
 * container must be a container or native sidecar (ContainerNotFound) and
 * running (ContainerNotRunning) - checked before any is frozen. */
int nh_select_containers(json_object *pod, struct nh_jobspec *spec, char *reason, size_t rcap,
			 char *msg, size_t mcap);

#endif
