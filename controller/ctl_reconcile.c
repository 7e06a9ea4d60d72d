/*
 * ctl_reconcile.c - the pure decision function (see ctl_reconcile.h).
 *
 * Order of the rules (the same order as in docs/controller.md):
 *   0. a copy the memory proves stale (a job was sent, no nodeName): no
 *      decision, wait for the watch
 *   1. deletion (finalizer: delete-artifact, then remove the finalizer)
 *   2. finalizer for deletionPolicy Delete (combined with what follows)
 *   3. terminal: never changed again; only TTL
 *   4. in flight (status.nodeName set): queued/busy (queue wait), running
 *      (poll, helper failure, Timeout from startTime, helper gone); every
 *      failure of a dispatched job also cancels it on the helper
 *   5. validation, before any dispatch
 *   6. serialisation with other CRs for the same pod
 *   7. helper availability, then dispatch
 * The first reconcile (no status.phase) goes through 5-7 too: when all
 * hold it writes Pending and the dispatch fields in one status write and
 * dispatches; a wait (6, 7) is written as that first Pending; a failure
 * (5, or 7 past the helper wait) is not decided on a first look: it writes
 * the plain first Pending and decides again on the next reconcile.
 */
#include "ctl_reconcile.h"
#include "pst.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ctl_phase_name(enum ctl_phase p)
{
	return pst_phase_name((enum pst_phase)p);
}

int ctl_phase_parse(const char *s, enum ctl_phase *out)
{
	enum pst_phase p;
	int rc = pst_phase_parse(s, &p);

	*out = (enum ctl_phase)p;
	return rc;
}

size_t ctl_obs_job_containers(const struct ctl_obs *o)
{
	if (o->nspec_containers)
		return o->nspec_containers;
	if (o->njob_containers)
		return o->njob_containers;
	if (o->pod_exists && o->npod_containers)
		return o->npod_containers;
	return 1;
}

void ctl_fmt(char *buf, size_t cap, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, cap, f, ap);
	va_end(ap);
}

void ctl_copy(char *dst, size_t cap, const char *src)
{
	ctl_fmt(dst, cap, "%s", src ? src : "");
}

static bool seconds_passed(int64_t now_ms, int64_t since_ms, int64_t seconds)
{
	return since_ms > 0 && now_ms - since_ms >= seconds * 1000;
}

/* Keep the status as it is but write what the decision asks on top. */
static void status_base(const struct ctl_obs *o, struct ctl_decision *d)
{
	d->status.phase = o->phase;
	d->status.observed_generation = o->generation;
	ctl_copy(d->status.message, sizeof(d->status.message), o->st_message);
	ctl_copy(d->status.ready_reason, sizeof(d->status.ready_reason),
	     o->ready_reason[0] ? o->ready_reason : "Pending");
}

/* Terminal failure written by the controller. */
static void fail(const struct ctl_obs *o, struct ctl_decision *d, const char *reason,
		 const char *message, const char *why)
{
	d->write_status = true;
	status_base(o, d);
	d->status.phase = CTL_PHASE_FAILED;
	ctl_copy(d->status.message, sizeof(d->status.message), message);
	ctl_copy(d->status.ready_reason, sizeof(d->status.ready_reason), "CheckpointFailed");
	d->status.stalled = true;
	ctl_copy(d->status.stalled_reason, sizeof(d->status.stalled_reason), reason);
	d->status.completion_ms = o->now_ms;
	d->event = true;
	d->event_warning = true;
	ctl_copy(d->event_reason, sizeof(d->event_reason), reason);
	ctl_copy(d->event_note, sizeof(d->event_note), message);
	d->requeue_ms = -1;
	d->why = why;
	/* TTL starts now: look again when it runs out. */
	if (o->has_ttl)
		d->requeue_ms = o->ttl_seconds * 1000;
}

/* Stay Pending with `message`; write only if something changed. */
static void wait_pending(const struct ctl_obs *o, struct ctl_decision *d, const char *message,
			 long requeue_ms, const char *why)
{
	status_base(o, d);
	d->status.phase = CTL_PHASE_PENDING;
	ctl_copy(d->status.message, sizeof(d->status.message), message);
	ctl_copy(d->status.ready_reason, sizeof(d->status.ready_reason), "Pending");
	d->write_status = o->phase != CTL_PHASE_PENDING || strcmp(o->st_message, message) != 0 ||
			  o->observed_generation != o->generation ||
			  strcmp(o->ready_reason, "Pending") != 0;
	d->requeue_ms = requeue_ms;
	d->why = why;
}

