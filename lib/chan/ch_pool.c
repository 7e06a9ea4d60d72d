/*
 * ch_pool.c - the controller's side of the channel: one long-lived
 * connection per node helper, multiplexing jobs and their states, on one
 * channel thread with one lws context (see ch.h and docs/channel.md).
 *
 * A call queues its encoded job on the endpoint's send queue and waits on
 * its own condition variable (with a deadline); the channel thread connects
 * when there is something to send, writes the queue, matches states to the
 * waiting calls by uid and hands the rest (states pushed later) to
 * opts.on_update. This file holds the API, the metrics and the thread;
 * ch_pool_ep.c the endpoints' housekeeping (connect, backoff, token
 * rotation, max age, keepalive); ch_pool_conn.c the lws callback. Locking:
 * ch_pool_int.h.
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
	p->o.idle_ms = pos_or(opts->idle_ms, CH_POOL_DEFAULT_IDLE_MS);
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
	/*
	 * An idle connection (one per helper, most of them idle most of the time)
	 * gives its ~33 KiB of TLS read and write buffers back; OpenSSL allocates
	 * them again for the next record.
	 */
	SSL_CTX_set_mode(p->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);

	p->protocols[0].name = CH_POOL_PROTOCOL;
	p->protocols[0].callback = ch_pool_lws_cb;
	/* Allocated per connection for its whole life (one per helper): the
	 * helpers' messages are states of a few hundred bytes, and a larger one
	 * arrives in pieces that ep->rx puts together (test_pushed_states sends
	 * one of ~1 KiB); 4 KiB was 205 KiB of the idle controller at 50 nodes.
	 * Sends keep their 16 KiB pieces (tx_packet_size would follow
	 * rx_buffer_size otherwise). */
	p->protocols[0].rx_buffer_size = 1024;
	p->protocols[0].tx_packet_size = 16384;
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
		ch_pool_ep_free(ep);
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
	rc = ch_job_text(job, &text, &len, err, errlen);
	if (!rc)
		rc = ch_pool_call_raw(p, endpoint, fingerprint, job->uid, job->ns, job->name, text,
				      len, wait_ms, st, err, errlen);
	free(text);
	return rc;
}
