/* Status parsing and mapping, paths and escaping, JSON/time helpers, cache,
 * and the watch stream splitter. */
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

/* ------------------------------------------------------------ status */

static void test_status_real_bodies(void **state)
{
	struct kc_status st;
	(void)state;

	static const char nf[] =
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
		"\"message\":\"pods \\\"nope\\\" not found\",\"reason\":\"NotFound\","
		"\"details\":{\"name\":\"nope\",\"kind\":\"pods\"},\"code\":404}";
	kc_status_from_response(&st, 404, nf, strlen(nf));
	assert_int_equal(st.http, 404);
	assert_string_equal(st.reason, "NotFound");
	assert_string_equal(st.message, "pods \"nope\" not found");
	assert_true(kc_is_not_found(&st));
	assert_int_equal(kc_status_to_errno(&st), -ENOENT);

	static const char conflict[] =
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
		"\"message\":\"Operation cannot be fulfilled on leases.coordination.k8s.io \\\"x\\\": "
		"the object has been modified; please apply your changes to the latest version and try "
		"again\",\"reason\":\"Conflict\",\"details\":{\"name\":\"x\",\"group\":"
		"\"coordination.k8s.io\",\"kind\":\"leases\"},\"code\":409}";
	kc_status_from_response(&st, 409, conflict, strlen(conflict));
	assert_true(kc_is_conflict(&st));
	assert_false(kc_is_already_exists(&st));
	assert_int_equal(kc_status_to_errno(&st), -EAGAIN);

	static const char exists[] =
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
		"\"message\":\"podcheckpoints.checkpointing.dev \\\"a\\\" already exists\","
		"\"reason\":\"AlreadyExists\",\"details\":{\"name\":\"a\",\"group\":"
		"\"checkpointing.dev\",\"kind\":\"podcheckpoints\"},\"code\":409}";
	kc_status_from_response(&st, 409, exists, strlen(exists));
	assert_true(kc_is_already_exists(&st));
	assert_false(kc_is_conflict(&st));
	assert_int_equal(kc_status_to_errno(&st), -EEXIST);

	static const char gone[] =
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
		"\"message\":\"too old resource version: 1 (2471)\",\"reason\":\"Expired\","
		"\"code\":410}";
	kc_status_from_response(&st, 410, gone, strlen(gone));
	assert_true(kc_is_gone(&st));
	assert_string_equal(st.reason, "Expired");
	assert_int_equal(kc_status_to_errno(&st), -ESTALE);

	static const char forb[] =
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
		"\"message\":\"pods is forbidden: User \\\"system:serviceaccount:x:y\\\" cannot list "
		"resource \\\"pods\\\" in API group \\\"\\\" at the cluster scope\",\"reason\":"
		"\"Forbidden\",\"details\":{\"kind\":\"pods\"},\"code\":403}";
	kc_status_from_response(&st, 403, forb, strlen(forb));
	assert_true(kc_is_forbidden(&st));
	assert_int_equal(kc_status_to_errno(&st), -EACCES);

	static const char inv[] =
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
		"\"message\":\"\",\"reason\":\"Invalid\",\"details\":{\"name\":\"a\",\"kind\":"
		"\"PodCheckpoint\",\"causes\":[{\"reason\":\"FieldValueRequired\",\"message\":"
		"\"Required value\",\"field\":\"spec.podName\"},{\"reason\":\"FieldValueInvalid\","
		"\"message\":\"Invalid value: 0\",\"field\":\"spec.timeoutSeconds\"}]},\"code\":422}";
	kc_status_from_response(&st, 422, inv, strlen(inv));
	assert_true(kc_is_invalid(&st));
	assert_string_equal(st.message,
			    "spec.podName: Required value; spec.timeoutSeconds: Invalid value: 0");
	assert_int_equal(kc_status_to_errno(&st), -EINVAL);
}

