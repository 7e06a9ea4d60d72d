/*
 * ch_srv_auth.c - the guard's authentication of a connection: the bearer
 * token at the upgrade (401), the cheap precheck (403 / allowed), the review
 * budgets of the peer and of all peers (429) and the queue (503), and the
 * auth worker thread that asks the authority (ops.authenticate, a
 * TokenReview) so that the service thread never waits for the API server.
 * Connections presenting a token already under review wait for that answer.
 * The worker's answers are applied on the service thread (ch_guard_drain).
 * Ownership of the requests and the queues' lock: ch_srv.h.
 */
#include "ch_srv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "ch_internal.h"
#include "log.h"

static void *auth_worker(void *arg)
{
	struct ch_server *srv = arg;

	for (;;) {
		struct ch_areq *r;

		pthread_mutex_lock(&srv->amu);
		while (!srv->astop && !srv->aq)
			pthread_cond_wait(&srv->acv, &srv->amu);
		if (srv->astop) {
			pthread_mutex_unlock(&srv->amu);
			break;
		}
		r = srv->aq;
		srv->aq = r->next;
		if (!srv->aq)
			srv->aqt = NULL;
		srv->aqlen--;
		pthread_mutex_unlock(&srv->amu);

		r->verdict = srv->ops.authenticate(srv->ops.arg, r->token);
		OPENSSL_cleanse(r->token, r->toklen);

		pthread_mutex_lock(&srv->amu);
		r->next = srv->ad;
		srv->ad = r;
		pthread_mutex_unlock(&srv->amu);
		lws_cancel_service(srv->ctx);
	}
	return NULL;
}

static void areq_free(struct ch_areq *r)
{
	if (!r)
		return;
	OPENSSL_cleanse(r->token, r->toklen);
	free(r);
}

static void areq_list_free(struct ch_areq *r)
{
	while (r) {
		struct ch_areq *next = r->next;

		areq_free(r);
		r = next;
	}
}

int ch_guard_start(struct ch_server *srv)
{
	if (srv->athread_started)
		return 0;
	if (pthread_create(&srv->athread, NULL, auth_worker, srv) != 0)
		return -EAGAIN;
	srv->athread_started = true;
	return 0;
}

void ch_guard_stop(struct ch_server *srv)
{
	pthread_mutex_lock(&srv->amu);
	srv->astop = true;
	pthread_cond_broadcast(&srv->acv);
	pthread_mutex_unlock(&srv->amu);
	if (srv->athread_started) {
		pthread_join(srv->athread, NULL);
		srv->athread_started = false;
	}
}

void ch_guard_cleanup(struct ch_server *srv)
{
	areq_list_free(srv->aq);
	areq_list_free(srv->ad);
	srv->aq = srv->ad = srv->aqt = NULL;
	srv->aqlen = 0;
	pthread_cond_destroy(&srv->acv);
	pthread_mutex_destroy(&srv->amu);
}

/* Bearer token out of the Authorization header into a new buffer (wipe + free it). */
static unsigned int read_bearer(struct lws *wsi, char **buf, size_t *bufsz, const char **tok)
{
	int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
	const char *t;

	*buf = NULL;
	*bufsz = 0;
	*tok = NULL;
	if (n <= 0 || (unsigned)n > CH_MAX_AUTH_HEADER)
		return 401;
	*bufsz = (size_t)n + 1;
	*buf = malloc(*bufsz);
	if (!*buf)
		return 503;
	if (lws_hdr_copy(wsi, *buf, (int)*bufsz, WSI_TOKEN_HTTP_AUTHORIZATION) < 0 ||
	    strncasecmp(*buf, "Bearer ", 7) != 0)
		return 401;
	t = *buf + 7;
	while (*t == ' ')
		t++;
	if (*t == '\0')
		return 401;
	*tok = t;
	return 0;
}

/*
 * Token buckets of the peer and of all peers: true (and one review spent)
 * when it may cause one more. A peer that authenticated lately is not held
 * back by the others (an attacker with many addresses).
 */
