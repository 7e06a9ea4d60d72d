/*
 * ch_server.c - the node helper's side of the channel: one libwebsockets
 * TLS vhost, one protocol, one service thread; the messages of a connection.
 *
 * Ownership and the guard (limits, deadlines, the auth worker): ch_srv.h and
 * ch_srv_guard.c. Authentication is decided before the upgrade is answered
 * when it is cheap (no "Authorization: Bearer" -> 401, precheck DENY -> 403,
 * over the peer's review budget -> 429, review queue full -> 503); otherwise
 * the upgrade proceeds, the connection's messages wait, and the auth worker's
 * answer either lets them through or closes with 1008. The link's state is
 * checked again at LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION and before any
 * message is handled, so no path to on_job skips authentication.
 */
#include "ch.h"
#include "ch_internal.h"
#include "ch_srv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>

#include "dbuf.h"
#include "log.h"

#define CH_PROTOCOL_NAME "pcp.checkpointing.dev.v1"
#define CH_SRV_MAX_PENDING 4096u    /* notifications not yet drained */
#define CH_SRV_TICK_US (100 * LWS_US_PER_MS)

static struct ch_server *srv_of(struct lws *wsi)
{
	struct lws_context *ctx = wsi ? lws_get_context(wsi) : NULL;

	return ctx ? lws_context_user(ctx) : NULL;
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
	struct ch_server *srv = lws_container_of(sul, struct ch_server, tick);

	/* So that lws_service() returns and *stop gets checked; and the deadlines. */
	ch_guard_sweep(srv);
	lws_sul_schedule(srv->ctx, 0, &srv->tick, tick_cb, CH_SRV_TICK_US);
}

static void srv_drain_pending(struct ch_server *srv)
{
	struct ch_pending *list;

	pthread_mutex_lock(&srv->mu);
	list = srv->ph;
	srv->ph = srv->pt = NULL;
	srv->plen = 0;
	pthread_mutex_unlock(&srv->mu);

	while (list) {
		struct ch_pending *p = list;

		list = p->next;
		for (struct ch_conn *c = srv->conns; c; c = c->next) {
			if (c->close_after_drain || c->reauth_close || !ch_conn_follows(c, p->st.uid))
				continue;
			if (ch_conn_send_state(c, &p->st) != 0)
				LOG_WARN("msg=\"channel could not queue state\" peer=%s uid=%s",
					 c->peer, p->st.uid);
		}
		free(p);
	}
}

