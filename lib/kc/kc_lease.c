/*
 * kc_lease.c - coordination.k8s.io/v1 Leases: read, create/renew with a
 * resourceVersion precondition, and leader election.
 *
 * Expiry is judged from spec.renewTime against the local clock, so clocks
 * must be roughly in sync (within a fraction of duration_seconds).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kc_internal.h"
#include "log.h"

/* The mapping at key in o, created if missing. */
static json_object *child(json_object *o, const char *key)
{
	json_object *c = NULL;

	if (json_object_object_get_ex(o, key, &c) && json_object_is_type(c, json_type_object))
		return c;
	c = json_object_new_object();
	if (!c || json_object_object_add(o, key, c)) {
		json_object_put(c);
		return NULL;
	}
	return c;
}

void kc_lease_cleanup(struct kc_lease *l)
{
	if (!l)
		return;
	json_object_put(l->annotations);
	memset(l, 0, sizeof(*l));
}

void kc_lease_from_object(json_object *obj, struct kc_lease *out)
{
	const char *s;
	json_object *v;

	memset(out, 0, sizeof(*out));
	s = kc_json_str(obj, "spec.holderIdentity");
	if (s)
		snprintf(out->holder, sizeof(out->holder), "%s", s);
	v = kc_json_get(obj, "spec.leaseDurationSeconds");
	if (v && json_object_is_type(v, json_type_int))
		out->duration_seconds = (long)json_object_get_int64(v);
	s = kc_json_str(obj, "spec.renewTime");
	if (!s || kc_time_parse(s, &out->renew_time_ms))
		out->renew_time_ms = 0;
	v = kc_json_get(obj, "metadata.annotations");
	if (v && json_object_is_type(v, json_type_object))
		out->annotations = json_object_get(v);
	s = kc_json_rv(obj);
	if (s)
		snprintf(out->resource_version, sizeof(out->resource_version), "%s", s);
}

static int lease_path(const char *ns, const char *name, char *buf, size_t cap)
{
	return kc_path(buf, cap, &KC_RES_LEASES, ns, name, NULL, NULL);
}

int kc_lease_get(struct kc_client *c, const char *ns, const char *name, struct kc_lease *out,
		 struct kc_status *st)
{
	json_object *obj = NULL;
	char path[1024];
	int rc;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	rc = lease_path(ns, name, path, sizeof(path));
	if (rc)
		return rc;
	rc = kc_get(c, path, &obj, st);
	if (!rc && !obj)
		rc = -EBADMSG;
	if (!rc)
		kc_lease_from_object(obj, out);
	json_object_put(obj);
	return rc;
}

static int merge_annotations(json_object *obj, json_object *annotations)
{
	json_object *meta, *ann;

	if (!annotations || !json_object_is_type(annotations, json_type_object))
		return 0;
	meta = child(obj, "metadata");
	ann = meta ? child(meta, "annotations") : NULL;
	if (!ann)
		return -ENOMEM;
	json_object_object_foreach(annotations, k, v)
	{
		if (json_object_object_add(ann, k, json_object_get(v)))
			return -ENOMEM;
	}
	return 0;
}

/* Fills spec for `holder` now; acquireTime and a transition when the holder changes. */
static int fill_spec(json_object *obj, const char *holder, long duration_seconds)
{
	json_object *spec = child(obj, "spec"), *tr;
	const char *old = kc_json_str(obj, "spec.holderIdentity");
	char now[40];
	int rc;

	if (!spec)
		return -ENOMEM;
	kc_time_rfc3339_micro(kc_now_us(), now);
	if (!old || strcmp(old, holder) != 0) {
		int64_t n = 0;

		if (json_object_object_get_ex(spec, "leaseTransitions", &tr) && old && old[0])
			n = json_object_get_int64(tr) + 1;
		if ((rc = kc_json_set_str(spec, "acquireTime", now)) ||
		    (rc = kc_json_set(spec, "leaseTransitions", json_object_new_int64(n))))
			return rc;
	}
	if ((rc = kc_json_set_str(spec, "holderIdentity", holder)) ||
	    (rc = kc_json_set(spec, "leaseDurationSeconds", json_object_new_int64(duration_seconds))) ||
	    (rc = kc_json_set_str(spec, "renewTime", now)))
		return rc;
	return 0;
}

static int lease_create(struct kc_client *c, const char *ns, const char *name, const char *holder,
			long duration_seconds, json_object *annotations, struct kc_status *st)
{
	json_object *obj = json_object_new_object(), *meta, *resp = NULL;
	char path[1024];
	int rc = -ENOMEM;

	if (!obj)
		goto out;
	if (kc_json_set_str(obj, "apiVersion", "coordination.k8s.io/v1") || kc_json_set_str(obj, "kind", "Lease"))
		goto out;
	meta = child(obj, "metadata");
	if (!meta || kc_json_set_str(meta, "name", name) || kc_json_set_str(meta, "namespace", ns))
		goto out;
	if ((rc = merge_annotations(obj, annotations)) ||
	    (rc = fill_spec(obj, holder, duration_seconds)))
		goto out;
	rc = kc_path(path, sizeof(path), &KC_RES_LEASES, ns, NULL, NULL, NULL);
	if (!rc)
		rc = kc_create(c, path, obj, &resp, st);
out:
	json_object_put(resp);
	json_object_put(obj);
	return rc;
}

/* PUT of the object we read (it carries metadata.resourceVersion: a stale
 * read gives 409 Conflict -> -EAGAIN). */
