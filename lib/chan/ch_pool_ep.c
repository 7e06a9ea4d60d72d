/*
 * ch_pool_ep.c - the pool's endpoints on the channel thread: requests
 * finished or re-queued, subscriptions, what happens when a connection fails
 * or drops (backoff), and the housekeeping of every tick (connect when there
 * is work, connect deadlines, token rotation, max age, keepalive). Locking:
 * ch_pool_int.h.
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
#include <openssl/sha.h>

#include "log.h"

static int token_ok(const char *tok, char *err, size_t errlen)
{
	size_t n = strlen(tok);

	if (n == 0 || n > CH_MAX_TOKEN) {
		snprintf(err, errlen, "the bearer token is empty or longer than %u bytes",
			 CH_MAX_TOKEN);
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

void ch_pool_ep_wipe_token(struct ch_pool_ep *ep)
{
	if (ep->token) {
		OPENSSL_cleanse(ep->token, ep->toklen);
		free(ep->token);
	}
	ep->token = NULL;
	ep->toklen = 0;
}

void ch_pool_ep_free(struct ch_pool_ep *ep)
{
	if (!ep)
		return;
	ch_pool_ep_wipe_token(ep);
	ch_pool_subs_free(ep);
	dbuf_cleanup(&ep->rx);
	free(ep);
}

/* mu held. */

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
	bool emsg_done = false, was_authed = ep->authed;
	int fail_rc = 0;
	char why[320];

	ch_pool_hs_end(p, ep);
	ep->wsi = NULL;
	ep->state = CH_EP_IDLE;
	ep->authed = ep->want_ping = ep->ping_out = ep->closing = ep->retire = false;
	ep->resub_out = false;
	ep->pin_ok = ep->pin_mismatch = false;
	dbuf_reset(&ep->rx);
	ch_pool_ep_wipe_token(ep);
	if (was_open) {
		int code = ep->close_code;

		p->stats.open--;
		ch_pool_mx_conn(-1);
		ep->close_code = 0;
		/* The server's subscriptions were this connection's: the jobs are
		 * sent again on the next one, which is made at once (ch_pool_service). */
		ch_pool_subs_lost(ep);
		if (code == LWS_CLOSE_STATUS_POLICY_VIOLATION) {
			snprintf(why, sizeof(why), "the helper at %s refused the credentials (closed 1008)",
				 ep->endpoint);
			fail_rc = -EACCES;
		} else if (!was_authed && code != LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE) {
			/* Closed before the first answer (e.g. the review took longer than
			 * the helper's auth timeout): a failed attempt, not a drop to re-send after. */
			snprintf(why, sizeof(why),
				 "the helper at %s closed the connection before it answered (code %d)",
				 ep->endpoint, code);
			fail_rc = -EPROTO;
		}
		if (fail_rc) {
			ep->fails++;
			ep->last_rc = fail_rc;
			snprintf(ep->last_err, sizeof(ep->last_err), "%s", why);
			ep->retry_at_ms = now + backoff_ms(p, ep->fails);
			p->stats.connect_failures++;
		}
		for (r = ep->sent; r; r = next) {
			next = r->next;
			if (r->answered) {
				ch_preq_finish(ep, r, 0, NULL);
			} else if (fail_rc) {
				ch_preq_finish(ep, r, fail_rc, why);
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
		if (fail_rc)
			for (r = ep->sq; r; r = next) {
				next = r->next;
				ch_preq_finish(ep, r, fail_rc, why);
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
	size_t cap = CH_MAX_TOKEN + 2;
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
			if ((ep->nsq > 0 || (ep->fails > 0 && now - ep->last_used_ms < CH_POOL_LINGER_MS) ||
			     (ep->nresub > 0 && ep->fails == 0 && now - ep->last_used_ms < CH_POOL_FORGET_MS)) &&
			    now >= ep->retry_at_ms && nconn < sizeof(conn) / sizeof(conn[0])) {
				ep->state = CH_EP_CONNECTING;
				ep->connect_ms = now;
				conn[nconn++] = ep;
			} else if (!ep->nsq && !ep->nsent && now - ep->last_used_ms > CH_POOL_FORGET_MS) {
				*pp = ep->next;
				ch_pool_ep_free(ep);
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
			/* Unused: its TLS and lws state (~25 KiB) goes; the next call makes a new one. */
			if (!ep->retire && !ep->nsq && !ep->nsent && !ep->nsubs &&
			    now - ep->last_used_ms > p->o.idle_ms) {
				LOG_DEBUG("msg=\"channel connection idle, closing\" endpoint=%s idle_ms=%lld",
					  ep->endpoint, (long long)(now - ep->last_used_ms));
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
			if (ep->closing || ep->want_ping || ch_pool_may_send(ep))
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