static long min_l(long a, long b)
{
	return a < b ? a : b;
}

static bool decide_deletion(const struct ctl_policy *pol, const struct ctl_obs *o,
			    struct ctl_decision *d)
{
	bool dispatched = o->st_node[0] != '\0';
	bool need_delete;

	if (!o->deleting)
		return false;
	d->why = "deleting";
	if (!o->has_finalizer)
		return true; /* someone else's finalizer keeps it: nothing of ours */
	/* An artifact was recorded, or a job may still produce one. */
	need_delete = o->artifact_path[0] || (dispatched && !ctl_phase_terminal(o->phase));
	if (!need_delete) {
		d->actions |= CTL_ACT_REMOVE_FINALIZER;
		d->why = "remove-finalizer";
		return true;
	}
	if (seconds_passed(o->now_ms, o->artifact_delete_failing_since_ms,
			   pol->helper_wait_seconds)) {
		/* Never hold a deletion hostage forever: give up loudly. */
		d->actions |= CTL_ACT_REMOVE_FINALIZER;
		d->event = true;
		d->event_warning = true;
		ctl_copy(d->event_reason, sizeof(d->event_reason), "ArtifactNotDeleted");
		ctl_fmt(d->event_note, sizeof(d->event_note),
		    "Could not delete the artifact %s of PodCheckpoint %s/%s on node %s for %ds; "
		    "the finalizer was removed, delete the file on the node by hand.",
		    o->artifact_path[0] ? o->artifact_path : "(not recorded)", o->ns, o->name,
		    o->st_node[0] ? o->st_node : "(unknown)", pol->helper_wait_seconds);
		d->why = "artifact-delete-gave-up";
		return true;
	}
	d->actions |= CTL_ACT_DELETE_ARTIFACT;
	d->requeue_ms = (long)pol->poll_seconds * 1000;
	d->why = "delete-artifact";
	return true;
}

static void decide_terminal(const struct ctl_obs *o, struct ctl_decision *d)
{
	int64_t done_ms = o->completion_ms ? o->completion_ms : o->ready_transition_ms;
	int64_t due;

	d->why = "terminal";
	if (!o->has_ttl || done_ms <= 0)
		return;
	due = done_ms + o->ttl_seconds * 1000;
	if (o->now_ms >= due) {
		d->actions |= CTL_ACT_DELETE_CR;
		d->why = "ttl-expired";
		return;
	}
	d->requeue_ms = (long)(due - o->now_ms);
	d->why = "ttl-wait";
}

/* The helper lost or refused: fail (and cancel what it may still run). */
static void fail_dispatched(const struct ctl_obs *o, struct ctl_decision *d, const char *reason,
			    const char *message, const char *why)
{
	fail(o, d, reason, message, why);
	d->actions |= CTL_ACT_CANCEL;
}

static bool helper_lost(const struct ctl_policy *pol, const struct ctl_obs *o,
			struct ctl_decision *d, const char *node, int64_t since)
{
	char msg[CTL_MSG_MAX];
	int64_t last_ok = o->last_contact_ms > since ? o->last_contact_ms : since;

	if (!seconds_passed(o->now_ms, last_ok, pol->helper_wait_seconds) ||
	    o->answer == CTL_ANS_SUCCEEDED)
		return false;
	/* At the commit point a helper with a fresh Lease is deleting the pod. */
	if (o->deleting_pod && o->lease_fresh)
		return false;
	ctl_fmt(msg, sizeof(msg),
	    "The node helper on node %s has been unreachable for more than %ds while PodCheckpoint %s/%s was in flight%s%s%s; "
	    "check the podcheckpoint-node-helper pod on that node.",
	    node, pol->helper_wait_seconds, o->ns, o->name,
	    o->last_error[0] ? " (" : "", o->last_error, o->last_error[0] ? ")" : "");
	fail_dispatched(o, d, "NodeHelperUnavailable", msg, "helper-lost");
	return true;
}

