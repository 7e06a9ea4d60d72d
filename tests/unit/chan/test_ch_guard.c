/*
 * The channel server's guard (ch_srv_guard.c), against a real server thread
 * on 127.0.0.1: precheck refusals, TokenReviews off the service thread and
 * coalesced, per-peer and total connection limits (with the slots reserved
 * for peers that authenticated), handshake and auth deadlines, the review
 * budget. Raw TCP clients bind other loopback addresses to be other peers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "ch.h"
#include "ch_internal.h"
#include "ch_testsrv.h"
#include "log.h"

#define GOOD "good-token.x.y"
#define FAST "fast-token.x.y"
#define SLOW "slow-token.x.y"

struct gsrv {
	struct cts s;
	atomic_int auth_calls;
	atomic_int slow_ms;
};

/* FAST is known good (a cache hit), "deny*" refused at once, the rest reviewed. */
static int g_precheck(void *arg, const char *token)
{
	(void)arg;
	if (strcmp(token, FAST) == 0)
		return CH_AUTH_ALLOW;
	if (strncmp(token, "deny", 4) == 0)
		return CH_AUTH_DENY;
	return CH_AUTH_REVIEW;
}

static int g_auth(void *arg, const char *token)
{
	struct gsrv *g = arg;
	int ms = atomic_load(&g->slow_ms);

	atomic_fetch_add(&g->auth_calls, 1);
	if (ms > 0)
		usleep((useconds_t)ms * 1000u);
	return strcmp(token, GOOD) == 0 || strcmp(token, SLOW) == 0 ? 0 : -1;
}

static int g_job(void *arg, const struct ch_job *job, struct ch_state *now)
{
	(void)arg;
	(void)job;
	now->state = CH_SUCCEEDED;
	return 0;
}

static struct gsrv *gsrv_start(const struct ch_server_opts *lim)
{
	struct gsrv *g = calloc(1, sizeof(*g));
	struct ch_server_opts o = *lim;

	assert_non_null(g);
	o.ops.precheck = g_precheck;
	o.ops.authenticate = g_auth;
	o.ops.on_job = g_job;
	o.ops.arg = g;
	cts_start(&g->s, &o, 0, NULL);
	return g;
}

static void gsrv_stop(struct gsrv *g)
{
	cts_stop(&g->s);
	free(g);
}

static int call(struct gsrv *g, const char *token, const char *uid, char *err, size_t errlen)
{
	struct ch_call_opts o = { .endpoint = g->s.endpoint, .fingerprint = g->s.fp, .token = token,
				  .connect_timeout_ms = 3000, .wait_ms = 200 };
	struct ch_job job;
	struct ch_state last;

	memset(&job, 0, sizeof(job));
	job.op = CH_OP_DELETE_ARTIFACT;
	snprintf(job.uid, sizeof(job.uid), "%s", uid);
	snprintf(job.ns, sizeof(job.ns), "ns");
	snprintf(job.name, sizeof(job.name), "n");
	return ch_call(&o, &job, &last, err, errlen);
}

/* A TCP connection from source address src to the server. */
static int raw_connect(struct gsrv *g, const char *src)
{
	int fd = cts_raw_connect(g->s.port, src);

	assert_true(fd >= 0);
	return fd;
}

/* TLS + WebSocket upgrade with token from source address src; the HTTP status (0: none). */
static int raw_upgrade(struct gsrv *g, const char *src, const char *token)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = NULL;
	char req[512], resp[256];
	int fd = raw_connect(g, src), code = 0, n;

	assert_non_null(ctx);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		goto out;
	n = snprintf(req, sizeof(req),
		     "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
		     "Sec-WebSocket-Protocol: pcp.checkpointing.dev.v1\r\nAuthorization: Bearer %s\r\n\r\n",
		     token);
	if (SSL_write(ssl, req, n) != n)
		goto out;
	n = SSL_read(ssl, resp, (int)sizeof(resp) - 1);
	if (n > 12) {
		resp[n] = '\0';
		code = (int)strtol(resp + 9, NULL, 10); /* "HTTP/1.1 NNN" */
	}
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return code;
}

static void test_precheck_deny(void **state)
{
	struct ch_server_opts lim = { 0 };
	struct gsrv *g;
	char err[256];
	(void)state;
	g = gsrv_start(&lim);
	assert_int_equal(call(g, "deny-me", "u1", err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "403"));
	assert_int_equal(call(g, FAST, "u2", err, sizeof(err)), 0);
	assert_int_equal(atomic_load(&g->auth_calls), 0); /* neither asked for a review */
	assert_int_equal(call(g, GOOD, "u3", err, sizeof(err)), 0);
	assert_int_equal(call(g, "unknown", "u4", err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "1008"));
	assert_int_equal(atomic_load(&g->auth_calls), 2);
	gsrv_stop(g);
}

