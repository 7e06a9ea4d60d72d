/*
 * ctl_smap.c - a string-keyed hash map split into shards (see ctl_smap.h).
 */
#include "ctl_smap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t ctl_smap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static size_t ent_size(const char *key)
{
	return sizeof(struct ctl_smap_ent) + strlen(key) + 1;
}

static void ent_free(struct ctl_slabs *slabs, struct ctl_smap_ent *e)
{
	if (e)
		ctl_slabs_free(slabs, e, ent_size(e->key));
}

void ctl_smap_ent_free(struct ctl_smap *m, struct ctl_smap_ent *e)
{
	ent_free(m->sh[0].slabs, e);
}

int ctl_smap_init(struct ctl_smap *m, struct ctl_slabs *slabs)
{
	for (size_t i = 0; i < CTL_SMAP_SHARDS; i++) {
		struct ctl_smap_shard *sh = &m->sh[i];

		sh->slabs = slabs;
		sh->len = 0;
		sh->nb = CTL_SMAP_MIN_BUCKETS;
		sh->b = calloc(sh->nb, sizeof(*sh->b));
		if (!sh->b || pthread_mutex_init(&sh->lock, NULL) != 0)
			return -ENOMEM; /* ctl_smap_cleanup frees what was made */
	}
	return 0;
}

void ctl_smap_cleanup(struct ctl_smap *m, void (*free_val)(void *))
{
	for (size_t i = 0; i < CTL_SMAP_SHARDS; i++) {
		struct ctl_smap_shard *sh = &m->sh[i];

		if (!sh->b)
			continue;
		for (size_t j = 0; j < sh->nb; j++) {
			struct ctl_smap_ent *e = sh->b[j], *next;

			for (; e; e = next) {
				next = e->next;
				free_val(e->val);
				ent_free(sh->slabs, e);
			}
		}
		free(sh->b);
		sh->b = NULL;
		pthread_mutex_destroy(&sh->lock);
	}
}

struct ctl_smap_shard *ctl_smap_shard(struct ctl_smap *m, uint64_t h)
{
	return &m->sh[(h >> 56) % CTL_SMAP_SHARDS];
}

struct ctl_smap_ent **ctl_smap_find_locked(struct ctl_smap_shard *sh, uint64_t h, const char *key)
{
	struct ctl_smap_ent **pp = &sh->b[h & (sh->nb - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->h == h && strcmp((*pp)->key, key) == 0)
			return pp;
	return pp;
}


/* Rehashes the shard into nb buckets (a power of two); keeps the old ones if out of memory. */
static void ctl_smap_resize_locked(struct ctl_smap_shard *sh, size_t nb)
{
	struct ctl_smap_ent **b = calloc(nb, sizeof(*b));

	if (!b)
		return; /* longer chains (or more buckets), still correct */
	for (size_t i = 0; i < sh->nb; i++) {
		struct ctl_smap_ent *e = sh->b[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = b[e->h & (nb - 1)];
			b[e->h & (nb - 1)] = e;
		}
	}
	free(sh->b);
	sh->b = b;
	sh->nb = nb;
}

/* After removals: a quarter full or less, half the buckets (so a map emptied shrinks back). */
static void ctl_smap_shrink_locked(struct ctl_smap_shard *sh)
{
	if (sh->nb > CTL_SMAP_MIN_BUCKETS && sh->len <= sh->nb / 4)
		ctl_smap_resize_locked(sh, sh->nb / 2);
}

/* Inserts or replaces key's value (taking val); *old gets the value replaced (or NULL). */
int ctl_smap_put_locked(struct ctl_smap_shard *sh, uint64_t h, const char *key, void *val, uint64_t epoch,
		      void **old)
{
	struct ctl_smap_ent **pp = ctl_smap_find_locked(sh, h, key), *e;
	size_t klen;

	*old = NULL;
	if (*pp) {
		*old = (*pp)->val;
		(*pp)->val = val;
		(*pp)->epoch = epoch;
		return 0;
	}
	klen = strlen(key);
	e = ctl_slabs_alloc(sh->slabs, ent_size(key));
	if (!e)
		return -ENOMEM;
	e->h = h;
	e->epoch = epoch;
	e->val = val;
	memcpy(e->key, key, klen + 1);
	e->next = NULL;
	*pp = e;
	if (++sh->len > sh->nb)
		ctl_smap_resize_locked(sh, sh->nb * 2);
	return 0;
}

/* Unlinks key; its value, or NULL. */
void *ctl_smap_del_locked(struct ctl_smap_shard *sh, uint64_t h, const char *key)
{
	struct ctl_smap_ent **pp = ctl_smap_find_locked(sh, h, key), *e = *pp;
	void *val;

	if (!e)
		return NULL;
	*pp = e->next;
	val = e->val;
	ent_free(sh->slabs, e);
	sh->len--;
	ctl_smap_shrink_locked(sh);
	return val;
}

void *ctl_smap_get_locked(struct ctl_smap_shard *sh, uint64_t h, const char *key)
{
	struct ctl_smap_ent *e = *ctl_smap_find_locked(sh, h, key);

	return e ? e->val : NULL;
}

size_t ctl_smap_len(struct ctl_smap *m)
{
	size_t n = 0;

	for (size_t i = 0; i < CTL_SMAP_SHARDS; i++) {
		pthread_mutex_lock(&m->sh[i].lock);
		n += m->sh[i].len;
		pthread_mutex_unlock(&m->sh[i].lock);
	}
	return n;
}

/* Unlinks every entry of m whose epoch is not `epoch` into *gone (a list). */
struct ctl_smap_ent *ctl_smap_sweep(struct ctl_smap *m, uint64_t epoch)
{
	struct ctl_smap_ent *gone = NULL;

	for (size_t i = 0; i < CTL_SMAP_SHARDS; i++) {
		struct ctl_smap_shard *sh = &m->sh[i];

		pthread_mutex_lock(&sh->lock);
		for (size_t j = 0; j < sh->nb; j++) {
			struct ctl_smap_ent **pp = &sh->b[j];

			while (*pp) {
				struct ctl_smap_ent *e = *pp;

				if (e->epoch == epoch) {
					pp = &e->next;
					continue;
				}
				*pp = e->next;
				sh->len--;
				e->next = gone;
				gone = e;
			}
		}
		while (sh->nb > CTL_SMAP_MIN_BUCKETS && sh->len <= sh->nb / 4)
			ctl_smap_resize_locked(sh, sh->nb / 2);
		pthread_mutex_unlock(&sh->lock);
	}
	return gone;
}

