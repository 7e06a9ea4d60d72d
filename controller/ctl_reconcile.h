/*
 * ctl_reconcile.h - the controller's pure decision function.
 *
 * ctl_decide() takes everything the controller observed about one
 * PodCheckpoint (the CR, its pod, its Secret, the node helper's Lease, what the
 * helper last answered, the other CRs for the same pod, the time) and returns
 * what to do: the status to write, the Event to emit, the actions to take and
 * when to look again. It does no I/O, reads no clock and keeps no state:
 * every branch is a unit test (tests/unit/controller/test_reconcile.c).
 *
 * The observation is filled from JSON with the ctl_obs_* helpers (also pure)
 * and by the I/O layer (ctl_io.c) for the Lease, the certificate check and
 * the in-memory record of the helper's answers.
 *
 * Ownership: struct ctl_obs and struct ctl_decision are plain values owned by
 * the caller (large: allocate them on the heap in threads with small stacks).
 * ctl_obs.others is borrowed.
 */
#ifndef PCP_CTL_RECONCILE_H
#define PCP_CTL_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define CTL_MAX_CONTAINERS 64
#define CTL_NAME_MAX 254 /* a DNS subdomain (253) + NUL */
#define CTL_NS_MAX 64
#define CTL_UID_MAX 64
#define CTL_MSG_MAX 512
#define CTL_REASON_MAX 64
#define CTL_PATH_MAX 4096
#define CTL_ENDPOINT_MAX 256
/* A copy the memory proves stale (see ctl_obs.job_sent): look again after
 * this unless the watch brings the newer copy first (same as after a 409). */
#define CTL_STALE_RETRY_MS 1000L

#define CTL_FINALIZER "checkpointing.dev/artifact"
#define CTL_REPORTING_CONTROLLER "checkpointing.dev/podcheckpoint-controller"

enum ctl_phase {
	CTL_PHASE_NONE = 0, /* no status yet: first reconcile */
	CTL_PHASE_PENDING,
	CTL_PHASE_RUNNING,
	CTL_PHASE_SUCCEEDED,
	CTL_PHASE_FAILED,
};

/* What the I/O layer found in the Secret's tls.crt (from art_cert_parse). */
enum ctl_cert_check {
	CTL_CERT_UNCHECKED = 0, /* not encrypting, or the Secret is missing/wrong type */
	CTL_CERT_OK,
	CTL_CERT_MISSING,         /* no tls.crt key, or not base64 */
	CTL_CERT_GARBAGE,         /* ART_CERT_GARBAGE */
	CTL_CERT_UNSUPPORTED_KEY, /* ART_CERT_UNSUPPORTED_KEY */
	CTL_CERT_EXPIRED,         /* ART_CERT_EXPIRED */
	CTL_CERT_NOT_YET_VALID,   /* ART_CERT_NOT_YET_VALID */
};

/* The helper's last answer to this CR's job (kept in memory by ctl_io). */
enum ctl_answer {
	CTL_ANS_NONE = 0, /* never answered since this controller started */
	CTL_ANS_ACCEPTED, /* journaled and waiting for a slot ("queued"/"accepted") */
	CTL_ANS_RUNNING,
	CTL_ANS_SUCCEEDED,
	CTL_ANS_FAILED,
	CTL_ANS_REFUSED,
	CTL_ANS_BUSY, /* queue full: nothing journaled, ask again later */
};

/* Another PodCheckpoint naming the same pod (for serialisation). */
struct ctl_other {
	const char *name;    /* borrowed */
	int64_t creation_ms; /* metadata.creationTimestamp */
	bool dispatched;     /* status.nodeName set (dispatched to a helper) */
	bool terminal;       /* Succeeded or Failed */
	bool deleting;       /* deletionTimestamp set */
};

struct ctl_obs {
	int64_t now_ms;

	/* ---- the CR: metadata */
	char ns[CTL_NS_MAX];
	char name[CTL_NAME_MAX];
	char uid[CTL_UID_MAX];
	int64_t generation;
	int64_t creation_ms;   /* 0 when unknown */
	int64_t first_seen_ms; /* when this controller first saw it (fallback for creation) */
	bool deleting;
	int64_t deletion_ms;
	bool has_finalizer; /* CTL_FINALIZER among metadata.finalizers */

