/*
 * test_terminal.c - ctl_decide() once terminal or deleting: terminal is
 * final, the finalizer paths of deletionPolicy Delete, TTL.
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

static void test_terminal_never_changes(void **state)
{
	static const enum ctl_phase phases[] = { CTL_PHASE_SUCCEEDED, CTL_PHASE_FAILED };

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct ctl_obs *o = in_flight();
		struct ctl_decision d;

		o->phase = phases[i];
		o->completion_ms = o->now_ms;
		o->pod_exists = false;          /* would be PodNotFound */
		o->lease_exists = false;        /* would be helper wait */
		o->now_ms += 10LL * 3600 * 1000; /* far past every deadline */
		o->answer = CTL_ANS_FAILED;
		o->answer_failed_since_ms = o->start_ms;
		ctl_decide(&POL, o, &d);
		assert_false(d.write_status);
		assert_false(d.event);
		assert_int_equal(d.actions, 0);
		assert_int_equal(d.requeue_ms, -1);
		/* Not dispatched either, even without startTime or nodeName. */
		o->start_ms = 0;
		o->st_node[0] = '\0';
		ctl_decide(&POL, o, &d);
		assert_int_equal(d.actions, 0);
		assert_false(d.write_status);
		free(o);
	}
}

/* ---------------------------------------------------------------- finalizer and TTL */

static void test_deletion_paths(void **state)
{
	struct ctl_obs *o = base();
	struct ctl_decision d;

	(void)state;
	o->policy_delete = true;
	o->deleting = true;
	o->deletion_ms = o->now_ms;

	/* Not our finalizer: nothing. */
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, 0);
	assert_false(d.write_status);

	/* Ours, nothing was ever produced: just remove it. */
	o->has_finalizer = true;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_REMOVE_FINALIZER);
	assert_false(d.write_status);

	/* An artifact is recorded: delete it first. */
	o->phase = CTL_PHASE_SUCCEEDED;
	set(o->st_node, sizeof(o->st_node), "node-a");
	set(o->artifact_path, sizeof(o->artifact_path), "/var/lib/pcp/default/cp1-uid.tar");
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_DELETE_ARTIFACT);
	assert_false(d.write_status);

	/* The helper keeps failing for longer than the wait: give up loudly. */
	o->artifact_delete_failing_since_ms = o->now_ms;
	o->now_ms += 59000;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_DELETE_ARTIFACT);
	o->now_ms += 1000;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_REMOVE_FINALIZER);
	assert_true(d.event);
	assert_true(d.event_warning);
	assert_string_equal(d.event_reason, "ArtifactNotDeleted");

	/* Deleted while in flight: the job may still produce one. */
	o->artifact_path[0] = '\0';
	o->artifact_delete_failing_since_ms = 0;
	o->phase = CTL_PHASE_RUNNING;
	o->start_ms = T0;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_DELETE_ARTIFACT);

	/* Failed before dispatch: nothing on the node. */
	o->phase = CTL_PHASE_FAILED;
	o->start_ms = 0;
	o->st_node[0] = '\0';
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_REMOVE_FINALIZER);
	free(o);
}

static void test_ttl(void **state)
{
	struct ctl_obs *o = in_flight();
	struct ctl_decision d;

	(void)state;
	o->phase = CTL_PHASE_SUCCEEDED;
	o->completion_ms = T0 + 100000;
	o->has_ttl = true;
	o->ttl_seconds = 30;
	o->now_ms = T0 + 110000;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, 0);
	assert_int_equal(d.requeue_ms, 20000);
	o->now_ms = T0 + 130000;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_DELETE_CR);
	assert_false(d.write_status);

	/* No TTL: kept forever. */
	o->has_ttl = false;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, 0);
	assert_int_equal(d.requeue_ms, -1);

	/* ttl 0 and a controller-written failure: deleted at once after. */
	o->has_ttl = true;
	o->ttl_seconds = 0;
	o->phase = CTL_PHASE_PENDING;
	o->start_ms = 0;
	o->st_node[0] = '\0';
	o->completion_ms = 0;
	o->pod_exists = false;
	ctl_decide(&POL, o, &d);
	expect_failed(&d, "PodNotFound");
	assert_int_equal(d.requeue_ms, 0);

	/* Deletion with Delete policy after TTL: finalizer path. */
	o->phase = CTL_PHASE_SUCCEEDED;
	o->completion_ms = T0;
	o->policy_delete = true;
	o->has_finalizer = true;
	o->deleting = true;
	set(o->artifact_path, sizeof(o->artifact_path), "/x.tar");
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_DELETE_ARTIFACT);
	free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_terminal_never_changes),
		cmocka_unit_test(test_deletion_paths),
		cmocka_unit_test(test_ttl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
