/* The HTTP layer against an in-test server: requests, errors, caps,
 * deadlines, token rotation, Events, Leases and the informer. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_server.h"
#include "kc.h"

static char tmpdir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kc-http-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[512];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static struct kc_config *config_for(struct fake_server *s, const char *user_yaml)
{
	struct kc_config *cfg = NULL;
	char path[512], err[512];

	assert_int_equal(fs_kubeconfig(s, tmpdir, user_yaml, path, sizeof(path)), 0);
	if (kc_config_load_kubeconfig(path, NULL, &cfg, err, sizeof(err)))
		fail_msg("kubeconfig: %s", err);
	return cfg;
}

static json_object *parse(const char *s)
{
	json_object *o = NULL;

	assert_int_equal(kc_json_parse(s, strlen(s), &o), 0);
	return o;
}

/* ------------------------------------------------------------ requests */

static const char NF[] =
	"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
	"\"message\":\"pods \\\"missing\\\" not found\",\"reason\":\"NotFound\",\"details\":"
	"{\"name\":\"missing\",\"kind\":\"pods\"},\"code\":404}";

static int h_basic(struct fake_server *s, int fd, const struct fs_req *r, void *arg)
{
	(void)arg;
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
	return fs_reply_json(fd, strcmp(r->method, "POST") == 0 ? 201 : 200,
			     "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"p1\",\"namespace\":\"ns1\"}}");
}

static void get_req(struct fake_server *s, int i, struct fs_req *r)
{
	assert_int_equal(fs_get(s, i, r), 0);
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
	cfg = config_for(s, "    token: static-tok\n");
	assert_int_equal(kc_client_new(cfg, &c), 0);
	kc_client_set_user_agent(c, "kc-test/1");

	/* GET */
	assert_int_equal(kc_path(path, sizeof(path), &KC_RES_PODS, "ns1", "p1", NULL, NULL), 0);
	assert_int_equal(kc_get(c, path, &out, &st), 0);
	assert_int_equal(st.http, 200);
	assert_string_equal(kc_json_str(out, "metadata.name"), "p1");
	json_object_put(out);
	get_req(s, 0, &r);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.target, "/api/v1/namespaces/ns1/pods/p1");
	assert_string_equal(r.auth, "Bearer static-tok");
	fs_req_free(&r);

	/* POST */
	obj = parse("{\"metadata\":{\"name\":\"p1\"},\"spec\":{\"x\":1}}");
	assert_int_equal(kc_path(path, sizeof(path), &KC_RES_PODS, "ns1", NULL, NULL, NULL), 0);
	assert_int_equal(kc_create(c, path, obj, &out, &st), 0);
	assert_int_equal(st.http, 201);
	json_object_put(out);
	get_req(s, 1, &r);
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
	get_req(s, 2, &r);
	assert_string_equal(r.method, "PUT");
	assert_string_equal(r.target, "/apis/checkpointing.dev/v1alpha1/namespaces/ns1/podcheckpoints/cp1/status");
	assert_string_equal(r.content_type, "application/json");
	fs_req_free(&r);
	get_req(s, 3, &r);
	assert_string_equal(r.method, "PATCH");
	assert_string_equal(r.content_type, "application/merge-patch+json");
	fs_req_free(&r);
	get_req(s, 4, &r);
	assert_string_equal(r.method, "PATCH");
	assert_string_equal(r.content_type, "application/apply-patch+yaml");
	assert_string_equal(r.target, "/apis/checkpointing.dev/v1alpha1/namespaces/ns1/podcheckpoints/cp1/status?fieldManager=pcp-controller&force=true");
	fs_req_free(&r);
	get_req(s, 5, &r);
	assert_non_null(strstr(r.target, "?fieldManager=pcp%20controller"));
	assert_null(strstr(r.target, "force"));
	fs_req_free(&r);
	json_object_put(obj);

	/* DELETE with preconditions */
	struct kc_delete_opts o = { .uid = "uid-1", .resource_version = "42",
				    .propagation_policy = "Background", .grace_period_seconds = -1 };
	assert_int_equal(kc_path(path, sizeof(path), &KC_RES_PODS, "ns1", "p1", NULL, NULL), 0);
	assert_int_equal(kc_delete(c, path, &o, NULL, &st), 0);
	get_req(s, 6, &r);
	assert_string_equal(r.method, "DELETE");
	assert_string_equal(r.content_type, "application/json");
	body = parse(r.body);
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
	get_req(s, 7, &r);
	body = parse(r.body);
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
	int64_t t0 = mono_ms();
	assert_int_equal(kc_get(c, path, &out, &st), -ETIMEDOUT);
	int64_t dt = mono_ms() - t0;
	assert_true(dt >= 250 && dt < 2000);
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

	snprintf(tp, sizeof(tp), "%s/tok", tmpdir);
	f = fopen(tp, "w");
	fputs("first-token\n", f);
	fclose(f);
	assert_int_equal(fs_start(h_basic, NULL, &s), 0);
	cfg = config_for(s, "    tokenFile: tok\n");
	assert_int_equal(kc_client_new(cfg, &c), 0);
	assert_int_equal(kc_get(c, "/api/v1/namespaces/ns1/pods/p1", NULL, NULL), 0);
	f = fopen(tp, "w");
	fputs("second-token-rotated\n", f);
	fclose(f);
	assert_int_equal(kc_get(c, "/api/v1/namespaces/ns1/pods/p1", NULL, NULL), 0);
	get_req(s, 0, &r);
	assert_string_equal(r.auth, "Bearer first-token");
	fs_req_free(&r);
	get_req(s, 1, &r);
	assert_string_equal(r.auth, "Bearer second-token-rotated");
	fs_req_free(&r);
	kc_client_free(c);
	kc_config_free(cfg);
	fs_stop(s);
}

