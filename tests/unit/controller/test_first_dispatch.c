/*
 * test_first_dispatch.c - one controller status write per PodCheckpoint on
 * the happy path: at first sight, when everything is ready, ctl_decide()
 * writes Pending with the dispatch fields in one patch and dispatches; when
 * something is not ready, the two-step path (Pending, then dispatch) stays.
 * The fault points are played against decide_model.h.
 */
#include <errno.h>
#include <string.h>

#include "ctl_mem.h"
#include "decide_model.h"
#include "obs_fixture.h"

/* ---------------------------------------------------------------- the decision alone */

static void test_first_sight_merged_write(void **state)
{
	struct ctl_obs *o = first_sight();
	struct ctl_decision d;

	(void)state;
	o->generation = 2;
	ctl_decide(&POL, o, &d);
	assert_string_equal(d.why, "first-dispatch");
	assert_int_equal(d.actions, CTL_ACT_DISPATCH);
	assert_true(d.write_status);
	/* The first write says all the first Pending says ... */
	assert_int_equal(d.status.phase, CTL_PHASE_PENDING);
	assert_int_equal(d.status.observed_generation, 2);
	assert_false(d.status.ready_true);
	assert_string_equal(d.status.ready_reason, "Pending");
	assert_false(d.status.stalled);
	assert_int_equal(d.status.completion_ms, 0);
	/* ... and where and what, which the helper acts on. */
	assert_true(d.status.set_dispatch);
	assert_string_equal(d.status.node_name, "node-a");
	assert_string_equal(d.status.pod_uid, "pod-uid-1");
	assert_int_equal(d.status.dispatch_ms, o->now_ms);
	assert_string_equal(d.status.recipient_fp, "");
	assert_string_equal(d.status.message, "dispatched to the node helper on node-a");
	assert_false(d.event);
	assert_int_equal(d.requeue_ms, 5000);

	/* Encrypting to a good certificate: its fingerprint in the same write. */
	o->encrypt = true;
	set(o->secret_name, sizeof(o->secret_name), "key");
	o->secret_exists = true;
	set(o->secret_type, sizeof(o->secret_type), "kubernetes.io/tls");
	o->cert = CTL_CERT_OK;
	set(o->cert_fingerprint, sizeof(o->cert_fingerprint), "c0ffee");
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_DISPATCH);
	assert_string_equal(d.status.recipient_fp, "c0ffee");

	/* A pinned podUID that matches, a subset of containers: still one write. */
	set(o->spec_pod_uid, sizeof(o->spec_pod_uid), "pod-uid-1");
	o->nspec_containers = 1;
	set(o->spec_containers[0], CTL_NAME_MAX, "sidecar");
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_DISPATCH);
	free(o);
}

/* Something is not ready at first sight: Pending without the dispatch fields. */
static void test_first_sight_waits(void **state)
{
	struct ctl_obs *o;
	struct ctl_other older = { .name = "cp0", .creation_ms = T0 - 1000 };
	struct ctl_decision d;

	(void)state;
	/* No Lease, a stale one, one without endpoint or pin: the helper wait. */
	for (int k = 0; k < 4; k++) {
		o = first_sight();
		if (k == 0)
			o->lease_exists = false;
		else if (k == 1)
			o->lease_fresh = false;
		else if (k == 2)
			o->endpoint[0] = '\0';
		else
			o->fingerprint[0] = '\0';
		ctl_decide(&POL, o, &d);
		assert_string_equal(d.why, "helper-wait");
		assert_true(d.write_status);
		assert_int_equal(d.status.phase, CTL_PHASE_PENDING);
		assert_string_equal(d.status.ready_reason, "Pending");
		assert_string_equal(d.status.message, "waiting for the node helper on node node-a");
		assert_false(d.status.set_dispatch);
		assert_int_equal(d.actions, 0);
		assert_false(d.event);
		assert_int_equal(d.requeue_ms, 5000);
		free(o);
	}
	/* Another CR holds the pod: wait for it. */
	o = first_sight();
	o->others = &older;
	o->nothers = 1;
	ctl_decide(&POL, o, &d);
	assert_string_equal(d.why, "serialised");
	assert_true(d.write_status);
	assert_false(d.status.set_dispatch);
	assert_int_equal(d.actions, 0);
	assert_string_equal(d.status.message, "waiting for PodCheckpoint cp0 on the same pod");
	/* That one is done: dispatch at first sight. */
	older.terminal = true;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_DISPATCH);
	free(o);
}

