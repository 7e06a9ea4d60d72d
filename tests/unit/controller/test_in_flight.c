/*
 * test_in_flight.c - ctl_decide() for a dispatched CR: never dispatched
 * again, Timeout from startTime, the helper's answers (failed, refused,
 * lost, queued, busy), the commit point, cancel on every dispatched failure.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl_reconcile.h"
#include "obs_fixture.h"

/* An in-flight CR polls; it never starts a second job, whatever the helper says. */
static void test_in_flight_never_redispatches(void **state)
{
	static const enum ctl_answer answers[] = { CTL_ANS_NONE, CTL_ANS_ACCEPTED, CTL_ANS_RUNNING,
						   CTL_ANS_SUCCEEDED };

	(void)state;
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		struct ctl_obs *o = in_flight();
		struct ctl_decision d;

		o->answer = answers[i];
		o->last_contact_ms = o->now_ms;
		ctl_decide(&POL, o, &d);
		assert_int_equal(d.actions, CTL_ACT_POLL);
		assert_false(d.write_status);
		assert_false(d.event);
		assert_int_equal(d.requeue_ms, 5000);
		/* Pod gone (deleted by the helper after leaveRunning=false): still only a poll. */
		o->pod_exists = false;
		o->phase = CTL_PHASE_RUNNING;
		ctl_decide(&POL, o, &d);
		assert_int_equal(d.actions, CTL_ACT_POLL);
		free(o);
	}
}

/* ---------------------------------------------------------------- in flight */

static void test_timeout(void **state)
{
	struct ctl_obs *o = in_flight();
	struct ctl_decision d;
	/* 2 pod containers x 300 s + 60 s margin = 660 s. */
	int64_t deadline = o->start_ms + 660LL * 1000;

	(void)state;
	o->answer = CTL_ANS_RUNNING;
	o->now_ms = deadline - 1000;
	o->last_contact_ms = o->now_ms;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_POLL);
	assert_int_equal(d.requeue_ms, 1000); /* wakes at the deadline */
	o->now_ms = deadline;
	o->last_contact_ms = o->now_ms;
	ctl_decide(&POL, o, &d);
	expect_failed(&d, "Timeout");
	assert_non_null(strstr(d.status.message, "660s"));
	assert_true(d.actions & CTL_ACT_CANCEL); /* the helper stops and cleans up */

	/* spec.containers counts, not the pod's. */
	o->nspec_containers = 1;
	set(o->spec_containers[0], CTL_NAME_MAX, "app");
	o->now_ms = o->start_ms + 360LL * 1000;
	ctl_decide(&POL, o, &d);
	expect_failed(&d, "Timeout");
	o->now_ms -= 1;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_POLL);
	free(o);
}

static void test_helper_failed_answer(void **state)
{
	struct ctl_obs *o = in_flight();
	struct ctl_decision d;

	(void)state;
	o->answer = CTL_ANS_FAILED;
	set(o->answer_reason, sizeof(o->answer_reason), "KubeletError");
	set(o->answer_message, sizeof(o->answer_message), "The kubelet on node-a answered 500.");
	o->answer_failed_since_ms = o->now_ms;
	o->last_contact_ms = o->now_ms;
	/* The helper writes its own failures: give it a poll period first. */
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_POLL);
	assert_false(d.write_status);
	assert_int_equal(d.requeue_ms, 5000);
	o->now_ms += 5000;
	ctl_decide(&POL, o, &d);
	expect_failed(&d, "KubeletError");
	assert_string_equal(d.status.message, "The kubelet on node-a answered 500.");
	free(o);
}

static void test_helper_refused_answer(void **state)
{
	struct ctl_obs *o = in_flight();
	struct ctl_decision d;

	(void)state;
	o->answer = CTL_ANS_REFUSED;
	set(o->answer_reason, sizeof(o->answer_reason), "BadRequest");
	set(o->answer_message, sizeof(o->answer_message), "unknown protocol version 9.");
	ctl_decide(&POL, o, &d);
	expect_failed(&d, "BadRequest");
	assert_non_null(strstr(d.status.message, "unknown protocol version 9."));
	free(o);
}

static void test_helper_lost_in_flight(void **state)
{
	struct ctl_obs *o = in_flight();
	struct ctl_decision d;

	(void)state;
	o->lease_fresh = false;
	o->last_contact_ms = T0 + 10000;
	o->now_ms = o->last_contact_ms + 59000;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_POLL);
	o->now_ms = o->last_contact_ms + 60000;
	set(o->last_error, sizeof(o->last_error), "connection refused by 127.0.0.2:10443");
	ctl_decide(&POL, o, &d);
	expect_failed(&d, "NodeHelperUnavailable");
	assert_non_null(strstr(d.status.message, "node-a"));
	assert_non_null(strstr(d.status.message, "(connection refused by 127.0.0.2:10443)"));
	/* Never answered: counted from startTime. */
	o->last_contact_ms = 0;
	o->now_ms = o->start_ms + 59000;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_POLL);
	o->now_ms = o->start_ms + 60000;
	ctl_decide(&POL, o, &d);
	expect_failed(&d, "NodeHelperUnavailable");
	free(o);
}


/* ---------------------------------------------------------------- queued / busy */

