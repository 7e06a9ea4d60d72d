/*
 * ctl_slab.h - fixed-size slots for the cache's long-lived small records
 * (prefix ctl_slab_): one slot size (struct ctl_slab), or a set of size
 * classes (struct ctl_slabs) for records of many sizes - the CR records
 * (ctl_store.c, ctl_store_pack.c), the pod records (ctl_store_pod.c) and
 * the map entries with their keys (ctl_smap.c).
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

/*
 * Size classes: an allocation of n bytes comes from the smallest class that
 * holds it (internal waste at most a quarter, mostly an eighth); larger
 * ones from malloc. Why everything long-lived goes here (measured at 10,000
 * CRs and 10,000 pods, docs/performance.md): a 40-byte map entry malloc'ed
 * while a watch event's json-c tree is alive lands between the tree's
 * chunks and, once the tree is freed, pins its page; 20,000 of them kept
 * 10 MiB of heap resident for 7 MiB in use. The caller passes the size it
 * allocated with to ctl_slabs_free.
 */
#define CTL_SLABS_N 22
#define CTL_SLABS_SLOTS { 32, 48, 64, 80, 96, 112, 128, 160, 192, 256, 320, 384, 512, 640, 768, \
			  960, 1200, 1536, 2048, 2560, 3072, 4096 }

struct ctl_slabs {
	struct ctl_slab c[CTL_SLABS_N];
};

/* 0 or -ENOMEM (then ctl_slabs_cleanup frees what was made). */
int ctl_slabs_init(struct ctl_slabs *ss);
void ctl_slabs_cleanup(struct ctl_slabs *ss);
/* n zeroed bytes, or NULL. A NULL set is plain calloc. */
void *ctl_slabs_alloc(struct ctl_slabs *ss, size_t n);
/* p from ctl_slabs_alloc(ss, n) with the same n; NULL p is fine. */
void ctl_slabs_free(struct ctl_slabs *ss, void *p, size_t n);
/* Blocks mapped by every class. */
size_t ctl_slabs_blocks(struct ctl_slabs *ss);

#endif
