/*
 * ctl_io.c - gather observations, call ctl_decide(), apply the decision.
 *
 * Nothing here decides: every "if" about a PodCheckpoint's fate lives in
 * ctl_reconcile.c. This file only knows how to read the world into a
 * struct ctl_obs and how to carry out a struct ctl_decision.
 */
#include "ctl_io.h"
#include "ctl_gather.h"
#include "ctl_trust.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "art.h"
#include "ch.h"
#include "ctl_metrics.h"
#include "log.h"
#include "pst.h"


/* What this controller remembers about one job (by CR uid). */
struct ctl_mem {
	struct ctl_mem *next;
	char uid[CTL_UID_MAX];
	int64_t first_seen_ms;
	int64_t last_contact_ms;
	enum ctl_answer answer;
	char answer_reason[CTL_REASON_MAX];
	char answer_message[CTL_MSG_MAX];
	int64_t answer_failed_since_ms;
	int64_t delete_failing_since_ms;
	char last_error[CTL_MSG_MAX];
	size_t ncontainers; /* the job's container count, kept for polls after the pod is gone */
	unsigned busy_count; /* busy answers in a row */
	bool queued_event_sent;
	char *cert_pem; /* the Secret's public tls.crt used at dispatch (not secret data) */
};

/* ---------------------------------------------------------------- memory records */

static struct ctl_mem *mem_find_locked(struct ctl_ctx *ctx, const char *uid)
{
	for (struct ctl_mem *m = ctx->mem; m; m = m->next)
		if (strcmp(m->uid, uid) == 0)
			return m;
	return NULL;
}

/* Copies the record of uid into *out (creating it with first_seen = now). */
static int mem_snapshot(struct ctl_ctx *ctx, const char *uid, int64_t now, struct ctl_mem *out)
{
	struct ctl_mem *m;
	int rc = 0;

	pthread_mutex_lock(&ctx->mem_lock);
	m = mem_find_locked(ctx, uid);
	if (!m) {
		m = calloc(1, sizeof(*m));
		if (!m) {
			rc = -ENOMEM;
			goto out;
		}
		ctl_copy(m->uid, sizeof(m->uid), uid);
		m->first_seen_ms = now;
		m->next = ctx->mem;
		ctx->mem = m;
	}
	*out = *m;
	out->next = NULL;
	out->cert_pem = m->cert_pem ? strdup(m->cert_pem) : NULL;
out:
	pthread_mutex_unlock(&ctx->mem_lock);
	return rc;
}

static void mem_free(struct ctl_mem *m)
{
	if (!m)
		return;
	free(m->cert_pem);
	free(m);
}

static void mem_forget(struct ctl_ctx *ctx, const char *uid)
{
	struct ctl_mem **pp, *m = NULL;

	if (!uid)
		return;
	pthread_mutex_lock(&ctx->mem_lock);
	for (pp = &ctx->mem; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->uid, uid) == 0) {
			m = *pp;
			*pp = m->next;
			break;
		}
	}
	pthread_mutex_unlock(&ctx->mem_lock);
	mem_free(m);
}

static enum ctl_answer answer_of(enum ch_state_kind k)
{
	switch (k) {
	case CH_ACCEPTED:
	case CH_QUEUED:
		return CTL_ANS_ACCEPTED;
	case CH_BUSY:
		return CTL_ANS_BUSY;
	case CH_RUNNING:
		return CTL_ANS_RUNNING;
	case CH_SUCCEEDED:
		return CTL_ANS_SUCCEEDED;
	case CH_FAILED:
		return CTL_ANS_FAILED;
	case CH_REFUSED:
	default:
		return CTL_ANS_REFUSED;
	}
}

/* Records the outcome of one ch_call (rc, and the state when rc == 0). */
static void mem_record_call(struct ctl_ctx *ctx, const char *uid, int64_t now, int rc,
			    const struct ch_state *st, const char *err, const struct ch_job *job,
			    size_t ncontainers)
{
	struct ctl_mem *m;

	pthread_mutex_lock(&ctx->mem_lock);
	m = mem_find_locked(ctx, uid);
	if (!m)
		goto out;
	if (job && job->op == CH_OP_CHECKPOINT) {
		if (ncontainers)
			m->ncontainers = ncontainers;
		if (job->cert_pem && !m->cert_pem)
			m->cert_pem = strdup(job->cert_pem);
	}
	if (rc != 0) {
		ctl_copy(m->last_error, sizeof(m->last_error), err);
		goto out;
	}
	m->last_contact_ms = now;
	m->last_error[0] = '\0';
	if (answer_of(st->state) == CTL_ANS_FAILED && m->answer != CTL_ANS_FAILED)
		m->answer_failed_since_ms = now;
	m->answer = answer_of(st->state);
	m->busy_count = m->answer == CTL_ANS_BUSY ? m->busy_count + 1 : 0;
	ctl_copy(m->answer_reason, sizeof(m->answer_reason), st->reason);
	ctl_copy(m->answer_message, sizeof(m->answer_message), st->message);
out:
	pthread_mutex_unlock(&ctx->mem_lock);
}

