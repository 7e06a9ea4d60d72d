/*
 * ctl_mem.c - per-uid memory of jobs (see ctl_mem.h): a chained hash map
 * under one mutex, doubling its buckets past one record per bucket.
 */
#include "ctl_mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct rec {
	struct rec *next;
	uint64_t h;
	int64_t first_seen_ms;
	int64_t last_contact_ms;
	int64_t answer_failed_since_ms;
	int64_t delete_failing_since_ms;
	enum ctl_answer answer;
	unsigned busy_count;
	uint32_t ncontainers;
	bool queued_event_sent;
	char *answer_message; /* NULL when "" */
	char *last_error;     /* NULL when "" */
	char *cert_pem;
	char answer_reason[CTL_REASON_MAX];
	char uid[];
};

struct ctl_mem_table {
	pthread_mutex_t lock;
	struct rec **b;
	size_t nb, len;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static void rec_free(struct rec *r)
{
	if (!r)
		return;
	free(r->answer_message);
	free(r->last_error);
	free(r->cert_pem);
	free(r);
}

int ctl_mem_table_new(struct ctl_mem_table **out)
{
	struct ctl_mem_table *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->nb = 64;
	t->b = calloc(t->nb, sizeof(*t->b));
	if (!t->b || pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t->b);
		free(t);
		return -ENOMEM;
	}
	*out = t;
	return 0;
}

void ctl_mem_table_free(struct ctl_mem_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nb; i++) {
		struct rec *r = t->b[i], *next;

		for (; r; r = next) {
			next = r->next;
			rec_free(r);
		}
	}
	free(t->b);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

size_t ctl_mem_count(struct ctl_mem_table *t)
{
	size_t n;

	if (!t)
		return 0;
	pthread_mutex_lock(&t->lock);
	n = t->len;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static struct rec **find_locked(struct ctl_mem_table *t, const char *uid, uint64_t h)
{
	struct rec **pp = &t->b[h & (t->nb - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->h == h && strcmp((*pp)->uid, uid) == 0)
			return pp;
	return pp;
}

static struct rec *get_locked(struct ctl_mem_table *t, const char *uid)
{
	return uid ? *find_locked(t, uid, fnv1a(uid)) : NULL;
}

static void grow_locked(struct ctl_mem_table *t)
{
	size_t nb = t->nb * 2;
	struct rec **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < t->nb; i++) {
		struct rec *r = t->b[i], *next;

		for (; r; r = next) {
			next = r->next;
			r->next = b[r->h & (nb - 1)];
			b[r->h & (nb - 1)] = r;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
}

/* Replaces *slot by a copy of s (NULL for ""); keeps the old one if out of memory. */
static void set_str(char **slot, const char *s)
{
	char *d = NULL;

	if (s && *s) {
		d = strdup(s);
		if (!d)
			return;
	}
	free(*slot);
	*slot = d;
}

int ctl_mem_snapshot(struct ctl_mem_table *t, const char *uid, int64_t now, bool create,
		     struct ctl_mem_view *out)
{
	struct rec **pp, *r;
	uint64_t h;
	size_t ulen;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!t || !uid)
		return 0;
	h = fnv1a(uid);
	pthread_mutex_lock(&t->lock);
	pp = find_locked(t, uid, h);
	r = *pp;
	if (!r && create) {
		ulen = strlen(uid);
		r = calloc(1, sizeof(*r) + ulen + 1);
		if (!r) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(r->uid, uid, ulen + 1);
		r->h = h;
		r->first_seen_ms = now;
		*pp = r;
		if (++t->len > t->nb)
			grow_locked(t);
	}
	if (!r)
		goto out;
	out->first_seen_ms = r->first_seen_ms;
	out->last_contact_ms = r->last_contact_ms;
	out->answer = r->answer;
	ctl_copy(out->answer_reason, sizeof(out->answer_reason), r->answer_reason);
	ctl_copy(out->answer_message, sizeof(out->answer_message), r->answer_message);
	out->answer_failed_since_ms = r->answer_failed_since_ms;
	out->delete_failing_since_ms = r->delete_failing_since_ms;
	ctl_copy(out->last_error, sizeof(out->last_error), r->last_error);
	out->ncontainers = r->ncontainers;
	out->busy_count = r->busy_count;
	out->queued_event_sent = r->queued_event_sent;
	if (r->cert_pem) {
		out->cert_pem = strdup(r->cert_pem);
		if (!out->cert_pem)
			rc = -ENOMEM;
	}
out:
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void ctl_mem_view_cleanup(struct ctl_mem_view *v)
{
	if (!v)
		return;
	free(v->cert_pem);
	v->cert_pem = NULL;
}

void ctl_mem_forget(struct ctl_mem_table *t, const char *uid)
{
	struct rec **pp, *r = NULL;

	if (!t || !uid)
		return;
	pthread_mutex_lock(&t->lock);
	pp = find_locked(t, uid, fnv1a(uid));
	if (*pp) {
		r = *pp;
		*pp = r->next;
		t->len--;
	}
	pthread_mutex_unlock(&t->lock);
	rec_free(r);
}

void ctl_mem_record_call(struct ctl_mem_table *t, const char *uid, int64_t now, int rc,
			 enum ctl_answer answer, const char *reason, const char *message,
			 const char *err, bool checkpoint, const char *cert_pem, size_t ncontainers)
{
	struct rec *r;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	r = get_locked(t, uid);
	if (!r)
		goto out;
	if (checkpoint) {
		if (ncontainers)
			r->ncontainers = (uint32_t)ncontainers;
		if (cert_pem && !r->cert_pem)
			r->cert_pem = strdup(cert_pem);
	}
	if (rc != 0) {
		set_str(&r->last_error, err);
		goto out;
	}
	r->last_contact_ms = now;
	set_str(&r->last_error, NULL);
	if (answer == CTL_ANS_FAILED && r->answer != CTL_ANS_FAILED)
		r->answer_failed_since_ms = now;
	r->answer = answer;
	r->busy_count = answer == CTL_ANS_BUSY ? r->busy_count + 1 : 0;
	ctl_copy(r->answer_reason, sizeof(r->answer_reason), reason);
	set_str(&r->answer_message, message);
out:
	pthread_mutex_unlock(&t->lock);
}

void ctl_mem_delete_result(struct ctl_mem_table *t, const char *uid, int64_t now, bool ok,
			   const char *err)
{
	struct rec *r;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	r = get_locked(t, uid);
	if (r) {
		if (ok)
			r->delete_failing_since_ms = 0;
		else if (!r->delete_failing_since_ms)
			r->delete_failing_since_ms = now;
		set_str(&r->last_error, ok ? NULL : err);
	}
	pthread_mutex_unlock(&t->lock);
}

void ctl_mem_mark_queued_event(struct ctl_mem_table *t, const char *uid)
{
	struct rec *r;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	r = get_locked(t, uid);
	if (r)
		r->queued_event_sent = true;
	pthread_mutex_unlock(&t->lock);
}
