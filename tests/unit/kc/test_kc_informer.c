/* The informer (json-c trees) against an in-test server: paged LIST, watch,
 * 410 and relist, dropped and cleanly ended watches, bookmarks, prompt free. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_server.h"
#include "kc.h"
#include "kc_testutil.h"

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
		kt_sleep_ms(50);
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
	cfg = kt_config_for(s, "    token: inf-tok\n");
	assert_int_equal(kc_informer_start(cfg, &o, &inf), 0);
	assert_int_equal(kc_informer_wait_synced(inf, 5000), 0);
	assert_true(kc_informer_synced(inf));
	/* list, list, watch(10), list, watch(20), watch(22) after backoff, watch(30) */
	assert_true(fs_wait_count(s, 7, 10000));
	kt_sleep_ms(100);

	kt_get_req(s, 0, &r);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.target, "/api/v1/namespaces/ns1/pods?labelSelector=app%3Dx%2Ctier%21%3Ddb&limit=100");
	assert_string_equal(r.auth, "Bearer inf-tok");
	fs_req_free(&r);
	kt_get_req(s, 1, &r);
	assert_non_null(strstr(r.target, "&limit=100&continue=tok1"));
	fs_req_free(&r);
	kt_get_req(s, 2, &r);
	assert_non_null(strstr(r.target, "/api/v1/namespaces/ns1/pods?labelSelector=app%3Dx%2Ctier%21%3Ddb&watch=true&resourceVersion=10&allowWatchBookmarks=true&timeoutSeconds="));
	fs_req_free(&r);
	kt_get_req(s, 3, &r); /* relist after the 410 ERROR event */
	assert_null(strstr(r.target, "watch=true"));
	assert_null(strstr(r.target, "continue"));
	fs_req_free(&r);
	kt_get_req(s, 4, &r);
	assert_non_null(strstr(r.target, "watch=true&resourceVersion=20&"));
	fs_req_free(&r);
	kt_get_req(s, 5, &r); /* reconnect after the dropped connection */
	assert_non_null(strstr(r.target, "watch=true&resourceVersion=22&"));
	fs_req_free(&r);
	kt_get_req(s, 6, &r); /* after a clean end, from the bookmark */
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
	int64_t t0 = kt_mono_ms();
	kc_informer_free(inf);
	assert_true(kt_mono_ms() - t0 < 2500);
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

	assert_int_equal(fs_start(kt_h_pod, NULL, &s), 0);
	cfg = kt_config_for(s, "    token: t\n");
	fs_stop(s);
	assert_int_equal(kc_informer_start(cfg, &o, &inf), 0);
	assert_int_equal(kc_informer_wait_synced(inf, 700), -ETIMEDOUT);
	assert_false(kc_informer_synced(inf));
	int64_t t0 = kt_mono_ms();
	kc_informer_free(inf);
	assert_true(kt_mono_ms() - t0 < 1500);
	assert_int_equal(kc_informer_start(cfg, NULL, &inf), -EINVAL);
	kc_config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_informer),
		cmocka_unit_test(test_informer_unreachable),
	};

	return cmocka_run_group_tests(tests, kt_setup, kt_teardown);
}
