/*
 * test_metrics_helpers.c - podcheckpoint_helpers_available from the Lease
 * informer's records (ctl_leases.h, ctl_metrics_count_helpers): helpers'
 * Leases renewed within their duration count; stale ones, other Leases and
 * malformed ones do not. And the records themselves: a renewal updates in
 * place, a delete and a sweep remove, the annotations are what is read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ctl_leases.h"
#include "ctl_metrics.h"
#include "kc.h"

static void lease_event(struct ctl_leases *l, enum kc_event_type type, const char *name,
			const char *renew, int dur, uint64_t epoch)
{
	char buf[768];
	json_object *o;

	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"namespace\":\"pcp\",\"name\":\"%s\",\"annotations\":{"
		 "\"checkpointing.dev/endpoint\":\"wss://10.0.0.1:10443/%s\",\"checkpointing.dev/cert-sha256\":"
		 "\"%064d\"},\"managedFields\":[{\"manager\":\"x\"}]},\"spec\":{\"renewTime\":\"%s\","
		 "\"leaseDurationSeconds\":%d,\"holderIdentity\":\"h\"}}",
		 name, name, 7, renew, dur);
	o = json_tokener_parse(buf);
	assert_non_null(o);
	assert_int_equal(ctl_leases_project(l, type, o, epoch), 0);
	json_object_put(o);
}

static void put_lease(struct ctl_leases *l, const char *name, const char *renew, int dur)
{
	lease_event(l, KC_ADDED, name, renew, dur, 1);
}

static void test_count_helpers(void **state)
{
	struct ctl_leases *c = NULL;
	int64_t now = 0;
	(void)state;

	assert_int_equal(kc_time_parse("2026-12-01T10:00:30Z", &now), 0);
	assert_int_equal(ctl_metrics_count_helpers(NULL, now), 0);
	assert_int_equal(ctl_leases_new(&c), 0);
	assert_int_equal(ctl_metrics_count_helpers(c, now), 0);
	put_lease(c, "pcp-helper-n1", "2026-12-01T10:00:20.000000Z", 40);  /* fresh */
	put_lease(c, "pcp-helper-n2", "2026-12-01T10:00:00Z", 40);         /* fresh */
	put_lease(c, "pcp-helper-n3", "2026-12-01T09:59:00Z", 40);         /* stale */
	put_lease(c, "pcp-helper-n4", "not a time", 40);                   /* malformed */
	put_lease(c, "podcheckpoint-controller", "2026-12-01T10:00:29Z", 40); /* the leader's */
	assert_int_equal(ctl_metrics_count_helpers(c, now), 2);
	assert_int_equal(ctl_metrics_count_helpers(c, now + 20000), 1);
	lease_event(c, KC_DELETED, "pcp-helper-n1", "", 0, 1);
	assert_int_equal(ctl_metrics_count_helpers(c, now), 1);
	ctl_leases_free(c);
}

static void test_lease_records(void **state)
{
	struct ctl_leases *l = NULL;
	struct ctl_lease_view v;
	int64_t t = 0;
	(void)state;

	assert_int_equal(ctl_leases_new(&l), 0);
	assert_false(ctl_leases_get(l, "pcp-helper-n1", &v));
	lease_event(l, KC_ADDED, "pcp-helper-n1", "2026-12-01T10:00:00Z", 15, 1);
	lease_event(l, KC_ADDED, "pcp-helper-n2", "2026-12-01T10:00:00Z", 15, 1);
	assert_true(ctl_leases_get(l, "pcp-helper-n1", &v));
	assert_int_equal(kc_time_parse("2026-12-01T10:00:00Z", &t), 0);
	assert_int_equal(v.renew_ms, t);
	assert_int_equal(v.duration_seconds, 15);
	assert_string_equal(v.endpoint, "wss://10.0.0.1:10443/pcp-helper-n1");
	assert_int_equal(strlen(v.fingerprint), 64);
	/* a renewal: the same record, new figures */
	lease_event(l, KC_MODIFIED, "pcp-helper-n1", "2026-12-01T10:00:05Z", 20, 1);
	assert_true(ctl_leases_get(l, "pcp-helper-n1", &v));
	assert_int_equal(v.renew_ms, t + 5000);
	assert_int_equal(v.duration_seconds, 20);
	assert_int_equal(ctl_leases_count(l), 2);
	/* a relist that saw only n2 (epoch 2): the sweep removes n1 */
	lease_event(l, KC_ADDED, "pcp-helper-n2", "2026-12-01T10:00:06Z", 15, 2);
	ctl_leases_sweep(l, 2);
	assert_false(ctl_leases_get(l, "pcp-helper-n1", &v));
	assert_true(ctl_leases_get(l, "pcp-helper-n2", &v));
	assert_int_equal(ctl_leases_count(l), 1);
	ctl_leases_free(l);
	ctl_leases_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count_helpers),
		cmocka_unit_test(test_lease_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
