/*
 * ch_pool_int.h - private: the client pool's state, shared by ch_pool.c
 * (API, calls, the channel thread's housekeeping) and ch_pool_conn.c (the
 * lws callback of the connections: pin, token, messages, errors).
 *
 * Ownership and threads:
 *   - everything below is guarded by pool->mu, except what the comments
 *     say belongs to the channel thread alone;
 *   - a struct ch_preq belongs to the caller of ch_pool_call (on its stack);
 *     it is linked into an endpoint's send queue or sent list under mu, and
 *     the caller unlinks it (under mu) before it returns, so the channel
 *     thread only ever sees live requests;
 *   - endpoints are created by callers (under mu) and freed by the channel
 *     thread only (after a long idle, or in ch_pool_free);
 *   - the channel thread never holds mu while it calls into lws
 *     (lws_service, connect): lws callbacks take mu themselves.
 */
#ifndef PCP_CH_POOL_INT_H
#define PCP_CH_POOL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>

#include "ch.h"
#include "dbuf.h"

#define CH_POOL_PROTOCOL "pcp.checkpointing.dev.v1"
#define CH_POOL_TICK_US (50 * LWS_US_PER_MS)
#define CH_POOL_LINGER_MS 60000L      /* keep re-connecting an endpoint used this recently */
#define CH_POOL_FORGET_MS 600000L     /* an endpoint unused this long is forgotten */
#define CH_POOL_TOKEN_CHECK_MS 1000L  /* how often the token is re-read for rotation */
#define CH_POOL_ROTATE_GRACE_MS 2000L /* a retiring connection closes by then regardless */
#define CH_POOL_LOST_TLS_RETRIES 3    /* see the lws 4.1 quirk in docs/channel.md */
#define CH_POOL_MAX_SUBS 4096u        /* uids followed per endpoint */
#define CH_POOL_SUBS_MIN 16u          /* the subscription array's smallest size (it shrinks back to it) */
#define CH_POOL_SUB_BYTES (1024u * 1024u) /* their messages kept for re-sending, per endpoint */
#define CH_POOL_MAX_ATTEMPTS 3u       /* a request re-sent after its connection dropped */

/* One call waiting in ch_pool_call. */
struct ch_preq {
	struct ch_preq *next;
	char uid[64];
	char ns[64];
	char name[CH_NAME_MAX];
	unsigned char *buf; /* LWS_PRE + len, the caller's */
	size_t len;
	long wait_ms;
	int64_t first_ms; /* first answer */
	bool queued;      /* in ep->sq */
	bool sent;        /* in ep->sent */
	bool answered;
	bool done;
	unsigned attempts;
	int rc;
	struct ch_state st;
	char err[320];
	pthread_cond_t cv;
};

/* A job sent on an endpoint whose states the pool follows (ch_pool_sub.c). */
struct ch_psub {
	char uid[64];
	char ns[64];
	char name[CH_NAME_MAX];
	unsigned char *msg; /* LWS_PRE + len: the job as sent (owned), NULL: not re-sent */
	size_t len;
	bool resend;        /* the connection it was sent on is gone: send it on the next */
};

enum ch_ep_state {
	CH_EP_IDLE,       /* no connection */
	CH_EP_CONNECTING, /* TCP/TLS/upgrade in progress */
	CH_EP_OPEN,       /* upgraded */
};

