/*
 * nh_jwt.h - the cheap look at a bearer token before anybody pays for a
 * TokenReview.
 *
 * This is a pre-filter, never an authority: it does not verify the signature.
 * It refuses what cannot possibly be a channel token of this cluster (not three
 * base64url parts, no JSON header with an "alg", alg "none", another issuer,
 * not our audience, expired), so a flood of random bearer strings costs a few
 * microseconds each instead of a TokenReview at the API server. Whatever
 * passes still goes to TokenReview.
 */
#ifndef PCP_NH_JWT_H
#define PCP_NH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define NH_JWT_MAX 8192 /* a projected ServiceAccount token is ~1 KiB */

struct nh_jwt_claims {
	char iss[256];
	int64_t exp;   /* seconds since the epoch */
	int64_t nbf;   /* 0: absent */
	int has_aud;   /* the audience asked for is among aud */
};

/*
 * Decodes the header and payload of `token` (not the signature) and checks
 * the audience `aud`. 0, or -EINVAL with a short reason in why (never any
 * part of the token).
 */
int nh_jwt_peek(const char *token, const char *aud, struct nh_jwt_claims *out, char *why,
		size_t whylen);

/*
 * The whole pre-filter: nh_jwt_peek, then issuer (skipped when `issuer` is
 * "" or NULL), audience, exp > now_s and nbf <= now_s + 60. 0 when a
 * TokenReview is worth asking for; -EACCES with a reason otherwise.
 * *exp_out (may be NULL) gets exp.
 */
int nh_jwt_precheck(const char *token, const char *issuer, const char *aud, int64_t now_s,
		    int64_t *exp_out, char *why, size_t whylen);

/* true when aud (a JSON string, or an array of strings; borrowed) holds want. */
bool nh_jwt_aud_has(json_object *aud, const char *want);

/* The "iss" claim of a token, unverified (for the helper's own token). 0 or -EINVAL. */
int nh_jwt_issuer(const char *token, char *iss, size_t cap);

#endif