static void mem_delete_result(struct ctl_ctx *ctx, const char *uid, int64_t now, bool ok,
			      const char *err)
{
	struct ctl_mem *m;

	pthread_mutex_lock(&ctx->mem_lock);
	m = mem_find_locked(ctx, uid);
	if (m) {
		if (ok)
			m->delete_failing_since_ms = 0;
		else if (!m->delete_failing_since_ms)
			m->delete_failing_since_ms = now;
		ctl_copy(m->last_error, sizeof(m->last_error), ok ? "" : err);
	}
	pthread_mutex_unlock(&ctx->mem_lock);
}

/* ---------------------------------------------------------------- caches */

static size_t inf_index(struct ctl_ctx *ctx, const char *ns)
{
	if (ctx->opts->nwatch == 0)
		return 0;
	for (size_t i = 0; i < ctx->opts->nwatch; i++)
		if (strcmp(ctx->opts->watch_ns[i], ns) == 0)
			return i;
	return (size_t)-1;
}

json_object *ctl_ctx_cache_get(struct ctl_ctx *ctx, struct kc_informer **inf, const char *ns,
			       const char *name)
{
	size_t i = inf_index(ctx, ns);

	if (i == (size_t)-1 || i >= ctx->ninf || !inf[i])
		return NULL;
	return kc_cache_get(kc_informer_cache(inf[i]), ns, name);
}

struct sibling_scan {
	const char *ns;
	const char *pod;
	const char *self; /* name to skip, or NULL */
	/* collect mode */
	struct ctl_other *others;
	char (*names)[CTL_NAME_MAX];
	size_t n, cap;
	/* enqueue mode */
	struct ctl_queue *q;
	bool only_non_terminal;
};

static void sibling_cb(void *arg, json_object *pcp)
{
	struct sibling_scan *s = arg;
	const char *ns = kc_json_str(pcp, "metadata.namespace");
	const char *name = kc_json_str(pcp, "metadata.name");
	const char *pod = kc_json_str(pcp, "spec.podName");
	struct ctl_other x;
	char key[CTL_QUEUE_KEY_MAX];

	if (!ns || !name || !pod || strcmp(ns, s->ns) != 0 || strcmp(pod, s->pod) != 0)
		return;
	if (s->self && strcmp(name, s->self) == 0)
		return;
	ctl_other_from_pcp(&x, pcp);
	if (x.terminal && s->only_non_terminal)
		return;
	if (s->q) {
		snprintf(key, sizeof(key), "%s/%s", ns, name);
		ctl_queue_add(s->q, key);
		return;
	}
	if (x.terminal || s->n >= s->cap)
		return;
	ctl_copy(s->names[s->n], CTL_NAME_MAX, name);
	x.name = s->names[s->n];
	s->others[s->n++] = x;
}

static void scan_siblings(struct ctl_ctx *ctx, struct sibling_scan *s)
{
	size_t i = inf_index(ctx, s->ns);

	if (i == (size_t)-1 || i >= ctx->ninf || !ctx->pcp_inf[i])
		return;
	kc_cache_foreach(kc_informer_cache(ctx->pcp_inf[i]), sibling_cb, s);
}

/* ---------------------------------------------------------------- informer callbacks */