/* Dispatched, the helper has not started it: waiting for a slot. */
static struct ctl_obs *queued(void)
{
	struct ctl_obs *o = in_flight();

	o->start_ms = 0;
	return o;
}

static void test_queued_stays_pending(void **state)
{
	struct ctl_obs *o = queued();
	struct ctl_decision d;

	(void)state;
	o->answer = CTL_ANS_ACCEPTED;
	o->last_contact_ms = o->now_ms;
	/* Just dispatched: most jobs start at once, so no status write or Event yet. */
	o->now_ms = o->dispatch_ms + 1000;
	ctl_decide(&POL, o, &d);
	assert_false(d.write_status);
	assert_false(d.event);
	assert_true(d.actions & CTL_ACT_POLL);
	/* Far past timeoutSeconds x containers: the checkpoint deadline has not
	 * started; only the queue wait counts. */
	o->now_ms = o->dispatch_ms + 599LL * 1000;
	o->last_contact_ms = o->now_ms;
	ctl_decide(&POL, o, &d);
	assert_true(d.write_status);
	assert_int_equal(d.status.phase, CTL_PHASE_PENDING);
	assert_non_null(strstr(d.status.message, "Queued on the node helper on node node-a"));
	assert_true(d.actions & CTL_ACT_POLL);
	assert_true(d.event);
	assert_true(d.queued_event);
	assert_false(d.event_warning);
	assert_string_equal(d.event_reason, "Queued");
	assert_int_equal(d.requeue_ms, 1000); /* wakes at the end of the queue wait */
	/* The Event once. */
	o->queued_event_sent = true;
	set(o->st_message, sizeof(o->st_message), d.status.message);
	ctl_decide(&POL, o, &d);
	assert_false(d.event);
	assert_false(d.write_status);
	/* The queue wait ends: QueueTimeout, and the helper is told. */
	o->now_ms = o->dispatch_ms + 600LL * 1000;
	o->last_contact_ms = o->now_ms;
	ctl_decide(&POL, o, &d);
	expect_failed(&d, "QueueTimeout");
	assert_true(d.actions & CTL_ACT_CANCEL);
	free(o);
}

static void test_busy_is_not_a_failure(void **state)
{
	struct ctl_obs *o = queued();
	struct ctl_decision d;

	(void)state;
	o->answer = CTL_ANS_BUSY;
	set(o->answer_reason, sizeof(o->answer_reason), "Busy");
	o->last_contact_ms = o->now_ms;
	ctl_decide(&POL, o, &d);
	assert_true(d.event); /* one Normal Event for the wait */
	assert_false(d.event_warning);
	assert_string_equal(d.event_reason, "NodeHelperBusy");
	o->queued_event_sent = true;
	for (unsigned k = 0; k < 8; k++) {
		o->busy_count = k + 1;
		ctl_decide(&POL, o, &d);
		assert_false(d.event);
		assert_int_equal(d.status.phase, CTL_PHASE_PENDING);
		assert_false(d.status.stalled);
		assert_true(d.actions & CTL_ACT_POLL); /* sent again */
		assert_false(d.actions & CTL_ACT_CANCEL);
		assert_non_null(strstr(d.status.message, "busy"));
		/* backoff: 10 s, 20 s, then half the helper wait (30 s): a busy helper
		 * answers, so it is never taken for a lost one */
		assert_int_equal(d.requeue_ms, k == 0 ? 10000 : k == 1 ? 20000 : 30000);
	}
	/* Busy for longer than the helper wait, answering every time: still Pending. */
	o->now_ms += 120000;
	o->last_contact_ms = o->now_ms - 30000;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.status.phase, CTL_PHASE_PENDING);
	free(o);
}

static void test_commit_point_no_timeout(void **state)
{
	struct ctl_obs *o = in_flight();
	struct ctl_decision d;

	(void)state;
	o->answer = CTL_ANS_RUNNING;
	o->deleting_pod = true;
	o->leave_running = false;
	o->now_ms = o->start_ms + 3600LL * 1000; /* far past the deadline */
	o->last_contact_ms = o->now_ms;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_POLL); /* the helper is deleting the pod */
	assert_false(d.write_status);
	/* Its Lease goes stale and it stays silent: then it fails (and cancels). */
	o->lease_fresh = false;
	ctl_decide(&POL, o, &d);
	expect_failed(&d, "Timeout");
	assert_true(d.actions & CTL_ACT_CANCEL);
	free(o);
}

static void test_refused_cancels(void **state)
{
	struct ctl_obs *o = queued();
	struct ctl_decision d;

	(void)state;
	o->answer = CTL_ANS_REFUSED;
	set(o->answer_reason, sizeof(o->answer_reason), "NotDispatchedHere");
	ctl_decide(&POL, o, &d);
	expect_failed(&d, "NotDispatchedHere");
	assert_true(d.actions & CTL_ACT_CANCEL);
	free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_flight_never_redispatches),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_helper_failed_answer),
		cmocka_unit_test(test_helper_refused_answer),
		cmocka_unit_test(test_helper_lost_in_flight),
		cmocka_unit_test(test_queued_stays_pending),
		cmocka_unit_test(test_busy_is_not_a_failure),
		cmocka_unit_test(test_commit_point_no_timeout),
		cmocka_unit_test(test_refused_cancels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