struct ch_pool_ep {
	struct ch_pool_ep *next;
	char endpoint[256];
	char host[256];
	char path[256];
	int port;
	char want_fp[65]; /* the pin */
	char got_fp[65];  /* what the last handshake presented */
	enum ch_ep_state state;
	struct lws *wsi; /* NULL unless CONNECTING/OPEN */
	bool pin_ok, pin_mismatch, authed, tls_unverified, in_hs, ever_open;
	bool retire;  /* close once nothing is unanswered (token changed, max age) */
	bool closing; /* close at the next writable */
	bool want_ping, ping_out;
	int close_code;
	int64_t connect_ms, open_ms, last_rx_ms, last_used_ms, retry_at_ms, retire_ms;
	unsigned fails;    /* consecutive failed connection attempts */
	unsigned lost_tls; /* handshakes lost to the lws quirk in a row */
	int last_rc;
	char last_err[320];
	unsigned char tok_hash[32]; /* of the token this connection presented */
	char *token;                /* from connect until the header is written, then wiped */
	size_t toklen;
	struct ch_preq *sq, *sq_tail; /* to send, in order */
	unsigned nsq;
	struct ch_preq *sent; /* sent, waiting for an answer (or a final state) */
	unsigned nsent;
	struct ch_psub *subs; /* jobs sent on this endpoint whose states we follow */
	size_t nsubs, subcap;
	size_t sub_bytes;     /* their messages' bytes */
	unsigned nresub;      /* of them, to be re-sent on this connection */
	bool resub_out;       /* a re-sent one went out before the connection was authenticated */
	struct dbuf rx;
};

struct ch_pool {
	struct ch_pool_opts o;
	struct lws_context *ctx;
	SSL_CTX *ssl_ctx;
	struct lws_protocols protocols[2];
	lws_sorted_usec_list_t tick;
	pthread_t th;
	bool th_started;
	atomic_bool stop;
	pthread_mutex_t mu;
	struct ch_pool_ep *eps;
	struct ch_pool_stats stats;
	unsigned hs;               /* handshakes in flight (channel thread only) */
	unsigned char tok_hash[32]; /* of the token last read (channel thread only) */
	int64_t tok_check_ms;      /* channel thread only */
	uint64_t rnd;              /* jitter (channel thread only) */
};

/* ch_pool_ep.c */
void ch_pool_service(struct ch_pool *p); /* housekeeping: tick and wake-ups */
void ch_pool_ep_wipe_token(struct ch_pool_ep *ep);
void ch_pool_ep_free(struct ch_pool_ep *ep);
/* The connection of ep failed or closed (mu held): requests are failed or re-queued. */
void ch_pool_ep_down(struct ch_pool *p, struct ch_pool_ep *ep, bool was_open, int rc,
		     const char *err);
void ch_preq_finish(struct ch_pool_ep *ep, struct ch_preq *r, int rc, const char *err);

/* ch_pool_sub.c (mu held) */
/* r was sent: follow its uid (a copy of its message for re-sending, if room). */
void ch_pool_sub_add(struct ch_pool_ep *ep, const struct ch_preq *r);
/* uid's subscription (identity only into *out); a final state ends it. */
bool ch_pool_sub_take(struct ch_pool_ep *ep, const char *uid, bool final, struct ch_psub *out);
/* The connection dropped: every subscription with a copy is to be re-sent, the rest end. */
void ch_pool_subs_lost(struct ch_pool_ep *ep);
/* The next one to re-send (NULL: none), and: it was written. */
struct ch_psub *ch_pool_sub_next_resend(struct ch_pool_ep *ep);
void ch_pool_sub_sent(struct ch_pool_ep *ep, struct ch_psub *s);
void ch_pool_subs_free(struct ch_pool_ep *ep);

/* ch_pool.c */
void ch_pool_mx_conn(int delta); /* podcheckpoint_channel_connections */
void ch_pool_mx_reconnect(void);

/* ch_pool_conn.c */
int ch_pool_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		   size_t len);
int ch_pool_ssl_verify_cb(int preverify_ok, X509_STORE_CTX *xctx);
/* Starts a connection for ep (mu NOT held; ep->token already set). */
void ch_pool_connect(struct ch_pool *p, struct ch_pool_ep *ep);
void ch_pool_hs_end(struct ch_pool *p, struct ch_pool_ep *ep);
/* There is a job or a re-subscription to write, and the connection may send it now. */
bool ch_pool_may_send(const struct ch_pool_ep *ep);

#endif