struct bg_call {
	struct gsrv *g;
	const char *token;
	char uid[16];
	int rc;
	int64_t ms;
};

static void *bg(void *arg)
{
	struct bg_call *b = arg;
	char err[256];
	int64_t t0 = ch_now_ms();

	b->rc = call(b->g, b->token, b->uid, err, sizeof(err));
	b->ms = ch_now_ms() - t0;
	return NULL;
}

/* A slow TokenReview never holds up other connections; identical tokens share one. */
static void test_review_off_thread(void **state)
{
	struct ch_server_opts lim = { 0 };
	struct gsrv *g;
	struct bg_call slow[4];
	pthread_t th[4];
	char err[256];
	int64_t t0;
	(void)state;
	g = gsrv_start(&lim);
	atomic_store(&g->slow_ms, 1200);
	for (int i = 0; i < 4; i++) {
		slow[i] = (struct bg_call){ .g = g, .token = SLOW };
		snprintf(slow[i].uid, sizeof(slow[i].uid), "slow-%d", i);
		assert_int_equal(pthread_create(&th[i], NULL, bg, &slow[i]), 0);
	}
	usleep(300000); /* the reviews are running */
	t0 = ch_now_ms();
	assert_int_equal(call(g, FAST, "fast", err, sizeof(err)), 0);
	print_message("a cached call while a 1.2 s review runs: %lld ms\n", (long long)(ch_now_ms() - t0));
	assert_true(ch_now_ms() - t0 < 600);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(slow[i].rc, 0);
	}
	print_message("4 parallel calls with one token: %d review(s)\n", atomic_load(&g->auth_calls));
	assert_int_equal(atomic_load(&g->auth_calls), 1);
	gsrv_stop(g);
}

static void test_peer_limit(void **state)
{
	struct ch_server_opts lim = { .max_conns_per_peer = 3 };
	struct gsrv *g;
	int fds[4];
	char err[256];
	(void)state;
	g = gsrv_start(&lim);
	for (int i = 0; i < 3; i++)
		fds[i] = raw_connect(g, "127.0.0.5");
	for (int i = 0; i < 3; i++)
		assert_int_equal(cts_closed_within(fds[i], 200), -1);
	fds[3] = raw_connect(g, "127.0.0.5");
	assert_true(cts_closed_within(fds[3], 1000) >= 0); /* over the peer's limit: closed at once */
	/* another peer is not affected */
	assert_int_equal(call(g, FAST, "other-peer", err, sizeof(err)), 0);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	gsrv_stop(g);
}

static void test_conn_rate(void **state)
{
	struct ch_server_opts lim = { .conns_per_peer_per_s = 3 };
	struct gsrv *g;
	int fds[8], open_ = 0;
	char err[256];
	struct ch_server_stats st;
	(void)state;
	g = gsrv_start(&lim);
	for (int i = 0; i < 8; i++)
		fds[i] = raw_connect(g, "127.0.0.9");
	for (int i = 0; i < 8; i++)
		open_ += cts_closed_within(fds[i], 100) < 0;
	ch_server_get_stats(g->s.srv, &st);
	print_message("8 connections at once, 3/s allowed: %d kept, %llu refused\n", open_,
		      (unsigned long long)st.refused_conn_rate);
	assert_true(open_ >= 3 && open_ <= 5);
	assert_true(st.refused_conn_rate >= 3);
	/* the controller (another peer) is not affected */
	assert_int_equal(call(g, FAST, "rate-other", err, sizeof(err)), 0);
	for (int i = 0; i < 8; i++)
		close(fds[i]);
	gsrv_stop(g);
}

static void test_total_limit_reserved(void **state)
{
	struct ch_server_opts lim = { .max_conns = 4 };
	struct gsrv *g;
	int fds[5];
	char err[256];
	struct ch_server_stats st;
	(void)state;
	g = gsrv_start(&lim);
	assert_int_equal(call(g, GOOD, "first", err, sizeof(err)), 0); /* 127.0.0.1 is now a good peer */
	usleep(100000);
	for (int i = 0; i < 4; i++) {
		char src[32];

		snprintf(src, sizeof(src), "127.0.0.%d", 20 + i);
		fds[i] = raw_connect(g, src);
	}
	usleep(100000);
	fds[4] = raw_connect(g, "127.0.0.30");
	assert_true(cts_closed_within(fds[4], 1000) >= 0); /* total reached */
	/* the controller still gets through (reserved slots) */
	assert_int_equal(call(g, FAST, "second", err, sizeof(err)), 0);
	ch_server_get_stats(g->s.srv, &st);
	assert_true(st.refused_total >= 1);
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	gsrv_stop(g);
}

