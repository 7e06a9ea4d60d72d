/*
 * test_metrics_helpers.c - podcheckpoint_helpers_available from the Lease
 * informer's cache (ctl_metrics_count_helpers): helpers' Leases renewed
 * within their duration count; stale ones, other Leases and malformed ones
 * do not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "ctl_metrics.h"
#include "kc.h"

static void put_lease(struct kc_cache *c, const char *name, const char *renew, int dur)
{
	char buf[512];
	json_object *o;

	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"namespace\":\"pcp\",\"name\":\"%s\"},\"spec\":{\"renewTime\":\"%s\","
		 "\"leaseDurationSeconds\":%d}}", name, renew, dur);
	o = json_tokener_parse(buf);
	assert_non_null(o);
	assert_int_equal(kc_cache_put(c, o), 0);
	json_object_put(o);
}

static void test_count_helpers(void **state)
{
	struct kc_cache *c = NULL;
	int64_t now = 0;
	(void)state;

	assert_int_equal(kc_time_parse("2026-12-01T10:00:30Z", &now), 0);
	assert_int_equal(ctl_metrics_count_helpers(NULL, now), 0);
	assert_int_equal(kc_cache_new(&c), 0);
	assert_int_equal(ctl_metrics_count_helpers(c, now), 0);
	put_lease(c, "pcp-helper-n1", "2026-12-01T10:00:20.000000Z", 40);  /* fresh */
	put_lease(c, "pcp-helper-n2", "2026-12-01T10:00:00Z", 40);         /* fresh */
	put_lease(c, "pcp-helper-n3", "2026-12-01T09:59:00Z", 40);         /* stale */
	put_lease(c, "pcp-helper-n4", "not a time", 40);                   /* malformed */
	put_lease(c, "podcheckpoint-controller", "2026-12-01T10:00:29Z", 40); /* the leader's */
	assert_int_equal(ctl_metrics_count_helpers(c, now), 2);
	assert_int_equal(ctl_metrics_count_helpers(c, now + 20000), 1);
	assert_int_equal(kc_cache_delete(c, "pcp", "pcp-helper-n1"), 0);
	assert_int_equal(ctl_metrics_count_helpers(c, now), 1);
	kc_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