/* ------------------------------------------------------------ events */

static void test_event(void **state)
{
	struct fake_server *s = NULL;
	struct kc_config *cfg;
	struct kc_client *c = NULL;
	struct kc_status st;
	struct kc_event_source src = { "checkpointing.dev/controller", "ctl-0" };
	json_object *reg, *body;
	struct fs_req r;
	const char *name, *t;
	char big[3000];
	(void)state;

	assert_int_equal(fs_start(h_basic, NULL, &s), 0);
	cfg = config_for(s, "    token: t\n");
	assert_int_equal(kc_client_new(cfg, &c), 0);
	reg = parse("{\"apiVersion\":\"checkpointing.dev/v1alpha1\",\"kind\":\"PodCheckpoint\","
		    "\"metadata\":{\"namespace\":\"team-a\",\"name\":\"cp1\",\"uid\":\"u-1\","
		    "\"resourceVersion\":\"77\"}}");
	assert_int_equal(kc_event_emit(c, &src, reg, "Normal", "CheckpointCompleted", "Checkpoint",
				       &st, "pod %s checkpointed in %d ms", "web-0", 42), 0);
	get_req(s, 0, &r);
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.target, "/apis/events.k8s.io/v1/namespaces/team-a/events");
	assert_string_equal(r.content_type, "application/json");
	body = parse(r.body);
	assert_string_equal(kc_json_str(body, "apiVersion"), "events.k8s.io/v1");
	assert_string_equal(kc_json_str(body, "kind"), "Event");
	name = kc_json_str(body, "metadata.name");
	assert_non_null(name);
	assert_int_equal(strncmp(name, "cp1.", 4), 0);
	assert_true(strlen(name) > 4 && strspn(name + 4, "0123456789abcdef") == strlen(name + 4));
	assert_string_equal(kc_json_str(body, "metadata.namespace"), "team-a");
	t = kc_json_str(body, "eventTime");
	assert_non_null(t);
	assert_int_equal(strlen(t), 27); /* 2026-11-28T18:00:00.000000Z */
	assert_int_equal(t[19], '.');
	assert_int_equal(t[26], 'Z');
	assert_string_equal(kc_json_str(body, "reportingController"), "checkpointing.dev/controller");
	assert_string_equal(kc_json_str(body, "reportingInstance"), "ctl-0");
	assert_string_equal(kc_json_str(body, "action"), "Checkpoint");
	assert_string_equal(kc_json_str(body, "reason"), "CheckpointCompleted");
	assert_string_equal(kc_json_str(body, "type"), "Normal");
	assert_string_equal(kc_json_str(body, "note"), "pod web-0 checkpointed in 42 ms");
	assert_string_equal(kc_json_str(body, "regarding.apiVersion"), "checkpointing.dev/v1alpha1");
	assert_string_equal(kc_json_str(body, "regarding.kind"), "PodCheckpoint");
	assert_string_equal(kc_json_str(body, "regarding.namespace"), "team-a");
	assert_string_equal(kc_json_str(body, "regarding.name"), "cp1");
	assert_string_equal(kc_json_str(body, "regarding.uid"), "u-1");
	assert_string_equal(kc_json_str(body, "regarding.resourceVersion"), "77");
	json_object_put(body);
	fs_req_free(&r);

	/* long notes are cut to 1024 bytes */
	memset(big, 'n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(kc_event_emit(c, &src, reg, "Warning", "KubeletError", "Checkpoint", &st,
				       "%s", big), 0);
	get_req(s, 1, &r);
	body = parse(r.body);
	assert_int_equal(strlen(kc_json_str(body, "note")), 1024);
	json_object_put(body);
	fs_req_free(&r);
	json_object_put(reg);

	/* a regarding object without a name is refused */
	reg = parse("{\"metadata\":{}}");
	assert_int_equal(kc_event_emit(c, &src, reg, "Normal", "R", "A", &st, "x"), -EINVAL);
	json_object_put(reg);
	kc_client_free(c);
	kc_config_free(cfg);
	fs_stop(s);
}

