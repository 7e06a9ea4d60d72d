/*
 * nh_status.c - status merge patches, conditions and the artifact manifest.
 */
#include "nh_status.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc.h"
#include "pst.h"
#include "nh_util.h"

int nh_status_running(json_object *cr, const char *message, const char *start_time,
		      const char *now, json_object **patch)
{
	json_object *st = NULL;
	int rc;

	rc = pst_patch_running(cr, message, now, patch, &st);
	if (rc)
		return rc;
	/* The checkpoint deadline counts from here, not from the dispatch. */
	if (start_time && *start_time)
		NH_ADD(st, "startTime", json_object_new_string(start_time));
out:
	if (rc) {
		json_object_put(*patch);
		*patch = NULL;
	}
	return rc;
}

int nh_status_add_progress(json_object *patch, const char *container, size_t done, size_t total)
{
	json_object *st = kc_json_get(patch, "status"), *pr = json_object_new_object();
	int rc = 0;

	if (!st) {
		json_object_put(pr);
		return -EINVAL;
	}
	NH_ADD(st, "progress", pr);
	NH_ADD(pr, "container", json_object_new_string(container ? container : ""));
	NH_ADD(pr, "containersDone", json_object_new_int64((int64_t)done));
	NH_ADD(pr, "containersTotal", json_object_new_int64((int64_t)total));
out:
	return rc;
}

int nh_status_progress(json_object *cr, const char *message, const char *container,
		       size_t done, size_t total, const char *now, json_object **patch)
{
	json_object *st = NULL;
	int rc;

	rc = pst_patch_running(cr, message, now, patch, &st);
	if (rc == 0)
		rc = nh_status_add_progress(*patch, container, done, total);
	if (rc) {
		json_object_put(*patch);
		*patch = NULL;
	}
	return rc;
}

int nh_status_failed(json_object *cr, const char *reason, const char *message, const char *now,
		     json_object **patch)
{
	json_object *st = NULL;

	return pst_patch_failed(cr, reason, message, now, patch, &st);
}

/* checkpointLocation, artifact and containers[] of a durable record. */
static int nh_add_artifact(json_object *st, const struct nh_record *r)
{
	json_object *loc = NULL, *nl = NULL, *art = NULL, *arr = NULL;
	int rc = 0;

	loc = json_object_new_object();
	NH_ADD(st, "checkpointLocation", loc);
	NH_ADD(loc, "type", json_object_new_string("NodeLocal"));
	nl = json_object_new_object();
	NH_ADD(loc, "nodeLocal", nl);
	NH_ADD(nl, "nodeName", json_object_new_string(r->job.node));
	NH_ADD(nl, "path", json_object_new_string(r->artifact.path));
	art = json_object_new_object();
	NH_ADD(st, "artifact", art);
	NH_ADD(art, "path", json_object_new_string(r->artifact.path));
	NH_ADD(art, "sizeBytes", json_object_new_int64((int64_t)r->artifact.size_bytes));
	NH_ADD(art, "sha256", json_object_new_string(r->artifact.sha256));
	NH_ADD(art, "encrypted", json_object_new_boolean(r->artifact.encrypted));
	if (r->artifact.encrypted)
		NH_ADD(art, "recipientFingerprint",
		    json_object_new_string(r->artifact.recipient_fingerprint));
	arr = json_object_new_array();
	NH_ADD(st, "containers", arr);
	for (size_t i = 0; i < r->nresults; i++) {
		json_object *c = json_object_new_object();
		NH_ADDA(arr, c);
		NH_ADD(c, "name", json_object_new_string(r->results[i].name));
		NH_ADD(c, "checkpointTime", json_object_new_string(r->results[i].checkpoint_time));
		NH_ADD(c, "sizeBytes", json_object_new_int64((int64_t)r->results[i].size_bytes));
	}
out:
	return rc;
}

int nh_status_deleting_pod(json_object *cr, const struct nh_record *r, const char *now,
			   json_object **patch)
{
	char msg[1024];
	json_object *st = NULL;
	int rc;

	snprintf(msg, sizeof(msg), "The checkpoint is stored at %.600s; deleting pod %s/%.200s (UID %s)",
		 r->artifact.path, r->job.ns, r->job.pod, r->job.pod_uid);
	rc = pst_patch_running(cr, msg, now, patch, &st);
	if (rc)
		return rc;
	NH_ADD(st, "deletingPod", json_object_new_boolean(true));
	rc = nh_add_artifact(st, r);
out:
	if (rc) {
		json_object_put(*patch);
		*patch = NULL;
	}
	return rc;
}

