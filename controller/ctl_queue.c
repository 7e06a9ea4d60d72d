/*
 * ctl_queue.c - work queue with dedup, delays and per-key backoff.
 *
 * One record per known key in a chained hash table; the ready keys form a
 * FIFO through the records; delayed keys sit in a binary min-heap of record
 * pointers (each record knows its heap index so an earlier due time can move
 * it up). A record is freed once it is idle: not queued, not processing, not
 * delayed and without failures.
 */
#include "ctl_queue.h"

#include "ctl_slab.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_slab.h"
#include <time.h>

#define NBUCKETS 1024u

struct entry {
	struct entry *hnext; /* hash chain */
	struct entry *qnext; /* FIFO */
	bool dirty;          /* must be processed (in the FIFO unless processing) */
	bool processing;
	long heap_idx; /* -1: not delayed */
	int64_t due_ms;
	unsigned failures;
	char key[];
};

struct ctl_queue {
	struct ctl_slabs slabs; /* the entries (a burst of 10,000 keys: ~0.7 MB off the malloc heap) */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct entry *buckets[NBUCKETS];
	struct entry *head, *tail;
	size_t nready;
	struct entry **heap;
	size_t nheap, capheap;
	bool shutdown;
	int64_t (*now)(void);
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long ctl_backoff_ms(unsigned failures)
{
	long ms = CTL_BACKOFF_BASE_MS;

	for (unsigned i = 1; i < failures && ms < CTL_BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms > CTL_BACKOFF_MAX_MS ? CTL_BACKOFF_MAX_MS : ms;
}

static unsigned hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h % NBUCKETS;
}

static struct entry *lookup(struct ctl_queue *q, const char *key)
{
	for (struct entry *e = q->buckets[hash(key)]; e; e = e->hnext)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static struct entry *lookup_or_create(struct ctl_queue *q, const char *key)
{
	struct entry *e = lookup(q, key);
	size_t n = strlen(key);
	unsigned b;

	if (e)
		return e;
	e = ctl_slabs_alloc(&q->slabs, sizeof(*e) + n + 1);
	if (!e)
		return NULL;
	memcpy(e->key, key, n + 1);
	e->heap_idx = -1;
	b = hash(key);
	e->hnext = q->buckets[b];
	q->buckets[b] = e;
	return e;
}

static void entry_free(struct ctl_queue *q, struct entry *e)
{
	ctl_slabs_free(&q->slabs, e, sizeof(*e) + strlen(e->key) + 1);
}

static void maybe_release(struct ctl_queue *q, struct entry *e)
{
	struct entry **pp;

	if (e->dirty || e->processing || e->heap_idx >= 0 || e->failures)
		return;
	for (pp = &q->buckets[hash(e->key)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			entry_free(q, e);
			return;
		}
	}
}

/* ---------------------------------------------------------------- heap */

static void heap_swap(struct ctl_queue *q, size_t a, size_t b)
{
	struct entry *t = q->heap[a];

	q->heap[a] = q->heap[b];
	q->heap[b] = t;
	q->heap[a]->heap_idx = (long)a;
	q->heap[b]->heap_idx = (long)b;
}

static void heap_up(struct ctl_queue *q, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (q->heap[p]->due_ms <= q->heap[i]->due_ms)
			break;
		heap_swap(q, p, i);
		i = p;
	}
}

static void heap_down(struct ctl_queue *q, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < q->nheap && q->heap[l]->due_ms < q->heap[m]->due_ms)
			m = l;
		if (r < q->nheap && q->heap[r]->due_ms < q->heap[m]->due_ms)
			m = r;
		if (m == i)
			return;
		heap_swap(q, i, m);
		i = m;
	}
}

static int heap_push(struct ctl_queue *q, struct entry *e)
{
	if (q->nheap == q->capheap) {
		size_t cap = q->capheap ? q->capheap * 2 : 64;
		struct entry **h = realloc(q->heap, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		q->heap = h;
		q->capheap = cap;
	}
	q->heap[q->nheap] = e;
	e->heap_idx = (long)q->nheap;
	q->nheap++;
	heap_up(q, q->nheap - 1);
	return 0;
}

static void heap_remove(struct ctl_queue *q, struct entry *e)
{
	size_t i = (size_t)e->heap_idx;

	if (e->heap_idx < 0)
		return;
	q->nheap--;
	if (i != q->nheap) {
		heap_swap(q, i, q->nheap);
		heap_down(q, i);
		heap_up(q, i);
	}
	e->heap_idx = -1;
}

/* ---------------------------------------------------------------- core */

static void fifo_push(struct ctl_queue *q, struct entry *e)
{
	e->qnext = NULL;
	if (q->tail)
		q->tail->qnext = e;
	else
		q->head = e;
	q->tail = e;
	q->nready++;
	pthread_cond_signal(&q->cond);
}

static void mark_ready(struct ctl_queue *q, struct entry *e)
{
	heap_remove(q, e);
	if (e->dirty)
		return;
	e->dirty = true;
	if (!e->processing)
		fifo_push(q, e);
}

static void move_due(struct ctl_queue *q)
{
	int64_t now = q->now();

	while (q->nheap && q->heap[0]->due_ms <= now)
		mark_ready(q, q->heap[0]);
}

static bool key_ok(const char *key)
{
	return key && *key && strlen(key) < CTL_QUEUE_KEY_MAX;
}

int ctl_queue_new(struct ctl_queue **out)
{
	struct ctl_queue *q = calloc(1, sizeof(*q));
	pthread_condattr_t attr;
	int rc = -ENOMEM;

	if (!q)
		goto out;
	if (ctl_slabs_init(&q->slabs) != 0 || pthread_condattr_init(&attr) != 0) {
		ctl_slabs_cleanup(&q->slabs);
		goto out;
	}
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (pthread_cond_init(&q->cond, &attr) != 0) {
		pthread_condattr_destroy(&attr);
		ctl_slabs_cleanup(&q->slabs);
		goto out;
	}
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&q->lock, NULL);
	q->now = mono_ms;
	*out = q;
	q = NULL;
	rc = 0;
out:
	free(q);
	return rc;
}

