/* Unit tests for lib/common/mx.c, mx_proc.c and mx_http.c. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dbuf.h"
#include "mx.h"
#include "mx_http.h"

static char *render(void)
{
	struct dbuf b;

	dbuf_init(&b, 1 << 22);
	assert_int_equal(mx_render(&b), 0);
	return dbuf_steal(&b, NULL);
}

static void test_counter_gauge(void **state)
{
	struct mx_family *c, *g, *again;
	char *text;

	(void)state;
	c = mx_counter("t_checkpoints_total", "Checkpoints.", "result,reason");
	assert_non_null(c);
	again = mx_counter("t_checkpoints_total", "other help", "result,reason");
	assert_ptr_equal(c, again);
	assert_null(mx_gauge("t_checkpoints_total", "type clash", NULL));
	assert_null(mx_counter("bad name", "x", NULL));
	assert_null(mx_counter("t_bad_labels", "x", "a,le"));
	assert_null(mx_counter("t_too_many_labels", "x", "a,b,c,d"));

	mx_counter_add(c, 1, MX_LV("succeeded", ""));
	mx_counter_add(c, 2, MX_LV("failed", "KubeletError"));
	mx_counter_add(c, 1, MX_LV("failed", "KubeletError"));
	mx_counter_add(c, -1, MX_LV("failed", "KubeletError")); /* refused */
	mx_counter_add(c, 1, MX_LV("only-one"));                 /* refused */
	mx_counter_add(NULL, 1, NULL, 0);                        /* no-op */
	assert_true(mx_value(c, MX_LV("failed", "KubeletError")) == 3.0);

	g = mx_gauge("t_queue_depth", "Queue \\ depth\nsecond line.", NULL);
	mx_gauge_set(g, 5, NULL, 0);
	mx_gauge_add(g, -2, NULL, 0);
	assert_true(mx_value(g, NULL, 0) == 3.0);

	text = render();
	assert_non_null(strstr(text, "# HELP t_checkpoints_total Checkpoints.\n# TYPE t_checkpoints_total counter\n"));
	assert_non_null(strstr(text, "t_checkpoints_total{result=\"succeeded\",reason=\"\"} 1\n"));
	assert_non_null(strstr(text, "t_checkpoints_total{result=\"failed\",reason=\"KubeletError\"} 3\n"));
	assert_non_null(strstr(text, "# HELP t_queue_depth Queue \\\\ depth\\nsecond line.\n"));
	assert_non_null(strstr(text, "t_queue_depth 3\n"));
	assert_non_null(strstr(text, "podcheckpoint_metrics_errors_total 2\n"));
	free(text);
}

static void test_histogram(void **state)
{
	static const double b[] = { 0.5, 1, 2.5 };
	struct mx_family *h;
	char *text;

	(void)state;
	h = mx_histogram("t_duration_seconds", "Durations.", "phase", b, 3);
	assert_non_null(h);
	assert_null(mx_histogram("t_unsorted", "x", NULL, (const double[]){ 2, 1 }, 2));
	mx_observe(h, 0.25, MX_LV("kubelet"));
	mx_observe(h, 0.5, MX_LV("kubelet")); /* le is inclusive */
	mx_observe(h, 2, MX_LV("kubelet"));
	mx_observe(h, 100, MX_LV("kubelet"));
	assert_int_equal(mx_hist_count(h, MX_LV("kubelet")), 4);
	text = render();
	assert_non_null(strstr(text, "t_duration_seconds_bucket{phase=\"kubelet\",le=\"0.5\"} 2\n"
				     "t_duration_seconds_bucket{phase=\"kubelet\",le=\"1\"} 2\n"
				     "t_duration_seconds_bucket{phase=\"kubelet\",le=\"2.5\"} 3\n"
				     "t_duration_seconds_bucket{phase=\"kubelet\",le=\"+Inf\"} 4\n"
				     "t_duration_seconds_sum{phase=\"kubelet\"} 102.75\n"
				     "t_duration_seconds_count{phase=\"kubelet\"} 4\n"));
	free(text);
}

static void test_cardinality_and_escaping(void **state)
{
	struct mx_family *c;
	char lv[32], *text;

	(void)state;
	c = mx_counter("t_requests_total", "Requests.", "code");
	for (int i = 0; i < MX_MAX_SERIES + 10; i++) {
		snprintf(lv, sizeof(lv), "%d", i);
		mx_counter_add(c, 1, MX_LV(lv));
	}
	assert_true(mx_value(c, MX_LV("other")) == 10.0);
	mx_counter_add(c, 1, MX_LV("a\"b\\c\nd"));
	text = render();
	assert_non_null(strstr(text, "t_requests_total{code=\"other\"} 11\n"));
	assert_null(strstr(text, "t_requests_total{code=\"70\"}"));
	free(text);

	c = mx_counter("t_escape_total", "Escaping.", "v");
	mx_counter_add(c, 1, MX_LV("a\"b\\c\nd"));
	text = render();
	assert_non_null(strstr(text, "t_escape_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"));
	free(text);
}