	/* ---- the CR: spec */
	char pod_name[CTL_NAME_MAX];
	char spec_pod_uid[CTL_UID_MAX]; /* "" when not pinned */
	size_t nspec_containers;        /* 0: all regular containers */
	char spec_containers[CTL_MAX_CONTAINERS][CTL_NAME_MAX];
	int timeout_seconds; /* per container, default 300 */
	bool leave_running;
	bool encrypt;
	char secret_name[CTL_NAME_MAX];
	bool policy_delete; /* deletionPolicy: Delete */
	bool has_ttl;
	int64_t ttl_seconds;

	/* ---- the CR: status */
	enum ctl_phase phase;
	int64_t observed_generation;
	char st_node[CTL_NAME_MAX];
	char st_pod_uid[CTL_UID_MAX];
	char st_message[CTL_MSG_MAX];
	int64_t dispatch_ms;   /* status.dispatchTime, 0 when not dispatched */
	int64_t start_ms;      /* status.startTime: the helper started it, 0 not yet */
	bool deleting_pod;     /* status.deletingPod: the leaveRunning=false commit point */
	char st_recipient_fp[65]; /* status.recipientFingerprint */
	int64_t completion_ms; /* status.completionTime, 0 when unset */
	char artifact_path[CTL_PATH_MAX]; /* status.artifact.path or checkpointLocation path */
	char ready_status[8];             /* "True"/"False"/"" */
	char ready_reason[CTL_REASON_MAX];
	int64_t ready_transition_ms;

	/* ---- the pod (spec.podName in the CR's namespace) */
	bool pod_exists;
	char pod_uid[CTL_UID_MAX];
	char pod_phase[32];
	char pod_node[CTL_NAME_MAX];
	bool pod_deleting;
	size_t npod_containers; /* regular containers, pod order */
	char pod_containers[CTL_MAX_CONTAINERS][CTL_NAME_MAX];

	/* ---- the Secret (only looked at when encrypt) */
	bool secret_exists;
	char secret_type[64];
	enum ctl_cert_check cert;
	char cert_msg[CTL_MSG_MAX]; /* art_cert_parse's sentence when refused */
	char cert_fingerprint[65];

	/* ---- the node helper (Lease pcp-helper-<node>) */
	bool lease_exists;
	bool lease_fresh; /* renewTime + duration in the future */
	char endpoint[CTL_ENDPOINT_MAX];
	char fingerprint[65];

	/* ---- the I/O layer's memory of the helper's answers for this uid */
	int64_t last_contact_ms; /* last time the helper answered, 0 never */
	enum ctl_answer answer;
	char answer_reason[CTL_REASON_MAX];
	char answer_message[CTL_MSG_MAX];
	int64_t answer_failed_since_ms; /* first time a FAILED answer was seen */
	int64_t artifact_delete_failing_since_ms; /* first failed delete-artifact, 0 none */
	size_t njob_containers; /* containers in the job (for the Timeout deadline), 0 unknown */
	unsigned busy_count;    /* busy answers in a row (for the backoff) */
	bool queued_event_sent; /* the "Queued" Event was emitted for this job */
	char last_error[CTL_MSG_MAX]; /* why the last call to the helper failed, "" */
	/* This controller sent a job message for this uid (ctl_mem_view.job_sent).
	 * It sends one only after a status naming the node was written, and
	 * nothing clears status.nodeName: a copy without st_node is older than
	 * that write. */
	bool job_sent;

	/* ---- other non-deleted CRs naming the same pod (borrowed) */
	const struct ctl_other *others;
	size_t nothers;
};

/* The controller's knobs that the decision depends on. */
struct ctl_policy {
	int helper_wait_seconds; /* default 60 */
	int job_margin_seconds;  /* default 60 */
	int poll_seconds;        /* default 5 */
	int queue_wait_seconds;  /* how long a dispatched job may wait for a slot, default 600 */
	bool allow_expired;      /* --allow-expired-certificates */
};

enum ctl_action {
	CTL_ACT_ADD_FINALIZER = 1u << 0,
	CTL_ACT_DISPATCH = 1u << 1,        /* write status (startTime) first, then send the job */
	CTL_ACT_POLL = 1u << 2,            /* re-send the job, record the answer */
	CTL_ACT_DELETE_ARTIFACT = 1u << 3, /* send delete-artifact, then remove the finalizer */
	CTL_ACT_REMOVE_FINALIZER = 1u << 4,
	CTL_ACT_DELETE_CR = 1u << 5, /* TTL expired */
	CTL_ACT_CANCEL = 1u << 6,    /* after the Failed status is written: tell the helper */
};

