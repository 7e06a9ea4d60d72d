/*
 * test_smap.c - the sharded map (ctl_smap): entries survive growing and
 * shrinking, and a map emptied by deletes or by a sweep gives its buckets
 * back (back down after deletion, issue #11).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "ctl_smap.h"

#define N 5000

static void no_free(void *v)
{
	(void)v;
}

static size_t buckets(struct ctl_smap *m)
{
	size_t nb = 0;

	for (size_t i = 0; i < CTL_SMAP_SHARDS; i++)
		nb += m->sh[i].nb;
	return nb;
}

static void op(struct ctl_smap *m, int i, int what, uint64_t epoch)
{
	char key[32];
	uint64_t h;
	struct ctl_smap_shard *sh;
	void *old = NULL;

	snprintf(key, sizeof(key), "ns/k%d", i);
	h = ctl_smap_hash(key);
	sh = ctl_smap_shard(m, h);
	pthread_mutex_lock(&sh->lock);
	if (what == 0)
		assert_int_equal(ctl_smap_put_locked(sh, h, key, (void *)(uintptr_t)(i + 1), epoch, &old), 0);
	else if (what == 1)
		assert_ptr_equal(ctl_smap_del_locked(sh, h, key), (void *)(uintptr_t)(i + 1));
	else
		assert_ptr_equal(ctl_smap_get_locked(sh, h, key), (void *)(uintptr_t)(i + 1));
	pthread_mutex_unlock(&sh->lock);
	assert_null(old);
}

static void test_shrinks_after_deletes(void **state)
{
	struct ctl_smap m;
	(void)state;

	assert_int_equal(ctl_smap_init(&m, NULL), 0);
	for (int i = 0; i < N; i++)
		op(&m, i, 0, 1);
	assert_true(buckets(&m) >= N);
	/* delete all but every tenth: the rest still found after the shrinks */
	for (int i = 0; i < N; i++)
		if (i % 10)
			op(&m, i, 1, 0);
	assert_int_equal(ctl_smap_len(&m), N / 10);
	assert_true(buckets(&m) <= 8 * N / 10); /* at most 4 per entry, rounded up to a power of two */
	for (int i = 0; i < N; i += 10)
		op(&m, i, 2, 0);
	for (int i = 0; i < N; i += 10)
		op(&m, i, 1, 0);
	assert_int_equal(buckets(&m), CTL_SMAP_MIN_BUCKETS * CTL_SMAP_SHARDS);
	ctl_smap_cleanup(&m, no_free);
}

static void test_shrinks_after_sweep(void **state)
{
	struct ctl_smap m;
	struct ctl_smap_ent *gone, *next;
	size_t n = 0;
	(void)state;

	assert_int_equal(ctl_smap_init(&m, NULL), 0);
	for (int i = 0; i < N; i++)
		op(&m, i, 0, i < 100 ? 2 : 1);
	gone = ctl_smap_sweep(&m, 2);
	for (; gone; gone = next, n++) {
		next = gone->next;
		ctl_smap_ent_free(&m, gone);
	}
	assert_int_equal(n, N - 100);
	assert_true(buckets(&m) <= 4 * 100 + CTL_SMAP_MIN_BUCKETS * CTL_SMAP_SHARDS);
	for (int i = 0; i < 100; i++)
		op(&m, i, 2, 0);
	ctl_smap_cleanup(&m, no_free);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shrinks_after_deletes),
		cmocka_unit_test(test_shrinks_after_sweep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
