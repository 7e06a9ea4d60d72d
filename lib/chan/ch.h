/*
 * ch.h - the controller <-> node helper channel.
 *
 * Transport: WebSocket over TLS (libwebsockets). The helper serves a
 * self-signed certificate whose SHA-256 fingerprint it publishes in its
 * Lease; the client pins that fingerprint during the TLS handshake (before
 * any byte of its own is sent) and presents its channel token (audience
 * CH_AUDIENCE, never its API token) as "Authorization: Bearer" on the
 * upgrade request. The server first runs a cheap precheck on the service
 * thread (403 at once when it refuses), limits connections per peer and in
 * total, and asks the authority (TokenReview) on its own worker thread while
 * the upgraded connection waits; a refusal there closes the WebSocket with
 * 1008 (policy violation). See docs/channel.md.
 *
 * Protocol: one JSON text message per frame, each with "v": CH_PROTO_VERSION
 * and a "type". The client sends one "job"; the server answers with "state"
 * messages for that job (the first at once, then progress), ending with a
 * final one (succeeded/failed) or when the client's wait ends. A job is
 * identified by the CR's UID: re-sending it returns the existing job's state.
 *
 * Threads: the server runs its lws loop in the thread that calls
 * ch_server_run; precheck and on_job run on that thread and must not block;
 * authenticate runs on the server's auth worker thread.
 * ch_server_notify may be called from any thread.
 *
 * Client: a ch_pool keeps one long-lived connection per helper endpoint, all
 * on one channel thread with one lws context; many jobs share a connection
 * and the helper pushes each job's later states on it. ch_pool_call is
 * blocking and thread-safe. ch_call is a one-shot pool (tools and tests).
 */
#ifndef PCP_CH_H
#define PCP_CH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CH_PROTO_VERSION 2
#define CH_MAX_MESSAGE (256u * 1024u) /* one frame, certificate included */
#define CH_MAX_CONTAINERS 64
#define CH_NAME_MAX 254
#define CH_MAX_CERT_PEM (64u * 1024u) /* a job's cert_pem, decoded */
#define CH_MAX_TOKEN 8000u /* the channel token, both ends (a projected SA token is ~1-2 KiB) */

/* ---------------------------------------------------------------- messages */

enum ch_op {
	CH_OP_CHECKPOINT,      /* "checkpoint": take the checkpoint (idempotent by uid) */
	CH_OP_DELETE_ARTIFACT, /* "delete-artifact": remove the artifact and journal of uid */
	CH_OP_CANCEL,          /* "cancel": the CR was failed; stop the job and clean up */
};

/*
 * A job carries only the CR's identity and what the helper cannot read
 * itself. Everything else (pod, containers, leaveRunning, encrypt,
 * timeoutSeconds, the node) the helper reads from the CR and the pod it
 * GETs, and it acts only on a CR dispatched to its own node.
 */
struct ch_job {
	enum ch_op op;
	char uid[64];           /* the PodCheckpoint's metadata.uid: the job's identity */
	char ns[64];            /* the PodCheckpoint's (and pod's) namespace */
	char name[CH_NAME_MAX]; /* the PodCheckpoint's name */
	char *cert_pem;         /* owned, NULL unless checkpoint with encryption: the
				 * Secret's tls.crt; its fingerprint must equal
				 * status.recipientFingerprint */
};

enum ch_state_kind {
	CH_ACCEPTED,  /* journaled (older name of queued) */
	CH_RUNNING,   /* checkpointing / bundling / encrypting */
	CH_SUCCEEDED, /* artifact durable, status written */
	CH_FAILED,    /* reason + message say why */
	CH_REFUSED,   /* the request itself was bad, or disagrees with its CR */
	CH_QUEUED,    /* journaled, waiting for a free slot on the node */
	CH_BUSY,      /* queue full: nothing journaled, ask again later */
};

struct ch_state {
	char uid[64];
	enum ch_state_kind state;
	char reason[64];    /* CamelCase, for FAILED/REFUSED */
	char message[512];  /* one human sentence */
	uint64_t bytes;     /* artifact bytes written so far */
	char container[CH_NAME_MAX]; /* container being checkpointed, or "" */
};

