/*
 * kc_ratelimit.h - the client-side rate limit of the API client: a token
 * bucket of `burst` tokens refilled at `qps` per second, shared by every
 * kc_client made from one kc_config (so a daemon's whole request rate is
 * bounded, whatever its number of threads). Thread-safe.
 *
 * Like client-go's flowcontrol limiter it hands out reservations: a caller
 * that finds the bucket empty is given the time its token will be there and
 * sleeps outside the lock; callers are served in arrival order. A wait longer
 * than the caller's deadline takes no token and fails at once (-ETIMEDOUT),
 * so a request never waits past its own deadline.
 *
 * Watches (kc_request_stream) are not counted: they are few and long-lived.
 */
#ifndef PCP_KC_RATELIMIT_H
#define PCP_KC_RATELIMIT_H

#include <stdint.h>

/* Defaults of --kube-api-qps / --kube-api-burst in both daemons. */
#define KC_DEFAULT_QPS 200
#define KC_DEFAULT_BURST 400
#define KC_MAX_QPS 100000
#define KC_MAX_BURST 100000

struct kc_ratelimit;

/*
 * A limiter of qps (1..KC_MAX_QPS) tokens per second holding at most burst
 * (1..KC_MAX_BURST), full at start. -EINVAL outside the bounds, -ENOMEM.
 * Owned by the caller: kc_ratelimit_free.
 */
int kc_ratelimit_new(double qps, int burst, struct kc_ratelimit **out);
void kc_ratelimit_free(struct kc_ratelimit *rl);

/*
 * Reserves one token at monotonic time now_ns. 0 with *wait_ns = how long to
 * wait before using it (0: at once); -ETIMEDOUT, nothing reserved, when that
 * would be more than max_wait_ns. Pure arithmetic under the lock (unit-tested
 * with made-up times).
 */
int kc_ratelimit_reserve(struct kc_ratelimit *rl, int64_t now_ns, int64_t max_wait_ns,
			 int64_t *wait_ns);

/*
 * Reserves a token and sleeps until it is due (CLOCK_MONOTONIC), at most
 * max_wait_ms. rl NULL: no limit, returns 0 at once. abort_fn (may be NULL)
 * is polled every 100 ms while sleeping; non-zero ends the wait with
 * -ECANCELED. 0, -ETIMEDOUT (the token would come too late), -ECANCELED.
 */
int kc_ratelimit_wait(struct kc_ratelimit *rl, long max_wait_ms, int (*abort_fn)(void *arg),
		      void *abort_arg);

/*
 * The clock kc_ratelimit_wait reads and sleeps on: CLOCK_MONOTONIC and
 * nanosleep, unless a test sets its own so that what it asserts (how long a
 * wait slept, that a refusal slept not at all) does not depend on how the
 * machine schedules it. now_ns returns monotonic nanoseconds; sleep_ns
 * sleeps (or pretends to) about ns. Set before the limiter is shared; clk
 * NULL restores the real clock. The struct is copied.
 */
struct kc_ratelimit_clock {
	int64_t (*now_ns)(void *arg);
	void (*sleep_ns)(void *arg, int64_t ns);
	void *arg;
};
void kc_ratelimit_set_clock(struct kc_ratelimit *rl, const struct kc_ratelimit_clock *clk);

#endif
