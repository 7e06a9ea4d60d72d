/*
 * test_reconcile.c - every branch of ctl_decide(), plus the JSON glue.
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
#include "kc.h"
#include "obs_fixture.h"

static void expect_failed(const struct ctl_decision *d, const char *reason)
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

/* ---------------------------------------------------------------- first reconcile */

static void test_first_reconcile_pending(void **state)
{
	struct ctl_obs *o = base();
	struct ctl_decision d;

	(void)state;
	o->phase = CTL_PHASE_NONE;
	o->observed_generation = 0;
	o->ready_status[0] = o->ready_reason[0] = '\0';
	o->generation = 3;
	o->pod_exists = false; /* a failure is not decided on the first look */
	ctl_decide(&POL, o, &d);
	assert_true(d.write_status);
	assert_int_equal(d.status.phase, CTL_PHASE_PENDING);
	assert_string_equal(d.why, "initial-pending");
	assert_false(d.status.set_dispatch);
	assert_int_equal(d.status.observed_generation, 3);
	assert_string_equal(d.status.ready_reason, "Pending");
	assert_false(d.status.ready_true);
	assert_false(d.status.stalled);
	assert_false(d.event);
	assert_int_equal(d.actions, 0);
	assert_int_equal(d.requeue_ms, 0);
	free(o);
}

static void test_first_reconcile_adds_finalizer(void **state)
{
	struct ctl_obs *o = base();
	struct ctl_decision d;

	(void)state;
	o->phase = CTL_PHASE_NONE;
	o->policy_delete = true;
	ctl_decide(&POL, o, &d);
	assert_true(d.write_status);
	assert_int_equal(d.actions, CTL_ACT_ADD_FINALIZER | CTL_ACT_DISPATCH);
	/* Also when the first look does not dispatch. */
	o->pod_exists = false;
	ctl_decide(&POL, o, &d);
	assert_true(d.write_status);
	assert_int_equal(d.actions, CTL_ACT_ADD_FINALIZER);
	free(o);

	o = base();
	o->policy_delete = true;
	o->has_finalizer = true;
	ctl_decide(&POL, o, &d);
	assert_false(d.actions & CTL_ACT_ADD_FINALIZER);
	free(o);

	o = base(); /* Retain: never */
	ctl_decide(&POL, o, &d);
	assert_false(d.actions & CTL_ACT_ADD_FINALIZER);
	free(o);
}

/* ---------------------------------------------------------------- validation table */

struct vcase {
	const char *label;
	void (*mutate)(struct ctl_obs *o);
	const char *reason;
	const char *in_message; /* a word the message must contain */
};

static void m_pod_missing(struct ctl_obs *o)
{
	o->pod_exists = false;
}
static void m_pod_replaced(struct ctl_obs *o)
{
	set(o->spec_pod_uid, sizeof(o->spec_pod_uid), "old-uid");
}
static void m_pod_pending(struct ctl_obs *o)
{
	set(o->pod_phase, sizeof(o->pod_phase), "Pending");
}
static void m_pod_no_node(struct ctl_obs *o)
{
	o->pod_node[0] = '\0';
}
static void m_pod_deleting(struct ctl_obs *o)
{
	o->pod_deleting = true;
}
static void m_container(struct ctl_obs *o)
{
	o->nspec_containers = 2;
	set(o->spec_containers[0], CTL_NAME_MAX, "app");
	set(o->spec_containers[1], CTL_NAME_MAX, "nosuch");
}
static void enc(struct ctl_obs *o)
{
	o->encrypt = true;
	set(o->secret_name, sizeof(o->secret_name), "backup-cert");
	o->secret_exists = true;
	set(o->secret_type, sizeof(o->secret_type), "kubernetes.io/tls");
	o->cert = CTL_CERT_OK;
}
static void m_secret_missing(struct ctl_obs *o)
{
	enc(o);
	o->secret_exists = false;
}
static void m_secret_type(struct ctl_obs *o)
{
	enc(o);
	set(o->secret_type, sizeof(o->secret_type), "Opaque");
}
static void m_cert_missing(struct ctl_obs *o)
{
	enc(o);
	o->cert = CTL_CERT_MISSING;
}
static void m_cert_garbage(struct ctl_obs *o)
{
	enc(o);
	o->cert = CTL_CERT_GARBAGE;
	set(o->cert_msg, sizeof(o->cert_msg), "the PEM holds a private key, not a certificate.");
}
static void m_cert_key(struct ctl_obs *o)
{
	enc(o);
	o->cert = CTL_CERT_UNSUPPORTED_KEY;
	set(o->cert_msg, sizeof(o->cert_msg), "its key is Ed25519, which cannot receive a CMS artifact.");
}
static void m_cert_expired(struct ctl_obs *o)
{
	enc(o);
	o->cert = CTL_CERT_EXPIRED;
}
static void m_cert_future(struct ctl_obs *o)
{
	enc(o);
	o->cert = CTL_CERT_NOT_YET_VALID;
}
static void m_cert_expired_msg(struct ctl_obs *o)
{
	m_cert_expired(o);
	set(o->cert_msg, sizeof(o->cert_msg), "its notAfter 2020-01-01 is in the past.");
	set(o->cert_msg, sizeof(o->cert_msg), "notAfter 2020-01-01.");
}
/* Order: the pod is checked before the Secret. */
static void m_pod_missing_and_secret(struct ctl_obs *o)
{
	m_secret_missing(o);
	o->pod_exists = false;
}
static void m_replaced_and_not_running(struct ctl_obs *o)
{
	m_pod_replaced(o);
	m_pod_pending(o);
}

