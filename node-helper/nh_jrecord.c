/*
 * nh_jrecord.c - a job record's states and its JSON form (pure, no I/O):
 * state names, the channel view, what to do at start, the round trip.
 * See nh_journal.h; the files and the table are in nh_journal.c.
 */
#include "nh_journal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kc.h"
#include "nh_util.h"

static const char *const nh_jstate_names[] = {
	[NH_J_ACCEPTED] = "accepted",
	[NH_J_CHECKPOINTING] = "checkpointing",
	[NH_J_BUNDLING] = "bundling",
	[NH_J_DURABLE] = "durable",
	[NH_J_STATUS_WRITTEN] = "status-written",
	[NH_J_DELETING_POD] = "deleting-pod",
	[NH_J_POD_DELETED] = "pod-deleted",
	[NH_J_DONE] = "done",
	[NH_J_FAILED] = "failed",
};

#define NH_NSTATES (sizeof(nh_jstate_names) / sizeof(nh_jstate_names[0]))

const char *nh_jstate_name(enum nh_jstate s)
{
	return (size_t)s < NH_NSTATES ? nh_jstate_names[s] : "unknown";
}

int nh_jstate_parse(const char *s, enum nh_jstate *out)
{
	for (size_t i = 0; s && i < NH_NSTATES; i++) {
		if (strcmp(s, nh_jstate_names[i]) == 0) {
			*out = (enum nh_jstate)i;
			return 0;
		}
	}
	return -EINVAL;
}

static enum ch_state_kind nh_kind(enum nh_jstate s)
{
	switch (s) {
	case NH_J_ACCEPTED:
		return CH_QUEUED;
	case NH_J_DONE:
		return CH_SUCCEEDED;
	case NH_J_FAILED:
		return CH_FAILED;
	default:
		return CH_RUNNING;
	}
}

void nh_record_to_ch_state(const struct nh_record *r, struct ch_state *st)
{
	memset(st, 0, sizeof(*st));
	nh_strlcpy(st->uid, r->job.uid, sizeof(st->uid));
	st->state = nh_kind(r->state);
	if (r->state == NH_J_FAILED)
		nh_strlcpy(st->reason, r->reason, sizeof(st->reason));
	nh_strlcpy(st->message, r->message, sizeof(st->message));
	st->bytes = r->state >= NH_J_DURABLE && r->state != NH_J_FAILED ? r->artifact.size_bytes
									  : r->bytes;
	nh_strlcpy(st->container, r->container, sizeof(st->container));
}

enum nh_resume nh_resume_decide(const struct nh_record *r)
{
	if (r->job.op == CH_OP_DELETE_ARTIFACT)
		return NH_RESUME_NOTHING;
	switch (r->state) {
	case NH_J_ACCEPTED:
	case NH_J_CHECKPOINTING:
	case NH_J_BUNDLING:
		return NH_RESUME_INTERRUPTED;
	case NH_J_DURABLE:
	case NH_J_STATUS_WRITTEN:
	case NH_J_DELETING_POD:
	case NH_J_POD_DELETED:
		return NH_RESUME_CONTINUE;
	case NH_J_DONE:
	case NH_J_FAILED:
	default:
		return NH_RESUME_NOTHING;
	}
}

/* ---------------------------------------------------------------- JSON */

