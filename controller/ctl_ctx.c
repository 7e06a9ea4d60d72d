/*
 * ctl_ctx.c - the controller's shared context: the informers (projection
 * mode, kc.h) feeding the compact cache (ctl_store.h), and who is woken by
 * which event.
 *
 * Wake-ups, each O(what it concerns), never a walk of every CR:
 *   - a CR event enqueues that CR; a CR that is (now) terminal or deleted
 *     also wakes the non-terminal CRs naming the same pod (the pod is free);
 *   - a pod event wakes the non-terminal CRs naming that pod (index);
 *   - no periodic resync of pods; for CRs a slow safety-net pass
 *     (CTL_SAFETY_PASS_SECONDS, one CR per millisecond through the queue's
 *     delayed adds): the reconciles that depend on time ask for their own
 *     requeue.
 */
#include "ctl_io.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "ctl_gather.h"
#include "ctl_mem.h"
#include "ctl_store.h"
#include "log.h"

/*
 * Every malloc_trim of the controller goes through ctl_ctx_trim_idle: after
 * a LIST (the sweeps) and from the cron. The store's records live in slabs
 * that go back to the system as their blocks empty (ctl_slab.h); what malloc
 * frees is event trees, job memory and connection state.
 */
void ctl_ctx_trim_idle(void)
{
	struct mallinfo2 mi = mallinfo2();

	if (mi.fordblks >= CTL_TRIM_IDLE_BYTES)
		malloc_trim(0);
}

static size_t inf_index(struct ctl_ctx *ctx, const char *ns)
{
	if (ctx->opts->nwatch == 0)
		return 0;
	for (size_t i = 0; i < ctx->opts->nwatch; i++)
		if (strcmp(ctx->opts->watch_ns[i], ns) == 0)
			return i;
	return (size_t)-1;
}

struct ctl_store *ctl_ctx_store(struct ctl_ctx *ctx, const char *ns)
{
	size_t i = ns ? inf_index(ctx, ns) : (size_t)-1;

	if (i == (size_t)-1 || i >= ctx->ninf)
		return NULL;
	return ctx->bind[i].store;
}

static void enqueue_key(void *arg, const char *key)
{
	ctl_queue_add(((struct ctl_ctx *)arg)->q, key);
}

static void enqueue(struct ctl_ctx *ctx, const char *ns, const char *name)
{
	char key[CTL_QUEUE_KEY_MAX];

	if (snprintf(key, sizeof(key), "%s/%s", ns, name) < (int)sizeof(key))
		ctl_queue_add(ctx->q, key);
}

/* The pod is free again (or changed): wake the CRs waiting for it. */
static void wake_pod(struct ctl_bind *b, const char *ns, const char *pod, const char *self)
{
	if (pod && pod[0])
		ctl_store_wake_pod(b->store, ns, pod, self, enqueue_key, b->ctx);
}

/* ---------------------------------------------------------------- PodCheckpoints */

static int on_pcp(void *arg, enum kc_event_type type, json_object *obj, uint64_t epoch)
{
	struct ctl_bind *b = arg;
	struct ctl_store_change chg;
	const char *ns = kc_json_str(obj, "metadata.namespace");
	const char *name = kc_json_str(obj, "metadata.name");
	char nsb[CTL_NS_MAX], nameb[CTL_NAME_MAX];
	int rc;

	if (!ns || !name)
		return 0;
	/* obj is stripped in place by the put: keep the names. */
	ctl_copy(nsb, sizeof(nsb), ns);
	ctl_copy(nameb, sizeof(nameb), name);
	if (type == KC_DELETED) {
		ctl_mem_forget(b->ctx->mem, kc_json_str(obj, "metadata.uid"));
		if (ctl_store_pcp_delete(b->store, nsb, nameb, &chg) == 0)
			wake_pod(b, nsb, chg.pod, nameb);
		return 0;
	}
	rc = ctl_store_pcp_put(b->store, obj, epoch, &chg);
	if (rc == -EINVAL) {
		LOG_WARN("msg=\"PodCheckpoint not cached: malformed\" pcp=%s/%s", nsb, nameb);
		return 0;
	}
	if (rc)
		return rc; /* out of memory: the informer retries */
	enqueue(b->ctx, nsb, nameb);
	if (chg.terminal)
		wake_pod(b, nsb, chg.pod, nameb);
	return 0;
}