/* ------------------------------------------------------------ leases */

struct lease_srv {
	pthread_mutex_t lock;
	json_object *lease; /* NULL: absent */
	int rv;
	int puts, posts;
	bool force_conflict;
};

static int h_lease(struct fake_server *s, int fd, const struct fs_req *r, void *arg)
{
	struct lease_srv *ls = arg;
	char rv[16];
	int rc;
	(void)s;

	pthread_mutex_lock(&ls->lock);
	if (strcmp(r->method, "GET") == 0) {
		rc = ls->lease ? fs_reply_json(fd, 200, json_object_to_json_string(ls->lease))
			       : fs_reply_json(fd, 404, "{\"kind\":\"Status\",\"reason\":\"NotFound\",\"code\":404}");
	} else if (strcmp(r->method, "POST") == 0) {
		ls->posts++;
		if (ls->lease) {
			rc = fs_reply_json(fd, 409, "{\"kind\":\"Status\",\"reason\":\"AlreadyExists\",\"code\":409}");
		} else {
			ls->lease = parse(r->body);
			snprintf(rv, sizeof(rv), "%d", ++ls->rv);
			json_object_object_add(kc_json_get(ls->lease, "metadata"), "resourceVersion",
					       json_object_new_string(rv));
			rc = fs_reply_json(fd, 201, json_object_to_json_string(ls->lease));
		}
	} else if (strcmp(r->method, "PUT") == 0) {
		json_object *n = parse(r->body);
		const char *want = kc_json_rv(n);

		ls->puts++;
		snprintf(rv, sizeof(rv), "%d", ls->rv);
		if (ls->force_conflict || !want || strcmp(want, rv) != 0) {
			json_object_put(n);
			rc = fs_reply_json(fd, 409, "{\"kind\":\"Status\",\"reason\":\"Conflict\",\"code\":409}");
		} else {
			json_object_put(ls->lease);
			ls->lease = n;
			snprintf(rv, sizeof(rv), "%d", ++ls->rv);
			json_object_object_add(kc_json_get(ls->lease, "metadata"), "resourceVersion",
					       json_object_new_string(rv));
			rc = fs_reply_json(fd, 200, json_object_to_json_string(ls->lease));
		}
	} else {
		rc = fs_reply_json(fd, 405, "{}");
	}
	pthread_mutex_unlock(&ls->lock);
	return rc ? -1 : 0;
}

