#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dbuf.h"
#include "fsutil.h"

static void test_dbuf_cap(void **state)
{
	struct dbuf b;
	(void)state;
	dbuf_init(&b, 10);
	assert_int_equal(dbuf_adds(&b, "hello"), 0);
	assert_int_equal(dbuf_adds(&b, "world"), 0);
	assert_int_equal(dbuf_adds(&b, "!"), -EMSGSIZE);
	assert_string_equal(b.data, "helloworld");
	dbuf_consume(&b, 5);
	assert_string_equal(b.data, "world");
	assert_int_equal(dbuf_printf(&b, "%d", 12345), 0);
	assert_string_equal(b.data, "world12345");
	assert_int_equal(dbuf_printf(&b, "%d", 1), -EMSGSIZE);
	dbuf_cleanup(&b);
	dbuf_cleanup(NULL);
}

static void test_fsu_atomic(void **state)
{
	char dir[] = "/tmp/pcp-fsu-XXXXXX";
	char path[256], *data = NULL;
	size_t len = 0;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	assert_int_equal(fsu_mkdir_p(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/a/b/c/file", dir);
	assert_int_equal(fsu_write_atomic(path, "abc", 3), 0);
	assert_int_equal(fsu_read_file(path, 16, &data, &len), 0);
	assert_int_equal(len, 3);
	assert_string_equal(data, "abc");
	free(data);
	assert_int_equal(fsu_read_file(path, 2, &data, &len), -EFBIG);
	assert_null(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dbuf_cap),
		cmocka_unit_test(test_fsu_atomic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