static const struct vcase vcases[] = {
	{ "pod missing", m_pod_missing, "PodNotFound", "web" },
	{ "pod replaced", m_pod_replaced, "SourcePodReplaced", "old-uid" },
	{ "pod pending", m_pod_pending, "PodNotRunning", "Pending" },
	{ "pod without node", m_pod_no_node, "PodNotRunning", "not on a node" },
	{ "pod deleting", m_pod_deleting, "PodNotRunning", "being deleted" },
	{ "unknown container", m_container, "ContainerNotFound", "nosuch" },
	{ "secret missing", m_secret_missing, "SecretNotFound", "backup-cert" },
	{ "secret wrong type", m_secret_type, "SecretWrongType", "Opaque" },
	{ "tls.crt missing", m_cert_missing, "InvalidCertificate", "tls.crt" },
	{ "tls.crt garbage", m_cert_garbage, "InvalidCertificate", "private key" },
	{ "unsupported key", m_cert_key, "InvalidCertificate", "Ed25519" },
	{ "expired", m_cert_expired, "InvalidCertificate", "expired" },
	{ "not yet valid", m_cert_future, "InvalidCertificate", "not yet valid" },
	{ "expired with detail", m_cert_expired_msg, "InvalidCertificate", "notAfter 2020-01-01; renew" },
	{ "pod before secret", m_pod_missing_and_secret, "PodNotFound", "web" },
	{ "uid before phase", m_replaced_and_not_running, "SourcePodReplaced", "replaced" },
};

static void test_validation_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vcases) / sizeof(vcases[0]); i++) {
		struct ctl_obs *o = base();
		struct ctl_decision d;

		vcases[i].mutate(o);
		ctl_decide(&POL, o, &d);
		print_message("case: %s -> %s (%s)\n", vcases[i].label, d.event_reason, d.status.message);
		expect_failed(&d, vcases[i].reason);
		assert_non_null(strstr(d.status.message, vcases[i].in_message));
		assert_non_null(strstr(d.status.message, "default/"));
		free(o);
	}
}

static void test_expired_allowed(void **state)
{
	struct ctl_policy pol = POL;
	struct ctl_obs *o = base();
	struct ctl_decision d;

	(void)state;
	pol.allow_expired = true;
	m_cert_expired(o);
	ctl_decide(&pol, o, &d);
	assert_true(d.actions & CTL_ACT_DISPATCH);
	m_cert_future(o);
	ctl_decide(&pol, o, &d);
	assert_true(d.actions & CTL_ACT_DISPATCH);
	/* Other certificate problems are not excused. */
	m_cert_key(o);
	ctl_decide(&pol, o, &d);
	expect_failed(&d, "InvalidCertificate");
	free(o);
}

