/*
 * ch_pool.c - the controller's side of the channel: one long-lived
 * connection per node helper, multiplexing jobs and their states, on one
 * channel thread with one lws context (see ch.h and docs/channel.md).
 *
 * A call queues its encoded job on the endpoint's send queue and waits on
 * its own condition variable (with a deadline); the channel thread connects
 * when there is something to send, writes the queue, matches states to the
 * waiting calls by uid and hands the rest (states pushed later) to
 * opts.on_update. This file holds the API, the requests and the thread's
 * housekeeping (connect, backoff, token rotation, max age, keepalive);
 * ch_pool_conn.c holds the lws callback. Locking: ch_pool_int.h.
 */
#include "ch.h"
#include "ch_internal.h"
#include "ch_pool_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "log.h"
#include "mx.h"

static struct mx_family *mx_conns, *mx_reconnects, *mx_calls;

static void pool_metrics_register(void)
{
	mx_conns = mx_gauge("podcheckpoint_channel_connections",
			    "Channel connections to node helpers open now.", NULL);
	mx_reconnects = mx_counter("podcheckpoint_channel_reconnects_total",
				   "Channel connections re-made to a node helper connected before "
				   "(dropped, token rotated, max age, new pin).",
				   NULL);
	mx_calls = mx_counter("podcheckpoint_channel_calls_total",
			      "Jobs sent over the channel, by result (ok, unavailable, refused, busy, "
			      "timeout, error).",
			      "result");
}

void ch_pool_mx_conn(int delta)
{
	mx_gauge_add(mx_conns, delta, NULL, 0);
}

void ch_pool_mx_reconnect(void)
{
	mx_counter_add(mx_reconnects, 1, NULL, 0);
}

static const char *call_result(int rc)
{
	switch (rc) {
	case 0:
		return "ok";
	case -ECONNREFUSED:
	case -EHOSTUNREACH:
		return "unavailable";
	case -EPERM:
	case -EACCES:
		return "refused";
	case -EAGAIN:
		return "busy";
	case -ETIMEDOUT:
		return "timeout";
	default:
		return "error";
	}
}

/* ---------------------------------------------------------------- helpers */

static long pos_or(long v, long dflt)
{
	return v > 0 ? v : dflt;
}

static int parse_endpoint(struct ch_pool_ep *ep, const char *endpoint)
{
	char buf[512];
	const char *prot = NULL, *ads = NULL, *path = NULL;
	int port = 0;

	if (snprintf(buf, sizeof(buf), "%s", endpoint) >= (int)sizeof(buf))
		return -EINVAL;
	if (lws_parse_uri(buf, &prot, &ads, &port, &path) != 0 || !prot ||
	    strcmp(prot, "wss") != 0 || !ads || !*ads || port <= 0 || port > 65535)
		return -EINVAL;
	if (snprintf(ep->host, sizeof(ep->host), "%s", ads) >= (int)sizeof(ep->host) ||
	    snprintf(ep->path, sizeof(ep->path), "/%s", path ? path : "") >= (int)sizeof(ep->path) ||
	    snprintf(ep->endpoint, sizeof(ep->endpoint), "%s", endpoint) >= (int)sizeof(ep->endpoint))
		return -EINVAL;
	ep->port = port;
	return 0;
}

/* A token is sent as a header value: no control characters, bounded. */
static int token_ok(const char *tok, char *err, size_t errlen)
{
	size_t n = strlen(tok);

	if (n == 0 || n > CH_POOL_MAX_TOKEN) {
		snprintf(err, errlen, "the bearer token is empty or longer than %u bytes",
			 CH_POOL_MAX_TOKEN);
		return -EINVAL;
	}
	for (const char *q = tok; *q; q++) {
		if ((unsigned char)*q < 0x20 || *q == 0x7f) {
			snprintf(err, errlen, "the bearer token contains control characters");
			return -EINVAL;
		}
	}
	return 0;
}

static void ep_wipe_token(struct ch_pool_ep *ep)
{
	if (ep->token) {
		OPENSSL_cleanse(ep->token, ep->toklen);
		free(ep->token);
	}
	ep->token = NULL;
	ep->toklen = 0;
}