static bool peer_may_review(struct ch_server *srv, struct ch_peer *p)
{
	int64_t now = ch_now_ms();
	bool good = p->good_until_ms > now;

	p->tokens += (double)(now - p->refill_ms) * srv->lim.review_per_ms;
	if (p->tokens > srv->lim.review_burst)
		p->tokens = srv->lim.review_burst;
	p->refill_ms = now;
	srv->greview_tokens += (double)(now - srv->greview_refill_ms) * srv->lim.greview_per_ms;
	if (srv->greview_tokens > srv->lim.greview_burst)
		srv->greview_tokens = srv->lim.greview_burst;
	srv->greview_refill_ms = now;
	if (p->review_pending || p->tokens < 1.0 || (!good && srv->greview_tokens < 1.0))
		return false;
	p->tokens -= 1.0;
	if (!good)
		srv->greview_tokens -= 1.0;
	return true;
}

static struct ch_inflight *inflight_find(struct ch_server *srv, const unsigned char *h)
{
	for (size_t i = 0; i < CH_SRV_MAX_INFLIGHT; i++)
		if (srv->inflight[i].id && CRYPTO_memcmp(srv->inflight[i].hash, h, 32) == 0)
			return &srv->inflight[i];
	return NULL;
}

static struct ch_inflight *inflight_free_slot(struct ch_server *srv)
{
	for (size_t i = 0; i < CH_SRV_MAX_INFLIGHT; i++)
		if (!srv->inflight[i].id)
			return &srv->inflight[i];
	return NULL;
}

/*
 * The link is authenticated: until min(token exp, now + reauth_s). Past it
 * ch_guard_sweep closes the connection (1001) and the client comes back with
 * its current token (re-read from its file), which is prechecked or reviewed
 * again like any new connection.
 */
static void link_authenticated(struct ch_server *srv, struct ch_link *l, int64_t now)
{
	int64_t until = now + (int64_t)srv->lim.reauth_s * 1000;

	l->auth = CH_LINK_OK;
	if (l->token_exp_s > 0) {
		int64_t left_ms = (l->token_exp_s - (int64_t)time(NULL)) * 1000;

		if (now + left_ms < until)
			until = now + (left_ms > 0 ? left_ms : 0);
	}
	l->auth_until_ms = until;
	if (l->peer)
		l->peer->good_until_ms = now + CH_SRV_GOOD_PEER_MS;
}

static void link_wait(struct ch_link *l, uint64_t review_id)
{
	l->auth = CH_LINK_REVIEW;
	l->review_id = review_id;
	l->auth_ms = ch_now_ms();
}

/*
 * A review for this token: joins one in flight for the same token (parallel
 * calls of the controller cost one TokenReview), else spends one of the peer's
 * budget (one distinct review in flight per peer, a token bucket over time)
 * and queues a request for the worker. 0, 429 or 503.
 */
static unsigned int queue_review(struct ch_server *srv, struct ch_link *l, const char *tok)
{
	size_t n = strlen(tok);
	unsigned char h[32];
	struct ch_inflight *inf;
	struct ch_areq *r;
	unsigned int code = 0;

	SHA256((const unsigned char *)tok, n, h);
	inf = inflight_find(srv, h);
	if (inf) {
		link_wait(l, inf->id);
		goto out;
	}
	inf = inflight_free_slot(srv);
	if (!inf) {
		code = 503;
		goto out;
	}
	if (!peer_may_review(srv, l->peer)) {
		code = 429;
		goto out;
	}
	r = malloc(sizeof(*r) + n + 1);
	if (!r) {
		code = 503;
		goto out;
	}
	r->next = NULL;
	r->id = ++srv->next_review_id;
	r->peer = l->peer;
	r->verdict = -EACCES;
	r->toklen = n;
	memcpy(r->token, tok, n + 1);
	pthread_mutex_lock(&srv->amu);
	if (srv->aqlen >= srv->lim.review_queue) {
		code = 503;
	} else {
		if (srv->aqt)
			srv->aqt->next = r;
		else
			srv->aq = r;
		srv->aqt = r;
		srv->aqlen++;
		pthread_cond_signal(&srv->acv);
	}
	pthread_mutex_unlock(&srv->amu);
	if (code) {
		areq_free(r);
		goto out;
	}
	inf->id = r->id;
	memcpy(inf->hash, h, sizeof(h));
	l->peer->review_pending = true;
	link_wait(l, r->id);
	srv->stats.reviews++;
out:
	if (code)
		srv->stats.refused_rate++;
	OPENSSL_cleanse(h, sizeof(h));
	return code;
}

