/*
 * ctl_store_int.h - shared between ctl_store.c, ctl_store_index.c and
 * ctl_store_pack.c only.
 */
#ifndef PCP_CTL_STORE_INT_H
#define PCP_CTL_STORE_INT_H

#include "ctl_intern.h"
#include "ctl_slab.h"
#include "ctl_smap.h"
#include "ctl_store.h"

#define CTL_STORE_KEY_MAX (CTL_NS_MAX + CTL_NAME_MAX + 2)

/* One CR in the index. */
struct ctl_store_sib {
	char *name;
	int64_t creation_ms;
	bool dispatched, terminal, deleting;
};

struct ctl_store_sibs {
	size_t n, cap;
	struct ctl_store_sib *v;
};

/* What a CR record's first byte says it is. */
enum { CTL_STORE_REC_TEXT = 1, CTL_STORE_REC_TERM = 2 };

/*
 * A terminal CR as a packed typed record: only what TTL expiry, deletion
 * (the finalizer and the artifact) and the Event's involvedObject read.
 * buf: [uid text when not T_UID_BIN] \0, resourceVersion, spec.podName,
 * Ready's reason, the artifact path (or only its suffix after
 * "<art_dir>/<ns>/<name>-<uid>"), then the other finalizers, each \0-ended.
 * node and art_dir are interned (s->strs); the record holds one reference
 * to each.
 */
struct ctl_store_term {
	uint8_t kind;   /* CTL_STORE_REC_TERM */
	uint8_t phase;  /* enum ctl_phase */
	uint8_t flags;  /* T_* in ctl_store_pack.c */
	uint8_t ready;  /* Ready's status: 0 none, 1 True, 2 False, 3 Unknown */
	uint8_t fin_pos; /* index of CTL_FINALIZER in metadata.finalizers, UINT8_MAX: none */
	uint8_t nfin;   /* other finalizers in buf */
	uint16_t len;   /* of buf (its strings are found by walking it: they are few and short) */
	uint8_t uid[16];
	int64_t ttl_seconds, deletion_ms, completion_ms, ready_ms;
	const char *node, *art_dir;
	char buf[];
};

struct ctl_store {
	struct ctl_smap pods, pcps, idx;
	struct ctl_intern strs; /* node names, pod phases, artifact directories */
	struct ctl_slabs slabs; /* CR and pod records and the entries of pods and pcps, by size */
	pthread_mutex_t bytes_lock;
	size_t pcp_bytes;
};

/* "ns/name" into buf; -EINVAL without ns or name, -ENAMETOOLONG. */
int ctl_store_key(char *buf, size_t cap, const char *ns, const char *name);
void ctl_store_free_sibs(void *v);
/*
 * The shard of ns/name in m, locked (the caller unlocks), with key and *h
 * filled and *val its value or NULL; NULL (nothing locked) when ns/name
 * cannot be a key.
 */
struct ctl_smap_shard *ctl_store_lock(struct ctl_smap *m, const char *ns, const char *name,
				     char key[CTL_STORE_KEY_MAX], uint64_t *h, void **val);
/* Unlinks ns/name from m (under its shard lock); its value (the caller's now), or NULL. */
void *ctl_store_take(struct ctl_smap *m, const char *ns, const char *name);
size_t ctl_store_slen(const char *s);
/* Appends s (truncated to cap-1) and its NUL at buf + *off; *off moves past it. */
void ctl_store_pack_str(char *buf, size_t *off, const char *s, size_t cap);
/* "ns/name" into ns and name (bounded). */
void ctl_store_split_key(const char *key, char *ns, size_t nscap, char *name, size_t namecap);
/* The index (ctl_store_index.c): one writer, the CR informer thread. */
void ctl_store_idx_remove(struct ctl_store *s, const char *ns, const char *pod, const char *name);
int ctl_store_idx_set(struct ctl_store *s, const char *ns, const char *pod, const struct ctl_other *x);

/* A canonical lowercase UUID into 16 bytes; false (out unspecified) otherwise. */
bool ctl_store_uid_pack(uint8_t out[16], const char *uid);
void ctl_store_uid_unpack(const uint8_t in[16], char out[37]);

/* ctl_store_pack.c: the record of terminal CR pcp (borrowed, not changed).
 * 0, -ENOMEM, -E2BIG (does not fit the packed form: keep it as text). */
int ctl_store_term_new(struct ctl_store *s, json_object *pcp, const char *ns, const char *name,
		       struct ctl_store_term **out);
/* Drops its interned strings and frees it; NULL is fine. */
void ctl_store_term_free(struct ctl_store *s, struct ctl_store_term *t);
size_t ctl_store_term_size(const struct ctl_store_term *t);
void ctl_store_term_uid(const struct ctl_store_term *t, char *buf, size_t cap);
const char *ctl_store_term_pod(const struct ctl_store_term *t);
/* A new json-c tree with what the record holds (no apiVersion/kind), or NULL. */
json_object *ctl_store_term_json(const struct ctl_store_term *t, const char *ns, const char *name);

#endif