/* Dispatched, not started yet: waiting in (or for) the helper's queue. */
static void decide_queued(const struct ctl_policy *pol, const struct ctl_obs *o,
			  struct ctl_decision *d, const char *node)
{
	char msg[CTL_MSG_MAX];
	int64_t since = o->dispatch_ms > 0 ? o->dispatch_ms : o->first_seen_ms;
	int64_t wait_end = since + (int64_t)pol->queue_wait_seconds * 1000;
	long poll_ms = (long)pol->poll_seconds * 1000;
	long backoff;

	if (o->now_ms >= wait_end && o->answer != CTL_ANS_RUNNING &&
	    o->answer != CTL_ANS_SUCCEEDED) {
		ctl_fmt(msg, sizeof(msg),
		    "PodCheckpoint %s/%s waited %ds for a free slot on the node helper on node %s without starting; "
		    "it is busy with other checkpoints: create it again later, or raise --queue-wait-seconds.",
		    o->ns, o->name, pol->queue_wait_seconds, node);
		fail_dispatched(o, d, "QueueTimeout", msg, "queue-timeout");
		return;
	}
	if (helper_lost(pol, o, d, node, since))
		return;
	if (o->answer == CTL_ANS_BUSY) {
		/* Nothing journaled: ask again, a bit later each time. */
		unsigned k = o->busy_count > 4 ? 4 : o->busy_count;

		backoff = poll_ms << k;
		/* Capped well below the helper wait: a busy helper is not a lost one. */
		if (backoff > 60000L)
			backoff = 60000L;
		if (backoff > (long)pol->helper_wait_seconds * 500L)
			backoff = (long)pol->helper_wait_seconds * 500L;
		if (backoff < poll_ms)
			backoff = poll_ms;
		ctl_fmt(msg, sizeof(msg),
		    "The node helper on node %s is busy with other checkpoints; the job is sent again until it is queued.",
		    node);
		wait_pending(o, d, msg, min_l(backoff, (long)(wait_end - o->now_ms)), "busy");
		if (!o->queued_event_sent) { /* one Event for the whole wait */
			d->event = true;
			d->queued_event = true;
			ctl_copy(d->event_reason, sizeof(d->event_reason), "NodeHelperBusy");
			ctl_copy(d->event_note, sizeof(d->event_note), msg);
		}
		d->actions |= CTL_ACT_POLL;
		return;
	}
	if (o->answer == CTL_ANS_ACCEPTED && o->now_ms - since >= poll_ms) {
		/* Say so only when it really waits (most jobs start at once). */
		ctl_fmt(msg, sizeof(msg),
		    "Queued on the node helper on node %s, waiting for the checkpoints ahead of it.", node);
		wait_pending(o, d, msg, min_l(poll_ms, (long)(wait_end - o->now_ms)), "queued");
		if (!o->queued_event_sent) {
			d->event = true;
			d->queued_event = true;
			ctl_copy(d->event_reason, sizeof(d->event_reason), "Queued");
			ctl_copy(d->event_note, sizeof(d->event_note), msg);
		}
		d->actions |= CTL_ACT_POLL;
		return;
	}
	/* No answer yet, or running before the status says so: keep polling. */
	d->actions |= CTL_ACT_POLL;
	d->requeue_ms = min_l(poll_ms, (long)(wait_end - o->now_ms));
	if (d->requeue_ms < 0)
		d->requeue_ms = 0;
	d->why = "poll-queued";
}

static void decide_in_flight(const struct ctl_policy *pol, const struct ctl_obs *o,
			     struct ctl_decision *d)
{
	char msg[CTL_MSG_MAX];
	const char *node = o->st_node[0] ? o->st_node : o->pod_node;
	size_t n = ctl_obs_job_containers(o);
	int64_t budget_s = (int64_t)o->timeout_seconds * (int64_t)n + pol->job_margin_seconds;
	int64_t deadline = o->start_ms + budget_s * 1000;
	long poll_ms = (long)pol->poll_seconds * 1000;