/*
 * A failure is never decided on the first look (the caches lag most right
 * after a create, and terminal is final): the plain first Pending, then the
 * next reconcile fails it if it still holds.
 */
static void test_first_sight_failure_looks_twice(void **state)
{
	struct ctl_obs *o;
	struct ctl_decision d;

	(void)state;
	for (int k = 0; k < 5; k++) {
		o = first_sight();
		if (k == 0)
			o->pod_exists = false;
		else if (k == 1)
			set(o->pod_phase, sizeof(o->pod_phase), "Pending");
		else if (k == 2)
			set(o->spec_pod_uid, sizeof(o->spec_pod_uid), "other-uid");
		else if (k == 3) {
			o->encrypt = true;
			set(o->secret_name, sizeof(o->secret_name), "key");
		} else {
			/* First seen long after its creation, no helper: past the wait. */
			o->lease_exists = false;
			o->now_ms = T0 + 61000;
		}
		ctl_decide(&POL, o, &d);
		assert_string_equal(d.why, "initial-pending");
		assert_true(d.write_status);
		assert_int_equal(d.status.phase, CTL_PHASE_PENDING);
		assert_string_equal(d.status.ready_reason, "Pending");
		assert_false(d.status.stalled);
		assert_false(d.status.set_dispatch);
		assert_false(d.event);
		assert_int_equal(d.actions, 0);
		assert_int_equal(d.requeue_ms, 0);
		/* The second look fails it. */
		o->phase = CTL_PHASE_PENDING;
		set(o->st_message, sizeof(o->st_message), d.status.message);
		set(o->ready_reason, sizeof(o->ready_reason), "Pending");
		ctl_decide(&POL, o, &d);
		assert_int_equal(d.status.phase, CTL_PHASE_FAILED);
		assert_true(d.event && d.event_warning);
		free(o);
	}
	/* A status with a node but no phase is not dispatched again. */
	o = first_sight();
	set(o->st_node, sizeof(o->st_node), "node-a");
	ctl_decide(&POL, o, &d);
	assert_string_equal(d.why, "initial-pending");
	assert_int_equal(d.actions, 0);
	assert_false(d.status.set_dispatch);
	free(o);
}

/* ---------------------------------------------------------------- played against the model */

/* The happy path: one controller write, no controller Event, one job. */
static void test_happy_path_one_write(void **state)
{
	struct world *w = world_new();

	(void)state;
	assert_int_equal(reconcile(w), 0);
	assert_string_equal(w->last.why, "first-dispatch");
	assert_int_equal(w->srv->phase, CTL_PHASE_PENDING);
	assert_string_equal(w->srv->st_node, "node-a");
	assert_string_equal(w->srv->st_pod_uid, "pod-uid-1");
	assert_int_equal(w->srv->dispatch_ms, w->obs->now_ms);
	assert_string_equal(w->srv->ready_reason, "Pending");
	assert_int_equal(w->srv->observed_generation, 1);
	assert_int_equal(w->helper_jobs, 1);
	/* The watch brings our write: a poll, no write. */
	sync_cache(w);
	w->obs->now_ms += 100;
	assert_int_equal(reconcile(w), 0);
	assert_int_equal(w->last.actions, CTL_ACT_POLL);
	/* The helper starts and finishes (its writes). */
	helper_starts(w);
	sync_cache(w);
	w->obs->now_ms += 100;
	assert_int_equal(reconcile(w), 0);
	assert_false(w->last.write_status);
	helper_succeeds(w);
	sync_cache(w);
	w->obs->now_ms += 100;
	assert_int_equal(reconcile(w), 0);
	assert_string_equal(w->last.why, "terminal");
	assert_int_equal(w->last.actions, 0);

	assert_int_equal(w->status_writes, 1);
	assert_int_equal(w->events, 0);
	assert_int_equal(w->conflicts, 0);
	assert_int_equal(w->dispatches, 1);
	assert_int_equal(w->helper_jobs, 1);
	world_free(w);
}

