/*
 * ch_pool_conn.c - the lws callback of the pool's connections (one per
 * helper endpoint), on the channel thread.
 *
 * Order of events on the wire, and where each guard sits:
 *   TCP connect -> TLS handshake: the server's leaf certificate is pinned in
 *   the verify callback (a mismatch aborts the handshake) -> HTTP upgrade
 *   request: before the Authorization header is added the peer certificate
 *   is checked once more (LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER) ->
 *   101 -> one job -> its first state (we are authenticated) -> the other
 *   queued jobs, states of any of them in any order, pings when idle.
 * The token therefore never leaves the process unless the pin matched. Only
 * one job is sent before the first answer: the server allows one message
 * while it reviews the token, and closes with 1008 on more.
 */
#include "ch.h"
#include "ch_internal.h"
#include "ch_pool_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "log.h"

static struct ch_pool *pool_of(struct lws *wsi)
{
	struct lws_context *ctx = wsi ? lws_get_context(wsi) : NULL;

	return ctx ? lws_context_user(ctx) : NULL;
}

void ch_pool_hs_end(struct ch_pool *p, struct ch_pool_ep *ep)
{
	if (!ep->in_hs)
		return;
	ep->in_hs = false;
	if (p->hs > 0 && --p->hs == 0)
		ch_lws_handshake_end();
}

static void hs_begin(struct ch_pool *p, struct ch_pool_ep *ep)
{
	if (ep->in_hs)
		return;
	if (p->hs++ == 0)
		ch_lws_handshake_begin();
	ep->in_hs = true;
}

/* Compares a certificate with the pin; records what was seen. */
static bool pin_matches(struct ch_pool_ep *ep, X509 *cert)
{
	if (!cert || ch_x509_fingerprint(cert, ep->got_fp) != 0)
		return false;
	return CRYPTO_memcmp(ep->got_fp, ep->want_fp, 64) == 0;
}

/* mu held. 0: accept the certificate. */
static int verify_server_cert(struct ch_pool *p, struct ch_pool_ep *ep, X509_STORE_CTX *xctx)
{
	/* Only the leaf is pinned; the rest of any chain is irrelevant. */
	if (X509_STORE_CTX_get_error_depth(xctx) != 0) {
		X509_STORE_CTX_set_error(xctx, X509_V_OK);
		return 0;
	}
	if (!pin_matches(ep, X509_STORE_CTX_get_current_cert(xctx))) {
		LOG_DEBUG("msg=\"channel pin mismatch during TLS handshake\" endpoint=%s", ep->endpoint);
		ep->pin_mismatch = true;
		ep->pin_ok = false;
		ch_pool_hs_end(p, ep);
		X509_STORE_CTX_set_error(xctx, X509_V_ERR_CERT_REJECTED);
		return 1;
	}
	ep->pin_ok = true;
	ch_pool_hs_end(p, ep);
	X509_STORE_CTX_set_error(xctx, X509_V_OK);
	return 0;
}

/* OpenSSL verify callback of the pool's SSL_CTX (1 = accept): the endpoint by socket. */
int ch_pool_ssl_verify_cb(int preverify_ok, X509_STORE_CTX *xctx)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	int idx = ch_lws_global_init();
	struct ch_pool *p = ssl && idx >= 0 ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), idx) : NULL;
	int fd = ssl ? SSL_get_fd(ssl) : -1, ok = 0;

	(void)preverify_ok;
	if (!p || fd < 0)
		return 0;
	pthread_mutex_lock(&p->mu);
	for (struct ch_pool_ep *ep = p->eps; ep; ep = ep->next) {
		if (ep->state == CH_EP_CONNECTING && ep->wsi && (int)lws_get_socket_fd(ep->wsi) == fd) {
			ok = verify_server_cert(p, ep, xctx) == 0;
			break;
		}
	}
	pthread_mutex_unlock(&p->mu);
	return ok;
}

/* Second guard, right before the token would be written. mu held. */
static bool peer_is_pinned(struct ch_pool_ep *ep, struct lws *wsi)
{
	SSL *ssl = lws_get_ssl(wsi);

	if (!ssl || !ep->pin_ok || ep->pin_mismatch)
		return false;
	if (!pin_matches(ep, SSL_get0_peer_certificate(ssl))) {
		ep->pin_mismatch = true;
		return false;
	}
	return true;
}

