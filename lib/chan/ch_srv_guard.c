/*
 * ch_srv_guard.c - what stands between the network and the channel's
 * protocol: connection limits per peer and in total, the links' bookkeeping,
 * and the handshake/auth/idle deadlines. Authentication (precheck, review
 * budgets, the auth worker) is ch_srv_auth.c.
 *
 * Order for one connection:
 *   accept      -> ch_guard_filter: refused at once (fd closed before any TLS
 *                  state exists) over max_conns or max_conns_per_peer
 *   instantiate -> ch_guard_attach: a struct ch_link (lws opaque user data)
 *   upgrade     -> ch_guard_upgrade (ch_srv_auth.c): 401 no token; precheck DENY 403;
 *                  ALLOW -> OK; REVIEW -> per-peer budget (429) and queue
 *                  room (503), then a request for the worker
 *   established -> messages are buffered until the worker answers:
 *                  allowed -> handled; refused -> close 1008
 *   destroy     -> ch_guard_detach: counts released, queued request dropped
 * ch_guard_sweep closes links past their deadline (LWS_TO_KILL_ASYNC).
 */
#include "ch_srv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/ssl.h>

#include "ch_internal.h"
#include "log.h"

#define CH_LOG_PER_SEC 5u
#define CH_SRV_TRIM_AFTER 32u /* connections at once before a malloc_trim is worth it */

static int pos_or(int v, int dflt)
{
	return v > 0 ? v : dflt;
}

bool ch_guard_log_ok(struct ch_server *srv)
{
	int64_t now = ch_now_ms();
	struct ch_log_limit *l = &srv->loglim;

	if (now - l->window_ms >= 1000) {
		if (l->suppressed)
			LOG_WARN("msg=\"channel refusals not logged\" count=%u window_ms=%lld", l->suppressed,
				 (long long)(now - l->window_ms));
		l->window_ms = now;
		l->logged = 0;
		l->suppressed = 0;
	}
	if (l->logged < CH_LOG_PER_SEC) {
		l->logged++;
		return true;
	}
	l->suppressed++;
	return false;
}

int ch_guard_init(struct ch_server *srv, const struct ch_server_opts *o)
{
	struct ch_limits *l = &srv->lim;
	int per_min = pos_or(o->reviews_per_peer_per_min, CH_DEFAULT_REVIEWS_PER_PEER_PER_MIN);

	l->max_conns = (unsigned)pos_or(o->max_conns, CH_DEFAULT_MAX_CONNS);
	l->max_per_peer = (unsigned)pos_or(o->max_conns_per_peer, CH_DEFAULT_MAX_CONNS_PER_PEER);
	l->max_handshakes = (unsigned)pos_or(o->max_handshakes, CH_DEFAULT_MAX_HANDSHAKES);
	l->review_queue = (unsigned)pos_or(o->review_queue, CH_DEFAULT_REVIEW_QUEUE);
	if (l->review_queue > CH_SRV_MAX_INFLIGHT)
		l->review_queue = CH_SRV_MAX_INFLIGHT;
	l->handshake_s = pos_or(o->handshake_timeout_s, CH_DEFAULT_HANDSHAKE_TIMEOUT_S);
	l->auth_s = pos_or(o->auth_timeout_s, CH_DEFAULT_AUTH_TIMEOUT_S);
	l->idle_s = pos_or(o->idle_timeout_s, CH_DEFAULT_IDLE_TIMEOUT_S);
	l->reauth_s = pos_or(o->reauth_s, CH_DEFAULT_REAUTH_S);
	l->review_per_ms = (double)per_min / 60000.0;
	l->review_burst = 4.0;
	l->conn_burst = (double)pos_or(o->conns_per_peer_per_s, CH_DEFAULT_CONNS_PER_PEER_PER_S);
	l->conn_per_ms = l->conn_burst / 1000.0;
	l->greview_burst = (double)pos_or(o->reviews_per_s, CH_DEFAULT_REVIEWS_PER_S);
	l->greview_per_ms = l->greview_burst / 1000.0;
	srv->greview_tokens = l->greview_burst;
	srv->greview_refill_ms = ch_now_ms();
	if (pthread_mutex_init(&srv->amu, NULL) != 0)
		return -ENOMEM;
	if (pthread_cond_init(&srv->acv, NULL) != 0) {
		pthread_mutex_destroy(&srv->amu);
		return -ENOMEM;
	}
	return 0;
}

static int peer_addr(int fd, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		return -errno;
	if (ss.ss_family == AF_INET) {
		if (!inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf, (socklen_t)cap))
			return -EINVAL;
	} else if (ss.ss_family == AF_INET6) {
		struct in6_addr a = ((struct sockaddr_in6 *)&ss)->sin6_addr;

		/* One IPv6 peer is a /64 (one host can have all of it); v4-mapped stay whole. */
		if (!IN6_IS_ADDR_V4MAPPED(&a))
			memset(a.s6_addr + 8, 0, 8);
		if (!inet_ntop(AF_INET6, &a, buf, (socklen_t)cap))
			return -EINVAL;
	} else {
		return -EAFNOSUPPORT;
	}
	return 0;
}