	if (o->answer == CTL_ANS_REFUSED) {
		ctl_fmt(msg, sizeof(msg), "The node helper on node %s refused the job of PodCheckpoint %s/%s: %s",
		    node, o->ns, o->name, o->answer_message[0] ? o->answer_message : "no reason given");
		fail_dispatched(o, d, o->answer_reason[0] ? o->answer_reason : "JobRefused", msg,
				"helper-refused");
		return;
	}
	if (o->answer == CTL_ANS_FAILED &&
	    seconds_passed(o->now_ms, o->answer_failed_since_ms, pol->poll_seconds)) {
		/* The helper reports failures itself; it had a poll period to do so. */
		if (o->answer_message[0])
			ctl_copy(msg, sizeof(msg), o->answer_message);
		else
			ctl_fmt(msg, sizeof(msg), "The node helper on node %s failed the checkpoint of PodCheckpoint %s/%s.",
			    node, o->ns, o->name);
		fail(o, d, o->answer_reason[0] ? o->answer_reason : "CheckpointFailed", msg,
		     "helper-failed");
		return;
	}
	if (o->start_ms <= 0) {
		decide_queued(pol, o, d, node);
		return;
	}
	/* Started: the checkpoint's own deadline counts from the helper's start,
	 * except at the commit point (the helper is deleting the pod). */
	if (o->now_ms >= deadline && o->answer != CTL_ANS_SUCCEEDED &&
	    !(o->deleting_pod && o->lease_fresh)) {
		ctl_fmt(msg, sizeof(msg),
		    "PodCheckpoint %s/%s did not finish within %llds of its start (timeoutSeconds %d x %zu containers + %ds margin); "
		    "check the node helper and the kubelet on node %s.",
		    o->ns, o->name, (long long)budget_s, o->timeout_seconds, n,
		    pol->job_margin_seconds, node);
		fail_dispatched(o, d, "Timeout", msg, "timeout");
		return;
	}
	if (helper_lost(pol, o, d, node, o->start_ms))
		return;
	d->actions |= CTL_ACT_POLL;
	d->requeue_ms = poll_ms;
	if (o->answer == CTL_ANS_FAILED) /* give the helper its period, then decide */
		d->requeue_ms = min_l(poll_ms, (long)(o->answer_failed_since_ms + poll_ms - o->now_ms));
	if (o->answer != CTL_ANS_SUCCEEDED && !o->deleting_pod)
		d->requeue_ms = min_l(d->requeue_ms, (long)(deadline - o->now_ms));
	if (d->requeue_ms < 0)
		d->requeue_ms = 0;
	d->why = "poll";
}

/* Returns true (and fills d) when a validation rule fails. */
static bool decide_validation(const struct ctl_policy *pol, const struct ctl_obs *o,
			      struct ctl_decision *d)
{
	char msg[CTL_MSG_MAX], why[CTL_MSG_MAX];
	size_t n;

