/*
 * ctl_intern.c - reference-counted interned strings (see ctl_intern.h).
 */
#include "ctl_intern.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

static void no_free(void *v)
{
	(void)v;
}

int ctl_intern_init(struct ctl_intern *in)
{
	return ctl_smap_init(&in->map, NULL);
}

void ctl_intern_cleanup(struct ctl_intern *in)
{
	if (in)
		ctl_smap_cleanup(&in->map, no_free);
}

const char *ctl_intern_get(struct ctl_intern *in, const char *s)
{
	struct ctl_smap_shard *sh;
	struct ctl_smap_ent **pp;
	const char *out = NULL;
	void *old = NULL;
	uint64_t h;

	if (!s || !s[0])
		return "";
	h = ctl_smap_hash(s);
	sh = ctl_smap_shard(&in->map, h);
	pthread_mutex_lock(&sh->lock);
	pp = ctl_smap_find_locked(sh, h, s);
	if (!*pp && ctl_smap_put_locked(sh, h, s, (void *)(uintptr_t)0, 0, &old) != 0)
		goto out;
	pp = ctl_smap_find_locked(sh, h, s); /* the put may have grown the shard */
	(*pp)->val = (void *)((uintptr_t)(*pp)->val + 1);
	out = (*pp)->key;
out:
	pthread_mutex_unlock(&sh->lock);
	return out;
}

void ctl_intern_put(struct ctl_intern *in, const char *s)
{
	struct ctl_smap_shard *sh;
	struct ctl_smap_ent **pp;
	uint64_t h;

	if (!in || !s || !s[0])
		return;
	h = ctl_smap_hash(s);
	sh = ctl_smap_shard(&in->map, h);
	pthread_mutex_lock(&sh->lock);
	pp = ctl_smap_find_locked(sh, h, s);
	if (*pp) {
		uintptr_t n = (uintptr_t)(*pp)->val;

		if (n <= 1)
			(void)ctl_smap_del_locked(sh, h, s);
		else
			(*pp)->val = (void *)(n - 1);
	}
	pthread_mutex_unlock(&sh->lock);
}

size_t ctl_intern_len(struct ctl_intern *in)
{
	return ctl_smap_len(&in->map);
}
