/* The HTTP layer against an in-test server: requests, errors, caps,
 * deadlines, token rotation and the rate limit on real requests. Events and
 * Leases are in test_kc_events.c, the informer in test_kc_informer.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_server.h"
#include "kc.h"
#include "kc_testutil.h"

/* ------------------------------------------------------------ requests */

static const char NF[] =
	"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
	"\"message\":\"pods \\\"missing\\\" not found\",\"reason\":\"NotFound\",\"details\":"
	"{\"name\":\"missing\",\"kind\":\"pods\"},\"code\":404}";

static int h_basic(struct fake_server *s, int fd, const struct fs_req *r, void *arg)
{
	if (strstr(r->target, "/pods/missing"))
		return fs_reply_json(fd, 404, NF);
	if (strstr(r->target, "/pods/exists"))
		return fs_reply_json(fd, 409, "{\"kind\":\"Status\",\"reason\":\"AlreadyExists\",\"message\":\"already exists\",\"code\":409}");
	if (strstr(r->target, "/pods/conflict"))
		return fs_reply_json(fd, 409, "{\"kind\":\"Status\",\"reason\":\"Conflict\",\"message\":\"modified\",\"code\":409}");
	if (strstr(r->target, "/pods/text"))
		return fs_reply(fd, 200, "text/plain", "ok", 2);
	if (strstr(r->target, "/pods/huge")) {
		size_t total = KC_MAX_RESPONSE + 4096, chunk = 1 << 20;
		char *buf = malloc(chunk), hdr[128];
		int n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", total);

		memset(buf, ' ', chunk);
		if (write(fd, hdr, (size_t)n) == n)
			for (size_t sent = 0; sent < total; sent += chunk)
				if (write(fd, buf, total - sent < chunk ? total - sent : chunk) <= 0)
					break;
		free(buf);
		return -1;
	}
	if (strstr(r->target, "/pods/hang")) {
		fs_hang(s, 10000);
		return -1;
	}
	return kt_h_pod(s, fd, r, arg);
}