static void on_pcp_event(void *arg, enum kc_event_type type, json_object *obj)
{
	struct ctl_ctx *ctx = arg;
	const char *ns = kc_json_str(obj, "metadata.namespace");
	const char *name = kc_json_str(obj, "metadata.name");
	const char *pod = kc_json_str(obj, "spec.podName");
	const char *phase = kc_json_str(obj, "status.phase");
	char key[CTL_QUEUE_KEY_MAX];
	bool done;

	if (!ns || !name || type == KC_BOOKMARK || type == KC_ERROR)
		return;
	snprintf(key, sizeof(key), "%s/%s", ns, name);
	ctl_queue_add(ctx->q, key);
	done = type == KC_DELETED || (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed")));
	if (type == KC_DELETED)
		mem_forget(ctx, kc_json_str(obj, "metadata.uid"));
	if (done && pod) {
		/* The pod is free again: wake the CRs waiting for it. */
		struct sibling_scan s = { .ns = ns, .pod = pod, .self = name, .q = ctx->q,
					  .only_non_terminal = true };

		scan_siblings(ctx, &s);
	}
}

static void on_pod_event(void *arg, enum kc_event_type type, json_object *obj)
{
	struct ctl_ctx *ctx = arg;
	struct sibling_scan s = { .q = ctx->q, .only_non_terminal = true };

	if (type == KC_BOOKMARK || type == KC_ERROR)
		return;
	s.ns = kc_json_str(obj, "metadata.namespace");
	s.pod = kc_json_str(obj, "metadata.name");
	if (!s.ns || !s.pod)
		return;
	scan_siblings(ctx, &s);
}

static void enqueue_cb(void *arg, json_object *pcp)
{
	struct ctl_ctx *ctx = arg;
	const char *ns = kc_json_str(pcp, "metadata.namespace");
	const char *name = kc_json_str(pcp, "metadata.name");
	char key[CTL_QUEUE_KEY_MAX];

	if (!ns || !name)
		return;
	snprintf(key, sizeof(key), "%s/%s", ns, name);
	ctl_queue_add(ctx->q, key);
}

void ctl_ctx_enqueue_all(struct ctl_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ninf; i++)
		if (ctx->pcp_inf[i])
			kc_cache_foreach(kc_informer_cache(ctx->pcp_inf[i]), enqueue_cb, ctx);
}

/* ---------------------------------------------------------------- context */

int ctl_ctx_init(struct ctl_ctx *ctx, const struct ctl_options *opts, struct kc_config *cfg,
		 struct ctl_queue *q)
{
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
	pthread_mutex_init(&ctx->mem_lock, NULL);
	return 0;
}

