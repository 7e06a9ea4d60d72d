/*
 * ctl_observe.c - pure JSON glue around the decision: PodCheckpoint / Pod /
 * Secret objects into struct ctl_obs, and a decision into the merge patches
 * the I/O layer sends. No I/O, no clock.
 */
#include "ctl_reconcile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc.h"
#include "pst.h"

_Static_assert((int)CTL_PHASE_FAILED == (int)PST_FAILED && (int)CTL_PHASE_PENDING == (int)PST_PENDING,
	       "ctl_phase mirrors pst_phase");

static bool jbool(json_object *obj, const char *dotted, bool dflt)
{
	json_object *v = kc_json_get(obj, dotted);

	if (!v || !json_object_is_type(v, json_type_boolean))
		return dflt;
	return json_object_get_boolean(v);
}

static int64_t jtime(json_object *obj, const char *dotted)
{
	int64_t ms = 0;
	const char *s = kc_json_str(obj, dotted);

	if (!s || kc_time_parse(s, &ms) != 0)
		return 0;
	return ms;
}

int ctl_obs_from_pcp(struct ctl_obs *o, json_object *pcp)
{
	json_object *v;
	bool present;
	const char *s;

	memset(o, 0, sizeof(*o));
	if (!pcp || !json_object_is_type(pcp, json_type_object))
		return -EINVAL;
	ctl_copy(o->ns, sizeof(o->ns), kc_json_str(pcp, "metadata.namespace"));
	ctl_copy(o->name, sizeof(o->name), kc_json_str(pcp, "metadata.name"));
	ctl_copy(o->uid, sizeof(o->uid), kc_json_str(pcp, "metadata.uid"));
	if (!o->name[0])
		return -EINVAL;
	o->generation = kc_json_int64(pcp, "metadata.generation", 0, NULL);
	o->creation_ms = jtime(pcp, "metadata.creationTimestamp");
	o->deletion_ms = jtime(pcp, "metadata.deletionTimestamp");
	o->deleting = kc_json_get(pcp, "metadata.deletionTimestamp") != NULL;
	v = kc_json_get(pcp, "metadata.finalizers");
	if (v && json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			const char *f = json_object_get_string(json_object_array_get_idx(v, i));

			if (f && strcmp(f, CTL_FINALIZER) == 0)
				o->has_finalizer = true;
		}
	}

	ctl_copy(o->pod_name, sizeof(o->pod_name), kc_json_str(pcp, "spec.podName"));
	ctl_copy(o->spec_pod_uid, sizeof(o->spec_pod_uid), kc_json_str(pcp, "spec.podUID"));
	v = kc_json_get(pcp, "spec.containers");
	if (v && json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v) && o->nspec_containers < CTL_MAX_CONTAINERS; i++) {
			s = json_object_get_string(json_object_array_get_idx(v, i));
			if (s && *s)
				ctl_copy(o->spec_containers[o->nspec_containers++], CTL_NAME_MAX, s);
		}
	}
	o->timeout_seconds = (int)kc_json_int64(pcp, "spec.timeoutSeconds", 300, NULL);
	if (o->timeout_seconds < 1 || o->timeout_seconds > 3600)
		o->timeout_seconds = 300;
	o->leave_running = jbool(pcp, "spec.leaveRunning", true);
	o->encrypt = jbool(pcp, "spec.encrypt", false);
	ctl_copy(o->secret_name, sizeof(o->secret_name), kc_json_str(pcp, "spec.encryptionSecret"));
	s = kc_json_str(pcp, "spec.deletionPolicy");
	o->policy_delete = s && strcmp(s, "Delete") == 0;
	o->ttl_seconds = kc_json_int64(pcp, "spec.ttlSecondsAfterFinished", 0, &present);
	o->has_ttl = present && o->ttl_seconds >= 0;

	if (ctl_phase_parse(kc_json_str(pcp, "status.phase"), &o->phase) != 0)
		o->phase = CTL_PHASE_PENDING; /* unknown phase: treat as not terminal */
	o->observed_generation = kc_json_int64(pcp, "status.observedGeneration", 0, NULL);
	ctl_copy(o->st_node, sizeof(o->st_node), kc_json_str(pcp, "status.nodeName"));
	ctl_copy(o->st_pod_uid, sizeof(o->st_pod_uid), kc_json_str(pcp, "status.podUID"));
	ctl_copy(o->st_message, sizeof(o->st_message), kc_json_str(pcp, "status.message"));
	o->dispatch_ms = jtime(pcp, "status.dispatchTime");
	o->start_ms = jtime(pcp, "status.startTime");
	o->deleting_pod = jbool(pcp, "status.deletingPod", false);
	ctl_copy(o->st_recipient_fp, sizeof(o->st_recipient_fp),
	     kc_json_str(pcp, "status.recipientFingerprint"));
	o->completion_ms = jtime(pcp, "status.completionTime");
	s = kc_json_str(pcp, "status.artifact.path");
	if (!s)
		s = kc_json_str(pcp, "status.checkpointLocation.nodeLocal.path");
	ctl_copy(o->artifact_path, sizeof(o->artifact_path), s);
	v = kc_json_get(pcp, "status.conditions");
	if (v && json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *c = json_object_array_get_idx(v, i);

			s = kc_json_str(c, "type");
			if (!s || strcmp(s, "Ready") != 0)
				continue;
			ctl_copy(o->ready_status, sizeof(o->ready_status), kc_json_str(c, "status"));
			ctl_copy(o->ready_reason, sizeof(o->ready_reason), kc_json_str(c, "reason"));
			o->ready_transition_ms = jtime(c, "lastTransitionTime");
		}
	}
	return 0;
}

