/*
 * ch_srv_conn.c - one WebSocket connection's conversation on the server
 * (service thread): the uids it is subscribed to (the jobs it sent; bounded,
 * oldest dropped), its queue of outbound states (bounded, oldest dropped:
 * states are snapshots), and the handling of one complete message (decode,
 * ops.on_job, the answer). The state itself is struct ch_conn (ch_srv.h).
 */
#include "ch.h"
#include "ch_internal.h"
#include "ch_srv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "dbuf.h"
#include "log.h"

#define CH_CONN_MAX_QUEUE 1024u /* states queued per connection (many jobs share one) */

static ssize_t sub_find(const struct ch_conn *c, const char *uid)
{
	for (size_t i = 0; i < c->nsubs; i++)
		if (strcmp(c->subs[i], uid) == 0)
			return (ssize_t)i;
	return -1;
}

/* The connection gets uid's states from now on (bounded: the oldest is dropped). */
static int sub_add(struct ch_conn *c, const char *uid)
{
	if (sub_find(c, uid) >= 0)
		return 0;
	if (c->nsubs == c->subcap) {
		if (c->subcap >= CH_CONN_MAX_SUBS) {
			LOG_WARN("msg=\"channel subscriptions full, dropped oldest\" peer=%s uid=%s",
				 c->peer, c->subs[0]);
			memmove(c->subs, c->subs + 1, (c->nsubs - 1) * sizeof(c->subs[0]));
			c->nsubs--;
		} else {
			size_t cap = c->subcap ? c->subcap * 2 : 16;
			char(*n)[64] = realloc(c->subs, cap * sizeof(c->subs[0]));

			if (!n)
				return -ENOMEM;
			c->subs = n;
			c->subcap = cap;
		}
	}
	snprintf(c->subs[c->nsubs++], sizeof(c->subs[0]), "%s", uid);
	return 0;
}

static void sub_del(struct ch_conn *c, const char *uid)
{
	ssize_t i = sub_find(c, uid);

	if (i < 0)
		return;
	c->subs[i][0] = '\0';
	memmove(c->subs + i, c->subs + i + 1, (c->nsubs - (size_t)i - 1) * sizeof(c->subs[0]));
	c->nsubs--;
}

static void conn_free_queue(struct ch_conn *c)
{
	while (c->oh) {
		struct ch_out *o = c->oh;

		c->oh = o->next;
		free(o);
	}
	c->ot = NULL;
	c->olen = 0;
}

/* Queues one text message for the connection and asks for a writable callback. */
static int conn_enqueue(struct ch_conn *c, const char *text, size_t len)
{
	struct ch_out *o = malloc(sizeof(*o) + LWS_PRE + len);

	if (!o)
		return -ENOMEM;
	o->next = NULL;
	o->len = len;
	memcpy(o->buf + LWS_PRE, text, len);
	if (c->olen >= CH_CONN_MAX_QUEUE) {
		/* States are snapshots: the newest matters, drop the oldest. */
		struct ch_out *old = c->oh;

		c->oh = old->next;
		if (!c->oh)
			c->ot = NULL;
		free(old);
		c->olen--;
		LOG_WARN("msg=\"channel queue full, dropped oldest state\" peer=%s", c->peer);
	}
	if (c->ot)
		c->ot->next = o;
	else
		c->oh = o;
	c->ot = o;
	c->olen++;
	lws_callback_on_writable(c->wsi);
	return 0;
}

static bool state_is_final(enum ch_state_kind k)
{
	return k == CH_SUCCEEDED || k == CH_FAILED || k == CH_REFUSED;
}

/* Queues a state; after a final one the connection no longer follows that uid. */
int ch_conn_send_state(struct ch_conn *c, const struct ch_state *st)
{
	char *text = NULL;
	int rc = ch_state_encode(st, &text);

	if (rc == 0)
		rc = conn_enqueue(c, text, strlen(text));
	free(text);
	if (state_is_final(st->state))
		sub_del(c, st->uid);
	return rc;
}

void ch_conn_ping(struct ch_conn *c)
{
	if (!c || c->ping_sent || c->want_ping)
		return;
	c->want_ping = true;
	lws_callback_on_writable(c->wsi);
}