static void conn_unlink(struct ch_server *srv, struct ch_conn *c)
{
	for (struct ch_conn **pp = &srv->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	c->linked = false;
	if (c->link)
		c->link->conn = NULL;
	c->link = NULL;
	ch_conn_release(c);
}

static int srv_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		  size_t len)
{
	struct ch_server *srv = srv_of(wsi);
	struct ch_conn *c = user;
	struct ch_link *l;
	unsigned int code;
	int rc;

	if (!srv)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		/* wsi is the listener here; in is the accepted socket. */
		return ch_guard_filter(srv, (int)(intptr_t)in);

	case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
		return ch_guard_attach(srv, wsi);

	case LWS_CALLBACK_WSI_DESTROY:
		ch_guard_detach(srv, wsi);
		return 0;

	case LWS_CALLBACK_SSL_INFO:
		return in ? ch_guard_tls_info(srv, wsi, ((const struct lws_ssl_info *)in)->where) : 0;

	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		if (!in || strcmp((const char *)in, "websocket") != 0) {
			lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST, NULL);
			return 1;
		}
		code = ch_guard_upgrade(srv, wsi);
		if (code) {
			if (ch_guard_log_ok(srv)) {
				char peer[64];

				lws_get_peer_simple(wsi, peer, sizeof(peer));
				LOG_WARN("msg=\"channel client refused\" peer=%s status=%u", peer, code);
			}
			lws_return_http_status(wsi, code, NULL);
			return 1;
		}
		return 0;

	case LWS_CALLBACK_HTTP:
		/* Plain HTTP requests are not part of the protocol. */
		lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
		return -1;

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		l = ch_guard_link(wsi);
		if (!l || !lws_is_ssl(wsi) || (l->auth != CH_LINK_OK && l->auth != CH_LINK_REVIEW)) {
			LOG_WARN("msg=\"channel upgrade without authentication refused\"");
			return 1;
		}
		return 0;

	case LWS_CALLBACK_ESTABLISHED:
		l = ch_guard_link(wsi);
		if (!c || !l || l->auth == CH_LINK_NEW)
			return -1;
		c->wsi = wsi;
		c->link = l;
		l->conn = c;
		ch_guard_touch(l);
		dbuf_init(&c->rx, CH_MAX_MESSAGE);
		lws_get_peer_simple(wsi, c->peer, sizeof(c->peer));
		c->next = srv->conns;
		srv->conns = c;
		c->linked = true;
		LOG_DEBUG("msg=\"channel connection\" peer=%s", c->peer);
		if (l->auth == CH_LINK_DENIED) { /* refused before it was established */
			c->deny_close = true;
			lws_callback_on_writable(wsi);
		}
		return 0;

	case LWS_CALLBACK_RECEIVE:
		if (!c || !c->linked || !c->link)
			return -1;
		ch_guard_touch(c->link);
		if (c->close_after_drain || c->deny_close || c->reauth_close ||
		    c->link->auth == CH_LINK_DENIED)
			return 0; /* the conversation is over (the close is on its way); ignore */
		if (c->job_ready) {
			/* One message while authentication is pending, nothing more. */
			static const char why[] = "one message before authentication";

			lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)why,
					 sizeof(why) - 1);
			return -1;
		}
		rc = dbuf_add(&c->rx, in, len);
		if (rc) {
			static const char why[] = "message too large";

			LOG_WARN("msg=\"channel message refused\" peer=%s error=\"larger than %u bytes\"",
				 c->peer, CH_MAX_MESSAGE);
			lws_close_reason(wsi, rc == -EMSGSIZE ? LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE
							      : LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
					 (unsigned char *)why, sizeof(why) - 1);
			return -1;
		}
		if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) != 0)
			return 0;
		if (c->link->auth == CH_LINK_REVIEW) {
			c->job_ready = true; /* handled when the auth worker answers */
			return 0;
		}
		if (ch_conn_handle_message(srv, c) != 0)
			return -1;
		return 0;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!c || !c->linked)
			return -1;
		ch_guard_touch(c->link);
		if (c->deny_close) {
			static const char why[] = "unauthorized";

			lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)why,
					 sizeof(why) - 1);
			return -1;
		}
		if (c->reauth_close && !c->oh) {
			static const char why[] = "re-authenticate";

			lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, (unsigned char *)why,
					 sizeof(why) - 1);
			return -1;
		}
		if (c->want_ping) {
			unsigned char ping[LWS_PRE + 4];

			c->want_ping = false;
			c->ping_sent = true;
			if (lws_write(wsi, ping + LWS_PRE, 0, LWS_WRITE_PING) < 0)
				return -1;
			if (c->oh || c->reauth_close || c->close_after_drain)
				lws_callback_on_writable(wsi);
			return 0;
		}
		if (c->oh) {
			struct ch_out *o = c->oh;
			int n;

			c->oh = o->next;
			if (!c->oh)
				c->ot = NULL;
			c->olen--;
			n = lws_write(wsi, o->buf + LWS_PRE, o->len, LWS_WRITE_TEXT);
			rc = n < 0 || (size_t)n < o->len;
			free(o);
			if (rc)
				return -1;
		}
		if (c->oh || c->reauth_close) {
			lws_callback_on_writable(wsi);
		} else if (c->close_after_drain) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
			return -1;
		}
		return 0;

	case LWS_CALLBACK_RECEIVE_PONG:
		if (c && c->linked && c->link) {
			ch_guard_touch(c->link);
			c->ping_sent = false;
		}
		return 0;

	case LWS_CALLBACK_CLOSED:
		if (c && c->linked)
			conn_unlink(srv, c);
		return 0;

	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		ch_guard_drain(srv);
		srv_drain_pending(srv);
		return 0;

	default:
		return 0;
	}
}

static bool is_ipv4_literal(const char *s)
{
	unsigned char a[4];

	return s && inet_pton(AF_INET, s, a) == 1;
}

