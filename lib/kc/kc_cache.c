/*
 * kc_cache.c - objects keyed by "namespace/name" (or "name"): a chained hash
 * map under one mutex. Values are json-c references owned by the cache.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_internal.h"

struct kc_entry {
	struct kc_entry *next;
	json_object *obj;
	uint64_t hash;
	char key[]; /* "ns/name" */
};

struct kc_cache {
	pthread_mutex_t lock;
	struct kc_entry **buckets;
	size_t nbuckets; /* power of two */
	size_t len;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static int make_key(const char *ns, const char *name, char *buf, size_t cap)
{
	int n;

	if (!name || !name[0])
		return -EINVAL;
	n = ns && ns[0] ? snprintf(buf, cap, "%s/%s", ns, name) : snprintf(buf, cap, "%s", name);
	return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

int kc_cache_key(json_object *obj, char *buf, size_t cap)
{
	return make_key(kc_json_str(obj, "metadata.namespace"), kc_json_str(obj, "metadata.name"),
			buf, cap);
}

int kc_cache_new(struct kc_cache **out)
{
	struct kc_cache *c;

	if (!out)
		return -EINVAL;
	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->nbuckets = 64;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets || pthread_mutex_init(&c->lock, NULL)) {
		free(c->buckets);
		free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

static void clear_buckets(struct kc_entry **b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct kc_entry *e = b[i], *next;

		for (; e; e = next) {
			next = e->next;
			json_object_put(e->obj);
			free(e);
		}
		b[i] = NULL;
	}
}

void kc_cache_free(struct kc_cache *cache)
{
	if (!cache)
		return;
	clear_buckets(cache->buckets, cache->nbuckets);
	free(cache->buckets);
	pthread_mutex_destroy(&cache->lock);
	free(cache);
}

static struct kc_entry **find(struct kc_entry **b, size_t nb, const char *key, uint64_t h)
{
	struct kc_entry **pp = &b[h & (nb - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
			return pp;
	return pp;
}

/* Doubles the table when the load passes 1 (best effort: on ENOMEM the chains grow). */
static void maybe_grow(struct kc_cache *c)
{
	struct kc_entry **nb;
	size_t n;

	if (c->len < c->nbuckets || c->nbuckets > SIZE_MAX / 2 / sizeof(*nb))
		return;
	n = c->nbuckets * 2;
	nb = calloc(n, sizeof(*nb));
	if (!nb)
		return;
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct kc_entry *e = c->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(c->buckets);
	c->buckets = nb;
	c->nbuckets = n;
}

/* With the lock held: inserts or replaces. Takes a new reference to obj. */
static int put_locked(struct kc_cache *c, const char *key, json_object *obj)
{
	uint64_t h = fnv1a(key);
	struct kc_entry **pp = find(c->buckets, c->nbuckets, key, h), *e;
	size_t klen = strlen(key);

	if (*pp) {
		json_object_put((*pp)->obj);
		(*pp)->obj = json_object_get(obj);
		return 0;
	}
	e = malloc(sizeof(*e) + klen + 1);
	if (!e)
		return -ENOMEM;
	memcpy(e->key, key, klen + 1);
	e->hash = h;
	e->obj = json_object_get(obj);
	e->next = NULL;
	*pp = e;
	c->len++;
	maybe_grow(c);
	return 0;
}

int kc_cache_put(struct kc_cache *cache, json_object *obj)
{
	char key[512];
	int rc;

	if (!cache || !obj)
		return -EINVAL;
	rc = kc_cache_key(obj, key, sizeof(key));
	if (rc)
		return rc;
	pthread_mutex_lock(&cache->lock);
	rc = put_locked(cache, key, obj);
	pthread_mutex_unlock(&cache->lock);
	return rc;
}

int kc_cache_delete(struct kc_cache *cache, const char *ns, const char *name)
{
	char key[512];
	struct kc_entry **pp, *e;
	int rc;

	if (!cache)
		return -EINVAL;
	rc = make_key(ns, name, key, sizeof(key));
	if (rc)
		return rc;
	pthread_mutex_lock(&cache->lock);
	pp = find(cache->buckets, cache->nbuckets, key, fnv1a(key));
	e = *pp;
	if (!e) {
		rc = -ENOENT;
	} else {
		*pp = e->next;
		json_object_put(e->obj);
		free(e);
		cache->len--;
	}
	pthread_mutex_unlock(&cache->lock);
	return rc;
}

json_object *kc_cache_get(struct kc_cache *cache, const char *ns, const char *name)
{
	char key[512];
	json_object *obj = NULL;
	struct kc_entry *e;

	if (!cache || make_key(ns, name, key, sizeof(key)))
		return NULL;
	pthread_mutex_lock(&cache->lock);
	e = *find(cache->buckets, cache->nbuckets, key, fnv1a(key));
	if (e)
		obj = json_object_get(e->obj);
	pthread_mutex_unlock(&cache->lock);
	return obj;
}

size_t kc_cache_len(struct kc_cache *cache)
{
	size_t n;

	if (!cache)
		return 0;
	pthread_mutex_lock(&cache->lock);
	n = cache->len;
	pthread_mutex_unlock(&cache->lock);
	return n;
}

void kc_cache_foreach(struct kc_cache *cache, void (*fn)(void *arg, json_object *obj), void *arg)
{
	if (!cache || !fn)
		return;
	pthread_mutex_lock(&cache->lock);
	for (size_t i = 0; i < cache->nbuckets; i++)
		for (struct kc_entry *e = cache->buckets[i]; e; e = e->next)
			fn(arg, e->obj);
	pthread_mutex_unlock(&cache->lock);
}

int kc_cache_replace(struct kc_cache *cache, json_object *items)
{
	struct kc_cache *fresh = NULL;
	struct kc_entry **tb;
	size_t tn, tl;
	int rc;

	if (!cache || !items || !json_object_is_type(items, json_type_array))
		return -EINVAL;
	/* Build aside, then swap: on failure the old content stays. */
	rc = kc_cache_new(&fresh);
	if (rc)
		return rc;
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		json_object *o = json_object_array_get_idx(items, i);
		char key[512];

		if (kc_cache_key(o, key, sizeof(key)))
			continue; /* an item without a name cannot be keyed */
		rc = put_locked(fresh, key, o);
		if (rc)
			goto out;
	}
	pthread_mutex_lock(&cache->lock);
	tb = cache->buckets;
	tn = cache->nbuckets;
	tl = cache->len;
	cache->buckets = fresh->buckets;
	cache->nbuckets = fresh->nbuckets;
	cache->len = fresh->len;
	fresh->buckets = tb;
	fresh->nbuckets = tn;
	fresh->len = tl;
	pthread_mutex_unlock(&cache->lock);
out:
	kc_cache_free(fresh);
	return rc;
}
