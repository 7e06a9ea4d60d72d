/*
 * kc_ratelimit.c - token bucket with reservations (see kc_ratelimit.h).
 *
 * State: `tokens` available at time `last_ns` (may go negative: tokens
 * already promised to waiting callers). At now, tokens += (now - last) * qps,
 * capped at burst; a caller takes one, and if that leaves tokens < 0 it waits
 * -tokens / qps seconds.
 */
#include "kc_ratelimit.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static int64_t mono_ns(void *arg);
static void sleep_ns(void *arg, int64_t ns);

static const struct kc_ratelimit_clock real_clock = { mono_ns, sleep_ns, NULL };

struct kc_ratelimit {
	pthread_mutex_t lock; /* guards the fields below */
	double qps;
	double burst;
	double tokens;
	int64_t last_ns;
	int started; /* last_ns is set */
	struct kc_ratelimit_clock clk; /* set before sharing; read without the lock */
};

#define NS_PER_S 1000000000.0

int kc_ratelimit_new(double qps, int burst, struct kc_ratelimit **out)
{
	struct kc_ratelimit *rl;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!(qps >= 1 && qps <= KC_MAX_QPS) || burst < 1 || burst > KC_MAX_BURST)
		return -EINVAL;
	rl = calloc(1, sizeof(*rl));
	if (!rl)
		return -ENOMEM;
	if (pthread_mutex_init(&rl->lock, NULL) != 0) {
		free(rl);
		return -ENOMEM;
	}
	rl->qps = qps;
	rl->burst = burst;
	rl->tokens = burst;
	rl->clk = real_clock;
	*out = rl;
	return 0;
}

void kc_ratelimit_free(struct kc_ratelimit *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl);
}

int kc_ratelimit_reserve(struct kc_ratelimit *rl, int64_t now_ns, int64_t max_wait_ns,
			 int64_t *wait_ns)
{
	double tokens, wait;
	int rc = 0;

	*wait_ns = 0;
	pthread_mutex_lock(&rl->lock);
	if (!rl->started || now_ns < rl->last_ns) {
		/* first use, or a clock that went back: refill from here */
		rl->started = 1;
		if (now_ns < rl->last_ns)
			now_ns = rl->last_ns;
		rl->last_ns = now_ns;
	}
	tokens = rl->tokens + (double)(now_ns - rl->last_ns) * rl->qps / NS_PER_S;
	if (tokens > rl->burst)
		tokens = rl->burst;
	tokens -= 1;
	wait = tokens < 0 ? -tokens / rl->qps * NS_PER_S : 0;
	if (wait > (double)max_wait_ns) {
		rc = -ETIMEDOUT; /* nothing taken, the state is left as it was */
		goto out;
	}
	rl->tokens = tokens;
	rl->last_ns = now_ns;
	*wait_ns = (int64_t)wait;
out:
	pthread_mutex_unlock(&rl->lock);
	return rc;
}

static int64_t mono_ns(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(void *arg, int64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };

	(void)arg;
	nanosleep(&ts, NULL);
}

void kc_ratelimit_set_clock(struct kc_ratelimit *rl, const struct kc_ratelimit_clock *clk)
{
	if (rl)
		rl->clk = clk ? *clk : real_clock;
}

int kc_ratelimit_wait(struct kc_ratelimit *rl, long max_wait_ms, int (*abort_fn)(void *arg),
		      void *abort_arg)
{
	const struct kc_ratelimit_clock *clk;
	int64_t wait_ns = 0, due;
	int rc;

	if (!rl)
		return 0;
	clk = &rl->clk;
	rc = kc_ratelimit_reserve(rl, clk->now_ns(clk->arg),
				  (int64_t)(max_wait_ms > 0 ? max_wait_ms : 0) * 1000000, &wait_ns);
	if (rc || wait_ns == 0)
		return rc;
	due = clk->now_ns(clk->arg) + wait_ns;
	for (;;) {
		int64_t left = due - clk->now_ns(clk->arg);

		if (left <= 0)
			return 0;
		if (abort_fn && abort_fn(abort_arg))
			return -ECANCELED; /* the reserved token is forfeited */
		if (left > 100000000)
			left = 100000000;
		clk->sleep_ns(clk->arg, left);
	}
}
