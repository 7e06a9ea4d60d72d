/*
 * ctl_store_int.h - shared between ctl_store.c and ctl_store_index.c only.
 */
#ifndef PCP_CTL_STORE_INT_H
#define PCP_CTL_STORE_INT_H

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

struct ctl_store {
	struct ctl_smap pods, pcps, idx;
	pthread_mutex_t bytes_lock;
	size_t pcp_bytes;
};

/* "ns/name" into buf; -EINVAL without ns or name, -ENAMETOOLONG. */
int ctl_store_key(char *buf, size_t cap, const char *ns, const char *name);
void ctl_store_free_sibs(void *v);
/* The index (ctl_store_index.c): one writer, the CR informer thread. */
void ctl_store_idx_remove(struct ctl_store *s, const char *ns, const char *pod, const char *name);
int ctl_store_idx_set(struct ctl_store *s, const char *ns, const char *pod, const struct ctl_other *x);

#endif