static void test_handshake_timeout(void **state)
{
	struct ch_server_opts lim = { .handshake_timeout_s = 1 };
	struct gsrv *g;
	static const unsigned char partial_hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01 };
	int a, b;
	long ta, tb;
	(void)state;
	g = gsrv_start(&lim);
	a = raw_connect(g, "127.0.0.7");             /* says nothing */
	b = raw_connect(g, "127.0.0.8");             /* half a ClientHello */
	assert_int_equal(write(b, partial_hello, sizeof(partial_hello)), (ssize_t)sizeof(partial_hello));
	ta = cts_closed_within(a, 4000);
	tb = cts_closed_within(b, 4000);
	if (tb >= 0)
		tb += ta; /* both measured from the same start */
	print_message("idle TCP closed after %ld ms, half-open TLS after %ld ms (timeout 1 s)\n", ta, tb);
	assert_true(ta >= 500 && ta < 3000);
	assert_true(tb >= 0 && tb < 3000);
	close(a);
	close(b);
	gsrv_stop(g);
}

static void test_auth_timeout(void **state)
{
	struct ch_server_opts lim = { .auth_timeout_s = 1 };
	struct gsrv *g;
	char err[256];
	int64_t t0;
	(void)state;
	g = gsrv_start(&lim);
	atomic_store(&g->slow_ms, 2500);
	t0 = ch_now_ms();
	assert_int_not_equal(call(g, SLOW, "late", err, sizeof(err)), 0);
	print_message("review slower than the auth timeout: refused after %lld ms (%s)\n",
		      (long long)(ch_now_ms() - t0), err);
	assert_true(ch_now_ms() - t0 < 2400);
	gsrv_stop(g);
}

static void test_review_budget(void **state)
{
	struct ch_server_opts lim = { .reviews_per_peer_per_min = 60 };
	struct gsrv *g;
	char err[256], tok[64];
	int eagain = 0, denied = 0;
	(void)state;
	g = gsrv_start(&lim);
	for (int i = 0; i < 12; i++) {
		int rc;

		snprintf(tok, sizeof(tok), "forged-%d.x.y", i);
		rc = call(g, tok, "b", err, sizeof(err));
		if (rc == -EAGAIN)
			eagain++;
		else if (rc == -EACCES)
			denied++;
		else
			print_message("forged %d: rc %d (%s)\n", i, rc, err);
	}
	print_message("12 forged tokens: %d reviewed and refused, %d refused as over budget, %d reviews\n",
		      denied, eagain, atomic_load(&g->auth_calls));
	assert_true(atomic_load(&g->auth_calls) <= 6); /* burst 4 + 1/s */
	assert_true(eagain >= 6);
	gsrv_stop(g);
}

/* Forged tokens from many addresses: the review budget of all peers holds,
 * and a peer that authenticated lately is not held back by it. */
static void test_global_review_budget(void **state)
{
	struct ch_server_opts lim = { .reviews_per_s = 3 };
	struct gsrv *g;
	char src[32], tok[64], err[256];
	int c101 = 0, c429 = 0;
	(void)state;
	g = gsrv_start(&lim);
	assert_int_equal(call(g, GOOD, "good-first", err, sizeof(err)), 0); /* 127.0.0.1: good */
	for (int i = 0; i < 12; i++) {
		int code;

		snprintf(src, sizeof(src), "127.0.4.%d", i + 1);
		snprintf(tok, sizeof(tok), "forged-many-%d.x.y", i);
		code = raw_upgrade(g, src, tok);
		c101 += code == 101;
		c429 += code == 429;
	}
	print_message("12 forged tokens from 12 addresses, 3/s for all: %d upgraded for review, %d refused 429\n",
		      c101, c429);
	assert_true(c101 <= 4);
	assert_true(c429 >= 8);
	/* the budget is spent, yet the controller's new token is reviewed */
	assert_int_equal(call(g, SLOW, "good-again", err, sizeof(err)), 0);
	gsrv_stop(g);
}

/* A plain-HTTP upgrade on the TLS port (lws peeks before TLS, see
 * ch_server_new) is never answered 101, even with a token precheck allows. */
static void test_plaintext_refused(void **state)
{
	struct ch_server_opts lim = { 0 };
	struct gsrv *g;
	char req[512], resp[256] = "";
	int fd, n;
	ssize_t r;
	(void)state;
	g = gsrv_start(&lim);
	fd = raw_connect(g, "127.0.0.11");
	n = snprintf(req, sizeof(req),
		     "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
		     "Sec-WebSocket-Protocol: pcp.checkpointing.dev.v1\r\nAuthorization: Bearer %s\r\n\r\n",
		     FAST);
	assert_int_equal(write(fd, req, (size_t)n), n);
	{
		struct pollfd pf = { .fd = fd, .events = POLLIN };

		(void)poll(&pf, 1, 3000);
	}
	r = read(fd, resp, sizeof(resp) - 1);
	if (r > 0)
		resp[r] = '\0';
	print_message("plain-HTTP upgrade on the TLS port: \"%.12s\"\n", resp);
	assert_null(strstr(resp, " 101"));
	close(fd);
	/* TLS still works next to it */
	assert_int_equal(raw_upgrade(g, "127.0.0.12", FAST), 101);
	gsrv_stop(g);
}

