/*
 * ctl_store.c - the controller's compact cache (see ctl_store.h): the
 * store itself and its PodCheckpoint records (text, or packed when
 * terminal: ctl_store_pack.c). Pods: ctl_store_pod.c; the pod -> CRs
 * index: ctl_store_index.c.
 *
 * Three sharded string-keyed maps (ctl_smap.h: pods, CRs, the pod -> CRs
 * index) and the interned strings. Each entry holds its key inline and one
 * value allocation.
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

/* ---------------------------------------------------------------- records */

/* A CR that is not terminal: uid \0 pod \0 json \0 packed after the struct. */
struct pcp_rec {
	uint8_t kind; /* CTL_STORE_REC_TEXT */
	bool terminal; /* the text form of a terminal CR that does not pack */
	uint16_t pod_off;
	uint32_t json_off;
	size_t json_len;
	char buf[];
};

/* No intern references dropped: only when the whole store goes. */
static void free_plain(void *v)
{
	free(v);
}

/* ---------------------------------------------------------------- either CR record */

static bool rec_is_term(const void *v)
{
	return *(const uint8_t *)v == CTL_STORE_REC_TERM;
}

static const char *rec_pod(const void *v)
{
	const struct pcp_rec *r = v;

	return rec_is_term(v) ? ctl_store_term_pod(v) : r->buf + r->pod_off;
}

static void rec_uid(const void *v, char *buf, size_t cap)
{
	if (rec_is_term(v))
		ctl_store_term_uid(v, buf, cap);
	else
		ctl_copy(buf, cap, ((const struct pcp_rec *)v)->buf);
}

static size_t rec_size(const void *v)
{
	const struct pcp_rec *r = v;

	return rec_is_term(v) ? ctl_store_term_size(v) : sizeof(*r) + r->json_off + r->json_len + 1;
}

static void rec_free(struct ctl_store *s, void *v)
{
	if (!v)
		return;
	if (rec_is_term(v))
		ctl_store_term_free(s, v);
	else
		ctl_slabs_free(&s->slabs, v, rec_size(v));
}