	if (!o->pod_exists) {
		ctl_fmt(msg, sizeof(msg),
		    "Pod %s/%s named by PodCheckpoint %s/%s does not exist; fix spec.podName or create the pod, then create a new PodCheckpoint.",
		    o->ns, o->pod_name, o->ns, o->name);
		fail(o, d, "PodNotFound", msg, "pod-not-found");
		return true;
	}
	if (o->spec_pod_uid[0] && strcmp(o->spec_pod_uid, o->pod_uid) != 0) {
		ctl_fmt(msg, sizeof(msg),
		    "Pod %s/%s has UID %s but PodCheckpoint %s/%s pins UID %s: the pod was replaced; create a new PodCheckpoint for the current pod.",
		    o->ns, o->pod_name, o->pod_uid, o->ns, o->name, o->spec_pod_uid);
		fail(o, d, "SourcePodReplaced", msg, "pod-replaced");
		return true;
	}
	if (o->pod_deleting || strcmp(o->pod_phase, "Running") != 0 || !o->pod_node[0]) {
		ctl_fmt(msg, sizeof(msg),
		    "Pod %s/%s is not running (phase %s%s%s); only a running pod can be checkpointed.",
		    o->ns, o->pod_name, o->pod_phase[0] ? o->pod_phase : "unknown",
		    o->pod_node[0] ? "" : ", not on a node", o->pod_deleting ? ", being deleted" : "");
		fail(o, d, "PodNotRunning", msg, "pod-not-running");
		return true;
	}
	for (size_t i = 0; i < o->nspec_containers; i++) {
		bool found = false;

		for (size_t j = 0; j < o->npod_containers && !found; j++)
			found = strcmp(o->spec_containers[i], o->pod_containers[j]) == 0;
		if (!found) {
			ctl_fmt(msg, sizeof(msg),
			    "Container %s is not a container of pod %s/%s; fix spec.containers of PodCheckpoint %s/%s.",
			    o->spec_containers[i], o->ns, o->pod_name, o->ns, o->name);
			fail(o, d, "ContainerNotFound", msg, "container-not-found");
			return true;
		}
	}
	if (!o->encrypt)
		return false;
	if (!o->secret_exists) {
		ctl_fmt(msg, sizeof(msg),
		    "Secret %s/%s named in spec.encryptionSecret does not exist; create a kubernetes.io/tls Secret with that name.",
		    o->ns, o->secret_name);
		fail(o, d, "SecretNotFound", msg, "secret-not-found");
		return true;
	}
	if (strcmp(o->secret_type, "kubernetes.io/tls") != 0) {
		ctl_fmt(msg, sizeof(msg),
		    "Secret %s/%s has type %s, not kubernetes.io/tls; use a TLS Secret holding the recipient certificate.",
		    o->ns, o->secret_name, o->secret_type[0] ? o->secret_type : "(none)");
		fail(o, d, "SecretWrongType", msg, "secret-wrong-type");
		return true;
	}
	/* The artifact library's sentence, without its final period: it becomes
	 * a clause of ours. */
	ctl_copy(why, sizeof(why), o->cert_msg);
	n = strlen(why);
	while (n && (why[n - 1] == '.' || why[n - 1] == ' '))
		why[--n] = '\0';
	switch (o->cert) {
	case CTL_CERT_OK:
		return false;
	case CTL_CERT_EXPIRED:
	case CTL_CERT_NOT_YET_VALID:
		if (pol->allow_expired)
			return false;
		ctl_fmt(msg, sizeof(msg),
		    "Secret %s/%s cannot be used for encryption: %s; renew the certificate, or start the controller with --allow-expired-certificates.",
		    o->ns, o->secret_name,
		    why[0] ? why
		    : o->cert == CTL_CERT_EXPIRED ? "the certificate in tls.crt has expired"
						  : "the certificate in tls.crt is not yet valid");
		break;
	case CTL_CERT_UNSUPPORTED_KEY:
		ctl_fmt(msg, sizeof(msg), "Secret %s/%s cannot be used for encryption: %s.",
		    o->ns, o->secret_name,
		    why[0] ? why
				   : "its key type is not supported (use RSA >= 2048 or EC P-256/P-384)");
		break;
	case CTL_CERT_MISSING:
		ctl_fmt(msg, sizeof(msg),
		    "Secret %s/%s has no tls.crt; put the recipient certificate (PEM) under tls.crt.",
		    o->ns, o->secret_name);
		break;
	case CTL_CERT_UNCHECKED:
	case CTL_CERT_GARBAGE:
	default:
		ctl_fmt(msg, sizeof(msg),
		    "Secret %s/%s cannot be used for encryption: %s; put the recipient certificate (PEM) under tls.crt.",
		    o->ns, o->secret_name,
		    why[0] ? why : "tls.crt is not a PEM certificate");
		break;
	}
	fail(o, d, "InvalidCertificate", msg, "invalid-certificate");
	return true;
}

/* True when `x` goes before us in the pod's queue. */
static bool other_ahead(const struct ctl_obs *o, const struct ctl_other *x)
{
	if (x->terminal)
		return false;
	if (x->dispatched)
		return true; /* in flight on the helper, deleting or not */
	if (x->deleting)
		return false;
	if (x->creation_ms != o->creation_ms)
		return x->creation_ms < o->creation_ms;
	return x->name && strcmp(x->name, o->name) < 0;
}

/*
 * The first reconcile when it does not dispatch at once: Pending,
 * Ready=False/Pending, observedGeneration, look again at once. Keeps the
 * finalizer action; replaces whatever else d held (a failure decided on
 * the first look at a CR just created, when the caches are most likely to
 * lag behind, is decided again on the next one: terminal is final).
 */
static void initial_pending(const struct ctl_obs *o, struct ctl_decision *d)
{
	char msg[CTL_MSG_MAX];
	unsigned keep = d->actions & CTL_ACT_ADD_FINALIZER;

	memset(d, 0, sizeof(*d));
	ctl_fmt(msg, sizeof(msg), "PodCheckpoint %s/%s is accepted and waits for validation.", o->ns,
	    o->name);
	wait_pending(o, d, msg, 0, "initial-pending");
	d->actions = keep;
}

