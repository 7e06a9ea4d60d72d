/*
 * decide_model.h - a small model of what surrounds ctl_decide(), to play
 * fault points against (test code, header-only): the API server's copy of
 * the CR (resourceVersion precondition on every write, the CRD's terminal
 * rule), the informer's copy the decision is made from (may lag behind),
 * ctl_io.c's order of applying a decision (finalizer, status, Event, helper
 * call; nothing after a failed write), the per-uid memory a crash loses, and
 * a helper that acts only on a CR whose status names its node and journals
 * a job once per uid.
 *
 * world_new() starts from first_sight() (obs_fixture.h); world_free() frees.
 */
#ifndef PCP_TEST_DECIDE_MODEL_H
#define PCP_TEST_DECIDE_MODEL_H

#include <errno.h>
#include <string.h>

#include "obs_fixture.h"

struct world {
	struct ctl_obs *obs; /* what the controller sees: the cached CR + pod, Lease, memory */
	long cache_rv;       /* resourceVersion of the cached copy */
	/* the API server's copy (the status fields and the finalizer) */
	struct ctl_obs *srv;
	long srv_rv;
	/* the helper of node-a */
	bool helper_up;
	bool helper_has_job; /* journaled (by uid) */
	int helper_jobs;     /* distinct jobs journaled: never more than 1 */
	int helper_msgs;     /* job messages received (dispatch and polls) */
	enum ctl_answer helper_state;
	/* fault point */
	bool crash_after_status; /* the controller dies right after the next status write */
	/* what the controller did */
	int status_writes, conflicts, events, dispatches, polls, cancels;
	struct ctl_decision last;
};

static inline struct world *world_new(void)
{
	struct world *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	w->obs = first_sight();
	w->srv = first_sight();
	w->cache_rv = w->srv_rv = 100;
	w->helper_up = true;
	w->helper_state = CTL_ANS_ACCEPTED;
	return w;
}

static inline void world_free(struct world *w)
{
	free(w->obs);
	free(w->srv);
	free(w);
}

static inline void copy_status(struct ctl_obs *dst, const struct ctl_obs *src)
{
	dst->phase = src->phase;
	dst->observed_generation = src->observed_generation;
	set(dst->st_node, sizeof(dst->st_node), src->st_node);
	set(dst->st_pod_uid, sizeof(dst->st_pod_uid), src->st_pod_uid);
	set(dst->st_message, sizeof(dst->st_message), src->st_message);
	set(dst->st_recipient_fp, sizeof(dst->st_recipient_fp), src->st_recipient_fp);
	set(dst->ready_status, sizeof(dst->ready_status), src->ready_status);
	set(dst->ready_reason, sizeof(dst->ready_reason), src->ready_reason);
	dst->dispatch_ms = src->dispatch_ms;
	dst->start_ms = src->start_ms;
	dst->completion_ms = src->completion_ms;
	dst->has_finalizer = src->has_finalizer;
}

/* The watch delivers the API server's copy to the informer. */
static inline void sync_cache(struct world *w)
{
	copy_status(w->obs, w->srv);
	w->cache_rv = w->srv_rv;
}

/* Someone else changes the CR (a label, another writer): only rv moves. */
static inline void touch(struct world *w)
{
	w->srv_rv++;
}

/* A controller restart: the per-uid memory is gone, first_seen is now. */
static inline void forget(struct world *w)
{
	struct ctl_obs *o = w->obs;

	o->answer = CTL_ANS_NONE;
	o->last_contact_ms = 0;
	o->last_error[0] = '\0';
	o->answer_reason[0] = o->answer_message[0] = '\0';
	o->queued_event_sent = false;
	o->job_sent = false;
	o->first_seen_ms = o->now_ms;
}