static void test_valid_encrypt_dispatches(void **state)
{
	struct ctl_obs *o = base();
	struct ctl_decision d;

	(void)state;
	enc(o);
	o->nspec_containers = 1;
	set(o->spec_containers[0], CTL_NAME_MAX, "sidecar");
	ctl_decide(&POL, o, &d);
	assert_true(d.actions & CTL_ACT_DISPATCH);
	free(o);
}

/* ---------------------------------------------------------------- dispatch */

static void test_dispatch(void **state)
{
	struct ctl_obs *o = base();
	struct ctl_decision d;

	(void)state;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_DISPATCH);
	assert_true(d.write_status);
	assert_int_equal(d.status.phase, CTL_PHASE_PENDING);
	assert_true(d.status.set_dispatch);
	assert_string_equal(d.status.node_name, "node-a");
	assert_string_equal(d.status.pod_uid, "pod-uid-1");
	assert_int_equal(d.status.dispatch_ms, o->now_ms);
	assert_string_equal(d.status.recipient_fp, ""); /* not encrypting */
	assert_string_equal(d.status.message, "dispatched to the node helper on node-a");
	/* No Event: the helper's CheckpointStarted (or Queued, NodeHelperBusy,
	 * a failure) follows and names the same pod and node. */
	assert_false(d.event);
	assert_string_equal(d.why, "dispatch");
	assert_int_equal(d.requeue_ms, 5000);
	free(o);
}

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

static void test_dispatch_records_fingerprint(void **state)
{
	struct ctl_obs *o = base();
	struct ctl_decision d;

	(void)state;
	o->encrypt = true;
	set(o->secret_name, sizeof(o->secret_name), "key");
	o->secret_exists = true;
	set(o->secret_type, sizeof(o->secret_type), "kubernetes.io/tls");
	o->cert = CTL_CERT_OK;
	set(o->cert_fingerprint, sizeof(o->cert_fingerprint), "c0ffee");
	ctl_decide(&POL, o, &d);
	assert_true(d.actions & CTL_ACT_DISPATCH);
	assert_string_equal(d.status.recipient_fp, "c0ffee");
	free(o);
}

/* ---------------------------------------------------------------- helper wait */

static void test_helper_wait_then_fail(void **state)
{
	struct ctl_obs *o = base();
	struct ctl_decision d;

	(void)state;
	o->lease_exists = false;
	o->now_ms = T0 + 1000;
	ctl_decide(&POL, o, &d);
	assert_true(d.write_status);
	assert_int_equal(d.status.phase, CTL_PHASE_PENDING);
	assert_string_equal(d.status.message, "waiting for the node helper on node node-a");
	assert_int_equal(d.actions, 0);
	assert_int_equal(d.requeue_ms, 5000);
	assert_false(d.event);

	/* Same message already written: no write, still waiting. */
	set(o->st_message, sizeof(o->st_message), "waiting for the node helper on node node-a");
	o->now_ms = T0 + 58000;
	ctl_decide(&POL, o, &d);
	assert_false(d.write_status);
	assert_int_equal(d.requeue_ms, 2000); /* wakes at the expiry */

	/* A stale lease is no better. */
	o->lease_exists = true;
	o->lease_fresh = false;
	ctl_decide(&POL, o, &d);
	assert_false(d.actions & CTL_ACT_DISPATCH);

	o->now_ms = T0 + 60000;
	ctl_decide(&POL, o, &d);
	expect_failed(&d, "NodeHelperUnavailable");
	assert_non_null(strstr(d.status.message, "pcp-helper-node-a"));

	/* Helper back before the expiry: dispatch. */
	o->now_ms = T0 + 30000;
	o->lease_fresh = true;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.actions, CTL_ACT_DISPATCH);
	free(o);
}

static void test_helper_wait_uses_first_seen_without_creation(void **state)
{
	struct ctl_obs *o = base();
	struct ctl_decision d;

	(void)state;
	o->creation_ms = 0;
	o->first_seen_ms = T0 + 100000;
	o->lease_exists = false;
	o->now_ms = T0 + 130000;
	ctl_decide(&POL, o, &d);
	assert_int_equal(d.status.phase, CTL_PHASE_PENDING);
	o->now_ms = T0 + 160000;
	ctl_decide(&POL, o, &d);
	expect_failed(&d, "NodeHelperUnavailable");
	free(o);
}

