/*
 * test_trust.c - the channel token file (read per call, rotation, refusals)
 * and the helper endpoint check against the node's addresses.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "ctl_trust.h"

static char dir[] = "/tmp/pcp-trust-XXXXXX";

static void put(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
}

static void test_token_file(void **state)
{
	char path[256], buf[64], err[256];
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/token", dir);

	put(path, "aaa.bbb.ccc\n", 12);
	assert_int_equal(ctl_channel_token(path, buf, sizeof(buf), err, sizeof(err)), 0);
	assert_string_equal(buf, "aaa.bbb.ccc");
	/* rotated by the kubelet: the next call sees the new one */
	put(path, "ddd.eee.fff", 11);
	assert_int_equal(ctl_channel_token(path, buf, sizeof(buf), err, sizeof(err)), 0);
	assert_string_equal(buf, "ddd.eee.fff");

	put(path, "\n", 1);
	assert_int_equal(ctl_channel_token(path, buf, sizeof(buf), err, sizeof(err)), -EINVAL);
	assert_string_equal(buf, "");
	put(path, "abc\r\nX-Evil: 1", 14);
	assert_int_equal(ctl_channel_token(path, buf, sizeof(buf), err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "Evil")); /* never echoes the content */
	{
		char big[100];

		memset(big, 'a', sizeof(big));
		put(path, big, sizeof(big));
		assert_int_equal(ctl_channel_token(path, buf, sizeof(buf), err, sizeof(err)), -EFBIG);
		assert_int_equal(buf[0], '\0');
	}
	unlink(path);
	assert_int_equal(ctl_channel_token(path, buf, sizeof(buf), err, sizeof(err)), -ENOENT);
	assert_int_equal(ctl_channel_token("", buf, sizeof(buf), err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "API token"));
	rmdir(dir);
}

static void test_endpoint_on_node(void **state)
{
	json_object *n = json_tokener_parse(
		"{\"metadata\":{\"name\":\"node-1\"},\"status\":{\"addresses\":["
		"{\"type\":\"Hostname\",\"address\":\"node-1\"},"
		"{\"type\":\"InternalIP\",\"address\":\"127.0.0.11\"},"
		"{\"type\":\"InternalIP\",\"address\":\"fd00::11\"}]}}");
	json_object *bare = json_tokener_parse("{\"metadata\":{\"name\":\"node-2\"},\"status\":{}}");
	char why[256];
	(void)state;

	assert_true(ctl_endpoint_on_node("wss://127.0.0.11:10443", n, why, sizeof(why)));
	assert_true(ctl_endpoint_on_node("wss://[fd00::11]:10443", n, why, sizeof(why)));
	assert_false(ctl_endpoint_on_node("wss://127.0.0.1:10443", n, why, sizeof(why)));
	assert_non_null(strstr(why, "127.0.0.1"));
	assert_non_null(strstr(why, "node-1"));
	assert_false(ctl_endpoint_on_node("wss://127.0.0.111:10443", n, why, sizeof(why)));
	assert_false(ctl_endpoint_on_node("wss://attacker.example:10443", n, why, sizeof(why)));
	assert_false(ctl_endpoint_on_node("https://127.0.0.11:10443", n, why, sizeof(why)));
	assert_false(ctl_endpoint_on_node("wss://127.0.0.11", n, why, sizeof(why))); /* no port */
	/* a node without addresses: nothing to compare with */
	assert_true(ctl_endpoint_on_node("wss://10.1.2.3:10443", bare, why, sizeof(why)));
	assert_true(ctl_endpoint_on_node("wss://10.1.2.3:10443", NULL, why, sizeof(why)));
	json_object_put(n);
	json_object_put(bare);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_file),
		cmocka_unit_test(test_endpoint_on_node),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
