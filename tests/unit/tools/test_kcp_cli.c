/*
 * test_kcp_cli.c - the pure parts of kubectl-checkpoint: flags, durations,
 * ages, default names, the spec for each option, list rows and the table.
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

#include "kc.h"
#include "kcp_cli.h"

/* ---------------------------------------------------------------- helpers */

static int parse(struct kcp_args *a, char *err, size_t errlen, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = (char *)"kubectl-checkpoint";
	va_start(ap, errlen);
	for (char *s = va_arg(ap, char *); s && argc < 31; s = va_arg(ap, char *))
		argv[argc++] = s;
	va_end(ap);
	argv[argc] = NULL;
	return kcp_parse_args(argc, argv, a, err, errlen);
}

/* The spec built from o, as compact JSON, compared to want. */
static void assert_spec(const struct kcp_create_opts *o, const char *want)
{
	json_object *spec = NULL;

	assert_int_equal(kcp_build_spec(o, &spec), 0);
	assert_string_equal(json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), want);
	json_object_put(spec);
}

static json_object *obj(const char *text)
{
	json_object *o = NULL;

	assert_int_equal(kc_json_parse(text, strlen(text), &o), 0);
	return o;
}

/* ---------------------------------------------------------------- durations */

static void test_duration(void **state)
{
	long s = -1;
	(void)state;

	assert_int_equal(kcp_parse_duration("90s", &s), 0);
	assert_int_equal(s, 90);
	assert_int_equal(kcp_parse_duration("5m", &s), 0);
	assert_int_equal(s, 300);
	assert_int_equal(kcp_parse_duration("1h", &s), 0);
	assert_int_equal(s, 3600);
	assert_int_equal(kcp_parse_duration("2d", &s), 0);
	assert_int_equal(s, 172800);
	assert_int_equal(kcp_parse_duration("120", &s), 0);
	assert_int_equal(s, 120);
	assert_int_equal(kcp_parse_duration("0", &s), 0);
	assert_int_equal(s, 0);
	assert_int_equal(kcp_parse_duration("604800", &s), 0);

	s = 42;
	const char *bad[] = {"", "s", "-5", "-5s", "+5", " 5", "5 ", "5x", "5ms", "1h30m", "1.5h",
			     "abc", "604801", "8d", "99999999999999999999", "0x10", NULL};
	for (size_t i = 0; bad[i]; i++) {
		if (kcp_parse_duration(bad[i], &s) != -EINVAL)
			fail_msg("duration \"%s\" was accepted", bad[i]);
	}
	assert_int_equal(kcp_parse_duration(NULL, &s), -EINVAL);
	assert_int_equal(s, 42); /* untouched on failure */
}

static void test_age(void **state)
{
	char b[16];
	(void)state;

	struct {
		int64_t s;
		const char *want;
	} cases[] = {{-30, "0s"}, {0, "0s"}, {5, "5s"}, {59, "59s"}, {60, "1m"}, {200, "3m"},
		     {3599, "59m"}, {3600, "1h"}, {7300, "2h"}, {86399, "23h"}, {86400, "1d"},
		     {4 * 86400 + 5, "4d"}, {400 * 86400, "400d"}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kcp_format_age(cases[i].s, b, sizeof(b));
		assert_string_equal(b, cases[i].want);
	}
}

static void test_default_name(void **state)
{
	char b[254], longpod[250];
	(void)state;

	/* 2026-11-28T18:05:09Z */
	assert_int_equal(kcp_default_name("web", 1795889109, b, sizeof(b)), 0);
	assert_string_equal(b, "web-20261128-180509");
	memset(longpod, 'a', sizeof(longpod) - 1);
	longpod[sizeof(longpod) - 1] = '\0';
	assert_int_equal(kcp_default_name(longpod, 0, b, sizeof(b)), -ENAMETOOLONG);
	assert_int_equal(kcp_default_name("web", 0, b, 8), -ENAMETOOLONG);
}

/* ---------------------------------------------------------------- spec */