static void test_status_non_status(void **state)
{
	struct kc_status st;
	(void)state;

	kc_status_from_response(&st, 503, "upstream\nconnect error", 22);
	assert_int_equal(st.http, 503);
	assert_string_equal(st.reason, "ServiceUnavailable");
	assert_string_equal(st.message, "upstream connect error");
	assert_int_equal(kc_status_to_errno(&st), -EIO);

	kc_status_from_response(&st, 404, "404 page not found\n", 19);
	assert_string_equal(st.reason, "NotFound");
	assert_string_equal(st.message, "404 page not found");

	kc_status_from_response(&st, 401, NULL, 0);
	assert_string_equal(st.reason, "Unauthorized");
	assert_int_equal(kc_status_to_errno(&st), -EACCES);

	/* JSON but not a Status */
	kc_status_from_response(&st, 500, "{\"kind\":\"Pod\"}", 14);
	assert_string_equal(st.reason, "InternalError");

	/* A huge message is cut, NUL-terminated. */
	char *big = malloc(5000);
	memset(big, 'x', 5000);
	kc_status_from_response(&st, 500, big, 5000);
	assert_int_equal(strlen(st.message), sizeof(st.message) - 1);
	free(big);

	kc_status_from_response(&st, 200, "{}", 2);
	assert_int_equal(kc_status_to_errno(&st), 0);
	kc_status_clear(&st);
	assert_int_equal(kc_status_to_errno(&st), -EIO);
	kc_status_clear(NULL);
}

static void test_status_mapping(void **state)
{
	static const struct {
		long http;
		const char *reason;
		int err;
	} cases[] = { { 400, "BadRequest", -EINVAL }, { 401, "", -EACCES },
		      { 403, "", -EACCES },           { 404, "", -ENOENT },
		      { 409, "AlreadyExists", -EEXIST }, { 409, "Conflict", -EAGAIN },
		      { 410, "Gone", -ESTALE },       { 422, "Invalid", -EINVAL },
		      { 429, "", -EIO },              { 500, "", -EIO },
		      { 201, "", 0 },                 { 0, "", -EIO } };
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kc_status st;

		kc_status_clear(&st);
		st.http = cases[i].http;
		snprintf(st.reason, sizeof(st.reason), "%s", cases[i].reason);
		assert_int_equal(kc_status_to_errno(&st), cases[i].err);
	}
}

/* ------------------------------------------------------------ paths */

static void test_paths(void **state)
{
	char buf[512], q[512] = "";
	(void)state;

	assert_int_equal(kc_path(buf, sizeof(buf), &KC_RES_PODS, "ns1", "p1", NULL, NULL), 0);
	assert_string_equal(buf, "/api/v1/namespaces/ns1/pods/p1");
	assert_int_equal(kc_path(buf, sizeof(buf), &KC_RES_PODS, NULL, NULL, NULL, NULL), 0);
	assert_string_equal(buf, "/api/v1/pods");
	assert_int_equal(kc_path(buf, sizeof(buf), &KC_RES_PODCHECKPOINTS, "team-a", "cp.1",
				 "status", NULL), 0);
	assert_string_equal(buf,
			    "/apis/checkpointing.dev/v1alpha1/namespaces/team-a/podcheckpoints/cp.1/status");
	assert_int_equal(kc_path(buf, sizeof(buf), &KC_RES_NODES, "ignored", "n1", NULL, NULL), 0);
	assert_string_equal(buf, "/api/v1/nodes/n1");
	assert_int_equal(kc_path(buf, sizeof(buf), &KC_RES_LEASES, "kube-system", "l", NULL, NULL), 0);
	assert_string_equal(buf, "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l");
	assert_int_equal(kc_path(buf, sizeof(buf), &KC_RES_EVENTS, "d", NULL, NULL, NULL), 0);
	assert_string_equal(buf, "/apis/events.k8s.io/v1/namespaces/d/events");
	assert_int_equal(kc_path(buf, sizeof(buf), &KC_RES_TOKENREVIEWS, NULL, NULL, NULL, NULL), 0);
	assert_string_equal(buf, "/apis/authentication.k8s.io/v1/tokenreviews");
	/* odd characters are escaped as one segment each */
	assert_int_equal(kc_path(buf, sizeof(buf), &KC_RES_SECRETS, "a/b", "x y?#%", NULL, NULL), 0);
	assert_string_equal(buf, "/api/v1/namespaces/a%2Fb/secrets/x%20y%3F%23%25");
	/* ".." cannot climb */
	assert_int_equal(kc_path(buf, sizeof(buf), &KC_RES_PODS, "ns", "..", NULL, NULL), -EINVAL);
	/* sub without name */
	assert_int_equal(kc_path(buf, sizeof(buf), &KC_RES_PODS, "ns", NULL, "status", NULL), -EINVAL);
	/* too small */
	assert_int_equal(kc_path(buf, 10, &KC_RES_PODS, "ns", "p", NULL, NULL), -ENAMETOOLONG);
	assert_string_equal(buf, "");

	/* query with selectors */
	assert_int_equal(kc_query_add(q, sizeof(q), "labelSelector", "app=x,tier!=db"), 0);
	assert_int_equal(kc_query_add(q, sizeof(q), "fieldSelector", "spec.nodeName=n1"), 0);
	assert_int_equal(kc_query_add(q, sizeof(q), "limit", "500"), 0);
	assert_string_equal(q, "labelSelector=app%3Dx%2Ctier%21%3Ddb&fieldSelector=spec.nodeName%3Dn1&limit=500");
	assert_int_equal(kc_path(buf, sizeof(buf), &KC_RES_PODS, "", NULL, NULL, q), 0);
	assert_string_equal(buf, "/api/v1/pods?labelSelector=app%3Dx%2Ctier%21%3Ddb&fieldSelector=spec.nodeName%3Dn1&limit=500");
	/* an addition that does not fit leaves the query unchanged */
	char small[20] = "a=b";
	assert_int_equal(kc_query_add(small, sizeof(small), "continue", "0123456789abcdef"),
			 -ENAMETOOLONG);
	assert_string_equal(small, "a=b");
	assert_int_equal(kc_escape(buf, sizeof(buf), "A-z_0.9~ é+&="), 0);
	assert_string_equal(buf, "A-z_0.9~%20%C3%A9%2B%26%3D");
	assert_int_equal(kc_escape(buf, 3, "%"), -ENAMETOOLONG);
}

