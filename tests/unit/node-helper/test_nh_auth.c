/*
 * Channel authentication: the JWT pre-filter, the TokenReview decision (with
 * our audience), the positive and negative caches (stub reviewer, fake clocks).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ch.h"
#include "nh_auth.h"
#include "nh_jwt.h"
#include "nh_server.h"

#define ID "system:serviceaccount:podcheckpoint-system:podcheckpoint-controller"
#define ISS "https://127.0.0.1:6443/"
#define WALL0 1800000000LL

static int64_t now_ms;
static int64_t wall_s = WALL0;
static int reviews;

static int64_t fake_now(void)
{
	return now_ms;
}

static int64_t fake_wall(void)
{
	return wall_s;
}

static void b64url(const char *in, char *out, size_t cap)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t n = strlen(in), o = 0;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)(unsigned char)in[i] << 16;
		size_t k = n - i;

		if (k > 1)
			v |= (unsigned)(unsigned char)in[i + 1] << 8;
		if (k > 2)
			v |= (unsigned char)in[i + 2];
		assert_true(o + 5 < cap);
		out[o++] = t[(v >> 18) & 63];
		out[o++] = t[(v >> 12) & 63];
		if (k > 1)
			out[o++] = t[(v >> 6) & 63];
		if (k > 2)
			out[o++] = t[v & 63];
	}
	out[o] = '\0';
}

/* A JWT-shaped token (unsigned: the signature part is "c2ln" + tag). */
static char *jwt(const char *alg, const char *iss, const char *aud_json, long long exp, const char *tag)
{
	char hdr[128], pl[512], h64[256], p64[1024];
	char *out = malloc(2048);

	snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"k\"}", alg);
	snprintf(pl, sizeof(pl), "{\"iss\":\"%s\",\"aud\":%s,\"exp\":%lld,\"sub\":\"%s\"}", iss, aud_json,
		 exp, tag);
	b64url(hdr, h64, sizeof(h64));
	b64url(pl, p64, sizeof(p64));
	snprintf(out, 2048, "%s.%s.c2ln%s", h64, p64, tag);
	return out;
}

static char *good_tok, *other_tok, *bad_tok, *err_tok, *noaud_tok;

/* "good" -> the controller with our audience; "other" -> another SA; "bad" ->
 * not authenticated; "err" -> failure; "noaud" -> authenticated, audiences lack ours */
static int fake_review(void *arg, const char *token, json_object **out, char *err, size_t errlen)
{
	(void)arg;
	reviews++;
	if (strcmp(token, err_tok) == 0) {
		snprintf(err, errlen, "API server down");
		return -EIO;
	}
	if (strcmp(token, good_tok) == 0)
		*out = json_tokener_parse("{\"status\":{\"authenticated\":true,\"audiences\":[\"" CH_AUDIENCE
					  "\"],\"user\":{\"username\":\"" ID "\"}}}");
	else if (strcmp(token, other_tok) == 0)
		*out = json_tokener_parse("{\"status\":{\"authenticated\":true,\"audiences\":[\"" CH_AUDIENCE
					  "\"],\"user\":{\"username\":\"system:serviceaccount:default:default\"}}}");
	else if (strcmp(token, noaud_tok) == 0)
		*out = json_tokener_parse("{\"status\":{\"authenticated\":true,\"audiences\":[\"https://kubernetes.default.svc\"],"
					  "\"user\":{\"username\":\"" ID "\"}}}");
	else
		*out = json_tokener_parse("{\"status\":{\"authenticated\":false,\"error\":\"invalid bearer token\"}}");
	return 0;
}

static int setup(void **state)
{
	const char *aud = "[\"" CH_AUDIENCE "\"]";

	(void)state;
	good_tok = jwt("RS256", ISS, aud, WALL0 + 600, "good");
	other_tok = jwt("RS256", ISS, aud, WALL0 + 600, "other");
	bad_tok = jwt("RS256", ISS, aud, WALL0 + 600, "bad");
	err_tok = jwt("RS256", ISS, aud, WALL0 + 600, "err");
	noaud_tok = jwt("RS256", ISS, aud, WALL0 + 600, "noaud");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(good_tok);
	free(other_tok);
	free(bad_tok);
	free(err_tok);
	free(noaud_tok);
	return 0;
}