static void test_spec_combinations(void **state)
{
	struct kcp_create_opts o;
	(void)state;

	memset(&o, 0, sizeof(o));
	o.pod = "web";
	assert_spec(&o, "{\"podName\":\"web\"}");

	o.encrypt_to = "recipient";
	assert_spec(&o, "{\"podName\":\"web\",\"encrypt\":true,\"encryptionSecret\":\"recipient\"}");

	o.encrypt_to = NULL;
	o.delete_pod = true;
	assert_spec(&o, "{\"podName\":\"web\",\"leaveRunning\":false}");

	o.delete_pod = false;
	o.containers[0] = "app";
	o.containers[1] = "sidecar";
	o.n_containers = 2;
	assert_spec(&o, "{\"podName\":\"web\",\"containers\":[\"app\",\"sidecar\"]}");

	o.n_containers = 0;
	o.timeout_seconds = 60;
	assert_spec(&o, "{\"podName\":\"web\",\"timeoutSeconds\":60}");

	o.timeout_seconds = 0;
	o.deletion_policy = "Delete";
	assert_spec(&o, "{\"podName\":\"web\",\"deletionPolicy\":\"Delete\"}");

	/* everything at once */
	o.encrypt_to = "rcp";
	o.delete_pod = true;
	o.n_containers = 1;
	o.timeout_seconds = 3600;
	o.deletion_policy = "Retain";
	assert_spec(&o, "{\"podName\":\"web\",\"encrypt\":true,\"encryptionSecret\":\"rcp\","
			"\"leaveRunning\":false,\"containers\":[\"app\"],\"timeoutSeconds\":3600,"
			"\"deletionPolicy\":\"Retain\"}");

	json_object *spec = (json_object *)1;
	o.pod = NULL;
	assert_int_equal(kcp_build_spec(&o, &spec), -EINVAL);
	assert_null(spec);
}

