/*
 * ctl_mem.h - what this controller remembers about one job, by CR uid
 * (prefix ctl_mem_): first sight, the helper's last answer, failures, the
 * certificate used at dispatch. Not in the API: lost on restart, which the
 * decision allows for (ctl_reconcile.h).
 *
 * A sharded map keyed by uid (ctl_smap.h), a shard lock held only for one
 * O(1) lookup or update. A
 * record is ~200 bytes (messages on the heap, only when set), created when
 * a reconcile of a live CR first needs it and freed when the CR is deleted,
 * or as soon as the cache shows it terminal with nothing left to do (no
 * artifact deletion pending): a terminal CR never dispatches again, so its
 * memory is never read again.
 *
 * Ownership: the table owns its records; ctl_mem_snapshot copies one out
 * into a struct ctl_mem_view whose cert_pem the caller frees with
 * ctl_mem_view_cleanup. Every function accepts a NULL table.
 */
#ifndef PCP_CTL_MEM_H
#define PCP_CTL_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl_reconcile.h"

struct ctl_mem_table;

/* A copy of one record, for one reconcile. */
struct ctl_mem_view {
	int64_t first_seen_ms;
	int64_t last_contact_ms;
	enum ctl_answer answer;
	char answer_reason[CTL_REASON_MAX];
	char answer_message[CTL_MSG_MAX];
	int64_t answer_failed_since_ms;
	int64_t delete_failing_since_ms;
	char last_error[CTL_MSG_MAX];
	size_t ncontainers;  /* the job's container count, kept for polls after the pod is gone */
	unsigned busy_count; /* busy answers in a row */
	bool queued_event_sent;
	bool job_sent;       /* this controller sent (or tried to send) a checkpoint job */
	char *cert_pem;      /* the Secret's public tls.crt used at dispatch (not secret data) */
};

int ctl_mem_table_new(struct ctl_mem_table **out);
void ctl_mem_table_free(struct ctl_mem_table *t);
size_t ctl_mem_count(struct ctl_mem_table *t);

/*
 * Copies the record of uid into *out. When there is none: with `create`,
 * makes one (first_seen = now); without, *out is all zero. 0 or -ENOMEM.
 */
int ctl_mem_snapshot(struct ctl_mem_table *t, const char *uid, int64_t now, bool create,
		     struct ctl_mem_view *out);
void ctl_mem_view_cleanup(struct ctl_mem_view *v);
/* Frees the record of uid, if any. */
void ctl_mem_forget(struct ctl_mem_table *t, const char *uid);

/*
 * The outcome of one helper call: rc != 0 keeps err as last_error; rc == 0
 * records the answer (reason, message). For a checkpoint job, reached or
 * not, job_sent is set, and ncontainers (when > 0) and cert_pem (when the
 * record has none) are kept. job_sent is cleared only with the record
 * (ctl_mem_forget): the controller sends a job only after a status naming
 * the node was written, and nothing clears status.nodeName, so it stays
 * true for the life of the uid (the stale-copy guard, ctl_obs.job_sent).
 */
void ctl_mem_record_call(struct ctl_mem_table *t, const char *uid, int64_t now, int rc,
			 enum ctl_answer answer, const char *reason, const char *message,
			 const char *err, bool checkpoint, const char *cert_pem, size_t ncontainers);
/* The outcome of one delete-artifact call. */
void ctl_mem_delete_result(struct ctl_mem_table *t, const char *uid, int64_t now, bool ok,
			   const char *err);
/* The one-time Queued Event was sent. */
void ctl_mem_mark_queued_event(struct ctl_mem_table *t, const char *uid);

#endif