static void test_requests(void **state)
{
	struct fake_server *s = NULL;
	struct kc_config *cfg;
	struct kc_client *c = NULL;
	struct kc_status st;
	json_object *out = NULL, *obj, *body;
	struct fs_req r;
	char path[256];
	(void)state;

	assert_int_equal(fs_start(h_basic, NULL, &s), 0);
	cfg = kt_config_for(s, "    token: static-tok\n");
	assert_int_equal(kc_client_new(cfg, &c), 0);
	kc_client_set_user_agent(c, "kc-test/1");

	/* GET */
	assert_int_equal(kc_path(path, sizeof(path), &KC_RES_PODS, "ns1", "p1", NULL, NULL), 0);
	assert_int_equal(kc_get(c, path, &out, &st), 0);
	assert_int_equal(st.http, 200);
	assert_string_equal(kc_json_str(out, "metadata.name"), "p1");
	json_object_put(out);
	kt_get_req(s, 0, &r);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.target, "/api/v1/namespaces/ns1/pods/p1");
	assert_string_equal(r.auth, "Bearer static-tok");
	fs_req_free(&r);

	/* POST */
	obj = kt_parse("{\"metadata\":{\"name\":\"p1\"},\"spec\":{\"x\":1}}");
	assert_int_equal(kc_path(path, sizeof(path), &KC_RES_PODS, "ns1", NULL, NULL, NULL), 0);
	assert_int_equal(kc_create(c, path, obj, &out, &st), 0);
	assert_int_equal(st.http, 201);
	json_object_put(out);
	kt_get_req(s, 1, &r);
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.target, "/api/v1/namespaces/ns1/pods");
	assert_string_equal(r.content_type, "application/json");
	assert_string_equal(r.body, "{\"metadata\":{\"name\":\"p1\"},\"spec\":{\"x\":1}}");
	fs_req_free(&r);

	/* PUT, merge patch, apply */
	assert_int_equal(kc_path(path, sizeof(path), &KC_RES_PODCHECKPOINTS, "ns1", "cp1", "status", NULL), 0);
	assert_int_equal(kc_replace(c, path, obj, NULL, &st), 0);
	assert_int_equal(kc_merge_patch(c, path, obj, NULL, &st), 0);
	assert_int_equal(kc_apply(c, path, obj, "pcp-controller", true, NULL, &st), 0);
	assert_int_equal(kc_apply(c, path, obj, "pcp controller", false, NULL, &st), 0);
	kt_get_req(s, 2, &r);
	assert_string_equal(r.method, "PUT");
	assert_string_equal(r.target, "/apis/checkpointing.dev/v1alpha1/namespaces/ns1/podcheckpoints/cp1/status");
	assert_string_equal(r.content_type, "application/json");
	fs_req_free(&r);
	kt_get_req(s, 3, &r);
	assert_string_equal(r.method, "PATCH");
	assert_string_equal(r.content_type, "application/merge-patch+json");
	fs_req_free(&r);
	kt_get_req(s, 4, &r);
	assert_string_equal(r.method, "PATCH");
	assert_string_equal(r.content_type, "application/apply-patch+yaml");
	assert_string_equal(r.target, "/apis/checkpointing.dev/v1alpha1/namespaces/ns1/podcheckpoints/cp1/status?fieldManager=pcp-controller&force=true");
	fs_req_free(&r);
	kt_get_req(s, 5, &r);
	assert_non_null(strstr(r.target, "?fieldManager=pcp%20controller"));
	assert_null(strstr(r.target, "force"));
	fs_req_free(&r);
	json_object_put(obj);

	/* DELETE with preconditions */
	struct kc_delete_opts o = { .uid = "uid-1", .resource_version = "42",
				    .propagation_policy = "Background", .grace_period_seconds = -1 };
	assert_int_equal(kc_path(path, sizeof(path), &KC_RES_PODS, "ns1", "p1", NULL, NULL), 0);
	assert_int_equal(kc_delete(c, path, &o, NULL, &st), 0);
	kt_get_req(s, 6, &r);
	assert_string_equal(r.method, "DELETE");
	assert_string_equal(r.content_type, "application/json");
	body = kt_parse(r.body);
	assert_string_equal(kc_json_str(body, "kind"), "DeleteOptions");
	assert_string_equal(kc_json_str(body, "preconditions.uid"), "uid-1");
	assert_string_equal(kc_json_str(body, "preconditions.resourceVersion"), "42");
	assert_string_equal(kc_json_str(body, "propagationPolicy"), "Background");
	assert_null(kc_json_get(body, "gracePeriodSeconds"));
	json_object_put(body);
	fs_req_free(&r);
	o.uid = NULL;
	o.resource_version = NULL;
	o.grace_period_seconds = 0;
	assert_int_equal(kc_delete(c, path, &o, NULL, &st), 0);
	kt_get_req(s, 7, &r);
	body = kt_parse(r.body);
	assert_null(kc_json_get(body, "preconditions"));
	assert_int_equal(json_object_get_int(kc_json_get(body, "gracePeriodSeconds")), 0);
	json_object_put(body);
	fs_req_free(&r);

	/* one connection for all of the above */
	assert_int_equal(fs_conns(s), 1);

	/* errors */
	assert_int_equal(kc_path(path, sizeof(path), &KC_RES_PODS, "ns1", "missing", NULL, NULL), 0);
	out = (json_object *)1;
	assert_int_equal(kc_get(c, path, &out, &st), -ENOENT);
	assert_null(out);
	assert_int_equal(st.http, 404);
	assert_string_equal(st.reason, "NotFound");
	assert_string_equal(st.message, "pods \"missing\" not found");
	assert_true(kc_is_not_found(&st));
	assert_int_equal(kc_get(c, path, NULL, NULL), -ENOENT);
	assert_int_equal(kc_path(path, sizeof(path), &KC_RES_PODS, "ns1", "exists", NULL, NULL), 0);
	assert_int_equal(kc_get(c, path, NULL, &st), -EEXIST);
	assert_true(kc_is_already_exists(&st));
	assert_int_equal(kc_path(path, sizeof(path), &KC_RES_PODS, "ns1", "conflict", NULL, NULL), 0);
	assert_int_equal(kc_get(c, path, NULL, &st), -EAGAIN);
	assert_true(kc_is_conflict(&st));
	/* 2xx, not JSON */
	assert_int_equal(kc_path(path, sizeof(path), &KC_RES_PODS, "ns1", "text", NULL, NULL), 0);
	out = (json_object *)1;
	assert_int_equal(kc_get(c, path, &out, &st), 0);
	assert_null(out);
	/* bad arguments */
	assert_int_equal(kc_get(c, "no-slash", NULL, &st), -EINVAL);
	assert_int_equal(kc_create(c, "/x", NULL, NULL, &st), -EINVAL);
	assert_int_equal(kc_apply(c, "/x", NULL, "", false, NULL, &st), -EINVAL);

	/* over the cap */
	assert_int_equal(kc_path(path, sizeof(path), &KC_RES_PODS, "ns1", "huge", NULL, NULL), 0);
	assert_int_equal(kc_get(c, path, &out, &st), -EMSGSIZE);
	assert_null(out);
	assert_non_null(strstr(st.message, "larger than"));

	/* a server that never answers: deadline */
	kc_client_set_timeout(c, 300);
	assert_int_equal(kc_path(path, sizeof(path), &KC_RES_PODS, "ns1", "hang", NULL, NULL), 0);
	int64_t t0 = kt_mono_ms();
	assert_int_equal(kc_get(c, path, &out, &st), -ETIMEDOUT);
	int64_t dt = kt_mono_ms() - t0;
	assert_true(dt >= 250 && dt < 5000); /* the server hangs for 10 s; load only lengthens dt */
	assert_int_equal(st.http, 0);
	assert_true(st.message[0] != '\0');

	/* the client still works after all that */
	kc_client_set_timeout(c, 5000);
	assert_int_equal(kc_path(path, sizeof(path), &KC_RES_PODS, "ns1", "p1", NULL, NULL), 0);
	assert_int_equal(kc_get(c, path, NULL, &st), 0);

	kc_client_free(c);
	fs_stop(s);
	/* nobody listening: transport error, http 0 */
	assert_int_equal(kc_client_new(cfg, &c), 0);
	kc_client_set_timeout(c, 2000);
	assert_int_equal(kc_get(c, path, NULL, &st), -EIO);
	assert_int_equal(st.http, 0);
	assert_true(st.message[0] != '\0');
	kc_client_free(c);
	kc_client_free(NULL);
	kc_config_free(cfg);
}

