/*
 * test_slab.c - fixed-size slots (ctl_slab): slots are distinct, aligned
 * and zeroed, freed slots are reused, and a block goes back to the system
 * when its last slot is freed (RSS back down after deletion, issue #11).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl_slab.h"

#define UNDER_ASAN CTL_SLAB_MALLOC

#define N 3000

static void test_slots(void **state)
{
	static void *p[N];
	struct ctl_slab sl;
	(void)state;

	assert_int_equal(ctl_slab_init(&sl, 8), -EINVAL);
	assert_int_equal(ctl_slab_init(&sl, 100), 0);
	for (int i = 0; i < N; i++) {
		p[i] = ctl_slab_alloc(&sl);
		assert_non_null(p[i]);
		assert_int_equal((uintptr_t)p[i] % 16, 0);
		for (size_t j = 0; j < 112; j++)
			assert_int_equal(((unsigned char *)p[i])[j], 0);
		memset(p[i], 0xa5, 112); /* the whole rounded slot is the caller's */
	}
	if (!UNDER_ASAN) /* 112-byte slots, (32 KiB - header) / 112 a block */
		assert_int_equal(ctl_slab_blocks(&sl), (N + 291) / 292);
	/* every other one freed: reused before a new block is mapped */
	for (int i = 0; i < N; i += 2)
		ctl_slab_free(&sl, p[i]);
	for (int i = 0; i < N; i += 2) {
		p[i] = ctl_slab_alloc(&sl);
		assert_non_null(p[i]);
		assert_int_equal(((unsigned char *)p[i])[50], 0); /* zeroed again */
	}
	if (!UNDER_ASAN)
		assert_int_equal(ctl_slab_blocks(&sl), (N + 291) / 292);
	/* all freed: every block unmapped */
	for (int i = 0; i < N; i++)
		ctl_slab_free(&sl, p[i]);
	assert_int_equal(ctl_slab_blocks(&sl), 0);
	ctl_slab_free(&sl, NULL);
	/* cleanup with slots still out */
	for (int i = 0; i < 10; i++)
		p[i] = ctl_slab_alloc(&sl);
	if (UNDER_ASAN)
		for (int i = 0; i < 10; i++)
			ctl_slab_free(&sl, p[i]); /* plain malloc under ASan */
	ctl_slab_cleanup(&sl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slots),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
