/*
 * nh_journal.h - the on-disk job journal and the in-memory job table.
 *
 * One JSON file per job, <state-dir>/jobs/<uid>.json, replaced atomically
 * (fsu_write_atomic) at every step. The journal also keeps a small summary
 * of every job in memory (state, reason, message, progress) so the channel
 * thread can answer "what is the state of uid X" while the worker thread
 * runs it; one mutex guards that table. Full records (large: up to 64
 * containers) live on disk and are read back with nh_journal_get; callers
 * heap-allocate them.
 *
 * States, in order: accepted -> checkpointing -> bundling -> durable ->
 * status-written -> [deleting-pod -> pod-deleted ->] done; or failed.
 * The certificate PEM of a job is never journaled (not needed after
 * bundling; only the fingerprint is kept).
 */
#ifndef PCP_NH_JOURNAL_H
#define PCP_NH_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "art.h"
#include "ch.h"

enum nh_jstate {
	NH_J_ACCEPTED,
	NH_J_CHECKPOINTING,
	NH_J_BUNDLING,
	NH_J_DURABLE,
	NH_J_STATUS_WRITTEN,
	NH_J_DELETING_POD,
	NH_J_POD_DELETED,
	NH_J_DONE,
	NH_J_FAILED,
};

#define NH_ARCHIVE_MAX 1024

/*
 * What the job is about. Only uid/ns/name (and op) come from the channel;
 * the rest is read from the PodCheckpoint and the pod when the job starts
 * (nh_job.c) and journaled so a restart resumes on the same facts.
 */
struct nh_jobspec {
	enum ch_op op;
	char uid[64];
	char ns[64];
	char name[CH_NAME_MAX];
	char pod[CH_NAME_MAX];     /* spec.podName */
	char pod_uid[64];          /* status.podUID (set by the controller at dispatch) */
	char node[CH_NAME_MAX];    /* status.nodeName: this helper's node */
	size_t ncontainers;
	char containers[CH_MAX_CONTAINERS][CH_NAME_MAX];
	int timeout_seconds;       /* spec.timeoutSeconds, per container */
	bool leave_running;        /* spec.leaveRunning */
	bool encrypt;              /* spec.encrypt */
	char secret_name[CH_NAME_MAX]; /* spec.encryptionSecret, for messages */
};

/* What the kubelet gave for one container. */
struct nh_cresult {
	char name[CH_NAME_MAX];
	char archive[NH_ARCHIVE_MAX];   /* path as seen by the helper (host-root applied) */
	char checkpoint_time[32];       /* RFC 3339 */
	char sha256[ART_SHA256_HEX];    /* of the archive, once bundled */
	uint64_t size_bytes;
};

struct nh_record {
	struct nh_jobspec job;
	enum nh_jstate state;
	char reason[64];          /* failed: the CamelCase reason */
	char message[512];        /* last human sentence */
	char pod_uid[64];         /* the live pod's UID (for the delete precondition) */
	size_t nresults;
	struct nh_cresult results[CH_MAX_CONTAINERS];
	struct art_result artifact; /* valid from durable on */
	bool pod_deleted;
	char accepted_time[32];
	char completion_time[32];
	char start_time[32];      /* when the job really started (status.startTime) */
	int64_t kubelet_started;  /* epoch s of the kubelet call in flight, 0 none */
	uint64_t bytes;           /* progress */
	char container[CH_NAME_MAX]; /* container in progress, or "" */
	/* failed: no status of this job is wanted any more: its Failed status
	 * was applied, or the CR is gone, terminal or not ours (a done record
	 * is so by its order of steps: status-written comes before done) */
	bool final_written;
};

const char *nh_jstate_name(enum nh_jstate s);
int nh_jstate_parse(const char *s, enum nh_jstate *out);

/* Channel view of a record. */
void nh_record_to_ch_state(const struct nh_record *r, struct ch_state *st);

/* JSON round trip (exposed for tests). to_json: a new object; from_json
 * fills r (zeroed first), -EBADMSG with a sentence in err when malformed. */
int nh_record_to_json(const struct nh_record *r, json_object **out);
int nh_record_from_json(json_object *obj, struct nh_record *r, char *err, size_t errlen);
/* The record's file text (nh_jtext.c): the JSON of nh_record_to_json written
 * directly into b (appended), no json-c tree. 0, -ENOMEM or -EMSGSIZE. */
struct dbuf;
int nh_record_to_text(const struct nh_record *r, struct dbuf *b);

