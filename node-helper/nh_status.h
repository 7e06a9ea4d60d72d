/*
 * nh_status.h - builds the PodCheckpoint status merge patches the node
 * helper writes (Running, Succeeded, podDeleted, Failed) and the manifest
 * of the artifact. Pure functions: JSON in, JSON out, no I/O.
 *
 * A JSON merge patch replaces arrays whole, so every patch carries the full
 * conditions list: the CR's current conditions with ours replaced or added,
 * lastTransitionTime kept when a condition's status did not change. Every
 * patch carries metadata.resourceVersion (optimistic concurrency) and
 * observedGeneration = metadata.generation of the CR it was built from.
 */
#ifndef PCP_NH_STATUS_H
#define PCP_NH_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "nh_journal.h"

/*
 * The patches are built on lib/status (pst_patch_*): the helper writes
 * phase, message, conditions, startTime, the artifact fields and
 * podDeleted/deletingPod; never nodeName, podUID or recipientFingerprint
 * (the controller's, set at dispatch).
 */

/* phase Running, Ready=False/CheckpointInProgress, message, startTime (when given). */
int nh_status_running(json_object *cr, const char *message, const char *start_time,
		      const char *now, json_object **patch);
/* Running with status.progress {container, containersDone, containersTotal}:
 * a long checkpoint is not silent (kubectl checkpoint create --wait shows it). */
int nh_status_progress(json_object *cr, const char *message, const char *container,
		       size_t done, size_t total, const char *now, json_object **patch);
/* Adds status.progress to a patch built by one of these (0, -EINVAL, -ENOMEM). */
int nh_status_add_progress(json_object *patch, const char *container, size_t done, size_t total);
/* phase Failed, Ready=False/CheckpointFailed, Stalled=True/<reason>, message, completionTime. */
int nh_status_failed(json_object *cr, const char *reason, const char *message, const char *now,
		     json_object **patch);
/* The leaveRunning=false commit point: still Running, deletingPod=true, the
 * artifact recorded; from here the controller does not time the CR out
 * while the helper's Lease is fresh. */
int nh_status_deleting_pod(json_object *cr, const struct nh_record *r, const char *now,
			   json_object **patch);
/* Failed with the artifact recorded (the pod delete failed): deletingPod=false. */
int nh_status_artifact_kept(json_object *cr, const struct nh_record *r, const char *reason,
			    const char *message, const char *now, json_object **patch);
/* phase Succeeded with checkpointLocation, artifact, containers[], completionTime,
 * podDeleted (r->pod_deleted), Ready=True, Stalled=False, message. */
int nh_status_succeeded(json_object *cr, const struct nh_record *r, const char *now,
			json_object **patch);

/* "Checkpointed 2 containers of pod ns/name to <path> (1.5 MiB, encrypted to ab12cd34ef56ab12)" */
void nh_success_message(const struct nh_record *r, char *buf, size_t cap);

/*
 * The artifact's manifest.json: apiVersion checkpointing.dev/v1alpha1, kind
 * PodCheckpointArtifact, pod {namespace, name, uid}, node, podCheckpoint
 * {name, uid}, createdTime, podSpec (the live pod's spec, borrowed from
 * `pod`, may be NULL), containers [{name, archive, sha256, sizeBytes,
 * checkpointTime}] (archive = the kubelet's file name = the tar entry),
 * encrypted, recipientFingerprint.
 */
int nh_manifest_build(const struct nh_record *r, json_object *pod, const char *created,
		      const char *fingerprint, json_object **out);

#endif