int nh_record_to_json(const struct nh_record *r, json_object **out)
{
	json_object *o = json_object_new_object(), *arr = NULL, *art = NULL;
	int rc = 0;

	*out = NULL;
	if (!o)
		return -ENOMEM;
	NH_ADD(o, "version", json_object_new_int(1));
	NH_ADD(o, "uid", json_object_new_string(r->job.uid));
	NH_ADD(o, "op", json_object_new_string(r->job.op == CH_OP_DELETE_ARTIFACT ? "delete-artifact"
									      : "checkpoint"));
	NH_ADD(o, "namespace", json_object_new_string(r->job.ns));
	NH_ADD(o, "name", json_object_new_string(r->job.name));
	NH_ADD(o, "pod", json_object_new_string(r->job.pod));
	NH_ADD(o, "podUID", json_object_new_string(r->job.pod_uid));
	NH_ADD(o, "node", json_object_new_string(r->job.node));
	arr = json_object_new_array();
	if (!arr) {
		rc = -ENOMEM;
		goto out;
	}
	NH_ADD(o, "containers", arr);
	for (size_t i = 0; i < r->job.ncontainers && i < CH_MAX_CONTAINERS; i++)
		NH_ADDA(arr, json_object_new_string(r->job.containers[i]));
	NH_ADD(o, "timeoutSeconds", json_object_new_int(r->job.timeout_seconds));
	NH_ADD(o, "leaveRunning", json_object_new_boolean(r->job.leave_running));
	NH_ADD(o, "encrypt", json_object_new_boolean(r->job.encrypt));
	NH_ADD(o, "secretName", json_object_new_string(r->job.secret_name));
	NH_ADD(o, "state", json_object_new_string(nh_jstate_name(r->state)));
	NH_ADD(o, "reason", json_object_new_string(r->reason));
	NH_ADD(o, "message", json_object_new_string(r->message));
	NH_ADD(o, "livePodUID", json_object_new_string(r->pod_uid));
	NH_ADD(o, "acceptedTime", json_object_new_string(r->accepted_time));
	NH_ADD(o, "completionTime", json_object_new_string(r->completion_time));
	NH_ADD(o, "podDeleted", json_object_new_boolean(r->pod_deleted));
	NH_ADD(o, "startTime", json_object_new_string(r->start_time));
	NH_ADD(o, "kubeletStarted", json_object_new_int64(r->kubelet_started));
	NH_ADD(o, "container", json_object_new_string(r->container));
	NH_ADD(o, "finalWritten", json_object_new_boolean(r->final_written));
	arr = json_object_new_array();
	if (!arr) {
		rc = -ENOMEM;
		goto out;
	}
	NH_ADD(o, "results", arr);
	for (size_t i = 0; i < r->nresults && i < CH_MAX_CONTAINERS; i++) {
		const struct nh_cresult *c = &r->results[i];
		json_object *e = json_object_new_object();
		NH_ADDA(arr, e);
		NH_ADD(e, "name", json_object_new_string(c->name));
		NH_ADD(e, "archive", json_object_new_string(c->archive));
		NH_ADD(e, "checkpointTime", json_object_new_string(c->checkpoint_time));
		NH_ADD(e, "sha256", json_object_new_string(c->sha256));
		NH_ADD(e, "sizeBytes", json_object_new_int64((int64_t)c->size_bytes));
	}
	art = json_object_new_object();
	NH_ADD(o, "artifact", art);
	NH_ADD(art, "path", json_object_new_string(r->artifact.path));
	NH_ADD(art, "sizeBytes", json_object_new_int64((int64_t)r->artifact.size_bytes));
	NH_ADD(art, "sha256", json_object_new_string(r->artifact.sha256));
	NH_ADD(art, "encrypted", json_object_new_boolean(r->artifact.encrypted));
	NH_ADD(art, "recipientFingerprint", json_object_new_string(r->artifact.recipient_fingerprint));
	*out = o;
	o = NULL;
out:
	json_object_put(o);
	return rc;
}

static int nh_get_bool(json_object *o, const char *key, bool *out)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
		return -ENOENT;
	*out = json_object_get_boolean(v);
	return 0;
}

#define COPY(obj, key, field)                                                          \
	do {                                                                           \
		if (nh_json_copy((obj), (key), (field), sizeof(field)) != 0) {          \
			snprintf(err, errlen, "field %s is missing or too long", (key)); \
			rc = -EBADMSG;                                                 \
			goto out;                                                      \
		}                                                                      \
	} while (0)

