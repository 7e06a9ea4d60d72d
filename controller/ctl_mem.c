/*
 * ctl_mem.c - per-uid memory of jobs (see ctl_mem.h), in a ctl_smap keyed
 * by uid: each record under its shard's lock.
 */
#include "ctl_mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_smap.h"

struct rec {
	int64_t first_seen_ms;
	int64_t last_contact_ms;
	int64_t answer_failed_since_ms;
	int64_t delete_failing_since_ms;
	enum ctl_answer answer;
	unsigned busy_count;
	uint32_t ncontainers;
	bool queued_event_sent;
	bool job_sent;
	char *answer_message; /* NULL when "" */
	char *last_error;     /* NULL when "" */
	char *cert_pem;
	char answer_reason[CTL_REASON_MAX];
};

/* Keyed by uid; each shard's lock guards its records. The records and the
 * map's entries live in slabs of the table's own (ctl_slab.h): 10,000 CRs in
 * flight at once hold ~2 MB of them, and from malloc they raised the heap's
 * high water under everything long-lived allocated meanwhile. */
struct ctl_mem_table {
	struct ctl_slabs slabs;
	struct ctl_smap map;
};

static void rec_free(struct ctl_mem_table *t, void *v)
{
	struct rec *r = v;

	if (!r)
		return;
	free(r->answer_message);
	free(r->last_error);
	free(r->cert_pem);
	ctl_slabs_free(&t->slabs, r, sizeof(*r));
}

static void no_free(void *v)
{
	(void)v;
}

int ctl_mem_table_new(struct ctl_mem_table **out)
{
	struct ctl_mem_table *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return -ENOMEM;
	if (ctl_slabs_init(&t->slabs) != 0 || ctl_smap_init(&t->map, &t->slabs) != 0) {
		ctl_mem_table_free(t);
		return -ENOMEM;
	}
	*out = t;
	return 0;
}

void ctl_mem_table_free(struct ctl_mem_table *t)
{
	struct ctl_smap_ent *gone, *next;

	if (!t)
		return;
	if (t->map.sh[0].b) {
		/* the records back to the slabs (the map's cleanup has no context) */
		for (gone = ctl_smap_sweep(&t->map, UINT64_MAX); gone; gone = next) {
			next = gone->next;
			rec_free(t, gone->val);
			ctl_smap_ent_free(&t->map, gone);
		}
	}
	ctl_smap_cleanup(&t->map, no_free);
	ctl_slabs_cleanup(&t->slabs); /* last: the entries lived there */
	free(t);
}

size_t ctl_mem_count(struct ctl_mem_table *t)
{
	return t ? ctl_smap_len(&t->map) : 0;
}

/* The shard of uid, locked; *h gets the hash. NULL (nothing locked) without uid. */
static struct ctl_smap_shard *lock_shard(struct ctl_mem_table *t, const char *uid, uint64_t *h)
{
	struct ctl_smap_shard *sh;

	if (!t || !uid || !uid[0])
		return NULL;
	*h = ctl_smap_hash(uid);
	sh = ctl_smap_shard(&t->map, *h);
	pthread_mutex_lock(&sh->lock);
	return sh;
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
	struct ctl_smap_shard *sh;
	struct rec *r;
	uint64_t h = 0;
	void *old = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	sh = lock_shard(t, uid, &h);
	if (!sh)
		return 0;
	r = ctl_smap_get_locked(sh, h, uid);
	if (!r && create) {
		r = ctl_slabs_alloc(&t->slabs, sizeof(*r));
		if (!r) {
			rc = -ENOMEM;
			goto out;
		}
		r->first_seen_ms = now;
		rc = ctl_smap_put_locked(sh, h, uid, r, 0, &old);
		if (rc) {
			ctl_slabs_free(&t->slabs, r, sizeof(*r));
			goto out;
		}
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
	out->job_sent = r->job_sent;
	if (r->cert_pem) {
		out->cert_pem = strdup(r->cert_pem);
		if (!out->cert_pem)
			rc = -ENOMEM;
	}
out:
	pthread_mutex_unlock(&sh->lock);
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
	struct ctl_smap_shard *sh;
	uint64_t h = 0;
	void *r;

	sh = lock_shard(t, uid, &h);
	if (!sh)
		return;
	r = ctl_smap_del_locked(sh, h, uid);
	pthread_mutex_unlock(&sh->lock);
	rec_free(t, r);
}

void ctl_mem_record_call(struct ctl_mem_table *t, const char *uid, int64_t now, int rc,
			 enum ctl_answer answer, const char *reason, const char *message,
			 const char *err, bool checkpoint, const char *cert_pem, size_t ncontainers)
{
	struct ctl_smap_shard *sh;
	struct rec *r;
	uint64_t h = 0;

	sh = lock_shard(t, uid, &h);
	if (!sh)
		return;
	r = ctl_smap_get_locked(sh, h, uid);
	if (!r)
		goto out;
	if (checkpoint) {
		r->job_sent = true;
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
	pthread_mutex_unlock(&sh->lock);
}

void ctl_mem_delete_result(struct ctl_mem_table *t, const char *uid, int64_t now, bool ok,
			   const char *err)
{
	struct ctl_smap_shard *sh;
	struct rec *r;
	uint64_t h = 0;

	sh = lock_shard(t, uid, &h);
	if (!sh)
		return;
	r = ctl_smap_get_locked(sh, h, uid);
	if (r) {
		if (ok)
			r->delete_failing_since_ms = 0;
		else if (!r->delete_failing_since_ms)
			r->delete_failing_since_ms = now;
		set_str(&r->last_error, ok ? NULL : err);
	}
	pthread_mutex_unlock(&sh->lock);
}

void ctl_mem_mark_queued_event(struct ctl_mem_table *t, const char *uid)
{
	struct ctl_smap_shard *sh;
	struct rec *r;
	uint64_t h = 0;

	sh = lock_shard(t, uid, &h);
	if (!sh)
		return;
	r = ctl_smap_get_locked(sh, h, uid);
	if (r)
		r->queued_event_sent = true;
	pthread_mutex_unlock(&sh->lock);
}