/* What to do with a record found at start. */
enum nh_resume {
	NH_RESUME_NOTHING,     /* done or failed: only answer queries */
	NH_RESUME_INTERRUPTED, /* before durable: fail with reason Interrupted */
	NH_RESUME_CONTINUE,    /* durable or later: finish status / pod delete */
};
enum nh_resume nh_resume_decide(const struct nh_record *r);

struct nh_journal;

/* Creates <state_dir>/jobs (0700) and loads every <uid>.json in it.
 * Unreadable files are logged and skipped (renamed *.bad). */
int nh_journal_open(const char *state_dir, struct nh_journal **out);
void nh_journal_free(struct nh_journal *j);

/*
 * Fault-injection seam for tests: called before every record write; a
 * negative return fails that write with it (e.g. -ENOSPC). NULL: none.
 */
typedef int (*nh_journal_fault_fn)(void *arg, const struct nh_record *r);
void nh_journal_set_fault(struct nh_journal *j, nh_journal_fault_fn fn, void *arg);

/* Writes the record to disk, then updates the in-memory table. */
int nh_journal_save(struct nh_journal *j, const struct nh_record *r);
/* Reads the record of uid from disk into *r: 0, -ENOENT or -EBADMSG. */
int nh_journal_get(struct nh_journal *j, const char *uid, struct nh_record *r);
/* The channel view of uid from memory: 0 or -ENOENT. */
int nh_journal_state(struct nh_journal *j, const char *uid, struct ch_state *st,
		     enum nh_jstate *js);
/* Removes the file and the table entry: 0 or -ENOENT. */
int nh_journal_remove(struct nh_journal *j, const char *uid);
/* Updates in-memory progress only (not persisted). */
void nh_journal_progress(struct nh_journal *j, const char *uid, uint64_t bytes,
			 const char *container);
/* "queued" marks a record as in the runner's queue or running (in memory). */
int nh_journal_set_queued(struct nh_journal *j, const char *uid, bool queued);
bool nh_journal_is_queued(struct nh_journal *j, const char *uid);
size_t nh_journal_count(struct nh_journal *j);
/* Copies the uids of all records (caller frees *uids). */
int nh_journal_uids(struct nh_journal *j, char (**uids)[64], size_t *n);

/*
 * Which finished (done/failed) records go. A record in the runner's queue
 * or running never goes, nor one that is not finished. A finished record
 * goes when it completed more than keep_seconds ago; a settled one (done,
 * or failed with final_written: the CR needs nothing more from this job)
 * already after settled_keep_seconds; and while there are more than
 * max_records records the oldest settled ones go first, whatever their
 * age. An unsettled failed record (its Failed status not known applied)
 * goes only by keep_seconds. 0 disables each rule.
 */
struct nh_prune_policy {
	long keep_seconds;         /* --journal-keep-seconds */
	long settled_keep_seconds; /* --journal-settled-keep-seconds */
	size_t max_records;        /* --journal-max-records */
};

/* Most record files a prune unlinks in one hold of the journal's mutex. */
#define NH_PRUNE_BATCH 256

/*
 * Prunes by the policy: each record's file is unlinked, then its table
 * entry dropped, then (once, at the end) the directory fsynced, so a crash
 * part-way leaves only whole records, every one of them still valid. The
 * records are marked once, then unlinked in batches of at most
 * NH_PRUNE_BATCH per hold of the journal's mutex; between two batches the
 * threads waiting for it have it first (for at most 50 ms), so a prune of
 * thousands delays another journal call by one batch, not by all of it. A
 * marked record that the runner takes, or that is written, before its batch
 * stays. Pruning removes job records only, never an artifact:
 * delete-artifact recomputes a pruned record's path. Returns how many went;
 * 0 at once if another thread's prune is running (it does the work).
 */
size_t nh_journal_prune(struct nh_journal *j, const struct nh_prune_policy *p);

/* Fault seam for tests: called before each prune unlink; non-zero stops the
 * prune there (a crash part-way). NULL: none. */
typedef int (*nh_journal_prune_fault_fn)(void *arg, const char *uid);
void nh_journal_set_prune_fault(struct nh_journal *j, nh_journal_prune_fault_fn fn, void *arg);

/* Journal file path for uid: 0 or -ENAMETOOLONG / -EINVAL (unsafe uid). */
int nh_journal_path(const char *state_dir, const char *uid, char *buf, size_t cap);

#endif