static void ep_free(struct ch_pool_ep *ep)
{
	if (!ep)
		return;
	ep_wipe_token(ep);
	free(ep->subs);
	dbuf_cleanup(&ep->rx);
	free(ep);
}

/* mu held. */
static struct ch_pool_ep *ep_get(struct ch_pool *p, const char *endpoint, int *rc)
{
	struct ch_pool_ep *ep;

	for (ep = p->eps; ep; ep = ep->next)
		if (strcmp(ep->endpoint, endpoint) == 0)
			return ep;
	ep = calloc(1, sizeof(*ep));
	if (!ep) {
		*rc = -ENOMEM;
		return NULL;
	}
	*rc = parse_endpoint(ep, endpoint);
	if (*rc) {
		free(ep);
		return NULL;
	}
	dbuf_init(&ep->rx, CH_MAX_MESSAGE);
	ep->next = p->eps;
	p->eps = ep;
	return ep;
}

/* ---------------------------------------------------------------- requests */

static void preq_unlink(struct ch_pool_ep *ep, struct ch_preq *r)
{
	struct ch_preq **pp, *prev = NULL;

	if (r->queued) {
		for (pp = &ep->sq; *pp; prev = *pp, pp = &(*pp)->next) {
			if (*pp == r) {
				*pp = r->next;
				if (ep->sq_tail == r)
					ep->sq_tail = prev;
				ep->nsq--;
				break;
			}
		}
	} else if (r->sent) {
		for (pp = &ep->sent; *pp; pp = &(*pp)->next) {
			if (*pp == r) {
				*pp = r->next;
				ep->nsent--;
				break;
			}
		}
	}
	r->next = NULL;
	r->queued = r->sent = false;
}

void ch_preq_finish(struct ch_pool_ep *ep, struct ch_preq *r, int rc, const char *err)
{
	preq_unlink(ep, r);
	r->rc = rc;
	if (rc && err)
		snprintf(r->err, sizeof(r->err), "%s", err);
	r->done = true;
	pthread_cond_signal(&r->cv);
}

void ch_pool_sub_add(struct ch_pool_ep *ep, const struct ch_preq *r)
{
	struct ch_psub *s = NULL;

	if (!r->uid[0])
		return;
	for (size_t i = 0; i < ep->nsubs && !s; i++)
		if (strcmp(ep->subs[i].uid, r->uid) == 0)
			s = &ep->subs[i];
	if (!s) {
		if (ep->nsubs == ep->subcap) {
			if (ep->subcap >= CH_POOL_MAX_SUBS) {
				memmove(ep->subs, ep->subs + 1, (ep->nsubs - 1) * sizeof(*ep->subs));
				ep->nsubs--;
			} else {
				size_t cap = ep->subcap ? ep->subcap * 2 : 16;
				struct ch_psub *n = realloc(ep->subs, cap * sizeof(*n));

				if (!n)
					return; /* pushes for it are lost; polls still work */
				ep->subs = n;
				ep->subcap = cap;
			}
		}
		s = &ep->subs[ep->nsubs++];
	}
	snprintf(s->uid, sizeof(s->uid), "%s", r->uid);
	snprintf(s->ns, sizeof(s->ns), "%s", r->ns);
	snprintf(s->name, sizeof(s->name), "%s", r->name);
}

bool ch_pool_sub_take(struct ch_pool_ep *ep, const char *uid, bool final, struct ch_psub *out)
{
	for (size_t i = 0; i < ep->nsubs; i++) {
		if (strcmp(ep->subs[i].uid, uid) != 0)
			continue;
		if (out)
			*out = ep->subs[i];
		if (final) {
			memmove(ep->subs + i, ep->subs + i + 1,
				(ep->nsubs - i - 1) * sizeof(*ep->subs));
			ep->nsubs--;
		}
		return true;
	}
	return false;
}

