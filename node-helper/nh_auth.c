/*
 * nh_auth.c - the channel's authentication: JWT pre-filter, caches,
 * TokenReview with our audience (see nh_auth.h).
 */
#include "nh_auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "ch.h"
#include "kc.h"
#include "log.h"
#include "nh_jwt.h"
#include "nh_util.h"

#define NH_OWN_TOKEN_MAX 16384

struct nh_auth_slot {
	unsigned char hash[SHA256_DIGEST_LENGTH];
	int64_t expires_ms; /* monotonic; 0: empty */
};

struct nh_auth {
	char identity[256];
	char issuer[256];
	nh_review_fn review;
	void *review_arg;
	int64_t (*now_ms)(void);
	int64_t (*wall_s)(void);
	struct kc_client *client; /* for the default reviewer; used by the auth worker only */
	pthread_mutex_t lock;     /* guards the caches and stats */
	struct nh_auth_slot pos[NH_AUTH_CACHE_SLOTS];
	struct nh_auth_slot neg[NH_AUTH_NEG_SLOTS];
	struct nh_auth_stats stats;
};

bool nh_auth_decide(json_object *review, const char *identity, char *why, size_t whylen)
{
	json_object *a = kc_json_get(review, "status.authenticated");
	const char *user = kc_json_str(review, "status.user.username");
	const char *err = kc_json_str(review, "status.error");

	if (!a || !json_object_is_type(a, json_type_boolean) || !json_object_get_boolean(a)) {
		if (why)
			snprintf(why, whylen, "token not authenticated%s%.120s", err ? ": " : "",
				 err ? err : "");
		return false;
	}
	if (!user || strcmp(user, identity) != 0) {
		if (why)
			snprintf(why, whylen, "user %.200s is not the controller identity",
				 user ? user : "(none)");
		return false;
	}
	/* status.audiences: the audiences the token is valid for, of those asked for */
	if (!nh_jwt_aud_has(kc_json_get(review, "status.audiences"), CH_AUDIENCE)) {
		if (why)
			snprintf(why, whylen, "token not valid for audience %s", CH_AUDIENCE);
		return false;
	}
	if (why)
		snprintf(why, whylen, "ok");
	return true;
}

/* The real reviewer: POST a TokenReview naming our audience, with the helper's own credentials. */
static int nh_review_kc(void *arg, const char *token, json_object **out, char *err, size_t errlen)
{
	struct nh_auth *a = arg;
	struct kc_status st;
	json_object *body = NULL, *spec = NULL, *tok = NULL, *auds = NULL;
	char path[256];
	int rc;

	*out = NULL;
	kc_status_clear(&st);
	rc = kc_path(path, sizeof(path), &KC_RES_TOKENREVIEWS, NULL, NULL, NULL, NULL);
	if (rc)
		goto out;
	body = json_object_new_object();
	spec = json_object_new_object();
	auds = json_object_new_array();
	if (!body || !spec || !auds) {
		json_object_put(spec);
		json_object_put(auds);
		rc = -ENOMEM;
		goto out;
	}
	json_object_object_add(body, "apiVersion", json_object_new_string("authentication.k8s.io/v1"));
	json_object_object_add(body, "kind", json_object_new_string("TokenReview"));
	json_object_object_add(body, "spec", spec);
	json_object_array_add(auds, json_object_new_string(CH_AUDIENCE));
	json_object_object_add(spec, "audiences", auds);
	tok = json_object_new_string(token);
	if (!tok) {
		rc = -ENOMEM;
		goto out;
	}
	json_object_object_add(spec, "token", tok);
	rc = kc_create(a->client, path, body, out, &st);
	if (rc)
		snprintf(err, errlen, "TokenReview failed: http=%ld %s", st.http, st.message);
out:
	if (tok) /* wipe our copy of the token before json-c frees it */
		OPENSSL_cleanse((void *)(uintptr_t)json_object_get_string(tok),
				(size_t)json_object_get_string_len(tok));
	if (a->client)
		kc_client_wipe_response(a->client); /* the answer echoes the token */
	json_object_put(body);
	return rc;
}

static int64_t nh_auth_mono(void)
{
	return nh_mono_ms();
}

static int64_t nh_auth_wall(void)
{
	return (int64_t)time(NULL);
}

