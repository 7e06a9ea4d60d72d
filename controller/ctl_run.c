/*
 * ctl_run.c - daemon wiring (see ctl_run.h).
 */
#include "ctl_run.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "ch.h"
#include "ctl_io.h"
#include "ctl_leader.h"
#include "ctl_metrics.h"
#include "ctl_queue.h"
#include "ctl_trust.h"
#include "kc.h"
#include "log.h"
#include "mx.h"

#define SYNC_WAIT_MS 60000L
#define SYNC_SLICE_MS 5000L
#define WORKER_GET_MS 500L

struct pool {
	struct ctl_ctx *ctx;
	atomic_bool stop;
	size_t n;
	pthread_t th[64];
	bool running;
};

static volatile sig_atomic_t *stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	if (stop_flag)
		*stop_flag = 1;
}

void ctl_install_signals(volatile sig_atomic_t *stop)
{
	struct sigaction sa;

	stop_flag = stop;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static void *worker_main(void *arg)
{
	struct pool *p = arg;
	struct ctl_ctx *ctx = p->ctx;
	struct kc_client *c = NULL;
	char key[CTL_QUEUE_KEY_MAX];
	int rc;

	rc = kc_client_new(ctx->cfg, &c);
	if (rc) {
		LOG_ERROR("msg=\"worker cannot create a client\" rc=%d", rc);
		return NULL;
	}
	kc_client_set_user_agent(c, "podcheckpoint-controller");
	kc_client_set_timeout(c, 15000);
	while (!atomic_load(&p->stop)) {
		long requeue = -1;
		double t0;

		rc = ctl_queue_get(ctx->q, key, sizeof(key), WORKER_GET_MS);
		if (rc == -ETIMEDOUT)
			continue;
		if (rc)
			break;
		t0 = mx_now();
		rc = ctl_reconcile_key(ctx, c, key, &requeue);
		mx_observe(ctl_mx_reconcile_seconds, mx_now() - t0,
			   MX_LV(rc == 0 ? "success" : rc == -EAGAIN ? "conflict" : "error"));
		if (rc)
			mx_counter_add(ctl_mx_reconcile_errors, 1,
				       MX_LV(rc == -EAGAIN ? "conflict" : "error"));
		if (rc == -EAGAIN) {
			/* Conflict: the watch event of the newer object re-adds the key
			 * (no hot loop against a stale cache); this is the fallback. */
			ctl_queue_add_after(ctx->q, key, CTL_CONFLICT_RETRY_MS);
		} else if (rc) {
			LOG_WARN("msg=\"reconcile failed, retrying with backoff\" key=%s rc=%d failures=%u",
				 key, rc, ctl_queue_failures(ctx->q, key) + 1);
			ctl_queue_add_rate_limited(ctx->q, key);
		} else {
			ctl_queue_forget(ctx->q, key);
			if (requeue >= 0)
				ctl_queue_add_after(ctx->q, key, requeue);
		}
		ctl_queue_done(ctx->q, key);
	}
	kc_client_free(c);
	return NULL;
}

static void pool_start(void *arg)
{
	struct pool *p = arg;
	size_t want = (size_t)p->ctx->opts->workers;

	if (p->running)
		return;
	atomic_store(&p->stop, false);
	p->n = 0;
	for (size_t i = 0; i < want && i < sizeof(p->th) / sizeof(p->th[0]); i++) {
		if (pthread_create(&p->th[p->n], NULL, worker_main, p) != 0) {
			LOG_ERROR("msg=\"cannot start worker\" index=%zu", i);
			break;
		}
		p->n++;
	}
	p->running = true;
	LOG_INFO("msg=\"workers started\" workers=%zu", p->n);
	ctl_ctx_enqueue_all(p->ctx);
}

static void pool_stop(void *arg)
{
	struct pool *p = arg;

	if (!p->running)
		return;
	atomic_store(&p->stop, true);
	for (size_t i = 0; i < p->n; i++)
		pthread_join(p->th[i], NULL);
	p->n = 0;
	p->running = false;
	LOG_INFO("msg=\"workers stopped\"");
}

/* The pool's token: the channel token file, re-read at each connection and
 * about once a second (a rotation re-makes the connections). */
static int pool_token(void *arg, char *buf, size_t cap, char *err, size_t errlen)
{
	const struct ctl_options *opts = arg;

	return ctl_channel_token(opts->channel_token_file, buf, cap, err, errlen);
}

/* A helper pushed a later state of a job: look at the CR again now. */
static void pool_update(void *arg, const char *ns, const char *name, const struct ch_state *st)
{
	struct ctl_queue *q = arg;
	char key[CTL_QUEUE_KEY_MAX];

	(void)st;
	if (!ns[0] || !name[0] || snprintf(key, sizeof(key), "%s/%s", ns, name) >= (int)sizeof(key))
		return;
	(void)ctl_queue_add(q, key);
}

/*
 * Says at startup when the channel token is missing or unusable: every
 * dispatch would fail (the API token is never sent instead). Not fatal: a
 * projected token may appear a moment later; each call reads it again.
 */
static void check_channel_token(const struct ctl_options *opts)
{
	char *tok = calloc(1, CTL_CHANNEL_TOKEN_MAX);
	char err[512];

	if (!tok)
		return;
	if (ctl_channel_token(opts->channel_token_file, tok, CTL_CHANNEL_TOKEN_MAX, err, sizeof(err)) != 0)
		LOG_ERROR("msg=\"no channel token: node helpers will refuse every job\" error=\"%s\" "
			  "fix=\"mount a projected serviceAccountToken with audience %s at --channel-token-file\"",
			  err, CH_AUDIENCE);
	else
		LOG_INFO("msg=\"channel token\" file=%s audience=%s", opts->channel_token_file, CH_AUDIENCE);
	OPENSSL_cleanse(tok, CTL_CHANNEL_TOKEN_MAX);
	free(tok);
}

int ctl_run(const struct ctl_options *opts, volatile sig_atomic_t *stop)
{
	struct kc_config *cfg = NULL;
	struct ctl_queue *q = NULL;
	struct ctl_metrics *metrics = NULL;
	struct ch_pool *chpool = NULL;
	struct ctl_ctx ctx;
	struct pool pool;
	char err[512] = "";
	bool ctx_ok = false;
	int rc;

	memset(&pool, 0, sizeof(pool));
	memset(&ctx, 0, sizeof(ctx));
	/* One malloc arena, not 8 per core: every thread allocating in its own
	 * arena keeps freed memory scattered over many heaps (with two, at
	 * 10,000 CRs the second held 4 MiB resident for little in use). The
	 * controller's threads allocate little at once (tcache absorbs most). */
	mallopt(M_ARENA_MAX, 1);
	/* Fixed thresholds: glibc raises both after freeing one large block (a
	 * LIST page's buffer), and then keeps megabytes of freed heap; with
	 * these a large buffer is its own mapping and a free top of the heap
	 * above 256 KiB goes back at once. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_TRIM_THRESHOLD, 256 * 1024);
	log_set_component("controller");
	if (log_set_level_name(opts->log_level) != 0)
		LOG_WARN("msg=\"unknown log level, using info\" level=%s", opts->log_level);

	rc = kc_config_load_auto(opts->kubeconfig[0] ? opts->kubeconfig : NULL, &cfg, err, sizeof(err));
	if (rc) {
		LOG_ERROR("msg=\"cannot load the Kubernetes configuration\" error=\"%s\" rc=%d", err, rc);
		goto out;
	}
	rc = kc_config_set_rate_limit(cfg, opts->kube_api_qps, opts->kube_api_burst);
	if (rc) {
		LOG_ERROR("msg=\"cannot set the API client rate limit\" rc=%d", rc);
		goto out;
	}
	rc = ctl_queue_new(&q);
	if (rc)
		goto out;
	rc = ctl_ctx_init(&ctx, opts, cfg, q);
	if (rc)
		goto out;
	ctx_ok = true;
	{
		struct ch_pool_opts po = {
			.token = pool_token,
			.token_arg = (void *)(uintptr_t)opts,
			.on_update = pool_update,
			.update_arg = q,
			.connect_timeout_ms = CTL_CH_CONNECT_TIMEOUT_MS,
		};

		rc = ch_pool_new(&po, &chpool);
		if (rc) {
			LOG_ERROR("msg=\"cannot start the channel to the node helpers\" rc=%d", rc);
			goto out;
		}
		ctx.pool = chpool;
	}
	pool.ctx = &ctx;
	rc = ctl_metrics_start(opts, q, &metrics, err, sizeof(err));
	if (rc) {
		LOG_ERROR("msg=\"cannot serve metrics\" error=\"%s\" rc=%d", err, rc);
		goto out;
	}
	LOG_INFO("msg=\"starting\" server=%s namespace=%s watch=%s workers=%d helper_wait_s=%d job_margin_s=%d poll_s=%d kube_api_qps=%d kube_api_burst=%d leader_elect=%d identity=%s",
		 kc_config_server(cfg), opts->ns, opts->nwatch ? "some" : "all", opts->workers,
		 opts->helper_wait_seconds, opts->job_margin_seconds, opts->poll_seconds,
		 opts->kube_api_qps, opts->kube_api_burst, opts->leader_elect, opts->identity);
	check_channel_token(opts);
	rc = ctl_ctx_start_informers(&ctx);
	if (rc)
		goto out;
	for (long waited = 0;; waited += SYNC_SLICE_MS) {
		/* In slices, so /healthz sees this loop alive while the API server is away. */
		ctl_metrics_beat(metrics);
		rc = ctl_ctx_wait_synced(&ctx, SYNC_SLICE_MS, stop);
		if (rc != -ETIMEDOUT)
			break;
		if (waited && waited % SYNC_WAIT_MS == 0)
			LOG_WARN("msg=\"informers not synced yet, still waiting\" waited_ms=%ld", waited);
	}
	if (rc == -EINTR) {
		rc = 0;
		goto out;
	}
	LOG_INFO("msg=\"caches synced\"");
	ctl_metrics_set_synced(metrics, ctx.leases);

	if (opts->leader_elect) {
		struct ctl_leader_opts lo = {
			.cfg = cfg,
			.ns = opts->ns,
			.identity = opts->identity,
			.on_start = pool_start,
			.on_stop = pool_stop,
			.arg = &pool,
			.metrics = metrics,
		};

		rc = ctl_leader_run(&lo, stop);
	} else {
		pool_start(&pool);
		ctl_metrics_set_leading(metrics, true);
		while (!*stop) {
			struct timespec ts = { 0, 100 * 1000000L };

			ctl_metrics_beat(metrics);
			nanosleep(&ts, NULL);
		}
		pool_stop(&pool);
	}
out:
	pool_stop(&pool);
	ch_pool_free(chpool); /* no worker calls any more; its pushes add to q */
	ctx.pool = NULL;
	if (q)
		ctl_queue_shutdown(q);
	ctl_metrics_stop(metrics); /* its ticker reads the Lease records (ctl_leases) */
	if (ctx_ok)
		ctl_ctx_cleanup(&ctx);
	ctl_queue_free(q);
	kc_config_free(cfg);
	LOG_INFO("msg=\"stopped\" rc=%d", rc);
	return rc;
}