struct ctl_status_out {
	enum ctl_phase phase;
	char message[CTL_MSG_MAX];
	int64_t observed_generation;
	bool ready_true;                   /* Ready=True (never written by the controller) */
	char ready_reason[CTL_REASON_MAX]; /* Pending / CheckpointFailed */
	bool stalled;                      /* Stalled=True with stalled_reason */
	char stalled_reason[CTL_REASON_MAX];
	bool set_dispatch; /* write node_name, pod_uid, recipient_fp, dispatch_ms */
	char node_name[CTL_NAME_MAX];
	char pod_uid[CTL_UID_MAX];
	char recipient_fp[65]; /* "" unless encrypt */
	int64_t dispatch_ms;
	int64_t completion_ms; /* 0: leave unset */
};

struct ctl_decision {
	bool write_status;
	struct ctl_status_out status;
	bool event;
	bool event_warning; /* Warning, else Normal */
	bool queued_event;  /* the event is the one-time "Queued" (I/O layer remembers it) */
	char event_reason[CTL_REASON_MAX];
	char event_note[CTL_MSG_MAX];
	unsigned actions;  /* enum ctl_action bits */
	long requeue_ms;   /* -1: no requeue (an informer event will wake us) */
	bool stale_copy;   /* the copy is older than our own dispatch write (rule 0):
			    * nothing decided, look again after CTL_STALE_RETRY_MS */
	const char *why;   /* short static label for the decision log line */
};

/* The decision. Never fails; d is fully overwritten. */
void ctl_decide(const struct ctl_policy *pol, const struct ctl_obs *o, struct ctl_decision *d);

/* "Pending", "Running", ... ("" for NONE). */
const char *ctl_phase_name(enum ctl_phase p);
/* 0 and *out, or -EINVAL for an unknown name ("" gives NONE). */
int ctl_phase_parse(const char *s, enum ctl_phase *out);
/* The same order and names as lib/status (pst_phase). */
static inline bool ctl_phase_terminal(enum ctl_phase p)
{
	return p == CTL_PHASE_SUCCEEDED || p == CTL_PHASE_FAILED;
}
/* Number of containers a job covers: spec.containers, else the pod's, else
 * njob_containers, at least 1. */
size_t ctl_obs_job_containers(const struct ctl_obs *o);

/* ---------------------------------------------------------------- JSON glue (pure) */

/* Resets o and fills the CR fields from a PodCheckpoint object (borrowed). */
int ctl_obs_from_pcp(struct ctl_obs *o, json_object *pcp);
/* Fills the pod fields from a Pod object, or marks the pod missing when NULL. */
void ctl_obs_set_pod(struct ctl_obs *o, json_object *pod);
/*
 * Fills secret_exists/secret_type from a Secret (or NULL: missing) and, when
 * it has a data["tls.crt"], hands back the decoded PEM in *pem (free() it;
 * NULL when absent or not base64, then o->cert = CTL_CERT_MISSING). Only
 * tls.crt is read; nothing of the Secret is logged.
 */
int ctl_obs_set_secret(struct ctl_obs *o, json_object *secret, char **pem, size_t *pem_len);
/* Terminal phase of a PodCheckpoint object (for struct ctl_other). */
void ctl_other_from_pcp(struct ctl_other *x, json_object *pcp);

/*
 * Builds the JSON merge patch for /status from a decision: the status fields,
 * the conditions list (pst_conditions_merge: other types kept, a condition
 * whose status does not change keeps its lastTransitionTime, Stalled
 * dropped unless stalled) and metadata.resourceVersion as precondition. existing_conditions (borrowed)
 * may be NULL. *out is a new object (put it).
 */
int ctl_status_patch(const struct ctl_decision *d, json_object *existing_conditions,
		     const char *resource_version, int64_t now_ms, json_object **out);
/*
 * Merge patch for metadata.finalizers: the CR's list with CTL_FINALIZER added
 * (add=true) or removed, plus metadata.resourceVersion.
 */
int ctl_finalizer_patch(json_object *pcp, bool add, json_object **out);

/* Bounded, always terminated string building (truncates); src NULL is "". */
void ctl_fmt(char *buf, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
void ctl_copy(char *dst, size_t cap, const char *src);

#endif