/* ------------------------------------------------------------ json / time */

static void test_json_time(void **state)
{
	json_object *o = NULL;
	char buf[40];
	int64_t ms;
	(void)state;

	assert_int_equal(kc_json_parse("{\"metadata\":{\"name\":\"a\",\"labels\":{\"x\":\"1\"}},"
				       "\"n\":5}  \n", 53, &o), 0);
	assert_string_equal(kc_json_str(o, "metadata.name"), "a");
	assert_string_equal(kc_json_str(o, "metadata.labels.x"), "1");
	assert_null(kc_json_str(o, "metadata.labels"));
	assert_null(kc_json_str(o, "n"));
	assert_null(kc_json_get(o, "n.x"));
	assert_null(kc_json_get(o, "metadata..name"));
	assert_non_null(kc_json_get(o, "n"));
	json_object_put(o);
	assert_int_equal(kc_json_parse("{} x", 4, &o), -EBADMSG);
	assert_null(o);
	assert_int_equal(kc_json_parse("{", 1, &o), -EBADMSG);

	kc_time_rfc3339(1795888800, buf);
	assert_string_equal(buf, "2026-11-28T18:00:00Z");
	kc_time_rfc3339_micro(1795888800123456LL, buf);
	assert_string_equal(buf, "2026-11-28T18:00:00.123456Z");
	kc_time_rfc3339_micro(1795888800000000LL, buf);
	assert_string_equal(buf, "2026-11-28T18:00:00.000000Z");

	assert_int_equal(kc_time_parse("2026-11-28T18:00:00Z", &ms), 0);
	assert_true(ms == 1795888800000LL);
	assert_int_equal(kc_time_parse("2026-11-28T18:00:00.123456Z", &ms), 0);
	assert_true(ms == 1795888800123LL);
	assert_int_equal(kc_time_parse("2026-11-28T19:30:00.5+01:30", &ms), 0);
	assert_true(ms == 1795888800500LL);
	assert_int_equal(kc_time_parse("2026-11-28T18:00:00", &ms), -EINVAL);
	assert_int_equal(kc_time_parse("2026-13-28T18:00:00Z", &ms), -EINVAL);
	assert_int_equal(kc_time_parse("2026-11-28T18:00:00Zjunk", &ms), -EINVAL);
	assert_int_equal(kc_time_parse("2026-11-28T18:00:00.Z", &ms), -EINVAL);
	assert_int_equal(kc_time_parse("", &ms), -EINVAL);
}