/* deletionPolicy Delete: the finalizer, then the merged write on its rv. */
static void test_first_sight_with_finalizer(void **state)
{
	struct world *w = world_new();

	(void)state;
	w->obs->policy_delete = w->srv->policy_delete = true;
	assert_int_equal(reconcile(w), 0);
	assert_int_equal(w->last.actions, CTL_ACT_ADD_FINALIZER | CTL_ACT_DISPATCH);
	assert_true(w->srv->has_finalizer);
	assert_int_equal(w->conflicts, 0);
	assert_int_equal(w->status_writes, 1);
	assert_int_equal(w->helper_jobs, 1);
	world_free(w);
}

/* Not ready at first sight: the two-step path, two writes, still one job. */
static void test_not_ready_two_steps(void **state)
{
	struct world *w = world_new();

	(void)state;
	w->obs->lease_fresh = false;
	assert_int_equal(reconcile(w), 0);
	assert_string_equal(w->srv->st_node, "");
	assert_int_equal(w->srv->phase, CTL_PHASE_PENDING);
	assert_int_equal(w->helper_msgs, 0);
	sync_cache(w);
	/* Still stale 5 s later: no write (nothing changed). */
	w->obs->now_ms += 5000;
	assert_int_equal(reconcile(w), 0);
	assert_int_equal(w->status_writes, 1);
	/* The helper renews its Lease: the dispatch write. */
	w->obs->lease_fresh = true;
	w->obs->now_ms += 5000;
	assert_int_equal(reconcile(w), 0);
	assert_string_equal(w->last.why, "dispatch");
	assert_string_equal(w->srv->st_node, "node-a");
	assert_int_equal(w->status_writes, 2);
	assert_int_equal(w->helper_jobs, 1);
	assert_int_equal(w->events, 0);

	/* A pod the cache still shows Pending: the first look waits, the next dispatches. */
	world_free(w);
	w = world_new();
	set(w->obs->pod_phase, sizeof(w->obs->pod_phase), "Pending");
	assert_int_equal(reconcile(w), 0);
	assert_string_equal(w->last.why, "initial-pending");
	assert_int_equal(w->helper_msgs, 0);
	sync_cache(w);
	set(w->obs->pod_phase, sizeof(w->obs->pod_phase), "Running");
	assert_int_equal(reconcile(w), 0);
	assert_string_equal(w->last.why, "dispatch");
	assert_int_equal(w->status_writes, 2);
	assert_int_equal(w->helper_jobs, 1);
	world_free(w);
}

/* 409 on the merged write: nothing else happens; the next decision is right. */
static void test_conflict_on_merged_write(void **state)
{
	struct world *w = world_new();

	(void)state;
	/* Someone else changed the CR after our cache saw it. */
	touch(w);
	assert_int_equal(reconcile(w), -EAGAIN);
	assert_int_equal(w->status_writes, 0);
	assert_int_equal(w->helper_msgs, 0); /* no job without the status */
	assert_int_equal(w->events, 0);
	assert_int_equal(w->srv->phase, CTL_PHASE_NONE);
	/* Decided again on the fresh copy: the same merged write, now accepted. */
	sync_cache(w);
	assert_int_equal(reconcile(w), 0);
	assert_string_equal(w->last.why, "first-dispatch");
	assert_int_equal(w->status_writes, 1);
	assert_int_equal(w->helper_jobs, 1);
	world_free(w);

	/* The fresh copy is terminal (written by another writer): left alone. */
	w = world_new();
	w->srv->phase = CTL_PHASE_FAILED;
	w->srv->completion_ms = T0 + 500;
	touch(w);
	assert_int_equal(reconcile(w), -EAGAIN);
	sync_cache(w);
	assert_int_equal(reconcile(w), 0);
	assert_false(w->last.write_status);
	assert_int_equal(w->last.actions, 0);
	assert_int_equal(w->helper_msgs, 0);
	world_free(w);
}

/*
 * Our own merged write landed, but the key comes back (a pod event, the
 * poll requeue) before the watch delivered it: the cached copy still says
 * "first sight". The memory says a job was sent, so the copy is stale: no
 * decision on it (no second write meeting 409), the watch brings the new one.
 */
