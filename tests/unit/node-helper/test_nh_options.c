/* Option table: defaults, env, flags, bounds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nh_options.h"

static int parse(struct nh_options *o, char *err, size_t errlen, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	argv[argc++] = "prog";
	va_start(ap, errlen);
	for (char *a = va_arg(ap, char *); a && argc < 31; a = va_arg(ap, char *))
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	return nh_options_parse(o, argc, argv, err, errlen);
}

static void clear_env(void)
{
	unsetenv("NODE_NAME");
	unsetenv("NODE_IP");
	unsetenv("POD_NAMESPACE");
}

static void test_defaults(void **state)
{
	struct nh_options o;
	char err[256];
	(void)state;
	clear_env();
	assert_int_equal(parse(&o, err, sizeof(err), "--node-name=n1", "--bind-address", "10.0.0.5", NULL), 0);
	assert_string_equal(o.node_name, "n1");
	assert_int_equal(o.port, 10443);
	assert_string_equal(o.namespace_, "podcheckpoint-system");
	/* by name (the kubelet's certificate names the node), connected to at the IP */
	assert_string_equal(o.kubelet_url, "https://n1:10250");
	assert_string_equal(o.kubelet_address, "10.0.0.5");
	assert_int_equal(o.kubelet_timeout_margin_seconds, 30);
	assert_string_equal(o.artifact_dir, "/var/lib/podcheckpoint/artifacts");
	assert_string_equal(o.state_dir, "/var/lib/podcheckpoint/state");
	assert_string_equal(o.host_root, "");
	assert_true(o.min_free_bytes == 1073741824ULL);
	assert_string_equal(o.controller_identity,
			    "system:serviceaccount:podcheckpoint-system:podcheckpoint-controller");
	assert_int_equal(o.lease_duration_seconds, 15);
	assert_int_equal(o.kube_api_qps, 200);
	assert_int_equal(o.kube_api_burst, 400);
	assert_int_equal(o.max_parallel_jobs, 4);
	assert_int_equal(o.max_queued_jobs, 64);
	assert_int_equal(o.max_queue_wait_seconds, 600);
	assert_false(o.kubelet_insecure_skip_verify);
	assert_string_equal(o.log_level, "info");
}

static void test_env_and_flags(void **state)
{
	struct nh_options o;
	char err[256];
	(void)state;
	clear_env();
	setenv("NODE_NAME", "env-node", 1);
	setenv("NODE_IP", "127.0.0.2", 1);
	setenv("POD_NAMESPACE", "ops", 1);
	assert_int_equal(parse(&o, err, sizeof(err), "--port=9443", "--kubelet-insecure-skip-verify",
			       "--host-root=/host/", "--min-free-bytes=512Mi",
			       "--kubelet-url=http://127.0.0.1:10250/", "--artifact-dir=/a/b/", NULL),
			 0);
	assert_string_equal(o.node_name, "env-node");
	assert_string_equal(o.bind_address, "127.0.0.2");
	assert_string_equal(o.namespace_, "ops");
	assert_int_equal(o.port, 9443);
	assert_true(o.kubelet_insecure_skip_verify);
	assert_string_equal(o.host_root, "/host");
	assert_true(o.min_free_bytes == 512ULL * 1024 * 1024);
	assert_string_equal(o.kubelet_url, "http://127.0.0.1:10250");
	assert_string_equal(o.artifact_dir, "/a/b");
	/* flag beats env */
	assert_int_equal(parse(&o, err, sizeof(err), "--node-name", "flag-node",
			       "--kubelet-insecure-skip-verify=false", NULL), 0);
	assert_string_equal(o.node_name, "flag-node");
	assert_false(o.kubelet_insecure_skip_verify);
	clear_env();
}