static void test_json_build_and_base64(void **state)
{
	const char *txt = "{\"a\":{\"i\":7,\"d\":2.9,\"s\":\"x\"}}";
	json_object *o = NULL, *arr;
	bool present = true;
	char *out = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(kc_json_parse(txt, strlen(txt), &o), 0);
	assert_int_equal(kc_json_int64(o, "a.i", -1, &present), 7);
	assert_true(present);
	assert_int_equal(kc_json_int64(o, "a.d", -1, NULL), 2);
	assert_int_equal(kc_json_int64(o, "a.s", -1, &present), -1);
	assert_false(present);
	assert_int_equal(kc_json_int64(o, "a.none", 5, NULL), 5);

	assert_int_equal(kc_json_set_str(o, "k", "v"), 0);
	assert_string_equal(kc_json_str(o, "k"), "v");
	assert_int_equal(kc_json_set_str(o, "skipped", NULL), 0);
	assert_null(kc_json_get(o, "skipped"));
	assert_int_equal(kc_json_set(o, "bad", NULL), -ENOMEM);
	arr = json_object_new_array();
	assert_int_equal(kc_json_set(o, "arr", arr), 0);
	assert_int_equal(kc_json_append(arr, json_object_new_int(1)), 0);
	assert_int_equal(kc_json_append(arr, NULL), -ENOMEM);
	assert_int_equal(json_object_array_length(kc_json_get(o, "arr")), 1);
	json_object_put(o);

	assert_int_equal(kc_base64_decode("aGVsbG8=", 8, &out, &n), 0);
	assert_string_equal(out, "hello");
	assert_int_equal(n, 5);
	free(out);
	assert_int_equal(kc_base64_decode("aGVs\nbG8", 8, &out, &n), 0);
	assert_string_equal(out, "hello");
	free(out);
	assert_int_equal(kc_base64_decode("", 0, &out, &n), 0);
	assert_int_equal(n, 0);
	free(out);
	out = NULL;
	assert_int_equal(kc_base64_decode("a$==", 4, &out, &n), -EINVAL);
	assert_int_equal(kc_base64_decode("aG=V", 4, &out, &n), -EINVAL);
	assert_int_equal(kc_base64_decode("aGVsb", 5, &out, &n), -EINVAL);
	assert_null(out);
}

/* ------------------------------------------------------------ cache */

static json_object *mkobj(const char *ns, const char *name, const char *rv)
{
	char buf[256];
	json_object *o = NULL;

	if (ns)
		snprintf(buf, sizeof(buf),
			 "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",\"resourceVersion\":\"%s\"}}",
			 ns, name, rv);
	else
		snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"%s\",\"resourceVersion\":\"%s\"}}",
			 name, rv);
	assert_int_equal(kc_json_parse(buf, strlen(buf), &o), 0);
	return o;
}

static void count_fn(void *arg, json_object *obj)
{
	(void)obj;
	(*(int *)arg)++;
}

static void test_cache(void **state)
{
	struct kc_cache *c = NULL;
	json_object *o, *g, *items;
	int n = 0;
	(void)state;

	assert_int_equal(kc_cache_new(&c), 0);
	o = mkobj("a", "x", "1");
	assert_int_equal(kc_cache_put(c, o), 0);
	json_object_put(o);
	o = mkobj("a", "x", "2"); /* last write wins */
	assert_int_equal(kc_cache_put(c, o), 0);
	json_object_put(o);
	o = mkobj(NULL, "node1", "3"); /* cluster-scoped */
	assert_int_equal(kc_cache_put(c, o), 0);
	json_object_put(o);
	assert_int_equal(kc_cache_len(c), 2);
	g = kc_cache_get(c, "a", "x");
	assert_non_null(g);
	assert_string_equal(kc_json_rv(g), "2");
	json_object_put(g);
	g = kc_cache_get(c, NULL, "node1");
	assert_non_null(g);
	json_object_put(g);
	assert_null(kc_cache_get(c, "b", "x"));
	assert_int_equal(kc_cache_delete(c, "b", "x"), -ENOENT);
	/* growth past the initial table */
	for (int i = 0; i < 1000; i++) {
		char name[32];

		snprintf(name, sizeof(name), "p%d", i);
		o = mkobj("bulk", name, "1");
		assert_int_equal(kc_cache_put(c, o), 0);
		json_object_put(o);
	}
	assert_int_equal(kc_cache_len(c), 1002);
	g = kc_cache_get(c, "bulk", "p777");
	assert_non_null(g);
	json_object_put(g);
	kc_cache_foreach(c, count_fn, &n);
	assert_int_equal(n, 1002);
	assert_int_equal(kc_cache_delete(c, "a", "x"), 0);
	assert_int_equal(kc_cache_len(c), 1001);
	/* an object without a name is refused */
	o = json_object_new_object();
	assert_int_equal(kc_cache_put(c, o), -EINVAL);
	json_object_put(o);

	items = json_object_new_array();
	json_object_array_add(items, mkobj("a", "y", "9"));
	json_object_array_add(items, mkobj("a", "z", "9"));
	assert_int_equal(kc_cache_replace(c, items), 0);
	json_object_put(items);
	assert_int_equal(kc_cache_len(c), 2);
	assert_null(kc_cache_get(c, "bulk", "p1"));
	g = kc_cache_get(c, "a", "z");
	assert_non_null(g);
	json_object_put(g);
	assert_int_equal(kc_cache_replace(c, NULL), -EINVAL);
	kc_cache_free(c);
	kc_cache_free(NULL);
}

