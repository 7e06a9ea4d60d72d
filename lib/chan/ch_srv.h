/*
 * ch_srv.h - private: the server's state, shared by ch_server.c (vhost,
 * protocol), ch_srv_conn.c (a connection's subscriptions, queue, messages),
 * ch_srv_guard.c (connection limits, timeouts) and ch_srv_auth.c (precheck,
 * review budgets, the auth worker). Not part of the public contract.
 *
 * Ownership: everything here belongs to the service thread (the one in
 * ch_server_run), except
 *   - the pending-notification queue (mu), filled by ch_server_notify;
 *   - the auth queues (amu/acv): the service thread puts review requests in
 *     `aq`, the worker takes one, calls ops.authenticate without any lock and
 *     puts the answer in `ad`, then wakes the loop (lws_cancel_service).
 *     A request belongs to whoever holds it: queue (under amu), worker, done
 *     list (under amu), then the service thread, which frees it.
 */
#ifndef PCP_CH_SRV_H
#define PCP_CH_SRV_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "ch.h"
#include "dbuf.h"

#define CH_SRV_MAX_PEERS 512u /* remembered peer addresses (limits survive reconnects) */
#define CH_SRV_RESERVED_CONNS 16u /* beyond max_conns, for peers that authenticated lately */
#define CH_SRV_GOOD_PEER_MS (15 * 60 * 1000)
/* "Bearer " + the token; lws keeps every connection's headers in a table of
 * CH_SRV_HEADER_DATA bytes from accept on, so it is sized for the token. */
#define CH_MAX_AUTH_HEADER (CH_MAX_TOKEN + 16u)
#define CH_SRV_HEADER_DATA (CH_MAX_AUTH_HEADER + 2048u)

struct ch_out {
	struct ch_out *next;
	size_t len;
	unsigned char buf[]; /* LWS_PRE + len */
};

struct ch_pending {
	struct ch_pending *next;
	struct ch_state st;
};

struct ch_peer {
	char addr[INET6_ADDRSTRLEN]; /* "" : free slot */
	unsigned int conns;
	bool review_pending;   /* at most one review per peer in the queue */
	double tokens;         /* review budget (token bucket) */
	int64_t refill_ms;     /* last refill */
	int64_t used_ms;       /* for eviction of idle peers */
	int64_t good_until_ms; /* authenticated recently: reserved slots, no rate limit */
	double conn_tokens;    /* new-connection budget (token bucket) */
	int64_t conn_refill_ms;
};

enum ch_link_auth {
	CH_LINK_NEW,    /* accepted, not upgraded yet */
	CH_LINK_REVIEW, /* upgraded, waiting for the auth worker */
	CH_LINK_OK,     /* authenticated */
	CH_LINK_DENIED, /* refused: close */
};

/* Per accepted connection (lws opaque user data), from accept to WSI_DESTROY. */
struct ch_link {
	struct ch_link *next;
	uint64_t id;
	struct lws *wsi;
	struct ch_peer *peer;
	struct ch_conn *conn;  /* set once the WebSocket is established */
	enum ch_link_auth auth;
	uint64_t review_id;    /* CH_LINK_REVIEW: the request whose answer it waits for */
	int64_t created_ms, auth_ms, last_ms;
	int64_t token_exp_s;   /* the token's expiry (ops.expires, wall-clock s), 0 unknown */
	int64_t auth_until_ms; /* CH_LINK_OK: re-authenticate (close 1001) at this time */
	bool killed;
	bool in_tls;           /* its TLS handshake has started and not finished (srv->ntls) */
	bool over_tls;         /* started its handshake past max_handshakes: to be closed */
};

/* Per WebSocket connection state: lws allocates (zeroed) and frees it. */
struct ch_conn {
	struct ch_conn *next;
	struct lws *wsi;
	struct ch_link *link;
	bool linked;
	bool subscribed;
	bool close_after_drain;
	bool job_ready;   /* a complete message waits for authentication */
	bool deny_close;  /* authentication refused: close with 1008 */
	bool reauth_close; /* authentication expired: close with 1001, the client reconnects */
	bool want_ping;   /* idle: send a WebSocket ping (the pong proves the peer alive) */
	bool ping_sent;
	char peer[64];
	char (*subs)[64]; /* uids whose states this connection gets (jobs it sent) */
	size_t nsubs, subcap;
	struct dbuf rx;
	struct ch_out *oh, *ot;
	size_t olen;
};

struct ch_areq {
	struct ch_areq *next;
	uint64_t id;           /* links waiting for it carry this review_id */
	struct ch_peer *peer;  /* who asked (service thread only) */
	int verdict;  /* ops.authenticate's answer */
	size_t toklen;
	char token[]; /* toklen + 1, wiped before free */
};