static void test_decide(void **state)
{
	json_object *o;
	char why[128];
	(void)state;
	o = json_tokener_parse("{\"status\":{\"authenticated\":true,\"audiences\":[\"x\",\"" CH_AUDIENCE
			       "\"],\"user\":{\"username\":\"" ID "\"}}}");
	assert_true(nh_auth_decide(o, ID, why, sizeof(why)));
	json_object_put(o);
	/* the right user without our audience: a token for the API server */
	o = json_tokener_parse("{\"status\":{\"authenticated\":true,\"user\":{\"username\":\"" ID "\"}}}");
	assert_false(nh_auth_decide(o, ID, why, sizeof(why)));
	assert_non_null(strstr(why, "audience"));
	json_object_put(o);
	o = json_tokener_parse("{\"status\":{\"authenticated\":true,\"audiences\":[\"" CH_AUDIENCE
			       "\"],\"user\":{\"username\":\"" ID "x\"}}}");
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

static void test_prefilter(void **state)
{
	const char *aud = "[\"" CH_AUDIENCE "\"]";
	char why[128], iss[256];
	char *t;
	int64_t exp = 0;
	(void)state;

	assert_int_equal(nh_jwt_precheck(good_tok, ISS, CH_AUDIENCE, WALL0, &exp, why, sizeof(why)), 0);
	assert_int_equal(exp, WALL0 + 600);
	/* the channel server closes an authenticated connection at the token's exp */
	assert_int_equal(nh_server_token_expiry(NULL, good_tok), WALL0 + 600);
	assert_int_equal(nh_server_token_expiry(NULL, "random-token-123"), 0);
	assert_int_equal(nh_jwt_issuer(good_tok, iss, sizeof(iss)), 0);
	assert_string_equal(iss, ISS);
	/* random bearer strings, wrong shapes */
	assert_int_equal(nh_jwt_precheck("random-token-123", ISS, CH_AUDIENCE, WALL0, NULL, why, sizeof(why)), -EACCES);
	assert_int_equal(nh_jwt_precheck("a.b", ISS, CH_AUDIENCE, WALL0, NULL, why, sizeof(why)), -EACCES);
	assert_int_equal(nh_jwt_precheck("a.b.c.d", ISS, CH_AUDIENCE, WALL0, NULL, why, sizeof(why)), -EACCES);
	assert_int_equal(nh_jwt_precheck("aaaa.bbbb.", ISS, CH_AUDIENCE, WALL0, NULL, why, sizeof(why)), -EACCES);
	assert_int_equal(nh_jwt_precheck("aaaa.bb$b.cc", ISS, CH_AUDIENCE, WALL0, NULL, why, sizeof(why)), -EACCES);
	assert_int_equal(nh_jwt_precheck("", ISS, CH_AUDIENCE, WALL0, NULL, why, sizeof(why)), -EACCES);
	assert_int_equal(nh_jwt_precheck(NULL, ISS, CH_AUDIENCE, WALL0, NULL, why, sizeof(why)), -EACCES);
	/* expired, other issuer, other audience, alg none */
	t = jwt("RS256", ISS, aud, WALL0 - 1, "x");
	assert_int_equal(nh_jwt_precheck(t, ISS, CH_AUDIENCE, WALL0, NULL, why, sizeof(why)), -EACCES);
	assert_non_null(strstr(why, "expired"));
	free(t);
	t = jwt("RS256", "https://evil/", aud, WALL0 + 60, "x");
	assert_int_equal(nh_jwt_precheck(t, ISS, CH_AUDIENCE, WALL0, NULL, why, sizeof(why)), -EACCES);
	assert_non_null(strstr(why, "issuer"));
	/* no issuer configured: the issuer check is off */
	assert_int_equal(nh_jwt_precheck(t, "", CH_AUDIENCE, WALL0, NULL, why, sizeof(why)), 0);
	free(t);
	t = jwt("RS256", ISS, "\"https://kubernetes.default.svc\"", WALL0 + 60, "x");
	assert_int_equal(nh_jwt_precheck(t, ISS, CH_AUDIENCE, WALL0, NULL, why, sizeof(why)), -EACCES);
	assert_non_null(strstr(why, "audience"));
	free(t);
	t = jwt("RS256", ISS, "\"" CH_AUDIENCE "\"", WALL0 + 60, "x"); /* aud as a string */
	assert_int_equal(nh_jwt_precheck(t, ISS, CH_AUDIENCE, WALL0, NULL, why, sizeof(why)), 0);
	free(t);
	t = jwt("none", ISS, aud, WALL0 + 60, "x");
	assert_int_equal(nh_jwt_precheck(t, ISS, CH_AUDIENCE, WALL0, NULL, why, sizeof(why)), -EACCES);
	free(t);
	/* too long */
	t = calloc(1, NH_JWT_MAX + 10);
	memset(t, 'a', NH_JWT_MAX + 5);
	assert_int_equal(nh_jwt_precheck(t, ISS, CH_AUDIENCE, WALL0, NULL, why, sizeof(why)), -EACCES);
	free(t);
}

static void test_cache(void **state)
{
	struct nh_auth *a = NULL;
	struct nh_auth_stats st;
	(void)state;
	now_ms = 1000;
	wall_s = WALL0;
	reviews = 0;
	assert_int_equal(nh_auth_new_with(fake_review, NULL, ID, ISS, fake_now, fake_wall, &a), 0);

	/* random strings never reach a review */
	for (int i = 0; i < 100; i++)
		assert_int_equal(nh_auth_precheck(a, "random"), CH_AUTH_DENY);
	assert_int_equal(reviews, 0);

	assert_int_equal(nh_auth_precheck(a, good_tok), CH_AUTH_REVIEW);
	assert_int_equal(nh_auth_check(a, good_tok), 0);
	assert_int_equal(reviews, 1);
	/* cached: allowed without a review */
	assert_int_equal(nh_auth_precheck(a, good_tok), CH_AUTH_ALLOW);
	now_ms += 59000;
	assert_int_equal(nh_auth_precheck(a, good_tok), CH_AUTH_ALLOW);
	assert_int_equal(nh_auth_check(a, good_tok), 0);
	assert_int_equal(reviews, 1);
	now_ms += 2000; /* past 60 s: reviewed again */
	assert_int_equal(nh_auth_precheck(a, good_tok), CH_AUTH_REVIEW);
	assert_int_equal(nh_auth_check(a, good_tok), 0);
	assert_int_equal(reviews, 2);

	/* definite refusals are cached */
	assert_int_equal(nh_auth_check(a, other_tok), -EACCES);
	assert_int_equal(nh_auth_precheck(a, other_tok), CH_AUTH_DENY);
	assert_int_equal(nh_auth_check(a, bad_tok), -EACCES);
	assert_int_equal(nh_auth_precheck(a, bad_tok), CH_AUTH_DENY);
	assert_int_equal(nh_auth_check(a, noaud_tok), -EACCES);
	assert_int_equal(nh_auth_precheck(a, noaud_tok), CH_AUTH_DENY);
	assert_int_equal(reviews, 5);
	/* a failed review is not */
	assert_int_equal(nh_auth_check(a, err_tok), -EACCES);
	assert_int_equal(nh_auth_precheck(a, err_tok), CH_AUTH_REVIEW);
	assert_int_equal(reviews, 6);
	now_ms += NH_AUTH_NEG_TTL_MS + 1;
	assert_int_equal(nh_auth_precheck(a, other_tok), CH_AUTH_REVIEW);

	/* the positive cache never outlives the token */
	wall_s = WALL0 + 590;
	now_ms += 1000;
	assert_int_equal(nh_auth_check(a, good_tok), 0);
	now_ms += 11000;
	wall_s += 11;
	assert_int_equal(nh_auth_precheck(a, good_tok), CH_AUTH_DENY); /* expired: pre-filter */

	assert_int_equal(nh_auth_check(a, ""), -EACCES);
	assert_int_equal(nh_auth_check(a, NULL), -EACCES);
	assert_int_equal(nh_auth_check(NULL, good_tok), -EACCES);
	nh_auth_get_stats(a, &st);
	assert_true(st.prefiltered >= 100);
	assert_int_equal(st.reviews, (uint64_t)reviews);
	nh_auth_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_prefilter),
		cmocka_unit_test(test_cache),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