int ctl_ctx_start_informers(struct ctl_ctx *ctx)
{
	int rc = 0;

	for (size_t i = 0; i < ctx->ninf; i++) {
		const char *ns = ctx->opts->nwatch ? ctx->opts->watch_ns[i] : NULL;
		struct kc_informer_opts io = {
			.res = &KC_RES_PODCHECKPOINTS,
			.ns = ns,
			.on_event = on_pcp_event,
			.arg = ctx,
			.resync_seconds = CTL_INFORMER_RESYNC_SECONDS,
		};

		rc = kc_informer_start(ctx->cfg, &io, &ctx->pcp_inf[i]);
		if (rc) {
			LOG_ERROR("msg=\"cannot start informer\" resource=podcheckpoints ns=%s rc=%d",
				  ns ? ns : "*", rc);
			goto out;
		}
		io.res = &KC_RES_PODS;
		io.on_event = on_pod_event;
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
	struct ctl_mem *m;

	if (!ctx || !ctx->opts)
		return;
	for (size_t i = 0; i < ctx->ninf; i++) {
		kc_informer_free(ctx->pcp_inf[i]);
		kc_informer_free(ctx->pod_inf[i]);
		ctx->pcp_inf[i] = ctx->pod_inf[i] = NULL;
	}
	while ((m = ctx->mem)) {
		ctx->mem = m->next;
		mem_free(m);
	}
	pthread_mutex_destroy(&ctx->mem_lock);
	ctx->opts = NULL;
}

/* ---------------------------------------------------------------- applying */

/* A job is the CR's identity (and, to encrypt, the recipient certificate):
 * the helper reads everything else from the CR. */
static int build_job(const struct ctl_obs *o, enum ch_op op, const char *pem, struct ch_job *job)
{
	memset(job, 0, sizeof(*job));
	job->op = op;
	ctl_copy(job->uid, sizeof(job->uid), o->uid);
	ctl_copy(job->ns, sizeof(job->ns), o->ns);
	ctl_copy(job->name, sizeof(job->name), o->name);
	if (o->encrypt && op == CH_OP_CHECKPOINT && pem) {
		job->cert_pem = strdup(pem);
		if (!job->cert_pem)
			return -ENOMEM;
	}
	return 0;
}

/*
 * Sends job to the helper of o's node on its long-lived channel connection
 * (ctx->pool); rc of ch_pool_call, *st the first answer. wait_ms is not
 * waited for: the helper pushes the job's later states on the same
 * connection and the pool's on_update enqueues the CR (ctl_run.c), so a
 * worker is held for one round trip, not for the job.
 */
static int call_helper(struct ctl_ctx *ctx, const struct ctl_obs *o, const struct ch_job *job,
		       long wait_ms, struct ch_state *st, char *err, size_t errlen)
{
	int rc;

	(void)wait_ms;
	memset(st, 0, sizeof(*st));
	err[0] = '\0';
	if (!o->endpoint[0] || !o->fingerprint[0]) {
		snprintf(err, errlen, "no Lease with an endpoint for the node helper on node %s",
			 o->st_node[0] ? o->st_node : o->pod_node);
		return -EHOSTUNREACH;
	}
	rc = ch_pool_call(ctx->pool, o->endpoint, o->fingerprint, job, 0, st, err, errlen);
	ctl_metrics_helper_call(job->op == CH_OP_CHECKPOINT, rc);
	return rc;
}

static int patch_finalizer(struct kc_client *c, struct ctl_obs *o, json_object *pcp, bool add,
			   char *rv, size_t rvlen)
{
	json_object *patch = NULL, *res = NULL;
	struct kc_status st;
	char path[1024];
	int rc;

	rc = ctl_finalizer_patch(pcp, add, &patch);
	if (!rc)
		rc = kc_path(path, sizeof(path), &KC_RES_PODCHECKPOINTS, o->ns, o->name, NULL, NULL);
	if (!rc)
		rc = kc_merge_patch(c, path, patch, &res, &st);
	if (rc == -ENOENT) {
		rc = 0;
	} else if (rc) {
		LOG_WARN("msg=\"finalizer patch failed\" pcp=%s/%s add=%d http=%ld error=\"%s\"", o->ns,
			 o->name, add, st.http, st.message);
	} else {
		LOG_INFO("msg=\"%s finalizer\" pcp=%s/%s finalizer=%s", add ? "added" : "removed",
			 o->ns, o->name, CTL_FINALIZER);
		if (rv)
			ctl_copy(rv, rvlen, kc_json_str(res, "metadata.resourceVersion"));
	}
	json_object_put(patch);
	json_object_put(res);
	return rc;
}

static int write_status(struct kc_client *c, const struct ctl_obs *o, const struct ctl_decision *d,
			json_object *pcp, const char *rv)
{
	json_object *patch = NULL;
	struct pst_expect e = { .uid = o->uid };
	struct kc_status st;
	char path[1024], why[256];
	int rc;

	/* Terminal is final: never written over (the patch's resourceVersion
	 * makes a stale read fail with 409, and the CRD rule backs it up). */
	if (pst_guard(pcp, &e, why, sizeof(why)) != PST_WRITABLE) {
		LOG_INFO("msg=\"status not written\" pcp=%s/%s why=\"%s\"", o->ns, o->name, why);
		return -EAGAIN;
	}
	rc = ctl_status_patch(d, kc_json_get(pcp, "status.conditions"), rv, o->now_ms, &patch);
	if (!rc)
		rc = kc_path(path, sizeof(path), &KC_RES_PODCHECKPOINTS, o->ns, o->name, "status", NULL);
	if (!rc)
		rc = kc_merge_patch(c, path, patch, NULL, &st);
	if (rc == -EAGAIN)
		LOG_INFO("msg=\"status conflict, deciding again\" pcp=%s/%s", o->ns, o->name);
	else if (rc && rc != -ENOENT)
		LOG_WARN("msg=\"status patch failed\" pcp=%s/%s http=%ld reason=%s error=\"%s\"", o->ns,
			 o->name, st.http, st.reason, st.message);
	json_object_put(patch);
	return rc;
}

static void emit_event(struct ctl_ctx *ctx, struct kc_client *c, const struct ctl_obs *o,
		       const struct ctl_decision *d, json_object *pcp)
{
	struct kc_status st;
	int rc;

	rc = kc_event_emit(c, &ctx->src, pcp, d->event_warning ? "Warning" : "Normal",
			   d->event_reason, d->event_warning ? "Checkpoint" : "Dispatch", &st, "%s",
			   d->event_note);
	if (rc)
		LOG_WARN("msg=\"event not recorded\" pcp=%s/%s reason=%s http=%ld error=\"%s\"", o->ns,
			 o->name, d->event_reason, st.http, st.message);
}

static void action_names(unsigned a, char *buf, size_t cap)
{
	static const char *const names[] = { "add-finalizer", "dispatch", "poll", "delete-artifact",
					     "remove-finalizer", "delete-cr", "cancel" };
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(a & (1u << i)))
			continue;
		n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s", n ? "," : "", names[i]);
		if (n >= cap)
			break;
	}
	if (!buf[0])
		snprintf(buf, cap, "none");
}