/* ------------------------------------------------------------ watch */

struct seen {
	int n;
	enum kc_event_type type[16];
	char name[16][32];
	int stop_at; /* return -42 at this event index (1-based), 0 never */
};

static int on_ev(void *arg, enum kc_event_type type, json_object *obj)
{
	struct seen *s = arg;
	const char *nm = kc_json_str(obj, "metadata.name");

	if (s->n < 16) {
		s->type[s->n] = type;
		snprintf(s->name[s->n], sizeof(s->name[0]), "%s", nm ? nm : "");
	}
	s->n++;
	return s->stop_at && s->n == s->stop_at ? -42 : 0;
}

static const char stream[] =
	"{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}}\n"
	"{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\",\"resourceVersion\":\"2\"}}}\r\n"
	"\n"
	"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":\"12345\"}}}\n"
	"{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"c\",\"resourceVersion\":\"3\"}}}\n"
	"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
	"\"status\":\"Failure\",\"message\":\"too old resource version: 1 (5)\",\"reason\":\"Expired\",\"code\":410}}\n";

static void check_stream(const struct seen *s)
{
	assert_int_equal(s->n, 5);
	assert_int_equal(s->type[0], KC_ADDED);
	assert_string_equal(s->name[0], "a");
	assert_int_equal(s->type[1], KC_MODIFIED);
	assert_string_equal(s->name[1], "b");
	assert_int_equal(s->type[2], KC_BOOKMARK);
	assert_int_equal(s->type[3], KC_DELETED);
	assert_string_equal(s->name[3], "c");
	assert_int_equal(s->type[4], KC_ERROR);
}

static void test_watch_split_every_byte(void **state)
{
	size_t len = strlen(stream);
	(void)state;

	/* one chunk */
	{
		struct kc_watch_parser *p = NULL;
		struct seen s = { 0 };

		assert_int_equal(kc_watch_parser_new(0, &p), 0);
		assert_int_equal(kc_watch_parser_feed(p, stream, len, on_ev, &s), 0);
		check_stream(&s);
		kc_watch_parser_free(p);
	}
	/* two chunks, cut at every byte boundary */
	for (size_t cut = 0; cut <= len; cut++) {
		struct kc_watch_parser *p = NULL;
		struct seen s = { 0 };

		assert_int_equal(kc_watch_parser_new(4096, &p), 0);
		assert_int_equal(kc_watch_parser_feed(p, stream, cut, on_ev, &s), 0);
		assert_int_equal(kc_watch_parser_feed(p, stream + cut, len - cut, on_ev, &s), 0);
		check_stream(&s);
		kc_watch_parser_free(p);
	}
	/* one byte at a time */
	{
		struct kc_watch_parser *p = NULL;
		struct seen s = { 0 };

		assert_int_equal(kc_watch_parser_new(4096, &p), 0);
		for (size_t i = 0; i < len; i++)
			assert_int_equal(kc_watch_parser_feed(p, stream + i, 1, on_ev, &s), 0);
		check_stream(&s);
		kc_watch_parser_free(p);
	}
	/* a final event without its newline waits for it */
	{
		struct kc_watch_parser *p = NULL;
		struct seen s = { 0 };
		static const char ev[] = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"z\"}}}";

		assert_int_equal(kc_watch_parser_new(4096, &p), 0);
		assert_int_equal(kc_watch_parser_feed(p, ev, strlen(ev), on_ev, &s), 0);
		assert_int_equal(s.n, 0);
		assert_int_equal(kc_watch_parser_feed(p, "\n", 1, on_ev, &s), 0);
		assert_int_equal(s.n, 1);
		kc_watch_parser_free(p);
	}
}

