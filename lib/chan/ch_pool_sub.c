/*
 * ch_pool_sub.c - the jobs an endpoint follows (its subscriptions), on the
 * pool's side: which ns/name a pushed state belongs to, and what to send
 * again after a reconnect so that the helper pushes their states on the new
 * connection at once (the server's subscriptions belong to a connection).
 *
 * A subscription keeps a copy of the job's message exactly as it was sent
 * (identity, and the certificate of an encrypted checkpoint: a re-sent job
 * is the same request as the controller's poll, idempotent by uid), within
 * CH_POOL_SUB_BYTES per endpoint; one over that keeps no copy and is not
 * re-sent (the controller's poll covers it). Everything here is under
 * pool->mu (ch_pool_int.h); the copies are owned by the subscription.
 */
#include "ch.h"
#include "ch_internal.h"
#include "ch_pool_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

static void sub_clear(struct ch_pool_ep *ep, struct ch_psub *s)
{
	if (s->msg) {
		ep->sub_bytes -= s->len;
		free(s->msg);
	}
	if (s->resend)
		ep->nresub--;
	s->msg = NULL;
	s->len = 0;
	s->resend = false;
}

/* The array follows the jobs in flight back down: a burst of thousands must
 * not stay allocated on every endpoint once its jobs are final. */
static void subs_shrink(struct ch_pool_ep *ep)
{
	struct ch_psub *n;
	size_t cap = ep->subcap / 2;

	if (ep->nsubs == 0) {
		free(ep->subs);
		ep->subs = NULL;
		ep->subcap = 0;
		return;
	}
	if (ep->subcap <= CH_POOL_SUBS_MIN || ep->nsubs > ep->subcap / 4)
		return;
	n = realloc(ep->subs, cap * sizeof(*n));
	if (n) { /* else the bigger array stays: still correct */
		ep->subs = n;
		ep->subcap = cap;
	}
}

static void sub_remove(struct ch_pool_ep *ep, size_t i)
{
	sub_clear(ep, &ep->subs[i]);
	memmove(ep->subs + i, ep->subs + i + 1, (ep->nsubs - i - 1) * sizeof(*ep->subs));
	ep->nsubs--;
	subs_shrink(ep);
}

void ch_pool_sub_add(struct ch_pool_ep *ep, const struct ch_preq *r)
{
	struct ch_psub *s = NULL;

	if (!r->uid[0])
		return;
	for (size_t i = 0; i < ep->nsubs && !s; i++)
		if (strcmp(ep->subs[i].uid, r->uid) == 0)
			s = &ep->subs[i];
	if (s) {
		sub_clear(ep, s); /* this send replaces the one remembered */
	} else {
		if (ep->nsubs == ep->subcap) {
			if (ep->subcap >= CH_POOL_MAX_SUBS) {
				sub_remove(ep, 0);
			} else {
				size_t cap = ep->subcap ? ep->subcap * 2 : CH_POOL_SUBS_MIN;
				struct ch_psub *n = realloc(ep->subs, cap * sizeof(*n));

				if (!n)
					return; /* pushes for it are lost; polls still work */
				ep->subs = n;
				ep->subcap = cap;
			}
		}
		s = &ep->subs[ep->nsubs++];
		memset(s, 0, sizeof(*s));
	}
	snprintf(s->uid, sizeof(s->uid), "%s", r->uid);
	snprintf(s->ns, sizeof(s->ns), "%s", r->ns);
	snprintf(s->name, sizeof(s->name), "%s", r->name);
	if (ep->sub_bytes + r->len <= CH_POOL_SUB_BYTES) {
		s->msg = malloc(LWS_PRE + r->len);
		if (s->msg) {
			memcpy(s->msg + LWS_PRE, r->buf + LWS_PRE, r->len);
			s->len = r->len;
			ep->sub_bytes += r->len;
		}
	}
}

bool ch_pool_sub_take(struct ch_pool_ep *ep, const char *uid, bool final, struct ch_psub *out)
{
	for (size_t i = 0; i < ep->nsubs; i++) {
		if (strcmp(ep->subs[i].uid, uid) != 0)
			continue;
		if (out) {
			*out = ep->subs[i];
			out->msg = NULL; /* identity only: the copy stays (or goes) with the subscription */
			out->len = 0;
		}
		if (final)
			sub_remove(ep, i);
		return true;
	}
	return false;
}

void ch_pool_subs_lost(struct ch_pool_ep *ep)
{
	for (size_t i = ep->nsubs; i-- > 0;) {
		struct ch_psub *s = &ep->subs[i];

		if (!s->msg) {
			sub_remove(ep, i);
		} else if (!s->resend) {
			s->resend = true;
			ep->nresub++;
		}
	}
}

struct ch_psub *ch_pool_sub_next_resend(struct ch_pool_ep *ep)
{
	for (size_t i = 0; i < ep->nsubs && ep->nresub; i++)
		if (ep->subs[i].resend)
			return &ep->subs[i];
	return NULL;
}

void ch_pool_sub_sent(struct ch_pool_ep *ep, struct ch_psub *s)
{
	if (s->resend) {
		s->resend = false;
		ep->nresub--;
	}
}

void ch_pool_subs_free(struct ch_pool_ep *ep)
{
	while (ep->nsubs)
		sub_remove(ep, ep->nsubs - 1);
	free(ep->subs); /* NULL by now; kept for clarity */
	ep->subs = NULL;
	ep->subcap = 0;
}
