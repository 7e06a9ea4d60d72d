/*
 * ctl_run.c - daemon wiring (see ctl_run.h).
 */
#include "ctl_run.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "ctl_io.h"
#include "ctl_leader.h"
#include "ctl_queue.h"
#include "kc.h"
#include "log.h"

#define SYNC_WAIT_MS 60000L
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

		rc = ctl_queue_get(ctx->q, key, sizeof(key), WORKER_GET_MS);
		if (rc == -ETIMEDOUT)
			continue;
		if (rc)
			break;
		rc = ctl_reconcile_key(ctx, c, key, &requeue);
		if (rc == -EAGAIN) {
			/* Conflict: decide again as soon as the cache has the new object. */
			ctl_queue_add_rate_limited(ctx->q, key);
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

int ctl_run(const struct ctl_options *opts, volatile sig_atomic_t *stop)
{
	struct kc_config *cfg = NULL;
	struct ctl_queue *q = NULL;
	struct ctl_ctx ctx;
	struct pool pool;
	char err[512] = "";
	bool ctx_ok = false;
	int rc;

	memset(&pool, 0, sizeof(pool));
	memset(&ctx, 0, sizeof(ctx));
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
	pool.ctx = &ctx;
	LOG_INFO("msg=\"starting\" server=%s namespace=%s watch=%s workers=%d helper_wait_s=%d job_margin_s=%d poll_s=%d kube_api_qps=%d kube_api_burst=%d leader_elect=%d identity=%s",
		 kc_config_server(cfg), opts->ns, opts->nwatch ? "some" : "all", opts->workers,
		 opts->helper_wait_seconds, opts->job_margin_seconds, opts->poll_seconds,
		 opts->kube_api_qps, opts->kube_api_burst, opts->leader_elect, opts->identity);
	rc = ctl_ctx_start_informers(&ctx);
	if (rc)
		goto out;
	for (;;) {
		rc = ctl_ctx_wait_synced(&ctx, SYNC_WAIT_MS, stop);
		if (rc != -ETIMEDOUT)
			break;
		LOG_WARN("msg=\"informers not synced yet, still waiting\" waited_ms=%ld", SYNC_WAIT_MS);
	}
	if (rc == -EINTR) {
		rc = 0;
		goto out;
	}
	LOG_INFO("msg=\"caches synced\"");

	if (opts->leader_elect) {
		struct ctl_leader_opts lo = {
			.cfg = cfg,
			.ns = opts->ns,
			.identity = opts->identity,
			.on_start = pool_start,
			.on_stop = pool_stop,
			.arg = &pool,
		};

		rc = ctl_leader_run(&lo, stop);
	} else {
		pool_start(&pool);
		while (!*stop) {
			struct timespec ts = { 0, 100 * 1000000L };

			nanosleep(&ts, NULL);
		}
		pool_stop(&pool);
	}
out:
	pool_stop(&pool);
	if (q)
		ctl_queue_shutdown(q);
	if (ctx_ok)
		ctl_ctx_cleanup(&ctx);
	ctl_queue_free(q);
	kc_config_free(cfg);
	LOG_INFO("msg=\"stopped\" rc=%d", rc);
	return rc;
}
