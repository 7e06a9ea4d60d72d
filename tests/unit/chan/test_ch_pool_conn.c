/*
 * The client pool's connections (ch_pool_ep.c, ch_pool_conn.c) against real
 * ch_server threads on 127.0.0.1: reconnect after a server restart, a new
 * pin, an unreachable endpoint that does not hold up another, token
 * rotation, the server's idle timeout and re-authentication.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ch.h"
#include "ch_internal.h"
#include "ch_testpool.h"
#include "log.h"

static void test_reconnect_after_restart_and_new_pin(void **state)
{
	struct psrv *s = psrv_start(0, NULL, 0, 0), *s2;
	struct pctl c;
	struct ch_pool *p;
	struct ch_pool_stats ps;
	struct ch_state st;
	char err[256], oldfp[65];
	int port = s->s.port, fails;
	int64_t t0;

	(void)state;
	memset(&c, 0, sizeof(c));
	p = pool_new(&c, TOKEN1, 3000, 0);
	assert_int_equal(pcall(p, s, "r-1", &st, err, sizeof(err)), 0);

	/* the helper restarts with the same certificate on the same port */
	s2 = psrv_start(0, NULL, 0, 0); /* (only to own a certificate copy) */
	memcpy(oldfp, s->s.fp, sizeof(oldfp));
	{
		struct psrv keep = { 0 };

		keep.s.cert = strdup(s->s.cert);
		keep.s.key = strdup(s->s.key);
		memcpy(keep.s.fp, s->s.fp, sizeof(keep.s.fp));
		psrv_stop(s);
		/* while it is down a call fails, and at once once the pool backs off */
		t0 = ch_now_ms();
		{
			struct psrv down = { 0 };

			snprintf(down.s.endpoint, sizeof(down.s.endpoint), "wss://127.0.0.1:%d", port);
			memcpy(down.s.fp, oldfp, sizeof(down.s.fp));
			assert_int_equal(pcall(p, &down, "r-2", &st, err, sizeof(err)), -ECONNREFUSED);
			t0 = ch_now_ms();
			assert_int_equal(pcall(p, &down, "r-3", &st, err, sizeof(err)), -ECONNREFUSED);
			assert_true(ch_now_ms() - t0 < 50);
			assert_non_null(strstr(err, "retrying"));
		}
		s = psrv_start(port, &keep, 0, 0);
		free(keep.s.cert);
		free(keep.s.key);
	}
	assert_int_equal(call_until_ok(p, s, 3000, &fails), 0);
	ch_pool_get_stats(p, &ps);
	assert_true(ps.reconnects >= 1);
	assert_true(ps.connect_failures >= 1);

	/* a new certificate on the same port: the old pin is refused, the new one works */
	{
		int port2 = s->s.port;
		struct psrv *n;

		psrv_stop(s);
		n = psrv_start(port2, s2, 0, 0); /* s2's certificate, a different fingerprint */
		{
			struct psrv old = { 0 };

			memcpy(old.s.endpoint, n->s.endpoint, sizeof(old.s.endpoint));
			memcpy(old.s.fp, oldfp, sizeof(old.s.fp));
			t0 = ch_now_ms();
			while (pcall(p, &old, "r-4", &st, err, sizeof(err)) != -EPERM &&
			       ch_now_ms() - t0 < 3000)
				usleep(50000);
			assert_int_equal(pcall(p, &old, "r-4", &st, err, sizeof(err)), -EPERM);
		}
		assert_int_equal(atomic_load(&n->auth_calls), 0); /* the token never went there */
		assert_int_equal(call_until_ok(p, n, 3000, &fails), 0);
		assert_int_equal(fails, 0); /* a new pin is tried at once, not after the backoff */
		assert_int_equal(atomic_load(&n->auth_calls), 1);
		psrv_stop(n);
	}
	ch_pool_free(p);
	psrv_stop(s2);
}

struct slow_call {
	struct ch_pool *p;
	char endpoint[64];
	char fp[65];
	int rc;
	int64_t ms;
};

static void *slow_call_main(void *arg)
{
	struct slow_call *sc = arg;
	struct ch_job job;
	struct ch_state st;
	char err[256];
	int64_t t0 = ch_now_ms();

	make_job(&job, "blackhole");
	sc->rc = ch_pool_call(sc->p, sc->endpoint, sc->fp, &job, 0, &st, err, sizeof(err));
	sc->ms = ch_now_ms() - t0;
	return NULL;
}