/* A family holds room for the series it has seen, not for MX_MAX_SERIES of them
 * (13 families of 65 preallocated series were 351 KiB of the idle controller). */
static void test_series_grow(void **state)
{
	static const double b[] = { 1, 2 };
	struct mx_family *h = mx_histogram("t_grow_seconds", "Growth.", "a,b", b, 2);
	size_t empty = mx_family_bytes(h), one, full;
	char lv[32];

	(void)state;
	assert_true(empty < 2048);
	mx_observe(h, 1.5, MX_LV("x", "y"));
	one = mx_family_bytes(h);
	assert_true(one > empty && one - empty < 1024);
	for (int i = 0; i < MX_MAX_SERIES + 3; i++) {
		snprintf(lv, sizeof(lv), "%d", i);
		mx_observe(h, 0.5, MX_LV(lv, "z"));
	}
	full = mx_family_bytes(h);
	assert_true(full > 16 * (one - empty));
	/* the series moved as the array grew: every observation is still there */
	assert_int_equal(mx_hist_count(h, MX_LV("x", "y")), 1);
	assert_int_equal(mx_hist_count(h, MX_LV("0", "z")), 1);
	assert_int_equal(mx_hist_count(h, MX_LV("other", "other")), 4);
	assert_int_equal(mx_family_bytes(h), full);
}

static void test_process(void **state)
{
	char *text;

	(void)state;
	mx_register_process("test", "1.2.3");
	text = render();
	assert_non_null(strstr(text, "podcheckpoint_build_info{component=\"test\",version=\"1.2.3\"} 1\n"));
	assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
	assert_non_null(strstr(text, "process_resident_memory_bytes "));
	assert_null(strstr(text, "process_resident_memory_bytes 0\n"));
	assert_null(strstr(text, "process_start_time_seconds 0\n"));
	assert_null(strstr(text, "process_open_fds 0\n"));
	free(text);
}

static void test_beats(void **state)
{
	char why[256] = "";
	int id;

	(void)state;
	id = mx_beat_register("worker", 100);
	assert_true(id >= 0);
	assert_int_equal(mx_beats_check(why, sizeof(why)), 0);
	usleep(150 * 1000);
	assert_int_equal(mx_beats_check(why, sizeof(why)), -ETIMEDOUT);
	assert_non_null(strstr(why, "the worker loop has not run"));
	mx_beat(id);
	assert_int_equal(mx_beats_check(why, sizeof(why)), 0);
	mx_beat_retire(id);
	usleep(150 * 1000);
	assert_int_equal(mx_beats_check(why, sizeof(why)), 0);
}

