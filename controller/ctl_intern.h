/*
 * ctl_intern.h - reference-counted interned strings (prefix ctl_intern_):
 * node names, pod phases, artifact directories and the like, which
 * thousands of cache records share, kept once each.
 *
 * A ctl_smap keyed by the string; the interned copy is the entry's inline
 * key (entries never move: growing relinks them), its value the count.
 * Every call takes one shard lock, a leaf lock (nothing else is locked
 * under it), so callers may hold their own locks.
 *
 * Ownership: ctl_intern_get hands out a borrowed pointer that stays valid
 * until the matching ctl_intern_put; "" (and NULL) are never counted and
 * come back as the static "". Cleanup frees every string, counted or not.
 */
#ifndef PCP_CTL_INTERN_H
#define PCP_CTL_INTERN_H

#include <stddef.h>

#include "ctl_smap.h"

struct ctl_intern {
	struct ctl_smap map;
};

/* 0 or -ENOMEM (then ctl_intern_cleanup frees what was made). */
int ctl_intern_init(struct ctl_intern *in);
void ctl_intern_cleanup(struct ctl_intern *in);
/* The shared copy of s, its count + 1; NULL when out of memory. */
const char *ctl_intern_get(struct ctl_intern *in, const char *s);
/* Drops one reference to s (a pointer from ctl_intern_get; NULL and "" are fine). */
void ctl_intern_put(struct ctl_intern *in, const char *s);
/* Distinct strings held. */
size_t ctl_intern_len(struct ctl_intern *in);

#endif
