/*
 * test_reconcile.c - ctl_decide() before a dispatch: the first reconcile,
 * validation (table-driven), the dispatch itself, the helper wait and
 * serialisation with other CRs of the pod. In flight: test_in_flight.c;
 * terminal, deletion and TTL: test_terminal.c; the JSON glue: test_obs_json.c.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_reconcile_pending),
		cmocka_unit_test(test_first_reconcile_adds_finalizer),
		cmocka_unit_test(test_validation_table),
		cmocka_unit_test(test_expired_allowed),
		cmocka_unit_test(test_valid_encrypt_dispatches),
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_dispatch_records_fingerprint),
		cmocka_unit_test(test_helper_wait_then_fail),
		cmocka_unit_test(test_helper_wait_uses_first_seen_without_creation),
		cmocka_unit_test(test_serialisation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
