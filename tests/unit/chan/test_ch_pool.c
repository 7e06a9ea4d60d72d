/*
 * The client pool (ch_pool.c) against real ch_server threads on 127.0.0.1:
 * many jobs on one connection (one TokenReview, one message before the
 * review's answer), pushed states to on_update, re-subscription after the
 * server closed the connection, and the guard still refusing a flood while
 * the pool's connection works. Connection life (restart, pin, rotation,
 * keepalive): test_ch_pool_conn.c.
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

/* ---------------------------------------------------------------- tests */

struct mux {
	struct ch_pool *p;
	struct psrv *s;
	int idx;
	int ok;
};

static void *mux_worker(void *arg)
{
	struct mux *m = arg;
	struct ch_state st;
	char uid[32], err[256];

	for (int i = 0; i < 20; i++) {
		snprintf(uid, sizeof(uid), "mux-%d-%d", m->idx, i);
		if (pcall(m->p, m->s, uid, &st, err, sizeof(err)) == 0 && st.state == CH_QUEUED &&
		    strcmp(st.uid, uid) == 0)
			m->ok++;
	}
	return NULL;
}

static void test_multiplex_one_connection(void **state)
{
	struct psrv *s = psrv_start(0, NULL, 0, 0);
	struct pctl c;
	struct ch_pool *p;
	struct mux m[5];
	pthread_t th[5];
	struct ch_server_stats ss;
	struct ch_pool_stats ps;

	(void)state;
	memset(&c, 0, sizeof(c));
	/* a slow review: the first calls all queue before the connection may send more than one */
	atomic_store(&s->review_ms, 300);
	p = pool_new(&c, TOKEN1, 3000, 0);
	for (int i = 0; i < 5; i++) {
		m[i] = (struct mux){ .p = p, .s = s, .idx = i };
		assert_int_equal(pthread_create(&th[i], NULL, mux_worker, &m[i]), 0);
	}
	for (int i = 0; i < 5; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(m[i].ok, 20);
	}
	assert_int_equal(atomic_load(&s->job_calls), 100);
	assert_int_equal(atomic_load(&s->auth_calls), 1); /* one review for the connection */
	ch_server_get_stats(s->s.srv, &ss);
	assert_int_equal(ss.accepted, 1); /* one connection */
	ch_pool_get_stats(p, &ps);
	assert_int_equal(ps.connects, 1);
	assert_int_equal(ps.open, 1);
	assert_int_equal(ps.calls, 100);
	assert_int_equal(ps.calls_failed, 0);
	ch_pool_free(p);
	psrv_stop(s);
}

static void test_pushed_states(void **state)
{
	struct psrv *s = psrv_start(0, NULL, 0, 0);
	struct pctl c;
	struct ch_pool *p;
	struct ch_state st;
	char err[256];
	int64_t t0;

	(void)state;
	memset(&c, 0, sizeof(c));
	p = pool_new(&c, TOKEN1, 3000, 0);
	assert_int_equal(pcall(p, s, "push-1", &st, err, sizeof(err)), 0);
	assert_int_equal(st.state, CH_QUEUED);
	memset(&st, 0, sizeof(st));
	snprintf(st.uid, sizeof(st.uid), "push-1");
	st.state = CH_RUNNING;
	ch_server_notify(s->s.srv, &st);
	snprintf(st.uid, sizeof(st.uid), "someone-else"); /* never sent on this connection */
	ch_server_notify(s->s.srv, &st);
	snprintf(st.uid, sizeof(st.uid), "push-1");
	st.state = CH_SUCCEEDED;
	/* 511 quotes: ~1 KiB escaped, more than the pool's receive buffer: it arrives in pieces */
	memset(st.message, '"', sizeof(st.message) - 1);
	st.message[sizeof(st.message) - 1] = '\0';
	ch_server_notify(s->s.srv, &st);
	t0 = ch_now_ms();
	for (;;) {
		int n;

		pthread_mutex_lock(&c.mu);
		n = c.updates;
		pthread_mutex_unlock(&c.mu);
		if (n >= 2 || ch_now_ms() - t0 > 3000)
			break;
		usleep(10000);
	}
	usleep(100000);
	pthread_mutex_lock(&c.mu);
	assert_int_equal(c.updates, 2);
	assert_int_equal(c.foreign, 0);
	assert_string_equal(c.last_ns, "team-a");
	assert_string_equal(c.last_name, "cr-push-1");
	assert_string_equal(c.last_uid, "push-1");
	assert_int_equal(c.last_state, CH_SUCCEEDED);
	assert_int_equal(strlen(c.last_msg), sizeof(st.message) - 1);
	assert_int_equal(strspn(c.last_msg, "\""), sizeof(st.message) - 1);
	pthread_mutex_unlock(&c.mu);
	/* after the final state the uid is no longer followed */
	st.state = CH_FAILED;
	ch_server_notify(s->s.srv, &st);
	usleep(200000);
	pthread_mutex_lock(&c.mu);
	assert_int_equal(c.updates, 2);
	pthread_mutex_unlock(&c.mu);
	ch_pool_free(p);
	psrv_stop(s);
}