static void test_errors(void **state)
{
	struct nh_options o;
	char err[256];
	(void)state;
	clear_env();
	assert_int_equal(parse(&o, err, sizeof(err), "--bind-address=1.2.3.4", NULL), -EINVAL);
	assert_non_null(strstr(err, "--node-name"));
	assert_int_equal(parse(&o, err, sizeof(err), "--node-name=n", NULL), -EINVAL);
	assert_non_null(strstr(err, "--bind-address"));
	assert_int_equal(parse(&o, err, sizeof(err), "--node-name=n", "--bind-address=1.2.3.4", "--port=70000", NULL), -EINVAL);
	assert_string_equal(err, "--port: 70000 is out of range 1..65535");
	assert_int_equal(parse(&o, err, sizeof(err), "--node-name=n", "--bind-address=1.2.3.4", "--port=12x", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--node-name=n", "--bind-address=1.2.3.4", "--lease-duration-seconds=2", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--node-name=n", "--bind-address=1.2.3.4", "--bogus", NULL), -EINVAL);
	assert_non_null(strstr(err, "unknown option --bogus"));
	assert_int_equal(parse(&o, err, sizeof(err), "--node-name=n", "--bind-address=1.2.3.4", "--port", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--node-name=n", "--bind-address=1.2.3.4", "--min-free-bytes=-1", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--node-name=n", "--bind-address=1.2.3.4", "--kubelet-url=ftp://x", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--node-name=n", "--bind-address=1.2.3.4", "--artifact-dir=rel", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--node-name=n", "--bind-address=1.2.3.4", "--log-level=loud", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--node-name=n", "--bind-address=1.2.3.4", "--max-parallel-jobs=0", NULL), -EINVAL);
	assert_string_equal(err, "--max-parallel-jobs: 0 is out of range 1..64");
	assert_int_equal(parse(&o, err, sizeof(err), "--node-name=n", "--bind-address=1.2.3.4", "--max-queued-jobs=-1", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--node-name=n", "--bind-address=1.2.3.4", "--max-queue-wait-seconds=0", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--node-name=n", "--bind-address=1.2.3.4", "--max-parallel-jobs=8",
			       "--max-queued-jobs=0", NULL), 0);
	assert_int_equal(o.max_parallel_jobs, 8);
	assert_int_equal(o.max_queued_jobs, 0);
	assert_int_equal(parse(&o, err, sizeof(err), "stray", NULL), -EINVAL);
	setenv("NODE_NAME", "n", 1);
	setenv("NODE_IP", "1.2.3.4", 1);
	assert_int_equal(parse(&o, err, sizeof(err), "--kubelet-timeout-margin-seconds=-1", NULL), -EINVAL);
	/* --help skips required checks */
	clear_env();
	assert_int_equal(parse(&o, err, sizeof(err), "--help", NULL), 0);
	assert_true(o.help);
}

static void test_bytes(void **state)
{
	uint64_t v = 0;
	(void)state;
	assert_int_equal(nh_parse_bytes("1073741824", &v), 0);
	assert_true(v == 1073741824ULL);
	assert_int_equal(nh_parse_bytes("1Gi", &v), 0);
	assert_true(v == 1073741824ULL);
	assert_int_equal(nh_parse_bytes("10G", &v), 0);
	assert_true(v == 10000000000ULL);
	assert_int_equal(nh_parse_bytes("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(nh_parse_bytes("", &v), -EINVAL);
	assert_int_equal(nh_parse_bytes("1Q", &v), -EINVAL);
	assert_int_equal(nh_parse_bytes("-5", &v), -EINVAL);
	assert_int_equal(nh_parse_bytes("99999999999999999999Ti", &v), -EINVAL);
	assert_int_equal(nh_parse_bytes("20000000Ti", &v), -EINVAL);
}

static void test_usage(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	(void)state;
	nh_options_usage(f);
	fclose(f);
	assert_non_null(strstr(buf, "--kubelet-insecure-skip-verify"));
	assert_non_null(strstr(buf, "[$NODE_NAME]"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),  cmocka_unit_test(test_env_and_flags),
		cmocka_unit_test(test_errors),    cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_usage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