unsigned int ch_guard_upgrade(struct ch_server *srv, struct lws *wsi)
{
	struct ch_link *l = ch_guard_link(wsi);
	char *buf = NULL;
	size_t bufsz = 0;
	const char *tok = NULL;
	unsigned int code;
	int v;

	if (!l || l->auth != CH_LINK_NEW)
		return 403;
	if (!lws_is_ssl(wsi)) /* plain HTTP on the TLS port (see ch_server_new): never */
		return 403;
	code = read_bearer(wsi, &buf, &bufsz, &tok);
	if (code)
		goto out;
	v = srv->ops.precheck ? srv->ops.precheck(srv->ops.arg, tok) : CH_AUTH_REVIEW;
	l->token_exp_s = srv->ops.expires ? srv->ops.expires(srv->ops.arg, tok) : 0;
	if (v == CH_AUTH_ALLOW) {
		link_authenticated(srv, l, ch_now_ms());
	} else if (v == CH_AUTH_REVIEW) {
		code = queue_review(srv, l, tok);
	} else {
		srv->stats.prechecked_deny++;
		code = 403;
	}
out:
	if (buf) {
		OPENSSL_cleanse(buf, bufsz);
		free(buf);
	}
	return code;
}

/* The worker's answer to one request, for every connection waiting on it. */
static void apply_verdict(struct ch_server *srv, const struct ch_areq *r)
{
	for (struct ch_link *l = srv->links; l; l = l->next) {
		struct ch_conn *c = l->conn;

		if (l->auth != CH_LINK_REVIEW || l->review_id != r->id)
			continue;
		l->last_ms = ch_now_ms();
		if (r->verdict == 0)
			link_authenticated(srv, l, l->last_ms);
		else
			l->auth = CH_LINK_DENIED;
		if (r->verdict != 0) {
			srv->stats.review_denied++;
			if (ch_guard_log_ok(srv))
				LOG_WARN("msg=\"channel client refused\" peer=%s why=\"authentication refused\"",
					 l->peer ? l->peer->addr : "?");
		}
		if (!c)
			continue; /* not established yet: ESTABLISHED sees the verdict */
		if (r->verdict == 0 && c->job_ready) {
			c->job_ready = false;
			if (ch_conn_handle_message(srv, c) != 0) {
				c->deny_close = true;
				lws_callback_on_writable(c->wsi);
			}
		} else if (r->verdict != 0) {
			c->deny_close = true;
			lws_callback_on_writable(c->wsi);
		}
	}
}

void ch_guard_drain(struct ch_server *srv)
{
	struct ch_areq *list;

	pthread_mutex_lock(&srv->amu);
	list = srv->ad;
	srv->ad = NULL;
	pthread_mutex_unlock(&srv->amu);
	while (list) {
		struct ch_areq *r = list;

		list = r->next;
		for (size_t i = 0; i < CH_SRV_MAX_INFLIGHT; i++)
			if (srv->inflight[i].id == r->id)
				memset(&srv->inflight[i], 0, sizeof(srv->inflight[i]));
		if (r->peer)
			r->peer->review_pending = false;
		apply_verdict(srv, r);
		areq_free(r);
	}
}