static void test_build_pcp(void **state)
{
	struct kcp_create_opts o;
	json_object *pcp = NULL;
	(void)state;

	memset(&o, 0, sizeof(o));
	o.pod = "web";
	assert_int_equal(kcp_build_pcp(&o, "ns1", "web-x", &pcp), 0);
	assert_string_equal(json_object_to_json_string_ext(pcp, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
			    "{\"apiVersion\":\"checkpointing.dev/v1alpha1\",\"kind\":\"PodCheckpoint\","
			    "\"metadata\":{\"name\":\"web-x\",\"namespace\":\"ns1\"},"
			    "\"spec\":{\"podName\":\"web\"}}");
	json_object_put(pcp);
	assert_int_equal(kcp_build_pcp(&o, NULL, "x", &pcp), -EINVAL);
}

/* ---------------------------------------------------------------- flags */

static void test_args_create(void **state)
{
	struct kcp_args a;
	char err[256];
	(void)state;

	assert_int_equal(parse(&a, err, sizeof(err), "create", "web", "-n", "ns1", "--name", "cp1",
			       "--container", "app", "-c", "side", "--encrypt-to=rcp", "--delete-pod",
			       "--timeout", "2m", "--deletion-policy", "Delete", "--wait=90s",
			       "--kubeconfig", "/tmp/kc", NULL), 0);
	assert_int_equal(a.cmd, KCP_CMD_CREATE);
	assert_string_equal(a.create.pod, "web");
	assert_string_equal(a.ns, "ns1");
	assert_string_equal(a.name, "cp1");
	assert_int_equal(a.create.n_containers, 2);
	assert_string_equal(a.create.containers[1], "side");
	assert_string_equal(a.create.encrypt_to, "rcp");
	assert_true(a.create.delete_pod);
	assert_int_equal(a.create.timeout_seconds, 120);
	assert_string_equal(a.create.deletion_policy, "Delete");
	assert_true(a.wait);
	assert_int_equal(a.wait_seconds, 90);
	assert_string_equal(a.kubeconfig, "/tmp/kc");

	/* global flags before the command, bare --wait means 5m, -nNS */
	assert_int_equal(parse(&a, err, sizeof(err), "--kubeconfig", "k", "-nfoo", "create", "--wait",
			       "web", NULL), 0);
	assert_int_equal(a.cmd, KCP_CMD_CREATE);
	assert_string_equal(a.ns, "foo");
	assert_string_equal(a.target, "web");
	assert_true(a.wait);
	assert_int_equal(a.wait_seconds, KCP_DEFAULT_WAIT_SECONDS);

	assert_int_equal(parse(&a, err, sizeof(err), "create", "web", NULL), 0);
	assert_false(a.wait);
}

static void test_args_others(void **state)
{
	struct kcp_args a;
	char err[256];
	(void)state;

	assert_int_equal(parse(&a, err, sizeof(err), "list", "-A", NULL), 0);
	assert_int_equal(a.cmd, KCP_CMD_LIST);
	assert_true(a.all_ns);

	assert_int_equal(parse(&a, err, sizeof(err), "wait", "cp1", "--timeout=1h", NULL), 0);
	assert_int_equal(a.cmd, KCP_CMD_WAIT);
	assert_string_equal(a.target, "cp1");
	assert_true(a.wait);
	assert_int_equal(a.wait_seconds, 3600);

	assert_int_equal(parse(&a, err, sizeof(err), "decrypt", "art.cms", "--key", "tls.key",
			       "-c", "tls.crt", "-o", "out.tar", NULL), 0);
	assert_int_equal(a.cmd, KCP_CMD_DECRYPT);
	assert_string_equal(a.target, "art.cms");
	assert_string_equal(a.key, "tls.key");
	assert_string_equal(a.cert, "tls.crt");
	assert_string_equal(a.out, "out.tar");

	/* help anywhere, even without required arguments */
	assert_int_equal(parse(&a, err, sizeof(err), "--help", NULL), 0);
	assert_true(a.help);
	assert_int_equal(a.cmd, KCP_CMD_NONE);
	assert_int_equal(parse(&a, err, sizeof(err), "decrypt", "-h", NULL), 0);
	assert_true(a.help);
	assert_int_equal(a.cmd, KCP_CMD_DECRYPT);
}

static void test_args_bad(void **state)
{
	struct kcp_args a;
	char err[256];
	(void)state;

#define BAD(want, ...)                                                              \
	do {                                                                        \
		assert_int_equal(parse(&a, err, sizeof(err), __VA_ARGS__, NULL), -EINVAL); \
		if (!strstr(err, want))                                             \
			fail_msg("error \"%s\" does not contain \"%s\"", err, want); \
	} while (0)

	BAD("missing command", "-n", "x");
	BAD("unknown command \"snapshot\"", "snapshot");
	BAD("unknown flag: --bogus", "create", "web", "--bogus");
	BAD("unknown shorthand flag: 'x'", "create", "web", "-x");
	BAD("missing POD", "create");
	BAD("unexpected argument \"two\"", "create", "one", "two");
	BAD("needs an argument: --name", "create", "web", "--name");
	BAD("invalid --timeout 0", "create", "web", "--timeout", "0");
	BAD("invalid --timeout 3601", "create", "web", "--timeout", "3601");
	BAD("invalid --timeout soon", "wait", "cp", "--timeout", "soon");
	BAD("invalid --deletion-policy Keep", "create", "web", "--deletion-policy", "Keep");
	BAD("invalid --wait=forever", "create", "web", "--wait=forever");
	BAD("--delete-pod takes no value", "create", "web", "--delete-pod=true");
	BAD("--all-namespaces is not valid for 'create'", "create", "web", "-A");
	BAD("--encrypt-to is not valid for 'list'", "list", "--encrypt-to", "x");
	BAD("--wait is not valid for 'wait'", "wait", "cp", "--wait");
	BAD("--namespace is not valid for 'decrypt'", "decrypt", "f", "--key", "k", "-o", "o",
	    "-n", "x");
	BAD("mutually exclusive", "list", "-A", "-n", "x");
	BAD("unexpected argument", "list", "x");
	BAD("missing NAME", "wait");
	BAD("--key is required", "decrypt", "f", "-o", "o");
	BAD("-o OUT is required", "decrypt", "f", "--key", "k");
	BAD("non-empty", "create", "web", "--encrypt-to=");
#undef BAD
}

/* More --container flags than KCP_MAX_CONTAINERS: refused. */
static void test_args_container_cap(void **state)
{
	char *argv[3 + 2 * (KCP_MAX_CONTAINERS + 1)];
	struct kcp_args a;
	char err[256];
	int argc = 0;
	(void)state;

	argv[argc++] = (char *)"kubectl-checkpoint";
	argv[argc++] = (char *)"create";
	argv[argc++] = (char *)"web";
	for (int i = 0; i < KCP_MAX_CONTAINERS + 1; i++) {
		argv[argc++] = (char *)"-c";
		argv[argc++] = (char *)"app";
	}
	assert_int_equal(kcp_parse_args(argc, argv, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "at most 32"));
	assert_int_equal(kcp_parse_args(argc - 2, argv, &a, err, sizeof(err)), 0);
	assert_int_equal(a.create.n_containers, KCP_MAX_CONTAINERS);
}

/* ---------------------------------------------------------------- rows */

#define NOW_MS 1795889109000LL /* 2026-11-28T18:05:09Z */

static const char succeeded[] =
	"{\"metadata\":{\"name\":\"web-cp\",\"namespace\":\"ns1\","
	"\"creationTimestamp\":\"2026-11-28T18:02:09Z\"},"
	"\"spec\":{\"podName\":\"web\",\"encrypt\":true,\"encryptionSecret\":\"rcp\"},"
	"\"status\":{\"phase\":\"Succeeded\",\"nodeName\":\"node-1\","
	"\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"CheckpointCompleted\"}],"
	"\"artifact\":{\"path\":\"/var/lib/pcp/ns1/web-cp.tar.cms\",\"sizeBytes\":12345,"
	"\"sha256\":\"abcd\",\"encrypted\":true,\"recipientFingerprint\":\"ffee\"}}}";

static const char failed[] =
	"{\"metadata\":{\"name\":\"missing\",\"namespace\":\"ns2\","
	"\"creationTimestamp\":\"2026-11-26T18:05:09Z\"},"
	"\"spec\":{\"podName\":\"nope\"},"
	"\"status\":{\"phase\":\"Failed\",\"message\":\"Pod ns2/nope does not exist.\","
	"\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"CheckpointFailed\"},"
	"{\"type\":\"Stalled\",\"status\":\"True\",\"reason\":\"PodNotFound\","
	"\"message\":\"Pod ns2/nope does not exist.\"}]}}";

static const char pending[] =
	"{\"metadata\":{\"name\":\"fresh\",\"namespace\":\"ns1\","
	"\"creationTimestamp\":\"2026-11-28T18:05:04Z\"},"
	"\"spec\":{\"podName\":\"db\"}}";

static void test_rows(void **state)
{
	json_object *s = obj(succeeded), *f = obj(failed), *p = obj(pending);
	struct kcp_row r;
	const char *reason, *message;
	(void)state;

	kcp_row_from_pcp(s, NOW_MS, &r);
	assert_string_equal(r.ns, "ns1");
	assert_string_equal(r.name, "web-cp");
	assert_string_equal(r.pod, "web");
	assert_string_equal(r.node, "node-1");
	assert_string_equal(r.phase, "Succeeded");
	assert_string_equal(r.encrypted, "true");
	assert_string_equal(r.age, "3m");
	assert_string_equal(r.reason, "");
	assert_int_equal(kcp_phase_done(s), 1);

	kcp_row_from_pcp(f, NOW_MS, &r);
	assert_string_equal(r.phase, "Failed");
	assert_string_equal(r.node, "");
	assert_string_equal(r.encrypted, "false");
	assert_string_equal(r.age, "2d");
	assert_string_equal(r.reason, "PodNotFound");
	assert_int_equal(kcp_phase_done(f), -1);
	kcp_failure(f, &reason, &message);
	assert_string_equal(reason, "PodNotFound");
	assert_string_equal(message, "Pod ns2/nope does not exist.");

	kcp_row_from_pcp(p, NOW_MS, &r);
	assert_string_equal(r.phase, "Pending");
	assert_string_equal(r.age, "5s");
	assert_string_equal(r.reason, "");
	assert_int_equal(kcp_phase_done(p), 0);

	json_object_put(s);
	json_object_put(f);
	json_object_put(p);
}

static char *render(bool show_ns, struct kcp_row *rows, size_t n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);

	assert_non_null(m);
	kcp_print_table(m, rows, n, show_ns);
	fclose(m);
	return text;
}