/* The peer's slot; `add` takes a free one or evicts the least recently used idle peer. */
static struct ch_peer *peer_find(struct ch_server *srv, const char *addr, bool add)
{
	struct ch_peer *free_slot = NULL, *lru = NULL;

	for (size_t i = 0; i < CH_SRV_MAX_PEERS; i++) {
		struct ch_peer *p = &srv->peers[i];

		if (p->addr[0] && strcmp(p->addr, addr) == 0)
			return p;
		if (!p->addr[0]) {
			if (!free_slot)
				free_slot = p;
		} else if (p->conns == 0 && !p->review_pending && (!lru || p->used_ms < lru->used_ms)) {
			lru = p;
		}
	}
	if (!add)
		return NULL;
	if (!free_slot)
		free_slot = lru;
	if (!free_slot)
		return NULL;
	memset(free_slot, 0, sizeof(*free_slot));
	snprintf(free_slot->addr, sizeof(free_slot->addr), "%s", addr);
	free_slot->tokens = srv->lim.review_burst;
	free_slot->conn_tokens = srv->lim.conn_burst;
	free_slot->refill_ms = free_slot->conn_refill_ms = ch_now_ms();
	return free_slot;
}

/* Token bucket of new connections (each costs a TLS handshake). */
static bool peer_may_connect(struct ch_server *srv, struct ch_peer *p)
{
	int64_t now = ch_now_ms();

	p->conn_tokens += (double)(now - p->conn_refill_ms) * srv->lim.conn_per_ms;
	if (p->conn_tokens > srv->lim.conn_burst)
		p->conn_tokens = srv->lim.conn_burst;
	p->conn_refill_ms = now;
	if (p->conn_tokens < 1.0)
		return false;
	p->conn_tokens -= 1.0;
	return true;
}

int ch_guard_filter(struct ch_server *srv, int fd)
{
	char addr[INET6_ADDRSTRLEN];
	struct ch_peer *p;

	if (peer_addr(fd, addr, sizeof(addr)) != 0)
		return 1;
	p = peer_find(srv, addr, false);
	/* A flood from many addresses can fill max_conns; a peer that
	 * authenticated lately (the controller) still finds a reserved slot. */
	if (srv->nlinks >= srv->lim.max_conns &&
	    !(p && p->good_until_ms > ch_now_ms() &&
	      srv->nlinks < srv->lim.max_conns + CH_SRV_RESERVED_CONNS)) {
		srv->stats.refused_total++;
		if (ch_guard_log_ok(srv))
			LOG_WARN("msg=\"channel connection refused\" peer=%s why=\"%u connections open (limit)\"",
				 addr, srv->nlinks);
		return 1;
	}
	if (p && p->good_until_ms <= ch_now_ms() && !peer_may_connect(srv, p)) {
		srv->stats.refused_conn_rate++;
		if (ch_guard_log_ok(srv))
			LOG_WARN("msg=\"channel connection refused\" peer=%s why=\"more than %.0f new connections per second from this peer\"",
				 addr, srv->lim.conn_burst);
		return 1;
	}
	if (p && p->conns >= srv->lim.max_per_peer) {
		srv->stats.refused_peer++;
		if (ch_guard_log_ok(srv))
			LOG_WARN("msg=\"channel connection refused\" peer=%s why=\"%u connections from this peer (limit)\"",
				 addr, p->conns);
		return 1;
	}
	return 0;
}

int ch_guard_attach(struct ch_server *srv, struct lws *wsi)
{
	char addr[INET6_ADDRSTRLEN];
	struct ch_link *l;
	struct ch_peer *p;
	int fd = (int)lws_get_socket_fd(wsi);

	if (ch_guard_link(wsi))
		return 0; /* attached at its TLS start (ch_guard_tls_info) */
	if (fd < 0 || peer_addr(fd, addr, sizeof(addr)) != 0)
		return -1;
	p = peer_find(srv, addr, true);
	if (!p || p->conns >= srv->lim.max_per_peer ||
	    srv->nlinks >= srv->lim.max_conns + CH_SRV_RESERVED_CONNS)
		return -1;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -1;
	l->id = ++srv->next_id;
	l->wsi = wsi;
	l->peer = p;
	l->auth = CH_LINK_NEW;
	l->created_ms = l->last_ms = ch_now_ms();
	p->conns++;
	p->used_ms = l->created_ms;
	l->next = srv->links;
	srv->links = l;
	srv->nlinks++;
	if (srv->nlinks > srv->nlinks_peak)
		srv->nlinks_peak = srv->nlinks;
	srv->stats.accepted++;
	lws_set_opaque_user_data(wsi, l);
	return 0;
}

