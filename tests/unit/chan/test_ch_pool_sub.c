/* The pool's subscriptions (ch_pool_sub.c) on one endpoint, without a network:
 * follow, end, re-send after a drop, and the array's memory following the
 * jobs in flight back down after a burst. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ch_pool_int.h"

static struct ch_preq *req(unsigned i)
{
	static unsigned char buf[LWS_PRE + 64];
	static struct ch_preq r;

	memset(&r, 0, sizeof(r));
	snprintf(r.uid, sizeof(r.uid), "uid-%05u", i);
	snprintf(r.ns, sizeof(r.ns), "ns");
	snprintf(r.name, sizeof(r.name), "cr-%u", i);
	r.len = (size_t)snprintf((char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE, "{\"job\":%u}", i);
	r.buf = buf;
	return &r;
}

static void end_one(struct ch_pool_ep *ep, unsigned i)
{
	char uid[64];
	struct ch_psub got;

	snprintf(uid, sizeof(uid), "uid-%05u", i);
	assert_true(ch_pool_sub_take(ep, uid, true, &got));
	assert_string_equal(got.uid, uid);
	assert_null(got.msg); /* identity only */
}

/* A burst of 2,000 jobs on one endpoint, all final: nothing stays allocated. */
static void test_burst_gives_memory_back(void **state)
{
	struct ch_pool_ep ep;

	(void)state;
	memset(&ep, 0, sizeof(ep));
	for (unsigned i = 0; i < 2000; i++)
		ch_pool_sub_add(&ep, req(i));
	assert_int_equal(ep.nsubs, 2000);
	assert_true(ep.subcap >= 2000);
	assert_true(ep.sub_bytes > 0);
	/* down to 10 in flight: the array is back near its smallest size */
	for (unsigned i = 0; i < 1990; i++)
		end_one(&ep, i);
	assert_int_equal(ep.nsubs, 10);
	assert_true(ep.subcap <= 4 * CH_POOL_SUBS_MIN);
	/* the ones left are intact */
	for (unsigned i = 1990; i < 2000; i++)
		end_one(&ep, i);
	assert_int_equal(ep.nsubs, 0);
	assert_int_equal(ep.subcap, 0);
	assert_null(ep.subs);
	assert_int_equal(ep.sub_bytes, 0);
	ch_pool_subs_free(&ep);
}

/* A drop marks every copy for re-sending; shrinking while they are ended
 * keeps the re-send bookkeeping right. */
static void test_resend_across_shrink(void **state)
{
	struct ch_pool_ep ep;
	struct ch_psub *s;
	unsigned n = 0;

	(void)state;
	memset(&ep, 0, sizeof(ep));
	for (unsigned i = 0; i < 300; i++)
		ch_pool_sub_add(&ep, req(i));
	ch_pool_subs_lost(&ep);
	assert_int_equal(ep.nresub, 300);
	for (unsigned i = 0; i < 290; i++)
		end_one(&ep, i);
	assert_int_equal(ep.nresub, 10);
	assert_true(ep.subcap < 300);
	while ((s = ch_pool_sub_next_resend(&ep)) != NULL) {
		assert_non_null(s->msg);
		assert_memory_equal(s->msg + LWS_PRE, "{\"job\":", 7);
		ch_pool_sub_sent(&ep, s);
		n++;
	}
	assert_int_equal(n, 10);
	assert_int_equal(ep.nresub, 0);
	ch_pool_subs_free(&ep);
	assert_null(ep.subs);
	assert_int_equal(ep.sub_bytes, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_gives_memory_back),
		cmocka_unit_test(test_resend_across_shrink),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
