/*
 * ctl_leases.c - the helpers' Leases as typed records (see ctl_leases.h).
 */
#include "ctl_leases.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_smap.h"

struct ctl_leases {
	struct ctl_smap map; /* name -> struct ctl_lease_view (owned) */
};

static void free_rec(void *v)
{
	free(v);
}

int ctl_leases_new(struct ctl_leases **out)
{
	struct ctl_leases *l = calloc(1, sizeof(*l));

	*out = NULL;
	if (!l)
		return -ENOMEM;
	if (ctl_smap_init(&l->map, NULL) != 0) {
		ctl_leases_free(l);
		return -ENOMEM;
	}
	*out = l;
	return 0;
}

void ctl_leases_free(struct ctl_leases *l)
{
	if (!l)
		return;
	ctl_smap_cleanup(&l->map, free_rec);
	free(l);
}

size_t ctl_leases_count(struct ctl_leases *l)
{
	return l ? ctl_smap_len(&l->map) : 0;
}

static void copy_ann(char *dst, size_t cap, json_object *ann, const char *key)
{
	json_object *v = NULL;

	dst[0] = '\0';
	if (ann && json_object_object_get_ex(ann, key, &v) && json_object_is_type(v, json_type_string))
		ctl_copy(dst, cap, json_object_get_string(v));
}

/* What a record keeps of a Lease object (borrowed). */
static void fill(struct ctl_lease_view *r, json_object *obj)
{
	const char *rt = kc_json_str(obj, "spec.renewTime");
	json_object *d = kc_json_get(obj, "spec.leaseDurationSeconds");
	json_object *ann = kc_json_get(obj, "metadata.annotations");

	r->renew_ms = 0;
	if (!rt || kc_time_parse(rt, &r->renew_ms) != 0)
		r->renew_ms = 0;
	r->duration_seconds = d && json_object_is_type(d, json_type_int) ? (long)json_object_get_int64(d) : 0;
	if (ann && !json_object_is_type(ann, json_type_object))
		ann = NULL;
	copy_ann(r->endpoint, sizeof(r->endpoint), ann, CTL_LEASE_ENDPOINT_ANN);
	copy_ann(r->fingerprint, sizeof(r->fingerprint), ann, CTL_LEASE_CERT_ANN);
}

int ctl_leases_project(void *arg, enum kc_event_type type, json_object *obj, uint64_t epoch)
{
	struct ctl_leases *l = arg;
	const char *name = kc_json_str(obj, "metadata.name");
	struct ctl_smap_shard *sh;
	struct ctl_smap_ent **pp;
	struct ctl_lease_view *r = NULL;
	void *old = NULL;
	uint64_t h;
	int rc = 0;

	if (!l || !name || !name[0])
		return 0; /* nothing to key it by: not ours to keep */
	h = ctl_smap_hash(name);
	sh = ctl_smap_shard(&l->map, h);
	pthread_mutex_lock(&sh->lock);
	if (type == KC_DELETED) {
		old = ctl_smap_del_locked(sh, h, name);
		goto out;
	}
	pp = ctl_smap_find_locked(sh, h, name);
	if (*pp) { /* a renewal: in place, no allocation */
		fill((*pp)->val, obj);
		(*pp)->epoch = epoch;
		goto out;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		rc = -ENOMEM;
		goto out;
	}
	fill(r, obj);
	rc = ctl_smap_put_locked(sh, h, name, r, epoch, &old);
	if (!rc)
		r = NULL;
out:
	pthread_mutex_unlock(&sh->lock);
	free(r);
	free(old);
	return rc;
}

void ctl_leases_sweep(void *arg, uint64_t epoch)
{
	struct ctl_leases *l = arg;
	struct ctl_smap_ent *gone, *next;

	if (!l)
		return;
	for (gone = ctl_smap_sweep(&l->map, epoch); gone; gone = next) {
		next = gone->next;
		free(gone->val);
		ctl_smap_ent_free(&l->map, gone);
	}
}

bool ctl_leases_get(struct ctl_leases *l, const char *name, struct ctl_lease_view *out)
{
	struct ctl_smap_shard *sh;
	struct ctl_lease_view *r;
	uint64_t h;

	memset(out, 0, sizeof(*out));
	if (!l || !name)
		return false;
	h = ctl_smap_hash(name);
	sh = ctl_smap_shard(&l->map, h);
	pthread_mutex_lock(&sh->lock);
	r = ctl_smap_get_locked(sh, h, name);
	if (r)
		*out = *r;
	pthread_mutex_unlock(&sh->lock);
	return r != NULL;
}

int ctl_leases_count_fresh(struct ctl_leases *l, const char *prefix, int64_t now_ms)
{
	size_t plen = strlen(prefix);
	int n = 0;

	if (!l)
		return 0;
	for (size_t i = 0; i < CTL_SMAP_SHARDS; i++) {
		struct ctl_smap_shard *sh = &l->map.sh[i];

		pthread_mutex_lock(&sh->lock);
		for (size_t b = 0; b < sh->nb; b++)
			for (struct ctl_smap_ent *e = sh->b[b]; e; e = e->next) {
				const struct ctl_lease_view *r = e->val;

				if (strncmp(e->key, prefix, plen) == 0 && r->renew_ms > 0 &&
				    r->renew_ms + (int64_t)r->duration_seconds * 1000 > now_ms)
					n++;
			}
		pthread_mutex_unlock(&sh->lock);
	}
	return n;
}
