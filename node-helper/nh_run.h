/*
 * nh_run.h - internal to the job runner (nh_job.c, nh_steps.c): the runner
 * and the state of one job being run. Not part of the helper's interface.
 *
 * Ownership: struct nh_run lives on the worker's stack for one job; it owns
 * r, cert, w, cr and pod; job is borrowed from the queue item.
 */
#ifndef PCP_NH_RUN_H
#define PCP_NH_RUN_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

#include <json-c/json.h>

#include "art.h"
#include "nh_job.h"
#include "nh_sweep.h"

struct kc_client;

struct nh_item {
	char uid[64];
	struct ch_job *job; /* NULL: resume from the journal */
};

struct nh_runner {
	struct nh_options opt; /* copy */
	struct kc_config *cfg;
	struct nh_journal *journal;
	struct nh_kubelet *kubelet;
	struct nh_sweep *sweep; /* borrowed, may be NULL */
	void (*notify)(void *arg, const struct ch_state *st);
	void *notify_arg;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct nh_item queue[NH_QUEUE_MAX];
	size_t head, len;
	char current[64];              /* uid of the job being run, "" (lock) */
	volatile sig_atomic_t stop;    /* the daemon is stopping */
	volatile sig_atomic_t abort;   /* stop, or the current job was cancelled:
					* the kubelet call in flight ends at once */
	volatile sig_atomic_t cancelled; /* the current job was cancelled */
	pthread_t thread;
	bool started;
};

/* One job being run (worker thread only). */
struct nh_run {
	struct nh_runner *rn;
	struct kc_client *kc;
	struct nh_record *r;
	const struct ch_job *job; /* new jobs: with the certificate; NULL on resume */
	struct art_cert *cert;
	struct art_writer *w;
	json_object *cr;  /* last CR seen (owned) */
	json_object *pod; /* the live pod (owned) */
	char why[512];    /* why the job stopped without writing (guard verdict) */
	size_t progress_done; /* containers checkpointed, for status.progress */
	int64_t progress_ms;  /* monotonic time of the last status write (rate of progress writes) */
};

/* A new checkpoint job (journal state accepted). */
void nh_run_checkpoint(struct nh_run *run);
/* From durable on: status, pod delete, done. Safe to repeat. */
void nh_finish(struct nh_run *run);
/* Fails the job: clean up, journal, status (guarded), Warning Event. */
void nh_fail(struct nh_run *run, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Removes the kubelet's plaintext archives recorded in the record. */
void nh_remove_archives(const struct nh_record *r);

#endif
