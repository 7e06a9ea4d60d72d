/*
 * ctl_leader.h - leader election on Lease <ns>/podcheckpoint-controller.
 *
 * ctl_leader_run() loops in the calling thread until *stop: every
 * CTL_LEADER_RETRY_MS it tries kc_lease_try_acquire (15 s lease). On gaining
 * the lease it calls on_start; when the lease is held by someone else, or
 * could not be renewed for CTL_LEADER_RENEW_DEADLINE_MS (well inside the
 * lease duration, so two leaders never overlap), it calls on_stop, which
 * must return only once no worker is running. on_stop is also called on
 * exit if we were leading. Both run on the calling thread.
 */
#ifndef PCP_CTL_LEADER_H
#define PCP_CTL_LEADER_H

#include <signal.h>

#include "kc.h"

#define CTL_LEADER_LEASE_NAME "podcheckpoint-controller"
#define CTL_LEADER_DURATION_S 15L
#define CTL_LEADER_RETRY_MS 2000L
#define CTL_LEADER_RENEW_DEADLINE_MS 10000L

struct ctl_leader_opts {
	struct kc_config *cfg; /* borrowed */
	const char *ns;
	const char *identity;
	void (*on_start)(void *arg);
	void (*on_stop)(void *arg);
	void *arg;
	struct ctl_metrics *metrics; /* borrowed, may be NULL: heartbeat and leader gauge */
};

/* 0 when stopped by *stop; negative if no client could be made. */
struct ctl_metrics;

int ctl_leader_run(const struct ctl_leader_opts *lo, volatile sig_atomic_t *stop);

#endif