/* mu held. 0, or -1 (the connection is dropped; the token is wiped either way). */
static int add_auth_header(struct ch_pool_ep *ep, struct lws *wsi, unsigned char **p,
			   unsigned char *end)
{
	size_t n = ep->toklen + 7;
	unsigned char *v = NULL;
	int rc = -1;

	if (!ep->token || n > (size_t)(end - *p))
		goto out;
	v = malloc(n);
	if (!v)
		goto out;
	memcpy(v, "Bearer ", 7);
	memcpy(v + 7, ep->token, ep->toklen);
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, v, (int)n, p, end) == 0)
		rc = 0;
	OPENSSL_cleanse(v, n);
out:
	free(v);
	if (ep->token) {
		OPENSSL_cleanse(ep->token, ep->toklen);
		free(ep->token);
	}
	ep->token = NULL;
	ep->toklen = 0;
	return rc;
}

static int map_connection_error(struct ch_pool_ep *ep, struct lws *wsi, const char *in, size_t len,
				char *err, size_t errlen)
{
	char why[160];
	unsigned int status = wsi ? lws_http_client_http_response(wsi) : 0;

	snprintf(why, sizeof(why), "%.*s", in ? (int)(len < 150 ? len : 150) : 0, in ? in : "");
	if (ep->pin_mismatch) {
		snprintf(err, errlen, "the helper at %s presented certificate %s, not the pinned %s",
			 ep->endpoint, ep->got_fp[0] ? ep->got_fp : "(none)", ep->want_fp);
		return -EPERM;
	}
	if (status == 401 || status == 403) {
		snprintf(err, errlen, "the helper at %s refused the credentials (HTTP %u)", ep->endpoint,
			 status);
		return -EACCES;
	}
	if (status == 429 || status == 503) {
		snprintf(err, errlen,
			 "the helper at %s is limiting connections (HTTP %u); try again later",
			 ep->endpoint, status);
		return -EAGAIN;
	}
	if (status != 0 && status != 101) {
		snprintf(err, errlen, "the helper at %s answered the upgrade with HTTP %u", ep->endpoint,
			 status);
		return -EPROTO;
	}
	if (strstr(why, "refused") || strstr(why, "Unable to connect") ||
	    strstr(why, "connect failed") || strstr(why, "conn fail")) {
		snprintf(err, errlen, "the helper at %s refused the connection (%s)", ep->endpoint, why);
		return -ECONNREFUSED;
	}
	if (strstr(why, "getaddrinfo") || strstr(why, "unreachable") ||
	    strstr(why, "address family")) {
		snprintf(err, errlen, "the helper at %s is unreachable (%s)", ep->endpoint, why);
		return -EHOSTUNREACH;
	}
	if (strstr(why, "timeout") || strstr(why, "timed out")) {
		snprintf(err, errlen, "the helper at %s did not answer in time (%s)", ep->endpoint, why);
		return -ETIMEDOUT;
	}
	if (strstr(why, "ssl") || strstr(why, "tls") || strstr(why, "SSL") || strstr(why, "TLS")) {
		ep->tls_unverified = !ep->pin_ok;
		snprintf(err, errlen, "the TLS handshake with the helper at %s failed (%s)", ep->endpoint,
			 why);
		return -EPROTO;
	}
	if (!ep->pin_ok) {
		snprintf(err, errlen, "the helper at %s could not be reached (%s)", ep->endpoint,
			 why[0] ? why : "connection failed");
		return -ECONNREFUSED;
	}
	snprintf(err, errlen, "the WebSocket handshake with the helper at %s failed (%s)", ep->endpoint,
		 why[0] ? why : "unknown error");
	return -EPROTO;
}

static bool is_final(enum ch_state_kind k)
{
	return k == CH_SUCCEEDED || k == CH_FAILED || k == CH_REFUSED;
}

/*
 * One complete message from the helper (mu held). A state for a waiting call
 * goes to it; any other state of a job sent on this endpoint is a push:
 * *push is set and *sub says whose (the caller calls on_update unlocked).
 */