static void test_watch_errors(void **state)
{
	struct kc_watch_parser *p = NULL;
	struct seen s = { 0 };
	char *big;
	(void)state;

	assert_int_equal(kc_watch_parser_new(64, &p), 0);
	/* oversized, arriving in pieces with no newline */
	big = malloc(200);
	memset(big, 'x', 200);
	assert_int_equal(kc_watch_parser_feed(p, big, 40, on_ev, &s), 0);
	assert_int_equal(kc_watch_parser_feed(p, big, 40, on_ev, &s), -EMSGSIZE);
	kc_watch_parser_reset(p);
	/* oversized within one chunk */
	big[199] = '\n';
	assert_int_equal(kc_watch_parser_feed(p, big, 200, on_ev, &s), -EMSGSIZE);
	kc_watch_parser_reset(p);
	free(big);
	/* garbage */
	assert_int_equal(kc_watch_parser_feed(p, "hello\n", 6, on_ev, &s), -EBADMSG);
	kc_watch_parser_reset(p);
	assert_int_equal(kc_watch_parser_feed(p, "{\"type\":\"NOPE\",\"object\":{}}\n", 29, on_ev, &s),
			 -EBADMSG);
	assert_int_equal(kc_watch_parser_feed(p, "{\"type\":\"ADDED\"}\n", 17, on_ev, &s), -EBADMSG);
	assert_int_equal(kc_watch_parser_feed(p, "{\"type\":\"ADDED\",\"object\":1}\n", 28, on_ev, &s),
			 -EBADMSG);
	assert_int_equal(kc_watch_parser_feed(p, "[1,2]\n", 6, on_ev, &s), -EBADMSG);
	assert_int_equal(kc_watch_parser_feed(p, "{\"type\":\"ADDED\",\"object\":{}} {}\n", 32, on_ev, &s),
			 -EBADMSG);
	assert_int_equal(s.n, 0);
	/* the callback's code stops the feed */
	kc_watch_parser_reset(p);
	kc_watch_parser_free(p);
	p = NULL;
	assert_int_equal(kc_watch_parser_new(4096, &p), 0);
	s.stop_at = 2;
	assert_int_equal(kc_watch_parser_feed(p, stream, strlen(stream), on_ev, &s), -42);
	assert_int_equal(s.n, 2);
	kc_watch_parser_free(p);
	kc_watch_parser_free(NULL);
}

/* Many events in big chunks: linear time (this would take minutes if every
 * chunk rescanned the kept partial line). */
static void test_watch_large_line_linear(void **state)
{
	struct kc_watch_parser *p = NULL;
	struct seen s = { 0 };
	size_t n = 3u * 1024u * 1024u, off = 0;
	char *line = malloc(n + 64);
	(void)state;

	off = (size_t)snprintf(line, 64, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"big\"},\"d\":\"");
	memset(line + off, 'a', n - off - 4);
	memcpy(line + n - 4, "\"}}\n", 4);
	assert_int_equal(kc_watch_parser_new(KC_MAX_WATCH_LINE, &p), 0);
	for (size_t i = 0; i < n; i += 7)
		assert_int_equal(kc_watch_parser_feed(p, line + i, (n - i) < 7 ? n - i : 7, on_ev, &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.name[0], "big");
	kc_watch_parser_free(p);
	free(line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_real_bodies),
		cmocka_unit_test(test_status_non_status),
		cmocka_unit_test(test_status_mapping),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_json_time),
		cmocka_unit_test(test_json_build_and_base64),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_watch_split_every_byte),
		cmocka_unit_test(test_watch_errors),
		cmocka_unit_test(test_watch_large_line_linear),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
