/*
 * nh_run.h - internal to the job runner (nh_job.c, nh_steps.c, nh_cr.c,
 * nh_capture.c, nh_finish.c, nh_recover.c): the runner
 * and the state of one job being run. Not part of the helper's interface.
 *
 * Ownership: struct nh_run lives on a slot thread's stack for one job; it
 * owns r, cert, w, cr and pod; job is borrowed from the queue item.
 */
#ifndef PCP_NH_RUN_H
#define PCP_NH_RUN_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "art.h"
#include "nh_job.h"
#include "nh_sweep.h"

struct kc_client;

/* ns/pod: what two jobs must not share while running. */
#define NH_POD_KEY (64 + CH_NAME_MAX + 1)

/*
 * One entry of the runner's queue (rn->lock). Owned by the queue until a
 * slot takes it; then by that slot's thread until it is done (or parked:
 * back at the head of the queue, pod known).
 */
struct nh_item {
	char uid[64];
	char pod[NH_POD_KEY]; /* ns/pod when known (resume, parked), "" until read */
	struct ch_job *job;   /* owned; NULL: resume from the journal */
	int64_t accepted_ms;  /* wall clock of the accept: the queue deadline counts from it */
};

/*
 * One runner thread. kubelet and the kc_client are its thread's alone; uid
 * and pod are written under rn->lock (read by cancel and by other slots'
 * pod claims); abort/cancelled (atomic) are set under rn->lock and read without it
 * (the kubelet call's progress callback, the steps).
 */
struct nh_slot {
	struct nh_runner *rn;
	struct nh_kubelet *kubelet;  /* owned */
	pthread_t thread;
	bool started;
	char uid[64];                /* the job it runs, "" idle */
	char pod[NH_POD_KEY];        /* ns/pod it holds, "" none */
	atomic_int abort; /* stop, or its job was cancelled: the kubelet call ends now */
	atomic_int cancelled; /* its job was cancelled */
};

/*
 * The runner. lock guards queue/len, every slot's uid and pod, and the
 * cancel flags; cond is signalled when an item is queued and broadcast when
 * a slot lets go of a pod. The queue is an array in order (head first) of
 * capacity max_queued_jobs + nslots: a job is accepted while fewer than
 * max_queued_jobs + (idle slots) wait, so running + waiting never exceeds
 * that, and a parked item always fits back.
 */
struct nh_runner {
	struct nh_options opt; /* copy */
	struct kc_config *cfg;
	struct nh_journal *journal;
	struct nh_sweep *sweep; /* borrowed, may be NULL */
	void (*notify)(void *arg, const struct ch_state *st);
	void *notify_arg;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct nh_item *queue; /* owned, cap entries */
	size_t len, cap, qmax;
	struct nh_slot *slots; /* owned, nslots */
	size_t nslots;
	atomic_int stop; /* the daemon is stopping */
};

/* One job being run (its slot's thread only). */
struct nh_run {
	struct nh_runner *rn;
	struct nh_slot *slot;
	bool parked; /* another job of the same pod runs: back to the queue */
	struct kc_client *kc;
	struct nh_record *r;
	const struct ch_job *job; /* new jobs: with the certificate; NULL on resume */
	struct art_cert *cert;
	struct art_writer *w;
	json_object *cr;  /* last CR seen: a GET's or our write's answer (owned) */
	int64_t cr_ms;    /* monotonic time cr was received; 0: re-read before acting */
	json_object *pod; /* the live pod (owned) */
	char why[512];    /* why the job stopped without writing (guard verdict) */
	size_t progress_done; /* containers checkpointed, for status.progress */
	int64_t progress_ms;  /* monotonic time of the last status write (rate of progress writes) */
};

/* The job's primitives (nh_steps.c; the CR's in nh_cr.c), shared by the steps. */
enum nh_patch_kind {
	NH_P_RUNNING,  /* started: startTime, progress at the first container */
	NH_P_PROGRESS, /* a later container (rate-limited, NH_PROGRESS_EVERY_MS) */
	NH_P_SUCCEEDED,
	NH_P_FAILED,
	NH_P_DELETING_POD,
	NH_P_KEPT,
};