void ctl_obs_set_pod(struct ctl_obs *o, json_object *pod)
{
	json_object *v;

	o->pod_exists = pod != NULL;
	o->pod_uid[0] = o->pod_phase[0] = o->pod_node[0] = '\0';
	o->pod_deleting = false;
	o->npod_containers = 0;
	if (!pod)
		return;
	ctl_copy(o->pod_uid, sizeof(o->pod_uid), kc_json_str(pod, "metadata.uid"));
	ctl_copy(o->pod_phase, sizeof(o->pod_phase), kc_json_str(pod, "status.phase"));
	ctl_copy(o->pod_node, sizeof(o->pod_node), kc_json_str(pod, "spec.nodeName"));
	o->pod_deleting = kc_json_get(pod, "metadata.deletionTimestamp") != NULL;
	v = kc_json_get(pod, "spec.containers");
	if (v && json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v) && o->npod_containers < CTL_MAX_CONTAINERS; i++) {
			const char *s = kc_json_str(json_object_array_get_idx(v, i), "name");

			if (s && *s)
				ctl_copy(o->pod_containers[o->npod_containers++], CTL_NAME_MAX, s);
		}
	}
	/* Native sidecars (restartPolicy Always) can be checkpointed too. */
	v = kc_json_get(pod, "spec.initContainers");
	if (v && json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v) && o->npod_containers < CTL_MAX_CONTAINERS; i++) {
			json_object *c = json_object_array_get_idx(v, i);
			const char *s = kc_json_str(c, "name"), *rp = kc_json_str(c, "restartPolicy");

			if (s && *s && rp && strcmp(rp, "Always") == 0)
				ctl_copy(o->pod_containers[o->npod_containers++], CTL_NAME_MAX, s);
		}
	}
}

int ctl_obs_set_secret(struct ctl_obs *o, json_object *secret, char **pem, size_t *pem_len)
{
	json_object *data, *crt = NULL;
	const char *b64;
	int rc;

	*pem = NULL;
	*pem_len = 0;
	o->secret_exists = secret != NULL;
	o->secret_type[0] = '\0';
	o->cert = CTL_CERT_UNCHECKED;
	if (!secret)
		return 0;
	ctl_copy(o->secret_type, sizeof(o->secret_type), kc_json_str(secret, "type"));
	data = kc_json_get(secret, "data");
	/* Only tls.crt: tls.key is never looked at. */
	if (data && json_object_is_type(data, json_type_object))
		json_object_object_get_ex(data, "tls.crt", &crt);
	b64 = crt && json_object_is_type(crt, json_type_string) ? json_object_get_string(crt) : NULL;
	if (!b64 || !*b64) {
		o->cert = CTL_CERT_MISSING;
		return 0;
	}
	rc = kc_base64_decode(b64, strlen(b64), pem, pem_len);
	if (rc == -EINVAL) {
		o->cert = CTL_CERT_MISSING;
		return 0;
	}
	return rc;
}

void ctl_other_from_pcp(struct ctl_other *x, json_object *pcp)
{
	enum ctl_phase ph = CTL_PHASE_NONE;

	memset(x, 0, sizeof(*x));
	x->name = kc_json_str(pcp, "metadata.name");
	x->creation_ms = jtime(pcp, "metadata.creationTimestamp");
	{
		const char *node = kc_json_str(pcp, "status.nodeName");
		x->dispatched = node && *node;
	}
	if (ctl_phase_parse(kc_json_str(pcp, "status.phase"), &ph) != 0)
		ph = CTL_PHASE_PENDING;
	x->terminal = ctl_phase_terminal(ph);
	x->deleting = kc_json_get(pcp, "metadata.deletionTimestamp") != NULL;
}

