/*
 * ctl_smap.h - a string-keyed hash map split into CTL_SMAP_SHARDS shards,
 * each a chained hash under its own mutex that doubles its buckets past one
 * entry per bucket and halves them when a quarter full or less (down to
 * CTL_SMAP_MIN_BUCKETS), so a map emptied gives its memory back
 * (prefix ctl_smap_). Removals (del, sweep) may rehash: a slot from
 * ctl_smap_find_locked is valid only until the next put or removal. The building block of ctl_store.c.
 *
 * The caller picks the shard (ctl_smap_shard of the key's hash), takes its
 * lock, and uses the _locked calls; values are opaque (void *) and owned by
 * the caller's conventions: put hands back the value it replaced, del the
 * value it unlinked, cleanup frees every value with the function given.
 * Each entry also carries an epoch (mark and sweep, kc.h).
 */
#ifndef PCP_CTL_SMAP_H
#define PCP_CTL_SMAP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl_slab.h"

#define CTL_SMAP_SHARDS 16u
#define CTL_SMAP_MIN_BUCKETS 16u /* per shard; a shard shrinks back to it when emptied */

struct ctl_smap_ent {
	struct ctl_smap_ent *next;
	uint64_t h;
	uint64_t epoch;
	void *val;
	char key[];
};

struct ctl_smap_shard {
	pthread_mutex_t lock;
	struct ctl_smap_ent **b;
	size_t nb, len;
	struct ctl_slabs *slabs; /* where the entries live (borrowed; NULL: malloc) */
};

struct ctl_smap {
	struct ctl_smap_shard sh[CTL_SMAP_SHARDS];
};

/* 0 or -ENOMEM (then ctl_smap_cleanup frees what was made). The entries
 * (with their keys) come from slabs (borrowed, outlives the map), or from
 * malloc when it is NULL. */
int ctl_smap_init(struct ctl_smap *m, struct ctl_slabs *slabs);
void ctl_smap_cleanup(struct ctl_smap *m, void (*free_val)(void *));
uint64_t ctl_smap_hash(const char *s);
struct ctl_smap_shard *ctl_smap_shard(struct ctl_smap *m, uint64_t h);
/* The slot holding key's entry, or the empty slot where it would go. */
struct ctl_smap_ent **ctl_smap_find_locked(struct ctl_smap_shard *sh, uint64_t h, const char *key);
/* Inserts or replaces key's value (taking val); *old gets the replaced value or NULL. */
int ctl_smap_put_locked(struct ctl_smap_shard *sh, uint64_t h, const char *key, void *val,
			uint64_t epoch, void **old);
/* Unlinks key; its value, or NULL. */
void *ctl_smap_del_locked(struct ctl_smap_shard *sh, uint64_t h, const char *key);
void *ctl_smap_get_locked(struct ctl_smap_shard *sh, uint64_t h, const char *key);
/* Entries in all shards (each shard locked in turn). */
size_t ctl_smap_len(struct ctl_smap *m);
/* Unlinks every entry whose epoch is not `epoch`; the caller frees each
 * entry of the list (next) with ctl_smap_ent_free. */
struct ctl_smap_ent *ctl_smap_sweep(struct ctl_smap *m, uint64_t epoch);
/* Frees one entry unlinked by ctl_smap_sweep (not its value); NULL is fine. */
void ctl_smap_ent_free(struct ctl_smap *m, struct ctl_smap_ent *e);

#endif