static int do_helper_job(struct ctl_ctx *ctx, const struct ctl_obs *o, const struct ctl_mem *mem,
			 const char *pem, const char *what)
{
	struct ch_job job;
	struct ch_state st;
	char err[512];
	int rc;

	(void)mem;
	rc = build_job(o, CH_OP_CHECKPOINT, pem, &job);
	if (rc)
		return rc;
	rc = call_helper(ctx, o, &job,
			 strcmp(what, "dispatch") == 0 ? CTL_CH_WAIT_MS : CTL_CH_POLL_WAIT_MS, &st, err,
			 sizeof(err));
	mem_record_call(ctx, o->uid, kc_now_ms(), rc, &st, err, &job, ctl_obs_job_containers(o));
	if (rc)
		LOG_WARN("msg=\"node helper unreachable\" pcp=%s/%s op=%s node=%s endpoint=%s rc=%d error=\"%s\"",
			 o->ns, o->name, what, o->st_node, o->endpoint, rc, err);
	else if (strcmp(what, "dispatch") == 0 || o->answer == CTL_ANS_NONE ||
		 o->answer != answer_of(st.state))
		LOG_INFO("msg=\"node helper answered\" pcp=%s/%s op=%s node=%s state=%s reason=%s",
			 o->ns, o->name, what, o->st_node, ch_state_name(st.state), st.reason);
	else
		LOG_DEBUG("msg=\"node helper answered\" pcp=%s/%s op=%s node=%s state=%s",
			  o->ns, o->name, what, o->st_node, ch_state_name(st.state));
	ch_job_cleanup(&job);
	return 0; /* an unreachable helper is an observation, not an error */
}

/* delete-artifact; 0 when the helper confirmed (the finalizer may go). */
static int do_delete_artifact(struct ctl_ctx *ctx, const struct ctl_obs *o, const struct ctl_mem *mem)
{
	struct ch_job job;
	struct ch_state st;
	char err[512];
	int rc;

	(void)mem;
	rc = build_job(o, CH_OP_DELETE_ARTIFACT, NULL, &job);
	if (rc)
		return rc;
	rc = call_helper(ctx, o, &job, CTL_CH_WAIT_MS, &st, err, sizeof(err));
	if (rc == 0 && st.state != CH_SUCCEEDED) {
		ctl_fmt(err, sizeof(err), "the helper answered %s: %s", ch_state_name(st.state), st.message);
		rc = st.state == CH_FAILED || st.state == CH_REFUSED ? -EIO : -EINPROGRESS;
	}
	mem_delete_result(ctx, o->uid, kc_now_ms(), rc == 0, err);
	LOG_INFO("msg=\"delete-artifact\" pcp=%s/%s node=%s path=%s rc=%d error=\"%s\"", o->ns, o->name,
		 o->st_node, o->artifact_path, rc, err);
	ch_job_cleanup(&job);
	return rc;
}

/* cancel: the CR was just failed; the helper stops the job and cleans up.
 * Best effort: the helper re-reads the CR before every step anyway. */
static void do_cancel(struct ctl_ctx *ctx, const struct ctl_obs *o)
{
	struct ch_job job;
	struct ch_state st;
	char err[512];
	int rc;

	if (build_job(o, CH_OP_CANCEL, NULL, &job) != 0)
		return;
	rc = call_helper(ctx, o, &job, CTL_CH_POLL_WAIT_MS, &st, err, sizeof(err));
	LOG_INFO("msg=\"cancel sent\" pcp=%s/%s uid=%s node=%s rc=%d state=%s error=\"%s\"", o->ns,
		 o->name, o->uid, o->st_node, rc, rc == 0 ? ch_state_name(st.state) : "-", err);
	ch_job_cleanup(&job);
}

