/*
 * ctl_io.h - the thin I/O around ctl_decide(): gather, decide, apply.
 *
 * struct ctl_ctx is the daemon's shared state (one per process):
 *   - options and policy (read-only after ctl_ctx_init);
 *   - the kc_config (shared, thread-safe);
 *   - the work queue (thread-safe);
 *   - the PodCheckpoint and Pod informers (their caches are thread-safe);
 *   - the in-memory record of each job's helper answers, keyed by CR uid,
 *     under its own mutex (owned by ctl_io.c, nothing else touches it).
 *
 * ctl_reconcile_key() runs on a worker thread with that thread's own
 * kc_client. It reads the caches, GETs the Secret and the helper Lease,
 * decides, then applies: finalizer, status (/status merge patch with the
 * resourceVersion precondition), Event, then the helper call (dispatch,
 * poll or delete-artifact) through ch_call with a short wait.
 */
#ifndef PCP_CTL_IO_H
#define PCP_CTL_IO_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

#include "ctl_options.h"
#include "ctl_queue.h"
#include "ctl_reconcile.h"
#include "kc.h"

#define CTL_INFORMER_RESYNC_SECONDS 30
#define CTL_CH_CONNECT_TIMEOUT_MS 3000L
#define CTL_CH_WAIT_MS 1500L      /* dispatch: wait a little for an early final state */
#define CTL_CH_POLL_WAIT_MS 200L  /* poll: the current state is enough */

struct ctl_mem; /* per-uid record, private to ctl_io.c */
struct ch_pool;

struct ctl_ctx {
	const struct ctl_options *opts; /* borrowed */
	struct ctl_policy pol;
	struct kc_config *cfg;          /* borrowed */
	struct ctl_queue *q;            /* borrowed */
	struct kc_event_source src;
	size_t ninf;                    /* informers per kind: 1 (all) or nwatch */
	struct kc_informer *pcp_inf[CTL_MAX_WATCH_NS];
	struct kc_informer *pod_inf[CTL_MAX_WATCH_NS];
	pthread_mutex_t mem_lock;
	struct ctl_mem *mem;            /* list, under mem_lock */
	struct ch_pool *pool;           /* borrowed: the channel to the helpers (ctl_run.c) */
};

/* Sets up the context (no threads, no I/O). */
int ctl_ctx_init(struct ctl_ctx *ctx, const struct ctl_options *opts, struct kc_config *cfg,
		 struct ctl_queue *q);
/* Starts the PodCheckpoint and Pod informers (one per watched namespace). */
int ctl_ctx_start_informers(struct ctl_ctx *ctx);
/* Waits until every informer has listed once; -ETIMEDOUT, or -EINTR if *stop. */
int ctl_ctx_wait_synced(struct ctl_ctx *ctx, long timeout_ms, volatile sig_atomic_t *stop);
/* Enqueues every cached PodCheckpoint (when leadership starts). */
void ctl_ctx_enqueue_all(struct ctl_ctx *ctx);
/* A cached object of one of ctx's informers (borrowed from the cache), or NULL. */
json_object *ctl_ctx_cache_get(struct ctl_ctx *ctx, struct kc_informer **inf, const char *ns,
			       const char *name);
/* Stops the informers and frees the memory records. NULL-safe fields. */
void ctl_ctx_cleanup(struct ctl_ctx *ctx);

/*
 * One reconcile of "ns/name". Returns 0 (then *requeue_ms >= 0 asks for a
 * delayed re-add, -1 none), -EAGAIN (conflict: re-add at once), or another
 * negative code (re-add with backoff).
 */
int ctl_reconcile_key(struct ctl_ctx *ctx, struct kc_client *c, const char *key, long *requeue_ms);

#endif