static void on_pcp_gone(void *arg, const char *ns, const char *name, const char *uid,
			const char *pod)
{
	struct ctl_bind *b = arg;

	ctl_mem_forget(b->ctx->mem, uid);
	wake_pod(b, ns, pod, name);
}

static void pcp_sweep(void *arg, uint64_t epoch)
{
	struct ctl_bind *b = arg;

	ctl_store_pcp_sweep(b->store, epoch, on_pcp_gone, b);
	ctl_ctx_trim_idle(); /* after a LIST: its pages are freed */
}

struct spread {
	struct ctl_queue *q;
	long delay_ms;
};

static void add_spread(void *arg, const char *key)
{
	struct spread *sp = arg;

	ctl_queue_add_after(sp->q, key, ++sp->delay_ms);
}

/* The safety-net pass (informer thread): every CR again, 1 per ms. */
static void pcp_resync(void *arg)
{
	struct ctl_bind *b = arg;
	struct spread sp = { .q = b->ctx->q, .delay_ms = 0 };

	ctl_store_pcp_foreach_key(b->store, add_spread, &sp);
	LOG_DEBUG("msg=\"safety-net pass\" crs=%ld", sp.delay_ms);
}

/* ---------------------------------------------------------------- pods */

static int on_pod(void *arg, enum kc_event_type type, json_object *obj, uint64_t epoch)
{
	struct ctl_bind *b = arg;
	const char *ns = kc_json_str(obj, "metadata.namespace");
	const char *name = kc_json_str(obj, "metadata.name");
	int rc = 0;

	if (!ns || !name)
		return 0;
	if (type == KC_DELETED)
		(void)ctl_store_pod_delete(b->store, ns, name);
	else
		rc = ctl_store_pod_put(b->store, obj, epoch);
	if (rc == -EINVAL)
		rc = 0;
	if (!rc)
		wake_pod(b, ns, name, NULL);
	return rc;
}

static void on_pod_gone(void *arg, const char *ns, const char *name, const char *uid,
			const char *pod)
{
	(void)uid;
	(void)pod;
	wake_pod(arg, ns, name, NULL);
}

static void pod_sweep(void *arg, uint64_t epoch)
{
	struct ctl_bind *b = arg;

	ctl_store_pod_sweep(b->store, epoch, on_pod_gone, b);
	ctl_ctx_trim_idle();
}

/* ---------------------------------------------------------------- context */

void ctl_ctx_enqueue_all(struct ctl_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ninf; i++)
		if (ctx->bind[i].store)
			ctl_store_pcp_foreach_key(ctx->bind[i].store, enqueue_key, ctx);
}

int ctl_ctx_init(struct ctl_ctx *ctx, const struct ctl_options *opts, struct kc_config *cfg,
		 struct ctl_queue *q)
{
	int rc;

	memset(ctx, 0, sizeof(*ctx));
	ctx->opts = opts;
	ctx->cfg = cfg;
	ctx->q = q;
	ctx->pol.helper_wait_seconds = opts->helper_wait_seconds;
	ctx->pol.job_margin_seconds = opts->job_margin_seconds;
	ctx->pol.queue_wait_seconds = opts->queue_wait_seconds;
	ctx->pol.poll_seconds = opts->poll_seconds;
	ctx->pol.allow_expired = opts->allow_expired;
	ctx->src.controller = CTL_REPORTING_CONTROLLER;
	ctx->src.instance = opts->identity;
	ctx->ninf = opts->nwatch ? opts->nwatch : 1;
	rc = ctl_leases_new(&ctx->leases);
	if (!rc)
		rc = ctl_mem_table_new(&ctx->mem);
	if (!rc)
		rc = ctl_node_cache_new(&ctx->nodes);
	for (size_t i = 0; !rc && i < ctx->ninf; i++) {
		ctx->bind[i].ctx = ctx;
		rc = ctl_store_new(&ctx->bind[i].store);
	}
	if (rc)
		ctl_ctx_cleanup(ctx);
	return rc;
}

