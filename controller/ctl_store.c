/*
 * ctl_store.c - the controller's compact cache (see ctl_store.h).
 *
 * Three sharded string-keyed maps (ctl_smap.h: pods, CRs, the pod -> CRs
 * index). Each entry holds its key inline and one value allocation.
 */
#include "ctl_store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_smap.h"
#include "ctl_store_int.h"
#include "kc.h"



/* "ns/name" into ns and name (bounded). */
static void split_key(const char *key, char *ns, size_t nscap, char *name, size_t namecap)
{
	const char *slash = strchr(key, '/');
	size_t n = slash ? (size_t)(slash - key) : 0;

	if (n >= nscap)
		n = nscap - 1;
	memcpy(ns, key, n);
	ns[n] = '\0';
	ctl_copy(name, namecap, slash ? slash + 1 : key);
}

/* ---------------------------------------------------------------- records */

/* A pod: strings packed after the struct: uid \0 node \0 phase \0 containers (each \0). */
struct pod_rec {
	bool deleting;
	uint8_t ncont;
	uint16_t node_off, phase_off, cont_off;
	char buf[];
};

/* A CR: uid \0 pod \0 json \0 packed after the struct. */
struct pcp_rec {
	bool terminal;
	uint16_t pod_off;
	uint32_t json_off;
	size_t json_len;
	char buf[];
};

static void free_plain(void *v)
{
	free(v);
}