void ch_job_cleanup(struct ch_job *job);
const char *ch_state_name(enum ch_state_kind s); /* "accepted", ... */
int ch_state_parse_name(const char *s, enum ch_state_kind *out);

/* Encode to a new NUL-terminated JSON text (free() it). 0 or -ENOMEM. */
int ch_job_encode(const struct ch_job *job, char **out);
int ch_state_encode(const struct ch_state *st, char **out);
/*
 * Decode one message. -EPROTO for a wrong or missing version, type or op,
 * -EBADMSG for malformed JSON or a missing/oversized/mistyped field,
 * -EMSGSIZE for a text longer than CH_MAX_MESSAGE, with a sentence in err.
 * Unknown fields are ignored. `job`/`st` is overwritten (a job's previous
 * cert_pem is NOT freed: clean it first); on error it is left zeroed.
 * A job needs uid, namespace and name; certPem is optional (checkpoint only).
 */
int ch_job_decode(const char *text, size_t len, struct ch_job *job, char *err, size_t errlen);
int ch_state_decode(const char *text, size_t len, struct ch_state *st, char *err, size_t errlen);

/* ---------------------------------------------------------------- server */

/*
 * The audience of the channel credential: the controller presents a
 * ServiceAccount token requested for this audience (never its API token), and
 * the helper's TokenReview names it, so the token is good for the channel only.
 */
#define CH_AUDIENCE "channel.checkpointing.dev"

struct ch_server;

/* Verdicts of ch_server_ops.precheck. */
enum ch_auth_verdict {
	CH_AUTH_ALLOW = 0,  /* known good (e.g. a cached TokenReview answer) */
	CH_AUTH_DENY = 1,   /* refused without asking anybody (403) */
	CH_AUTH_REVIEW = 2, /* ask ops.authenticate on the auth worker */
};

struct ch_server_ops {
	/*
	 * Cheap look at the bearer token on the service thread; must not block.
	 * Returns an enum ch_auth_verdict. NULL: always CH_AUTH_REVIEW.
	 */
	int (*precheck)(void *arg, const char *bearer_token);
	/*
	 * The authority (a TokenReview): runs on the server's own auth worker
	 * thread, never on the service thread, and may block (keep it bounded:
	 * a connection waits at most auth_timeout_s). 0: allowed.
	 */
	int (*authenticate)(void *arg, const char *bearer_token);
	/*
	 * A job arrived from an authenticated client. Fill `now` with its state
	 * (accepted, or the existing job's state for a known uid). Return 0, or
	 * negative to refuse (now->reason/message say why). Service thread.
	 */
	int (*on_job)(void *arg, const struct ch_job *job, struct ch_state *now);
	/*
	 * Optional: when the bearer token stops being valid (its "exp", wall-clock
	 * seconds since the epoch; 0 unknown). Service thread, must not block. An
	 * authenticated connection is closed (1001) at min(exp, reauth_s after
	 * its authentication), and the client reconnects with its current token.
	 */
	int64_t (*expires)(void *arg, const char *bearer_token);
	void *arg;
};

/* Defaults of the limits in struct ch_server_opts (0 there means these). */
#define CH_DEFAULT_MAX_CONNS 128          /* connections in total */
#define CH_DEFAULT_MAX_CONNS_PER_PEER 16  /* per peer IP address */
#define CH_DEFAULT_HANDSHAKE_TIMEOUT_S 5  /* accept -> WebSocket established */
#define CH_DEFAULT_AUTH_TIMEOUT_S 8       /* established -> authentication answered */
#define CH_DEFAULT_IDLE_TIMEOUT_S 30      /* no byte either way on an established connection
					   * (the server pings an idle one after half of it) */