static void handle_message(struct ch_pool *p, struct ch_pool_ep *ep, struct ch_state *st,
			   bool *push, struct ch_psub *sub)
{
	struct ch_preq *r, *match = NULL;
	char err[256];
	bool final;
	int rc = ch_state_decode(ep->rx.data, ep->rx.len, st, err, sizeof(err));

	(void)p;
	*push = false;
	dbuf_reset(&ep->rx);
	if (rc) {
		char why[320];

		snprintf(why, sizeof(why), "the helper at %s sent a bad answer: %s", ep->endpoint, err);
		LOG_WARN("msg=\"channel bad message, closing\" endpoint=%s error=\"%s\"", ep->endpoint,
			 err);
		for (r = ep->sent; r; r = ep->sent)
			ch_preq_finish(ep, r, -EPROTO, why);
		ep->closing = true;
		return;
	}
	ep->authed = true; /* a state means the helper took our token */
	final = is_final(st->state);
	for (r = ep->sent; r && !match; r = r->next)
		if (r->uid[0] && strcmp(r->uid, st->uid) == 0)
			match = r;
	/* A refusal of a message the server could not read names no uid we know
	 * (a re-sent subscription's refusal names its own). */
	if (!match && st->state == CH_REFUSED && !ch_pool_sub_take(ep, st->uid, false, NULL))
		for (r = ep->sent; r && !match; r = r->next)
			if (!r->answered)
				match = r;
	if (match) {
		match->st = *st;
		if (!match->answered) {
			match->answered = true;
			match->first_ms = ch_now_ms();
		}
		if (final || match->wait_ms <= 0)
			ch_preq_finish(ep, match, 0, NULL);
		else
			pthread_cond_signal(&match->cv);
		if (final)
			(void)ch_pool_sub_take(ep, st->uid, true, NULL);
		return;
	}
	*push = ch_pool_sub_take(ep, st->uid, final, sub);
}

bool ch_pool_may_send(const struct ch_pool_ep *ep)
{
	if (!ep->sq && !ep->nresub)
		return false;
	/* One message before the first answer: the server takes one while it reviews the token. */
	return ep->authed || (!ep->nsent && !ep->resub_out);
}

/*
 * lws masks a client frame's payload in place: a copy is written, so that
 * the message can be sent again as it was (re-queued after a drop, re-sent
 * as a subscription). 0, or -1 (closed).
 */
static int write_copy(struct lws *wsi, const unsigned char *text, size_t len)
{
	unsigned char *b = malloc(LWS_PRE + len);
	int n;

	if (!b)
		return -1;
	memcpy(b + LWS_PRE, text, len);
	n = lws_write(wsi, b + LWS_PRE, len, LWS_WRITE_TEXT);
	free(b);
	return n < 0 || (size_t)n < len ? -1 : 0;
}

/* mu held: a job the connection dropped before its final state, sent again
 * so that the helper pushes its states on this connection. */
static int write_resub(struct ch_pool_ep *ep, struct lws *wsi)
{
	struct ch_psub *s = ch_pool_sub_next_resend(ep);

	if (!s)
		return 0;
	if (write_copy(wsi, s->msg + LWS_PRE, s->len) != 0)
		return -1;
	ch_pool_sub_sent(ep, s);
	if (!ep->authed)
		ep->resub_out = true;
	return 0;
}

/* mu held: the next queued job (then re-subscription), if the connection may send it now. */
static int write_next(struct ch_pool *p, struct ch_pool_ep *ep, struct lws *wsi)
{
	struct ch_preq *r = ep->sq, **pp;

	(void)p;
	if (!ch_pool_may_send(ep))
		return 0;
	if (!r) {
		if (write_resub(ep, wsi) != 0)
			return -1;
		goto more;
	}
	if (write_copy(wsi, r->buf + LWS_PRE, r->len) != 0)
		return -1; /* closed: ch_pool_ep_down re-queues what was sent */
	ep->sq = r->next;
	if (!ep->sq)
		ep->sq_tail = NULL;
	ep->nsq--;
	r->queued = false;
	r->sent = true;
	r->attempts++;
	r->next = NULL;
	for (pp = &ep->sent; *pp; pp = &(*pp)->next)
		;
	*pp = r;
	ep->nsent++;
	ch_pool_sub_add(ep, r);
more:
	if (ep->authed && ch_pool_may_send(ep))
		lws_callback_on_writable(wsi);
	return 0;
}

void ch_pool_connect(struct ch_pool *p, struct ch_pool_ep *ep)
{
	struct lws_client_connect_info cc;
	struct lws *w;

	memset(&cc, 0, sizeof(cc));
	cc.context = p->ctx;
	cc.address = ep->host;
	cc.port = ep->port;
	cc.ssl_connection = LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED |
			    LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK | LCCSCF_ALLOW_EXPIRED;
	cc.path = ep->path;
	cc.host = ep->host;
	cc.origin = ep->host;
	cc.protocol = CH_POOL_PROTOCOL;
	cc.alpn = "http/1.1";
	cc.opaque_user_data = ep;
	pthread_mutex_lock(&p->mu);
	ep->pin_ok = ep->pin_mismatch = ep->tls_unverified = false;
	ep->got_fp[0] = '\0';
	ep->close_code = 0;
	hs_begin(p, ep);
	pthread_mutex_unlock(&p->mu);
	w = lws_client_connect_via_info(&cc);
	pthread_mutex_lock(&p->mu);
	if (w && ep->state == CH_EP_CONNECTING && lws_get_opaque_user_data(w) == ep) {
		ep->wsi = w;
	} else if (!w && ep->state == CH_EP_CONNECTING) {
		char why[320];

		snprintf(why, sizeof(why), "could not start a connection to %s", ep->endpoint);
		ch_pool_ep_down(p, ep, false, -ECONNREFUSED, why);
	}
	pthread_mutex_unlock(&p->mu);
}

