/* Unit tests for lib/kc's informer in projection mode (no json-c trees kept):
 * LIST pages handed over one by one, epochs and the sweep of vanished
 * objects, 410 on a continue token, a project() failure, and the watch. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "fake_server.h"
#include "kc.h"
#include "kc_testutil.h"

/* ------------------------------------------------------------ a consumer */

/* What a consumer of the projection keeps: name, rv, epoch (mark and sweep). */
struct rec {
	char name[16];
	char rv[16];
	uint64_t epoch;
	bool used;
};

struct consumer {
	pthread_mutex_t lock;
	struct rec recs[8];
	char log[64][48];
	int n;
	int fail_on_c; /* project() fails this many times on object "c" */
	int resyncs;
};

static void logf_(struct consumer *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct consumer *c, const char *fmt, ...)
{
	va_list ap;

	if (c->n >= 64)
		return;
	va_start(ap, fmt);
	vsnprintf(c->log[c->n++], sizeof(c->log[0]), fmt, ap);
	va_end(ap);
}

static struct rec *find(struct consumer *c, const char *name)
{
	for (size_t i = 0; i < 8; i++)
		if (c->recs[i].used && strcmp(c->recs[i].name, name) == 0)
			return &c->recs[i];
	return NULL;
}

static int project(void *arg, enum kc_event_type type, json_object *obj, uint64_t epoch)
{
	static const char *const names[] = { "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR" };
	struct consumer *c = arg;
	const char *name = kc_json_str(obj, "metadata.name");
	struct rec *r;
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	if (strcmp(name, "c") == 0 && c->fail_on_c > 0) {
		c->fail_on_c--;
		logf_(c, "FAIL %s", name);
		rc = -ENOMEM;
		goto out;
	}
	logf_(c, "%s %s %s %llu %s", names[type], name, kc_json_rv(obj), (unsigned long long)epoch,
	      kc_json_str(obj, "kind") ? kc_json_str(obj, "kind") : "-");
	r = find(c, name);
	if (type == KC_DELETED) {
		if (r)
			r->used = false;
		goto out;
	}
	for (size_t i = 0; !r && i < 8; i++)
		if (!c->recs[i].used)
			r = &c->recs[i];
	assert_non_null(r);
	r->used = true;
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->rv, sizeof(r->rv), "%s", kc_json_rv(obj));
	r->epoch = epoch;
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static void sweep(void *arg, uint64_t epoch)
{
	struct consumer *c = arg;
	char gone[32] = "";

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < 8; i++) {
		if (c->recs[i].used && c->recs[i].epoch != epoch) {
			c->recs[i].used = false;
			strncat(gone, c->recs[i].name, sizeof(gone) - strlen(gone) - 1);
		}
	}
	logf_(c, "SWEEP %llu -%s", (unsigned long long)epoch, gone);
	pthread_mutex_unlock(&c->lock);
}

static void resync(void *arg)
{
	struct consumer *c = arg;

	pthread_mutex_lock(&c->lock);
	c->resyncs++;
	pthread_mutex_unlock(&c->lock);
}

static void check_log(struct consumer *c, const char *const *want, size_t n)
{
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < c->n; i++)
		printf("  %d: %s\n", i, c->log[i]);
	assert_int_equal(c->n, (int)n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(c->log[i], want[i]);
	pthread_mutex_unlock(&c->lock);
}

/* ------------------------------------------------------------ list, 410, watch */

struct srv {
	pthread_mutex_t lock;
	int lists, watches;
};

#define ITEM(n, rv) "{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"" n "\",\"resourceVersion\":\"" rv "\"}}"