/* Records the one-time Queued Event and the busy count. */
static void mem_mark_queued_event(struct ctl_ctx *ctx, const char *uid)
{
	struct ctl_mem *m;

	pthread_mutex_lock(&ctx->mem_lock);
	m = mem_find_locked(ctx, uid);
	if (m)
		m->queued_event_sent = true;
	pthread_mutex_unlock(&ctx->mem_lock);
}

static int delete_cr(struct kc_client *c, const struct ctl_obs *o)
{
	struct kc_delete_opts dopts = { .uid = o->uid, .grace_period_seconds = -1 };
	struct kc_status st;
	char path[1024];
	int rc;

	rc = kc_path(path, sizeof(path), &KC_RES_PODCHECKPOINTS, o->ns, o->name, NULL, NULL);
	if (!rc)
		rc = kc_delete(c, path, &dopts, NULL, &st);
	if (rc == -ENOENT || rc == -EAGAIN)
		rc = 0; /* gone, or replaced by another object of that name */
	if (rc)
		LOG_WARN("msg=\"ttl delete failed\" pcp=%s/%s http=%ld error=\"%s\"", o->ns, o->name,
			 st.http, st.message);
	else
		LOG_INFO("msg=\"deleted after ttlSecondsAfterFinished\" pcp=%s/%s ttl=%lld", o->ns, o->name,
			 (long long)o->ttl_seconds);
	return rc;
}

/* ---------------------------------------------------------------- reconcile */