int ch_pool_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		   size_t len)
{
	struct ch_pool *p = pool_of(wsi);
	struct ch_pool_ep *ep;
	struct ch_state st;
	struct ch_psub sub;
	bool push = false;
	int rc = 0;

	if (!p)
		return reason == LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION ? 1 : 0;
	if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
		ch_pool_service(p);
		return 0;
	}
	pthread_mutex_lock(&p->mu);
	ep = wsi ? lws_get_opaque_user_data(wsi) : NULL;
	if (!ep) {
		pthread_mutex_unlock(&p->mu);
		return reason == LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION ||
				       reason == LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER
			       ? 1
			       : 0;
	}
	if (!ep->wsi && ep->state == CH_EP_CONNECTING)
		ep->wsi = wsi; /* a callback before lws_client_connect_via_info returned */
	switch (reason) {
	case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
		rc = verify_server_cert(p, ep, (X509_STORE_CTX *)user);
		break;

	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
		unsigned char **pp = (unsigned char **)in;

		if (!peer_is_pinned(ep, wsi)) {
			ep->pin_mismatch = true;
			rc = -1;
			break;
		}
		rc = add_auth_header(ep, wsi, pp, *pp + len);
		break;
	}

	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
		char err[320];
		int erc = map_connection_error(ep, wsi, in, len, err, sizeof(err));

		lws_set_opaque_user_data(wsi, NULL);
		ch_pool_ep_down(p, ep, false, erc, err);
		break;
	}

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		ch_pool_hs_end(p, ep);
		ep->state = CH_EP_OPEN;
		ep->open_ms = ep->last_rx_ms = ch_now_ms();
		ep->fails = 0;
		ep->lost_tls = 0;
		ep->authed = false;
		p->stats.connects++;
		p->stats.open++;
		ch_pool_mx_conn(1);
		if (ep->ever_open) {
			p->stats.reconnects++;
			ch_pool_mx_reconnect();
		}
		ep->ever_open = true;
		LOG_DEBUG("msg=\"channel connected\" endpoint=%s", ep->endpoint);
		lws_callback_on_writable(wsi);
		break;

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (ep->closing) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
			rc = -1;
			break;
		}
		if (ep->want_ping) {
			unsigned char ping[LWS_PRE + 4];

			ep->want_ping = false;
			ep->ping_out = true;
			if (lws_write(wsi, ping + LWS_PRE, 0, LWS_WRITE_PING) < 0) {
				rc = -1;
				break;
			}
			if (ch_pool_may_send(ep))
				lws_callback_on_writable(wsi);
			break;
		}
		rc = write_next(p, ep, wsi);
		break;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		ep->last_rx_ms = ch_now_ms();
		if (dbuf_add(&ep->rx, in, len) != 0) {
			char why[320];

			snprintf(why, sizeof(why), "the helper at %s sent a message over %u bytes",
				 ep->endpoint, CH_MAX_MESSAGE);
			for (struct ch_preq *r = ep->sent; r; r = ep->sent)
				ch_preq_finish(ep, r, -EPROTO, why);
			rc = -1;
			break;
		}
		if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
			bool was_authed = ep->authed;

			handle_message(p, ep, &st, &push, &sub);
			if ((!was_authed && ch_pool_may_send(ep)) || ep->closing)
				lws_callback_on_writable(wsi);
		}
		break;

	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		ep->last_rx_ms = ch_now_ms();
		ep->ping_out = false;
		break;

	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (in && len >= 2) {
			const unsigned char *b = in;

			ep->close_code = (b[0] << 8) | b[1];
		}
		break;

	case LWS_CALLBACK_CLIENT_CLOSED: {
		char err[320] = "";
		int erc = ep->state == CH_EP_OPEN ? 0
						   : map_connection_error(ep, wsi, NULL, 0, err, sizeof(err));

		lws_set_opaque_user_data(wsi, NULL);
		ch_pool_ep_down(p, ep, ep->state == CH_EP_OPEN, erc, err);
		break;
	}

	default:
		break;
	}
	pthread_mutex_unlock(&p->mu);
	if (push && p->o.on_update)
		p->o.on_update(p->o.update_arg, sub.ns, sub.name, &st);
	return rc;
}
