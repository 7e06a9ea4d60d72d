/*
 * ctl_slab.c - fixed-size slots in blocks of their own (see ctl_slab.h).
 */
#include "ctl_slab.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* At the start of each block; slots follow, from the first multiple of 16. */
struct ctl_slab_blk {
	struct ctl_slab_blk *next, *prev; /* in sl->partial or sl->full */
	void *free;                       /* freed slots, each holding the next */
	size_t used, bumped;              /* slots handed out; slots ever handed out */
	size_t cap;
};

#define HDR ((sizeof(struct ctl_slab_blk) + 15u) & ~(size_t)15u)

int ctl_slab_init(struct ctl_slab *sl, size_t slot)
{
	memset(sl, 0, sizeof(*sl));
	if (slot < 16 || slot > 4096)
		return -EINVAL;
	sl->slot = (slot + 15u) & ~(size_t)15u;
	return pthread_mutex_init(&sl->lock, NULL) ? -ENOMEM : 0;
}

static void unlink_blk(struct ctl_slab_blk **head, struct ctl_slab_blk *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		*head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->next = b->prev = NULL;
}

static void push_blk(struct ctl_slab_blk **head, struct ctl_slab_blk *b)
{
	b->prev = NULL;
	b->next = *head;
	if (*head)
		(*head)->prev = b;
	*head = b;
}

static void unmap_all(struct ctl_slab_blk *b)
{
	for (struct ctl_slab_blk *next; b; b = next) {
		next = b->next;
		munmap(b, CTL_SLAB_BLOCK);
	}
}

void ctl_slab_cleanup(struct ctl_slab *sl)
{
	if (!sl || !sl->slot)
		return;
	unmap_all(sl->partial);
	unmap_all(sl->full);
	sl->partial = sl->full = NULL;
	sl->nblocks = 0;
	pthread_mutex_destroy(&sl->lock);
	sl->slot = 0;
}

/* A new CTL_SLAB_BLOCK-aligned block: map twice the size, keep the aligned half. */
static struct ctl_slab_blk *map_blk(size_t slot)
{
	size_t len = 2 * (size_t)CTL_SLAB_BLOCK, lead;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct ctl_slab_blk *b;

	if (p == MAP_FAILED)
		return NULL;
	lead = (CTL_SLAB_BLOCK - (uintptr_t)p % CTL_SLAB_BLOCK) % CTL_SLAB_BLOCK;
	if (lead)
		munmap(p, lead);
	munmap(p + lead + CTL_SLAB_BLOCK, CTL_SLAB_BLOCK - lead);
	b = (struct ctl_slab_blk *)(void *)(p + lead);
	memset(b, 0, sizeof(*b));
	b->cap = (CTL_SLAB_BLOCK - HDR) / slot;
	return b;
}

void *ctl_slab_alloc(struct ctl_slab *sl)
{
	struct ctl_slab_blk *b;
	void *p = NULL;

	if (CTL_SLAB_MALLOC)
		return calloc(1, sl->slot);
	pthread_mutex_lock(&sl->lock);
	b = sl->partial;
	if (!b) {
		b = map_blk(sl->slot);
		if (!b)
			goto out;
		sl->nblocks++;
		push_blk(&sl->partial, b);
	}
	if (b->free) {
		p = b->free;
		memcpy(&b->free, p, sizeof(void *));
	} else {
		p = (char *)b + HDR + b->bumped * sl->slot; /* fresh pages: already zero */
		b->bumped++;
	}
	if (++b->used == b->cap) {
		unlink_blk(&sl->partial, b);
		push_blk(&sl->full, b);
	}
	memset(p, 0, sl->slot);
out:
	pthread_mutex_unlock(&sl->lock);
	return p;
}

void ctl_slab_free(struct ctl_slab *sl, void *p)
{
	struct ctl_slab_blk *b;

	if (!p)
		return;
	if (CTL_SLAB_MALLOC) {
		free(p);
		return;
	}
	b = (struct ctl_slab_blk *)(void *)((uintptr_t)p & ~(uintptr_t)(CTL_SLAB_BLOCK - 1));
	pthread_mutex_lock(&sl->lock);
	if (b->used == b->cap) {
		unlink_blk(&sl->full, b);
		push_blk(&sl->partial, b);
	}
	memcpy(p, &b->free, sizeof(void *));
	b->free = p;
	if (--b->used == 0) {
		unlink_blk(&sl->partial, b);
		munmap(b, CTL_SLAB_BLOCK); /* an empty block goes back at once */
		sl->nblocks--;
	}
	pthread_mutex_unlock(&sl->lock);
}

size_t ctl_slab_blocks(struct ctl_slab *sl)
{
	size_t n;

	pthread_mutex_lock(&sl->lock);
	n = sl->nblocks;
	pthread_mutex_unlock(&sl->lock);
	return n;
}

/* ---------------------------------------------------------------- size classes */

static const size_t slabs_slots[CTL_SLABS_N] = CTL_SLABS_SLOTS;

static struct ctl_slab *slabs_class(struct ctl_slabs *ss, size_t n)
{
	if (!ss)
		return NULL;
	for (size_t i = 0; i < CTL_SLABS_N; i++)
		if (n <= slabs_slots[i])
			return &ss->c[i];
	return NULL;
}

int ctl_slabs_init(struct ctl_slabs *ss)
{
	memset(ss, 0, sizeof(*ss));
	for (size_t i = 0; i < CTL_SLABS_N; i++)
		if (ctl_slab_init(&ss->c[i], slabs_slots[i]))
			return -ENOMEM;
	return 0;
}

void ctl_slabs_cleanup(struct ctl_slabs *ss)
{
	if (!ss)
		return;
	for (size_t i = 0; i < CTL_SLABS_N; i++)
		ctl_slab_cleanup(&ss->c[i]);
}

void *ctl_slabs_alloc(struct ctl_slabs *ss, size_t n)
{
	struct ctl_slab *sl = slabs_class(ss, n);

	return sl ? ctl_slab_alloc(sl) : calloc(1, n);
}

void ctl_slabs_free(struct ctl_slabs *ss, void *p, size_t n)
{
	struct ctl_slab *sl = slabs_class(ss, n);

	if (sl)
		ctl_slab_free(sl, p);
	else
		free(p);
}

size_t ctl_slabs_blocks(struct ctl_slabs *ss)
{
	size_t n = 0;

	for (size_t i = 0; ss && i < CTL_SLABS_N; i++)
		n += ctl_slab_blocks(&ss->c[i]);
	return n;
}