int ctl_reconcile_key(struct ctl_ctx *ctx, struct kc_client *c, const char *key, long *requeue_ms)
{
	struct ctl_obs *o = NULL;
	struct ctl_decision *d = NULL;
	struct ctl_mem *mem = NULL;
	struct ctl_other *others = NULL;
	char(*names)[CTL_NAME_MAX] = NULL;
	json_object *pcp = NULL;
	char ns[CTL_NS_MAX], name[CTL_NAME_MAX], rv[64], acts[128];
	char *pem = NULL;
	const char *slash = strchr(key, '/');
	bool pre_dispatch;
	int rc = 0;

	*requeue_ms = -1;
	if (!slash || (size_t)(slash - key) >= sizeof(ns))
		return 0; /* not a key of ours */
	memcpy(ns, key, (size_t)(slash - key));
	ns[slash - key] = '\0';
	ctl_copy(name, sizeof(name), slash + 1);

	pcp = ctl_ctx_cache_get(ctx, ctx->pcp_inf, ns, name);
	if (!pcp)
		goto out; /* deleted: nothing to do */
	o = calloc(1, sizeof(*o));
	d = calloc(1, sizeof(*d));
	mem = calloc(1, sizeof(*mem));
	if (!o || !d || !mem) {
		rc = -ENOMEM;
		goto out;
	}
	rc = ctl_obs_from_pcp(o, pcp);
	if (rc) {
		rc = 0; /* malformed object: nothing we can do */
		goto out;
	}
	o->now_ms = kc_now_ms();
	ctl_copy(rv, sizeof(rv), kc_json_str(pcp, "metadata.resourceVersion"));
	rc = mem_snapshot(ctx, o->uid, o->now_ms, mem);
	if (rc)
		goto out;
	o->first_seen_ms = mem->first_seen_ms;
	o->last_contact_ms = mem->last_contact_ms;
	o->answer = mem->answer;
	ctl_copy(o->answer_reason, sizeof(o->answer_reason), mem->answer_reason);
	ctl_copy(o->answer_message, sizeof(o->answer_message), mem->answer_message);
	o->answer_failed_since_ms = mem->answer_failed_since_ms;
	o->artifact_delete_failing_since_ms = mem->delete_failing_since_ms;
	o->njob_containers = mem->ncontainers;
	o->busy_count = mem->busy_count;
	o->queued_event_sent = mem->queued_event_sent;
	ctl_copy(o->last_error, sizeof(o->last_error), mem->last_error);

	/* Gather only what the decision can look at in this state. */
	pre_dispatch = !o->deleting && o->phase == CTL_PHASE_PENDING && !o->st_node[0];
	if (pre_dispatch) {
		rc = ctl_gather_pod(ctx, c, o, true);
		if (!rc && o->encrypt && o->pod_exists)
			rc = ctl_gather_secret(ctx, c, o, &pem);
		if (rc)
			goto out;
		if (o->pod_exists) {
			size_t cap = 64;
			struct sibling_scan s = { .ns = o->ns, .pod = o->pod_name, .self = o->name };

			others = calloc(cap, sizeof(*others));
			names = calloc(cap, sizeof(*names));
			if (!others || !names) {
				rc = -ENOMEM;
				goto out;
			}
			s.others = others;
			s.names = names;
			s.cap = cap;
			scan_siblings(ctx, &s);
			o->others = others;
			o->nothers = s.n;
		}
	} else if (!ctl_phase_terminal(o->phase) && o->st_node[0] && !o->deleting) {
		rc = ctl_gather_pod(ctx, c, o, false); /* for the container count only */
		if (rc)
			goto out;
		if (o->encrypt && !mem->cert_pem) {
			rc = ctl_gather_secret(ctx, c, o, &pem);
			if (rc)
				goto out;
		}
	}
	if ((!ctl_phase_terminal(o->phase) && o->phase != CTL_PHASE_NONE && !o->deleting) ||
	    (o->deleting && o->has_finalizer)) {
		rc = ctl_gather_lease(ctx, c, o, o->st_node[0] ? o->st_node : o->pod_node);
		if (rc)
			goto out;
	}

	ctl_decide(&ctx->pol, o, d);

	action_names(d->actions, acts, sizeof(acts));
	if (d->write_status || d->event || (d->actions & ~(unsigned)CTL_ACT_POLL))
		LOG_INFO("msg=\"decision\" pcp=%s/%s uid=%s phase=%s decision=%s new_phase=%s reason=%s actions=%s requeue_ms=%ld",
			 o->ns, o->name, o->uid, ctl_phase_name(o->phase), d->why,
			 d->write_status ? ctl_phase_name(d->status.phase) : "-",
			 d->event ? d->event_reason : "-", acts, d->requeue_ms);
	else
		LOG_DEBUG("msg=\"decision\" pcp=%s/%s uid=%s phase=%s decision=%s actions=%s requeue_ms=%ld",
			  o->ns, o->name, o->uid, ctl_phase_name(o->phase), d->why, acts, d->requeue_ms);

	/* 1. finalizer first: status writes below use the new resourceVersion. */
	if (d->actions & CTL_ACT_ADD_FINALIZER) {
		rc = patch_finalizer(c, o, pcp, true, rv, sizeof(rv));
		if (rc)
			goto out;
	}
	/* 2. status, then its Event (only once the status is written). */
	if (d->write_status) {
		rc = write_status(c, o, d, pcp, rv);
		if (rc == -ENOENT) {
			rc = 0;
			goto out;
		}
		if (rc)
			goto out;
	}
	if (d->event) {
		emit_event(ctx, c, o, d, pcp);
		if (d->queued_event)
			mem_mark_queued_event(ctx, o->uid);
	}
	if (d->actions & CTL_ACT_CANCEL)
		do_cancel(ctx, o);
	/* 3. the helper. */
	if (d->actions & (CTL_ACT_DISPATCH | CTL_ACT_POLL)) {
		if (d->actions & CTL_ACT_DISPATCH) {
			/* What the status now says: the job follows it. */
			ctl_copy(o->st_node, sizeof(o->st_node), d->status.node_name);
			ctl_copy(o->st_pod_uid, sizeof(o->st_pod_uid), d->status.pod_uid);
			o->njob_containers = ctl_obs_job_containers(o);
		}
		rc = do_helper_job(ctx, o, mem, pem ? pem : mem->cert_pem,
				   d->actions & CTL_ACT_DISPATCH ? "dispatch" : "poll");
		if (rc)
			goto out;
	}
	if (d->actions & CTL_ACT_DELETE_ARTIFACT) {
		if (do_delete_artifact(ctx, o, mem) == 0)
			d->actions |= CTL_ACT_REMOVE_FINALIZER;
	}
	if (d->actions & CTL_ACT_REMOVE_FINALIZER) {
		rc = patch_finalizer(c, o, pcp, false, NULL, 0);
		if (rc)
			goto out;
	}
	if (d->actions & CTL_ACT_DELETE_CR) {
		rc = delete_cr(c, o);
		if (rc)
			goto out;
	}
	*requeue_ms = d->requeue_ms;
out:
	if (mem)
		free(mem->cert_pem);
	free(mem);
	if (pem)
		OPENSSL_cleanse(pem, strlen(pem));
	free(pem);
	free(others);
	free(names);
	free(o);
	free(d);
	json_object_put(pcp);
	return rc;
}
