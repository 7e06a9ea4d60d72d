/*
 * ch_testsrv.c - see ch_testsrv.h.
 */
#include "ch_testsrv.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "ch_internal.h"
#include "log.h"

static void *cts_run(void *arg)
{
	struct cts *c = arg;

	c->run_rc = ch_server_run(c->srv, &c->stop);
	return NULL;
}

void cts_start(struct cts *c, const struct ch_server_opts *opts, int port, const struct cts *like)
{
	struct ch_server_opts o = *opts;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (like) {
		c->cert = strdup(like->cert);
		c->key = strdup(like->key);
		assert_non_null(c->cert);
		assert_non_null(c->key);
		memcpy(c->fp, like->fp, sizeof(c->fp));
	} else {
		assert_int_equal(ch_make_self_signed("127.0.0.1", 2, &c->cert, &c->key, c->fp), 0);
	}
	o.bind_address = "127.0.0.1";
	o.port = port;
	o.cert_pem = c->cert;
	o.key_pem = c->key;
	for (int i = 0; i < 50 && rc != 0; i++) {
		rc = ch_server_new(&o, &c->srv);
		if (rc)
			usleep(100000);
	}
	assert_int_equal(rc, 0);
	c->port = ch_server_port(c->srv);
	assert_true(c->port > 0);
	snprintf(c->endpoint, sizeof(c->endpoint), "wss://127.0.0.1:%d", c->port);
	assert_int_equal(pthread_create(&c->th, NULL, cts_run, c), 0);
}

void cts_stop(struct cts *c)
{
	int64_t t0 = ch_now_ms();

	c->stop = 1;
	pthread_join(c->th, NULL);
	/* *stop is honoured within 200 ms (the bound leaves room for a loaded machine) */
	assert_true(ch_now_ms() - t0 < 1500);
	assert_int_equal(c->run_rc, 0);
	ch_server_free(c->srv);
	c->srv = NULL;
	free(c->cert);
	free(c->key);
	c->cert = c->key = NULL;
}

int cts_raw_connect(int port, const char *src)
{
	struct sockaddr_in a = { .sin_family = AF_INET }, b = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	inet_pton(AF_INET, src, &a.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	inet_pton(AF_INET, "127.0.0.1", &b.sin_addr);
	b.sin_port = htons((uint16_t)port);
	if (connect(fd, (struct sockaddr *)&b, sizeof(b)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

long cts_closed_within(int fd, long wait_ms)
{
	int64_t t0 = ch_now_ms();
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char b[256];

	while (ch_now_ms() - t0 < wait_ms) {
		int n = poll(&p, 1, (int)(wait_ms - (ch_now_ms() - t0)));

		if (n > 0) {
			ssize_t r = read(fd, b, sizeof(b));

			if (r <= 0)
				return (long)(ch_now_ms() - t0);
		}
	}
	return -1;
}

void cts_test_setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (!getenv("PCP_TEST_VERBOSE")) {
		ch_set_lws_log_levels(0);
		log_threshold = LOG_LVL_ERROR;
	} else {
		log_threshold = LOG_LVL_DEBUG;
	}
}