static void test_token_rotation_http(void **state)
{
	struct fake_server *s = NULL;
	struct kc_config *cfg;
	struct kc_client *c = NULL;
	struct fs_req r;
	char tp[512];
	FILE *f;
	(void)state;

	snprintf(tp, sizeof(tp), "%s/tok", kt_tmpdir());
	f = fopen(tp, "w");
	fputs("first-token\n", f);
	fclose(f);
	assert_int_equal(fs_start(h_basic, NULL, &s), 0);
	cfg = kt_config_for(s, "    tokenFile: tok\n");
	assert_int_equal(kc_client_new(cfg, &c), 0);
	assert_int_equal(kc_get(c, "/api/v1/namespaces/ns1/pods/p1", NULL, NULL), 0);
	f = fopen(tp, "w");
	fputs("second-token-rotated\n", f);
	fclose(f);
	assert_int_equal(kc_get(c, "/api/v1/namespaces/ns1/pods/p1", NULL, NULL), 0);
	kt_get_req(s, 0, &r);
	assert_string_equal(r.auth, "Bearer first-token");
	fs_req_free(&r);
	kt_get_req(s, 1, &r);
	assert_string_equal(r.auth, "Bearer second-token-rotated");
	fs_req_free(&r);
	kc_client_free(c);
	kc_config_free(cfg);
	fs_stop(s);
}

/* ------------------------------------------------------------ rate limit */

static int h_ok(struct fake_server *s, int fd, const struct fs_req *r, void *arg)
{
	(void)s;
	(void)r;
	(void)arg;
	return fs_reply_json(fd, 200, "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"p1\"}}");
}

/* the limit as the daemons set it: shared by every client of one config */
/*
 * kc.h: the rate limit is set before the first kc_client_new of a config and
 * never while its clients exist (the daemons set it once at start-up; a try
 * is -EBUSY). So each phase below has a config of its own, set before its
 * clients are made.
 */
