/*
 * obs_fixture.h - the observations the ctl_decide() tests start from
 * (test_reconcile.c, test_in_flight.c, test_terminal.c, test_obs_json.c,
 * test_first_dispatch.c). Header-only, test code.
 *
 * base() and in_flight() return a calloc'ed struct ctl_obs: free() it.
 */
#ifndef PCP_TEST_OBS_FIXTURE_H
#define PCP_TEST_OBS_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "ctl_reconcile.h"

#define T0 1700000000000LL /* creation time of the CR under test */

static const struct ctl_policy POL = {
	.helper_wait_seconds = 60,
	.job_margin_seconds = 60,
	.poll_seconds = 5,
	.queue_wait_seconds = 600,
	.allow_expired = false,
};

static inline void set(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s);
}

/* The decision is a terminal failure with `reason`, written by the controller. */
static inline void expect_failed(const struct ctl_decision *d, const char *reason)
{
	assert_true(d->write_status);
	assert_int_equal(d->status.phase, CTL_PHASE_FAILED);
	assert_string_equal(d->status.ready_reason, "CheckpointFailed");
	assert_false(d->status.ready_true);
	assert_true(d->status.stalled);
	assert_string_equal(d->status.stalled_reason, reason);
	assert_true(d->event);
	assert_true(d->event_warning);
	assert_string_equal(d->event_reason, reason);
	assert_string_equal(d->event_note, d->status.message);
	assert_true(d->status.message[0] != '\0');
	assert_true(d->status.completion_ms > 0);
	assert_false(d->actions & CTL_ACT_DISPATCH);
	assert_false(d->actions & CTL_ACT_POLL);
}

/* A Pending CR for a running pod, helper available: ready to dispatch. */
static inline struct ctl_obs *base(void)
{
	struct ctl_obs *o = calloc(1, sizeof(*o));

	assert_non_null(o);
	o->now_ms = T0 + 1000;
	set(o->ns, sizeof(o->ns), "default");
	set(o->name, sizeof(o->name), "cp1");
	set(o->uid, sizeof(o->uid), "uid-cp1");
	o->generation = 1;
	o->creation_ms = T0;
	o->first_seen_ms = T0;
	set(o->pod_name, sizeof(o->pod_name), "web");
	o->timeout_seconds = 300;
	o->leave_running = true;
	o->phase = CTL_PHASE_PENDING;
	o->observed_generation = 1;
	set(o->ready_status, sizeof(o->ready_status), "False");
	set(o->ready_reason, sizeof(o->ready_reason), "Pending");
	o->pod_exists = true;
	set(o->pod_uid, sizeof(o->pod_uid), "pod-uid-1");
	set(o->pod_phase, sizeof(o->pod_phase), "Running");
	set(o->pod_node, sizeof(o->pod_node), "node-a");
	o->npod_containers = 2;
	set(o->pod_containers[0], CTL_NAME_MAX, "app");
	set(o->pod_containers[1], CTL_NAME_MAX, "sidecar");
	o->lease_exists = true;
	o->lease_fresh = true;
	set(o->endpoint, sizeof(o->endpoint), "wss://127.0.0.2:10443");
	set(o->fingerprint, sizeof(o->fingerprint), "ab12");
	return o;
}

/* The same CR as the controller first sees it: no status at all. */
static inline struct ctl_obs *first_sight(void)
{
	struct ctl_obs *o = base();

	o->phase = CTL_PHASE_NONE;
	o->observed_generation = 0;
	o->ready_status[0] = o->ready_reason[0] = '\0';
	return o;
}

/* The same CR after dispatch, started by the helper (in flight). */
static inline struct ctl_obs *in_flight(void)
{
	struct ctl_obs *o = base();

	o->dispatch_ms = T0 + 1000;
	o->start_ms = T0 + 1000;
	o->now_ms = T0 + 2000;
	set(o->st_node, sizeof(o->st_node), "node-a");
	set(o->st_pod_uid, sizeof(o->st_pod_uid), "pod-uid-1");
	set(o->st_message, sizeof(o->st_message), "dispatched to the node helper on node-a");
	return o;
}

#endif
