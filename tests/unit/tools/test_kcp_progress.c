/* Unit tests for tools/kcp_progress.c: the --wait progress line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "kcp_progress.h"

static void line_of(const char *json, char *buf, size_t cap)
{
	json_object *o = json_tokener_parse(json);

	assert_non_null(o);
	kcp_progress_line(o, buf, cap);
	json_object_put(o);
}

static void test_progress(void **state)
{
	char b[512];

	(void)state;
	line_of("{\"metadata\":{\"name\":\"x\"}}", b, sizeof(b));
	assert_string_equal(b, "waiting for the controller");
	line_of("{\"status\":{\"phase\":\"Pending\",\"message\":\"Dispatched to the node helper on node-1\",\"nodeName\":\"node-1\"}}",
		b, sizeof(b));
	assert_string_equal(b, "Pending on node-1 - Dispatched to the node helper on node-1");
	/* what the helper writes today while a kubelet call runs */
	line_of("{\"status\":{\"phase\":\"Running\",\"nodeName\":\"node-1\",\"message\":\"Checkpointing container app (1 of 2) of pod shop/web\"}}",
		b, sizeof(b));
	assert_string_equal(b, "Running on node-1: container app (1 of 2) - Checkpointing container app (1 of 2) of pod shop/web");
	/* the helper's progress fields, when present, win */
	line_of("{\"status\":{\"phase\":\"Running\",\"progress\":{\"container\":\"db\",\"bytes\":13107200},\"containers\":[{\"name\":\"app\"}]}}",
		b, sizeof(b));
	assert_string_equal(b, "Running: container db, 1 container done, 12.5 MiB written");
	/* the helper's own count while Running */
	line_of("{\"status\":{\"phase\":\"Running\",\"nodeName\":\"node-2\",\"message\":\"m\",\"progress\":{\"container\":\"side\",\"containersDone\":1,\"containersTotal\":2}}}",
		b, sizeof(b));
	assert_string_equal(b, "Running on node-2: container side, 1 of 2 containers done - m");
	/* cut, never overrun */
	line_of("{\"status\":{\"phase\":\"Running\",\"message\":\"Checkpointing container app (1 of 2) of pod shop/web\"}}",
		b, 12);
	assert_int_equal(strlen(b), 11);
}

static void test_bytes(void **state)
{
	char b[32];

	(void)state;
	kcp_format_bytes(512, b, sizeof(b));
	assert_string_equal(b, "512 B");
	kcp_format_bytes(3072, b, sizeof(b));
	assert_string_equal(b, "3.0 KiB");
	kcp_format_bytes(1288490189ULL, b, sizeof(b));
	assert_string_equal(b, "1.2 GiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_progress),
		cmocka_unit_test(test_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