static void test_config_limit(void **state)
{
	struct fake_server *s = NULL;
	struct kc_config *cfg = NULL;
	struct kc_client *a = NULL, *b = NULL;
	struct kc_status st;
	int64_t t;
	(void)state;

	assert_int_equal(fs_start(h_ok, NULL, &s), 0);
	cfg = kt_config_for(s, "    token: tok\n");
	assert_int_equal(kc_config_set_rate_limit(cfg, 100001, 1), -EINVAL);
	assert_int_equal(kc_config_set_rate_limit(cfg, 20, 2), 0);
	assert_int_equal(kc_client_new(cfg, &a), 0);
	assert_int_equal(kc_client_new(cfg, &b), 0);
	t = kt_mono_ms();
	/* 6 requests over two clients at 20/s after a burst of 2: >= 4 x 50 ms */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(kc_get(a, "/api/v1/namespaces/ns1/pods/p1", NULL, &st), 0);
		assert_int_equal(kc_get(b, "/api/v1/namespaces/ns1/pods/p1", NULL, &st), 0);
	}
	assert_true(kt_mono_ms() - t >= 190);
	assert_int_equal(fs_count(s), 6);
	/* while clients exist the limit is not changed (nor lifted) */
	assert_int_equal(kc_config_set_rate_limit(cfg, 1, 1), -EBUSY);
	assert_int_equal(kc_config_set_rate_limit(cfg, 0, 1), -EBUSY);
	kc_client_free(a);
	a = NULL;
	assert_int_equal(kc_config_set_rate_limit(cfg, 0, 1), -EBUSY);
	t = kt_mono_ms();
	/* still 20/s: 4 requests with at most 2 tokens (the burst) in the
	 * bucket wait for 2 more, >= 100 ms, however long since the last */
	for (int i = 0; i < 4; i++)
		assert_int_equal(kc_get(b, "/api/v1/namespaces/ns1/pods/p1", NULL, &st), 0);
	assert_true(kt_mono_ms() - t >= 95);
	kc_client_free(b);
	b = NULL;
	/* with the last client gone it may be set again */
	assert_int_equal(kc_config_set_rate_limit(cfg, 0, 1), 0);
	kc_config_free(cfg);

	/* a client whose deadline is shorter than the wait fails without sending
	 * (at 1/s, once the burst is spent, the next token is ~1 s away: no
	 * delay of a loaded machine brings it within the 1 ms deadline) */
	cfg = kt_config_for(s, "    token: tok\n");
	assert_int_equal(kc_config_set_rate_limit(cfg, 1, 1), 0);
	assert_int_equal(kc_client_new(cfg, &a), 0);
	assert_int_equal(kc_get(a, "/api/v1/namespaces/ns1/pods/p1", NULL, &st), 0);
	kc_client_set_timeout(a, 1);
	assert_int_equal(kc_get(a, "/api/v1/namespaces/ns1/pods/p1", NULL, &st), -ETIMEDOUT);
	assert_int_equal(st.http, 0);
	assert_non_null(strstr(st.message, "rate limit"));
	assert_int_equal(fs_count(s), 11);
	kc_client_free(a);
	a = NULL;
	kc_config_free(cfg);

	/* qps 0 lifts a limit set before: 20 requests that 1/s would spread
	 * over >= 19 s (a wide margin, so a loaded machine does not fail it) */
	cfg = kt_config_for(s, "    token: tok\n");
	assert_int_equal(kc_config_set_rate_limit(cfg, 1, 1), 0);
	assert_int_equal(kc_config_set_rate_limit(cfg, 0, 1), 0);
	assert_int_equal(kc_client_new(cfg, &b), 0);
	t = kt_mono_ms();
	for (int i = 0; i < 20; i++)
		assert_int_equal(kc_get(b, "/api/v1/namespaces/ns1/pods/p1", NULL, &st), 0);
	assert_true(kt_mono_ms() - t < 15000);
	assert_int_equal(fs_count(s), 31);
	kc_client_free(b);
	kc_config_free(cfg);
	fs_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_token_rotation_http),
		cmocka_unit_test(test_config_limit),
	};

	return cmocka_run_group_tests(tests, kt_setup, kt_teardown);
}
