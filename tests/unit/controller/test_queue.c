/*
 * test_queue.c - the work queue: dedup, processing re-add, delays in order,
 * backoff growth and reset, shutdown waking workers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ctl_queue.h"

static int64_t fake_now;

static int64_t fake_clock(void)
{
	return fake_now;
}

static struct ctl_queue *mk(void)
{
	struct ctl_queue *q = NULL;

	assert_int_equal(ctl_queue_new(&q), 0);
	fake_now = 1000;
	ctl_queue_set_clock(q, fake_clock);
	return q;
}

static void expect_key(struct ctl_queue *q, const char *want)
{
	char key[CTL_QUEUE_KEY_MAX];

	assert_int_equal(ctl_queue_get(q, key, sizeof(key), 0), 0);
	assert_string_equal(key, want);
}

static void expect_empty(struct ctl_queue *q)
{
	char key[CTL_QUEUE_KEY_MAX];

	assert_int_equal(ctl_queue_get(q, key, sizeof(key), 0), -ETIMEDOUT);
}

static void test_dedup_and_fifo(void **state)
{
	struct ctl_queue *q = mk();

	(void)state;
	assert_int_equal(ctl_queue_add(q, "ns/a"), 0);
	assert_int_equal(ctl_queue_add(q, "ns/b"), 0);
	assert_int_equal(ctl_queue_add(q, "ns/a"), 0);
	assert_int_equal(ctl_queue_len(q), 2);
	expect_key(q, "ns/a");
	expect_key(q, "ns/b");
	expect_empty(q);
	ctl_queue_done(q, "ns/a");
	ctl_queue_done(q, "ns/b");
	expect_empty(q);
	assert_int_equal(ctl_queue_add(q, ""), -EINVAL);
	ctl_queue_free(q);
}

static void test_processing_readd(void **state)
{
	struct ctl_queue *q = mk();

	(void)state;
	ctl_queue_add(q, "ns/a");
	expect_key(q, "ns/a");
	/* Added while processing: not handed to a second worker... */
	ctl_queue_add(q, "ns/a");
	ctl_queue_add(q, "ns/a");
	expect_empty(q);
	/* ...but processed again, once, after done. */
	ctl_queue_done(q, "ns/a");
	assert_int_equal(ctl_queue_len(q), 1);
	expect_key(q, "ns/a");
	ctl_queue_done(q, "ns/a");
	expect_empty(q);
	ctl_queue_free(q);
}

static void test_delays_in_order(void **state)
{
	struct ctl_queue *q = mk();

	(void)state;
	ctl_queue_add_after(q, "ns/c", 300);
	ctl_queue_add_after(q, "ns/a", 100);
	ctl_queue_add_after(q, "ns/b", 200);
	ctl_queue_add_after(q, "ns/d", 50);
	ctl_queue_add_after(q, "ns/d", 400); /* later: the earlier due time stays */
	ctl_queue_add_after(q, "ns/c", 150); /* earlier: moves up */
	assert_int_equal(ctl_queue_delayed_len(q), 4);
	expect_empty(q);
	fake_now += 49;
	expect_empty(q);
	fake_now += 1;
	expect_key(q, "ns/d");
	fake_now += 1000;
	expect_key(q, "ns/a");
	expect_key(q, "ns/c");
	expect_key(q, "ns/b");
	expect_empty(q);
	assert_int_equal(ctl_queue_delayed_len(q), 0);
	/* An immediate add of a delayed key takes it out of the heap. */
	ctl_queue_add_after(q, "ns/e", 5000);
	ctl_queue_add(q, "ns/e");
	assert_int_equal(ctl_queue_delayed_len(q), 0);
	expect_key(q, "ns/e");
	ctl_queue_free(q);
}

static void test_backoff(void **state)
{
	struct ctl_queue *q = mk();
	long expect[] = { 5, 10, 20, 40, 80 };

	(void)state;
	assert_int_equal(ctl_backoff_ms(1), 5);
	assert_int_equal(ctl_backoff_ms(2), 10);
	assert_int_equal(ctl_backoff_ms(13), 20480);
	assert_int_equal(ctl_backoff_ms(14), 40960);
	assert_int_equal(ctl_backoff_ms(15), 60000);
	assert_int_equal(ctl_backoff_ms(1000), 60000);

	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		assert_int_equal(ctl_queue_add_rate_limited(q, "ns/a"), 0);
		assert_int_equal(ctl_queue_failures(q, "ns/a"), i + 1);
		fake_now += expect[i] - 1;
		expect_empty(q);
		fake_now += 1;
		expect_key(q, "ns/a");
		ctl_queue_done(q, "ns/a");
	}
	ctl_queue_forget(q, "ns/a");
	assert_int_equal(ctl_queue_failures(q, "ns/a"), 0);
	ctl_queue_add_rate_limited(q, "ns/a");
	fake_now += 5;
	expect_key(q, "ns/a");
	ctl_queue_done(q, "ns/a");
	ctl_queue_free(q);
}

struct worker {
	struct ctl_queue *q;
	int rc;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char key[CTL_QUEUE_KEY_MAX];

	w->rc = ctl_queue_get(w->q, key, sizeof(key), 30000);
	return NULL;
}

static int64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_shutdown_wakes_workers(void **state)
{
	struct ctl_queue *q = NULL;
	struct worker w[3];
	pthread_t t[3];
	int64_t t0;

	(void)state;
	assert_int_equal(ctl_queue_new(&q), 0);
	for (int i = 0; i < 3; i++) {
		w[i].q = q;
		w[i].rc = 1;
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	{
		struct timespec ts = { 0, 50 * 1000000L };

		nanosleep(&ts, NULL);
	}
	t0 = real_ms();
	ctl_queue_shutdown(q);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].rc, -ESHUTDOWN);
	}
	assert_true(real_ms() - t0 < 5000);
	assert_int_equal(ctl_queue_add(q, "ns/a"), -ESHUTDOWN);
	ctl_queue_free(q);
	ctl_queue_free(NULL);
}

static void test_real_clock_delay(void **state)
{
	struct ctl_queue *q = NULL;
	char key[CTL_QUEUE_KEY_MAX];
	int64_t t0;

	(void)state;
	assert_int_equal(ctl_queue_new(&q), 0);
	t0 = real_ms();
	ctl_queue_add_after(q, "ns/x", 80);
	assert_int_equal(ctl_queue_get(q, key, sizeof(key), 5000), 0);
	assert_true(real_ms() - t0 >= 79);
	assert_string_equal(key, "ns/x");
	assert_int_equal(ctl_queue_get(q, key, sizeof(key), 20), -ETIMEDOUT);
	ctl_queue_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dedup_and_fifo),
		cmocka_unit_test(test_processing_readd),
		cmocka_unit_test(test_delays_in_order),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_shutdown_wakes_workers),
		cmocka_unit_test(test_real_clock_delay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