/*
 * A connection's first byte starts TLS (ch_server_new): from then until the
 * handshake is done OpenSSL holds ~90 KiB for it. Half-open handshakes from
 * many addresses could fill every slot with that; past max_handshakes at
 * once a new one is dropped, unless its peer authenticated lately.
 */
int ch_guard_tls_info(struct ch_server *srv, struct lws *wsi, int where)
{
	struct ch_link *l = ch_guard_link(wsi);

	/* A first byte at accept starts TLS before lws reports the connection. */
	if (!l && (ch_guard_attach(srv, wsi) != 0 || !(l = ch_guard_link(wsi))))
		return -1;
	if ((where & SSL_CB_HANDSHAKE_START) && !l->in_tls && l->auth == CH_LINK_NEW && !l->conn) {
		if (srv->ntls >= srv->lim.max_handshakes &&
		    !(l->peer && l->peer->good_until_ms > ch_now_ms())) {
			srv->stats.refused_handshakes++;
			if (ch_guard_log_ok(srv))
				LOG_WARN("msg=\"channel connection refused\" peer=%s why=\"%u TLS handshakes in progress (limit)\"",
					 l->peer ? l->peer->addr : "?", srv->ntls);
			l->over_tls = true; /* and closed by ch_guard_sweep, should lws not */
			return -1;
		}
		l->in_tls = true;
		srv->ntls++;
	}
	if ((where & SSL_CB_HANDSHAKE_DONE) && l->in_tls) {
		l->in_tls = false;
		srv->ntls--;
	}
	return 0;
}

struct ch_link *ch_guard_link(struct lws *wsi)
{
	return wsi ? lws_get_opaque_user_data(wsi) : NULL;
}

void ch_guard_detach(struct ch_server *srv, struct lws *wsi)
{
	struct ch_link *l = ch_guard_link(wsi);

	if (!l)
		return;
	lws_set_opaque_user_data(wsi, NULL);
	for (struct ch_link **pp = &srv->links; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	srv->nlinks--;
	if (l->in_tls)
		srv->ntls--;
	if (l->peer) {
		l->peer->conns--;
		l->peer->used_ms = ch_now_ms();
	}
	/* A review it asked for still comes back (ch_guard_drain) and finds no link: fine. */
	if (l->conn)
		l->conn->link = NULL;
	free(l);
}

void ch_guard_touch(struct ch_link *l)
{
	if (l)
		l->last_ms = ch_now_ms();
}

static void kill_link(struct ch_server *srv, struct ch_link *l, const char *why)
{
	char peer[64];

	if (l->killed)
		return;
	l->killed = true;
	srv->stats.timed_out++;
	if (ch_guard_log_ok(srv)) {
		lws_get_peer_simple(l->wsi, peer, sizeof(peer));
		LOG_WARN("msg=\"channel connection closed\" peer=%s why=\"%s\"", peer, why);
	}
	lws_set_timeout(l->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void ch_guard_sweep(struct ch_server *srv)
{
	int64_t now = ch_now_ms();

	/* After a flood is over, give the freed TLS state back to the system. */
	if (srv->nlinks == 0 && srv->nlinks_peak >= CH_SRV_TRIM_AFTER) {
		srv->nlinks_peak = 0;
		(void)malloc_trim(0);
	}

	for (struct ch_link *l = srv->links; l; l = l->next) {
		if (l->over_tls)
			kill_link(srv, l, "too many TLS handshakes in progress");
		else if (l->auth == CH_LINK_NEW && !l->conn &&
		    now - l->created_ms > (int64_t)srv->lim.handshake_s * 1000)
			kill_link(srv, l, "no WebSocket upgrade within the handshake timeout");
		else if (l->auth == CH_LINK_REVIEW && now - l->auth_ms > (int64_t)srv->lim.auth_s * 1000)
			kill_link(srv, l, "authentication not answered in time");
		else if (l->auth == CH_LINK_OK && now - l->last_ms > (int64_t)srv->lim.idle_s * 1000)
			kill_link(srv, l, "idle");
		else if (l->auth == CH_LINK_OK && l->conn && now >= l->auth_until_ms + 2000)
			kill_link(srv, l, "authentication expired and the connection did not close");
		else if (l->auth == CH_LINK_OK && l->conn && now >= l->auth_until_ms)
			ch_conn_expire(srv, l->conn);
		else if (l->auth == CH_LINK_OK && l->conn &&
			 now - l->last_ms > (int64_t)srv->lim.idle_s * 500)
			ch_conn_ping(l->conn);
		else if (l->auth == CH_LINK_DENIED && now - l->last_ms > 2000)
			kill_link(srv, l, "refused");
	}
}

void ch_server_get_stats(struct ch_server *srv, struct ch_server_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!srv)
		return;
	*out = srv->stats;
	out->open_conns = srv->nlinks;
}
