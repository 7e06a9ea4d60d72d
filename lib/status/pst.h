/*
 * pst.h - the PodCheckpoint status rules, one copy for both daemons.
 *
 * Phases and their order, the terminal guard every status writer runs on
 * the CR it just read, and the condition merge. Pure functions: JSON in,
 * JSON out, no I/O, no clock (callers pass "now").
 *
 * The guard is what makes "terminal is final" hold across two writers: a
 * writer GETs the CR, runs pst_guard, builds its patch from that object
 * (metadata.resourceVersion as precondition), and on 409 GETs and guards
 * again. The CRD's transition rule enforces the same in the API server.
 *
 * Ownership: every json_object argument is borrowed; *out objects are new
 * (put them).
 */
#ifndef PCP_PST_H
#define PCP_PST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

enum pst_phase {
	PST_NONE = 0, /* no status yet */
	PST_PENDING,
	PST_RUNNING,
	PST_SUCCEEDED,
	PST_FAILED,
};

/* "Pending", ... ("" for NONE). */
const char *pst_phase_name(enum pst_phase p);
/* 0 and *out; NULL or "" gives NONE; -EINVAL for an unknown name. */
int pst_phase_parse(const char *s, enum pst_phase *out);
static inline bool pst_terminal(enum pst_phase p)
{
	return p == PST_SUCCEEDED || p == PST_FAILED;
}
/* status.phase of a PodCheckpoint; an unknown phase reads as PENDING. */
enum pst_phase pst_cr_phase(json_object *cr);

/* What a writer expects of the CR it is about to write. NULL: not checked. */
struct pst_expect {
	const char *uid;     /* metadata.uid: the job's identity */
	const char *node;    /* status.nodeName must equal it (the helper's node) */
	const char *pod_uid; /* status.podUID must equal it */
};

enum pst_verdict {
	PST_WRITABLE = 0,
	PST_GONE,        /* NULL object, or another object of that name (uid differs) */
	PST_IS_TERMINAL, /* Succeeded or Failed: nothing changes it any more */
	PST_NOT_OURS,    /* dispatched elsewhere, or for another pod (or not at all) */
};

/* Whether the CR may be written by a writer expecting `e`; a sentence in why. */
enum pst_verdict pst_guard(json_object *cr, const struct pst_expect *e, char *why, size_t cap);
const char *pst_verdict_name(enum pst_verdict v);

/* One condition to set (status non-NULL) or drop (status NULL). */
struct pst_cond {
	const char *type;   /* "Ready", "Stalled" */
	const char *status; /* "True", "False", "Unknown", NULL: remove the type */
	const char *reason; /* CamelCase */
	const char *message;
};

/*
 * Reconciling: True until the phase is terminal, then False (kstatus, and so
 * Flux and `kubectl wait`, read InProgress from it). Every status patch
 * carries it next to Ready (reason: Ready's reason).
 */
struct pst_cond pst_reconciling(enum pst_phase phase, const char *reason, const char *message);

/*
 * The conditions list a merge patch must carry (it replaces arrays whole):
 * `current` (status.conditions, may be NULL) in its order with the types of
 * `set` replaced in place, new ones appended, dropped ones left out, a
 * duplicate type kept once. lastTransitionTime is kept when a condition's
 * status did not change, else `now` (RFC 3339). observedGeneration =
 * generation on every condition set here.
 */
int pst_conditions_merge(json_object *current, const struct pst_cond *set, size_t n,
			 int64_t generation, const char *now, json_object **out);

/*
 * The base of every status patch built from the CR `cr` just read:
 * {"metadata":{"resourceVersion":rv},"status":{"phase":phase,
 *  "observedGeneration":g,"message":message,"conditions":[merged]}};
 * `set` (at most 7) plus pst_reconciling(phase, set[0].reason, message).
 * *status is borrowed from *patch, for the caller's further fields.
 */
int pst_patch_new(json_object *cr, enum pst_phase phase, const char *message,
		  const struct pst_cond *set, size_t n, const char *now, json_object **patch,
		  json_object **status);

/*
 * status.progress ({container, containersDone, containersTotal}) is the
 * helper's account of a long checkpoint; a terminal patch removes it (a merge
 * patch's null). 0 or -ENOMEM.
 */
int pst_clear_progress(json_object *status);

/* The patches both daemons write (the caller adds its own fields). */
/* Failed and Succeeded also clear status.progress. */
/* Pending, Ready=False/<reason> (Pending or Queued), Stalled dropped. */
int pst_patch_pending(json_object *cr, const char *reason, const char *message, const char *now,
		      json_object **patch, json_object **status);
/* Running, Ready=False/CheckpointInProgress. */
int pst_patch_running(json_object *cr, const char *message, const char *now,
		      json_object **patch, json_object **status);
/* Failed, Ready=False/CheckpointFailed, Stalled=True/<reason>, completionTime=now. */
int pst_patch_failed(json_object *cr, const char *reason, const char *message, const char *now,
		     json_object **patch, json_object **status);
/* Succeeded, Ready=True/CheckpointCompleted, Stalled=False, completionTime. */
int pst_patch_succeeded(json_object *cr, const char *message, const char *completion,
			const char *now, json_object **patch, json_object **status);

#endif
