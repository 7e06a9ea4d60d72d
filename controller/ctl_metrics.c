/*
 * ctl_metrics.c - the controller's metrics, health and readiness (see
 * ctl_metrics.h).
 */
#include "ctl_metrics.h"
#include "ctl_io.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mx.h"
#include "mx_http.h"

struct mx_family *ctl_mx_reconcile_seconds, *ctl_mx_reconcile_errors, *ctl_mx_leader;
static struct mx_family *ctl_mx_dispatch, *ctl_mx_helpers, *ctl_mx_queue, *ctl_mx_queue_delayed;

struct ctl_metrics {
	const struct ctl_options *opts;
	struct ctl_queue *q;
	struct mx_http *http;
	struct mx_ticker *ticker;
	_Atomic(struct ctl_leases *) leases; /* the Lease informer's records (borrowed), NULL until synced */
	atomic_bool synced;
	int beat;
};

static double ctl_queue_depth(void *arg)
{
	return (double)ctl_queue_len(arg);
}

static double ctl_queue_delayed(void *arg)
{
	return (double)ctl_queue_delayed_len(arg);
}

static int ctl_ready(void *arg, char *why, size_t cap)
{
	struct ctl_metrics *m = arg;

	if (!atomic_load(&m->synced)) {
		snprintf(why, cap, "the PodCheckpoint and Pod caches have not synced yet");
		return 1;
	}
	return kc_api_check(m->opts->leader_elect ? CTL_READY_API_AGE_MS : 0, why, cap) ? 1 : 0;
}

int ctl_metrics_count_helpers(struct ctl_leases *leases, int64_t now_ms)
{
	return ctl_leases_count_fresh(leases, "pcp-helper-", now_ms);
}

static void ctl_metrics_tick(void *arg)
{
	struct ctl_metrics *m = arg;
	struct ctl_leases *leases = atomic_load(&m->leases);

	if (leases)
		mx_gauge_set(ctl_mx_helpers, ctl_metrics_count_helpers(leases, kc_now_ms()), NULL, 0);
	ctl_ctx_trim_idle();
}

int ctl_metrics_start(const struct ctl_options *opts, struct ctl_queue *q,
		      struct ctl_metrics **out, char *err, size_t errlen)
{
	struct ctl_metrics *m;
	struct mx_http_opts ho;
	int rc;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->opts = opts;
	m->q = q;
	m->beat = -1;
	mx_register_process("controller", PCP_VERSION);
	kc_metrics_register();
	ctl_mx_reconcile_seconds = mx_histogram(
		"podcheckpoint_reconcile_duration_seconds",
		"Time to reconcile one PodCheckpoint, by result (success, conflict, error).", "result",
		mx_buckets_request_seconds, mx_nbuckets_request_seconds);
	ctl_mx_reconcile_errors = mx_counter("podcheckpoint_reconcile_errors_total",
					     "Reconciles that failed and were retried, by kind (conflict, error).",
					     "kind");
	ctl_mx_leader = mx_gauge("podcheckpoint_leader",
				 "1 while this controller holds the leader Lease (or runs without leader election), else 0.",
				 NULL);
	ctl_mx_dispatch = mx_counter("podcheckpoint_helper_calls_total",
				     "Calls to node helpers over the channel, by operation and result (ok, unavailable, error).",
				     "op,result");
	ctl_mx_helpers = mx_gauge("podcheckpoint_helpers_available",
				  "Node helpers whose Lease is renewed within its duration (connected helpers).",
				  NULL);
	ctl_mx_queue = mx_func(MX_GAUGE, "podcheckpoint_queue_depth",
			       "PodCheckpoint keys waiting in the controller's work queue.", ctl_queue_depth, q);
	ctl_mx_queue_delayed = mx_func(MX_GAUGE, "podcheckpoint_queue_delayed",
				       "PodCheckpoint keys scheduled for a later retry or poll.",
				       ctl_queue_delayed, q);
	m->beat = mx_beat_register("leader-election", 30000L);
	memset(&ho, 0, sizeof(ho));
	ho.addr = opts->metrics_addr;
	ho.ready = ctl_ready;
	ho.arg = m;
	rc = mx_http_start(&ho, &m->http, err, errlen);
	if (rc)
		goto fail;
	if (m->http)
		LOG_INFO("msg=\"serving metrics\" addr=%s port=%d", opts->metrics_addr,
			 mx_http_port(m->http));
	rc = mx_ticker_start(ctl_metrics_tick, m, CTL_METRICS_HELPERS_S, &m->ticker);
	if (rc) {
		snprintf(err, errlen, "cannot start the metrics thread: %s", strerror(-rc));
		goto fail;
	}
	*out = m;
	return 0;
fail:
	ctl_metrics_stop(m);
	return rc;
}

void ctl_metrics_set_synced(struct ctl_metrics *m, struct ctl_leases *leases)
{
	if (!m)
		return;
	atomic_store(&m->leases, leases);
	atomic_store(&m->synced, true);
}

void ctl_metrics_beat(struct ctl_metrics *m)
{
	if (m)
		mx_beat(m->beat);
}

void ctl_metrics_set_leading(struct ctl_metrics *m, bool leading)
{
	(void)m;
	mx_gauge_set(ctl_mx_leader, leading ? 1 : 0, NULL, 0);
}

void ctl_metrics_helper_call(bool checkpoint, int rc)
{
	const char *result = rc == 0 ? "ok"
			     : (rc == -EHOSTUNREACH || rc == -ECONNREFUSED || rc == -ETIMEDOUT)
				     ? "unavailable"
				     : "error";

	mx_counter_add(ctl_mx_dispatch, 1,
		       MX_LV(checkpoint ? "checkpoint" : "delete-artifact", result));
}

void ctl_metrics_stop(struct ctl_metrics *m)
{
	if (!m)
		return;
	mx_http_stop(m->http);
	mx_ticker_stop(m->ticker);
	mx_beat_retire(m->beat);
	free(m);
}