int nh_auth_new_with(nh_review_fn review, void *review_arg, const char *identity,
		     const char *issuer, int64_t (*now_ms)(void), int64_t (*wall_s)(void),
		     struct nh_auth **out)
{
	struct nh_auth *a;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	if (nh_strlcpy(a->identity, identity, sizeof(a->identity)) != 0 ||
	    nh_strlcpy(a->issuer, issuer ? issuer : "", sizeof(a->issuer)) != 0) {
		free(a);
		return -ENAMETOOLONG;
	}
	a->review = review;
	a->review_arg = review_arg;
	a->now_ms = now_ms ? now_ms : nh_auth_mono;
	a->wall_s = wall_s ? wall_s : nh_auth_wall;
	pthread_mutex_init(&a->lock, NULL);
	*out = a;
	return 0;
}

/* The issuer of the helper's own token: channel tokens come from the same API server. */
static void own_issuer(struct kc_config *cfg, char *iss, size_t cap)
{
	char *tok = calloc(1, NH_OWN_TOKEN_MAX);

	iss[0] = '\0';
	if (!tok)
		return;
	if (kc_config_token(cfg, tok, NH_OWN_TOKEN_MAX) == 0)
		(void)nh_jwt_issuer(tok, iss, cap);
	OPENSSL_cleanse(tok, NH_OWN_TOKEN_MAX);
	free(tok);
}

int nh_auth_new(struct kc_config *cfg, const char *identity, struct nh_auth **out)
{
	struct nh_auth *a = NULL;
	char iss[256];
	int rc;

	own_issuer(cfg, iss, sizeof(iss));
	rc = nh_auth_new_with(nh_review_kc, NULL, identity, iss, NULL, NULL, &a);
	if (rc)
		goto out;
	a->review_arg = a;
	rc = kc_client_new(cfg, &a->client);
	if (rc)
		goto out;
	kc_client_set_timeout(a->client, NH_AUTH_DEADLINE_MS);
	kc_client_set_user_agent(a->client, "podcheckpoint-node-helper/auth");
	if (iss[0])
		LOG_INFO("msg=\"channel authentication\" audience=%s issuer=%s identity=%s",
			 CH_AUDIENCE, iss, identity);
	else
		LOG_WARN("msg=\"channel authentication without issuer pre-check\" "
			 "why=\"the helper's own credential is not a JWT\" audience=%s", CH_AUDIENCE);
	*out = a;
	a = NULL;
out:
	nh_auth_free(a);
	return rc;
}

void nh_auth_free(struct nh_auth *a)
{
	if (!a)
		return;
	if (a->client)
		kc_client_free(a->client);
	OPENSSL_cleanse(a->pos, sizeof(a->pos));
	OPENSSL_cleanse(a->neg, sizeof(a->neg));
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* Caller holds a->lock. */
static bool slots_hit(const struct nh_auth_slot *s, size_t n, const unsigned char *h, int64_t now)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].expires_ms > now && CRYPTO_memcmp(s[i].hash, h, SHA256_DIGEST_LENGTH) == 0)
			return true;
	return false;
}

/* Caller holds a->lock. Replaces an empty/expired slot, else the one expiring first. */
static void slots_put(struct nh_auth_slot *s, size_t n, const unsigned char *h, int64_t now,
		      int64_t expires_ms)
{
	struct nh_auth_slot *victim = &s[0];

	for (size_t i = 0; i < n; i++) {
		if (s[i].expires_ms <= now || CRYPTO_memcmp(s[i].hash, h, SHA256_DIGEST_LENGTH) == 0) {
			victim = &s[i];
			break;
		}
		if (s[i].expires_ms < victim->expires_ms)
			victim = &s[i];
	}
	memcpy(victim->hash, h, SHA256_DIGEST_LENGTH);
	victim->expires_ms = expires_ms;
}

static void token_hash(const char *token, unsigned char h[SHA256_DIGEST_LENGTH])
{
	SHA256((const unsigned char *)token, strlen(token), h);
}

