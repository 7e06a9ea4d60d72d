/*
 * nh_jwt.c - unverified JWT claims for the pre-filter (see nh_jwt.h).
 */
#include "nh_jwt.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "kc.h"

static bool b64url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* base64url (no padding) -> JSON object. 0 or -EINVAL. */
static int decode_part(const char *p, size_t n, json_object **out)
{
	char *std = NULL, *raw = NULL;
	size_t rawlen = 0, i;
	int rc = -EINVAL;

	*out = NULL;
	if (n == 0 || n % 4 == 1)
		return -EINVAL;
	std = malloc(n + 4);
	if (!std)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		std[i] = p[i] == '-' ? '+' : p[i] == '_' ? '/' : p[i];
	while (i % 4)
		std[i++] = '=';
	std[i] = '\0';
	if (kc_base64_decode(std, i, &raw, &rawlen) != 0 || rawlen == 0)
		goto out;
	if (kc_json_parse(raw, rawlen, out) != 0 || !json_object_is_type(*out, json_type_object)) {
		json_object_put(*out);
		*out = NULL;
		goto out;
	}
	rc = 0;
out:
	if (raw) {
		OPENSSL_cleanse(raw, rawlen);
		free(raw);
	}
	OPENSSL_cleanse(std, n + 4);
	free(std);
	return rc;
}

bool nh_jwt_aud_has(json_object *aud, const char *want)
{
	if (!aud || !want)
		return false;
	if (json_object_is_type(aud, json_type_string))
		return strcmp(json_object_get_string(aud), want) == 0;
	if (!json_object_is_type(aud, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(aud); i++) {
		json_object *a = json_object_array_get_idx(aud, i);

		if (a && json_object_is_type(a, json_type_string) &&
		    strcmp(json_object_get_string(a), want) == 0)
			return true;
	}
	return false;
}

int nh_jwt_peek(const char *token, const char *aud, struct nh_jwt_claims *out, char *why,
		size_t whylen)
{
	json_object *hdr = NULL, *pl = NULL, *v = NULL;
	const char *d1, *d2, *alg;
	size_t len;
	int rc = -EINVAL;

	memset(out, 0, sizeof(*out));
	len = token ? strnlen(token, NH_JWT_MAX + 1) : 0;
	if (len == 0 || len > NH_JWT_MAX) {
		snprintf(why, whylen, "token empty or longer than %d bytes", NH_JWT_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (token[i] != '.' && !b64url_char(token[i])) {
			snprintf(why, whylen, "not a JWT (character outside base64url)");
			return -EINVAL;
		}
	}
	d1 = strchr(token, '.');
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (!d1 || !d2 || strchr(d2 + 1, '.') || d2[1] == '\0') {
		snprintf(why, whylen, "not a JWT (three parts)");
		return -EINVAL;
	}
	if (decode_part(token, (size_t)(d1 - token), &hdr) != 0 ||
	    decode_part(d1 + 1, (size_t)(d2 - d1 - 1), &pl) != 0) {
		snprintf(why, whylen, "not a JWT (header or payload is not base64url JSON)");
		goto out;
	}
	alg = kc_json_str(hdr, "alg");
	if (!alg || !*alg || strcmp(alg, "none") == 0) {
		snprintf(why, whylen, "JWT header without a signing alg");
		goto out;
	}
	snprintf(out->iss, sizeof(out->iss), "%s", kc_json_str(pl, "iss") ? kc_json_str(pl, "iss") : "");
	if (json_object_object_get_ex(pl, "exp", &v) && json_object_is_type(v, json_type_int))
		out->exp = json_object_get_int64(v);
	if (json_object_object_get_ex(pl, "nbf", &v) && json_object_is_type(v, json_type_int))
		out->nbf = json_object_get_int64(v);
	v = NULL;
	json_object_object_get_ex(pl, "aud", &v);
	out->has_aud = nh_jwt_aud_has(v, aud);
	snprintf(why, whylen, "ok");
	rc = 0;
out:
	json_object_put(hdr);
	json_object_put(pl);
	return rc;
}

int nh_jwt_precheck(const char *token, const char *issuer, const char *aud, int64_t now_s,
		    int64_t *exp_out, char *why, size_t whylen)
{
	struct nh_jwt_claims cl;

	if (exp_out)
		*exp_out = 0;
	if (nh_jwt_peek(token, aud, &cl, why, whylen) != 0)
		return -EACCES;
	if (issuer && *issuer && strcmp(cl.iss, issuer) != 0) {
		snprintf(why, whylen, "JWT from another issuer");
		return -EACCES;
	}
	if (!cl.has_aud) {
		snprintf(why, whylen, "JWT not for audience %.100s", aud ? aud : "");
		return -EACCES;
	}
	if (cl.exp <= now_s) {
		snprintf(why, whylen, "JWT expired or without exp");
		return -EACCES;
	}
	if (cl.nbf > now_s + 60) {
		snprintf(why, whylen, "JWT not valid yet");
		return -EACCES;
	}
	if (exp_out)
		*exp_out = cl.exp;
	snprintf(why, whylen, "ok");
	return 0;
}

int nh_jwt_issuer(const char *token, char *iss, size_t cap)
{
	struct nh_jwt_claims cl;
	char why[96];

	if (!iss || cap == 0)
		return -EINVAL;
	iss[0] = '\0';
	if (nh_jwt_peek(token, NULL, &cl, why, sizeof(why)) != 0 || !cl.iss[0] ||
	    strlen(cl.iss) >= cap)
		return -EINVAL;
	memcpy(iss, cl.iss, strlen(cl.iss) + 1);
	return 0;
}
