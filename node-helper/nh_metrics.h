/*
 * nh_metrics.h - the node helper's metrics, health and readiness (see
 * docs/metrics.md).
 *
 * nh_metrics_start registers the families, serves /metrics /healthz /readyz
 * on opt->metrics_addr ("" or "0": none) and starts a thread that checks
 * every NH_KUBELET_PROBE_S seconds whether the kubelet accepts a TCP
 * connection (cached for /readyz: the handler does no network I/O).
 *
 * Ready: the helper's Lease has been published and its last renewal
 * succeeded, the API server answers, and the kubelet is reachable.
 * Healthy: the Lease heartbeat loop turns.
 *
 * The job hooks are called from the runner's slot threads, each for its own
 * job (the gauges are atomic, the phase laps thread-local): begin/end
 * bracket one nh_run_item; phase(name) observes the time since
 * the previous phase (or begin) on the same thread into checkpoint_duration_seconds{phase}
 * (phase(NULL) only restarts the lap); result counts the terminal outcome
 * and observes total and artifact_bytes.
 */
#ifndef PCP_NH_METRICS_H
#define PCP_NH_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nh_options.h"

#define NH_KUBELET_PROBE_S 5
#define NH_KUBELET_PROBE_MS 2000

struct nh_metrics;

int nh_metrics_start(const struct nh_options *opt, struct nh_metrics **out, char *err,
		     size_t errlen);
void nh_metrics_stop(struct nh_metrics *m);

/* The Lease heartbeat loop: every turn, with whether the renewal worked. */
void nh_metrics_lease(bool renewed);

void nh_metrics_queue(size_t depth);
void nh_metrics_job_begin(void);
void nh_metrics_phase(const char *phase);
void nh_metrics_job_result(bool succeeded, const char *reason, uint64_t artifact_bytes);
void nh_metrics_job_end(void);

/* host and port of an https://HOST[:PORT] URL (default 443); 0 or -EINVAL. */
int nh_metrics_url_hostport(const char *url, char *host, size_t cap, int *port);

#endif