static void test_table(void **state)
{
	json_object *objs[3] = {obj(succeeded), obj(failed), obj(pending)};
	struct kcp_row rows[3];
	char *text;
	(void)state;

	for (int i = 0; i < 3; i++)
		kcp_row_from_pcp(objs[i], NOW_MS, &rows[i]);
	text = render(false, rows, 3);
	assert_string_equal(text,
			    "NAME      POD    NODE     PHASE       ENCRYPTED   AGE   REASON\n"
			    "web-cp    web    node-1   Succeeded   true        3m\n"
			    "missing   nope   <none>   Failed      false       2d    PodNotFound\n"
			    "fresh     db     <none>   Pending     false       5s\n");
	free(text);
	text = render(true, rows, 1);
	assert_string_equal(text,
			    "NAMESPACE   NAME     POD   NODE     PHASE       ENCRYPTED   AGE   REASON\n"
			    "ns1         web-cp   web   node-1   Succeeded   true        3m\n");
	free(text);
	for (int i = 0; i < 3; i++)
		json_object_put(objs[i]);
}

static void test_summary(void **state)
{
	json_object *s = obj(succeeded);
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	(void)state;

	assert_non_null(m);
	kcp_print_succeeded(m, s);
	fclose(m);
	assert_string_equal(text,
			    "podcheckpoint.checkpointing.dev/web-cp succeeded\n"
			    "  node:       node-1\n"
			    "  artifact:   /var/lib/pcp/ns1/web-cp.tar.cms\n"
			    "  size:       12345 bytes\n"
			    "  sha256:     abcd\n"
			    "  encrypted:  true (recipient certificate sha256 ffee)\n");
	free(text);
	json_object_put(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_age),
		cmocka_unit_test(test_default_name),
		cmocka_unit_test(test_spec_combinations),
		cmocka_unit_test(test_build_pcp),
		cmocka_unit_test(test_args_create),
		cmocka_unit_test(test_args_others),
		cmocka_unit_test(test_args_bad),
		cmocka_unit_test(test_args_container_cap),
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_summary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