#define CH_DEFAULT_REAUTH_S 600           /* an authenticated connection is closed (1001) after
					   * this long (or at its token's exp) to be re-authenticated */
#define CH_CONN_MAX_SUBS 4096u            /* uids one connection is subscribed to (oldest dropped) */
#define CH_DEFAULT_REVIEWS_PER_PEER_PER_MIN 120 /* TokenReviews a peer may cause (burst 4) */
#define CH_DEFAULT_REVIEW_QUEUE 32        /* reviews waiting for the worker, all peers */
#define CH_DEFAULT_REVIEWS_PER_S 20       /* all peers together (burst as many); peers that
					   * authenticated lately are exempt */
#define CH_DEFAULT_CONNS_PER_PEER_PER_S 20 /* new connections (TLS handshakes) a peer may open (burst as many);
					     * peers that authenticated lately are exempt */
#define CH_DEFAULT_MAX_HANDSHAKES 32      /* TLS handshakes in progress at once (~90 KiB of OpenSSL
					   * state each); peers that authenticated lately are exempt */

struct ch_server_opts {
	const char *bind_address; /* "127.0.0.2" or "0.0.0.0" */
	int port;
	const char *cert_pem;     /* serving certificate (PEM, borrowed) */
	const char *key_pem;      /* its private key (PEM, borrowed, not kept) */
	struct ch_server_ops ops;
	/* Limits: 0 = the CH_DEFAULT_* above. */
	int max_conns;
	int max_conns_per_peer;
	int handshake_timeout_s;
	int auth_timeout_s;
	int idle_timeout_s;
	int reauth_s;
	int reviews_per_peer_per_min;
	int review_queue;
	int reviews_per_s;
	int conns_per_peer_per_s;
	int max_handshakes;
};

/* What the guard refused, for tests and figures (service thread counters, read racy). */
struct ch_server_stats {
	uint64_t accepted, refused_total, refused_peer, refused_conn_rate, refused_rate,
		prechecked_deny, reviews, review_denied, timed_out, refused_handshakes;
	unsigned int open_conns;
};
void ch_server_get_stats(struct ch_server *srv, struct ch_server_stats *out);

int ch_server_new(const struct ch_server_opts *opts, struct ch_server **out);
/* Serves until *stop becomes non-zero (checked at least every 200 ms). */
int ch_server_run(struct ch_server *srv, volatile sig_atomic_t *stop);
/* Pushes a state update to every connection waiting on st->uid. Any thread. */
void ch_server_notify(struct ch_server *srv, const struct ch_state *st);
void ch_server_free(struct ch_server *srv);
/* The TCP port the server listens on (useful with opts.port = 0). */
int ch_server_port(const struct ch_server *srv);

/*
 * Makes a self-signed P-256 serving certificate for `ip` (SAN IP), valid
 * `days`. Out: PEM texts (free() them; wipe the key) and the certificate's
 * SHA-256 fingerprint in hex.
 */
int ch_make_self_signed(const char *ip, int days, char **cert_pem, char **key_pem,
			char fingerprint_hex[65]);
/* SHA-256 fingerprint (lowercase hex) of the first certificate in a PEM text. */
int ch_cert_fingerprint(const char *cert_pem, char fingerprint_hex[65]);

/*
 * libwebsockets' own log lines (errors and warnings by default) are routed to
 * LOG_WARN with msg="lws". `lws_levels` is an LLL_* mask; 0 silences them.
 * Process-wide; call before starting servers/calls (tests use 0).
 */
void ch_set_lws_log_levels(int lws_levels);

/* ---------------------------------------------------------------- client */

struct ch_call_opts {
	const char *endpoint;    /* "wss://127.0.0.2:10443" */
	const char *fingerprint; /* expected server certificate SHA-256, hex */
	const char *token;       /* bearer token (not logged) */
	long connect_timeout_ms; /* handshake deadline */
	long wait_ms;            /* how long to wait for a final state after the first */
};

/*
 * Sends `job` and waits for states: returns after a final state
 * (succeeded/failed/refused) or once wait_ms passed since the first answer,
 * with the last state in *last. Errors: -ECONNREFUSED / -ETIMEDOUT /
 * -EHOSTUNREACH (helper unreachable), -EPERM (fingerprint mismatch),
 * -EACCES (refused credentials: 401/403, or closed 1008 after the review),
 * -EAGAIN (the helper is limiting connections or reviews: 429/503, try
 * later), -EPROTO (bad answer); err says which.
 */
