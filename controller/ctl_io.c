/*
 * ctl_io.c - gather observations, call ctl_decide(), apply the decision.
 *
 * Nothing here decides: every "if" about a PodCheckpoint's fate lives in
 * ctl_reconcile.c. This file only knows how to read the world into a
 * struct ctl_obs and how to carry out a struct ctl_decision.
 */
#include "ctl_io.h"
#include "ctl_gather.h"
#include "ctl_mem.h"
#include "ctl_store.h"
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
 * (ctx->pool); rc of ch_pool_call, *st the first answer. Nothing more is
 * waited for: the helper pushes the job's later states on the same
 * connection and the pool's on_update enqueues the CR (ctl_run.c), so a
 * worker is held for one round trip, not for the job.
 */
static int call_helper(struct ctl_ctx *ctx, const struct ctl_obs *o, const struct ch_job *job,
		       struct ch_state *st, char *err, size_t errlen)
{
	int rc;

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

static int do_helper_job(struct ctl_ctx *ctx, const struct ctl_obs *o, const struct ctl_mem_view *mem,
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
	rc = call_helper(ctx, o, &job, &st, err, sizeof(err));
	ctl_mem_record_call(ctx->mem, o->uid, kc_now_ms(), rc, answer_of(st.state), st.reason,
			    st.message, err, true, job.cert_pem, ctl_obs_job_containers(o));
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
static int do_delete_artifact(struct ctl_ctx *ctx, const struct ctl_obs *o, const struct ctl_mem_view *mem)
{
	struct ch_job job;
	struct ch_state st;
	char err[512];
	int rc;

	(void)mem;
	rc = build_job(o, CH_OP_DELETE_ARTIFACT, NULL, &job);
	if (rc)
		return rc;
	rc = call_helper(ctx, o, &job, &st, err, sizeof(err));
	if (rc == 0 && st.state != CH_SUCCEEDED) {
		ctl_fmt(err, sizeof(err), "the helper answered %s: %s", ch_state_name(st.state), st.message);
		rc = st.state == CH_FAILED || st.state == CH_REFUSED ? -EIO : -EINPROGRESS;
	}
	ctl_mem_delete_result(ctx->mem, o->uid, kc_now_ms(), rc == 0, err);
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
	rc = call_helper(ctx, o, &job, &st, err, sizeof(err));
	LOG_INFO("msg=\"cancel sent\" pcp=%s/%s uid=%s node=%s rc=%d state=%s error=\"%s\"", o->ns,
		 o->name, o->uid, o->st_node, rc, rc == 0 ? ch_state_name(st.state) : "-", err);
	ch_job_cleanup(&job);
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
	struct ctl_mem_view *mem = NULL;
	struct ctl_store *store = NULL;
	struct ctl_other *others = NULL;
	char(*names)[CTL_NAME_MAX] = NULL;
	json_object *pcp = NULL;
	char ns[CTL_NS_MAX], name[CTL_NAME_MAX], rv[64], acts[128];
	char *pem = NULL;
	const char *slash = strchr(key, '/');
	bool pre_dispatch, need_mem;
	int rc = 0;

	*requeue_ms = -1;
	if (!slash || (size_t)(slash - key) >= sizeof(ns))
		return 0; /* not a key of ours */
	memcpy(ns, key, (size_t)(slash - key));
	ns[slash - key] = '\0';
	ctl_copy(name, sizeof(name), slash + 1);

	store = ctl_ctx_store(ctx, ns);
	pcp = store ? ctl_store_pcp_get(store, ns, name) : NULL;
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
	/* A terminal CR (as the cache shows it) never dispatches again: its
	 * memory goes, unless an artifact deletion still needs its record. */
	need_mem = !ctl_phase_terminal(o->phase) || (o->deleting && o->has_finalizer);
	if (!need_mem)
		ctl_mem_forget(ctx->mem, o->uid);
	rc = ctl_mem_snapshot(ctx->mem, o->uid, o->now_ms, need_mem, mem);
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
	o->job_sent = mem->job_sent;

	/* Gather only what the decision can look at in this state. */
	pre_dispatch = !o->deleting && !o->st_node[0] &&
		       (o->phase == CTL_PHASE_NONE || o->phase == CTL_PHASE_PENDING);
	if (pre_dispatch) {
		rc = ctl_gather_pod(ctx, c, o, true);
		if (!rc && o->encrypt && o->pod_exists)
			rc = ctl_gather_secret(ctx, c, o, &pem);
		if (rc)
			goto out;
		if (o->pod_exists) {
			size_t cap = 64;

			others = calloc(cap, sizeof(*others));
			names = calloc(cap, sizeof(*names));
			if (!others || !names) {
				rc = -ENOMEM;
				goto out;
			}
			o->others = others;
			o->nothers = ctl_store_siblings(store, o->ns, o->pod_name, o->name, others,
							names, cap);
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
	if ((!ctl_phase_terminal(o->phase) && !o->deleting) ||
	    (o->deleting && o->has_finalizer)) {
		rc = ctl_gather_lease(ctx, c, o, o->st_node[0] ? o->st_node : o->pod_node);
		if (rc)
			goto out;
	}

	ctl_decide(&ctx->pol, o, d);

	action_names(d->actions, acts, sizeof(acts));
	/* A stale copy is logged too: it replaces a 409 ("status conflict"). */
	if (d->write_status || d->event || (d->actions & ~(unsigned)CTL_ACT_POLL) ||
	    d->stale_copy)
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
			ctl_mem_mark_queued_event(ctx->mem, o->uid);
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
	ctl_mem_view_cleanup(mem);
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