/* ---------------------------------------------------------------- serialisation */

static void test_serialisation(void **state)
{
	struct ctl_obs *a = base(), *b = base();
	struct ctl_other oa = { .name = "cp1", .creation_ms = T0 };
	struct ctl_other ob = { .name = "cp2", .creation_ms = T0 + 10 };
	struct ctl_decision d;

	(void)state;
	set(b->name, sizeof(b->name), "cp2");
	b->creation_ms = T0 + 10;
	a->others = &ob;
	a->nothers = 1;
	b->others = &oa;
	b->nothers = 1;

	/* Both pending: the older goes first, the younger waits. */
	ctl_decide(&POL, a, &d);
	assert_int_equal(d.actions, CTL_ACT_DISPATCH);
	ctl_decide(&POL, b, &d);
	assert_int_equal(d.actions, 0);
	assert_true(d.write_status);
	assert_string_equal(d.status.message, "waiting for PodCheckpoint cp1 on the same pod");
	assert_int_equal(d.requeue_ms, 5000);

	/* The older is in flight: still waiting. */
	oa.dispatched = true;
	ctl_decide(&POL, b, &d);
	assert_int_equal(d.actions, 0);
	/* An in-flight younger one blocks an older pending one too. */
	ob.dispatched = true;
	ctl_decide(&POL, a, &d);
	assert_int_equal(d.actions, 0);
	assert_string_equal(d.status.message, "waiting for PodCheckpoint cp2 on the same pod");
	ob.dispatched = false;

	/* The older finished: go. */
	oa.terminal = true;
	ctl_decide(&POL, b, &d);
	assert_int_equal(d.actions, CTL_ACT_DISPATCH);

	/* A pending older one being deleted does not block. */
	oa.terminal = false;
	oa.dispatched = false;
	oa.deleting = true;
	ctl_decide(&POL, b, &d);
	assert_int_equal(d.actions, CTL_ACT_DISPATCH);

	/* Same creation time: lower name first. */
	oa.deleting = false;
	b->creation_ms = T0;
	oa.creation_ms = T0;
	ctl_decide(&POL, b, &d);
	assert_int_equal(d.actions, 0);
	ob.creation_ms = T0;
	ctl_decide(&POL, a, &d);
	assert_int_equal(d.actions, CTL_ACT_DISPATCH);

	/* Validation comes before waiting. */
	b->pod_exists = false;
	ctl_decide(&POL, b, &d);
	expect_failed(&d, "PodNotFound");

	/* Our own entry in the list is ignored. */
	a->others = &oa;
	ctl_decide(&POL, a, &d);
	assert_int_equal(d.actions, CTL_ACT_DISPATCH);
	free(a);
	free(b);
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

/* ---------------------------------------------------------------- JSON glue */

static json_object *parse(const char *s)
{
	json_object *j = json_tokener_parse(s);

	assert_non_null(j);
	return j;
}

static void test_obs_from_json(void **state)
{
	json_object *pcp = parse(
		"{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"c\",\"uid\":\"u1\",\"generation\":2,"
		"\"creationTimestamp\":\"2023-11-14T22:13:20Z\",\"finalizers\":[\"x\",\"checkpointing.dev/artifact\"],"
		"\"resourceVersion\":\"77\"},"
		"\"spec\":{\"podName\":\"web\",\"containers\":[\"a\",\"b\"],\"timeoutSeconds\":30,"
		"\"encrypt\":true,\"encryptionSecret\":\"s\",\"leaveRunning\":false,"
		"\"deletionPolicy\":\"Delete\",\"ttlSecondsAfterFinished\":0},"
		"\"status\":{\"phase\":\"Running\",\"startTime\":\"2023-11-14T22:13:21.5Z\","
		"\"nodeName\":\"n1\",\"artifact\":{\"path\":\"/a.tar\"},"
		"\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"CheckpointInProgress\"}]}}");
	json_object *pod = parse(
		"{\"metadata\":{\"uid\":\"pu\"},\"spec\":{\"nodeName\":\"n1\",\"initContainers\":[{\"name\":\"init\"}],"
		"\"containers\":[{\"name\":\"a\"},{\"name\":\"b\"}]},\"status\":{\"phase\":\"Running\"}}");
	json_object *sec = parse("{\"type\":\"kubernetes.io/tls\",\"data\":{\"tls.crt\":\"LS0tLS1CRUdJTg==\",\"tls.key\":\"c2VjcmV0\"}}");
	struct ctl_obs *o = calloc(1, sizeof(*o));
	struct ctl_other x;
	char *pem = NULL;
	size_t pem_len = 0;

	(void)state;
	assert_int_equal(ctl_obs_from_pcp(o, pcp), 0);
	assert_string_equal(o->ns, "ns1");
	assert_string_equal(o->uid, "u1");
	assert_int_equal(o->generation, 2);
	assert_int_equal(o->creation_ms, 1700000000000LL);
	assert_true(o->has_finalizer);
	assert_false(o->deleting);
	assert_int_equal(o->nspec_containers, 2);
	assert_int_equal(o->timeout_seconds, 30);
	assert_true(o->encrypt);
	assert_false(o->leave_running);
	assert_true(o->policy_delete);
	assert_true(o->has_ttl);
	assert_int_equal(o->ttl_seconds, 0);
	assert_int_equal(o->phase, CTL_PHASE_RUNNING);
	assert_int_equal(o->start_ms, 1700000001500LL);
	assert_string_equal(o->artifact_path, "/a.tar");
	assert_string_equal(o->ready_reason, "CheckpointInProgress");

	ctl_obs_set_pod(o, pod);
	assert_true(o->pod_exists);
	assert_int_equal(o->npod_containers, 2); /* init containers are not regular */
	assert_string_equal(o->pod_containers[1], "b");
	ctl_obs_set_pod(o, NULL);
	assert_false(o->pod_exists);

	assert_int_equal(ctl_obs_set_secret(o, sec, &pem, &pem_len), 0);
	assert_true(o->secret_exists);
	assert_string_equal(pem, "-----BEGIN");
	assert_int_equal(pem_len, 10);
	free(pem);
	assert_int_equal(ctl_obs_set_secret(o, NULL, &pem, &pem_len), 0);
	assert_false(o->secret_exists);
	assert_null(pem);

	ctl_other_from_pcp(&x, pcp);
	assert_string_equal(x.name, "c");
	assert_true(x.dispatched);
	assert_false(x.terminal);

	json_object_put(pcp);
	json_object_put(pod);
	json_object_put(sec);
	free(o);
}

static void test_status_patch(void **state)
{
	struct ctl_obs *o = base();
	struct ctl_decision d;
	json_object *existing = parse(
		"[{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"Pending\",\"lastTransitionTime\":\"2023-01-01T00:00:00Z\"},"
		"{\"type\":\"Custom\",\"status\":\"True\"}]");
	json_object *patch = NULL, *conds;
	const char *text;

	(void)state;
	ctl_decide(&POL, o, &d); /* dispatch */
	assert_int_equal(ctl_status_patch(&d, existing, "42", o->now_ms, &patch), 0);
	text = json_object_to_json_string_ext(patch, JSON_C_TO_STRING_PLAIN);
	print_message("%s\n", text);
	assert_string_equal(kc_json_str(patch, "metadata.resourceVersion"), "42");
	assert_string_equal(kc_json_str(patch, "status.phase"), "Pending");
	assert_string_equal(kc_json_str(patch, "status.nodeName"), "node-a");
	/* dispatchTime, not startTime: the helper writes that when it starts */
	assert_string_equal(kc_json_str(patch, "status.dispatchTime"), "2023-11-14T22:13:21Z");
	assert_null(kc_json_get(patch, "status.startTime"));
	assert_null(kc_json_get(patch, "status.completionTime"));
	conds = kc_json_get(patch, "status.conditions");
	assert_int_equal(json_object_array_length(conds), 3);
	/* the shared merge: order kept, Ready replaced in place */
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 1), "type"), "Custom");
	/* not terminal yet: Reconciling=True (kstatus InProgress) */
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 2), "type"), "Reconciling");
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 2), "status"), "True");
	/* Ready stays False: its lastTransitionTime is kept. */
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 0), "lastTransitionTime"),
			    "2023-01-01T00:00:00Z");
	json_object_put(patch);

	o->pod_exists = false;
	ctl_decide(&POL, o, &d);
	assert_int_equal(ctl_status_patch(&d, existing, NULL, o->now_ms, &patch), 0);
	assert_null(kc_json_get(patch, "metadata"));
	assert_string_equal(kc_json_str(patch, "status.phase"), "Failed");
	assert_non_null(kc_json_str(patch, "status.completionTime"));
	conds = kc_json_get(patch, "status.conditions");
	assert_int_equal(json_object_array_length(conds), 4);
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 0), "reason"), "CheckpointFailed");
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 3), "type"), "Reconciling");
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 3), "status"), "False");
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 2), "type"), "Stalled");
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 2), "status"), "True");
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 2), "reason"), "PodNotFound");
	json_object_put(patch);
	json_object_put(existing);
	free(o);
}

