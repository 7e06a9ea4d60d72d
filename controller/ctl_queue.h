/*
 * ctl_queue.h - the controller's work queue of "namespace/name" keys.
 *
 * Semantics (those of client-go's workqueue, which users of controllers know):
 *   - dedup: a key waiting in the queue is held once, however often it is added;
 *   - a key being processed (between get and done) that is added again is not
 *     handed to a second worker; it is queued again when done() is called;
 *   - delayed adds wait in a min-heap ordered by due time; adding a key that is
 *     already waiting keeps the earlier due time;
 *   - per-key exponential backoff for errors (add_rate_limited): 5 ms, 10 ms,
 *     ... capped at 60 s; forget() resets it (call it on success);
 *   - shutdown wakes every waiting worker; get() then returns -ESHUTDOWN.
 *
 * Thread-safe; one mutex, one condition variable (CLOCK_MONOTONIC).
 * Times are taken from a clock function so tests can drive them.
 */
#ifndef PCP_CTL_QUEUE_H
#define PCP_CTL_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#define CTL_QUEUE_KEY_MAX 320 /* namespace (63) + '/' + name (253) + NUL, rounded */
#define CTL_BACKOFF_BASE_MS 5L
#define CTL_BACKOFF_MAX_MS 60000L

struct ctl_queue;

int ctl_queue_new(struct ctl_queue **out);
/* Frees the queue; call only when no thread uses it any more. NULL is fine. */
void ctl_queue_free(struct ctl_queue *q);

/* 0, -EINVAL (empty or too long key), -ENOMEM, -ESHUTDOWN. */
int ctl_queue_add(struct ctl_queue *q, const char *key);
/* delay_ms <= 0 is an immediate add. */
int ctl_queue_add_after(struct ctl_queue *q, const char *key, long delay_ms);
/* Adds after the key's next backoff delay and counts one more failure. */
int ctl_queue_add_rate_limited(struct ctl_queue *q, const char *key);
/* Resets the key's failure count. */
void ctl_queue_forget(struct ctl_queue *q, const char *key);
/* Failures counted for key (0 when none). */
unsigned ctl_queue_failures(struct ctl_queue *q, const char *key);

/*
 * Waits up to timeout_ms for a key, copies it into key (cap bytes) and marks
 * it processing. 0, -ETIMEDOUT, -ESHUTDOWN.
 */
int ctl_queue_get(struct ctl_queue *q, char *key, size_t cap, long timeout_ms);
/* The worker is finished with key (re-queues it if it was added meanwhile). */
void ctl_queue_done(struct ctl_queue *q, const char *key);

void ctl_queue_shutdown(struct ctl_queue *q);
/* Keys ready now (not counting delayed or processing ones). */
size_t ctl_queue_len(struct ctl_queue *q);
/* Keys waiting for their delay. */
size_t ctl_queue_delayed_len(struct ctl_queue *q);

/* Backoff delay for the n-th failure (n >= 1): 5 ms * 2^(n-1), <= 60 s. */
long ctl_backoff_ms(unsigned failures);

/* Milliseconds of a monotonic clock; replaceable for tests (NULL restores). */
void ctl_queue_set_clock(struct ctl_queue *q, int64_t (*now_ms)(void));

#endif
