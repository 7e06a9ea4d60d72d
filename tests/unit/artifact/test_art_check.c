/* Unit tests of art_tar_check (complete, truncated and garbage archives) and
 * art_writer_discard_stale. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <errno.h>

#include "art.h"

static char dir[] = "/tmp/pcp-art-check-XXXXXX";

static void run(const char *cmd)
{
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	char cmd[512];

	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "cd %s && mkdir -p src/checkpoint && echo '{}' > src/config.dump && "
		 "head -c 300000 /dev/urandom > src/checkpoint/pages-1.img && "
		 "tar -C src -cf good.tar . && head -c 150000 good.tar > cut.tar && "
		 "head -c 2048 /dev/urandom > junk.tar && : > empty.tar",
		 dir);
	run(cmd);
	return 0;
}

static int teardown(void **state)
{
	char cmd[512];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	run(cmd);
	return 0;
}

static int check(const char *name, uint64_t *entries, char *msg, size_t msglen)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return art_tar_check(path, entries, msg, msglen);
}

static void test_good(void **state)
{
	uint64_t n = 0;
	char msg[256];

	(void)state;
	assert_int_equal(check("good.tar", &n, msg, sizeof(msg)), 0);
	assert_true(n >= 3);
}

static void test_bad(void **state)
{
	const char *bad[] = { "cut.tar", "junk.tar", "empty.tar" };
	char msg[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg[0] = '\0';
		assert_int_equal(check(bad[i], NULL, msg, sizeof(msg)), -EBADMSG);
		assert_true(strlen(msg) > 5);
	}
	assert_int_equal(check("absent.tar", NULL, msg, sizeof(msg)), -EIO);
}

static void test_discard_stale(void **state)
{
	char cmd[512], path[256];
	unsigned n = 99;

	(void)state;
	snprintf(cmd, sizeof(cmd),
		 "cd %s && : > .x.tar.tmp-aa && : > .x.tar.tmp-bb && : > .y.tar.tmp-cc && : > x.tar",
		 dir);
	run(cmd);
	snprintf(path, sizeof(path), "%s/x.tar", dir);
	assert_int_equal(art_writer_discard_stale(path, &n), 0);
	assert_int_equal(n, 2);
	/* the committed artifact and another artifact's temporary file stay */
	snprintf(cmd, sizeof(cmd), "cd %s && test -f x.tar && test -f .y.tar.tmp-cc && ! test -e .x.tar.tmp-aa", dir);
	run(cmd);
	assert_int_equal(art_writer_discard_stale(path, &n), 0);
	assert_int_equal(n, 0);
	snprintf(path, sizeof(path), "%s/*.tar", dir);
	assert_int_equal(art_writer_discard_stale(path, &n), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_discard_stale),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