static void test_stale_copy_after_merged_write(void **state)
{
	struct world *w = world_new();

	(void)state;
	assert_int_equal(reconcile(w), 0);
	assert_int_equal(w->dispatches, 1);
	w->obs->now_ms += 50;
	assert_int_equal(reconcile(w), 0);
	assert_string_equal(w->last.why, "stale-copy");
	assert_true(w->last.stale_copy);
	assert_false(w->last.write_status);
	assert_int_equal(w->last.actions, 0);
	assert_false(w->last.event);
	assert_int_equal(w->last.requeue_ms, CTL_STALE_RETRY_MS);
	assert_int_equal(w->conflicts, 0);
	assert_int_equal(w->status_writes, 1);
	assert_int_equal(w->helper_msgs, 1);
	assert_int_equal(w->srv->dispatch_ms, T0 + 1000); /* the first one stands */
	/* The fresh copy: in flight, a poll of the same job. */
	sync_cache(w);
	w->obs->now_ms += 1000;
	assert_int_equal(reconcile(w), 0);
	assert_int_equal(w->last.actions, CTL_ACT_POLL);
	assert_false(w->last.write_status);
	assert_int_equal(w->helper_jobs, 1);
	assert_int_equal(w->conflicts, 0);
	world_free(w);

	/* The same with the helper unreachable at dispatch: the job was sent
	 * (the write landed), still stale. */
	w = world_new();
	w->helper_up = false;
	assert_int_equal(reconcile(w), 0);
	assert_int_equal(w->status_writes, 1);
	assert_int_equal(reconcile(w), 0);
	assert_string_equal(w->last.why, "stale-copy");
	assert_true(w->last.stale_copy);
	assert_int_equal(w->conflicts, 0);
	world_free(w);

	/* After a restart the memory is empty: the copy is decided on, and the
	 * precondition refuses it (409, decided again on the fresh copy). */
	w = world_new();
	assert_int_equal(reconcile(w), 0);
	forget(w);
	assert_int_equal(reconcile(w), -EAGAIN);
	assert_int_equal(w->status_writes, 1);
	sync_cache(w);
	assert_int_equal(reconcile(w), 0);
	assert_int_equal(w->last.actions, CTL_ACT_POLL);
	assert_int_equal(w->helper_jobs, 1);
	world_free(w);
}

/* The guard alone: whatever else the stale copy says, nothing is decided. */
static void test_stale_copy_decides_nothing(void **state)
{
	struct ctl_obs *o = first_sight();
	struct ctl_decision d;

	(void)state;
	o->job_sent = true;
	ctl_decide(&POL, o, &d);
	assert_string_equal(d.why, "stale-copy");
	assert_true(d.stale_copy);
	assert_false(d.write_status);
	assert_int_equal(d.actions, 0);
	/* A Pending copy from before the write (the two-step path). */
	o->phase = CTL_PHASE_PENDING;
	ctl_decide(&POL, o, &d);
	assert_string_equal(d.why, "stale-copy");
	assert_true(d.stale_copy);
	/* Not a validation failure on a lagging pod cache either. */
	o->pod_exists = false;
	ctl_decide(&POL, o, &d);
	assert_string_equal(d.why, "stale-copy");
	assert_true(d.stale_copy);
	assert_false(d.write_status);
	/* Deleting with our finalizer: not a finalizer removal that would
	 * skip the artifact of the job that was sent. */
	o->pod_exists = true;
	o->deleting = true;
	o->has_finalizer = true;
	o->policy_delete = true;
	ctl_decide(&POL, o, &d);
	assert_string_equal(d.why, "stale-copy");
	assert_true(d.stale_copy);
	assert_int_equal(d.actions, 0);
	/* The fresh copy (nodeName set) is decided as usual. */
	set(o->st_node, sizeof(o->st_node), "node-a");
	ctl_decide(&POL, o, &d);
	assert_string_equal(d.why, "delete-artifact");
	assert_false(d.stale_copy);
	assert_int_equal(d.actions, CTL_ACT_DELETE_ARTIFACT);
	/* No job sent: a copy without nodeName is what it says. */
	o->st_node[0] = '\0';
	o->job_sent = false;
	ctl_decide(&POL, o, &d);
	assert_string_equal(d.why, "remove-finalizer");
	assert_false(d.stale_copy);
	free(o);
}

/*
 * What ctl_io.c reads the guard's job_sent from (ctl_mem.h's public
 * contract): ctl_mem's job_sent flag, set by the first checkpoint call
 * whether the helper was reached or not (even without a container count),
 * by nothing else, and gone only with the record.
 */
