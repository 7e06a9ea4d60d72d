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
#include <time.h>

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

json_object *ctl_json_get(json_object *obj, const char *dotted)
{
	char part[128];
	const char *p = dotted;

	while (obj && p && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		json_object *next = NULL;

		if (n == 0 || n >= sizeof(part))
			return NULL;
		memcpy(part, p, n);
		part[n] = '\0';
		if (!json_object_is_type(obj, json_type_object) ||
		    !json_object_object_get_ex(obj, part, &next))
			return NULL;
		obj = next;
		p = dot ? dot + 1 : NULL;
	}
	return obj;
}

const char *ctl_json_str(json_object *obj, const char *dotted)
{
	json_object *v = ctl_json_get(obj, dotted);

	if (!v || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int64_t jint(json_object *obj, const char *dotted, int64_t dflt, bool *present)
{
	json_object *v = ctl_json_get(obj, dotted);

	if (present)
		*present = false;
	if (!v || !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return dflt;
	if (present)
		*present = true;
	return json_object_get_int64(v);
}

static bool jbool(json_object *obj, const char *dotted, bool dflt)
{
	json_object *v = ctl_json_get(obj, dotted);

	if (!v || !json_object_is_type(v, json_type_boolean))
		return dflt;
	return json_object_get_boolean(v);
}

static int two(const char *s, int *out)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -EINVAL;
	*out = (s[0] - '0') * 10 + (s[1] - '0');
	return 0;
}

int ctl_time_parse(const char *s, int64_t *epoch_ms)
{
	struct tm tm;
	int y1, y2, mo, d, h, mi, sec, ms = 0;
	int64_t off_s = 0;
	const char *p;
	time_t t;

	if (!s || strlen(s) < 20)
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	if (two(s, &y1) || two(s + 2, &y2) || s[4] != '-' || two(s + 5, &mo) || s[7] != '-' ||
	    two(s + 8, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || two(s + 11, &h) ||
	    s[13] != ':' || two(s + 14, &mi) || s[16] != ':' || two(s + 17, &sec))
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	p = s + 19;
	if (*p == '.') {
		int digits = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
		}
		if (digits == 0)
			return -EINVAL;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;

		if (two(p + 1, &oh) || p[3] != ':' || two(p + 4, &om))
			return -EINVAL;
		off_s = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	tm.tm_year = y1 * 100 + y2 - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	*epoch_ms = ((int64_t)t - off_s) * 1000 + ms;
	return 0;
}

void ctl_time_format(int64_t epoch_ms, char buf[32])
{
	time_t t = (time_t)(epoch_ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int64_t jtime(json_object *obj, const char *dotted)
{
	int64_t ms = 0;
	const char *s = ctl_json_str(obj, dotted);

	if (!s || ctl_time_parse(s, &ms) != 0)
		return 0;
	return ms;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int ctl_base64_decode(const char *in, size_t len, char **out, size_t *out_len)
{
	char *buf = malloc(len / 4 * 3 + 4);
	size_t n = 0, pad = 0;
	unsigned acc = 0;
	int bits = 0, rc = 0;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)in[i], v;

		if (c == '\n' || c == '\r' || c == ' ' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		v = b64val(c);
		if (v < 0 || pad) {
			rc = -EINVAL;
			goto out;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (char)((acc >> bits) & 0xffu);
		}
	}
	if (pad > 2 || bits >= 6) {
		rc = -EINVAL;
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	buf = NULL;
out:
	free(buf);
	return rc;
}

int ctl_obs_from_pcp(struct ctl_obs *o, json_object *pcp)
{
	json_object *v;
	bool present;
	const char *s;

	memset(o, 0, sizeof(*o));
	if (!pcp || !json_object_is_type(pcp, json_type_object))
		return -EINVAL;
	copy(o->ns, sizeof(o->ns), ctl_json_str(pcp, "metadata.namespace"));
	copy(o->name, sizeof(o->name), ctl_json_str(pcp, "metadata.name"));
	copy(o->uid, sizeof(o->uid), ctl_json_str(pcp, "metadata.uid"));
	if (!o->name[0])
		return -EINVAL;
	o->generation = jint(pcp, "metadata.generation", 0, NULL);
	o->creation_ms = jtime(pcp, "metadata.creationTimestamp");
	o->deletion_ms = jtime(pcp, "metadata.deletionTimestamp");
	o->deleting = ctl_json_get(pcp, "metadata.deletionTimestamp") != NULL;
	v = ctl_json_get(pcp, "metadata.finalizers");
	if (v && json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			const char *f = json_object_get_string(json_object_array_get_idx(v, i));

			if (f && strcmp(f, CTL_FINALIZER) == 0)
				o->has_finalizer = true;
		}
	}

	copy(o->pod_name, sizeof(o->pod_name), ctl_json_str(pcp, "spec.podName"));
	copy(o->spec_pod_uid, sizeof(o->spec_pod_uid), ctl_json_str(pcp, "spec.podUID"));
	v = ctl_json_get(pcp, "spec.containers");
	if (v && json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v) && o->nspec_containers < CTL_MAX_CONTAINERS; i++) {
			s = json_object_get_string(json_object_array_get_idx(v, i));
			if (s && *s)
				copy(o->spec_containers[o->nspec_containers++], CTL_NAME_MAX, s);
		}
	}
	o->timeout_seconds = (int)jint(pcp, "spec.timeoutSeconds", 300, NULL);
	if (o->timeout_seconds < 1 || o->timeout_seconds > 3600)
		o->timeout_seconds = 300;
	o->leave_running = jbool(pcp, "spec.leaveRunning", true);
	o->encrypt = jbool(pcp, "spec.encrypt", false);
	copy(o->secret_name, sizeof(o->secret_name), ctl_json_str(pcp, "spec.encryptionSecret"));
	s = ctl_json_str(pcp, "spec.deletionPolicy");
	o->policy_delete = s && strcmp(s, "Delete") == 0;
	o->ttl_seconds = jint(pcp, "spec.ttlSecondsAfterFinished", 0, &present);
	o->has_ttl = present && o->ttl_seconds >= 0;

	if (ctl_phase_parse(ctl_json_str(pcp, "status.phase"), &o->phase) != 0)
		o->phase = CTL_PHASE_PENDING; /* unknown phase: treat as not terminal */
	o->observed_generation = jint(pcp, "status.observedGeneration", 0, NULL);
	copy(o->st_node, sizeof(o->st_node), ctl_json_str(pcp, "status.nodeName"));
	copy(o->st_pod_uid, sizeof(o->st_pod_uid), ctl_json_str(pcp, "status.podUID"));
	copy(o->st_message, sizeof(o->st_message), ctl_json_str(pcp, "status.message"));
	o->start_ms = jtime(pcp, "status.startTime");
	o->completion_ms = jtime(pcp, "status.completionTime");
	s = ctl_json_str(pcp, "status.artifact.path");
	if (!s)
		s = ctl_json_str(pcp, "status.checkpointLocation.nodeLocal.path");
	copy(o->artifact_path, sizeof(o->artifact_path), s);
	v = ctl_json_get(pcp, "status.conditions");
	if (v && json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *c = json_object_array_get_idx(v, i);

			s = ctl_json_str(c, "type");
			if (!s || strcmp(s, "Ready") != 0)
				continue;
			copy(o->ready_status, sizeof(o->ready_status), ctl_json_str(c, "status"));
			copy(o->ready_reason, sizeof(o->ready_reason), ctl_json_str(c, "reason"));
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
	copy(o->pod_uid, sizeof(o->pod_uid), ctl_json_str(pod, "metadata.uid"));
	copy(o->pod_phase, sizeof(o->pod_phase), ctl_json_str(pod, "status.phase"));
	copy(o->pod_node, sizeof(o->pod_node), ctl_json_str(pod, "spec.nodeName"));
	o->pod_deleting = ctl_json_get(pod, "metadata.deletionTimestamp") != NULL;
	v = ctl_json_get(pod, "spec.containers");
	if (v && json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v) && o->npod_containers < CTL_MAX_CONTAINERS; i++) {
			const char *s = ctl_json_str(json_object_array_get_idx(v, i), "name");

			if (s && *s)
				copy(o->pod_containers[o->npod_containers++], CTL_NAME_MAX, s);
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
	copy(o->secret_type, sizeof(o->secret_type), ctl_json_str(secret, "type"));
	data = ctl_json_get(secret, "data");
	/* Only tls.crt: tls.key is never looked at. */
	if (data && json_object_is_type(data, json_type_object))
		json_object_object_get_ex(data, "tls.crt", &crt);
	b64 = crt && json_object_is_type(crt, json_type_string) ? json_object_get_string(crt) : NULL;
	if (!b64 || !*b64) {
		o->cert = CTL_CERT_MISSING;
		return 0;
	}
	rc = ctl_base64_decode(b64, strlen(b64), pem, pem_len);
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
	x->name = ctl_json_str(pcp, "metadata.name");
	x->creation_ms = jtime(pcp, "metadata.creationTimestamp");
	x->dispatched = ctl_json_str(pcp, "status.startTime") != NULL;
	if (ctl_phase_parse(ctl_json_str(pcp, "status.phase"), &ph) != 0)
		ph = CTL_PHASE_PENDING;
	x->terminal = ctl_phase_terminal(ph);
	x->deleting = ctl_json_get(pcp, "metadata.deletionTimestamp") != NULL;
}

/* ---------------------------------------------------------------- patches */

static int add_str(json_object *obj, const char *key, const char *val)
{
	json_object *s = json_object_new_string(val);

	if (!s)
		return -ENOMEM;
	if (json_object_object_add(obj, key, s) != 0) {
		json_object_put(s);
		return -ENOMEM;
	}
	return 0;
}

static int add_obj(json_object *obj, const char *key, json_object *val)
{
	if (!val)
		return -ENOMEM;
	if (json_object_object_add(obj, key, val) != 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

static json_object *find_condition(json_object *conds, const char *type)
{
	if (!conds || !json_object_is_type(conds, json_type_array))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(conds); i++) {
		json_object *c = json_object_array_get_idx(conds, i);
		const char *t = ctl_json_str(c, "type");

		if (t && strcmp(t, type) == 0)
			return c;
	}
	return NULL;
}

static int make_condition(json_object *existing, const char *type, const char *status,
			  const char *reason, const char *message, int64_t gen, int64_t now_ms,
			  json_object **out)
{
	json_object *c = json_object_new_object();
	json_object *old = find_condition(existing, type);
	const char *old_status = ctl_json_str(old, "status");
	const char *old_ltt = ctl_json_str(old, "lastTransitionTime");
	char ts[32];
	int rc;

	if (!c)
		return -ENOMEM;
	if (old_status && old_ltt && strcmp(old_status, status) == 0) {
		copy(ts, sizeof(ts), old_ltt);
	} else {
		ctl_time_format(now_ms, ts);
	}
	rc = add_str(c, "type", type);
	if (!rc)
		rc = add_str(c, "status", status);
	if (!rc)
		rc = add_str(c, "reason", reason);
	if (!rc)
		rc = add_str(c, "message", message);
	if (!rc)
		rc = add_obj(c, "observedGeneration", json_object_new_int64(gen));
	if (!rc)
		rc = add_str(c, "lastTransitionTime", ts);
	if (rc) {
		json_object_put(c);
		return rc;
	}
	*out = c;
	return 0;
}

static int push(json_object *arr, json_object *item)
{
	if (json_object_array_add(arr, item) != 0) {
		json_object_put(item);
		return -ENOMEM;
	}
	return 0;
}

int ctl_status_patch(const struct ctl_decision *d, json_object *existing_conditions,
		     const char *resource_version, int64_t now_ms, json_object **out)
{
	const struct ctl_status_out *s = &d->status;
	json_object *patch = json_object_new_object();
	json_object *status = json_object_new_object();
	json_object *meta = NULL, *conds = NULL, *c = NULL;
	char ts[32];
	int rc = -ENOMEM;

	if (!patch || !status) {
		json_object_put(status);
		goto out;
	}
	rc = add_obj(patch, "status", status);
	if (rc)
		goto out;
	if (resource_version && *resource_version) {
		meta = json_object_new_object();
		rc = add_obj(patch, "metadata", meta);
		if (!rc)
			rc = add_str(meta, "resourceVersion", resource_version);
		if (rc)
			goto out;
	}
	rc = add_str(status, "phase", ctl_phase_name(s->phase));
	if (!rc)
		rc = add_str(status, "message", s->message);
	if (!rc)
		rc = add_obj(status, "observedGeneration", json_object_new_int64(s->observed_generation));
	if (rc)
		goto out;
	if (s->set_dispatch) {
		ctl_time_format(s->start_ms, ts);
		rc = add_str(status, "nodeName", s->node_name);
		if (!rc)
			rc = add_str(status, "podUID", s->pod_uid);
		if (!rc)
			rc = add_str(status, "startTime", ts);
		if (rc)
			goto out;
	}
	if (s->completion_ms > 0) {
		ctl_time_format(s->completion_ms, ts);
		rc = add_str(status, "completionTime", ts);
		if (rc)
			goto out;
	}

	/* The list is replaced as a whole by a merge patch: carry the others over. */
	conds = json_object_new_array();
	rc = add_obj(status, "conditions", conds);
	if (rc)
		goto out;
	if (existing_conditions && json_object_is_type(existing_conditions, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(existing_conditions); i++) {
			json_object *x = json_object_array_get_idx(existing_conditions, i);
			const char *t = ctl_json_str(x, "type");

			if (!t || strcmp(t, "Ready") == 0 || strcmp(t, "Stalled") == 0)
				continue;
			rc = push(conds, json_object_get(x));
			if (rc)
				goto out;
		}
	}
	rc = make_condition(existing_conditions, "Ready", s->ready_true ? "True" : "False",
			    s->ready_reason, s->message, s->observed_generation, now_ms, &c);
	if (!rc)
		rc = push(conds, c);
	if (rc)
		goto out;
	if (s->stalled) {
		rc = make_condition(existing_conditions, "Stalled", "True", s->stalled_reason,
				    s->message, s->observed_generation, now_ms, &c);
		if (!rc)
			rc = push(conds, c);
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

int ctl_finalizer_patch(json_object *pcp, bool add, json_object **out)
{
	json_object *patch = json_object_new_object();
	json_object *meta = json_object_new_object();
	json_object *list = json_object_new_array();
	json_object *cur = ctl_json_get(pcp, "metadata.finalizers");
	const char *rv = ctl_json_str(pcp, "metadata.resourceVersion");
	bool have = false;
	int rc = -ENOMEM;

	if (!patch || !meta || !list) {
		json_object_put(meta);
		json_object_put(list);
		goto out;
	}
	rc = add_obj(patch, "metadata", meta);
	if (!rc)
		rc = add_obj(meta, "finalizers", list);
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
			rc = push(list, json_object_get(f));
			if (rc)
				goto out;
		}
	}
	if (add && !have) {
		rc = push(list, json_object_new_string(CTL_FINALIZER));
		if (rc)
			goto out;
	}
	if (rv && *rv) {
		rc = add_str(meta, "resourceVersion", rv);
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