static int h_watch_script(struct fake_server *s, int fd, const struct fs_req *r, void *arg)
{
	struct srv *sv = arg;
	bool watch = strstr(r->target, "watch=true") != NULL;
	int lists, watches;

	pthread_mutex_lock(&sv->lock);
	if (watch)
		watches = ++sv->watches, lists = sv->lists;
	else
		lists = ++sv->lists, watches = sv->watches;
	pthread_mutex_unlock(&sv->lock);
	if (!watch) {
		if (lists == 1)
			return fs_reply_json(fd, 200, "{\"metadata\":{\"resourceVersion\":\"10\",\"continue\":\"tok1\"},"
						      "\"items\":[" ITEM("a", "5") "]}");
		if (lists == 2)
			return fs_reply_json(fd, 200, "{\"metadata\":{\"resourceVersion\":\"10\"},\"items\":["
						      ITEM("b", "6") "]}");
		/* relist after 410: b is gone, c is new */
		return fs_reply_json(fd, 200, "{\"metadata\":{\"resourceVersion\":\"20\"},\"items\":["
					      ITEM("a", "5") "," ITEM("c", "11") "]}");
	}
	fs_chunked_begin(fd, 200);
	if (watches == 1) {
		static const char ev[] =
			"{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":"
			"{\"namespace\":\"ns1\",\"name\":\"b\",\"resourceVersion\":\"12\"}}}\n"
			"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
			"\"status\":\"Failure\",\"message\":\"too old\",\"reason\":\"Expired\",\"code\":410}}\n";
		fs_chunk(fd, ev, sizeof(ev) - 1);
		fs_chunked_end(fd);
		return 0;
	}
	if (watches == 2) {
		static const char ev[] =
			"{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":"
			"{\"namespace\":\"ns1\",\"name\":\"a\",\"resourceVersion\":\"21\"}}}\n"
			"{\"type\":\"DELETED\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":"
			"{\"namespace\":\"ns1\",\"name\":\"c\",\"resourceVersion\":\"22\"}}}\n"
			"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":"
			"{\"resourceVersion\":\"25\"}}}\n";
		fs_chunk(fd, ev, sizeof(ev) - 1);
	}
	fs_hang(s, 60000);
	return -1;
}

static void test_projection_watch(void **state)
{
	struct srv sv = { .lists = 0 };
	struct consumer c = { .n = 0 };
	struct fake_server *s = NULL;
	struct kc_config *cfg;
	struct kc_informer *inf = NULL;
	struct kc_informer_opts o = { .res = &KC_RES_PODS, .ns = "ns1", .project = project,
				      .sweep = sweep, .resync = resync, .resync_seconds = 1, .arg = &c };
	static const char *const want[] = {
		"ADDED a 5 1 Pod", "ADDED b 6 1 Pod", "SWEEP 1 -",   /* two pages, kind filled */
		"MODIFIED b 12 1 Pod",                              /* watch, then 410 */
		"ADDED a 5 2 Pod", "ADDED c 11 2 Pod", "SWEEP 2 -b", /* relist: b vanished */
		"MODIFIED a 21 2 Pod", "DELETED c 22 2 Pod",        /* watch */
	};
	(void)state;

	pthread_mutex_init(&sv.lock, NULL);
	pthread_mutex_init(&c.lock, NULL);
	assert_int_equal(fs_start(h_watch_script, &sv, &s), 0);
	cfg = kt_config_for(s, "    token: t\n");
	assert_int_equal(kc_informer_start(cfg, &o, &inf), 0);
	assert_int_equal(kc_informer_wait_synced(inf, 5000), 0);
	assert_null(kc_informer_cache(inf)); /* no trees kept */
	assert_true(fs_wait_count(s, 5, 10000)); /* list, list, watch, list, watch */
	kt_sleep_ms(1500); /* the second watch idles: resync() is called about once a second */
	check_log(&c, want, sizeof(want) / sizeof(want[0]));
	pthread_mutex_lock(&c.lock);
	assert_non_null(find(&c, "a"));
	assert_string_equal(find(&c, "a")->rv, "21");
	assert_null(find(&c, "b"));
	assert_null(find(&c, "c"));
	assert_true(c.resyncs >= 1);
	pthread_mutex_unlock(&c.lock);
	kc_informer_free(inf);
	kc_config_free(cfg);
	fs_stop(s);
	pthread_mutex_destroy(&sv.lock);
	pthread_mutex_destroy(&c.lock);
}