/* Journals the record at state s and tells the channel: 0 or the journal's error. */
int nh_save(struct nh_run *run, enum nh_jstate s);
/* nh_save, and a failed journal write fails the job (StorageFailed): false. */
bool nh_step(struct nh_run *run, enum nh_jstate s);
/* The record's state to the channel (and the journal's in-memory progress). */
void nh_notify(struct nh_run *run);
/* Sleeps ms in 100 ms steps, less when the daemon stops. */
void nh_sleep_ms(struct nh_runner *rn, long ms);
/* Prunes the journal by the --journal-* options (after each job, at start). */
void nh_runner_prune(struct nh_runner *rn);
/* The job's Failed status was applied, or the CR no longer wants one (gone,
 * terminal, not ours): journal final_written so the record may be pruned
 * early (nh_prune_policy). A failed write only keeps it longer. */
void nh_mark_final(struct nh_run *run);
/*
 * The job's copy of its CR (nh_cr.c). run->cr is only ever a GET's answer or
 * the answer of the job's own status write (the object as written); either
 * is guarded (pst_guard) at each use. When the API server is asked:
 *  - nh_refresh: GET + guard. At the start of a job, after a 409, and from
 *    nh_cr_current when the copy is not fresh.
 *  - nh_write_status: no GET first: the patch carries the copy's
 *    resourceVersion, so a write by anyone since (the controller's Failed, a
 *    delete and re-create) fails it with 409 (or 404), and only then it
 *    re-reads, guards and decides again.
 *  - nh_cr_current, before acting on the kubelet or the pod: the copy as it
 *    is when it is at most NH_CR_FRESH_MS old and nothing long happened since
 *    (nh_cr_stale after each kubelet call), else nh_refresh.
 * All: 0 ours; -ENOENT gone or replaced; -ESTALE terminal or not dispatched
 * here (run->why says); other: the API server did not answer.
 */
#define NH_CR_FRESH_MS 1000
int nh_refresh(struct nh_run *run);
int nh_cr_current(struct nh_run *run);
/* The copy must be re-read before the next act (a long wait just ended). */
void nh_cr_stale(struct nh_run *run);
/* A status patch from the guarded copy (resourceVersion precondition; 409:
 * re-read, guard, rebuild); -ENOENT/-ESTALE when the guard says no. The
 * answer becomes the copy. */
int nh_write_status(struct nh_run *run, enum nh_patch_kind kind, const char *reason,
		    const char *message);
/* An Event on obj (the CR, the pod); failures only logged. */
void nh_event_on(struct nh_run *run, json_object *obj, const char *type, const char *reason,
		 const char *action, const char *note);
void nh_event(struct nh_run *run, const char *type, const char *reason, const char *action,
	      const char *note);
/* The CR says otherwise: stop without writing status, remove the plaintext and,
 * unless keep_artifact (the status records it), the artifact; journal failed. */
void nh_superseded(struct nh_run *run, bool keep_artifact);

/* Steps 3-5 (nh_capture.c): the kubelet call per container, then the bundle
 * up to durable. false: the job stopped (failed, superseded or stopping). */
bool nh_step_kubelet(struct nh_run *run);
bool nh_step_bundle(struct nh_run *run);
/* A new checkpoint job (journal state accepted). */
void nh_run_checkpoint(struct nh_run *run);
/* From durable on: status, pod delete, done. Safe to repeat. */
void nh_finish(struct nh_run *run);
/* Fails the job: clean up, journal, status (guarded), Warning Event. */
void nh_fail(struct nh_run *run, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Claims run->r->job's pod for run's slot: 0, or -EBUSY when another slot
 * holds it (run->parked is set: the job goes back to the queue, nothing done). */
int nh_runner_claim_pod(struct nh_run *run);
/* Removes the kubelet's plaintext archives recorded in the record. */
void nh_remove_archives(const struct nh_record *r);

#endif
