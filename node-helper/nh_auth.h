/*
 * nh_auth.h - who may use the channel: the controller, by its channel token.
 *
 * Two steps, matching ch_server_ops:
 *  - nh_auth_precheck (service thread, never blocks): the JWT pre-filter
 *    (nh_jwt.h: shape, issuer = the issuer of the helper's own token, audience
 *    CH_AUDIENCE, not expired), then the caches: a token accepted before is
 *    CH_AUTH_ALLOW until min(exp, 60 s after the review); a token refused
 *    before is CH_AUTH_DENY for NH_AUTH_NEG_TTL_MS; otherwise CH_AUTH_REVIEW.
 *  - nh_auth_check (the server's auth worker thread): a TokenReview (own
 *    kc_client, 5 s deadline) with spec.audiences = [CH_AUDIENCE]; allowed
 *    when status.authenticated, status.user.username is the controller
 *    identity and status.audiences contains CH_AUDIENCE. A definite refusal
 *    goes into the negative cache; a failed review (API server unreachable)
 *    is not cached.
 * Both caches are keyed by SHA-256 of the token (never the token), bounded,
 * under one mutex. The token is never logged.
 */
#ifndef PCP_NH_AUTH_H
#define PCP_NH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define NH_AUTH_CACHE_TTL_MS 60000
#define NH_AUTH_CACHE_SLOTS 32
#define NH_AUTH_NEG_SLOTS 256
#define NH_AUTH_NEG_TTL_MS 300000
#define NH_AUTH_DEADLINE_MS 5000L

struct kc_config;

/* Posts a TokenReview for token; *out = the response (caller puts it).
 * 0 or negative with a sentence in err. Replaceable for tests. */
typedef int (*nh_review_fn)(void *arg, const char *token, json_object **out, char *err,
			    size_t errlen);

struct nh_auth;

/*
 * cfg borrowed (must outlive the auth); identity copied. The issuer is read
 * from the helper's own ServiceAccount token (none: the issuer check is off).
 */
int nh_auth_new(struct kc_config *cfg, const char *identity, struct nh_auth **out);
/*
 * For tests: a custom reviewer, issuer ("" or NULL: no issuer check) and
 * clocks (NULL: monotonic ms / wall-clock seconds).
 */
int nh_auth_new_with(nh_review_fn review, void *review_arg, const char *identity,
		     const char *issuer, int64_t (*now_ms)(void), int64_t (*wall_s)(void),
		     struct nh_auth **out);
void nh_auth_free(struct nh_auth *a);

/* ch_server_ops.precheck: arg = struct nh_auth *. CH_AUTH_ALLOW/DENY/REVIEW. */
int nh_auth_precheck(void *arg, const char *token);
/* ch_server_ops.authenticate: arg = struct nh_auth *. 0 allowed, -EACCES refused. Blocks. */
int nh_auth_check(void *arg, const char *token);

/* Pure decision on a TokenReview response: authenticated, username == identity,
 * CH_AUDIENCE in status.audiences. why (may be NULL) gets a short reason for
 * the log (never the token). */
bool nh_auth_decide(json_object *review, const char *identity, char *why, size_t whylen);

/* Counters for tests and figures: TokenReviews asked, answered from a cache. */
struct nh_auth_stats {
	uint64_t reviews, cache_hits, neg_hits, prefiltered;
};
void nh_auth_get_stats(struct nh_auth *a, struct nh_auth_stats *out);

#endif