void ctl_decide(const struct ctl_policy *pol, const struct ctl_obs *o, struct ctl_decision *d)
{
	char msg[CTL_MSG_MAX];
	long poll_ms = (long)pol->poll_seconds * 1000;
	bool first = o->phase == CTL_PHASE_NONE;

	memset(d, 0, sizeof(*d));
	d->requeue_ms = -1;
	d->why = "none";

	if (o->job_sent && !o->st_node[0]) {
		/* Our own dispatch write landed, the watch has not delivered it
		 * yet: a write decided on this copy could only meet 409, and a
		 * deletion decided on it would not know the job exists. */
		d->stale_copy = true;
		d->requeue_ms = CTL_STALE_RETRY_MS;
		d->why = "stale-copy";
		return;
	}
	if (decide_deletion(pol, o, d))
		return;
	if (o->policy_delete && !o->has_finalizer)
		d->actions |= CTL_ACT_ADD_FINALIZER;

	if (first && o->st_node[0]) {
		/* A status without a phase but with a node: not ours to dispatch
		 * again; write the phase, then it is in flight. */
		initial_pending(o, d);
		return;
	}
	if (ctl_phase_terminal(o->phase)) {
		decide_terminal(o, d);
		return;
	}
	if (o->st_node[0]) {
		decide_in_flight(pol, o, d);
		return;
	}
	if (decide_validation(pol, o, d)) {
		if (first)
			initial_pending(o, d);
		return;
	}

	for (size_t i = 0; i < o->nothers; i++) {
		const struct ctl_other *x = &o->others[i];

		if (x->name && strcmp(x->name, o->name) == 0)
			continue;
		if (other_ahead(o, x)) {
			ctl_fmt(msg, sizeof(msg), "waiting for PodCheckpoint %s on the same pod", x->name);
			wait_pending(o, d, msg, poll_ms, "serialised");
			return;
		}
	}

	if (!o->lease_exists || !o->lease_fresh || !o->endpoint[0] || !o->fingerprint[0]) {
		int64_t since = o->creation_ms > 0 ? o->creation_ms : o->first_seen_ms;
		int64_t left_ms = since + (int64_t)pol->helper_wait_seconds * 1000 - o->now_ms;

		if (since <= 0 || left_ms > 0) {
			ctl_fmt(msg, sizeof(msg), "waiting for the node helper on node %s", o->pod_node);
			wait_pending(o, d, msg, min_l(poll_ms, since > 0 ? (long)left_ms : poll_ms),
				     "helper-wait");
			return;
		}
		if (first) {
			initial_pending(o, d);
			return;
		}
		ctl_fmt(msg, sizeof(msg),
		    "No node helper is available on node %s (Lease pcp-helper-%s %s for %ds); check the podcheckpoint-node-helper DaemonSet on that node.",
		    o->pod_node, o->pod_node, o->lease_exists ? "not renewed" : "missing",
		    pol->helper_wait_seconds);
		fail(o, d, "NodeHelperUnavailable", msg, "helper-unavailable");
		return;
	}

	/*
	 * Dispatch: status first (with the resourceVersion precondition), then
	 * the job. At first sight this is the CR's first status write too
	 * (Pending, Ready=False/Pending, observedGeneration and the dispatch
	 * fields in one patch). No Event: the helper's CheckpointStarted (or
	 * the controller's Queued / NodeHelperBusy / failure Event when it does
	 * not start) follows and names the same pod and node.
	 */
	d->write_status = true;
	status_base(o, d);
	d->status.phase = CTL_PHASE_PENDING;
	ctl_copy(d->status.ready_reason, sizeof(d->status.ready_reason), "Pending");
	ctl_fmt(d->status.message, sizeof(d->status.message), "dispatched to the node helper on %s",
	    o->pod_node);
	d->status.set_dispatch = true;
	ctl_copy(d->status.node_name, sizeof(d->status.node_name), o->pod_node);
	ctl_copy(d->status.pod_uid, sizeof(d->status.pod_uid), o->pod_uid);
	if (o->encrypt)
		ctl_copy(d->status.recipient_fp, sizeof(d->status.recipient_fp), o->cert_fingerprint);
	d->status.dispatch_ms = o->now_ms;
	d->actions |= CTL_ACT_DISPATCH;
	d->requeue_ms = poll_ms;
	d->why = first ? "first-dispatch" : "dispatch";
}