static long backoff_ms(struct ch_pool *p, unsigned fails)
{
	unsigned k = fails > 0 ? fails - 1 : 0;
	long d = CH_POOL_BACKOFF_MIN_MS << (k > 9 ? 9 : k);
	long j;

	if (d > CH_POOL_BACKOFF_MAX_MS)
		d = CH_POOL_BACKOFF_MAX_MS;
	/* xorshift64: +-20 % so that helpers restarted together are not hit together */
	p->rnd ^= p->rnd << 13;
	p->rnd ^= p->rnd >> 7;
	p->rnd ^= p->rnd << 17;
	j = (long)(p->rnd % (uint64_t)(d * 2 / 5 + 1));
	return d - d / 5 + j;
}

void ch_pool_ep_down(struct ch_pool *p, struct ch_pool_ep *ep, bool was_open, int rc,
		     const char *err)
{
	struct ch_preq *back = NULL, *last = NULL, *r, *next;
	unsigned nback = 0;
	int64_t now = ch_now_ms();
	bool emsg_done = false;
	char why[320];

	ch_pool_hs_end(p, ep);
	ep->wsi = NULL;
	ep->state = CH_EP_IDLE;
	ep->authed = ep->want_ping = ep->ping_out = ep->closing = ep->retire = false;
	ep->pin_ok = ep->pin_mismatch = false;
	dbuf_reset(&ep->rx);
	ep_wipe_token(ep);
	if (was_open) {
		int code = ep->close_code;

		p->stats.open--;
		ch_pool_mx_conn(-1);
		ep->close_code = 0;
		/* The server's subscriptions were this connection's: what is re-sent subscribes again. */
		free(ep->subs);
		ep->subs = NULL;
		ep->nsubs = ep->subcap = 0;
		if (code == LWS_CLOSE_STATUS_POLICY_VIOLATION) {
			snprintf(why, sizeof(why), "the helper at %s refused the credentials (closed 1008)",
				 ep->endpoint);
			ep->fails++;
			ep->last_rc = -EACCES;
			snprintf(ep->last_err, sizeof(ep->last_err), "%s", why);
			ep->retry_at_ms = now + backoff_ms(p, ep->fails);
			p->stats.connect_failures++;
		}
		for (r = ep->sent; r; r = next) {
			next = r->next;
			if (r->answered) {
				ch_preq_finish(ep, r, 0, NULL);
			} else if (code == LWS_CLOSE_STATUS_POLICY_VIOLATION) {
				ch_preq_finish(ep, r, -EACCES, why);
			} else if (code == LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE && !emsg_done) {
				emsg_done = true;
				snprintf(why, sizeof(why), "the helper at %s refused the job as too large",
					 ep->endpoint);
				ch_preq_finish(ep, r, -EMSGSIZE, why);
			} else if (r->attempts >= CH_POOL_MAX_ATTEMPTS) {
				snprintf(why, sizeof(why),
					 "the helper at %s closed the connection without answering (code %d)",
					 ep->endpoint, code);
				ch_preq_finish(ep, r, -EPROTO, why);
			} else {
				/* Jobs are idempotent by uid: send it again on the next connection. */
				preq_unlink(ep, r);
				r->queued = true;
				if (last)
					last->next = r;
				else
					back = r;
				last = r;
				nback++;
			}
		}
		if (back) { /* ahead of what was not sent yet, in their order */
			last->next = ep->sq;
			if (!ep->sq)
				ep->sq_tail = last;
			ep->sq = back;
			ep->nsq += nback;
		}
		if (code == LWS_CLOSE_STATUS_POLICY_VIOLATION)
			for (r = ep->sq; r; r = next) {
				next = r->next;
				ch_preq_finish(ep, r, -EACCES, why);
			}
		return;
	}
	if (ep->tls_unverified && ep->lost_tls < CH_POOL_LOST_TLS_RETRIES) {
		/* The lws 4.1 quirk, not the helper: try again at once. */
		ep->tls_unverified = false;
		ep->lost_tls++;
		ep->retry_at_ms = now;
		return;
	}
	ep->tls_unverified = false;
	ep->lost_tls = 0;
	ep->fails++;
	ep->last_rc = rc ? rc : -EPROTO;
	snprintf(ep->last_err, sizeof(ep->last_err), "%s", err ? err : "the connection failed");
	ep->retry_at_ms = now + backoff_ms(p, ep->fails);
	p->stats.connect_failures++;
	LOG_DEBUG("msg=\"channel connection failed\" endpoint=%s rc=%d fails=%u retry_ms=%lld error=\"%s\"",
		  ep->endpoint, ep->last_rc, ep->fails, (long long)(ep->retry_at_ms - now), ep->last_err);
	while (ep->sq)
		ch_preq_finish(ep, ep->sq, ep->last_rc, ep->last_err);
	while (ep->sent)
		ch_preq_finish(ep, ep->sent, ep->last_rc, ep->last_err);
}