static void test_lease(void **state)
{
	struct lease_srv ls = { .rv = 0 };
	struct fake_server *s = NULL;
	struct kc_config *cfg;
	struct kc_client *c = NULL;
	struct kc_status st;
	struct kc_lease l;
	bool leader = true;
	json_object *ann;
	const char *t;
	int puts_before;
	(void)state;

	pthread_mutex_init(&ls.lock, NULL);
	assert_int_equal(fs_start(h_lease, &ls, &s), 0);
	cfg = config_for(s, "    token: t\n");
	assert_int_equal(kc_client_new(cfg, &c), 0);

	assert_int_equal(kc_lease_get(c, "ns1", "ctl", &l, &st), -ENOENT);
	kc_lease_cleanup(&l);
	/* free: acquire by create */
	assert_int_equal(kc_lease_try_acquire(c, "ns1", "ctl", "a", 15, &leader, &st), 0);
	assert_true(leader);
	assert_int_equal(ls.posts, 1);
	t = kc_json_str(ls.lease, "spec.renewTime");
	assert_non_null(t);
	assert_int_equal(strlen(t), 27);
	assert_string_equal(t + 19 + 7, "Z");
	assert_non_null(kc_json_str(ls.lease, "spec.acquireTime"));
	/* held by a, fresh: b does not get it and does not write */
	assert_int_equal(kc_lease_try_acquire(c, "ns1", "ctl", "b", 15, &leader, &st), 0);
	assert_false(leader);
	assert_int_equal(ls.puts, 0);
	/* read */
	assert_int_equal(kc_lease_get(c, "ns1", "ctl", &l, &st), 0);
	assert_string_equal(l.holder, "a");
	assert_int_equal(l.duration_seconds, 15);
	assert_true(l.renew_time_ms > kc_now_ms() - 10000 && l.renew_time_ms <= kc_now_ms() + 1000);
	assert_string_equal(l.resource_version, "1");
	kc_lease_cleanup(&l);
	/* a renews with annotations (PUT with the RV precondition) */
	ann = parse("{\"checkpointing.dev/endpoint\":\"wss://10.0.0.5:8443\"}");
	assert_int_equal(kc_lease_renew(c, "ns1", "ctl", "a", 15, ann, &st), 0);
	json_object_put(ann);
	assert_int_equal(ls.puts, 1);
	assert_int_equal(kc_lease_get(c, "ns1", "ctl", &l, &st), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(l.annotations, "checkpointing.dev/endpoint")),
			    "wss://10.0.0.5:8443");
	assert_string_equal(l.resource_version, "2");
	kc_lease_cleanup(&l);
	/* a renews as leader */
	assert_int_equal(kc_lease_try_acquire(c, "ns1", "ctl", "a", 15, &leader, &st), 0);
	assert_true(leader);
	/* expired: b takes it over, transition counted */
	pthread_mutex_lock(&ls.lock);
	json_object_object_add(kc_json_get(ls.lease, "spec"), "renewTime",
			       json_object_new_string("2020-01-01T00:00:00.000000Z"));
	pthread_mutex_unlock(&ls.lock);
	assert_int_equal(kc_lease_try_acquire(c, "ns1", "ctl", "b", 15, &leader, &st), 0);
	assert_true(leader);
	assert_string_equal(kc_json_str(ls.lease, "spec.holderIdentity"), "b");
	assert_int_equal(json_object_get_int(kc_json_get(ls.lease, "spec.leaseTransitions")), 1);
	/* release: only the holder gives it back, and then anyone takes it at once */
	puts_before = ls.puts;
	assert_int_equal(kc_lease_release(c, "ns1", "ctl", "a", &st), 0);
	assert_int_equal(ls.puts, puts_before);
	assert_int_equal(kc_lease_release(c, "ns1", "ctl", "b", &st), 0);
	assert_int_equal(ls.puts, puts_before + 1);
	assert_string_equal(kc_json_str(ls.lease, "spec.holderIdentity"), "");
	assert_int_equal(json_object_get_int(kc_json_get(ls.lease, "spec.leaseDurationSeconds")), 1);
	assert_int_equal(kc_lease_try_acquire(c, "ns1", "ctl", "b", 15, &leader, &st), 0);
	assert_true(leader);
	/* lost race: conflict means "not leader", not an error */
	ls.force_conflict = true;
	assert_int_equal(kc_lease_try_acquire(c, "ns1", "ctl", "b", 15, &leader, &st), 0);
	assert_false(leader);
	assert_int_equal(kc_lease_renew(c, "ns1", "ctl", "b", 15, NULL, &st), -EAGAIN);
	assert_true(kc_is_conflict(&st));
	/* bad arguments */
	assert_int_equal(kc_lease_try_acquire(c, "ns1", "ctl", "", 15, &leader, &st), -EINVAL);
	assert_int_equal(kc_lease_renew(c, "ns1", "ctl", "b", 0, NULL, &st), -EINVAL);
	kc_lease_cleanup(NULL);

	kc_client_free(c);
	kc_config_free(cfg);
	fs_stop(s);
	json_object_put(ls.lease);
	pthread_mutex_destroy(&ls.lock);
}

