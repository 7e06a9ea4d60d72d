/*
 * ctl_store_pack.c - the packed typed record of a terminal PodCheckpoint
 * (see ctl_store.h, ctl_store_int.h): built from the object, and turned
 * back into the json-c tree the reconcile reads (ctl_obs_from_pcp, the
 * finalizer patch, the Event's involvedObject) with the same values.
 *
 * Also the uid packing shared with pod records: a canonical lowercase
 * UUID (8-4-4-4-12) in 16 bytes, anything else kept as text.
 */
#include "ctl_store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc.h"

/* ---------------------------------------------------------------- uids */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool ctl_store_uid_pack(uint8_t out[16], const char *uid)
{
	size_t j = 0;

	if (!uid || strlen(uid) != 36)
		return false;
	for (size_t i = 0; i < 36;) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (uid[i] != '-')
				return false;
			i++;
			continue;
		}
		hi = hexval(uid[i]);
		lo = hexval(uid[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[j++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return true;
}

void ctl_store_uid_unpack(const uint8_t in[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t j = 0; j < 16; j++) {
		if (j == 4 || j == 6 || j == 8 || j == 10)
			out[o++] = '-';
		out[o++] = hex[in[j] >> 4];
		out[o++] = hex[in[j] & 15];
	}
	out[o] = '\0';
}

/* ---------------------------------------------------------------- terminal CRs */

#define T_DELETING 0x01u
#define T_POLICY_DELETE 0x02u
#define T_HAS_TTL 0x04u
#define T_UID_BIN 0x08u
#define T_ART_LAYOUT 0x10u /* path = art_dir "/" ns "/" name "-" uid suffix */

static const char *const ready_names[] = { "", "True", "False", "Unknown" };

static int64_t jtime(json_object *obj, const char *dotted)
{
	int64_t ms = 0;
	const char *s = kc_json_str(obj, dotted);

	return s && kc_time_parse(s, &ms) == 0 ? ms : 0;
}

/* The effective artifact path, as ctl_obs_from_pcp reads it. */
static const char *art_path(json_object *pcp)
{
	const char *s = kc_json_str(pcp, "status.artifact.path");

	return s ? s : kc_json_str(pcp, "status.checkpointLocation.nodeLocal.path");
}

/*
 * Splits path as the helper names artifacts (nh_job.c: <dir>/<ns>/<name>-<uid>.tar...)
 * into *dirlen and the suffix; false when it has another shape.
 */
static bool art_layout(const char *path, const char *ns, const char *name, const char *uid,
		       size_t *dirlen, const char **suffix)
{
	char mid[CTL_STORE_KEY_MAX + CTL_UID_MAX + 4];
	const char *p;
	int n;

	if (!path || !uid || !uid[0])
		return false;
	n = snprintf(mid, sizeof(mid), "/%s/%s-%s", ns, name, uid);
	if (n < 0 || (size_t)n >= sizeof(mid))
		return false;
	p = strstr(path, mid);
	if (!p || p == path)
		return false;
	*dirlen = (size_t)(p - path);
	*suffix = p + n;
	return true;
}

/* The strings of buf, in order (after the uid when it is text). */
enum { F_RV, F_POD, F_REASON, F_ART, F_FINS };

static const char *field(const struct ctl_store_term *t, unsigned i)
{
	const char *p = t->buf;

	if (!(t->flags & T_UID_BIN))
		p += strlen(p) + 1;
	for (; i; i--)
		p += strlen(p) + 1;
	return p;
}

int ctl_store_term_new(struct ctl_store *s, json_object *pcp, const char *ns, const char *name,
		       struct ctl_store_term **out)
{
	const char *uid = kc_json_str(pcp, "metadata.uid"), *rv = kc_json_str(pcp, "metadata.resourceVersion");
	const char *pod = kc_json_str(pcp, "spec.podName"), *path = art_path(pcp);
	const char *reason = "", *ready = "", *suffix = NULL, *pol, *f;
	json_object *fins = kc_json_get(pcp, "metadata.finalizers"), *conds, *rc_cond = NULL;
	enum ctl_phase ph = CTL_PHASE_NONE;
	struct ctl_store_term *t = NULL;
	char dir[CTL_PATH_MAX];
	size_t len, off = 0, dirlen = 0, nf = 0;
	bool present = false;
	int rc = -ENOMEM, ours = -1;

	*out = NULL;
	if (fins && !json_object_is_type(fins, json_type_array))
		fins = NULL;
	conds = kc_json_get(pcp, "status.conditions");
	for (size_t i = 0; conds && json_object_is_type(conds, json_type_array) &&
			   i < json_object_array_length(conds); i++) {
		json_object *c = json_object_array_get_idx(conds, i);
		const char *ty = kc_json_str(c, "type");

		if (ty && strcmp(ty, "Ready") == 0)
			rc_cond = c; /* the last one wins, as in ctl_obs_from_pcp */
	}
	if (rc_cond) {
		ready = kc_json_str(rc_cond, "status");
		reason = kc_json_str(rc_cond, "reason");
	}
	len = ctl_store_slen(rv) + ctl_store_slen(pod) + ctl_store_slen(reason) + 4;
	if (!ctl_store_uid_pack((uint8_t[16]){ 0 }, uid))
		len += ctl_store_slen(uid) + 1;
	if (path && art_layout(path, ns, name, uid, &dirlen, &suffix) && dirlen < sizeof(dir))
		len += ctl_store_slen(suffix);
	else
		len += ctl_store_slen(path), suffix = NULL;
	for (size_t i = 0; fins && i < json_object_array_length(fins); i++) {
		f = json_object_get_string(json_object_array_get_idx(fins, i));
		if (ours < 0 && f && strcmp(f, CTL_FINALIZER) == 0)
			ours = (int)i; /* not stored: fin_pos says where it was */
		else
			len += ctl_store_slen(f) + 1;
	}
	if (len > UINT16_MAX || (fins && json_object_array_length(fins) >= UINT8_MAX))
		return -E2BIG; /* the caller keeps such a CR as text */
	t = ctl_slabs_alloc(&s->slabs, sizeof(*t) + len);
	if (!t)
		return -ENOMEM;
	t->len = (uint16_t)len; /* first: ctl_store_term_free finds the slab by the size */
	t->kind = CTL_STORE_REC_TERM;
	t->fin_pos = UINT8_MAX;
	if (ctl_phase_parse(kc_json_str(pcp, "status.phase"), &ph) != 0)
		ph = CTL_PHASE_PENDING; /* as ctl_obs_from_pcp reads an unknown phase */
	t->phase = (uint8_t)ph;
	for (uint8_t i = 1; i < 4; i++)
		if (ready && strcmp(ready, ready_names[i]) == 0)
			t->ready = i;
	if (kc_json_get(pcp, "metadata.deletionTimestamp"))
		t->flags |= T_DELETING;
	pol = kc_json_str(pcp, "spec.deletionPolicy");
	if (pol && strcmp(pol, "Delete") == 0)
		t->flags |= T_POLICY_DELETE;
	t->ttl_seconds = kc_json_int64(pcp, "spec.ttlSecondsAfterFinished", 0, &present);
	if (present)
		t->flags |= T_HAS_TTL;
	t->deletion_ms = jtime(pcp, "metadata.deletionTimestamp");
	t->completion_ms = jtime(pcp, "status.completionTime");
	t->ready_ms = rc_cond ? jtime(rc_cond, "lastTransitionTime") : 0;
	if (ctl_store_uid_pack(t->uid, uid))
		t->flags |= T_UID_BIN;
	else
		ctl_store_pack_str(t->buf, &off, uid, SIZE_MAX);
	ctl_store_pack_str(t->buf, &off, rv, SIZE_MAX);
	ctl_store_pack_str(t->buf, &off, pod, SIZE_MAX);
	ctl_store_pack_str(t->buf, &off, reason, SIZE_MAX);
	if (suffix) {
		memcpy(dir, path, dirlen);
		dir[dirlen] = '\0';
		t->art_dir = ctl_intern_get(&s->strs, dir);
		if (!t->art_dir)
			goto out;
		t->flags |= T_ART_LAYOUT;
		ctl_store_pack_str(t->buf, &off, suffix, SIZE_MAX);
	} else
		ctl_store_pack_str(t->buf, &off, path, SIZE_MAX);
	for (size_t i = 0; fins && i < json_object_array_length(fins); i++) {
		if ((int)i == ours) {
			t->fin_pos = (uint8_t)i;
			continue;
		}
		ctl_store_pack_str(t->buf, &off, json_object_get_string(json_object_array_get_idx(fins, i)), SIZE_MAX);
		nf++;
	}
	t->nfin = (uint8_t)nf;
	t->node = ctl_intern_get(&s->strs, kc_json_str(pcp, "status.nodeName"));
	if (!t->node)
		goto out;
	*out = t;
	t = NULL;
	rc = 0;
out:
	ctl_store_term_free(s, t);
	return rc;
}

void ctl_store_term_free(struct ctl_store *s, struct ctl_store_term *t)
{
	if (!t)
		return;
	ctl_intern_put(&s->strs, t->node);
	ctl_intern_put(&s->strs, t->art_dir);
	ctl_slabs_free(&s->slabs, t, ctl_store_term_size(t));
}

size_t ctl_store_term_size(const struct ctl_store_term *t)
{
	return sizeof(*t) + t->len;
}

void ctl_store_term_uid(const struct ctl_store_term *t, char *buf, size_t cap)
{
	char u[37];

	if (t->flags & T_UID_BIN) {
		ctl_store_uid_unpack(t->uid, u);
		ctl_copy(buf, cap, u);
	} else
		ctl_copy(buf, cap, t->buf);
}

const char *ctl_store_term_pod(const struct ctl_store_term *t)
{
	return field(t, F_POD);
}

static int set_time(json_object *obj, const char *key, int64_t ms)
{
	char ts[40];

	if (ms % 1000 == 0)
		kc_time_rfc3339(ms / 1000, ts);
	else
		kc_time_rfc3339_micro(ms * 1000, ts);
	return kc_json_set_str(obj, key, ts);
}

/* A new object added at obj[key] (owned by obj), or NULL. */
static json_object *add_obj(json_object *obj, const char *key, json_type type)
{
	json_object *o = type == json_type_array ? json_object_new_array() : json_object_new_object();

	return kc_json_set(obj, key, o) == 0 ? o : NULL;
}

static int term_meta(const struct ctl_store_term *t, json_object *meta, const char *ns,
		     const char *name)
{
	char uid[CTL_UID_MAX];
	const char *f = field(t, F_FINS);
	json_object *fins;
	size_t nfin = t->nfin + (t->fin_pos != UINT8_MAX ? 1u : 0u);

	ctl_store_term_uid(t, uid, sizeof(uid));
	if (kc_json_set_str(meta, "namespace", ns) || kc_json_set_str(meta, "name", name) || kc_json_set_str(meta, "uid", uid) ||
	    kc_json_set_str(meta, "resourceVersion", field(t, F_RV)))
		return -ENOMEM;
	if ((t->flags & T_DELETING) && set_time(meta, "deletionTimestamp", t->deletion_ms))
		return -ENOMEM;
	if (!nfin)
		return 0;
	fins = add_obj(meta, "finalizers", json_type_array);
	for (size_t i = 0; fins && i < nfin; i++) {
		const char *v = CTL_FINALIZER;

		if (i != t->fin_pos) {
			v = f;
			f += strlen(f) + 1;
		}
		if (kc_json_append(fins, json_object_new_string(v)) != 0)
			return -ENOMEM;
	}
	return fins ? 0 : -ENOMEM;
}

static int term_status(const struct ctl_store_term *t, json_object *st, const char *ns,
		       const char *name)
{
	const char *art = field(t, F_ART);
	json_object *o;

	if (kc_json_set_str(st, "phase", ctl_phase_name((enum ctl_phase)t->phase)))
		return -ENOMEM;
	if (t->node[0] && kc_json_set_str(st, "nodeName", t->node))
		return -ENOMEM;
	if (t->completion_ms && set_time(st, "completionTime", t->completion_ms))
		return -ENOMEM;
	if ((t->flags & T_ART_LAYOUT) || art[0]) {
		char path[CTL_PATH_MAX], uid[CTL_UID_MAX];

		ctl_store_term_uid(t, uid, sizeof(uid));
		if (t->flags & T_ART_LAYOUT)
			snprintf(path, sizeof(path), "%s/%s/%s-%s%s", t->art_dir, ns, name, uid, art);
		else
			ctl_copy(path, sizeof(path), art);
		o = add_obj(st, "artifact", json_type_object);
		if (!o || kc_json_set_str(o, "path", path))
			return -ENOMEM;
	}
	if (t->ready) {
		json_object *conds = add_obj(st, "conditions", json_type_array), *c;

		if (!conds)
			return -ENOMEM;
		c = json_object_new_object();
		if (kc_json_append(conds, c) != 0)
			return -ENOMEM;
		if (kc_json_set_str(c, "type", "Ready") || kc_json_set_str(c, "status", ready_names[t->ready]) ||
		    (field(t, F_REASON)[0] && kc_json_set_str(c, "reason", field(t, F_REASON))) ||
		    (t->ready_ms && set_time(c, "lastTransitionTime", t->ready_ms)))
			return -ENOMEM;
	}
	return 0;
}

json_object *ctl_store_term_json(const struct ctl_store_term *t, const char *ns, const char *name)
{
	json_object *obj = json_object_new_object(), *meta, *spec, *st;
	const char *pod = field(t, F_POD);

	if (!obj)
		return NULL;
	meta = add_obj(obj, "metadata", json_type_object);
	spec = add_obj(obj, "spec", json_type_object);
	st = add_obj(obj, "status", json_type_object);
	if (!meta || !spec || !st || term_meta(t, meta, ns, name) || term_status(t, st, ns, name))
		goto fail;
	if (pod[0] && kc_json_set_str(spec, "podName", pod))
		goto fail;
	if ((t->flags & T_POLICY_DELETE) && kc_json_set_str(spec, "deletionPolicy", "Delete"))
		goto fail;
	if (t->flags & T_HAS_TTL) {
		if (kc_json_set(spec, "ttlSecondsAfterFinished", json_object_new_int64(t->ttl_seconds)))
			goto fail;
	}
	return obj;
fail:
	json_object_put(obj);
	return NULL;
}
