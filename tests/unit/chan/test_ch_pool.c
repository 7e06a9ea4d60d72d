/*
 * The client pool (ch_pool.c) against real ch_server threads on 127.0.0.1:
 * many jobs on one connection (one TokenReview, one message before the
 * review's answer), pushed states to on_update, reconnect after a server
 * restart, a new pin, an unreachable endpoint that does not hold up another,
 * token rotation, the server's idle timeout and re-authentication, and the
 * guard still refusing a flood while the pool's connection works.
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
#include "log.h"

#define TOKEN1 "pool-token-one.x.y"
#define TOKEN2 "pool-token-two.x.y"
#define CERT "-----BEGIN CERTIFICATE-----\nrecipient\n-----END CERTIFICATE-----\n"

struct psrv {
	struct ch_server *srv;
	pthread_t th;
	volatile sig_atomic_t stop;
	char *cert, *key;
	char fp[65];
	int port;
	char endpoint[64];
	atomic_int auth_calls;
	atomic_int job_calls;
	atomic_int jobs_with_cert; /* checkpoint jobs that carried CERT */
	atomic_int review_ms;
	atomic_int exp_in_s; /* ops.expires: the token expires this many seconds from now (0: unknown) */
	pthread_mutex_t mu;
	char got_token[64];
};

static int s_auth(void *arg, const char *token)
{
	struct psrv *s = arg;
	int ms = atomic_load(&s->review_ms);

	atomic_fetch_add(&s->auth_calls, 1);
	if (ms > 0)
		usleep((useconds_t)ms * 1000u);
	pthread_mutex_lock(&s->mu);
	snprintf(s->got_token, sizeof(s->got_token), "%s", token);
	pthread_mutex_unlock(&s->mu);
	return strncmp(token, "pool-token-", 11) == 0 ? 0 : -1;
}

static int64_t s_expires(void *arg, const char *token)
{
	struct psrv *s = arg;
	int in = atomic_load(&s->exp_in_s);

	(void)token;
	return in > 0 ? (int64_t)time(NULL) + in : 0;
}

static int s_job(void *arg, const struct ch_job *job, struct ch_state *now)
{
	struct psrv *s = arg;

	atomic_fetch_add(&s->job_calls, 1);
	if (job->cert_pem && strcmp(job->cert_pem, CERT) == 0)
		atomic_fetch_add(&s->jobs_with_cert, 1);
	now->state = CH_QUEUED;
	return 0;
}

static void *s_run(void *arg)
{
	struct psrv *s = arg;

	(void)ch_server_run(s->srv, &s->stop);
	return NULL;
}

/* A server on `port` (0: any) with the certificate of `like` (NULL: a new one). */
static struct psrv *psrv_start(int port, const struct psrv *like, int idle_s, int reauth_s)
{
	struct psrv *s = calloc(1, sizeof(*s));
	struct ch_server_opts o;
	int rc = -1;

	assert_non_null(s);
	pthread_mutex_init(&s->mu, NULL);
	if (like) {
		s->cert = strdup(like->cert);
		s->key = strdup(like->key);
		memcpy(s->fp, like->fp, sizeof(s->fp));
	} else {
		assert_int_equal(ch_make_self_signed("127.0.0.1", 2, &s->cert, &s->key, s->fp), 0);
	}
	memset(&o, 0, sizeof(o));
	o.bind_address = "127.0.0.1";
	o.port = port;
	o.cert_pem = s->cert;
	o.key_pem = s->key;
	o.ops.authenticate = s_auth;
	o.ops.on_job = s_job;
	o.ops.expires = s_expires;
	o.ops.arg = s;
	o.idle_timeout_s = idle_s;
	o.reauth_s = reauth_s;
	/* the port of a server just stopped may take a moment to be free again */
	for (int i = 0; i < 50 && rc != 0; i++) {
		rc = ch_server_new(&o, &s->srv);
		if (rc)
			usleep(100000);
	}
	assert_int_equal(rc, 0);
	s->port = ch_server_port(s->srv);
	snprintf(s->endpoint, sizeof(s->endpoint), "wss://127.0.0.1:%d", s->port);
	assert_int_equal(pthread_create(&s->th, NULL, s_run, s), 0);
	return s;
}