static int lease_update(struct kc_client *c, const char *ns, const char *name, json_object *obj,
			const char *holder, long duration_seconds, json_object *annotations,
			struct kc_status *st)
{
	json_object *resp = NULL;
	char path[1024];
	int rc;

	if ((rc = merge_annotations(obj, annotations)) ||
	    (rc = fill_spec(obj, holder, duration_seconds)))
		return rc;
	json_object_object_del(obj, "status");
	rc = lease_path(ns, name, path, sizeof(path));
	if (!rc)
		rc = kc_replace(c, path, obj, &resp, st);
	json_object_put(resp);
	return rc;
}

/* Checks the arguments of a renew/acquire and builds the Lease's path. */
static int validate(const char *ns, const char *name, const char *holder, long duration_seconds,
		    char *path, size_t cap)
{
	if (!ns || !ns[0] || !name || !name[0] || !holder || !holder[0] ||
	    strlen(holder) >= sizeof(((struct kc_lease *)0)->holder) || duration_seconds <= 0)
		return -EINVAL;
	return lease_path(ns, name, path, cap);
}

int kc_lease_renew(struct kc_client *c, const char *ns, const char *name, const char *holder,
		   long duration_seconds, json_object *annotations, struct kc_status *st)
{
	json_object *obj = NULL;
	char path[1024];
	int rc;

	kc_status_clear(st);
	rc = validate(ns, name, holder, duration_seconds, path, sizeof(path));
	if (rc)
		return rc;
	rc = kc_get(c, path, &obj, st);
	if (rc == -ENOENT)
		rc = lease_create(c, ns, name, holder, duration_seconds, annotations, st);
	else if (!rc && !obj)
		rc = -EBADMSG;
	else if (!rc)
		rc = lease_update(c, ns, name, obj, holder, duration_seconds, annotations, st);
	json_object_put(obj);
	return rc;
}

int kc_lease_try_acquire(struct kc_client *c, const char *ns, const char *name,
			 const char *holder, long duration_seconds, bool *leader,
			 struct kc_status *st)
{
	json_object *obj = NULL;
	struct kc_lease cur;
	char path[1024];
	int rc;

	memset(&cur, 0, sizeof(cur));
	if (!leader)
		return -EINVAL;
	*leader = false;
	kc_status_clear(st);
	rc = validate(ns, name, holder, duration_seconds, path, sizeof(path));
	if (rc)
		return rc;
	rc = kc_get(c, path, &obj, st);
	if (rc == -ENOENT) {
		rc = lease_create(c, ns, name, holder, duration_seconds, NULL, st);
		if (rc == -EEXIST) /* someone else created it first */
			rc = 0;
		else if (!rc)
			*leader = true;
		goto out;
	}
	if (!rc && !obj)
		rc = -EBADMSG;
	if (rc)
		goto out;
	kc_lease_from_object(obj, &cur);
	if (cur.holder[0] && strcmp(cur.holder, holder) != 0) {
		long dur = cur.duration_seconds > 0 ? cur.duration_seconds : duration_seconds;

		if (cur.renew_time_ms && cur.renew_time_ms + (int64_t)dur * 1000 > kc_now_ms())
			goto out; /* held by another, not expired */
		LOG_INFO("msg=\"taking over expired lease\" ns=%s name=%s previous=%s", ns, name,
			 cur.holder);
	}
	rc = lease_update(c, ns, name, obj, holder, duration_seconds, NULL, st);
	if (rc == -EAGAIN) /* lost the race: someone else renewed or took it */
		rc = 0;
	else if (!rc)
		*leader = true;
out:
	kc_lease_cleanup(&cur);
	json_object_put(obj);
	return rc;
}

int kc_lease_release(struct kc_client *c, const char *ns, const char *name, const char *holder,
		     struct kc_status *st)
{
	json_object *obj = NULL, *spec;
	struct kc_lease cur;
	char path[1024], now[40];
	int rc;

	memset(&cur, 0, sizeof(cur));
	kc_status_clear(st);
	rc = validate(ns, name, holder, 1, path, sizeof(path));
	if (rc)
		return rc;
	rc = kc_get(c, path, &obj, st);
	if (rc == -ENOENT) {
		rc = 0;
		goto out;
	}
	if (!rc && !obj)
		rc = -EBADMSG;
	if (rc)
		goto out;
	kc_lease_from_object(obj, &cur);
	if (strcmp(cur.holder, holder) != 0)
		goto out; /* not ours (any more): nothing to give back */
	spec = kc_json_get(obj, "spec");
	rc = -EBADMSG;
	if (!spec || !json_object_is_type(spec, json_type_object))
		goto out;
	/* As client-go's ReleaseOnCancel: no holder, a 1 s lease renewed now;
	 * an update (PUT) carrying the resourceVersion we read, like renewals. */
	kc_time_rfc3339_micro(kc_now_us(), now);
	rc = kc_json_set_str(spec, "holderIdentity", "");
	if (!rc)
		rc = kc_json_set(spec, "leaseDurationSeconds", json_object_new_int(1));
	if (!rc)
		rc = kc_json_set_str(spec, "renewTime", now);
	if (rc)
		goto out;
	rc = kc_replace(c, path, obj, NULL, st);
	if (rc == -EAGAIN) /* renewed or taken meanwhile: not ours to release */
		rc = 0;
out:
	kc_lease_cleanup(&cur);
	json_object_put(obj);
	return rc;
}
