/*
 * nh_auth.h - the channel's authenticate callback.
 *
 * A bearer token is accepted when a TokenReview (POST
 * /apis/authentication.k8s.io/v1/tokenreviews, own kc_client, 5 s deadline)
 * says status.authenticated and status.user.username equals the configured
 * controller identity. Accepted tokens are remembered for 60 s by their
 * SHA-256 (never the token itself) so the controller's polling does not
 * cost a TokenReview per message. Refusals are not cached. The token is
 * never logged.
 *
 * Threads: nh_auth_check runs on the channel's lws thread (blocking it for
 * at most the TokenReview deadline); the cache has its own mutex anyway.
 */
#ifndef PCP_NH_AUTH_H
#define PCP_NH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define NH_AUTH_CACHE_TTL_MS 60000
#define NH_AUTH_CACHE_SLOTS 32
#define NH_AUTH_DEADLINE_MS 5000L

struct kc_config;

/* Posts a TokenReview for token; *out = the response (caller puts it).
 * 0 or negative with a sentence in err. Replaceable for tests. */
typedef int (*nh_review_fn)(void *arg, const char *token, json_object **out, char *err,
			    size_t errlen);

struct nh_auth;

/* cfg borrowed (must outlive the auth); identity copied. */
int nh_auth_new(struct kc_config *cfg, const char *identity, struct nh_auth **out);
/* For tests: a custom reviewer and clock (now_ms NULL: monotonic clock). */
int nh_auth_new_with(nh_review_fn review, void *review_arg, const char *identity,
		     int64_t (*now_ms)(void), struct nh_auth **out);
void nh_auth_free(struct nh_auth *a);

/* The ch_server_ops.authenticate callback: arg = struct nh_auth *. 0 allowed. */
int nh_auth_check(void *arg, const char *token);

/* Pure decision on a TokenReview response: authenticated && username == identity.
 * why (may be NULL) gets a short reason for the log (never the token). */
bool nh_auth_decide(json_object *review, const char *identity, char *why, size_t whylen);

#endif