/* ---------------------------------------------------------------- patches */

int ctl_status_patch(const struct ctl_decision *d, json_object *existing_conditions,
		     const char *resource_version, int64_t now_ms, json_object **out)
{
	const struct ctl_status_out *s = &d->status;
	json_object *patch = json_object_new_object();
	json_object *status = json_object_new_object();
	json_object *meta = NULL, *conds = NULL;
	struct pst_cond set[3];
	char ts[32], now[32];
	int rc = -ENOMEM;

	if (!patch || !status) {
		json_object_put(status);
		goto out;
	}
	rc = kc_json_set(patch, "status", status);
	if (rc)
		goto out;
	if (resource_version && *resource_version) {
		meta = json_object_new_object();
		rc = kc_json_set(patch, "metadata", meta);
		if (!rc)
			rc = kc_json_set_str(meta, "resourceVersion", resource_version);
		if (rc)
			goto out;
	}
	rc = kc_json_set_str(status, "phase", pst_phase_name((enum pst_phase)s->phase));
	if (!rc)
		rc = kc_json_set_str(status, "message", s->message);
	if (!rc)
		rc = kc_json_set(status, "observedGeneration", json_object_new_int64(s->observed_generation));
	if (rc)
		goto out;
	if (s->set_dispatch) {
		kc_time_rfc3339(s->dispatch_ms / 1000, ts);
		rc = kc_json_set_str(status, "nodeName", s->node_name);
		if (!rc)
			rc = kc_json_set_str(status, "podUID", s->pod_uid);
		if (!rc)
			rc = kc_json_set_str(status, "dispatchTime", ts);
		if (!rc && s->recipient_fp[0])
			rc = kc_json_set_str(status, "recipientFingerprint", s->recipient_fp);
		if (rc)
			goto out;
	}
	if (pst_terminal((enum pst_phase)s->phase)) {
		rc = pst_clear_progress(status);
		if (rc)
			goto out;
	}
	if (s->completion_ms > 0) {
		kc_time_rfc3339(s->completion_ms / 1000, ts);
		rc = kc_json_set_str(status, "completionTime", ts);
		if (rc)
			goto out;
	}
	/* The list is replaced as a whole by a merge patch: the shared merge. */
	set[0] = (struct pst_cond){ "Ready", s->ready_true ? "True" : "False", s->ready_reason,
				    s->message };
	set[1] = (struct pst_cond){ "Stalled", s->stalled ? "True" : NULL, s->stalled_reason,
				    s->message };
	set[2] = pst_reconciling((enum pst_phase)s->phase, s->ready_reason, s->message);
	kc_time_rfc3339(now_ms / 1000, now);
	rc = pst_conditions_merge(existing_conditions, set, 3, s->observed_generation, now, &conds);
	if (!rc)
		rc = kc_json_set(status, "conditions", conds);
	if (rc)
		goto out;
	*out = patch;
	patch = NULL;
	rc = 0;
out:
	json_object_put(patch);
	return rc;
}

int ctl_finalizer_patch(json_object *pcp, bool add, json_object **out)
{
	json_object *patch = json_object_new_object();
	json_object *meta = json_object_new_object();
	json_object *list = json_object_new_array();
	json_object *cur = kc_json_get(pcp, "metadata.finalizers");
	const char *rv = kc_json_str(pcp, "metadata.resourceVersion");
	bool have = false;
	int rc = -ENOMEM;

	if (!patch || !meta || !list) {
		json_object_put(meta);
		json_object_put(list);
		goto out;
	}
	rc = kc_json_set(patch, "metadata", meta);
	if (!rc)
		rc = kc_json_set(meta, "finalizers", list);
	else
		json_object_put(list);
	if (rc)
		goto out;
	if (cur && json_object_is_type(cur, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(cur); i++) {
			json_object *f = json_object_array_get_idx(cur, i);
			const char *s = json_object_get_string(f);

			if (s && strcmp(s, CTL_FINALIZER) == 0) {
				if (!add || have)
					continue;
				have = true;
			}
			rc = kc_json_append(list, json_object_get(f));
			if (rc)
				goto out;
		}
	}
	if (add && !have) {
		rc = kc_json_append(list, json_object_new_string(CTL_FINALIZER));
		if (rc)
			goto out;
	}
	if (rv && *rv) {
		rc = kc_json_set_str(meta, "resourceVersion", rv);
		if (rc)
			goto out;
	}
	*out = patch;
	patch = NULL;
	rc = 0;
out:
	json_object_put(patch);
	return rc;
}