int ctl_ctx_start_informers(struct ctl_ctx *ctx)
{
	/* The helpers' Leases (one per node, plus the leader's): read at every
	 * decision that needs a helper, so a cache, not a GET per reconcile. */
	struct kc_informer_opts lo = {
		.res = &KC_RES_LEASES,
		.ns = ctx->opts->ns,
		.arg = ctx->leases,
		.project = ctl_leases_project,
		.sweep = ctl_leases_sweep,
	};
	int rc = kc_informer_start(ctx->cfg, &lo, &ctx->lease_inf);

	if (rc) {
		LOG_ERROR("msg=\"cannot start informer\" resource=leases ns=%s rc=%d", ctx->opts->ns, rc);
		return rc;
	}

	for (size_t i = 0; i < ctx->ninf; i++) {
		const char *ns = ctx->opts->nwatch ? ctx->opts->watch_ns[i] : NULL;
		struct kc_informer_opts io = {
			.res = &KC_RES_PODCHECKPOINTS,
			.ns = ns,
			.arg = &ctx->bind[i],
			.project = on_pcp,
			.sweep = pcp_sweep,
			.resync = pcp_resync,
			.resync_seconds = CTL_SAFETY_PASS_SECONDS,
		};

		rc = kc_informer_start(ctx->cfg, &io, &ctx->pcp_inf[i]);
		if (rc) {
			LOG_ERROR("msg=\"cannot start informer\" resource=podcheckpoints ns=%s rc=%d",
				  ns ? ns : "*", rc);
			goto out;
		}
		io.res = &KC_RES_PODS;
		io.project = on_pod;
		io.sweep = pod_sweep;
		io.resync = NULL;
		io.resync_seconds = 0; /* a pod changes only by its events */
		rc = kc_informer_start(ctx->cfg, &io, &ctx->pod_inf[i]);
		if (rc) {
			LOG_ERROR("msg=\"cannot start informer\" resource=pods ns=%s rc=%d",
				  ns ? ns : "*", rc);
			goto out;
		}
	}
out:
	return rc;
}

int ctl_ctx_wait_synced(struct ctl_ctx *ctx, long timeout_ms, volatile sig_atomic_t *stop)
{
	long waited = 0;

	while (ctx->lease_inf && kc_informer_wait_synced(ctx->lease_inf, 200) != 0) {
		waited += 200;
		if (stop && *stop)
			return -EINTR;
		if (waited >= timeout_ms)
			return -ETIMEDOUT;
	}
	for (size_t i = 0; i < ctx->ninf; i++) {
		struct kc_informer *all[2] = { ctx->pcp_inf[i], ctx->pod_inf[i] };

		for (size_t j = 0; j < 2; j++) {
			while (all[j] && kc_informer_wait_synced(all[j], 200) != 0) {
				waited += 200;
				if (stop && *stop)
					return -EINTR;
				if (waited >= timeout_ms)
					return -ETIMEDOUT;
			}
		}
	}
	return 0;
}

void ctl_ctx_cleanup(struct ctl_ctx *ctx)
{
	if (!ctx || !ctx->opts)
		return;
	for (size_t i = 0; i < ctx->ninf; i++) {
		kc_informer_free(ctx->pcp_inf[i]);
		kc_informer_free(ctx->pod_inf[i]);
		ctx->pcp_inf[i] = ctx->pod_inf[i] = NULL;
	}
	for (size_t i = 0; i < ctx->ninf; i++) {
		ctl_store_free(ctx->bind[i].store);
		ctx->bind[i].store = NULL;
	}
	kc_informer_free(ctx->lease_inf);
	ctx->lease_inf = NULL;
	ctl_leases_free(ctx->leases); /* after its informer */
	ctx->leases = NULL;
	ctl_mem_table_free(ctx->mem);
	ctx->mem = NULL;
	ctl_node_cache_free(ctx->nodes);
	ctx->nodes = NULL;
	ctx->opts = NULL;
}