int nh_status_artifact_kept(json_object *cr, const struct nh_record *r, const char *reason,
			    const char *message, const char *now, json_object **patch)
{
	json_object *st = NULL;
	int rc;

	rc = pst_patch_failed(cr, reason, message, now, patch, &st);
	if (rc)
		return rc;
	NH_ADD(st, "deletingPod", json_object_new_boolean(false));
	rc = nh_add_artifact(st, r);
out:
	if (rc) {
		json_object_put(*patch);
		*patch = NULL;
	}
	return rc;
}

void nh_success_message(const struct nh_record *r, char *buf, size_t cap)
{
	double mib = (double)r->artifact.size_bytes / (1024.0 * 1024.0);
	char enc[80] = "";

	if (r->artifact.encrypted)
		snprintf(enc, sizeof(enc), ", encrypted to %.16s", r->artifact.recipient_fingerprint);
	snprintf(buf, cap, "Checkpointed %zu container%s of pod %s/%s to %s (%.1f MiB%s)%s",
		 r->nresults, r->nresults == 1 ? "" : "s", r->job.ns, r->job.pod, r->artifact.path,
		 mib, enc, r->pod_deleted ? "; the pod was deleted" : "");
}

int nh_status_succeeded(json_object *cr, const struct nh_record *r, const char *now,
			json_object **patch)
{
	char msg[1024];
	json_object *st = NULL;
	int rc;

	nh_success_message(r, msg, sizeof(msg));
	rc = pst_patch_succeeded(cr, msg, r->completion_time, now, patch, &st);
	if (rc)
		return rc;
	NH_ADD(st, "podDeleted", json_object_new_boolean(r->pod_deleted));
	if (!r->job.leave_running)
		NH_ADD(st, "deletingPod", json_object_new_boolean(false));
	rc = nh_add_artifact(st, r);
out:
	if (rc) {
		json_object_put(*patch);
		*patch = NULL;
	}
	return rc;
}

int nh_manifest_build(const struct nh_record *r, json_object *pod, const char *created,
		      const char *fingerprint, json_object **out)
{
	json_object *m = json_object_new_object(), *p = NULL, *pc = NULL, *arr = NULL;
	json_object *spec = pod ? kc_json_get(pod, "spec") : NULL;
	int rc = 0;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	NH_ADD(m, "apiVersion", json_object_new_string("checkpointing.dev/v1alpha1"));
	NH_ADD(m, "kind", json_object_new_string("PodCheckpointArtifact"));
	p = json_object_new_object();
	NH_ADD(m, "pod", p);
	NH_ADD(p, "namespace", json_object_new_string(r->job.ns));
	NH_ADD(p, "name", json_object_new_string(r->job.pod));
	NH_ADD(p, "uid", json_object_new_string(r->pod_uid[0] ? r->pod_uid : r->job.pod_uid));
	NH_ADD(m, "node", json_object_new_string(r->job.node));
	pc = json_object_new_object();
	NH_ADD(m, "podCheckpoint", pc);
	NH_ADD(pc, "name", json_object_new_string(r->job.name));
	NH_ADD(pc, "uid", json_object_new_string(r->job.uid));
	NH_ADD(m, "createdTime", json_object_new_string(created));
	if (spec)
		NH_ADD(m, "podSpec", json_object_get(spec));
	arr = json_object_new_array();
	NH_ADD(m, "containers", arr);
	for (size_t i = 0; i < r->nresults; i++) {
		const struct nh_cresult *c = &r->results[i];
		json_object *e = json_object_new_object();
		NH_ADDA(arr, e);
		NH_ADD(e, "name", json_object_new_string(c->name));
		NH_ADD(e, "archive", json_object_new_string(nh_basename(c->archive)));
		NH_ADD(e, "sha256", json_object_new_string(c->sha256));
		NH_ADD(e, "sizeBytes", json_object_new_int64((int64_t)c->size_bytes));
		NH_ADD(e, "checkpointTime", json_object_new_string(c->checkpoint_time));
	}
	NH_ADD(m, "encrypted", json_object_new_boolean(r->job.encrypt));
	if (r->job.encrypt && fingerprint)
		NH_ADD(m, "recipientFingerprint", json_object_new_string(fingerprint));
	*out = m;
	m = NULL;
out:
	json_object_put(m);
	return rc;
}