static void test_stale_copy_memory_contract(void **state)
{
	struct ctl_mem_table *t = NULL;
	struct ctl_mem_view v;
	struct ctl_obs *o = first_sight();

	(void)state;
	assert_int_equal(ctl_mem_table_new(&t), 0);
	assert_int_equal(ctl_mem_snapshot(t, "u1", 100, true, &v), 0);
	assert_false(v.job_sent); /* first sight: nothing sent */
	ctl_mem_view_cleanup(&v);
	ctl_mem_mark_queued_event(t, "u1");
	ctl_mem_delete_result(t, "u1", 150, false, "no helper");
	ctl_mem_record_call(t, "u1", 160, 0, CTL_ANS_NONE, NULL, NULL, "", false, NULL, 3);
	assert_int_equal(ctl_mem_snapshot(t, "u1", 170, true, &v), 0);
	assert_false(v.job_sent);
	ctl_mem_view_cleanup(&v);
	/* The dispatch call, helper unreachable: as ctl_io.c records it. */
	ctl_mem_record_call(t, "u1", 200, -EHOSTUNREACH, CTL_ANS_NONE, NULL, NULL, "refused", true,
			    NULL, ctl_obs_job_containers(o));
	assert_int_equal(ctl_mem_snapshot(t, "u1", 300, true, &v), 0);
	assert_true(v.job_sent);
	assert_true(v.ncontainers > 0);
	ctl_mem_view_cleanup(&v);
	/* Not tied to the container count: a checkpoint call without one. */
	assert_int_equal(ctl_mem_snapshot(t, "u2", 300, true, &v), 0);
	ctl_mem_record_call(t, "u2", 310, 0, CTL_ANS_RUNNING, "", "", "", true, NULL, 0);
	assert_int_equal(ctl_mem_snapshot(t, "u2", 320, true, &v), 0);
	assert_true(v.job_sent);
	assert_int_equal(v.ncontainers, 0);
	ctl_mem_view_cleanup(&v);
	/* Later answers keep it; only forgetting the record clears it. */
	ctl_mem_record_call(t, "u1", 400, 0, CTL_ANS_BUSY, "Busy", "queue full", "", true, NULL, 0);
	assert_int_equal(ctl_mem_snapshot(t, "u1", 410, true, &v), 0);
	assert_true(v.job_sent);
	ctl_mem_view_cleanup(&v);
	ctl_mem_forget(t, "u1");
	assert_int_equal(ctl_mem_snapshot(t, "u1", 500, true, &v), 0);
	assert_false(v.job_sent);
	ctl_mem_view_cleanup(&v);
	ctl_mem_table_free(t);
	free(o);
}

/* Crash between the merged write and the job: the next reconcile sends it. */
static void test_crash_between_write_and_dispatch(void **state)
{
	struct world *w = world_new();

	(void)state;
	w->crash_after_status = true;
	assert_int_equal(reconcile(w), -EINTR);
	assert_string_equal(w->srv->st_node, "node-a");
	assert_int_equal(w->helper_msgs, 0);
	/* The restarted controller lists the CR: in flight, never answered. */
	w->obs->now_ms += 3000;
	sync_cache(w);
	assert_int_equal(reconcile(w), 0);
	assert_int_equal(w->last.actions, CTL_ACT_POLL); /* the same job, by uid */
	assert_false(w->last.write_status);
	assert_false(w->last.event);
	assert_int_equal(w->helper_jobs, 1);
	/* It starts; the next poll re-sends: still one job on the helper. */
	helper_starts(w);
	sync_cache(w);
	w->obs->now_ms += 5000;
	assert_int_equal(reconcile(w), 0);
	assert_int_equal(w->helper_msgs, 2);
	assert_int_equal(w->helper_jobs, 1);
	assert_int_equal(w->status_writes, 1);
	assert_int_equal(w->dispatches, 0);
	world_free(w);
}

