/*
 * ctl_metrics.h - the controller's metrics, health and readiness (see
 * docs/metrics.md).
 *
 * ctl_metrics_start registers the families, starts the /metrics /healthz
 * /readyz server on opts->metrics_addr ("" or "0": none) and a small thread
 * that counts available node helpers (Leases pcp-helper-* renewed within
 * their duration) every CTL_METRICS_HELPERS_S seconds, from the Lease
 * informer's records (ctl_leases.h) handed over by ctl_metrics_set_synced
 * (no request of its own); the same tick is the controller's cron
 * (ctl_ctx_trim_idle).
 *
 * Ready: caches synced, and the API server answers (the last request got an
 * answer; when leader election is on, one at most CTL_READY_API_AGE_MS old,
 * the leader loop asks every 2 s whether leading or standing by).
 * Healthy: the leader loop (or the plain wait loop) turns.
 */
#ifndef PCP_CTL_METRICS_H
#define PCP_CTL_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "ctl_leases.h"
#include "ctl_options.h"
#include "ctl_queue.h"
#include "kc.h"

#define CTL_METRICS_HELPERS_S 10
#define CTL_READY_API_AGE_MS 10000L

struct mx_family;

/* The families other controller files observe into (NULL until started). */
extern struct mx_family *ctl_mx_reconcile_seconds; /* histogram {result} */
extern struct mx_family *ctl_mx_reconcile_errors;  /* counter {kind} */
extern struct mx_family *ctl_mx_leader;            /* gauge */

struct ctl_metrics;

/* 0, or negative errno with one sentence in err (bad address, port taken). */
int ctl_metrics_start(const struct ctl_options *opts, struct ctl_queue *q,
		      struct ctl_metrics **out, char *err, size_t errlen);
/* The caches synced; leases (borrowed, may be NULL) is the Lease informer's
 * cache, which must outlive ctl_metrics_stop. */
void ctl_metrics_set_synced(struct ctl_metrics *m, struct ctl_leases *leases);
/* Leases pcp-helper-* in leases renewed within their duration at now_ms. */
int ctl_metrics_count_helpers(struct ctl_leases *leases, int64_t now_ms);
/* The leader loop (or the wait loop) calls this every turn. */
void ctl_metrics_beat(struct ctl_metrics *m);
void ctl_metrics_set_leading(struct ctl_metrics *m, bool leading);
/* One channel call to a helper: checkpoint (else delete-artifact), its rc. */
void ctl_metrics_helper_call(bool checkpoint, int rc);
/* Stops the server and the thread, frees. NULL is fine. */
void ctl_metrics_stop(struct ctl_metrics *m);

#endif