static void test_unreachable_does_not_block_others(void **state)
{
	struct psrv *s = psrv_start(0, NULL, 0, 0);
	struct pctl c;
	struct ch_pool *p;
	struct slow_call sc;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	struct ch_state st;
	char err[256];
	pthread_t th;
	int64_t t0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	/* a listener that never accepts: TCP connects, TLS never starts */
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	memset(&c, 0, sizeof(c));
	p = pool_new(&c, TOKEN1, 1000, 0);
	memset(&sc, 0, sizeof(sc));
	sc.p = p;
	snprintf(sc.endpoint, sizeof(sc.endpoint), "wss://127.0.0.1:%d", ntohs(a.sin_port));
	memcpy(sc.fp, s->s.fp, sizeof(sc.fp));
	assert_int_equal(pthread_create(&th, NULL, slow_call_main, &sc), 0);
	usleep(100000);
	/* while that call waits for its handshake, the other helper answers at once */
	t0 = ch_now_ms();
	assert_int_equal(pcall(p, s, "other", &st, err, sizeof(err)), 0);
	assert_true(ch_now_ms() - t0 < 500);
	t0 = ch_now_ms();
	assert_int_equal(pcall(p, s, "other-2", &st, err, sizeof(err)), 0);
	assert_true(ch_now_ms() - t0 < 100);
	pthread_join(th, NULL);
	assert_int_equal(sc.rc, -ETIMEDOUT);
	assert_true(sc.ms >= 1000 && sc.ms < 2500);
	/* and the next call to it fails at once while the pool backs off */
	t0 = ch_now_ms();
	slow_call_main(&sc);
	assert_int_equal(sc.rc, -ETIMEDOUT);
	assert_true(sc.ms < 50);
	ch_pool_free(p);
	close(fd);
	psrv_stop(s);
}

static void test_token_rotation(void **state)
{
	struct psrv *s = psrv_start(0, NULL, 0, 0);
	struct pctl c;
	struct ch_pool *p;
	struct ch_pool_stats ps;
	struct ch_state st;
	char err[256];
	int64_t t0;

	(void)state;
	memset(&c, 0, sizeof(c));
	p = pool_new(&c, TOKEN1, 3000, 0);
	assert_int_equal(pcall(p, s, "t-1", &st, err, sizeof(err)), 0);
	pthread_mutex_lock(&s->mu);
	assert_string_equal(s->got_token, TOKEN1);
	pthread_mutex_unlock(&s->mu);
	set_token(&c, TOKEN2);
	/* within about a second the connection is re-made with the new token */
	t0 = ch_now_ms();
	while (atomic_load(&s->auth_calls) < 2 && ch_now_ms() - t0 < 4000) {
		assert_int_equal(pcall(p, s, "t-2", &st, err, sizeof(err)), 0);
		usleep(100000);
	}
	assert_int_equal(atomic_load(&s->auth_calls), 2);
	pthread_mutex_lock(&s->mu);
	assert_string_equal(s->got_token, TOKEN2);
	pthread_mutex_unlock(&s->mu);
	assert_int_equal(pcall(p, s, "t-3", &st, err, sizeof(err)), 0);
	ch_pool_get_stats(p, &ps);
	assert_int_equal(ps.reconnects, 1);
	assert_int_equal(ps.calls_failed, 0); /* no call saw the rotation */

	/* a token the helper refuses: -EACCES, then at once while backing off */
	set_token(&c, "forged.x.y");
	t0 = ch_now_ms();
	{
		int rc;

		while ((rc = pcall(p, s, "t-4", &st, err, sizeof(err))) == 0 && ch_now_ms() - t0 < 4000)
			usleep(100000);
		assert_int_equal(rc, -EACCES);
	}
	t0 = ch_now_ms();
	assert_int_equal(pcall(p, s, "t-5", &st, err, sizeof(err)), -EACCES);
	assert_true(ch_now_ms() - t0 < 50);
	ch_pool_free(p);
	psrv_stop(s);
}

