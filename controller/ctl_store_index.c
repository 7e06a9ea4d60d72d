/*
 * ctl_store_index.c - the pod -> CRs index of the compact cache (see
 * ctl_store.h): "ns/podName" -> the CRs naming that pod, each with what the
 * serialisation rule reads.
 */
#include "ctl_store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ctl_store_key(char *buf, size_t cap, const char *ns, const char *name)
{
	int n;

	if (!ns || !name || !name[0])
		return -EINVAL;
	n = snprintf(buf, cap, "%s/%s", ns, name);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

size_t ctl_store_slen(const char *s)
{
	return s ? strlen(s) : 0;
}

void ctl_store_pack_str(char *buf, size_t *off, const char *s, size_t cap)
{
	size_t n = ctl_store_slen(s);

	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(buf + *off, s, n);
	buf[*off + n] = '\0';
	*off += n + 1;
}

void ctl_store_split_key(const char *key, char *ns, size_t nscap, char *name, size_t namecap)
{
	const char *slash = strchr(key, '/');
	size_t n = slash ? (size_t)(slash - key) : 0;

	if (nscap == 0)
		return;
	if (n >= nscap)
		n = nscap - 1;
	memcpy(ns, key, n);
	ns[n] = '\0';
	ctl_copy(name, namecap, slash ? slash + 1 : key);
}

struct ctl_smap_shard *ctl_store_lock(struct ctl_smap *m, const char *ns, const char *name,
				     char key[CTL_STORE_KEY_MAX], uint64_t *h, void **val)
{
	struct ctl_smap_shard *sh;

	*val = NULL;
	if (ctl_store_key(key, CTL_STORE_KEY_MAX, ns, name))
		return NULL;
	*h = ctl_smap_hash(key);
	sh = ctl_smap_shard(m, *h);
	pthread_mutex_lock(&sh->lock);
	*val = ctl_smap_get_locked(sh, *h, key);
	return sh;
}

void *ctl_store_take(struct ctl_smap *m, const char *ns, const char *name)
{
	char key[CTL_STORE_KEY_MAX];
	struct ctl_smap_shard *sh;
	uint64_t h = 0;
	void *v;

	sh = ctl_store_lock(m, ns, name, key, &h, &v);
	if (!sh)
		return NULL;
	if (v)
		(void)ctl_smap_del_locked(sh, h, key);
	pthread_mutex_unlock(&sh->lock);
	return v;
}

void ctl_store_free_sibs(void *v)
{
	struct ctl_store_sibs *ss = v;

	if (!ss)
		return;
	for (size_t i = 0; i < ss->n; i++)
		free(ss->v[i].name);
	free(ss->v);
	free(ss);
}

/* ---------------------------------------------------------------- the index */

static int idx_key(char *buf, size_t cap, const char *ns, const char *pod)
{
	return ctl_store_key(buf, cap, ns, pod);
}

/* Removes CR `name` from the entry of ns/pod. */
void ctl_store_idx_remove(struct ctl_store *s, const char *ns, const char *pod, const char *name)
{
	char key[CTL_STORE_KEY_MAX];
	struct ctl_smap_shard *sh;
	struct ctl_store_sibs *ss;
	uint64_t h;

	if (!pod || !pod[0] || idx_key(key, sizeof(key), ns, pod))
		return;
	h = ctl_smap_hash(key);
	sh = ctl_smap_shard(&s->idx, h);
	pthread_mutex_lock(&sh->lock);
	ss = ctl_smap_get_locked(sh, h, key);
	for (size_t i = 0; ss && i < ss->n; i++) {
		if (strcmp(ss->v[i].name, name) != 0)
			continue;
		free(ss->v[i].name);
		ss->v[i] = ss->v[--ss->n];
		break;
	}
	if (ss && ss->n == 0)
		ctl_store_free_sibs(ctl_smap_del_locked(sh, h, key));
	pthread_mutex_unlock(&sh->lock);
}

/* Inserts or updates CR x->name in the entry of ns/pod. */
int ctl_store_idx_set(struct ctl_store *s, const char *ns, const char *pod, const struct ctl_other *x)
{
	char key[CTL_STORE_KEY_MAX];
	struct ctl_smap_shard *sh;
	struct ctl_store_sibs *ss;
	struct ctl_store_sib *it = NULL;
	uint64_t h;
	void *old = NULL;
	int rc = 0;

	if (!pod || !pod[0] || idx_key(key, sizeof(key), ns, pod))
		return 0;
	h = ctl_smap_hash(key);
	sh = ctl_smap_shard(&s->idx, h);
	pthread_mutex_lock(&sh->lock);
	ss = ctl_smap_get_locked(sh, h, key);
	if (!ss) {
		ss = calloc(1, sizeof(*ss));
		if (!ss || ctl_smap_put_locked(sh, h, key, ss, 0, &old) != 0) {
			free(ss);
			pthread_mutex_unlock(&sh->lock);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < ss->n; i++)
		if (strcmp(ss->v[i].name, x->name) == 0)
			it = &ss->v[i];
	if (!it) {
		char *nm;

		if (ss->n == ss->cap) {
			size_t cap = ss->cap ? ss->cap * 2 : 2;
			struct ctl_store_sib *v = realloc(ss->v, cap * sizeof(*v));

			if (!v) {
				rc = -ENOMEM;
				goto out;
			}
			ss->v = v;
			ss->cap = cap;
		}
		nm = strdup(x->name);
		if (!nm) {
			rc = -ENOMEM;
			goto out;
		}
		it = &ss->v[ss->n++];
		it->name = nm;
	}
	it->creation_ms = x->creation_ms;
	it->dispatched = x->dispatched;
	it->terminal = x->terminal;
	it->deleting = x->deleting;
out:
	if (ss && ss->n == 0)
		ctl_store_free_sibs(ctl_smap_del_locked(sh, h, key));
	pthread_mutex_unlock(&sh->lock);
	return rc;
}

size_t ctl_store_wake_pod(struct ctl_store *s, const char *ns, const char *pod, const char *self,
			  void (*fn)(void *arg, const char *key), void *arg)
{
	char key[CTL_STORE_KEY_MAX], cr[CTL_STORE_KEY_MAX];
	char **names = NULL;
	struct ctl_smap_shard *sh;
	struct ctl_store_sibs *ss;
	size_t n = 0;
	uint64_t h;

	if (idx_key(key, sizeof(key), ns, pod))
		return 0;
	h = ctl_smap_hash(key);
	sh = ctl_smap_shard(&s->idx, h);
	pthread_mutex_lock(&sh->lock);
	ss = ctl_smap_get_locked(sh, h, key);
	if (ss && ss->n)
		names = calloc(ss->n, sizeof(*names));
	for (size_t i = 0; names && i < ss->n; i++) {
		if (ss->v[i].terminal || (self && strcmp(ss->v[i].name, self) == 0))
			continue;
		names[n] = strdup(ss->v[i].name);
		if (names[n])
			n++;
	}
	pthread_mutex_unlock(&sh->lock);
	for (size_t i = 0; i < n; i++) {
		if (ctl_store_key(cr, sizeof(cr), ns, names[i]) == 0)
			fn(arg, cr);
		free(names[i]);
	}
	free(names);
	return n;
}

size_t ctl_store_siblings(struct ctl_store *s, const char *ns, const char *pod, const char *self,
			  struct ctl_other *others, char (*names)[CTL_NAME_MAX], size_t cap)
{
	char key[CTL_STORE_KEY_MAX];
	struct ctl_smap_shard *sh;
	struct ctl_store_sibs *ss;
	size_t n = 0;
	uint64_t h;

	if (idx_key(key, sizeof(key), ns, pod))
		return 0;
	h = ctl_smap_hash(key);
	sh = ctl_smap_shard(&s->idx, h);
	pthread_mutex_lock(&sh->lock);
	ss = ctl_smap_get_locked(sh, h, key);
	for (size_t i = 0; ss && i < ss->n && n < cap; i++) {
		const struct ctl_store_sib *it = &ss->v[i];

		if (it->terminal || (self && strcmp(it->name, self) == 0))
			continue;
		ctl_copy(names[n], CTL_NAME_MAX, it->name);
		others[n] = (struct ctl_other){ .name = names[n], .creation_ms = it->creation_ms,
						.dispatched = it->dispatched, .terminal = false,
						.deleting = it->deleting };
		n++;
	}
	pthread_mutex_unlock(&sh->lock);
	return n;
}