/* ------------------------------------------------------------ informer */

static const char *const POD_A5 = "{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"a\",\"resourceVersion\":\"5\"}}";
static const char *const POD_B6 = "{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"b\",\"resourceVersion\":\"6\"}}";

struct inf_srv {
	pthread_mutex_t lock;
	int lists, watches;
};

static int h_informer(struct fake_server *s, int fd, const struct fs_req *r, void *arg)
{
	struct inf_srv *is = arg;
	char buf[1024];
	int lists, watches;
	bool watch = strstr(r->target, "watch=true") != NULL;

	pthread_mutex_lock(&is->lock);
	if (watch)
		watches = ++is->watches, lists = is->lists;
	else
		lists = ++is->lists, watches = is->watches;
	pthread_mutex_unlock(&is->lock);

	if (!watch) {
		if (lists == 1) /* first page */
			snprintf(buf, sizeof(buf),
				 "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"10\","
				 "\"continue\":\"tok1\"},\"items\":[%s]}", POD_A5);
		else if (lists == 2) /* second page */
			snprintf(buf, sizeof(buf),
				 "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"10\"},"
				 "\"items\":[%s]}", POD_B6);
		else /* relist after 410: b is gone, c exists */
			snprintf(buf, sizeof(buf),
				 "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"20\"},"
				 "\"items\":[%s,{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"c\",\"resourceVersion\":\"11\"}}]}",
				 POD_A5);
		return fs_reply_json(fd, 200, buf);
	}
	(void)lists;
	fs_chunked_begin(fd, 200);
	if (watches == 1) {
		static const char ev[] =
			"{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":"
			"{\"namespace\":\"ns1\",\"name\":\"c\",\"resourceVersion\":\"11\"}}}\n"
			"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":"
			"{\"resourceVersion\":\"15\"}}}\n"
			"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
			"\"status\":\"Failure\",\"message\":\"too old resource version: 15 (19)\","
			"\"reason\":\"Expired\",\"code\":410}}\n";
		/* the first event split across two chunks */
		fs_chunk(fd, ev, 30);
		sleep_ms(50);
		fs_chunk(fd, ev + 30, sizeof(ev) - 1 - 30);
		fs_chunked_end(fd);
		return 0;
	}
	if (watches == 2) {
		static const char ev[] =
			"{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":"
			"{\"namespace\":\"ns1\",\"name\":\"a\",\"resourceVersion\":\"21\"}}}\n"
			"{\"type\":\"DELETED\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":"
			"{\"namespace\":\"ns1\",\"name\":\"c\",\"resourceVersion\":\"22\"}}}\n";
		fs_chunk(fd, ev, sizeof(ev) - 1);
		return -1; /* drop the connection mid-stream: reconnect from rv 22 */
	}
	if (watches == 3) {
		static const char ev[] =
			"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":"
			"{\"resourceVersion\":\"30\"}}}\n";
		fs_chunk(fd, ev, sizeof(ev) - 1);
		fs_chunked_end(fd); /* clean end (server-side timeout): watch again from 30 */
		return 0;
	}
	fs_hang(s, 60000);
	return -1;
}