int ch_call(const struct ch_call_opts *opts, const struct ch_job *job, struct ch_state *last,
	    char *err, size_t errlen);

/* ---------------------------------------------------------------- client pool */

/*
 * Reads the current channel token into buf (NUL-terminated). 0, or negative
 * with a sentence in err. Called on the pool's thread before each connection
 * and about once a second to notice a rotation (then the connections are
 * re-made with the new token once nothing is in flight on them).
 */
typedef int (*ch_token_fn)(void *arg, char *buf, size_t cap, char *err, size_t errlen);
/*
 * A state the helper pushed for a job sent earlier (whose call has already
 * returned), with the namespace/name of that job. Runs on the pool's thread:
 * must not block and must not call ch_pool_call.
 */
typedef void (*ch_update_fn)(void *arg, const char *ns, const char *name,
			     const struct ch_state *st);

#define CH_POOL_DEFAULT_CONNECT_MS 3000L   /* TCP + TLS + upgrade */
#define CH_POOL_DEFAULT_ANSWER_MS 5000L    /* sent -> first state */
#define CH_POOL_DEFAULT_MAX_AGE_MS 300000L /* re-made (fresh token) after 5 min */
#define CH_POOL_DEFAULT_PING_MS 10000L     /* ping after 10 s without a byte from the helper */
#define CH_POOL_DEFAULT_MAX_QUEUE 256u     /* calls waiting per endpoint */
#define CH_POOL_DEFAULT_IDLE_MS 60000L     /* an unused connection is closed after 1 min */
#define CH_POOL_BACKOFF_MIN_MS 100L
#define CH_POOL_BACKOFF_MAX_MS 30000L

struct ch_pool_opts {
	ch_token_fn token; /* required */
	void *token_arg;
	ch_update_fn on_update; /* NULL: pushed states are dropped */
	void *update_arg;
	long connect_timeout_ms; /* 0: the CH_POOL_DEFAULT_* above */
	long answer_timeout_ms;
	long max_age_ms;
	long ping_ms;
	long idle_ms; /* open, nothing unanswered, no job followed, no call for this long: closed */
	unsigned max_queue;
};

struct ch_pool_stats {
	uint64_t connects;         /* WebSocket connections established */
	uint64_t reconnects;       /* of those, to an endpoint connected before */
	uint64_t connect_failures; /* attempts that failed (each starts or extends a backoff) */
	uint64_t calls, calls_failed;
	unsigned open;             /* connections open now */
};

struct ch_pool;

/* Starts the channel thread. 0, -EINVAL, -ENOMEM, -EIO. */
int ch_pool_new(const struct ch_pool_opts *opts, struct ch_pool **out);
/* Stops the thread and closes every connection. No call may be in progress. NULL-safe. */
void ch_pool_free(struct ch_pool *pool);
/*
 * Sends `job` to the helper at `endpoint` pinned to `fingerprint` on that
 * endpoint's connection (made on first use, kept). Returns at the first
 * answer when wait_ms is 0, else at a final state (succeeded/failed/refused)
 * or wait_ms after the first answer, with the last state in *st (rc 0).
 * Never waits for an endpoint that failed its last connection attempt: while
 * it backs off (100 ms .. 30 s, jittered, re-tried in the background) a call
 * fails at once with that attempt's error. Errors as ch_call, and -EAGAIN
 * when the endpoint's queue is full. A new fingerprint for an endpoint
 * re-makes its connection with the new pin. States the helper pushes later
 * go to opts.on_update; when the connection drops, the jobs not yet final
 * are sent again on the next one (made at once), so their pushes resume
 * without a call. Thread-safe.
 */
int ch_pool_call(struct ch_pool *pool, const char *endpoint, const char *fingerprint,
		 const struct ch_job *job, long wait_ms, struct ch_state *st, char *err,
		 size_t errlen);
void ch_pool_get_stats(struct ch_pool *pool, struct ch_pool_stats *out);

#endif