int ctl_store_new(struct ctl_store **out)
{
	struct ctl_store *s;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (ctl_smap_init(&s->pods) || ctl_smap_init(&s->pcps) || ctl_smap_init(&s->idx) ||
	    pthread_mutex_init(&s->bytes_lock, NULL)) {
		ctl_smap_cleanup(&s->pods, free_plain);
		ctl_smap_cleanup(&s->pcps, free_plain);
		ctl_smap_cleanup(&s->idx, ctl_store_free_sibs);
		free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

void ctl_store_free(struct ctl_store *s)
{
	if (!s)
		return;
	ctl_smap_cleanup(&s->pods, free_plain);
	ctl_smap_cleanup(&s->pcps, free_plain);
	ctl_smap_cleanup(&s->idx, ctl_store_free_sibs);
	pthread_mutex_destroy(&s->bytes_lock);
	free(s);
}

/* ---------------------------------------------------------------- pods */

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

/* Appends s (truncated to cap-1) and its NUL at *off. */
static void pack(char *buf, size_t *off, const char *s, size_t cap)
{
	size_t n = slen(s);

	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(buf + *off, s, n);
	buf[*off + n] = '\0';
	*off += n + 1;
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
	len = slen(uid) + slen(node) + slen(phase) + 3;
	for (size_t i = 0; i < n; i++)
		len += slen(names[i]) + 1;
	if (len > UINT16_MAX)
		return -EINVAL;
	r = malloc(sizeof(*r) + len);
	if (!r)
		return -ENOMEM;
	r->deleting = kc_json_get(pod, "metadata.deletionTimestamp") != NULL;
	r->ncont = (uint8_t)n;
	pack(r->buf, &off, uid, CTL_UID_MAX);
	r->node_off = (uint16_t)off;
	pack(r->buf, &off, node, CTL_NAME_MAX);
	r->phase_off = (uint16_t)off;
	pack(r->buf, &off, phase, 32);
	r->cont_off = (uint16_t)off;
	for (size_t i = 0; i < n; i++)
		pack(r->buf, &off, names[i], CTL_NAME_MAX);
	h = ctl_smap_hash(key);
	sh = ctl_smap_shard(&s->pods, h);
	pthread_mutex_lock(&sh->lock);
	rc = ctl_smap_put_locked(sh, h, key, r, epoch, &old);
	pthread_mutex_unlock(&sh->lock);
	if (rc)
		free(r);
	free(old);
	return rc;
}

int ctl_store_pod_delete(struct ctl_store *s, const char *ns, const char *name)
{
	char key[CTL_STORE_KEY_MAX];
	struct ctl_smap_shard *sh;
	uint64_t h;
	void *v;

	if (ctl_store_key(key, sizeof(key), ns, name))
		return -ENOENT;
	h = ctl_smap_hash(key);
	sh = ctl_smap_shard(&s->pods, h);
	pthread_mutex_lock(&sh->lock);
	v = ctl_smap_del_locked(sh, h, key);
	pthread_mutex_unlock(&sh->lock);
	free(v);
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
	if (ctl_store_key(key, sizeof(key), ns, name))
		return false;
	h = ctl_smap_hash(key);
	sh = ctl_smap_shard(&s->pods, h);
	pthread_mutex_lock(&sh->lock);
	r = ctl_smap_get_locked(sh, h, key);
	if (r) {
		const char *c = r->buf + r->cont_off;

		o->pod_exists = true;
		ctl_copy(o->pod_uid, sizeof(o->pod_uid), r->buf);
		ctl_copy(o->pod_node, sizeof(o->pod_node), r->buf + r->node_off);
		ctl_copy(o->pod_phase, sizeof(o->pod_phase), r->buf + r->phase_off);
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
		split_key(gone->key, ns, sizeof(ns), name, sizeof(name));
		if (fn)
			fn(arg, ns, name, NULL, NULL);
		free(gone->val);
		free(gone);
	}
}

/* ---------------------------------------------------------------- PodCheckpoints */

/* Moves key from src into dst (if present). */
static void keep(json_object *dst, json_object *src, const char *key)
{
	json_object *v = NULL;

	if (src && json_object_object_get_ex(src, key, &v) && v)
		json_object_object_add(dst, key, json_object_get(v));
}

/*
 * A terminal CR never changes again and decides only its TTL and its
 * deletion (ctl_reconcile.c: decide_terminal, decide_deletion): of its
 * status only the phase, the node, the completion time, the artifact path
 * and Ready's status/reason/transition time are read. The rest goes.
 */
static void strip_terminal_status(json_object *pcp)
{
	json_object *st = kc_json_get(pcp, "status"), *ns = json_object_new_object();
	json_object *conds, *art, *loc;

	if (!ns || !st || !json_object_is_type(st, json_type_object)) {
		json_object_put(ns);
		return;
	}
	keep(ns, st, "phase");
	keep(ns, st, "nodeName");
	keep(ns, st, "completionTime");
	art = kc_json_get(st, "artifact");
	if (art && json_object_is_type(art, json_type_object)) {
		json_object *a = json_object_new_object();

		if (a) {
			keep(a, art, "path");
			json_object_object_add(ns, "artifact", a);
		}
	}
	loc = kc_json_get(st, "checkpointLocation.nodeLocal");
	if (loc && json_object_is_type(loc, json_type_object)) {
		json_object *l = json_object_new_object(), *cl = json_object_new_object();

		if (l && cl) {
			keep(l, loc, "path");
			json_object_object_add(cl, "nodeLocal", l);
			json_object_object_add(ns, "checkpointLocation", cl);
		} else {
			json_object_put(l);
			json_object_put(cl);
		}
	}
	conds = kc_json_get(st, "conditions");
	if (conds && json_object_is_type(conds, json_type_array)) {
		json_object *nc = json_object_new_array();

		for (size_t i = 0; nc && i < json_object_array_length(conds); i++) {
			json_object *c = json_object_array_get_idx(conds, i), *r;
			const char *t = kc_json_str(c, "type");

			if (!t || strcmp(t, "Ready") != 0 || !(r = json_object_new_object()))
				continue;
			keep(r, c, "type");
			keep(r, c, "status");
			keep(r, c, "reason");
			keep(r, c, "lastTransitionTime");
			json_object_array_add(nc, r);
		}
		if (nc)
			json_object_object_add(ns, "conditions", nc);
	}
	json_object_object_add(pcp, "status", ns); /* frees the old status */
}

/* What no decision and no writer reads: managedFields, the last-applied
 * annotation, apiVersion/kind (put back by ctl_store_pcp_get), and for a
 * terminal CR most of its status. */
static void strip_pcp(json_object *pcp, bool terminal)
{
	json_object *meta = kc_json_get(pcp, "metadata"), *ann;

	json_object_object_del(pcp, "apiVersion");
	json_object_object_del(pcp, "kind");
	if (meta && json_object_is_type(meta, json_type_object)) {
		json_object_object_del(meta, "managedFields");
		ann = kc_json_get(meta, "annotations");
		if (ann && json_object_is_type(ann, json_type_object)) {
			json_object_object_del(ann, "kubectl.kubernetes.io/last-applied-configuration");
			if (json_object_object_length(ann) == 0)
				json_object_object_del(meta, "annotations");
		}
	}
	if (terminal)
		strip_terminal_status(pcp);
}

static void change_from(struct ctl_store_change *chg, const struct pcp_rec *r)
{
	if (!chg)
		return;
	chg->terminal = r->terminal;
	ctl_copy(chg->uid, sizeof(chg->uid), r->buf);
	ctl_copy(chg->pod, sizeof(chg->pod), r->buf + r->pod_off);
}

static void bytes_add(struct ctl_store *s, size_t add, size_t sub)
{
	pthread_mutex_lock(&s->bytes_lock);
	s->pcp_bytes += add;
	s->pcp_bytes -= sub < s->pcp_bytes ? sub : s->pcp_bytes;
	pthread_mutex_unlock(&s->bytes_lock);
}

int ctl_store_pcp_put(struct ctl_store *s, json_object *pcp, uint64_t epoch,
		      struct ctl_store_change *chg)
{
	const char *ns = kc_json_str(pcp, "metadata.namespace"), *name = kc_json_str(pcp, "metadata.name");
	const char *uid, *pod, *json;
	char key[CTL_STORE_KEY_MAX], oldpod[CTL_NAME_MAX] = "";
	struct ctl_other x;
	struct pcp_rec *r = NULL, *old = NULL;
	struct ctl_smap_shard *sh;
	size_t jlen, off = 0, len;
	uint64_t h;
	int rc;

	if (ctl_store_key(key, sizeof(key), ns, name) || !ns[0])
		return -EINVAL;
	ctl_other_from_pcp(&x, pcp);
	strip_pcp(pcp, x.terminal);
	uid = kc_json_str(pcp, "metadata.uid");
	pod = kc_json_str(pcp, "spec.podName");
	json = json_object_to_json_string_ext(pcp, JSON_C_TO_STRING_PLAIN);
	if (!json)
		return -ENOMEM;
	jlen = strlen(json);
	len = slen(uid) + slen(pod) + jlen + 3;
	if (slen(uid) + slen(pod) + 2 > UINT16_MAX || jlen > UINT32_MAX)
		return -EINVAL;
	r = malloc(sizeof(*r) + len);
	if (!r)
		return -ENOMEM;
	r->terminal = x.terminal;
	pack(r->buf, &off, uid, CTL_UID_MAX);
	r->pod_off = (uint16_t)off;
	pack(r->buf, &off, pod, CTL_NAME_MAX);
	r->json_off = (uint32_t)off;
	memcpy(r->buf + off, json, jlen + 1);
	r->json_len = jlen;
	h = ctl_smap_hash(key);
	sh = ctl_smap_shard(&s->pcps, h);
	pthread_mutex_lock(&sh->lock);
	rc = ctl_smap_put_locked(sh, h, key, r, epoch, (void **)&old);
	if (old)
		ctl_copy(oldpod, sizeof(oldpod), old->buf + old->pod_off);
	pthread_mutex_unlock(&sh->lock);
	if (rc) {
		free(r);
		return rc;
	}
	bytes_add(s, sizeof(*r) + len, old ? sizeof(*old) + old->json_off + old->json_len + 1 : 0);
	free(old);
	/* The index (one writer: this informer thread). x.name is borrowed from pcp. */
	if (oldpod[0] && (!pod || strcmp(oldpod, pod) != 0))
		ctl_store_idx_remove(s, ns, oldpod, name);
	rc = ctl_store_idx_set(s, ns, pod, &x);
	change_from(chg, r);
	return rc;
}

int ctl_store_pcp_delete(struct ctl_store *s, const char *ns, const char *name,
			 struct ctl_store_change *chg)
{
	char key[CTL_STORE_KEY_MAX];
	struct pcp_rec *r;
	struct ctl_smap_shard *sh;
	uint64_t h;

	if (ctl_store_key(key, sizeof(key), ns, name))
		return -ENOENT;
	h = ctl_smap_hash(key);
	sh = ctl_smap_shard(&s->pcps, h);
	pthread_mutex_lock(&sh->lock);
	r = ctl_smap_del_locked(sh, h, key);
	pthread_mutex_unlock(&sh->lock);
	if (!r)
		return -ENOENT;
	ctl_store_idx_remove(s, ns, r->buf + r->pod_off, name);
	bytes_add(s, 0, sizeof(*r) + r->json_off + r->json_len + 1);
	change_from(chg, r);
	free(r);
	return 0;
}

void ctl_store_pcp_sweep(struct ctl_store *s, uint64_t epoch, ctl_store_gone_fn fn, void *arg)
{
	struct ctl_smap_ent *gone = ctl_smap_sweep(&s->pcps, epoch), *next;
	char ns[CTL_NS_MAX], name[CTL_NAME_MAX];

	for (; gone; gone = next) {
		struct pcp_rec *r = gone->val;

		next = gone->next;
		split_key(gone->key, ns, sizeof(ns), name, sizeof(name));
		ctl_store_idx_remove(s, ns, r->buf + r->pod_off, name);
		bytes_add(s, 0, sizeof(*r) + r->json_off + r->json_len + 1);
		if (fn)
			fn(arg, ns, name, r->buf, r->buf + r->pod_off);
		free(r);
		free(gone);
	}
}

json_object *ctl_store_pcp_get(struct ctl_store *s, const char *ns, const char *name)
{
	char key[CTL_STORE_KEY_MAX];
	struct pcp_rec *r;
	struct ctl_smap_shard *sh;
	json_object *obj = NULL;
	char *copy = NULL;
	size_t len = 0;
	uint64_t h;

	if (ctl_store_key(key, sizeof(key), ns, name))
		return NULL;
	h = ctl_smap_hash(key);
	sh = ctl_smap_shard(&s->pcps, h);
	pthread_mutex_lock(&sh->lock);
	r = ctl_smap_get_locked(sh, h, key);
	if (r) {
		len = r->json_len;
		copy = malloc(len + 1);
		if (copy)
			memcpy(copy, r->buf + r->json_off, len + 1);
	}
	pthread_mutex_unlock(&sh->lock);
	if (copy) /* parsed outside the lock */
		obj = json_tokener_parse(copy);
	free(copy);
	if (obj && json_object_is_type(obj, json_type_object)) {
		char av[128];

		snprintf(av, sizeof(av), "%s/%s", KC_RES_PODCHECKPOINTS.group,
			 KC_RES_PODCHECKPOINTS.version);
		if (kc_json_set_str(obj, "apiVersion", av) != 0 ||
		    kc_json_set_str(obj, "kind", KC_RES_PODCHECKPOINTS.kind) != 0) {
			json_object_put(obj);
			obj = NULL;
		}
	}
	return obj;
}

void ctl_store_pcp_foreach_key(struct ctl_store *s, void (*fn)(void *arg, const char *key),
			       void *arg)
{
	for (size_t i = 0; i < CTL_SMAP_SHARDS; i++) {
		struct ctl_smap_shard *sh = &s->pcps.sh[i];

		pthread_mutex_lock(&sh->lock);
		for (size_t j = 0; j < sh->nb; j++)
			for (struct ctl_smap_ent *e = sh->b[j]; e; e = e->next)
				fn(arg, e->key);
		pthread_mutex_unlock(&sh->lock);
	}
}

size_t ctl_store_pcp_count(struct ctl_store *s)
{
	return ctl_smap_len(&s->pcps);
}

size_t ctl_store_pcp_bytes(struct ctl_store *s)
{
	size_t n;

	pthread_mutex_lock(&s->bytes_lock);
	n = s->pcp_bytes;
	pthread_mutex_unlock(&s->bytes_lock);
	return n;
}