struct seen_ev {
	pthread_mutex_t lock;
	int n;
	char log[64][48];
};

static void on_event(void *arg, enum kc_event_type type, json_object *obj)
{
	static const char *const names[] = { "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR" };
	struct seen_ev *se = arg;

	pthread_mutex_lock(&se->lock);
	if (se->n < 64)
		snprintf(se->log[se->n++], sizeof(se->log[0]), "%s %s %s %s", names[type],
			 kc_json_str(obj, "metadata.name"), kc_json_rv(obj),
			 kc_json_str(obj, "kind") ? kc_json_str(obj, "kind") : "-");
	pthread_mutex_unlock(&se->lock);
}

static void test_informer(void **state)
{
	struct inf_srv is = { .lists = 0 };
	struct seen_ev se = { .n = 0 };
	struct fake_server *s = NULL;
	struct kc_config *cfg;
	struct kc_informer *inf = NULL;
	struct kc_informer_opts o = { .res = &KC_RES_PODS, .ns = "ns1",
				      .label_selector = "app=x,tier!=db", .on_event = on_event };
	struct fs_req r;
	json_object *g;
	(void)state;

	pthread_mutex_init(&is.lock, NULL);
	pthread_mutex_init(&se.lock, NULL);
	o.arg = &se;
	assert_int_equal(fs_start(h_informer, &is, &s), 0);
	cfg = config_for(s, "    token: inf-tok\n");
	assert_int_equal(kc_informer_start(cfg, &o, &inf), 0);
	assert_int_equal(kc_informer_wait_synced(inf, 5000), 0);
	assert_true(kc_informer_synced(inf));
	/* list, list, watch(10), list, watch(20), watch(22) after backoff, watch(30) */
	assert_true(fs_wait_count(s, 7, 10000));
	sleep_ms(100);

	get_req(s, 0, &r);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.target, "/api/v1/namespaces/ns1/pods?labelSelector=app%3Dx%2Ctier%21%3Ddb&limit=100");
	assert_string_equal(r.auth, "Bearer inf-tok");
	fs_req_free(&r);
	get_req(s, 1, &r);
	assert_non_null(strstr(r.target, "&limit=100&continue=tok1"));
	fs_req_free(&r);
	get_req(s, 2, &r);
	assert_non_null(strstr(r.target, "/api/v1/namespaces/ns1/pods?labelSelector=app%3Dx%2Ctier%21%3Ddb&watch=true&resourceVersion=10&allowWatchBookmarks=true&timeoutSeconds="));
	fs_req_free(&r);
	get_req(s, 3, &r); /* relist after the 410 ERROR event */
	assert_null(strstr(r.target, "watch=true"));
	assert_null(strstr(r.target, "continue"));
	fs_req_free(&r);
	get_req(s, 4, &r);
	assert_non_null(strstr(r.target, "watch=true&resourceVersion=20&"));
	fs_req_free(&r);
	get_req(s, 5, &r); /* reconnect after the dropped connection */
	assert_non_null(strstr(r.target, "watch=true&resourceVersion=22&"));
	fs_req_free(&r);
	get_req(s, 6, &r); /* after a clean end, from the bookmark */
	assert_non_null(strstr(r.target, "watch=true&resourceVersion=30&"));
	fs_req_free(&r);

	pthread_mutex_lock(&se.lock);
	static const char *const want[] = {
		"ADDED a 5 Pod",     "ADDED b 6 Pod",      /* list (kind filled in) */
		"ADDED c 11 Pod",                          /* watch */
		"MODIFIED a 5 Pod",  "MODIFIED c 11 Pod",  /* relist */
		"DELETED b 6 Pod",                         /* vanished in the relist */
		"MODIFIED a 21 Pod", "DELETED c 22 Pod",   /* watch */
	};
	for (int i = 0; i < se.n; i++)
		printf("  event %d: %s\n", i, se.log[i]);
	assert_int_equal(se.n, (int)(sizeof(want) / sizeof(want[0])));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_string_equal(se.log[i], want[i]);
	pthread_mutex_unlock(&se.lock);

	assert_int_equal(kc_cache_len(kc_informer_cache(inf)), 1);
	g = kc_cache_get(kc_informer_cache(inf), "ns1", "a");
	assert_non_null(g);
	assert_string_equal(kc_json_rv(g), "21");
	json_object_put(g);

	/* the 4th watch hangs: free must still return promptly */
	int64_t t0 = mono_ms();
	kc_informer_free(inf);
	assert_true(mono_ms() - t0 < 2500);
	kc_informer_free(NULL);
	kc_config_free(cfg);
	fs_stop(s);
	pthread_mutex_destroy(&is.lock);
	pthread_mutex_destroy(&se.lock);
}