/* Connections that never speak cost no TLS handshake state: ~60 KiB of
 * OpenSSL buffers each before the server deferred TLS to the first byte. */
static void test_idle_connections_cheap(void **state)
{
	struct ch_server_opts lim = { 0 };
	struct gsrv *g;
	struct ch_server_stats st;
	int fds[64];
	size_t before, after;
	(void)state;
#if defined(__SANITIZE_ADDRESS__)
	skip(); /* the sanitizer's allocator: mallinfo2 does not see it */
#endif
	g = gsrv_start(&lim);
	usleep(100000);
	before = mallinfo2().uordblks;
	for (int i = 0; i < 64; i++) {
		char src[32];

		snprintf(src, sizeof(src), "127.0.5.%d", i / 16 + 1);
		fds[i] = raw_connect(g, src);
		if (i % 16 == 15)
			usleep(100000); /* within each peer's 20 new connections per second */
	}
	usleep(300000);
	ch_server_get_stats(g->s.srv, &st);
	after = mallinfo2().uordblks;
	print_message("64 silent connections: %u open, %zu KiB of heap, %zu bytes each\n",
		      st.open_conns, (after - before) / 1024, (after - before) / 64);
	assert_int_equal(st.open_conns, 64);
	assert_true(after - before < 64u * 32u * 1024u);
	for (int i = 0; i < 64; i++)
		close(fds[i]);
	gsrv_stop(g);
}

/* Past max_handshakes TLS handshakes in progress a new one is dropped (half
 * of a ClientHello holds ~90 KiB of OpenSSL state), a peer that authenticated
 * lately excepted; once they are gone new handshakes work again. */
static void test_handshake_cap(void **state)
{
	struct ch_server_opts lim = { .max_handshakes = 4, .handshake_timeout_s = 1 };
	static const unsigned char partial_hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01 };
	struct ch_server_stats st;
	struct gsrv *g;
	int fds[8], open_ = 0, other;
	(void)state;
	/* Raw OpenSSL clients only: lws reports handshakes (LWS_CALLBACK_SSL_INFO)
	 * only while no lws context was created after the server's (its ex_data
	 * quirk, docs/channel.md); the helper has that one context. */
	g = gsrv_start(&lim);
	assert_int_equal(raw_upgrade(g, "127.0.0.1", FAST), 101); /* 127.0.0.1: good */
	for (int i = 0; i < 8; i++) {
		char src[32];

		snprintf(src, sizeof(src), "127.0.6.%d", i + 1);
		fds[i] = raw_connect(g, src);
		assert_int_equal(write(fds[i], partial_hello, sizeof(partial_hello)),
				 (ssize_t)sizeof(partial_hello));
		usleep(20000);
	}
	usleep(300000);
	for (int i = 0; i < 8; i++)
		open_ += cts_closed_within(fds[i], 50) < 0;
	ch_server_get_stats(g->s.srv, &st);
	print_message("8 half-open handshakes, 4 allowed: %d kept, %llu dropped\n", open_,
		      (unsigned long long)st.refused_handshakes);
	assert_int_equal(open_, 4);
	assert_int_equal(st.refused_handshakes, 4);
	/* the cap is full: another peer's handshake is dropped, the good peer's is not */
	other = raw_connect(g, "127.0.6.20");
	assert_int_equal(write(other, partial_hello, sizeof(partial_hello)),
			 (ssize_t)sizeof(partial_hello));
	assert_true(cts_closed_within(other, 500) >= 0);
	close(other);
	assert_int_equal(raw_upgrade(g, "127.0.0.1", FAST), 101);
	/* past the handshake timeout the half-open ones are gone: handshakes work again */
	for (int i = 0; i < 8; i++)
		close(fds[i]);
	usleep(1500000);
	assert_int_equal(raw_upgrade(g, "127.0.6.21", FAST), 101);
	gsrv_stop(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_precheck_deny),
		cmocka_unit_test(test_review_off_thread),
		cmocka_unit_test(test_peer_limit),
		cmocka_unit_test(test_conn_rate),
		cmocka_unit_test(test_total_limit_reserved),
		cmocka_unit_test(test_handshake_timeout),
		cmocka_unit_test(test_auth_timeout),
		cmocka_unit_test(test_review_budget),
		cmocka_unit_test(test_global_review_budget),
		cmocka_unit_test(test_plaintext_refused),
		cmocka_unit_test(test_idle_connections_cheap),
		cmocka_unit_test(test_handshake_cap),
	};
	cts_test_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