/* ---------------------------------------------------------------- the channel thread */

static bool ep_has_unanswered(const struct ch_pool_ep *ep)
{
	for (const struct ch_preq *r = ep->sent; r; r = r->next)
		if (!r->answered)
			return true;
	return false;
}

/* Reads the token (no lock held): 0 and its hash, or an error. */
static int read_token(struct ch_pool *p, char **tok, unsigned char hash[32], char *err,
		      size_t errlen)
{
	size_t cap = CH_POOL_MAX_TOKEN + 2;
	char *buf = calloc(1, cap);
	int rc;

	*tok = NULL;
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = p->o.token(p->o.token_arg, buf, cap, err, errlen);
	if (rc == 0)
		rc = token_ok(buf, err, errlen);
	if (rc) {
		OPENSSL_cleanse(buf, cap);
		free(buf);
		return rc < 0 ? rc : -EINVAL;
	}
	SHA256((const unsigned char *)buf, strlen(buf), hash);
	*tok = buf;
	return 0;
}

void ch_pool_service(struct ch_pool *p)
{
	struct ch_pool_ep *conn[64], *ep, **pp;
	size_t nconn = 0;
	int64_t now = ch_now_ms();
	bool tok_fresh = false;

	if (now >= p->tok_check_ms) {
		char *tok = NULL, err[256];
		unsigned char h[32];

		p->tok_check_ms = now + CH_POOL_TOKEN_CHECK_MS;
		if (read_token(p, &tok, h, err, sizeof(err)) == 0) {
			memcpy(p->tok_hash, h, sizeof(h));
			tok_fresh = true;
			OPENSSL_cleanse(tok, strlen(tok));
			free(tok);
		}
	}
	pthread_mutex_lock(&p->mu);
	for (pp = &p->eps; (ep = *pp);) {
		switch (ep->state) {
		case CH_EP_IDLE:
			if ((ep->nsq > 0 || (ep->fails > 0 && now - ep->last_used_ms < CH_POOL_LINGER_MS)) &&
			    now >= ep->retry_at_ms && nconn < sizeof(conn) / sizeof(conn[0])) {
				ep->state = CH_EP_CONNECTING;
				ep->connect_ms = now;
				conn[nconn++] = ep;
			} else if (!ep->nsq && !ep->nsent && now - ep->last_used_ms > CH_POOL_FORGET_MS) {
				*pp = ep->next;
				ep_free(ep);
				continue;
			}
			break;
		case CH_EP_CONNECTING:
			if (ep->wsi && now - ep->connect_ms > p->o.connect_timeout_ms) {
				struct lws *w = ep->wsi;
				char why[320];

				snprintf(why, sizeof(why),
					 "no TLS and WebSocket handshake with the helper at %s within %ld ms",
					 ep->endpoint, p->o.connect_timeout_ms);
				lws_set_opaque_user_data(w, NULL);
				ch_pool_ep_down(p, ep, false, -ETIMEDOUT, why);
				lws_set_timeout(w, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
			}
			break;
		case CH_EP_OPEN:
			if (!ep->retire && tok_fresh && memcmp(ep->tok_hash, p->tok_hash, 32) != 0) {
				LOG_INFO("msg=\"channel token rotated, re-making the connection\" endpoint=%s",
					 ep->endpoint);
				ep->retire = true;
				ep->retire_ms = now;
			}
			if (!ep->retire && now - ep->open_ms > p->o.max_age_ms) {
				ep->retire = true;
				ep->retire_ms = now;
			}
			if (ep->retire && (!ep_has_unanswered(ep) || now - ep->retire_ms > CH_POOL_ROTATE_GRACE_MS))
				ep->closing = true;
			if (ep->ping_out && now - ep->last_rx_ms > p->o.ping_ms * 2) {
				struct lws *w = ep->wsi;

				LOG_WARN("msg=\"channel connection dead (no pong)\" endpoint=%s silent_ms=%lld",
					 ep->endpoint, (long long)(now - ep->last_rx_ms));
				lws_set_opaque_user_data(w, NULL);
				ch_pool_ep_down(p, ep, true, 0, NULL);
				lws_set_timeout(w, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
				break;
			}
			if (!ep->ping_out && now - ep->last_rx_ms > p->o.ping_ms)
				ep->want_ping = true;
			if (ep->closing || ep->want_ping || (ep->sq && (ep->authed || !ep->nsent)))
				lws_callback_on_writable(ep->wsi);
			break;
		}
		pp = &ep->next;
	}
	pthread_mutex_unlock(&p->mu);

	for (size_t i = 0; i < nconn; i++) {
		char *tok = NULL, err[256];
		unsigned char h[32];
		int rc;

		ep = conn[i];
		rc = read_token(p, &tok, h, err, sizeof(err));
		pthread_mutex_lock(&p->mu);
		if (rc) {
			char why[320];

			snprintf(why, sizeof(why), "no channel token: %s", err);
			ch_pool_ep_down(p, ep, false, rc, why);
			pthread_mutex_unlock(&p->mu);
			continue;
		}
		ep->token = tok;
		ep->toklen = strlen(tok);
		memcpy(ep->tok_hash, h, sizeof(h));
		memcpy(p->tok_hash, h, sizeof(h));
		pthread_mutex_unlock(&p->mu);
		ch_pool_connect(p, ep);
	}
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
	struct ch_pool *p = lws_container_of(sul, struct ch_pool, tick);

	ch_pool_service(p);
	lws_sul_schedule(p->ctx, 0, &p->tick, tick_cb, CH_POOL_TICK_US);
}

static void *pool_main(void *arg)
{
	struct ch_pool *p = arg;

	while (!atomic_load(&p->stop)) {
		if (lws_service(p->ctx, 0) < 0) {
			LOG_ERROR("msg=\"channel pool loop failed\"");
			break;
		}
	}
	/* The handshake lock is this thread's: give it back before leaving. */
	pthread_mutex_lock(&p->mu);
	for (struct ch_pool_ep *ep = p->eps; ep; ep = ep->next)
		ch_pool_hs_end(p, ep);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* ---------------------------------------------------------------- API */

int ch_pool_new(const struct ch_pool_opts *opts, struct ch_pool **out)
{
	struct lws_context_creation_info info;
	struct ch_pool *p = NULL;
	int rc = -EINVAL, idx;

	*out = NULL;
	if (!opts || !opts->token)
		goto out;
	rc = -ENOMEM;
	p = calloc(1, sizeof(*p));
	if (!p)
		goto out;
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		free(p);
		p = NULL;
		goto out;
	}
	p->o = *opts;
	p->o.connect_timeout_ms = pos_or(opts->connect_timeout_ms, CH_POOL_DEFAULT_CONNECT_MS);
	p->o.answer_timeout_ms = pos_or(opts->answer_timeout_ms, CH_POOL_DEFAULT_ANSWER_MS);
	p->o.max_age_ms = pos_or(opts->max_age_ms, CH_POOL_DEFAULT_MAX_AGE_MS);
	p->o.ping_ms = pos_or(opts->ping_ms, CH_POOL_DEFAULT_PING_MS);
	p->o.max_queue = opts->max_queue ? opts->max_queue : CH_POOL_DEFAULT_MAX_QUEUE;
	p->rnd = (uint64_t)ch_now_ms() * 0x9e3779b97f4a7c15ull + (uint64_t)(uintptr_t)p;
	if (!p->rnd)
		p->rnd = 1;
	pool_metrics_register();

	idx = ch_lws_global_init();
	p->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (idx < 0 || !p->ssl_ctx || SSL_CTX_set_min_proto_version(p->ssl_ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_ex_data(p->ssl_ctx, idx, p) != 1)
		goto out;
	/* No CA store: the only trust is the pinned leaf. */
	SSL_CTX_set_verify(p->ssl_ctx, SSL_VERIFY_PEER, ch_pool_ssl_verify_cb);

	p->protocols[0].name = CH_POOL_PROTOCOL;
	p->protocols[0].callback = ch_pool_lws_cb;
	p->protocols[0].rx_buffer_size = 16384;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = p->protocols;
	/* lws 4.1 only honours provided_client_ssl_ctx with this option */
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.provided_client_ssl_ctx = p->ssl_ctx;
	info.user = p;
	info.gid = -1;
	info.uid = -1;
	info.pt_serv_buf_size = 32768;
	info.fd_limit_per_thread = 1024;
	/* lws's own deadlines are a backstop; ours are in ch_pool_service. */
	info.timeout_secs = (unsigned int)(p->o.connect_timeout_ms / 1000 + 5);
	info.connect_timeout_secs = info.timeout_secs;
	p->ctx = ch_lws_create_context(&info, ch_now_ms() + 10000);
	if (!p->ctx) {
		rc = -EIO;
		goto out;
	}
	lws_sul_schedule(p->ctx, 0, &p->tick, tick_cb, CH_POOL_TICK_US);
	if (pthread_create(&p->th, NULL, pool_main, p) != 0) {
		rc = -EAGAIN;
		goto out;
	}
	p->th_started = true;
	*out = p;
	p = NULL;
	rc = 0;
out:
	ch_pool_free(p);
	return rc;
}

void ch_pool_free(struct ch_pool *p)
{
	if (!p)
		return;
	atomic_store(&p->stop, true);
	if (p->th_started) {
		lws_cancel_service(p->ctx);
		pthread_join(p->th, NULL);
	}
	if (p->ctx) {
		lws_sul_cancel(&p->tick);
		lws_context_destroy(p->ctx); /* closes the connections (callbacks take mu) */
	}
	while (p->eps) {
		struct ch_pool_ep *ep = p->eps;

		p->eps = ep->next;
		ep_free(ep);
	}
	SSL_CTX_free(p->ssl_ctx);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

void ch_pool_get_stats(struct ch_pool *p, struct ch_pool_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	*out = p->stats;
	pthread_mutex_unlock(&p->mu);
}

int ch_pool_call_raw(struct ch_pool *p, const char *endpoint, const char *fingerprint,
		     const char *uid, const char *ns, const char *name, const char *text,
		     size_t len, long wait_ms, struct ch_state *st, char *err, size_t errlen)
{
	struct ch_preq r;
	struct ch_pool_ep *ep;
	pthread_condattr_t ca;
	char fp[65];
	int64_t now, deadline;
	int rc = 0;

	memset(st, 0, sizeof(*st));
	memset(&r, 0, sizeof(r));
	if (err && errlen)
		err[0] = '\0';
	if (!p || !endpoint || !text || wait_ms < 0) {
		snprintf(r.err, sizeof(r.err), "call options are incomplete");
		rc = -EINVAL;
		goto out_nocv;
	}
	if (ch_fingerprint_normalize(fingerprint, fp) != 0) {
		snprintf(r.err, sizeof(r.err), "the pinned fingerprint is not 64 hex digits");
		rc = -EINVAL;
		goto out_nocv;
	}
	r.buf = malloc(LWS_PRE + len);
	if (!r.buf) {
		snprintf(r.err, sizeof(r.err), "out of memory");
		rc = -ENOMEM;
		goto out_nocv;
	}
	memcpy(r.buf + LWS_PRE, text, len);
	r.len = len;
	r.wait_ms = wait_ms;
	snprintf(r.uid, sizeof(r.uid), "%s", uid ? uid : "");
	snprintf(r.ns, sizeof(r.ns), "%s", ns ? ns : "");
	snprintf(r.name, sizeof(r.name), "%s", name ? name : "");
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r.cv, &ca);
	pthread_condattr_destroy(&ca);

	pthread_mutex_lock(&p->mu);
	now = ch_now_ms();
	ep = ep_get(p, endpoint, &rc);
	if (!ep) {
		snprintf(r.err, sizeof(r.err), "endpoint '%.200s' is not a wss://host:port URL", endpoint);
		goto out_locked;
	}
	ep->last_used_ms = now;
	if (strcmp(ep->want_fp, fp) != 0) {
		/* A new pin (the helper restarted with a new certificate): re-make the connection. */
		if (ep->want_fp[0])
			LOG_INFO("msg=\"channel pin changed, re-making the connection\" endpoint=%s",
				 ep->endpoint);
		memcpy(ep->want_fp, fp, sizeof(fp));
		ep->fails = 0;
		ep->retry_at_ms = 0;
		if (ep->state != CH_EP_IDLE)
			ep->closing = true;
	}
	if (ep->fails > 0 && ep->state != CH_EP_OPEN) {
		rc = ep->last_rc;
		snprintf(r.err, sizeof(r.err), "%s (retrying in the background)", ep->last_err);
		goto out_locked;
	}
	if (ep->nsq >= p->o.max_queue) {
		rc = -EAGAIN;
		snprintf(r.err, sizeof(r.err), "%u calls already wait for the helper at %s",
			 ep->nsq, ep->endpoint);
		goto out_locked;
	}
	r.queued = true;
	if (ep->sq_tail)
		ep->sq_tail->next = &r;
	else
		ep->sq = &r;
	ep->sq_tail = &r;
	ep->nsq++;
	deadline = now + (ep->state == CH_EP_OPEN ? 0 : p->o.connect_timeout_ms) +
		   p->o.answer_timeout_ms + wait_ms;
	pthread_mutex_unlock(&p->mu);
	lws_cancel_service(p->ctx);
	pthread_mutex_lock(&p->mu);
	while (!r.done) {
		int64_t dl = deadline;
		struct timespec ts;

		if (r.answered && r.first_ms + wait_ms < dl)
			dl = r.first_ms + wait_ms;
		now = ch_now_ms();
		if (now >= dl) {
			if (r.answered) {
				ch_preq_finish(ep, &r, 0, NULL);
			} else {
				char why[320];

				snprintf(why, sizeof(why), "the helper at %s did not answer within %lld ms",
					 ep->endpoint,
					 (long long)(p->o.answer_timeout_ms + wait_ms));
				ch_preq_finish(ep, &r, -ETIMEDOUT, why);
			}
			break;
		}
		ts.tv_sec = (time_t)(dl / 1000);
		ts.tv_nsec = (long)(dl % 1000) * 1000000L;
		pthread_cond_timedwait(&r.cv, &p->mu, &ts);
	}
	rc = r.rc;
	if (r.answered)
		*st = r.st;
out_locked:
	p->stats.calls++;
	if (rc)
		p->stats.calls_failed++;
	pthread_mutex_unlock(&p->mu);
	pthread_cond_destroy(&r.cv);
out_nocv:
	mx_counter_add(mx_calls, 1, MX_LV(call_result(rc)));
	if (rc && err && errlen)
		snprintf(err, errlen, "%s", r.err[0] ? r.err : "the call failed");
	if (rc)
		LOG_DEBUG("msg=\"channel call failed\" endpoint=%s uid=%s rc=%d error=\"%s\"",
			  endpoint ? endpoint : "", r.uid, rc, r.err);
	free(r.buf);
	return rc;
}

int ch_pool_call(struct ch_pool *p, const char *endpoint, const char *fingerprint,
		 const struct ch_job *job, long wait_ms, struct ch_state *st, char *err,
		 size_t errlen)
{
	char *text = NULL;
	size_t len;
	int rc;

	memset(st, 0, sizeof(*st));
	if (err && errlen)
		err[0] = '\0';
	if (!job) {
		if (err && errlen)
			snprintf(err, errlen, "no job");
		return -EINVAL;
	}
	rc = ch_job_encode(job, &text);
	if (rc) {
		if (err && errlen)
			snprintf(err, errlen, "the job could not be encoded");
		goto out;
	}
	len = strlen(text);
	if (len > CH_MAX_MESSAGE) {
		if (err && errlen)
			snprintf(err, errlen, "the job is %zu bytes, more than the %u allowed", len,
				 CH_MAX_MESSAGE);
		rc = -EMSGSIZE;
		goto out;
	}
	rc = ch_pool_call_raw(p, endpoint, fingerprint, job->uid, job->ns, job->name, text, len,
			      wait_ms, st, err, errlen);
out:
	free(text);
	return rc;
}
