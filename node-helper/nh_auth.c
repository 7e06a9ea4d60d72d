/*
 * nh_auth.c - TokenReview-based authentication of the controller.
 */
#include "nh_auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "kc.h"
#include "log.h"
#include "nh_util.h"

struct nh_auth_slot {
	unsigned char hash[SHA256_DIGEST_LENGTH];
	int64_t expires_ms; /* 0: empty */
};

struct nh_auth {
	char identity[256];
	nh_review_fn review;
	void *review_arg;
	int64_t (*now_ms)(void);
	struct kc_client *client; /* for the default reviewer */
	pthread_mutex_t lock;
	struct nh_auth_slot slots[NH_AUTH_CACHE_SLOTS];
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
	if (why)
		snprintf(why, whylen, "ok");
	return true;
}

/* The real reviewer: POST a TokenReview with the helper's own credentials. */
static int nh_review_kc(void *arg, const char *token, json_object **out, char *err, size_t errlen)
{
	struct nh_auth *a = arg;
	struct kc_status st;
	json_object *body = NULL, *spec = NULL, *tok = NULL;
	char path[256];
	int rc;

	*out = NULL;
	kc_status_clear(&st);
	rc = kc_path(path, sizeof(path), &KC_RES_TOKENREVIEWS, NULL, NULL, NULL, NULL);
	if (rc)
		goto out;
	body = json_object_new_object();
	spec = json_object_new_object();
	if (!body || !spec) {
		json_object_put(spec);
		rc = -ENOMEM;
		goto out;
	}
	json_object_object_add(body, "apiVersion", json_object_new_string("authentication.k8s.io/v1"));
	json_object_object_add(body, "kind", json_object_new_string("TokenReview"));
	json_object_object_add(body, "spec", spec);
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
	json_object_put(body);
	return rc;
}

static int64_t nh_auth_mono(void)
{
	return nh_mono_ms();
}

int nh_auth_new_with(nh_review_fn review, void *review_arg, const char *identity,
		     int64_t (*now_ms)(void), struct nh_auth **out)
{
	struct nh_auth *a;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	if (nh_strlcpy(a->identity, identity, sizeof(a->identity)) != 0) {
		free(a);
		return -ENAMETOOLONG;
	}
	a->review = review;
	a->review_arg = review_arg;
	a->now_ms = now_ms ? now_ms : nh_auth_mono;
	pthread_mutex_init(&a->lock, NULL);
	*out = a;
	return 0;
}

int nh_auth_new(struct kc_config *cfg, const char *identity, struct nh_auth **out)
{
	struct nh_auth *a = NULL;
	int rc;

	rc = nh_auth_new_with(nh_review_kc, NULL, identity, NULL, &a);
	if (rc)
		goto out;
	a->review_arg = a;
	rc = kc_client_new(cfg, &a->client);
	if (rc)
		goto out;
	kc_client_set_timeout(a->client, NH_AUTH_DEADLINE_MS);
	kc_client_set_user_agent(a->client, "podcheckpoint-node-helper/auth");
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
	OPENSSL_cleanse(a->slots, sizeof(a->slots));
	pthread_mutex_destroy(&a->lock);
	free(a);
}

static bool nh_cache_hit(struct nh_auth *a, const unsigned char *h, int64_t now)
{
	bool hit = false;

	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < NH_AUTH_CACHE_SLOTS; i++) {
		struct nh_auth_slot *s = &a->slots[i];
		if (s->expires_ms > now && CRYPTO_memcmp(s->hash, h, sizeof(s->hash)) == 0) {
			hit = true;
			break;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return hit;
}

static void nh_cache_put(struct nh_auth *a, const unsigned char *h, int64_t now)
{
	struct nh_auth_slot *victim = &a->slots[0];

	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < NH_AUTH_CACHE_SLOTS; i++) {
		struct nh_auth_slot *s = &a->slots[i];
		if (s->expires_ms <= now) {
			victim = s;
			break;
		}
		if (s->expires_ms < victim->expires_ms)
			victim = s;
	}
	memcpy(victim->hash, h, sizeof(victim->hash));
	victim->expires_ms = now + NH_AUTH_CACHE_TTL_MS;
	pthread_mutex_unlock(&a->lock);
}

int nh_auth_check(void *arg, const char *token)
{
	struct nh_auth *a = arg;
	unsigned char h[SHA256_DIGEST_LENGTH];
	json_object *resp = NULL;
	char err[256] = "", why[256] = "";
	int64_t now;
	int rc;

	if (!a || !token || !*token) {
		LOG_WARN("msg=\"channel client refused\" why=\"no bearer token\"");
		return -EACCES;
	}
	SHA256((const unsigned char *)token, strlen(token), h);
	now = a->now_ms();
	if (nh_cache_hit(a, h, now)) {
		rc = 0;
		goto out;
	}
	rc = a->review(a->review_arg, token, &resp, err, sizeof(err));
	if (rc) {
		LOG_WARN("msg=\"channel client refused\" why=\"token review failed\" err=\"%s\"", err);
		rc = -EACCES;
		goto out;
	}
	if (!nh_auth_decide(resp, a->identity, why, sizeof(why))) {
		LOG_WARN("msg=\"channel client refused\" why=\"%s\"", why);
		rc = -EACCES;
		goto out;
	}
	nh_cache_put(a, h, now);
	LOG_INFO("msg=\"channel client authenticated\" user=%s", a->identity);
out:
	OPENSSL_cleanse(h, sizeof(h));
	json_object_put(resp);
	return rc;
}