/* ------------------------------------------------------------ 410 on continue, project failure */

static int h_list_faults(struct fake_server *s, int fd, const struct fs_req *r, void *arg)
{
	struct srv *sv = arg;
	int lists;

	if (strstr(r->target, "watch=true")) {
		fs_chunked_begin(fd, 200);
		fs_hang(s, 60000);
		return -1;
	}
	pthread_mutex_lock(&sv->lock);
	lists = ++sv->lists;
	pthread_mutex_unlock(&sv->lock);
	if (strstr(r->target, "continue=tok1")) /* the token expired */
		return fs_reply_json(fd, 410, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
					      "\"reason\":\"Expired\",\"code\":410,\"message\":\"continue expired\"}");
	if (strstr(r->target, "continue=tok2"))
		return fs_reply_json(fd, 200, "{\"metadata\":{\"resourceVersion\":\"30\"},\"items\":["
					      ITEM("c", "29") "]}");
	if (lists == 1)
		return fs_reply_json(fd, 200, "{\"metadata\":{\"resourceVersion\":\"30\",\"continue\":\"tok1\"},"
					      "\"items\":[" ITEM("a", "1") "," ITEM("b", "2") "]}");
	return fs_reply_json(fd, 200, "{\"metadata\":{\"resourceVersion\":\"30\",\"continue\":\"tok2\"},"
				      "\"items\":[" ITEM("a", "1") "]}");
}

static void test_projection_list_faults(void **state)
{
	struct srv sv = { .lists = 0 };
	struct consumer c = { .n = 0, .fail_on_c = 1 };
	struct fake_server *s = NULL;
	struct kc_config *cfg;
	struct kc_informer *inf = NULL;
	struct kc_informer_opts o = { .res = &KC_RES_PODS, .project = project, .sweep = sweep,
				      .arg = &c };
	struct fs_req r;
	static const char *const want[] = {
		"ADDED a 1 1 Pod", "ADDED b 2 1 Pod", /* page 1; page 2's token expired */
		"ADDED a 1 2 Pod", "FAIL c",          /* list again; the consumer fails */
		"ADDED a 1 3 Pod", "ADDED c 29 3 Pod", "SWEEP 3 -b", /* after backoff */
	};
	(void)state;

	pthread_mutex_init(&sv.lock, NULL);
	pthread_mutex_init(&c.lock, NULL);
	assert_int_equal(fs_start(h_list_faults, &sv, &s), 0);
	cfg = kt_config_for(s, "    token: t\n");
	assert_int_equal(kc_informer_start(cfg, &o, &inf), 0);
	assert_int_equal(kc_informer_wait_synced(inf, 5000), 0);
	assert_true(fs_wait_count(s, 7, 5000)); /* 6 list requests, then the watch */
	check_log(&c, want, sizeof(want) / sizeof(want[0]));
	assert_int_equal(fs_get(s, 6, &r), 0);
	assert_non_null(strstr(r.target, "watch=true&resourceVersion=30&"));
	fs_req_free(&r);
	assert_int_equal(fs_get(s, 3, &r), 0); /* the page that failed in the consumer */
	assert_non_null(strstr(r.target, "limit=100&continue=tok2"));
	fs_req_free(&r);
	pthread_mutex_lock(&c.lock);
	assert_non_null(find(&c, "a"));
	assert_non_null(find(&c, "c"));
	assert_null(find(&c, "b"));
	pthread_mutex_unlock(&c.lock);
	kc_informer_free(inf);
	kc_config_free(cfg);
	fs_stop(s);
	pthread_mutex_destroy(&sv.lock);
	pthread_mutex_destroy(&c.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_projection_watch),
		cmocka_unit_test(test_projection_list_faults),
	};

	return cmocka_run_group_tests(tests, kt_setup, kt_teardown);
}