static void test_finalizer_patch(void **state)
{
	json_object *pcp = parse("{\"metadata\":{\"resourceVersion\":\"5\",\"finalizers\":[\"other/x\"]}}");
	json_object *patch = NULL, *list;

	(void)state;
	assert_int_equal(ctl_finalizer_patch(pcp, true, &patch), 0);
	list = kc_json_get(patch, "metadata.finalizers");
	assert_int_equal(json_object_array_length(list), 2);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(list, 1)), CTL_FINALIZER);
	assert_string_equal(kc_json_str(patch, "metadata.resourceVersion"), "5");
	json_object_put(patch);
	json_object_put(pcp);

	pcp = parse("{\"metadata\":{\"finalizers\":[\"checkpointing.dev/artifact\",\"other/x\"]}}");
	assert_int_equal(ctl_finalizer_patch(pcp, false, &patch), 0);
	list = kc_json_get(patch, "metadata.finalizers");
	assert_int_equal(json_object_array_length(list), 1);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(list, 0)), "other/x");
	json_object_put(patch);
	json_object_put(pcp);
}

static void test_time_and_phase_parse(void **state)
{
	int64_t ms;
	char buf[32];

	(void)state;
	assert_int_equal(kc_time_parse("2023-11-14T22:13:20Z", &ms), 0);
	assert_int_equal(ms, 1700000000000LL);
	assert_int_equal(kc_time_parse("2023-11-14T23:13:20.250+01:00", &ms), 0);
	assert_int_equal(ms, 1700000000250LL);
	assert_int_equal(kc_time_parse("2023-11-14", &ms), -EINVAL);
	assert_int_equal(kc_time_parse("2023-11-14T22:13:20", &ms), -EINVAL);
	assert_int_equal(kc_time_parse("2023-11-14T22:13:20Zjunk", &ms), -EINVAL);
	kc_time_rfc3339(1700000000999LL / 1000, buf);
	assert_string_equal(buf, "2023-11-14T22:13:20Z");
	/* kc_base64_decode (the Secret's tls.crt) is tested in tests/unit/kc. */
	assert_int_equal(ctl_phase_parse("Bogus", &(enum ctl_phase){ 0 }), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_reconcile_pending),
		cmocka_unit_test(test_first_reconcile_adds_finalizer),
		cmocka_unit_test(test_validation_table),
		cmocka_unit_test(test_expired_allowed),
		cmocka_unit_test(test_valid_encrypt_dispatches),
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_in_flight_never_redispatches),
		cmocka_unit_test(test_terminal_never_changes),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_helper_failed_answer),
		cmocka_unit_test(test_helper_refused_answer),
		cmocka_unit_test(test_helper_lost_in_flight),
		cmocka_unit_test(test_queued_stays_pending),
		cmocka_unit_test(test_busy_is_not_a_failure),
		cmocka_unit_test(test_commit_point_no_timeout),
		cmocka_unit_test(test_refused_cancels),
		cmocka_unit_test(test_dispatch_records_fingerprint),
		cmocka_unit_test(test_helper_wait_then_fail),
		cmocka_unit_test(test_helper_wait_uses_first_seen_without_creation),
		cmocka_unit_test(test_serialisation),
		cmocka_unit_test(test_deletion_paths),
		cmocka_unit_test(test_ttl),
		cmocka_unit_test(test_obs_from_json),
		cmocka_unit_test(test_status_patch),
		cmocka_unit_test(test_finalizer_patch),
		cmocka_unit_test(test_time_and_phase_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