void ctl_queue_free(struct ctl_queue *q)
{
	if (!q)
		return;
	for (unsigned b = 0; b < NBUCKETS; b++) {
		struct entry *e = q->buckets[b];

		while (e) {
			struct entry *next = e->hnext;

			entry_free(q, e);
			e = next;
		}
	}
	free(q->heap);
	ctl_slabs_cleanup(&q->slabs);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

void ctl_queue_set_clock(struct ctl_queue *q, int64_t (*now_ms)(void))
{
	pthread_mutex_lock(&q->lock);
	q->now = now_ms ? now_ms : mono_ms;
	pthread_mutex_unlock(&q->lock);
}

int ctl_queue_add(struct ctl_queue *q, const char *key)
{
	return ctl_queue_add_after(q, key, 0);
}

int ctl_queue_add_after(struct ctl_queue *q, const char *key, long delay_ms)
{
	struct entry *e;
	int rc = 0;

	if (!key_ok(key))
		return -EINVAL;
	pthread_mutex_lock(&q->lock);
	if (q->shutdown) {
		rc = -ESHUTDOWN;
		goto out;
	}
	e = lookup_or_create(q, key);
	if (!e) {
		rc = -ENOMEM;
		goto out;
	}
	if (delay_ms <= 0) {
		mark_ready(q, e);
		goto out;
	}
	if (e->dirty)
		goto out; /* it will be processed soon anyway */
	if (e->heap_idx >= 0) {
		int64_t due = q->now() + delay_ms;

		if (due < e->due_ms) {
			e->due_ms = due;
			heap_up(q, (size_t)e->heap_idx);
			pthread_cond_broadcast(&q->cond); /* an earlier wake-up */
		}
		goto out;
	}
	e->due_ms = q->now() + delay_ms;
	rc = heap_push(q, e);
	if (rc) {
		maybe_release(q, e);
		goto out;
	}
	pthread_cond_broadcast(&q->cond);
out:
	pthread_mutex_unlock(&q->lock);
	return rc;
}

int ctl_queue_add_rate_limited(struct ctl_queue *q, const char *key)
{
	struct entry *e;
	long delay;

	if (!key_ok(key))
		return -EINVAL;
	pthread_mutex_lock(&q->lock);
	e = q->shutdown ? NULL : lookup_or_create(q, key);
	if (!e) {
		int rc = q->shutdown ? -ESHUTDOWN : -ENOMEM;

		pthread_mutex_unlock(&q->lock);
		return rc;
	}
	if (e->failures < 64)
		e->failures++;
	delay = ctl_backoff_ms(e->failures);
	pthread_mutex_unlock(&q->lock);
	return ctl_queue_add_after(q, key, delay);
}

void ctl_queue_forget(struct ctl_queue *q, const char *key)
{
	struct entry *e;

	if (!key_ok(key))
		return;
	pthread_mutex_lock(&q->lock);
	e = lookup(q, key);
	if (e) {
		e->failures = 0;
		maybe_release(q, e);
	}
	pthread_mutex_unlock(&q->lock);
}

unsigned ctl_queue_failures(struct ctl_queue *q, const char *key)
{
	struct entry *e;
	unsigned n = 0;

	if (!key_ok(key))
		return 0;
	pthread_mutex_lock(&q->lock);
	e = lookup(q, key);
	if (e)
		n = e->failures;
	pthread_mutex_unlock(&q->lock);
	return n;
}

int ctl_queue_get(struct ctl_queue *q, char *key, size_t cap, long timeout_ms)
{
	int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	int rc;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		int64_t now, wait_ms;
		struct timespec ts;

		if (q->shutdown) {
			rc = -ESHUTDOWN;
			break;
		}
		move_due(q);
		if (q->head) {
			struct entry *e = q->head;

			q->head = e->qnext;
			if (!q->head)
				q->tail = NULL;
			q->nready--;
			e->dirty = false;
			e->processing = true;
			if (cap)
				snprintf(key, cap, "%s", e->key);
			rc = 0;
			break;
		}
		now = mono_ms();
		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		wait_ms = deadline - now;
		if (q->nheap) {
			int64_t due = q->heap[0]->due_ms - q->now();

			if (due < wait_ms)
				wait_ms = due < 1 ? 1 : due;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(wait_ms / 1000);
		ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&q->cond, &q->lock, &ts);
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

void ctl_queue_done(struct ctl_queue *q, const char *key)
{
	struct entry *e;

	if (!key_ok(key))
		return;
	pthread_mutex_lock(&q->lock);
	e = lookup(q, key);
	if (e && e->processing) {
		e->processing = false;
		if (e->dirty && !q->shutdown)
			fifo_push(q, e);
		else if (e->dirty)
			e->dirty = false;
		maybe_release(q, e);
	}
	pthread_mutex_unlock(&q->lock);
}

void ctl_queue_shutdown(struct ctl_queue *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->shutdown = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

size_t ctl_queue_len(struct ctl_queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	move_due(q);
	n = q->nready;
	pthread_mutex_unlock(&q->lock);
	return n;
}

size_t ctl_queue_delayed_len(struct ctl_queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->nheap;
	pthread_mutex_unlock(&q->lock);
	return n;
}
