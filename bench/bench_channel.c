/*
 * bench_channel - calls per second to one local node helper server (a real
 * ch_server on 127.0.0.1, on_job answering "queued" at once, the token
 * allowed from a cache after its first review, as the helper does) through
 *   ch_call  a fresh connection per call (TCP + TLS + upgrade + job), and
 *   ch_pool  one long-lived connection, many jobs on it,
 * each from W threads (the controller's --workers, default 2). Prints
 *   RESULT name=<n> workers=<w> calls=<c> seconds=<s> calls_per_s=<r>
 * and the ratio pool/call.
 *
 *   bench_channel [WORKERS [CALLS_CH_CALL [CALLS_POOL]]]   (default 2 300 20000)
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ch.h"
#include "log.h"

#define TOKEN "bench-token.x.y"

static atomic_int reviewed;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int b_precheck(void *arg, const char *token)
{
	(void)arg;
	return atomic_load(&reviewed) && strcmp(token, TOKEN) == 0 ? CH_AUTH_ALLOW : CH_AUTH_REVIEW;
}

static int b_auth(void *arg, const char *token)
{
	(void)arg;
	if (strcmp(token, TOKEN) != 0)
		return -1;
	atomic_store(&reviewed, 1);
	return 0;
}

static int b_job(void *arg, const struct ch_job *job, struct ch_state *now)
{
	(void)arg;
	(void)job;
	now->state = CH_QUEUED;
	return 0;
}

static volatile sig_atomic_t stop_srv;

static void *srv_main(void *arg)
{
	(void)ch_server_run(arg, &stop_srv);
	return NULL;
}

static int b_token(void *arg, char *buf, size_t cap, char *err, size_t errlen)
{
	(void)arg;
	(void)err;
	(void)errlen;
	snprintf(buf, cap, "%s", TOKEN);
	return 0;
}

struct run {
	const char *endpoint, *fp;
	struct ch_pool *pool; /* NULL: ch_call */
	int idx, calls, failed;
};

static void *worker(void *arg)
{
	struct run *r = arg;
	struct ch_call_opts o = { .endpoint = r->endpoint, .fingerprint = r->fp, .token = TOKEN,
				  .connect_timeout_ms = 3000, .wait_ms = 0 };
	struct ch_job job;
	struct ch_state st;
	char err[256];

	for (int i = 0; i < r->calls; i++) {
		int rc;

		memset(&job, 0, sizeof(job));
		job.op = CH_OP_CHECKPOINT;
		snprintf(job.uid, sizeof(job.uid), "w%d-%d", r->idx, i);
		snprintf(job.ns, sizeof(job.ns), "bench");
		snprintf(job.name, sizeof(job.name), "cr-%d-%d", r->idx, i);
		rc = r->pool ? ch_pool_call(r->pool, r->endpoint, r->fp, &job, 0, &st, err, sizeof(err))
			     : ch_call(&o, &job, &st, err, sizeof(err));
		if (rc)
			r->failed++;
	}
	return NULL;
}

static double measure(const char *name, const char *ep, const char *fp, struct ch_pool *pool,
		      int workers, int calls)
{
	pthread_t th[64];
	struct run r[64];
	double t0 = now_s(), dt, rate;
	int failed = 0;

	for (int i = 0; i < workers; i++) {
		r[i] = (struct run){ .endpoint = ep, .fp = fp, .pool = pool, .idx = i,
				     .calls = calls / workers };
		if (pthread_create(&th[i], NULL, worker, &r[i]) != 0)
			return -1;
	}
	for (int i = 0; i < workers; i++) {
		pthread_join(th[i], NULL);
		failed += r[i].failed;
	}
	dt = now_s() - t0;
	rate = (double)(calls / workers * workers) / dt;
	printf("RESULT name=%s workers=%d calls=%d failed=%d seconds=%.3f calls_per_s=%.1f\n", name,
	       workers, calls / workers * workers, failed, dt, rate);
	return failed ? -1 : rate;
}

int main(int argc, char **argv)
{
	int workers = argc > 1 ? atoi(argv[1]) : 2;
	int n_call = argc > 2 ? atoi(argv[2]) : 300;
	int n_pool = argc > 3 ? atoi(argv[3]) : 20000;
	struct ch_server_opts so;
	struct ch_server *srv = NULL;
	struct ch_pool_opts po;
	struct ch_pool *pool = NULL;
	pthread_t sth;
	char *cert = NULL, *key = NULL, fp[65], ep[64];
	double a, b;
	int rc = 1;

	if (workers < 1 || workers > 64 || n_call < workers || n_pool < workers) {
		fprintf(stderr, "usage: bench_channel [WORKERS(1-64) [CALLS_CH_CALL [CALLS_POOL]]]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	ch_set_lws_log_levels(0);
	log_threshold = LOG_LVL_ERROR;
	if (ch_make_self_signed("127.0.0.1", 2, &cert, &key, fp) != 0)
		goto out;
	memset(&so, 0, sizeof(so));
	so.bind_address = "127.0.0.1";
	so.cert_pem = cert;
	so.key_pem = key;
	so.ops.precheck = b_precheck;
	so.ops.authenticate = b_auth;
	so.ops.on_job = b_job;
	/* the guard's per-peer connection rate would throttle ch_call, not the pool */
	so.conns_per_peer_per_s = 100000;
	so.max_conns_per_peer = 64;
	if (ch_server_new(&so, &srv) != 0 || pthread_create(&sth, NULL, srv_main, srv) != 0)
		goto out;
	snprintf(ep, sizeof(ep), "wss://127.0.0.1:%d", ch_server_port(srv));
	memset(&po, 0, sizeof(po));
	po.token = b_token;
	if (ch_pool_new(&po, &pool) != 0)
		goto out_srv;
	a = measure("ch_call", ep, fp, NULL, workers, n_call);
	b = measure("ch_pool", ep, fp, pool, workers, n_pool);
	if (a > 0 && b > 0) {
		printf("RESULT name=ratio pool_over_call=%.1f\n", b / a);
		rc = 0;
	}
	ch_pool_free(pool);
out_srv:
	stop_srv = 1;
	pthread_join(sth, NULL);
out:
	ch_server_free(srv);
	free(cert);
	free(key);
	return rc;
}