int nh_record_from_json(json_object *o, struct nh_record *r, char *err, size_t errlen)
{
	json_object *arr = NULL, *art = NULL;
	int rc = 0;
	const char *s;

	memset(r, 0, sizeof(*r));
	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "not a JSON object");
		return -EBADMSG;
	}
	if (kc_json_int64(o, "version", 0, NULL) != 1) {
		snprintf(err, errlen, "unknown journal version");
		return -EBADMSG;
	}
	COPY(o, "uid", r->job.uid);
	s = kc_json_str(o, "op");
	if (s && strcmp(s, "delete-artifact") == 0)
		r->job.op = CH_OP_DELETE_ARTIFACT;
	else if (s && strcmp(s, "checkpoint") == 0)
		r->job.op = CH_OP_CHECKPOINT;
	else {
		snprintf(err, errlen, "field op is missing or unknown");
		rc = -EBADMSG;
		goto out;
	}
	COPY(o, "namespace", r->job.ns);
	COPY(o, "name", r->job.name);
	COPY(o, "pod", r->job.pod);
	COPY(o, "podUID", r->job.pod_uid);
	COPY(o, "node", r->job.node);
	if (!json_object_object_get_ex(o, "containers", &arr) ||
	    !json_object_is_type(arr, json_type_array) ||
	    json_object_array_length(arr) > CH_MAX_CONTAINERS) {
		snprintf(err, errlen, "field containers is missing or too long");
		rc = -EBADMSG;
		goto out;
	}
	r->job.ncontainers = json_object_array_length(arr);
	for (size_t i = 0; i < r->job.ncontainers; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(e, json_type_string) ||
		    nh_strlcpy(r->job.containers[i], json_object_get_string(e),
			       sizeof(r->job.containers[i])) != 0) {
			snprintf(err, errlen, "containers[%zu] is not a valid name", i);
			rc = -EBADMSG;
			goto out;
		}
	}
	r->job.timeout_seconds = (int)kc_json_int64(o, "timeoutSeconds", 0, NULL);
	if (nh_get_bool(o, "leaveRunning", &r->job.leave_running) ||
	    nh_get_bool(o, "encrypt", &r->job.encrypt) ||
	    nh_get_bool(o, "podDeleted", &r->pod_deleted)) {
		snprintf(err, errlen, "a boolean field is missing");
		rc = -EBADMSG;
		goto out;
	}
	COPY(o, "secretName", r->job.secret_name);
	if (nh_jstate_parse(kc_json_str(o, "state"), &r->state) != 0) {
		snprintf(err, errlen, "field state is missing or unknown");
		rc = -EBADMSG;
		goto out;
	}
	COPY(o, "reason", r->reason);
	COPY(o, "message", r->message);
	COPY(o, "livePodUID", r->pod_uid);
	COPY(o, "acceptedTime", r->accepted_time);
	COPY(o, "completionTime", r->completion_time);
	COPY(o, "startTime", r->start_time);
	r->kubelet_started = kc_json_int64(o, "kubeletStarted", 0, NULL);
	COPY(o, "container", r->container);
	if (nh_get_bool(o, "finalWritten", &r->final_written) != 0)
		r->final_written = false; /* a record from before the field: not known */
	if (!json_object_object_get_ex(o, "results", &arr) ||
	    !json_object_is_type(arr, json_type_array) ||
	    json_object_array_length(arr) > CH_MAX_CONTAINERS) {
		snprintf(err, errlen, "field results is missing or too long");
		rc = -EBADMSG;
		goto out;
	}
	r->nresults = json_object_array_length(arr);
	for (size_t i = 0; i < r->nresults; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		struct nh_cresult *c = &r->results[i];
		COPY(e, "name", c->name);
		COPY(e, "archive", c->archive);
		COPY(e, "checkpointTime", c->checkpoint_time);
		COPY(e, "sha256", c->sha256);
		c->size_bytes = (uint64_t)kc_json_int64(e, "sizeBytes", 0, NULL);
	}
	if (!json_object_object_get_ex(o, "artifact", &art) ||
	    !json_object_is_type(art, json_type_object)) {
		snprintf(err, errlen, "field artifact is missing");
		rc = -EBADMSG;
		goto out;
	}
	COPY(art, "path", r->artifact.path);
	COPY(art, "sha256", r->artifact.sha256);
	COPY(art, "recipientFingerprint", r->artifact.recipient_fingerprint);
	r->artifact.size_bytes = (uint64_t)kc_json_int64(art, "sizeBytes", 0, NULL);
	if (nh_get_bool(art, "encrypted", &r->artifact.encrypted)) {
		snprintf(err, errlen, "field artifact.encrypted is missing");
		rc = -EBADMSG;
		goto out;
	}
out:
	return rc;
}