void ch_conn_expire(struct ch_server *srv, struct ch_conn *c)
{
	(void)srv;
	if (!c || c->reauth_close)
		return;
	c->reauth_close = true;
	LOG_INFO("msg=\"channel authentication expired, closing for re-authentication\" peer=%s",
		 c->peer);
	lws_callback_on_writable(c->wsi);
}

/* Best effort: the uid of a job we could not decode, for the REFUSED answer. */
static void guess_uid(const char *text, size_t len, char *uid, size_t size)
{
	const char *p, *e;
	size_t n;

	uid[0] = '\0';
	p = memmem(text, len, "\"uid\"", 5);
	if (!p)
		return;
	p += 5;
	while (p < text + len && (*p == ' ' || *p == ':'))
		p++;
	if (p >= text + len || *p != '"')
		return;
	p++;
	e = memchr(p, '"', (size_t)(text + len - p));
	if (!e)
		return;
	n = (size_t)(e - p);
	if (n == 0 || n >= size)
		return;
	for (size_t i = 0; i < n; i++)
		if (p[i] == '\\' || (unsigned char)p[i] < 0x20)
			return;
	memcpy(uid, p, n);
	uid[n] = '\0';
}

int ch_conn_handle_message(struct ch_server *srv, struct ch_conn *c)
{
	struct ch_job job;
	struct ch_state now;
	char err[256];
	int rc;

	if (!c->link || c->link->auth != CH_LINK_OK) { /* never without authentication */
		dbuf_reset(&c->rx);
		return -EACCES;
	}
	memset(&now, 0, sizeof(now));
	rc = ch_job_decode(c->rx.data, c->rx.len, &job, err, sizeof(err));
	if (rc) {
		guess_uid(c->rx.data ? c->rx.data : "", c->rx.len, now.uid, sizeof(now.uid));
		if (now.uid[0] == '\0')
			snprintf(now.uid, sizeof(now.uid), "unknown");
		now.state = CH_REFUSED;
		snprintf(now.reason, sizeof(now.reason), "%s",
			 rc == -EPROTO ? "UnsupportedProtocol" : "BadRequest");
		snprintf(now.message, sizeof(now.message), "The job was refused: %s.", err);
		LOG_WARN("msg=\"channel job refused\" peer=%s uid=%s reason=%s error=\"%s\"",
			 c->peer, now.uid, now.reason, err);
		rc = ch_conn_send_state(c, &now);
		c->close_after_drain = true; /* a peer that speaks nonsense is not talked to further */
		goto out;
	}
	snprintf(now.uid, sizeof(now.uid), "%s", job.uid);
	now.state = CH_ACCEPTED;
	LOG_INFO("msg=\"channel job received\" peer=%s namespace=%s name=%s uid=%s op=%s",
		 c->peer, job.ns, job.name, job.uid,
		 job.op == CH_OP_CHECKPOINT ? "checkpoint" : "delete-artifact");
	rc = srv->ops.on_job(srv->ops.arg, &job, &now);
	/* The answer is always about this job, whatever the callback wrote. */
	snprintf(now.uid, sizeof(now.uid), "%s", job.uid);
	if (rc < 0) {
		if (!state_is_final(now.state))
			now.state = CH_REFUSED;
		if (now.reason[0] == '\0')
			snprintf(now.reason, sizeof(now.reason), "Refused");
		if (now.message[0] == '\0')
			snprintf(now.message, sizeof(now.message),
				 "The node helper refused the job.");
	} else if (sub_add(c, job.uid) != 0) {
		LOG_WARN("msg=\"channel cannot follow job\" peer=%s uid=%s error=\"out of memory\"",
			 c->peer, job.uid);
	}
	rc = ch_conn_send_state(c, &now);
	ch_job_cleanup(&job);
out:
	dbuf_reset(&c->rx);
	return rc;
}

bool ch_conn_follows(const struct ch_conn *c, const char *uid)
{
	return sub_find(c, uid) >= 0;
}

void ch_conn_release(struct ch_conn *c)
{
	conn_free_queue(c);
	dbuf_cleanup(&c->rx);
	free(c->subs);
	c->subs = NULL;
	c->nsubs = c->subcap = 0;
}
