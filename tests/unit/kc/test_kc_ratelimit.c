/* The client-side rate limit: the token bucket's arithmetic with made-up
 * times, and the wait (deadline, cancel) on a clock the test controls and,
 * with load-proof bounds only, on the real one. The limit on real requests
 * (kc_config_set_rate_limit) is tested in test_kc_http.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kc_ratelimit.h"

#define MS 1000000LL

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_bounds(void **state)
{
	struct kc_ratelimit *rl = (struct kc_ratelimit *)1;
	(void)state;

	assert_int_equal(kc_ratelimit_new(0, 10, &rl), -EINVAL);
	assert_null(rl);
	assert_int_equal(kc_ratelimit_new(0.5, 10, &rl), -EINVAL);
	assert_int_equal(kc_ratelimit_new(KC_MAX_QPS + 1, 10, &rl), -EINVAL);
	assert_int_equal(kc_ratelimit_new(10, 0, &rl), -EINVAL);
	assert_int_equal(kc_ratelimit_new(10, KC_MAX_BURST + 1, &rl), -EINVAL);
	assert_int_equal(kc_ratelimit_new(10, 1, NULL), -EINVAL);
	assert_int_equal(kc_ratelimit_new(KC_MAX_QPS, KC_MAX_BURST, &rl), 0);
	kc_ratelimit_free(rl);
	kc_ratelimit_free(NULL);
}

/* burst at once, then one every 1/qps, queued callers in arrival order */
static void test_burst_then_rate(void **state)
{
	struct kc_ratelimit *rl = NULL;
	int64_t w = -1, t0 = 5000 * MS;
	(void)state;

	assert_int_equal(kc_ratelimit_new(10, 3, &rl), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(kc_ratelimit_reserve(rl, t0, 0, &w), 0);
		assert_int_equal(w, 0);
	}
	/* empty: the 4th waits 100 ms, the 5th (same instant) 200 ms */
	assert_int_equal(kc_ratelimit_reserve(rl, t0, 1000 * MS, &w), 0);
	assert_true(w >= 99 * MS && w <= 101 * MS);
	assert_int_equal(kc_ratelimit_reserve(rl, t0, 1000 * MS, &w), 0);
	assert_true(w >= 199 * MS && w <= 201 * MS);
	/* 250 ms later: both promised tokens are due, half a token more: 50 ms */
	assert_int_equal(kc_ratelimit_reserve(rl, t0 + 250 * MS, 1000 * MS, &w), 0);
	assert_true(w >= 49 * MS && w <= 51 * MS);
	/* a long quiet time refills to burst, not beyond */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(kc_ratelimit_reserve(rl, t0 + 60000 * MS, 0, &w), 0);
		assert_int_equal(w, 0);
	}
	assert_int_equal(kc_ratelimit_reserve(rl, t0 + 60000 * MS, 0, &w), -ETIMEDOUT);
	kc_ratelimit_free(rl);
}

/* a wait beyond the caller's deadline takes nothing */
static void test_deadline_takes_nothing(void **state)
{
	struct kc_ratelimit *rl = NULL;
	int64_t w = -1, t0 = 1 * MS;
	(void)state;

	assert_int_equal(kc_ratelimit_new(2, 1, &rl), 0);
	assert_int_equal(kc_ratelimit_reserve(rl, t0, 0, &w), 0);
	/* next token in 500 ms: refused with a 100 ms deadline, several times */
	for (int i = 0; i < 5; i++) {
		assert_int_equal(kc_ratelimit_reserve(rl, t0, 100 * MS, &w), -ETIMEDOUT);
		assert_int_equal(w, 0);
	}
	/* ... and the refusals did not push the next caller back */
	assert_int_equal(kc_ratelimit_reserve(rl, t0, 600 * MS, &w), 0);
	assert_true(w >= 499 * MS && w <= 501 * MS);
	/* a clock that goes back does not give tokens */
	assert_int_equal(kc_ratelimit_reserve(rl, 0, 0, &w), -ETIMEDOUT);
	kc_ratelimit_free(rl);
}

static int abort_after(void *arg)
{
	int *calls = arg;

	return ++*calls >= 2;
}

/* A clock the test controls: sleeping moves it by exactly what was asked. */
struct fake_clock {
	int64_t now;
	int sleeps;
	int64_t slept, max_slice;
};

static int64_t fc_now(void *arg)
{
	return ((struct fake_clock *)arg)->now;
}

static void fc_sleep(void *arg, int64_t ns)
{
	struct fake_clock *fc = arg;

	fc->now += ns;
	fc->sleeps++;
	fc->slept += ns;
	if (ns > fc->max_slice)
		fc->max_slice = ns;
}

/* |got - want| within 1 us (the bucket computes in doubles) */
static void assert_ns(int64_t got, int64_t want)
{
	if (got < want - 1000 || got > want + 1000)
		fail_msg("slept %lld ns, want %lld", (long long)got, (long long)want);
}

