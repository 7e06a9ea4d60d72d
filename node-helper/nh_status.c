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
#include "nh_util.h"

static json_object *nh_new_cond(const struct nh_cond *c, const char *ltt, int64_t generation)
{
	json_object *o = json_object_new_object();
	int rc = 0;

	if (!o)
		return NULL;
	NH_ADD(o, "type", json_object_new_string(c->type));
	NH_ADD(o, "status", json_object_new_string(c->status));
	NH_ADD(o, "reason", json_object_new_string(c->reason));
	NH_ADD(o, "message", json_object_new_string(c->message ? c->message : ""));
	NH_ADD(o, "lastTransitionTime", json_object_new_string(ltt));
	NH_ADD(o, "observedGeneration", json_object_new_int64(generation));
out:
	if (rc) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int nh_conditions_build(json_object *current, const struct nh_cond *set, size_t n,
			int64_t generation, const char *now, json_object **out)
{
	json_object *arr = json_object_new_array();
	bool *used = NULL;
	size_t cur_n = 0;
	int rc = 0;

	*out = NULL;
	if (!arr)
		return -ENOMEM;
	if (current && json_object_is_type(current, json_type_array))
		cur_n = json_object_array_length(current);
	used = calloc(n ? n : 1, sizeof(*used));
	if (!used) {
		rc = -ENOMEM;
		goto out;
	}
	/* Keep the order of existing conditions; replace ours in place. */
	for (size_t i = 0; i < cur_n; i++) {
		json_object *c = json_object_array_get_idx(current, i);
		const char *type = kc_json_str(c, "type");
		size_t k;

		if (!type)
			continue;
		for (k = 0; k < n; k++)
			if (strcmp(type, set[k].type) == 0)
				break;
		if (k == n) {
			NH_ADDA(arr, json_object_get(c));
			continue;
		}
		if (used[k])
			continue; /* duplicate type in the CR: drop it */
		{
			const char *old_status = kc_json_str(c, "status");
			const char *old_ltt = kc_json_str(c, "lastTransitionTime");
			const char *ltt = (old_status && old_ltt && strcmp(old_status, set[k].status) == 0)
						  ? old_ltt
						  : now;
			NH_ADDA(arr, nh_new_cond(&set[k], ltt, generation));
			used[k] = true;
		}
	}
	for (size_t k = 0; k < n; k++)
		if (!used[k])
			NH_ADDA(arr, nh_new_cond(&set[k], now, generation));
	*out = arr;
	arr = NULL;
out:
	free(used);
	json_object_put(arr);
	return rc;
}

/* {"metadata":{"resourceVersion":rv},"status":{"observedGeneration":g,"conditions":[...]}} */
static int nh_patch_base(json_object *cr, const struct nh_cond *set, size_t n, const char *now,
			 json_object **patch, json_object **status)
{
	json_object *p = json_object_new_object(), *meta = NULL, *st = NULL, *conds = NULL;
	const char *rv = kc_json_str(cr, "metadata.resourceVersion");
	int64_t gen = kc_json_int64(cr, "metadata.generation", 0, NULL);
	int rc = 0;

	*patch = NULL;
	*status = NULL;
	if (!p)
		return -ENOMEM;
	meta = json_object_new_object();
	NH_ADD(p, "metadata", meta);
	if (rv)
		NH_ADD(meta, "resourceVersion", json_object_new_string(rv));
	st = json_object_new_object();
	NH_ADD(p, "status", st);
	NH_ADD(st, "observedGeneration", json_object_new_int64(gen));
	rc = nh_conditions_build(kc_json_get(cr, "status.conditions"), set, n, gen, now, &conds);
	if (rc)
		goto out;
	NH_ADD(st, "conditions", conds);
	*patch = p;
	*status = st;
	p = NULL;
out:
	json_object_put(p);
	return rc;
}

int nh_status_running(json_object *cr, const char *message, const char *now, json_object **patch)
{
	const struct nh_cond set[] = {
		{ "Ready", "False", "CheckpointInProgress", message },
		{ "Reconciling", "True", "CheckpointInProgress", message }, /* kstatus: InProgress */
	};
	json_object *st = NULL;
	int rc;

	rc = nh_patch_base(cr, set, 2, now, patch, &st);
	if (rc)
		goto out;
	NH_ADD(st, "phase", json_object_new_string("Running"));
	NH_ADD(st, "message", json_object_new_string(message));
out:
	if (rc) {
		json_object_put(*patch);
		*patch = NULL;
	}
	return rc;
}

int nh_status_failed(json_object *cr, const char *reason, const char *message, const char *now,
		     json_object **patch)
{
	const struct nh_cond set[] = {
		{ "Ready", "False", "CheckpointFailed", message },
		{ "Stalled", "True", reason, message },
		{ "Reconciling", "False", reason, message },
	};
	json_object *st = NULL;
	int rc;

	rc = nh_patch_base(cr, set, 3, now, patch, &st);
	if (rc)
		goto out;
	NH_ADD(st, "phase", json_object_new_string("Failed"));
	NH_ADD(st, "message", json_object_new_string(message));
	NH_ADD(st, "completionTime", json_object_new_string(now));
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
	struct nh_cond set[3];
	json_object *st = NULL, *loc = NULL, *nl = NULL, *art = NULL, *arr = NULL;
	int rc;

	nh_success_message(r, msg, sizeof(msg));
	set[0] = (struct nh_cond){ "Ready", "True", "CheckpointCompleted", msg };
	set[1] = (struct nh_cond){ "Stalled", "False", "CheckpointCompleted", "" };
	set[2] = (struct nh_cond){ "Reconciling", "False", "CheckpointCompleted", "" };
	rc = nh_patch_base(cr, set, 3, now, patch, &st);
	if (rc)
		goto out;
	NH_ADD(st, "phase", json_object_new_string("Succeeded"));
	NH_ADD(st, "message", json_object_new_string(msg));
	NH_ADD(st, "nodeName", json_object_new_string(r->job.node));
	if (r->pod_uid[0])
		NH_ADD(st, "podUID", json_object_new_string(r->pod_uid));
	NH_ADD(st, "completionTime",
	    json_object_new_string(r->completion_time[0] ? r->completion_time : now));
	NH_ADD(st, "podDeleted", json_object_new_boolean(r->pod_deleted));
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
