/*
 * pst.c - phases, the terminal guard, the condition merge and the status
 * patch builders (see pst.h and docs/status.md).
 */
#include "pst.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc.h"

static const char *const phase_names[] = { "", "Pending", "Running", "Succeeded", "Failed" };

const char *pst_phase_name(enum pst_phase p)
{
	if ((unsigned)p >= sizeof(phase_names) / sizeof(phase_names[0]))
		return "";
	return phase_names[p];
}

int pst_phase_parse(const char *s, enum pst_phase *out)
{
	*out = PST_NONE;
	if (!s)
		return 0;
	for (size_t i = 0; i < sizeof(phase_names) / sizeof(phase_names[0]); i++) {
		if (strcmp(s, phase_names[i]) == 0) {
			*out = (enum pst_phase)i;
			return 0;
		}
	}
	return -EINVAL;
}

enum pst_phase pst_cr_phase(json_object *cr)
{
	enum pst_phase p;

	if (pst_phase_parse(kc_json_str(cr, "status.phase"), &p) != 0)
		return PST_PENDING;
	return p;
}

const char *pst_verdict_name(enum pst_verdict v)
{
	switch (v) {
	case PST_WRITABLE:
		return "writable";
	case PST_GONE:
		return "gone";
	case PST_IS_TERMINAL:
		return "terminal";
	case PST_NOT_OURS:
		return "not-ours";
	}
	return "unknown";
}

