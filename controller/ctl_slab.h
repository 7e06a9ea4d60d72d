/*
 * ctl_slab.h - fixed-size slots for the cache's long-lived small records
 * (prefix ctl_slab_): the packed terminal CRs (ctl_store_pack.c).
 *
 * Why not malloc: a CR in flight is ~1 KB of text; when it turns terminal
 * its ~100 B packed record, from malloc, lands in the holes the freed texts
 * left, one or two per page over the whole region, and malloc_trim can give
 * back only whole free pages (10,000 CRs turned terminal at once: 14 MiB
 * freed, 4.7 MiB returned). Slots keep the packed records dense, in blocks
 * of their own, outside the malloc heap, and a block goes back to the
 * system (munmap) as soon as its last slot is freed.
 *
 * CTL_SLAB_BLOCK-aligned blocks of one slot size, a free list per block,
 * the blocks with free slots in a list; one mutex per slab (a leaf lock).
 * Under AddressSanitizer every slot is a plain malloc, so that the
 * sanitizer sees every record's bounds.
 *
 * Ownership: ctl_slab_alloc hands out zeroed memory the caller gives back
 * with ctl_slab_free to the same slab; ctl_slab_cleanup unmaps every block
 * (slots still allocated included).
 */
#ifndef PCP_CTL_SLAB_H
#define PCP_CTL_SLAB_H

#include <pthread.h>
#include <stddef.h>

#define CTL_SLAB_BLOCK (32u * 1024u)

/* 1 under AddressSanitizer (then slots are plain mallocs, and heap figures mean little). */
#if defined(__SANITIZE_ADDRESS__)
#define CTL_SLAB_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CTL_SLAB_MALLOC 1
#endif
#endif
#ifndef CTL_SLAB_MALLOC
#define CTL_SLAB_MALLOC 0
#endif


struct ctl_slab_blk;

struct ctl_slab {
	pthread_mutex_t lock;
	size_t slot;                 /* bytes per slot, a multiple of 16 */
	size_t nblocks;              /* mapped */
	struct ctl_slab_blk *partial; /* blocks with a free slot */
	struct ctl_slab_blk *full;    /* blocks without */
};

/* slot: 16..4096 bytes (rounded up to 16). 0 or -EINVAL. */
int ctl_slab_init(struct ctl_slab *sl, size_t slot);
void ctl_slab_cleanup(struct ctl_slab *sl);
/* A zeroed slot, or NULL (out of memory). */
void *ctl_slab_alloc(struct ctl_slab *sl);
/* p from ctl_slab_alloc of sl; NULL is fine. */
void ctl_slab_free(struct ctl_slab *sl, void *p);
/* Blocks mapped now (for the tests and the metrics). */
size_t ctl_slab_blocks(struct ctl_slab *sl);

#endif