/* The server closes the connection (re-authentication, 1 s) while a job runs:
 * the pool reconnects at once and sends the job again (certificate included),
 * so the state the helper pushes after the reconnect arrives without a call. */
static void test_resubscribe_after_reconnect(void **state)
{
	struct psrv *s = psrv_start(0, NULL, 0, 1);
	struct pctl c;
	struct ch_pool *p;
	struct ch_pool_stats ps;
	struct ch_job job;
	struct ch_state st;
	char err[256];
	int64_t t0;
	bool got = false;

	(void)state;
	memset(&c, 0, sizeof(c));
	p = pool_new(&c, TOKEN1, 3000, 0);
	make_job(&job, "rs-1");
	job.cert_pem = strdup(CERT);
	assert_non_null(job.cert_pem);
	assert_int_equal(ch_pool_call(p, s->s.endpoint, s->s.fp, &job, 0, &st, err, sizeof(err)), 0);
	ch_job_cleanup(&job);
	assert_int_equal(st.state, CH_QUEUED);
	/* closed after 1 s; the job comes again on the next connection */
	assert_int_equal(wait_atomic(&s->job_calls, 2, 3000), 2);
	assert_int_equal(atomic_load(&s->jobs_with_cert), 2);
	memset(&st, 0, sizeof(st));
	snprintf(st.uid, sizeof(st.uid), "rs-1");
	st.state = CH_SUCCEEDED;
	t0 = ch_now_ms();
	ch_server_notify(s->s.srv, &st);
	while (!got && ch_now_ms() - t0 < 2000) {
		pthread_mutex_lock(&c.mu);
		got = strcmp(c.last_uid, "rs-1") == 0 && c.last_state == CH_SUCCEEDED;
		pthread_mutex_unlock(&c.mu);
		usleep(10000);
	}
	print_message("state pushed after the reconnect arrived in %lld ms\n",
		      (long long)(ch_now_ms() - t0));
	assert_true(got);
	pthread_mutex_lock(&c.mu);
	assert_string_equal(c.last_ns, "team-a");
	assert_string_equal(c.last_name, "cr-rs-1");
	pthread_mutex_unlock(&c.mu);
	ch_pool_get_stats(p, &ps);
	assert_int_equal(ps.calls, 1); /* no poll */
	assert_true(ps.reconnects >= 1);
	/* final: not followed any more, so the next close sends nothing again */
	usleep(1500000);
	assert_int_equal(atomic_load(&s->job_calls), 2);
	ch_pool_free(p);
	psrv_stop(s);
}

static void test_flood_refused_pool_served(void **state)
{
	struct psrv *s = psrv_start(0, NULL, 0, 0);
	struct pctl c;
	struct ch_pool *p;
	struct ch_server_stats ss;
	struct ch_state st;
	char err[256];
	int fds[40];
	int64_t t0;
	struct ch_call_opts o;
	struct ch_job job;
	int refused = 0;

	(void)state;
	memset(&c, 0, sizeof(c));
	p = pool_new(&c, TOKEN1, 3000, 0);
	assert_int_equal(pcall(p, s, "f-0", &st, err, sizeof(err)), 0);
	/* 40 silent connections from another peer: past 16 they are closed at accept */
	for (int i = 0; i < 40; i++)
		fds[i] = cts_raw_connect(s->s.port, "127.0.0.9");
	usleep(300000);
	ch_server_get_stats(s->s.srv, &ss);
	assert_true(ss.refused_peer + ss.refused_conn_rate >= 20);
	/* forged tokens: refused (1008 after a review), and past the peer's review
	 * budget (burst 4) not even reviewed (429) */
	memset(&o, 0, sizeof(o));
	o.endpoint = s->s.endpoint;
	o.fingerprint = s->s.fp;
	o.token = "forged-token.x.y";
	o.connect_timeout_ms = 2000;
	o.wait_ms = 0;
	make_job(&job, "forged");
	for (int i = 0; i < 8; i++) {
		int rc = ch_call(&o, &job, &st, err, sizeof(err));

		assert_true(rc == -EACCES || rc == -EAGAIN);
		refused += rc == -EAGAIN;
	}
	assert_true(refused >= 2);
	assert_true(atomic_load(&s->auth_calls) <= 1 + 6);
	/* meanwhile the pool's connection answers as ever */
	for (int i = 0; i < 10; i++) {
		char uid[16];

		snprintf(uid, sizeof(uid), "f-%d", i + 1);
		t0 = ch_now_ms();
		assert_int_equal(pcall(p, s, uid, &st, err, sizeof(err)), 0);
		assert_true(ch_now_ms() - t0 < 500);
	}
	for (int i = 0; i < 40; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	ch_pool_free(p);
	psrv_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_multiplex_one_connection),
		cmocka_unit_test(test_pushed_states),
		cmocka_unit_test(test_resubscribe_after_reconnect),
		cmocka_unit_test(test_flood_refused_pool_served),
	};

	cts_test_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