int ctl_store_new(struct ctl_store **out)
{
	struct ctl_store *s;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (ctl_slabs_init(&s->slabs) || ctl_smap_init(&s->pods, &s->slabs) ||
	    ctl_smap_init(&s->pcps, &s->slabs) || ctl_smap_init(&s->idx, NULL) ||
	    ctl_intern_init(&s->strs) || pthread_mutex_init(&s->bytes_lock, NULL)) {
		ctl_store_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

void ctl_store_free(struct ctl_store *s)
{
	if (!s)
		return;
	if (s->pcps.sh[0].b) {
		/* every CR record back where it came from (texts, slab slots) */
		struct ctl_smap_ent *gone = ctl_smap_sweep(&s->pcps, UINT64_MAX), *next;

		for (; gone; gone = next) {
			next = gone->next;
			rec_free(s, gone->val);
			ctl_smap_ent_free(&s->pcps, gone);
		}
	}
	if (s->pods.sh[0].b)
		ctl_store_pod_sweep(s, UINT64_MAX, NULL, NULL); /* the pod records, likewise */
	ctl_smap_cleanup(&s->pods, free_plain);
	ctl_smap_cleanup(&s->pcps, free_plain);
	ctl_smap_cleanup(&s->idx, ctl_store_free_sibs);
	ctl_intern_cleanup(&s->strs); /* after the records that referenced its strings */
	ctl_slabs_cleanup(&s->slabs); /* last: the maps' entries lived there */
	pthread_mutex_destroy(&s->bytes_lock);
	free(s);
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

static void change_from(struct ctl_store_change *chg, const void *r)
{
	if (!chg)
		return;
	chg->terminal = rec_is_term(r) || ((const struct pcp_rec *)r)->terminal;
	rec_uid(r, chg->uid, sizeof(chg->uid));
	ctl_copy(chg->pod, sizeof(chg->pod), rec_pod(r));
}

static void bytes_add(struct ctl_store *s, size_t add, size_t sub)
{
	pthread_mutex_lock(&s->bytes_lock);
	s->pcp_bytes += add;
	s->pcp_bytes -= sub < s->pcp_bytes ? sub : s->pcp_bytes;
	pthread_mutex_unlock(&s->bytes_lock);
}

/* The text record of pcp (stripped in place). */
static int text_new(struct ctl_store *s, json_object *pcp, bool terminal, struct pcp_rec **out)
{
	const char *uid, *pod, *json;
	struct pcp_rec *r;
	size_t jlen, len, off = 0;

	*out = NULL;
	strip_pcp(pcp, terminal);
	uid = kc_json_str(pcp, "metadata.uid");
	pod = kc_json_str(pcp, "spec.podName");
	json = json_object_to_json_string_ext(pcp, JSON_C_TO_STRING_PLAIN);
	if (!json)
		return -ENOMEM;
	jlen = strlen(json);
	len = ctl_store_slen(uid) + ctl_store_slen(pod) + jlen + 3;
	if (ctl_store_slen(uid) + ctl_store_slen(pod) + 2 > UINT16_MAX || jlen > UINT32_MAX)
		return -EINVAL;
	r = ctl_slabs_alloc(&s->slabs, sizeof(*r) + len);
	if (!r)
		return -ENOMEM;
	r->kind = CTL_STORE_REC_TEXT;
	r->terminal = terminal;
	ctl_store_pack_str(r->buf, &off, uid, CTL_UID_MAX);
	r->pod_off = (uint16_t)off;
	ctl_store_pack_str(r->buf, &off, pod, CTL_NAME_MAX);
	r->json_off = (uint32_t)off;
	memcpy(r->buf + off, json, jlen + 1);
	r->json_len = jlen;
	*out = r;
	return 0;
}

int ctl_store_pcp_put(struct ctl_store *s, json_object *pcp, uint64_t epoch,
		      struct ctl_store_change *chg)
{
	const char *ns = kc_json_str(pcp, "metadata.namespace"), *name = kc_json_str(pcp, "metadata.name");
	char key[CTL_STORE_KEY_MAX], oldpod[CTL_NAME_MAX] = "", nsb[CTL_NS_MAX], nameb[CTL_NAME_MAX];
	struct ctl_other x;
	void *r = NULL, *old = NULL;
	struct ctl_smap_shard *sh;
	const char *pod;
	uint64_t h;
	int rc;

	if (ctl_store_key(key, sizeof(key), ns, name) || !ns[0])
		return -EINVAL;
	ctl_copy(nsb, sizeof(nsb), ns); /* the text form strips pcp in place */
	ctl_copy(nameb, sizeof(nameb), name);
	ctl_other_from_pcp(&x, pcp);
	x.name = nameb;
	rc = -E2BIG;
	if (x.terminal)
		rc = ctl_store_term_new(s, pcp, nsb, nameb, (struct ctl_store_term **)&r);
	if (rc == -E2BIG)
		rc = text_new(s, pcp, x.terminal, (struct pcp_rec **)&r);
	if (rc)
		return rc;
	pod = rec_pod(r);
	h = ctl_smap_hash(key);
	sh = ctl_smap_shard(&s->pcps, h);
	pthread_mutex_lock(&sh->lock);
	rc = ctl_smap_put_locked(sh, h, key, r, epoch, &old);
	if (old)
		ctl_copy(oldpod, sizeof(oldpod), rec_pod(old));
	pthread_mutex_unlock(&sh->lock);
	if (rc) {
		rec_free(s, r);
		return rc;
	}
	bytes_add(s, rec_size(r), old ? rec_size(old) : 0);
	rec_free(s, old);
	/* The index holds the CRs that are not terminal (one writer: this informer thread). */
	if (oldpod[0] && strcmp(oldpod, pod) != 0)
		ctl_store_idx_remove(s, nsb, oldpod, nameb);
	if (x.terminal)
		ctl_store_idx_remove(s, nsb, pod, nameb);
	else
		rc = ctl_store_idx_set(s, nsb, pod, &x);
	change_from(chg, r); /* r stays valid: only this thread replaces or frees it */
	return rc;
}

int ctl_store_pcp_delete(struct ctl_store *s, const char *ns, const char *name,
			 struct ctl_store_change *chg)
{
	void *r = ctl_store_take(&s->pcps, ns, name);

	if (!r)
		return -ENOENT;
	ctl_store_idx_remove(s, ns, rec_pod(r), name);
	bytes_add(s, 0, rec_size(r));
	change_from(chg, r);
	rec_free(s, r);
	return 0;
}

void ctl_store_pcp_sweep(struct ctl_store *s, uint64_t epoch, ctl_store_gone_fn fn, void *arg)
{
	struct ctl_smap_ent *gone = ctl_smap_sweep(&s->pcps, epoch), *next;
	char ns[CTL_NS_MAX], name[CTL_NAME_MAX], uid[CTL_UID_MAX];

	for (; gone; gone = next) {
		void *r = gone->val;

		next = gone->next;
		ctl_store_split_key(gone->key, ns, sizeof(ns), name, sizeof(name));
		ctl_store_idx_remove(s, ns, rec_pod(r), name);
		bytes_add(s, 0, rec_size(r));
		rec_uid(r, uid, sizeof(uid));
		if (fn)
			fn(arg, ns, name, uid, rec_pod(r));
		rec_free(s, r);
		ctl_smap_ent_free(&s->pcps, gone);
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

	sh = ctl_store_lock(&s->pcps, ns, name, key, &h, (void **)&r);
	if (!sh)
		return NULL;
	if (r && rec_is_term(r)) {
		/* built under the lock: its interned strings live as long as the record */
		obj = ctl_store_term_json((const struct ctl_store_term *)r, ns, name);
	} else if (r) {
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

size_t ctl_store_mapped_bytes(struct ctl_store *s)
{
	size_t n = 0;

	n = ctl_slabs_blocks(&s->slabs);
	return n * CTL_SLAB_BLOCK;
}
