/*
 * ch_testpool.c - see ch_testpool.h.
 */
#include "ch_testpool.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ch_internal.h"

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

struct psrv *psrv_start(int port, const struct psrv *like, int idle_s, int reauth_s)
{
	struct psrv *s = calloc(1, sizeof(*s));
	struct ch_server_opts o;

	assert_non_null(s);
	pthread_mutex_init(&s->mu, NULL);
	memset(&o, 0, sizeof(o));
	o.ops.authenticate = s_auth;
	o.ops.on_job = s_job;
	o.ops.expires = s_expires;
	o.ops.arg = s;
	o.idle_timeout_s = idle_s;
	o.reauth_s = reauth_s;
	cts_start(&s->s, &o, port, like ? &like->s : NULL);
	return s;
}

void psrv_stop(struct psrv *s)
{
	cts_stop(&s->s);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* ---------------------------------------------------------------- the pool's callbacks */

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
	snprintf(c->last_msg, sizeof(c->last_msg), "%s", st->message);
	pthread_mutex_unlock(&c->mu);
}

struct ch_pool *pool_new(struct pctl *c, const char *token, long connect_ms, long ping_ms)
{
	return pool_new_idle(c, token, connect_ms, ping_ms, 0);
}

struct ch_pool *pool_new_idle(struct pctl *c, const char *token, long connect_ms, long ping_ms,
			      long idle_ms)
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
	o.idle_ms = idle_ms;
	assert_int_equal(ch_pool_new(&o, &p), 0);
	return p;
}

void set_token(struct pctl *c, const char *token)
{
	pthread_mutex_lock(&c->mu);
	snprintf(c->token, sizeof(c->token), "%s", token);
	pthread_mutex_unlock(&c->mu);
}

void make_job(struct ch_job *j, const char *uid)
{
	memset(j, 0, sizeof(*j));
	j->op = CH_OP_CHECKPOINT;
	snprintf(j->uid, sizeof(j->uid), "%s", uid);
	snprintf(j->ns, sizeof(j->ns), "team-a");
	snprintf(j->name, sizeof(j->name), "cr-%s", uid);
}

int pcall(struct ch_pool *p, const struct psrv *s, const char *uid, struct ch_state *st,
		 char *err, size_t errlen)
{
	struct ch_job job;

	make_job(&job, uid);
	return ch_pool_call(p, s->s.endpoint, s->s.fp, &job, 0, st, err, errlen);
}

int wait_atomic(atomic_int *v, int want, long ms)
{
	int64_t end = ch_now_ms() + ms;

	while (atomic_load(v) < want && ch_now_ms() < end)
		usleep(10000);
	return atomic_load(v);
}

int call_until_ok(struct ch_pool *p, const struct psrv *s, long ms, int *failures)
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
