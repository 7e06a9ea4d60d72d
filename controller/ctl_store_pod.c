/*
 * ctl_store_pod.c - the pod records of the compact cache (see ctl_store.h):
 * what the decisions read about a pod, one packed allocation per pod.
 */
#include "ctl_store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kc.h"

/*
 * A pod: node and phase interned (s->strs, one reference each), the uid in
 * 16 bytes when canonical (else as text first in buf), then the container
 * names, each \0-ended.
 */
struct pod_rec {
	bool deleting, uid_bin;
	uint8_t ncont;
	uint16_t cont_off;
	uint16_t len; /* of buf: the record is sizeof(struct pod_rec) + len (its slab class) */
	uint8_t uid[16];
	const char *node, *phase;
	char buf[];
};

static void pod_rec_free(struct ctl_store *s, struct pod_rec *r)
{
	if (!r)
		return;
	ctl_intern_put(&s->strs, r->node);
	ctl_intern_put(&s->strs, r->phase);
	ctl_slabs_free(&s->slabs, r, sizeof(*r) + r->len);
}

/* The containers that can be checkpointed, as ctl_obs_set_pod lists them. */
static size_t pod_containers(json_object *pod, const char **names, size_t cap)
{
	json_object *v = kc_json_get(pod, "spec.containers");
	size_t n = 0;

	if (v && json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v) && n < cap; i++) {
			const char *s = kc_json_str(json_object_array_get_idx(v, i), "name");

			if (s && *s)
				names[n++] = s;
		}
	}
	v = kc_json_get(pod, "spec.initContainers");
	if (v && json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v) && n < cap; i++) {
			json_object *c = json_object_array_get_idx(v, i);
			const char *s = kc_json_str(c, "name"), *rp = kc_json_str(c, "restartPolicy");

			if (s && *s && rp && strcmp(rp, "Always") == 0)
				names[n++] = s;
		}
	}
	return n;
}

int ctl_store_pod_put(struct ctl_store *s, json_object *pod, uint64_t epoch)
{
	const char *names[CTL_MAX_CONTAINERS];
	const char *uid = kc_json_str(pod, "metadata.uid"), *node = kc_json_str(pod, "spec.nodeName");
	const char *phase = kc_json_str(pod, "status.phase");
	char key[CTL_STORE_KEY_MAX];
	struct pod_rec *r;
	struct ctl_smap_shard *sh;
	size_t n, len, off = 0;
	uint64_t h;
	void *old = NULL;
	int rc;

	rc = ctl_store_key(key, sizeof(key), kc_json_str(pod, "metadata.namespace"),
		      kc_json_str(pod, "metadata.name"));
	if (rc)
		return -EINVAL;
	n = pod_containers(pod, names, CTL_MAX_CONTAINERS);
	len = 0;
	for (size_t i = 0; i < n; i++)
		len += ctl_store_slen(names[i]) + 1;
	if (!ctl_store_uid_pack((uint8_t[16]){ 0 }, uid))
		len += ctl_store_slen(uid) + 1;
	if (len > UINT16_MAX || ctl_store_slen(node) >= CTL_NAME_MAX || ctl_store_slen(phase) >= 32)
		return -EINVAL;
	r = ctl_slabs_alloc(&s->slabs, sizeof(*r) + len);
	if (!r)
		return -ENOMEM;
	r->len = (uint16_t)len;
	r->deleting = kc_json_get(pod, "metadata.deletionTimestamp") != NULL;
	r->ncont = (uint8_t)n;
	r->uid_bin = ctl_store_uid_pack(r->uid, uid);
	if (!r->uid_bin)
		ctl_store_pack_str(r->buf, &off, uid, CTL_UID_MAX);
	r->cont_off = (uint16_t)off;
	for (size_t i = 0; i < n; i++)
		ctl_store_pack_str(r->buf, &off, names[i], CTL_NAME_MAX);
	r->node = ctl_intern_get(&s->strs, node);
	r->phase = ctl_intern_get(&s->strs, phase);
	if (!r->node || !r->phase) {
		rc = -ENOMEM;
		goto out;
	}
	h = ctl_smap_hash(key);
	sh = ctl_smap_shard(&s->pods, h);
	pthread_mutex_lock(&sh->lock);
	rc = ctl_smap_put_locked(sh, h, key, r, epoch, &old);
	pthread_mutex_unlock(&sh->lock);
	if (!rc)
		r = NULL;
out:
	pod_rec_free(s, r);
	pod_rec_free(s, old);
	return rc;
}

int ctl_store_pod_delete(struct ctl_store *s, const char *ns, const char *name)
{
	void *v = ctl_store_take(&s->pods, ns, name);

	pod_rec_free(s, v);
	return v ? 0 : -ENOENT;
}

bool ctl_store_pod_obs(struct ctl_store *s, const char *ns, const char *name, struct ctl_obs *o)
{
	char key[CTL_STORE_KEY_MAX];
	struct pod_rec *r;
	struct ctl_smap_shard *sh;
	uint64_t h;

	o->pod_exists = false;
	o->pod_uid[0] = o->pod_phase[0] = o->pod_node[0] = '\0';
	o->pod_deleting = false;
	o->npod_containers = 0;
	sh = ctl_store_lock(&s->pods, ns, name, key, &h, (void **)&r);
	if (!sh)
		return false;
	if (r) {
		const char *c = r->buf + r->cont_off;

		o->pod_exists = true;
		if (r->uid_bin) {
			char u[37];

			ctl_store_uid_unpack(r->uid, u);
			ctl_copy(o->pod_uid, sizeof(o->pod_uid), u);
		} else
			ctl_copy(o->pod_uid, sizeof(o->pod_uid), r->buf);
		ctl_copy(o->pod_node, sizeof(o->pod_node), r->node);
		ctl_copy(o->pod_phase, sizeof(o->pod_phase), r->phase);
		o->pod_deleting = r->deleting;
		for (size_t i = 0; i < r->ncont && i < CTL_MAX_CONTAINERS; i++) {
			ctl_copy(o->pod_containers[o->npod_containers++], CTL_NAME_MAX, c);
			c += strlen(c) + 1;
		}
	}
	pthread_mutex_unlock(&sh->lock);
	return r != NULL;
}

size_t ctl_store_pod_count(struct ctl_store *s)
{
	return ctl_smap_len(&s->pods);
}

void ctl_store_pod_sweep(struct ctl_store *s, uint64_t epoch, ctl_store_gone_fn fn, void *arg)
{
	struct ctl_smap_ent *gone = ctl_smap_sweep(&s->pods, epoch), *next;
	char ns[CTL_NS_MAX], name[CTL_NAME_MAX];

	for (; gone; gone = next) {
		next = gone->next;
		ctl_store_split_key(gone->key, ns, sizeof(ns), name, sizeof(name));
		if (fn)
			fn(arg, ns, name, NULL, NULL);
		pod_rec_free(s, gone->val);
		ctl_smap_ent_free(&s->pods, gone);
	}
}
