/* TokenReview decision and the accepted-token cache (stub reviewer, fake clock). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nh_auth.h"

#define ID "system:serviceaccount:podcheckpoint-system:podcheckpoint-controller"

static int64_t now_ms;
static int reviews;

static int64_t fake_now(void)
{
	return now_ms;
}

/* token "good" -> the controller; "other" -> another SA; "bad" -> not authenticated; "err" -> failure */
static int fake_review(void *arg, const char *token, json_object **out, char *err, size_t errlen)
{
	(void)arg;
	reviews++;
	if (strcmp(token, "err") == 0) {
		snprintf(err, errlen, "API server down");
		return -EIO;
	}
	if (strcmp(token, "good") == 0)
		*out = json_tokener_parse("{\"status\":{\"authenticated\":true,\"user\":{\"username\":\"" ID "\"}}}");
	else if (strcmp(token, "other") == 0)
		*out = json_tokener_parse("{\"status\":{\"authenticated\":true,\"user\":{\"username\":\"system:serviceaccount:default:default\"}}}");
	else
		*out = json_tokener_parse("{\"status\":{\"authenticated\":false,\"error\":\"invalid bearer token\"}}");
	return 0;
}

static void test_decide(void **state)
{
	json_object *o;
	char why[128];
	(void)state;
	o = json_tokener_parse("{\"status\":{\"authenticated\":true,\"user\":{\"username\":\"" ID "\"}}}");
	assert_true(nh_auth_decide(o, ID, why, sizeof(why)));
	json_object_put(o);
	o = json_tokener_parse("{\"status\":{\"authenticated\":true,\"user\":{\"username\":\"" ID "x\"}}}");
	assert_false(nh_auth_decide(o, ID, why, sizeof(why)));
	json_object_put(o);
	o = json_tokener_parse("{\"status\":{\"authenticated\":\"true\",\"user\":{\"username\":\"" ID "\"}}}");
	assert_false(nh_auth_decide(o, ID, why, sizeof(why)));
	json_object_put(o);
	o = json_tokener_parse("{\"status\":{}}");
	assert_false(nh_auth_decide(o, ID, why, sizeof(why)));
	json_object_put(o);
	assert_false(nh_auth_decide(NULL, ID, why, sizeof(why)));
}

static void test_cache(void **state)
{
	struct nh_auth *a = NULL;
	(void)state;
	now_ms = 1000;
	reviews = 0;
	assert_int_equal(nh_auth_new_with(fake_review, NULL, ID, fake_now, &a), 0);
	assert_int_equal(nh_auth_check(a, "good"), 0);
	assert_int_equal(reviews, 1);
	now_ms += 59000;
	assert_int_equal(nh_auth_check(a, "good"), 0);
	assert_int_equal(reviews, 1); /* cached */
	now_ms += 2000;
	assert_int_equal(nh_auth_check(a, "good"), 0);
	assert_int_equal(reviews, 2); /* expired after 60 s */
	/* refusals are never cached */
	assert_int_equal(nh_auth_check(a, "other"), -EACCES);
	assert_int_equal(nh_auth_check(a, "other"), -EACCES);
	assert_int_equal(reviews, 4);
	assert_int_equal(nh_auth_check(a, "bad"), -EACCES);
	assert_int_equal(nh_auth_check(a, "err"), -EACCES);
	assert_int_equal(nh_auth_check(a, ""), -EACCES);
	assert_int_equal(nh_auth_check(a, NULL), -EACCES);
	assert_int_equal(nh_auth_check(NULL, "good"), -EACCES);
	nh_auth_free(a);
	nh_auth_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