static void test_parse_addr(void **state)
{
	char host[64], err[128];
	int port = -1;

	(void)state;
	assert_int_equal(mx_http_parse_addr(":8080", host, sizeof(host), &port, err, sizeof(err)), 0);
	assert_string_equal(host, "");
	assert_int_equal(port, 8080);
	assert_int_equal(mx_http_parse_addr("127.0.0.5:10444", host, sizeof(host), &port, err, sizeof(err)), 0);
	assert_string_equal(host, "127.0.0.5");
	assert_int_equal(mx_http_parse_addr("[::1]:0", host, sizeof(host), &port, err, sizeof(err)), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 0);
	assert_int_equal(mx_http_parse_addr("8080", host, sizeof(host), &port, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not HOST:PORT"));
	assert_int_equal(mx_http_parse_addr(":99999", host, sizeof(host), &port, err, sizeof(err)), -EINVAL);
	assert_int_equal(mx_http_parse_addr(":80x", host, sizeof(host), &port, err, sizeof(err)), -EINVAL);
}

static void test_parse_request(void **state)
{
	char m[8], p[32];

	(void)state;
	assert_int_equal(mx_http_parse_request("GET /metrics?x=1 HTTP/1.1\r\n\r\n", 30, m, sizeof(m), p, sizeof(p)), 0);
	assert_string_equal(m, "GET");
	assert_string_equal(p, "/metrics");
	assert_int_equal(mx_http_parse_request("GET /a HTTP/1.1", 15, m, sizeof(m), p, sizeof(p)), -EINVAL); /* no line end */
	assert_int_equal(mx_http_parse_request("GET metrics HTTP/1.1\n", 21, m, sizeof(m), p, sizeof(p)), -EINVAL);
	assert_int_equal(mx_http_parse_request("LONGMETHOD / HTTP/1.1\n", 22, m, sizeof(m), p, sizeof(p)), -EINVAL);
	assert_int_equal(mx_http_parse_request("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\n", 53, m, sizeof(m), p, sizeof(p)), -EINVAL);
	/* the second space must be on the request line */
	assert_int_equal(mx_http_parse_request("GET /x\nHost: a b\n\n", 18, m, sizeof(m), p, sizeof(p)), -EINVAL);
}

static int dial(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Reads until EOF (at most 5 s); returns what came. */
static char *read_all(int fd)
{
	struct dbuf b;
	char buf[4096];

	dbuf_init(&b, 1 << 22);
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0)
			break;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		assert_int_equal(dbuf_add(&b, buf, (size_t)n), 0);
	}
	if (!b.data)
		(void)dbuf_adds(&b, "");
	return dbuf_steal(&b, NULL);
}

static char *get(int port, const char *req)
{
	int fd = dial(port);
	char *resp;

	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	resp = read_all(fd);
	close(fd);
	return resp;
}

static int ready_flag;

static int ready_cb(void *arg, char *why, size_t cap)
{
	(void)arg;
	if (ready_flag)
		return 0;
	snprintf(why, cap, "the API server is unreachable");
	return 1;
}

static void test_http(void **state)
{
	struct mx_http_opts o = { "127.0.0.1:0", ready_cb, NULL, NULL };
	struct mx_http *h = NULL;
	struct timespec t0, t1;
	char err[256] = "", *r;
	int port, fds[MX_HTTP_MAX_CONN + 1], slow;

	(void)state;
	mx_gauge_set(mx_gauge("t_http_gauge", "A gauge.", NULL), 7, NULL, 0);
	assert_int_equal(mx_http_start(&o, &h, err, sizeof(err)), 0);
	port = mx_http_port(h);
	assert_true(port > 0);

	r = get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4"));
	assert_non_null(strstr(r, "\r\n\r\n# HELP"));
	assert_non_null(strstr(r, "t_http_gauge 7\n"));
	free(r);

	r = get(port, "GET /healthz HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 200 OK"));
	assert_non_null(strstr(r, "\r\n\r\nok\n"));
	free(r);

	ready_flag = 0;
	r = get(port, "GET /readyz?verbose HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 503 Service Unavailable"));
	assert_non_null(strstr(r, "not ready: the API server is unreachable\n"));
	free(r);
	ready_flag = 1;
	r = get(port, "GET /readyz HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 200 OK"));
	free(r);

	r = get(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 200 OK"));
	assert_null(strstr(r, "# HELP"));
	free(r);
	r = get(port, "GET /nope HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 404"));
	free(r);
	r = get(port, "POST /metrics HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 405"));
	free(r);
	r = get(port, "garbage\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 400"));
	free(r);

	/* A request head past the cap: 431, not a hang. */
	{
		char *big = malloc(MX_HTTP_MAX_REQ + 100);

		memset(big, 'a', MX_HTTP_MAX_REQ + 99);
		memcpy(big, "GET /", 5);
		big[MX_HTTP_MAX_REQ + 99] = '\0';
		r = get(port, big);
		assert_non_null(strstr(r, "HTTP/1.1 431"));
		free(r);
		free(big);
	}

	/* Slowloris: a head that never ends is dropped at the read deadline. */
	slow = dial(port);
	assert_int_equal(write(slow, "GET /metr", 9), 9);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* The connection cap: every slot taken, one more is closed at once. */
	for (int i = 0; i < MX_HTTP_MAX_CONN - 1; i++)
		fds[i] = dial(port);
	usleep(100 * 1000);
	fds[MX_HTTP_MAX_CONN - 1] = dial(port);
	r = read_all(fds[MX_HTTP_MAX_CONN - 1]);
	assert_string_equal(r, "");
	free(r);
	r = read_all(slow);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_string_equal(r, "");
	free(r);
	{
		double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

		assert_true(waited >= MX_HTTP_READ_MS / 1000.0 - 0.5);
		assert_true(waited < MX_HTTP_READ_MS / 1000.0 + 3);
	}
	close(slow);
	for (int i = 0; i < MX_HTTP_MAX_CONN; i++)
		close(fds[i]);
	usleep(200 * 1000);
	/* Still serving after all that. */
	r = get(port, "GET /healthz HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 200 OK"));
	free(r);
	mx_http_stop(h);

	o.addr = "not-an-ip:1";
	assert_int_not_equal(mx_http_start(&o, &h, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "numeric IP"));
	mx_http_stop(NULL);
}

static int ticks;

static void tick(void *arg)
{
	(void)arg;
	ticks++;
}

static void test_ticker_and_off(void **state)
{
	struct mx_http_opts o = { "0", NULL, NULL, NULL };
	struct mx_http *h = (struct mx_http *)&o;
	struct mx_ticker *t = NULL;
	char err[128] = "";

	(void)state;
	assert_int_equal(mx_http_start(&o, &h, err, sizeof(err)), 0);
	assert_null(h); /* "0": no server */
	o.addr = "";
	assert_int_equal(mx_http_start(&o, &h, err, sizeof(err)), 0);
	assert_null(h);
	assert_int_equal(mx_ticker_start(tick, NULL, 0, &t), -EINVAL);
	assert_int_equal(mx_ticker_start(tick, NULL, 1, &t), 0);
	usleep(1300 * 1000);
	mx_ticker_stop(t); /* at once, although the next tick is a second away */
	assert_int_equal(ticks, 2);
	mx_ticker_stop(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_gauge),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_cardinality_and_escaping),
		cmocka_unit_test(test_series_grow),
		cmocka_unit_test(test_process),
		cmocka_unit_test(test_beats),
		cmocka_unit_test(test_parse_addr),
		cmocka_unit_test(test_parse_request),
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_ticker_and_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