static bool same(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

enum pst_verdict pst_guard(json_object *cr, const struct pst_expect *e, char *why, size_t cap)
{
	const char *s;
	enum pst_phase p;

	if (why && cap)
		why[0] = '\0';
	if (!cr) {
		if (why)
			snprintf(why, cap, "the PodCheckpoint no longer exists");
		return PST_GONE;
	}
	s = kc_json_str(cr, "metadata.uid");
	if (e->uid && !same(s, e->uid)) {
		if (why)
			snprintf(why, cap, "the PodCheckpoint was replaced (UID %.64s, expected %.64s)",
				 s ? s : "?", e->uid);
		return PST_GONE;
	}
	p = pst_cr_phase(cr);
	if (pst_terminal(p)) {
		if (why)
			snprintf(why, cap, "the PodCheckpoint is already %s", pst_phase_name(p));
		return PST_IS_TERMINAL;
	}
	s = kc_json_str(cr, "status.nodeName");
	if (e->node && !same(s, e->node)) {
		if (why)
			snprintf(why, cap, "the PodCheckpoint is dispatched to node %.200s, not to %.200s",
				 s && *s ? s : "(none)", e->node);
		return PST_NOT_OURS;
	}
	s = kc_json_str(cr, "status.podUID");
	if (e->pod_uid && !same(s, e->pod_uid)) {
		if (why)
			snprintf(why, cap, "the PodCheckpoint names pod UID %.64s, not %.64s",
				 s && *s ? s : "(none)", e->pod_uid);
		return PST_NOT_OURS;
	}
	return PST_WRITABLE;
}

/* ---------------------------------------------------------------- conditions */

static json_object *new_cond(const struct pst_cond *c, const char *ltt, int64_t generation)
{
	json_object *o = json_object_new_object();
	int rc = 0;

	if (!o)
		return NULL;
	KC_JSON_ADD(o, "type", json_object_new_string(c->type));
	KC_JSON_ADD(o, "status", json_object_new_string(c->status));
	KC_JSON_ADD(o, "reason", json_object_new_string(c->reason));
	KC_JSON_ADD(o, "message", json_object_new_string(c->message ? c->message : ""));
	KC_JSON_ADD(o, "lastTransitionTime", json_object_new_string(ltt));
	KC_JSON_ADD(o, "observedGeneration", json_object_new_int64(generation));
out:
	if (rc) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int pst_conditions_merge(json_object *current, const struct pst_cond *set, size_t n,
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
		const char *old_status, *old_ltt;
		size_t k;

		if (!type)
			continue;
		for (k = 0; k < n; k++)
			if (strcmp(type, set[k].type) == 0)
				break;
		if (k == n) {
			KC_JSON_ADDA(arr, json_object_get(c));
			continue;
		}
		if (used[k])
			continue; /* duplicate type in the CR: drop it */
		used[k] = true;
		if (!set[k].status)
			continue; /* dropped */
		old_status = kc_json_str(c, "status");
		old_ltt = kc_json_str(c, "lastTransitionTime");
		KC_JSON_ADDA(arr, new_cond(&set[k], same(old_status, set[k].status) && old_ltt ? old_ltt : now,
				       generation));
	}
	for (size_t k = 0; k < n; k++)
		if (!used[k] && set[k].status)
			KC_JSON_ADDA(arr, new_cond(&set[k], now, generation));
	*out = arr;
	arr = NULL;
out:
	free(used);
	json_object_put(arr);
	return rc;
}

/* ---------------------------------------------------------------- patches */

int pst_clear_progress(json_object *status)
{
	/* JSON merge patch: null removes the field */
	return json_object_object_add(status, "progress", NULL) == 0 ? 0 : -ENOMEM;
}

struct pst_cond pst_reconciling(enum pst_phase phase, const char *reason, const char *message)
{
	return (struct pst_cond){ "Reconciling", pst_terminal(phase) ? "False" : "True",
				  reason && *reason ? reason : pst_phase_name(phase), message };
}

int pst_patch_new(json_object *cr, enum pst_phase phase, const char *message,
		  const struct pst_cond *set, size_t n, const char *now, json_object **patch,
		  json_object **status)
{
	json_object *p = NULL, *meta = NULL, *st = NULL, *conds = NULL;
	const char *rv = kc_json_str(cr, "metadata.resourceVersion");
	int64_t gen = kc_json_int64(cr, "metadata.generation", 0, NULL);
	struct pst_cond all[8];
	int rc = 0;

	*patch = NULL;
	*status = NULL;
	if (n >= sizeof(all) / sizeof(all[0]))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		all[i] = set[i];
	all[n] = pst_reconciling(phase, n ? set[0].reason : NULL, message);
	p = json_object_new_object();
	if (!p)
		return -ENOMEM;
	meta = json_object_new_object();
	KC_JSON_ADD(p, "metadata", meta);
	if (rv && *rv)
		KC_JSON_ADD(meta, "resourceVersion", json_object_new_string(rv));
	st = json_object_new_object();
	KC_JSON_ADD(p, "status", st);
	KC_JSON_ADD(st, "phase", json_object_new_string(pst_phase_name(phase)));
	KC_JSON_ADD(st, "observedGeneration", json_object_new_int64(gen));
	KC_JSON_ADD(st, "message", json_object_new_string(message ? message : ""));
	rc = pst_conditions_merge(kc_json_get(cr, "status.conditions"), all, n + 1, gen, now, &conds);
	if (rc)
		goto out;
	KC_JSON_ADD(st, "conditions", conds);
	*patch = p;
	*status = st;
	p = NULL;
out:
	json_object_put(p);
	return rc;
}

int pst_patch_pending(json_object *cr, const char *reason, const char *message, const char *now,
		      json_object **patch, json_object **status)
{
	const struct pst_cond set[] = {
		{ "Ready", "False", reason && *reason ? reason : "Pending", message },
		{ "Stalled", NULL, NULL, NULL },
	};
	return pst_patch_new(cr, PST_PENDING, message, set, 2, now, patch, status);
}

int pst_patch_running(json_object *cr, const char *message, const char *now,
		      json_object **patch, json_object **status)
{
	const struct pst_cond set[] = {
		{ "Ready", "False", "CheckpointInProgress", message },
		{ "Stalled", NULL, NULL, NULL },
	};
	return pst_patch_new(cr, PST_RUNNING, message, set, 2, now, patch, status);
}

int pst_patch_failed(json_object *cr, const char *reason, const char *message, const char *now,
		     json_object **patch, json_object **status)
{
	const struct pst_cond set[] = {
		{ "Ready", "False", "CheckpointFailed", message },
		{ "Stalled", "True", reason, message },
	};
	int rc = pst_patch_new(cr, PST_FAILED, message, set, 2, now, patch, status);

	if (rc == 0)
		rc = pst_clear_progress(*status);
	if (rc == 0) {
		rc = kc_json_set(*status, "completionTime", json_object_new_string(now));
		if (rc) {
			json_object_put(*patch);
			*patch = NULL;
			*status = NULL;
		}
	}
	return rc;
}

int pst_patch_succeeded(json_object *cr, const char *message, const char *completion,
			const char *now, json_object **patch, json_object **status)
{
	const struct pst_cond set[] = {
		{ "Ready", "True", "CheckpointCompleted", message },
		{ "Stalled", "False", "CheckpointCompleted", "" },
	};
	int rc = pst_patch_new(cr, PST_SUCCEEDED, message, set, 2, now, patch, status);

	if (rc == 0)
		rc = pst_clear_progress(*status);
	if (rc == 0) {
		rc = kc_json_set(*status, "completionTime",
				 json_object_new_string(completion && *completion ? completion : now));
		if (rc) {
			json_object_put(*patch);
			*patch = NULL;
			*status = NULL;
		}
	}
	return rc;
}
