/*
 * test_options.c - the option table: defaults, environment, forms, errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl_options.h"

#define ARGV(...) ((char *[]){ "podcheckpoint-controller", __VA_ARGS__ })
#define ARGC(...) ((int)(sizeof((char *[]){ "x", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(o, err, ...) ctl_options_parse(o, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), err, sizeof(err))

static void test_defaults(void **state)
{
	struct ctl_options o;
	char err[256] = "";
	char *argv[] = { "podcheckpoint-controller", NULL };

	(void)state;
	unsetenv("POD_NAMESPACE");
	setenv("POD_NAME", "ctl-pod-0", 1);
	assert_int_equal(ctl_options_parse(&o, 1, argv, err, sizeof(err)), 0);
	assert_string_equal(o.kubeconfig, "");
	assert_string_equal(o.ns, "podcheckpoint-system");
	assert_int_equal(o.nwatch, 0);
	assert_int_equal(o.workers, 2);
	assert_int_equal(o.helper_wait_seconds, 60);
	assert_int_equal(o.job_margin_seconds, 60);
	assert_int_equal(o.poll_seconds, 5);
	assert_int_equal(o.kube_api_qps, 200);
	assert_int_equal(o.kube_api_burst, 400);
	assert_true(o.leader_elect);
	assert_false(o.allow_expired);
	assert_string_equal(o.identity, "ctl-pod-0");
	assert_string_equal(o.log_level, "info");
	assert_false(o.help);

	unsetenv("POD_NAME");
	setenv("POD_NAMESPACE", "ops", 1);
	assert_int_equal(ctl_options_parse(&o, 1, argv, err, sizeof(err)), 0);
	assert_string_equal(o.ns, "ops");
	assert_true(o.identity[0] != '\0'); /* host name */
	unsetenv("POD_NAMESPACE");
}

static void test_forms(void **state)
{
	struct ctl_options o;
	char err[256] = "";

	(void)state;
	setenv("POD_NAMESPACE", "ops", 1);
	assert_int_equal(PARSE(&o, err, "--kubeconfig", "/tmp/kc", "--namespace=pcp",
			       "--watch-namespace=a,b", "--watch-namespace", "c", "--watch-namespace=a,,",
			       "--workers=4", "--helper-wait-seconds", "10", "--job-margin-seconds=0",
			       "--poll-seconds=1", "--leader-elect=false", "--allow-expired-certificates",
			       "--identity=me", "--log-level=debug"),
			 0);
	assert_string_equal(o.kubeconfig, "/tmp/kc");
	assert_string_equal(o.ns, "pcp"); /* flag beats environment */
	assert_int_equal(o.nwatch, 3);
	assert_string_equal(o.watch_ns[0], "a");
	assert_string_equal(o.watch_ns[1], "b");
	assert_string_equal(o.watch_ns[2], "c");
	assert_int_equal(o.workers, 4);
	assert_int_equal(o.helper_wait_seconds, 10);
	assert_int_equal(o.job_margin_seconds, 0);
	assert_int_equal(o.poll_seconds, 1);
	assert_false(o.leader_elect);
	assert_true(o.allow_expired);
	assert_string_equal(o.identity, "me");
	assert_string_equal(o.log_level, "debug");

	assert_int_equal(PARSE(&o, err, "--kube-api-qps=0", "--kube-api-burst", "7"), 0);
	assert_int_equal(o.kube_api_qps, 0);
	assert_int_equal(o.kube_api_burst, 7);
	assert_int_not_equal(PARSE(&o, err, "--kube-api-burst=0"), 0);
	assert_non_null(strstr(err, "--kube-api-burst"));
	assert_int_not_equal(PARSE(&o, err, "--kube-api-qps=100001"), 0);

	assert_int_equal(PARSE(&o, err, "--no-leader-elect", "--help"), 0);
	assert_false(o.leader_elect);
	assert_true(o.help);
	assert_int_equal(PARSE(&o, err, "--leader-elect"), 0);
	assert_true(o.leader_elect);
	unsetenv("POD_NAMESPACE");
}

static void test_errors(void **state)
{
	struct ctl_options o;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&o, err, "--workers=0"), -EINVAL);
	assert_non_null(strstr(err, "--workers"));
	assert_int_equal(PARSE(&o, err, "--workers=2x"), -EINVAL);
	assert_non_null(strstr(err, "not a whole number"));
	assert_int_equal(PARSE(&o, err, "--workers=99999999999999999999"), -EINVAL);
	assert_int_equal(PARSE(&o, err, "--poll-seconds"), -EINVAL);
	assert_non_null(strstr(err, "needs a value"));
	assert_int_equal(PARSE(&o, err, "--bogus=1"), -EINVAL);
	assert_non_null(strstr(err, "--bogus"));
	assert_int_equal(PARSE(&o, err, "--no-workers"), -EINVAL);
	assert_int_equal(PARSE(&o, err, "--leader-elect=maybe"), -EINVAL);
	assert_int_equal(PARSE(&o, err, "positional"), -EINVAL);
	assert_int_equal(PARSE(&o, err, "--namespace="), -EINVAL);
	assert_int_equal(PARSE(&o, err, "--watch-namespace=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
			 -EINVAL);
}

static void test_usage(void **state)
{
	char buf[8192] = "";
	FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");

	(void)state;
	assert_non_null(f);
	ctl_options_usage(f, "podcheckpoint-controller");
	fclose(f);
	assert_non_null(strstr(buf, "--helper-wait-seconds=N"));
	assert_non_null(strstr(buf, "[default 60]"));
	assert_non_null(strstr(buf, "--watch-namespace"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_usage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