int nh_auth_precheck(void *arg, const char *token)
{
	struct nh_auth *a = arg;
	unsigned char h[SHA256_DIGEST_LENGTH];
	char why[128];
	int64_t now;
	int verdict = CH_AUTH_REVIEW;

	if (!a || !token || !*token)
		return CH_AUTH_DENY;
	if (nh_jwt_precheck(token, a->issuer, CH_AUDIENCE, a->wall_s(), NULL, why, sizeof(why)) != 0) {
		pthread_mutex_lock(&a->lock);
		a->stats.prefiltered++;
		pthread_mutex_unlock(&a->lock);
		LOG_DEBUG("msg=\"channel token refused before review\" why=\"%s\"", why);
		return CH_AUTH_DENY;
	}
	token_hash(token, h);
	now = a->now_ms();
	pthread_mutex_lock(&a->lock);
	if (slots_hit(a->pos, NH_AUTH_CACHE_SLOTS, h, now)) {
		a->stats.cache_hits++;
		verdict = CH_AUTH_ALLOW;
	} else if (slots_hit(a->neg, NH_AUTH_NEG_SLOTS, h, now)) {
		a->stats.neg_hits++;
		verdict = CH_AUTH_DENY;
	}
	pthread_mutex_unlock(&a->lock);
	OPENSSL_cleanse(h, sizeof(h));
	return verdict;
}

int nh_auth_check(void *arg, const char *token)
{
	struct nh_auth *a = arg;
	unsigned char h[SHA256_DIGEST_LENGTH];
	json_object *resp = NULL;
	char err[256] = "", why[256] = "";
	int64_t now, exp_s = 0, ttl;
	int rc;

	if (!a || !token || !*token) {
		LOG_WARN("msg=\"channel client refused\" why=\"no bearer token\"");
		return -EACCES;
	}
	/* The pre-filter again: nh_auth_check may be used without nh_auth_precheck. */
	if (nh_jwt_precheck(token, a->issuer, CH_AUDIENCE, a->wall_s(), &exp_s, why, sizeof(why)) != 0) {
		LOG_WARN("msg=\"channel client refused\" why=\"%s\"", why);
		return -EACCES;
	}
	token_hash(token, h);
	now = a->now_ms();
	pthread_mutex_lock(&a->lock);
	rc = slots_hit(a->pos, NH_AUTH_CACHE_SLOTS, h, now) ? 0 : 1;
	if (rc == 0)
		a->stats.cache_hits++;
	else
		a->stats.reviews++;
	pthread_mutex_unlock(&a->lock);
	if (rc == 0)
		goto out;
	rc = a->review(a->review_arg, token, &resp, err, sizeof(err));
	if (rc) {
		LOG_WARN("msg=\"channel client refused\" why=\"token review failed\" err=\"%s\"", err);
		rc = -EACCES;
		goto out;
	}
	now = a->now_ms();
	if (!nh_auth_decide(resp, a->identity, why, sizeof(why))) {
		LOG_WARN("msg=\"channel client refused\" why=\"%s\"", why);
		pthread_mutex_lock(&a->lock);
		slots_put(a->neg, NH_AUTH_NEG_SLOTS, h, now, now + NH_AUTH_NEG_TTL_MS);
		pthread_mutex_unlock(&a->lock);
		rc = -EACCES;
		goto out;
	}
	ttl = (exp_s - a->wall_s()) * 1000;
	if (ttl > NH_AUTH_CACHE_TTL_MS)
		ttl = NH_AUTH_CACHE_TTL_MS;
	if (ttl > 0) {
		pthread_mutex_lock(&a->lock);
		slots_put(a->pos, NH_AUTH_CACHE_SLOTS, h, now, now + ttl);
		pthread_mutex_unlock(&a->lock);
	}
	LOG_INFO("msg=\"channel client authenticated\" user=%s audience=%s", a->identity, CH_AUDIENCE);
out:
	OPENSSL_cleanse(h, sizeof(h));
	if (resp) { /* the API server echoes spec.token */
		json_object *t = kc_json_get(resp, "spec.token");

		if (t && json_object_is_type(t, json_type_string))
			OPENSSL_cleanse((void *)(uintptr_t)json_object_get_string(t),
					(size_t)json_object_get_string_len(t));
	}
	json_object_put(resp);
	return rc;
}

void nh_auth_get_stats(struct nh_auth *a, struct nh_auth_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	*out = a->stats;
	pthread_mutex_unlock(&a->lock);
}
