/*
 * nh_job.h - the job runner: one worker thread, one job at a time per node,
 * fed by a bounded queue (NH_QUEUE_MAX). Each step is written to the
 * journal before the next begins; progress goes to the channel through the
 * notify callback.
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
 * Threads: submit/resume are called from the channel thread; everything
 * else happens on the worker thread, which owns its kc_client and kubelet
 * client. nh_runner_free aborts a kubelet call in flight and joins.
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
	struct nh_sweep *sweep; /* borrowed, may be NULL (no late-archive sweeping) */
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
/* cancel: the controller failed the CR. The running job's kubelet call is
 * aborted and the job stops (its archive is swept); a queued one finds its
 * CR terminal and does nothing. 0, or -ENOENT when uid is not queued/running. */
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