/* An unreachable server: never synced, wait times out, free is prompt. */
static void test_informer_unreachable(void **state)
{
	struct fake_server *s = NULL;
	struct kc_config *cfg;
	struct kc_informer *inf = NULL;
	struct kc_informer_opts o = { .res = &KC_RES_PODCHECKPOINTS, .resync_seconds = 1 };
	(void)state;

	assert_int_equal(fs_start(h_basic, NULL, &s), 0);
	cfg = config_for(s, "    token: t\n");
	fs_stop(s);
	assert_int_equal(kc_informer_start(cfg, &o, &inf), 0);
	assert_int_equal(kc_informer_wait_synced(inf, 700), -ETIMEDOUT);
	assert_false(kc_informer_synced(inf));
	int64_t t0 = mono_ms();
	kc_informer_free(inf);
	assert_true(mono_ms() - t0 < 1500);
	assert_int_equal(kc_informer_start(cfg, NULL, &inf), -EINVAL);
	kc_config_free(cfg);
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
static void test_config_limit(void **state)
{
	struct fake_server *s = NULL;
	struct kc_config *cfg = NULL;
	struct kc_client *a = NULL, *b = NULL;
	struct kc_status st;
	int64_t t;
	(void)state;

	assert_int_equal(fs_start(h_ok, NULL, &s), 0);
	cfg = config_for(s, "    token: tok\n");
	assert_int_equal(kc_config_set_rate_limit(cfg, 100001, 1), -EINVAL);
	assert_int_equal(kc_config_set_rate_limit(cfg, 20, 2), 0);
	assert_int_equal(kc_client_new(cfg, &a), 0);
	assert_int_equal(kc_client_new(cfg, &b), 0);
	t = mono_ms();
	/* 6 requests over two clients at 20/s after a burst of 2: >= 4 x 50 ms */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(kc_get(a, "/api/v1/namespaces/ns1/pods/p1", NULL, &st), 0);
		assert_int_equal(kc_get(b, "/api/v1/namespaces/ns1/pods/p1", NULL, &st), 0);
	}
	assert_true(mono_ms() - t >= 190);
	assert_int_equal(fs_count(s), 6);
	/* a client whose deadline is shorter than the wait fails without sending */
	kc_client_set_timeout(a, 1);
	assert_int_equal(kc_get(a, "/api/v1/namespaces/ns1/pods/p1", NULL, &st), -ETIMEDOUT);
	assert_int_equal(st.http, 0);
	assert_non_null(strstr(st.message, "rate limit"));
	assert_int_equal(fs_count(s), 6);
	/* qps 0 lifts the limit: 20 requests that 2/s would spread over >= 9.5 s
	 * (a wide margin, so a loaded machine does not fail it) */
	assert_int_equal(kc_config_set_rate_limit(cfg, 2, 1), 0);
	assert_int_equal(kc_config_set_rate_limit(cfg, 0, 1), 0);
	t = mono_ms();
	for (int i = 0; i < 20; i++)
		assert_int_equal(kc_get(b, "/api/v1/namespaces/ns1/pods/p1", NULL, &st), 0);
	assert_true(mono_ms() - t < 5000);
	kc_client_free(a);
	kc_client_free(b);
	kc_config_free(cfg);
	fs_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_token_rotation_http),
		cmocka_unit_test(test_event),
		cmocka_unit_test(test_lease),
		cmocka_unit_test(test_informer),
		cmocka_unit_test(test_informer_unreachable),
		cmocka_unit_test(test_config_limit),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