static void psrv_stop(struct psrv *s)
{
	s->stop = 1;
	pthread_join(s->th, NULL);
	ch_server_free(s->srv);
	free(s->cert);
	free(s->key);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* ---------------------------------------------------------------- the pool's callbacks */

struct pctl {
	pthread_mutex_t mu;
	char token[64];
	int updates;
	char last_ns[64], last_name[64], last_uid[64];
	enum ch_state_kind last_state;
	int foreign;
};

static int p_token(void *arg, char *buf, size_t cap, char *err, size_t errlen)
{
	struct pctl *c = arg;

	(void)err;
	(void)errlen;
	pthread_mutex_lock(&c->mu);
	snprintf(buf, cap, "%s", c->token);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

static void p_update(void *arg, const char *ns, const char *name, const struct ch_state *st)
{
	struct pctl *c = arg;

	pthread_mutex_lock(&c->mu);
	c->updates++;
	if (strcmp(st->uid, "someone-else") == 0)
		c->foreign++;
	snprintf(c->last_ns, sizeof(c->last_ns), "%s", ns);
	snprintf(c->last_name, sizeof(c->last_name), "%s", name);
	snprintf(c->last_uid, sizeof(c->last_uid), "%s", st->uid);
	c->last_state = st->state;
	pthread_mutex_unlock(&c->mu);
}

static struct ch_pool *pool_new(struct pctl *c, const char *token, long connect_ms, long ping_ms)
{
	struct ch_pool_opts o;
	struct ch_pool *p = NULL;

	pthread_mutex_init(&c->mu, NULL);
	snprintf(c->token, sizeof(c->token), "%s", token);
	memset(&o, 0, sizeof(o));
	o.token = p_token;
	o.token_arg = c;
	o.on_update = p_update;
	o.update_arg = c;
	o.connect_timeout_ms = connect_ms;
	o.answer_timeout_ms = 3000;
	o.ping_ms = ping_ms;
	assert_int_equal(ch_pool_new(&o, &p), 0);
	return p;
}

static void set_token(struct pctl *c, const char *token)
{
	pthread_mutex_lock(&c->mu);
	snprintf(c->token, sizeof(c->token), "%s", token);
	pthread_mutex_unlock(&c->mu);
}

static void make_job(struct ch_job *j, const char *uid)
{
	memset(j, 0, sizeof(*j));
	j->op = CH_OP_CHECKPOINT;
	snprintf(j->uid, sizeof(j->uid), "%s", uid);
	snprintf(j->ns, sizeof(j->ns), "team-a");
	snprintf(j->name, sizeof(j->name), "cr-%s", uid);
}

static int pcall(struct ch_pool *p, const struct psrv *s, const char *uid, struct ch_state *st,
		 char *err, size_t errlen)
{
	struct ch_job job;

	make_job(&job, uid);
	return ch_pool_call(p, s->endpoint, s->fp, &job, 0, st, err, errlen);
}

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
	ch_server_get_stats(s->srv, &ss);
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
	ch_server_notify(s->srv, &st);
	snprintf(st.uid, sizeof(st.uid), "someone-else"); /* never sent on this connection */
	ch_server_notify(s->srv, &st);
	snprintf(st.uid, sizeof(st.uid), "push-1");
	st.state = CH_SUCCEEDED;
	ch_server_notify(s->srv, &st);
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
	pthread_mutex_unlock(&c.mu);
	/* after the final state the uid is no longer followed */
	st.state = CH_FAILED;
	ch_server_notify(s->srv, &st);
	usleep(200000);
	pthread_mutex_lock(&c.mu);
	assert_int_equal(c.updates, 2);
	pthread_mutex_unlock(&c.mu);
	ch_pool_free(p);
	psrv_stop(s);
}

/* Waits (bounded) until *v reaches want; its value. */
static int wait_atomic(atomic_int *v, int want, long ms)
{
	int64_t end = ch_now_ms() + ms;

	while (atomic_load(v) < want && ch_now_ms() < end)
		usleep(10000);
	return atomic_load(v);
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
	assert_int_equal(ch_pool_call(p, s->endpoint, s->fp, &job, 0, &st, err, sizeof(err)), 0);
	ch_job_cleanup(&job);
	assert_int_equal(st.state, CH_QUEUED);
	/* closed after 1 s; the job comes again on the next connection */
	assert_int_equal(wait_atomic(&s->job_calls, 2, 3000), 2);
	assert_int_equal(atomic_load(&s->jobs_with_cert), 2);
	memset(&st, 0, sizeof(st));
	snprintf(st.uid, sizeof(st.uid), "rs-1");
	st.state = CH_SUCCEEDED;
	t0 = ch_now_ms();
	ch_server_notify(s->srv, &st);
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

/* Calls until one succeeds (the pool re-connects in the background), within ms. */
static int call_until_ok(struct ch_pool *p, const struct psrv *s, long ms, int *failures)
{
	struct ch_state st;
	char err[256];
	int64_t end = ch_now_ms() + ms;
	int rc;

	*failures = 0;
	while ((rc = pcall(p, s, "again", &st, err, sizeof(err))) != 0 && ch_now_ms() < end) {
		(*failures)++;
		usleep(20000);
	}
	return rc;
}

static void test_reconnect_after_restart_and_new_pin(void **state)
{
	struct psrv *s = psrv_start(0, NULL, 0, 0), *s2;
	struct pctl c;
	struct ch_pool *p;
	struct ch_pool_stats ps;
	struct ch_state st;
	char err[256], oldfp[65];
	int port = s->port, fails;
	int64_t t0;

	(void)state;
	memset(&c, 0, sizeof(c));
	p = pool_new(&c, TOKEN1, 3000, 0);
	assert_int_equal(pcall(p, s, "r-1", &st, err, sizeof(err)), 0);

	/* the helper restarts with the same certificate on the same port */
	s2 = psrv_start(0, NULL, 0, 0); /* (only to own a certificate copy) */
	memcpy(oldfp, s->fp, sizeof(oldfp));
	{
		struct psrv keep = { 0 };

		keep.cert = strdup(s->cert);
		keep.key = strdup(s->key);
		memcpy(keep.fp, s->fp, sizeof(keep.fp));
		psrv_stop(s);
		/* while it is down a call fails, and at once once the pool backs off */
		t0 = ch_now_ms();
		{
			struct psrv down = { 0 };

			snprintf(down.endpoint, sizeof(down.endpoint), "wss://127.0.0.1:%d", port);
			memcpy(down.fp, oldfp, sizeof(down.fp));
			assert_int_equal(pcall(p, &down, "r-2", &st, err, sizeof(err)), -ECONNREFUSED);
			t0 = ch_now_ms();
			assert_int_equal(pcall(p, &down, "r-3", &st, err, sizeof(err)), -ECONNREFUSED);
			assert_true(ch_now_ms() - t0 < 50);
			assert_non_null(strstr(err, "retrying"));
		}
		s = psrv_start(port, &keep, 0, 0);
		free(keep.cert);
		free(keep.key);
	}
	assert_int_equal(call_until_ok(p, s, 3000, &fails), 0);
	ch_pool_get_stats(p, &ps);
	assert_true(ps.reconnects >= 1);
	assert_true(ps.connect_failures >= 1);

	/* a new certificate on the same port: the old pin is refused, the new one works */
	{
		int port2 = s->port;
		struct psrv *n;

		psrv_stop(s);
		n = psrv_start(port2, s2, 0, 0); /* s2's certificate, a different fingerprint */
		{
			struct psrv old = { 0 };

			memcpy(old.endpoint, n->endpoint, sizeof(old.endpoint));
			memcpy(old.fp, oldfp, sizeof(old.fp));
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
	memcpy(sc.fp, s->fp, sizeof(sc.fp));
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
	ch_server_get_stats(s->srv, &ss);
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

/* A TCP connection from source address src to the server. */
static int raw_connect(int port, const char *src)
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
		fds[i] = raw_connect(s->port, "127.0.0.9");
	usleep(300000);
	ch_server_get_stats(s->srv, &ss);
	assert_true(ss.refused_peer + ss.refused_conn_rate >= 20);
	/* forged tokens: refused (1008 after a review), and past the peer's review
	 * budget (burst 4) not even reviewed (429) */
	memset(&o, 0, sizeof(o));
	o.endpoint = s->endpoint;
	o.fingerprint = s->fp;
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
		cmocka_unit_test(test_reconnect_after_restart_and_new_pin),
		cmocka_unit_test(test_unreachable_does_not_block_others),
		cmocka_unit_test(test_token_rotation),
		cmocka_unit_test(test_idle_keepalive_and_reauth),
		cmocka_unit_test(test_flood_refused_pool_served),
	};

	signal(SIGPIPE, SIG_IGN);
	if (!getenv("PCP_TEST_VERBOSE")) {
		ch_set_lws_log_levels(0);
		log_threshold = LOG_LVL_ERROR;
	} else {
		log_threshold = LOG_LVL_DEBUG;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
