/*
 * ctl_io.h - the thin I/O around ctl_decide(): gather, decide, apply.
 *
 * struct ctl_ctx is the daemon's shared state (one per process):
 *   - options and policy (read-only after ctl_ctx_init);
 *   - the kc_config (shared, thread-safe);
 *   - the work queue (thread-safe);
 *   - the PodCheckpoint and Pod informers (projection mode) and the compact
 *     cache they fill (ctl_store.h, thread-safe), wired in ctl_ctx.c;
 *   - the in-memory record of each job's helper answers, keyed by CR uid
 *     (ctl_mem.h, thread-safe).
 *
 * ctl_reconcile_key() runs on a worker thread with that thread's own
 * kc_client. It reads the caches, GETs the Secret (before a dispatch) and the helper Lease,
 * decides, then applies: finalizer, status (/status merge patch with the
 * resourceVersion precondition), Event, then the helper call (dispatch,
 * poll or delete-artifact) through ch_call with a short wait.
 */
#ifndef PCP_CTL_IO_H
#define PCP_CTL_IO_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

#include "ctl_leases.h"
#include "ctl_options.h"
#include "ctl_queue.h"
#include "ctl_reconcile.h"
#include "kc.h"

/* The safety-net pass: every CR is reconciled again this often (spread over
 * one CR per millisecond). Everything time-driven asks for its own requeue;
 * this only catches what an event could have missed. */
#define CTL_SAFETY_PASS_SECONDS 600
#define CTL_CONFLICT_RETRY_MS 1000L /* after a 409: the watch brings the new object first */
#define CTL_CH_CONNECT_TIMEOUT_MS 3000L

struct ctl_store;
struct ctl_mem_table;
struct ctl_node_cache;
struct ctl_ctx;
struct ch_pool;

/* One watched namespace (or all): its informers' callbacks' argument. */
struct ctl_bind {
	struct ctl_ctx *ctx;
	struct ctl_store *store;
};

struct ctl_ctx {
	const struct ctl_options *opts; /* borrowed */
	struct ctl_policy pol;
	struct kc_config *cfg;          /* borrowed */
	struct ctl_queue *q;            /* borrowed */
	struct kc_event_source src;
	size_t ninf;                    /* informers per kind: 1 (all) or nwatch */
	struct kc_informer *pcp_inf[CTL_MAX_WATCH_NS]; /* projection mode, into store */
	struct kc_informer *pod_inf[CTL_MAX_WATCH_NS]; /* projection mode, into store */
	struct ctl_bind bind[CTL_MAX_WATCH_NS];        /* owns its store */
	struct ctl_mem_table *mem;      /* per-uid memory (ctl_mem.h) */
	struct kc_informer *lease_inf;  /* the helpers' Leases in opts->ns (projection into leases) */
	struct ctl_leases *leases;      /* their typed records (ctl_leases.h) */
	struct ctl_node_cache *nodes;   /* endpoint-on-node verdicts (ctl_gather.c) */
	struct ch_pool *pool;           /* borrowed: the channel to the helpers (ctl_run.c) */
};

/* Sets up the context (no threads, no I/O). */
int ctl_ctx_init(struct ctl_ctx *ctx, const struct ctl_options *opts, struct kc_config *cfg,
		 struct ctl_queue *q);
/* Starts the PodCheckpoint and Pod informers (one per watched namespace). */
int ctl_ctx_start_informers(struct ctl_ctx *ctx);
/*
 * The controller's one trim rule: gives the heap's free memory back when it
 * holds CTL_TRIM_IDLE_BYTES or more. Called from the cron (every
 * CTL_METRICS_HELPERS_S from the metrics ticker) and after each LIST. The
 * store's records live in slabs (ctl_slab.h), so what malloc frees after a
 * burst is event trees, job memory and connection state; without the cron
 * 10,000 CRs turned terminal left ~5 MiB free but resident.
 */
#define CTL_TRIM_IDLE_BYTES (1024u * 1024u)
void ctl_ctx_trim_idle(void);
/* Waits until every informer has listed once; -ETIMEDOUT, or -EINTR if *stop. */
int ctl_ctx_wait_synced(struct ctl_ctx *ctx, long timeout_ms, volatile sig_atomic_t *stop);
/* Enqueues every cached PodCheckpoint (when leadership starts). */
void ctl_ctx_enqueue_all(struct ctl_ctx *ctx);
/* The compact cache of namespace ns (borrowed), or NULL when ns is not watched. */
struct ctl_store *ctl_ctx_store(struct ctl_ctx *ctx, const char *ns);
/* Stops the informers and frees the memory records. NULL-safe fields. */
void ctl_ctx_cleanup(struct ctl_ctx *ctx);

/*
 * One reconcile of "ns/name". Returns 0 (then *requeue_ms >= 0 asks for a
 * delayed re-add, -1 none), -EAGAIN (conflict: re-add at once), or another
 * negative code (re-add with backoff).
 */
int ctl_reconcile_key(struct ctl_ctx *ctx, struct kc_client *c, const char *key, long *requeue_ms);

#endif