static void test_idle_keepalive_and_reauth(void **state)
{
	struct psrv *s = psrv_start(0, NULL, 2, 0), *r;
	struct pctl c;
	struct ch_pool *p;
	struct ch_pool_stats ps;
	struct ch_server_stats ss;
	struct ch_state st;
	char err[256];

	(void)state;
	memset(&c, 0, sizeof(c));
	/* idle timeout 2 s; the pool pings after 500 ms of silence */
	p = pool_new(&c, TOKEN1, 3000, 500);
	assert_int_equal(pcall(p, s, "i-1", &st, err, sizeof(err)), 0);
	sleep(5);
	assert_int_equal(pcall(p, s, "i-2", &st, err, sizeof(err)), 0);
	ch_server_get_stats(s->s.srv, &ss);
	assert_int_equal(ss.accepted, 1);
	assert_int_equal(ss.timed_out, 0);
	ch_pool_get_stats(p, &ps);
	assert_int_equal(ps.connects, 1);
	ch_pool_free(p);
	psrv_stop(s);

	/* re-authentication after 1 s: the server closes, the next call re-connects */
	r = psrv_start(0, NULL, 0, 1);
	memset(&c, 0, sizeof(c));
	p = pool_new(&c, TOKEN1, 3000, 0);
	assert_int_equal(pcall(p, r, "a-1", &st, err, sizeof(err)), 0);
	usleep(1800000);
	assert_int_equal(pcall(p, r, "a-2", &st, err, sizeof(err)), 0);
	ch_pool_get_stats(p, &ps);
	assert_int_equal(ps.connects, 2);
	assert_int_equal(ps.calls_failed, 0);
	assert_int_equal(atomic_load(&r->auth_calls), 2); /* reviewed again */
	ch_pool_free(p);
	psrv_stop(r);

	/* the token's exp comes first (in 2 s, against the default 600 s): the same */
	r = psrv_start(0, NULL, 0, 0);
	atomic_store(&r->exp_in_s, 2);
	memset(&c, 0, sizeof(c));
	p = pool_new(&c, TOKEN1, 3000, 0);
	assert_int_equal(pcall(p, r, "e-1", &st, err, sizeof(err)), 0);
	usleep(300000);
	assert_int_equal(pcall(p, r, "e-2", &st, err, sizeof(err)), 0);
	ch_pool_get_stats(p, &ps);
	assert_int_equal(ps.connects, 1); /* not yet */
	usleep(2800000);
	assert_int_equal(pcall(p, r, "e-3", &st, err, sizeof(err)), 0);
	ch_pool_get_stats(p, &ps);
	assert_int_equal(ps.connects, 2);
	assert_int_equal(atomic_load(&r->auth_calls), 2);
	ch_pool_free(p);
	psrv_stop(r);
}

static unsigned open_after(struct ch_pool *p, long ms)
{
	struct ch_pool_stats ps;

	usleep((useconds_t)ms * 1000);
	ch_pool_get_stats(p, &ps);
	return ps.open;
}

/* A connection nobody uses is closed after idle_ms (its TLS state goes with
 * it), never while a job it carried is still followed; the next call makes a
 * new one. */
static void test_idle_close(void **state)
{
	struct psrv *s = psrv_start(0, NULL, 0, 0);
	struct pctl c;
	struct ch_pool *p;
	struct ch_pool_stats ps;
	struct ch_state st;
	char err[256];

	(void)state;
	memset(&c, 0, sizeof(c));
	p = pool_new_idle(&c, TOKEN1, 3000, 0, 300);
	assert_int_equal(pcall(p, s, "idle-1", &st, err, sizeof(err)), 0);
	assert_int_equal(st.state, CH_QUEUED);
	/* its states are followed: kept open well past idle_ms */
	assert_int_equal(open_after(p, 900), 1);
	memset(&st, 0, sizeof(st));
	snprintf(st.uid, sizeof(st.uid), "idle-1");
	st.state = CH_SUCCEEDED;
	ch_server_notify(s->s.srv, &st);
	/* the final state ends the subscription: closed after idle_ms */
	assert_int_equal(open_after(p, 1200), 0);
	assert_int_equal(pcall(p, s, "idle-2", &st, err, sizeof(err)), 0);
	ch_pool_get_stats(p, &ps);
	assert_int_equal(ps.connects, 2);
	assert_int_equal(ps.open, 1);
	assert_int_equal(ps.calls_failed, 0);
	assert_int_equal(ps.connect_failures, 0);
	ch_pool_free(p);
	psrv_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reconnect_after_restart_and_new_pin),
		cmocka_unit_test(test_unreachable_does_not_block_others),
		cmocka_unit_test(test_token_rotation),
		cmocka_unit_test(test_idle_keepalive_and_reauth),
		cmocka_unit_test(test_idle_close),
	};

	cts_test_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