/* The helper of the job's node gets a job message (dispatch or poll). */
static inline void helper_call(struct world *w)
{
	struct ctl_obs *o = w->obs;

	/* ctl_mem_record_call keeps the job's container count, reached or not. */
	o->job_sent = true;
	if (!w->helper_up) {
		set(o->last_error, sizeof(o->last_error), "connection refused by 127.0.0.2:10443");
		return;
	}
	w->helper_msgs++;
	o->last_contact_ms = o->now_ms;
	o->last_error[0] = '\0';
	/* It re-reads the CR: it acts only on a CR dispatched to its node. */
	if (strcmp(w->srv->st_node, "node-a") != 0 || ctl_phase_terminal(w->srv->phase)) {
		o->answer = CTL_ANS_REFUSED;
		set(o->answer_reason, sizeof(o->answer_reason), "NotDispatchedHere");
		return;
	}
	if (!w->helper_has_job) { /* idempotent by uid */
		w->helper_has_job = true;
		w->helper_jobs++;
	}
	o->answer = w->helper_state;
}

/* The helper starts the job: it writes Running and startTime itself. */
static inline void helper_starts(struct world *w)
{
	assert_true(w->helper_has_job);
	w->srv->phase = CTL_PHASE_RUNNING;
	w->srv->start_ms = w->obs->now_ms;
	set(w->srv->ready_reason, sizeof(w->srv->ready_reason), "CheckpointInProgress");
	w->srv_rv++;
	w->helper_state = CTL_ANS_RUNNING;
}

static inline void helper_succeeds(struct world *w)
{
	w->srv->phase = CTL_PHASE_SUCCEEDED;
	w->srv->completion_ms = w->obs->now_ms;
	set(w->srv->ready_status, sizeof(w->srv->ready_status), "True");
	set(w->srv->ready_reason, sizeof(w->srv->ready_reason), "CheckpointCompleted");
	w->srv_rv++;
	w->helper_state = CTL_ANS_SUCCEEDED;
}

/*
 * One reconcile: decide on the cached copy, then apply in ctl_io.c's order.
 * Returns 0, -EAGAIN (409: decide again on a fresher copy) or -EINTR (the
 * controller crashed).
 */
static inline int reconcile(struct world *w)
{
	struct ctl_decision *d = &w->last;
	const struct ctl_status_out *s = &d->status;
	long write_rv = w->cache_rv;

	ctl_decide(&POL, w->obs, d);
	if (d->actions & CTL_ACT_ADD_FINALIZER) {
		if (write_rv != w->srv_rv) {
			w->conflicts++;
			return -EAGAIN;
		}
		w->srv->has_finalizer = true;
		write_rv = ++w->srv_rv; /* the status write uses the patch's new rv */
	}
	if (d->write_status) {
		if (write_rv != w->srv_rv) {
			w->conflicts++;
			return -EAGAIN; /* nothing else of this decision happens */
		}
		/* The CRD's rule: a finished PodCheckpoint never changes its phase. */
		assert_false(ctl_phase_terminal(w->srv->phase) && s->phase != w->srv->phase);
		w->srv->phase = s->phase;
		w->srv->observed_generation = s->observed_generation;
		set(w->srv->st_message, sizeof(w->srv->st_message), s->message);
		set(w->srv->ready_status, sizeof(w->srv->ready_status), s->ready_true ? "True" : "False");
		set(w->srv->ready_reason, sizeof(w->srv->ready_reason), s->ready_reason);
		if (s->set_dispatch) {
			set(w->srv->st_node, sizeof(w->srv->st_node), s->node_name);
			set(w->srv->st_pod_uid, sizeof(w->srv->st_pod_uid), s->pod_uid);
			set(w->srv->st_recipient_fp, sizeof(w->srv->st_recipient_fp), s->recipient_fp);
			w->srv->dispatch_ms = s->dispatch_ms;
		}
		if (s->completion_ms)
			w->srv->completion_ms = s->completion_ms;
		w->srv_rv++;
		w->status_writes++;
		if (w->crash_after_status) {
			w->crash_after_status = false;
			forget(w);
			return -EINTR;
		}
	}
	if (d->event)
		w->events++;
	if (d->actions & CTL_ACT_CANCEL)
		w->cancels++;
	if (d->actions & CTL_ACT_DISPATCH)
		w->dispatches++;
	else if (d->actions & CTL_ACT_POLL)
		w->polls++;
	if (d->actions & (CTL_ACT_DISPATCH | CTL_ACT_POLL))
		helper_call(w);
	return 0;
}

#endif