/* The helper dies right after the merged write: the helper wait still applies. */
static void test_helper_unreachable_after_merged_write(void **state)
{
	struct world *w = world_new();
	int64_t dispatched;

	(void)state;
	w->helper_up = false; /* its Lease is still fresh: it just went away */
	assert_int_equal(reconcile(w), 0);
	assert_int_equal(w->status_writes, 1);
	dispatched = w->srv->dispatch_ms;
	sync_cache(w);
	for (int64_t t = 5000; t < 60000; t += 5000) {
		w->obs->now_ms = dispatched + t;
		w->obs->lease_fresh = t < 30000; /* then the Lease runs out too */
		assert_int_equal(reconcile(w), 0);
		assert_int_equal(w->last.actions, CTL_ACT_POLL);
		assert_false(w->last.write_status);
	}
	assert_int_equal(w->status_writes, 1);
	w->obs->now_ms = dispatched + 60000;
	assert_int_equal(reconcile(w), 0);
	assert_int_equal(w->srv->phase, CTL_PHASE_FAILED);
	assert_string_equal(w->last.status.stalled_reason, "NodeHelperUnavailable");
	assert_non_null(strstr(w->last.status.message, "connection refused by 127.0.0.2:10443"));
	assert_true(w->last.actions & CTL_ACT_CANCEL);
	assert_int_equal(w->events, 1); /* the Warning */
	assert_int_equal(w->helper_jobs, 0);
	world_free(w);

	/* Back within the wait: the poll delivers the job, no failure. */
	w = world_new();
	w->helper_up = false;
	assert_int_equal(reconcile(w), 0);
	dispatched = w->srv->dispatch_ms;
	sync_cache(w);
	w->helper_up = true;
	w->obs->now_ms = dispatched + 30000;
	assert_int_equal(reconcile(w), 0);
	assert_int_equal(w->helper_jobs, 1);
	w->obs->now_ms = dispatched + 61000;
	assert_int_equal(reconcile(w), 0);
	assert_int_equal(w->last.actions, CTL_ACT_POLL);
	assert_int_equal(w->srv->phase, CTL_PHASE_PENDING);
	world_free(w);
}

/* Timeout counts from the helper's startTime, not from the merged write. */
static void test_timeout_after_merged_write(void **state)
{
	struct world *w = world_new();
	int64_t started;

	(void)state;
	assert_int_equal(reconcile(w), 0);
	sync_cache(w);
	/* It waits 100 s in the helper's queue first. */
	w->obs->now_ms += 100000;
	helper_starts(w);
	started = w->obs->now_ms;
	sync_cache(w);
	/* 2 containers x 300 s + 60 s = 660 s from the start; it answers
	 * "running" to every poll meanwhile. */
	for (int64_t t = 5000; t < 659000; t += 5000) {
		w->obs->now_ms = started + t;
		assert_int_equal(reconcile(w), 0);
		assert_int_equal(w->last.actions, CTL_ACT_POLL);
		assert_false(w->last.write_status);
	}
	w->obs->now_ms = started + 659000;
	assert_int_equal(reconcile(w), 0);
	assert_int_equal(w->last.actions, CTL_ACT_POLL);
	assert_int_equal(w->last.requeue_ms, 1000);
	w->obs->now_ms = started + 660000;
	assert_int_equal(reconcile(w), 0);
	assert_int_equal(w->srv->phase, CTL_PHASE_FAILED);
	assert_string_equal(w->last.status.stalled_reason, "Timeout");
	assert_true(w->last.actions & CTL_ACT_CANCEL);
	/* Terminal is final: the helper's late Succeeded would be refused. */
	sync_cache(w);
	w->obs->now_ms += 1000;
	assert_int_equal(reconcile(w), 0);
	assert_false(w->last.write_status);
	assert_int_equal(w->status_writes, 2);
	world_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_sight_merged_write),
		cmocka_unit_test(test_first_sight_waits),
		cmocka_unit_test(test_first_sight_failure_looks_twice),
		cmocka_unit_test(test_happy_path_one_write),
		cmocka_unit_test(test_first_sight_with_finalizer),
		cmocka_unit_test(test_not_ready_two_steps),
		cmocka_unit_test(test_conflict_on_merged_write),
		cmocka_unit_test(test_stale_copy_after_merged_write),
		cmocka_unit_test(test_stale_copy_decides_nothing),
		cmocka_unit_test(test_stale_copy_memory_contract),
		cmocka_unit_test(test_crash_between_write_and_dispatch),
		cmocka_unit_test(test_helper_unreachable_after_merged_write),
		cmocka_unit_test(test_timeout_after_merged_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