/* The wait on a clock the test controls: how long it sleeps, that a refusal
 * sleeps not at all and takes nothing, that an abort is polled every 100 ms.
 * No assertion depends on how the machine schedules the test. */
static void test_wait(void **state)
{
	struct fake_clock fc = { .now = 5000 * MS };
	struct kc_ratelimit_clock clk = { fc_now, fc_sleep, &fc };
	struct kc_ratelimit *rl = NULL;
	int calls = 0;
	(void)state;

	assert_int_equal(kc_ratelimit_wait(NULL, 0, NULL, NULL), 0); /* no limit */
	assert_int_equal(kc_ratelimit_new(20, 1, &rl), 0);
	kc_ratelimit_set_clock(rl, &clk);
	assert_int_equal(kc_ratelimit_wait(rl, 1000, NULL, NULL), 0);
	assert_int_equal(fc.sleeps, 0); /* the burst: at once */
	assert_int_equal(kc_ratelimit_wait(rl, 1000, NULL, NULL), 0);
	assert_ns(fc.slept, 50 * MS);
	assert_int_equal(kc_ratelimit_wait(rl, 1000, NULL, NULL), 0);
	assert_ns(fc.slept, 100 * MS);
	assert_int_equal(fc.sleeps, 2);
	/* would wait 50 ms: refused at once with a 10 ms budget, nothing slept */
	assert_int_equal(kc_ratelimit_wait(rl, 10, NULL, NULL), -ETIMEDOUT);
	assert_int_equal(fc.sleeps, 2);
	assert_ns(fc.slept, 100 * MS);
	/* ... and nothing taken: the next caller still waits 50 ms, not 100 */
	assert_int_equal(kc_ratelimit_wait(rl, 1000, NULL, NULL), 0);
	assert_ns(fc.slept, 150 * MS);
	kc_ratelimit_free(rl);

	/* a long wait ends when the abort callback says so, polled every 100 ms */
	fc = (struct fake_clock){ .now = 7000 * MS };
	assert_int_equal(kc_ratelimit_new(1, 1, &rl), 0);
	kc_ratelimit_set_clock(rl, &clk);
	assert_int_equal(kc_ratelimit_wait(rl, 5000, NULL, NULL), 0);
	assert_int_equal(kc_ratelimit_wait(rl, 5000, abort_after, &calls), -ECANCELED);
	assert_int_equal(calls, 2);
	assert_int_equal(fc.sleeps, 1);
	assert_ns(fc.slept, 100 * MS);
	/* without an abort: 1 s in slices of at most 100 ms (the token of the
	 * cancelled wait is forfeited, so this one waits for the next) */
	fc.sleeps = 0;
	fc.slept = 0;
	assert_int_equal(kc_ratelimit_wait(rl, 5000, NULL, NULL), 0);
	assert_ns(fc.max_slice, 100 * MS);
	assert_ns(fc.slept, 1900 * MS);
	assert_int_equal(fc.sleeps, 19);
	/* the real clock back */
	kc_ratelimit_set_clock(rl, NULL);
	kc_ratelimit_set_clock(NULL, &clk);
	kc_ratelimit_free(rl);
}

/* The same wait on the real clock, with only the bounds a loaded machine
 * cannot break: a wait is never shorter than the tokens owed (load only
 * lengthens it; the upper bound is wide for that reason), a refusal comes
 * when the token is ~1 s away, and the abort callback is honoured. */
static void test_wait_real_clock(void **state)
{
	struct kc_ratelimit *rl = NULL;
	int64_t t;
	int calls = 0;
	(void)state;

	assert_int_equal(kc_ratelimit_new(20, 1, &rl), 0);
	t = mono_ms();
	assert_int_equal(kc_ratelimit_wait(rl, 1000, NULL, NULL), 0);
	assert_int_equal(kc_ratelimit_wait(rl, 1000, NULL, NULL), 0); /* ~50 ms */
	assert_int_equal(kc_ratelimit_wait(rl, 1000, NULL, NULL), 0); /* ~100 ms */
	assert_true(mono_ms() - t >= 95);
	assert_true(mono_ms() - t < 5000);
	kc_ratelimit_free(rl);

	assert_int_equal(kc_ratelimit_new(1, 1, &rl), 0);
	assert_int_equal(kc_ratelimit_wait(rl, 5000, NULL, NULL), 0);
	assert_int_equal(kc_ratelimit_wait(rl, 10, NULL, NULL), -ETIMEDOUT);
	assert_int_equal(kc_ratelimit_wait(rl, 5000, abort_after, &calls), -ECANCELED);
	assert_int_equal(calls, 2);
	kc_ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_burst_then_rate),
		cmocka_unit_test(test_deadline_takes_nothing),
		cmocka_unit_test(test_wait),
		cmocka_unit_test(test_wait_real_clock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