int ch_server_new(const struct ch_server_opts *opts, struct ch_server **out)
{
	struct lws_context_creation_info info;
	struct ch_server *srv = NULL;
	struct lws_vhost *vh;
	int rc = -EINVAL;

	*out = NULL;
	if (!opts || !opts->cert_pem || !opts->key_pem || !opts->ops.authenticate ||
	    !opts->ops.on_job || opts->port < 0 || opts->port > 65535)
		goto out;
	ch_lws_global_init();
	rc = -ENOMEM;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		goto out;
	if (pthread_mutex_init(&srv->mu, NULL) != 0) {
		free(srv);
		srv = NULL;
		goto out;
	}
	srv->ops = opts->ops;
	if (ch_guard_init(srv, opts) != 0) {
		pthread_mutex_destroy(&srv->mu);
		free(srv);
		srv = NULL;
		goto out;
	}
	srv->protocols[0].name = CH_PROTOCOL_NAME;
	srv->protocols[0].callback = srv_cb;
	srv->protocols[0].per_session_data_size = sizeof(struct ch_conn);
	srv->protocols[0].rx_buffer_size = 16384;

	memset(&info, 0, sizeof(info));
	info.port = opts->port;
	info.iface = opts->bind_address && strcmp(opts->bind_address, "0.0.0.0") != 0
			     ? opts->bind_address
			     : NULL;
	info.protocols = srv->protocols;
	info.vhost_name = "pcp";
	/*
	 * ALLOW_NON_SSL_ON_SSL_PORT makes lws peek at a new connection before it
	 * starts TLS: a silent one costs no OpenSSL handshake state (~60 KiB of
	 * read and handshake buffers) until its first byte. A first byte that is
	 * not a TLS record would be served as plain HTTP: ch_guard_upgrade and
	 * FILTER_PROTOCOL_CONNECTION refuse any connection without TLS.
	 */
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_VALIDATE_UTF8 |
		       LWS_SERVER_OPTION_ALLOW_NON_SSL_ON_SSL_PORT;
	if (!opts->bind_address || is_ipv4_literal(opts->bind_address))
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.user = srv;
	info.gid = -1;
	info.uid = -1;
	info.server_ssl_cert_mem = opts->cert_pem;
	info.server_ssl_cert_mem_len = (unsigned int)strlen(opts->cert_pem);
	info.server_ssl_private_key_mem = opts->key_pem;
	info.server_ssl_private_key_mem_len = (unsigned int)strlen(opts->key_pem);
	info.alpn = "http/1.1";
	info.ssl_info_event_mask = SSL_CB_HANDSHAKE_START | SSL_CB_HANDSHAKE_DONE;
	/* lws's own deadlines (TLS accept, headers) as a first line; ch_guard_sweep
	 * enforces ours whatever state a connection is in. */
	info.timeout_secs = (unsigned int)srv->lim.handshake_s;
	info.keepalive_timeout = srv->lim.handshake_s;
	info.max_http_header_data = (unsigned short)CH_SRV_HEADER_DATA;
	info.pt_serv_buf_size = 32768;
	info.fd_limit_per_thread = srv->lim.max_conns + CH_SRV_RESERVED_CONNS + 16u; /* + listener, pipes */
	info.count_threads = 1;

	srv->ctx = ch_lws_create_context(&info, 0);
	if (!srv->ctx) {
		LOG_ERROR("msg=\"channel server could not start\" address=%s port=%d "
			  "error=\"address in use or unusable, or certificate/key not loadable\"",
			  opts->bind_address ? opts->bind_address : "0.0.0.0", opts->port);
		rc = -EIO;
		goto out;
	}
	rc = ch_guard_start(srv);
	if (rc) {
		LOG_ERROR("msg=\"channel server could not start its auth worker\" rc=%d", rc);
		goto out;
	}
	vh = lws_get_vhost_by_name(srv->ctx, "pcp");
	srv->port = vh ? lws_get_vhost_listen_port(vh) : opts->port;
	lws_sul_schedule(srv->ctx, 0, &srv->tick, tick_cb, CH_SRV_TICK_US);
	LOG_INFO("msg=\"channel server listening\" address=%s port=%d",
		 opts->bind_address ? opts->bind_address : "0.0.0.0", srv->port);
	*out = srv;
	srv = NULL;
	rc = 0;
out:
	ch_server_free(srv);
	return rc;
}

int ch_server_port(const struct ch_server *srv)
{
	return srv ? srv->port : -1;
}

int ch_server_run(struct ch_server *srv, volatile sig_atomic_t *stop)
{
	int rc = 0;

	if (!srv || !stop)
		return -EINVAL;
	while (!*stop) {
		if (lws_service(srv->ctx, 0) < 0) {
			LOG_ERROR("msg=\"channel server loop failed\"");
			rc = -EIO;
			break;
		}
	}
	return rc;
}

void ch_server_notify(struct ch_server *srv, const struct ch_state *st)
{
	struct ch_pending *p, *drop = NULL;

	if (!srv || !st)
		return;
	p = malloc(sizeof(*p));
	if (!p) {
		LOG_WARN("msg=\"channel notify dropped\" uid=%.63s error=\"out of memory\"", st->uid);
		return;
	}
	p->next = NULL;
	p->st = *st;
	p->st.uid[sizeof(p->st.uid) - 1] = '\0';
	pthread_mutex_lock(&srv->mu);
	if (srv->plen >= CH_SRV_MAX_PENDING) {
		drop = srv->ph;
		srv->ph = drop->next;
		if (!srv->ph)
			srv->pt = NULL;
		srv->plen--;
	}
	if (srv->pt)
		srv->pt->next = p;
	else
		srv->ph = p;
	srv->pt = p;
	srv->plen++;
	pthread_mutex_unlock(&srv->mu);
	if (drop) {
		LOG_WARN("msg=\"channel notify queue full, dropped oldest\" uid=%s", drop->st.uid);
		free(drop);
	}
	lws_cancel_service(srv->ctx);
}

void ch_server_free(struct ch_server *srv)
{
	if (!srv)
		return;
	/* The worker wakes the loop through ctx: stop it first. */
	ch_guard_stop(srv);
	if (srv->ctx) {
		lws_sul_cancel(&srv->tick);
		lws_context_destroy(srv->ctx);
		srv->ctx = NULL;
	}
	ch_guard_cleanup(srv);
	while (srv->ph) {
		struct ch_pending *p = srv->ph;

		srv->ph = p->next;
		free(p);
	}
	pthread_mutex_destroy(&srv->mu);
	free(srv);
}