struct ch_limits {
	unsigned int max_conns, max_per_peer, review_queue, max_handshakes;
	int handshake_s, auth_s, idle_s, reauth_s;
	double review_per_ms, review_burst;
	double conn_per_ms, conn_burst;
	double greview_per_ms, greview_burst;
};

/* A review in flight: connections with the same token wait for the same answer. */
struct ch_inflight {
	uint64_t id; /* 0: free */
	unsigned char hash[32];
};

#define CH_SRV_MAX_INFLIGHT 64u /* also the cap of review_queue */

struct ch_log_limit {
	int64_t window_ms;
	unsigned int logged, suppressed;
};

struct ch_server {
	struct lws_context *ctx;
	struct lws_protocols protocols[2];
	struct ch_server_ops ops;
	struct ch_limits lim;
	int port;
	lws_sorted_usec_list_t tick;
	struct ch_conn *conns;  /* service thread only */
	struct ch_link *links;  /* service thread only */
	unsigned int nlinks;
	unsigned int nlinks_peak; /* since the last trim */
	unsigned int ntls;        /* links in their TLS handshake */
	uint64_t next_id, next_review_id;
	struct ch_inflight inflight[CH_SRV_MAX_INFLIGHT];
	struct ch_peer peers[CH_SRV_MAX_PEERS];
	double greview_tokens;  /* the review budget of all peers together */
	int64_t greview_refill_ms;
	struct ch_server_stats stats;
	struct ch_log_limit loglim;

	pthread_mutex_t mu;     /* guards the pending queue */
	struct ch_pending *ph, *pt;
	size_t plen;

	pthread_mutex_t amu;    /* guards aq, ad, aqlen, astop */
	pthread_cond_t acv;
	pthread_t athread;
	bool athread_started;
	bool astop;
	struct ch_areq *aq, *aqt, *ad;
	size_t aqlen;
};

/* ch_srv_guard.c (and ch_srv_auth.c: start, stop, cleanup, upgrade, drain) */
int ch_guard_init(struct ch_server *srv, const struct ch_server_opts *opts);
/* Starts the auth worker once srv->ctx exists (it wakes the loop through it). */
int ch_guard_start(struct ch_server *srv);
void ch_guard_stop(struct ch_server *srv);    /* stops and joins the worker (before lws_context_destroy) */
void ch_guard_cleanup(struct ch_server *srv); /* frees the queues and locks (after it) */
/* LWS_CALLBACK_FILTER_NETWORK_CONNECTION: 0 accept, else refuse (fd = the accepted socket). */
int ch_guard_filter(struct ch_server *srv, int fd);
/* LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED: 0, or -1 to drop the connection. */
int ch_guard_attach(struct ch_server *srv, struct lws *wsi);
/* LWS_CALLBACK_SSL_INFO (handshake start/done): 0, or -1 to drop the
 * connection (more handshakes in progress than max_handshakes). */
int ch_guard_tls_info(struct ch_server *srv, struct lws *wsi, int where);
/* LWS_CALLBACK_WSI_DESTROY. */
void ch_guard_detach(struct ch_server *srv, struct lws *wsi);
struct ch_link *ch_guard_link(struct lws *wsi);
/*
 * LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: reads the bearer token, runs precheck
 * and the limits. 0: proceed (the link is OK, or REVIEW with a request
 * queued); else the HTTP status to answer (401, 403, 429, 503).
 */
unsigned int ch_guard_upgrade(struct ch_server *srv, struct lws *wsi);
/* LWS_CALLBACK_EVENT_WAIT_CANCELLED: applies the worker's answers. */
void ch_guard_drain(struct ch_server *srv);
/* Every tick: enforces handshake, auth and idle deadlines. */
void ch_guard_sweep(struct ch_server *srv);
/* Traffic on a connection (idle timer). */
void ch_guard_touch(struct ch_link *l);
/* At most a few log lines per second for refusals a flood causes. */
bool ch_guard_log_ok(struct ch_server *srv);

/* ch_srv_conn.c: a message is complete and the link is authenticated. */
int ch_conn_handle_message(struct ch_server *srv, struct ch_conn *c);
/* ch_srv_conn.c: idle for half the idle timeout: one WebSocket ping (the pong is traffic). */
void ch_conn_ping(struct ch_conn *c);
/* ch_srv_conn.c: authentication expired: close with 1001 once (the client reconnects). */
void ch_conn_expire(struct ch_server *srv, struct ch_conn *c);
/* ch_srv_conn.c: c gets uid's states (it sent that job). */
bool ch_conn_follows(const struct ch_conn *c, const char *uid);
/* ch_srv_conn.c: queues a state for c; a final one ends c's subscription to its uid. */
int ch_conn_send_state(struct ch_conn *c, const struct ch_state *st);
/* ch_srv_conn.c: frees c's queue, receive buffer and subscriptions (c itself is lws's). */
void ch_conn_release(struct ch_conn *c);

#endif
