/*
 * kc_client.c - requests: one libcurl easy handle per client (connections are
 * reused across requests), a bounded response buffer, a deadline on every
 * request, the Authorization header built per request from the current token.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "dbuf.h"
#include "kc_internal.h"
#include "mx.h"
#include "log.h"

/* Response buffer capacity kept between requests; past it, freed. */
#define KC_KEEP_RESPONSE (256u * 1024u)

/* Non-2xx bodies of a watch (a Status) are small. */
#define KC_MAX_ERROR_BODY (64u * 1024u)

struct kc_client {
	struct kc_config *cfg; /* borrowed */
	CURL *h;
	long timeout_ms;
	const char *ua;
	char errbuf[CURL_ERROR_SIZE];
	int (*abort_fn)(void *arg);
	void *abort_arg;

	/* per request */
	struct dbuf resp;
	bool overflow;
	int (*on_data)(void *arg, const char *p, size_t n);
	void *data_arg;
	int data_rc;
};

int kc_client_new(struct kc_config *cfg, struct kc_client **out)
{
	struct kc_client *c;

	if (!cfg || !out)
		return -EINVAL;
	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->h = curl_easy_init();
	if (!c->h) {
		free(c);
		return -ENOMEM;
	}
	c->cfg = cfg;
	kc_config_client_count(cfg, 1);
	c->timeout_ms = KC_DEFAULT_TIMEOUT_MS;
	c->ua = "podcheckpoint-kc/0.1";
	dbuf_init(&c->resp, KC_MAX_RESPONSE);
	*out = c;
	return 0;
}

void kc_client_free(struct kc_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->h);
	kc_config_client_count(c->cfg, -1);
	kc_client_wipe_response(c);
	dbuf_cleanup(&c->resp);
	free(c);
}

void kc_client_wipe_response(struct kc_client *c)
{
	if (!c || !c->resp.data)
		return;
	OPENSSL_cleanse(c->resp.data, c->resp.cap);
	c->resp.len = 0;
}

void kc_client_set_timeout(struct kc_client *c, long timeout_ms)
{
	if (c && timeout_ms > 0)
		c->timeout_ms = timeout_ms;
}

void kc_client_set_user_agent(struct kc_client *c, const char *ua)
{
	if (c && ua)
		c->ua = ua;
}

void kc_client_set_abort(struct kc_client *c, int (*fn)(void *arg), void *arg)
{
	c->abort_fn = fn;
	c->abort_arg = arg;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct kc_client *c = userdata;
	size_t n = size * nmemb;
	long code = 0;

	if (c->on_data) {
		curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200 && code <= 299) {
			c->data_rc = c->on_data(c->data_arg, ptr, n);
			return c->data_rc ? 0 : n;
		}
	}
	if (dbuf_add(&c->resp, ptr, n)) {
		c->overflow = true;
		return 0;
	}
	return n;
}

static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct kc_client *c = clientp;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return c->abort_fn && c->abort_fn(c->abort_arg) ? 1 : 0;
}

/* Builds the header list; the Authorization line is wiped from our memory. */
static int build_headers(struct kc_client *c, const char *content_type, struct curl_slist **out)
{
	struct curl_slist *l = NULL, *t;
	char line[256];
	char *auth = NULL;
	size_t authcap = KC_MAX_TOKEN + 32;
	int rc = -ENOMEM;

	*out = NULL;
	if (!(t = curl_slist_append(l, "Accept: application/json")))
		goto out;
	l = t;
	if (content_type) {
		snprintf(line, sizeof(line), "Content-Type: %s", content_type);
		if (!(t = curl_slist_append(l, line)))
			goto out;
		l = t;
	}
	/* No "Expect: 100-continue" round trip for large bodies. */
	if (!(t = curl_slist_append(l, "Expect:")))
		goto out;
	l = t;
	if (kc_config_has_token(c->cfg)) {
		const size_t pre = sizeof("Authorization: Bearer ") - 1;

		auth = malloc(authcap);
		if (!auth)
			goto out;
		memcpy(auth, "Authorization: Bearer ", pre);
		rc = kc_config_token(c->cfg, auth + pre, authcap - pre);
		if (rc)
			goto out;
		rc = -ENOMEM;
		if (!(t = curl_slist_append(l, auth)))
			goto out;
		l = t;
	}
	*out = l;
	l = NULL;
	rc = 0;
out:
	if (auth) {
		OPENSSL_cleanse(auth, authcap);
		free(auth);
	}
	curl_slist_free_all(l);
	return rc;
}

static int curl_to_errno(CURLcode cc)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

#define SET(opt, val)                                            \
	do {                                                     \
		if (curl_easy_setopt(c->h, (opt), (val)) != CURLE_OK) \
			goto setopt_failed;                      \
	} while (0)

/*
 * One transfer. Either the body is collected (bounded) into c->resp, or, with
 * on_data set, a 2xx body is streamed to it.
 */
static int perform(struct kc_client *c, const char *method, const char *path,
		   const char *content_type, const char *body, size_t body_len, long timeout_ms,
		   long *http, struct kc_status *st)
{
	struct curl_slist *hdrs = NULL;
	struct dbuf url;
	CURLcode cc;
	double t0;
	int rc;

	*http = 0;
	kc_status_clear(st);
	dbuf_init(&url, 64 * 1024);
	if (c->resp.cap > KC_KEEP_RESPONSE) {
		/* A large answer (a LIST page) is not kept for the next small one. */
		kc_client_wipe_response(c);
		dbuf_cleanup(&c->resp);
		dbuf_init(&c->resp, KC_MAX_RESPONSE);
	}
	dbuf_reset(&c->resp);
	c->overflow = false;
	c->data_rc = 0;
	c->errbuf[0] = '\0';
	if (!path || path[0] != '/') {
		rc = -EINVAL;
		goto out;
	}
	rc = dbuf_adds(&url, kc_config_server(c->cfg));
	if (!rc)
		rc = dbuf_adds(&url, path);
	if (rc)
		goto out;
	rc = build_headers(c, content_type, &hdrs);
	if (rc) {
		kc_status_set_transport(st, "cannot read the bearer token");
		goto out;
	}

	curl_easy_reset(c->h); /* keeps live connections, DNS and TLS session caches */
	SET(CURLOPT_URL, url.data);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TIMEOUT_MS, timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	/*
	 * HTTP/1.1: a client owns one connection and runs one request at a time
	 * on it, so HTTP/2 would multiplex nothing; it cost nghttp2's session
	 * state and libcurl's 32 KiB frame buffer per connection (~0.4 MB of
	 * the idle controller's heap, docs/kc.md).
	 */
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_ERRORBUFFER, c->errbuf);
	SET(CURLOPT_USERAGENT, c->ua);
	SET(CURLOPT_HTTPHEADER, hdrs);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, c);
	if (strcmp(method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		SET(CURLOPT_CUSTOMREQUEST, method);
		if (body) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
			SET(CURLOPT_POSTFIELDS, body);
		} else if (strcmp(method, "DELETE") != 0) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
			SET(CURLOPT_POSTFIELDS, "");
		}
	}
	if (kc_config_apply_tls(c->cfg, c->h))
		goto setopt_failed;

	t0 = mx_now();
	cc = curl_easy_perform(c->h);
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, http);
	/* An abort of ours (write error, cancel) is not the API server's doing. */
	if (cc != CURLE_ABORTED_BY_CALLBACK && cc != CURLE_WRITE_ERROR)
		kc_metrics_request(c->on_data ? "WATCH" : method, *http, *http != 0,
				   mx_now() - t0, c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
	if (cc == CURLE_WRITE_ERROR && c->data_rc) {
		rc = c->data_rc;
		goto out;
	}
	if (cc == CURLE_WRITE_ERROR && c->overflow) {
		char msg[128];

		snprintf(msg, sizeof(msg), "response larger than %zu bytes", c->resp.max);
		kc_status_set_transport(st, msg);
		if (st)
			st->http = *http;
		rc = -EMSGSIZE;
		goto out;
	}
	if (cc != CURLE_OK) {
		kc_status_set_transport(st, c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
		rc = curl_to_errno(cc);
		goto out;
	}
	rc = 0;
	goto out;
setopt_failed:
	kc_status_set_transport(st, "curl option refused");
	rc = -EINVAL;
out:
	/* The header list and URL must not outlive this call inside the handle. */
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	dbuf_cleanup(&url);
	c->on_data = NULL;
	return rc;
}

int kc_request(struct kc_client *c, const char *method, const char *path, const char *content_type,
	       const char *body, size_t body_len, json_object **out, struct kc_status *st)
{
	long http = 0;
	int rc;

	if (out)
		*out = NULL;
	if (!c || !method || !path)
		return -EINVAL;
	c->resp.max = KC_MAX_RESPONSE;
	/* the client-side rate limit: never waits past this request's own deadline */
	rc = kc_ratelimit_wait(kc_config_rate_limit(c->cfg), c->timeout_ms, c->abort_fn, c->abort_arg);
	if (rc) {
		kc_status_set_transport(st, rc == -ETIMEDOUT ?
					"client rate limit: no request slot before the deadline" :
					"request cancelled while waiting for the client rate limit");
		return rc;
	}
	rc = perform(c, method, path, content_type, body, body_len, c->timeout_ms, &http, st);
	if (rc) {
		LOG_DEBUG("msg=\"request failed\" method=%s path=%s http=%ld err=%d", method, path,
			  http, rc);
		return rc;
	}
	if (http < 200 || http > 299) {
		struct kc_status tmp;
		struct kc_status *s = st ? st : &tmp;

		kc_status_from_response(s, http, c->resp.data, c->resp.len);
		rc = kc_status_to_errno(s);
		LOG_DEBUG("msg=\"request refused\" method=%s path=%s http=%ld reason=%s", method,
			  path, http, s->reason);
		return rc;
	}
	if (st)
		st->http = http;
	if (out && c->resp.len)
		(void)kc_json_parse(c->resp.data, c->resp.len, out); /* non-JSON: *out stays NULL */
	return 0;
}

int kc_request_stream(struct kc_client *c, const char *path, long timeout_ms,
		      int (*on_data)(void *arg, const char *p, size_t n), void *arg,
		      struct kc_status *st)
{
	long http = 0;
	int rc;

	c->resp.max = KC_MAX_ERROR_BODY;
	c->on_data = on_data;
	c->data_arg = arg;
	rc = perform(c, "GET", path, NULL, NULL, 0, timeout_ms, &http, st);
	if (rc)
		return rc;
	if (http < 200 || http > 299) {
		struct kc_status tmp;
		struct kc_status *s = st ? st : &tmp;

		kc_status_from_response(s, http, c->resp.data, c->resp.len);
		return kc_status_to_errno(s);
	}
	if (st)
		st->http = http;
	return 0;
}

static int send_json(struct kc_client *c, const char *method, const char *path,
		     const char *content_type, json_object *obj, json_object **out,
		     struct kc_status *st)
{
	const char *body;
	size_t len = 0;

	if (out)
		*out = NULL;
	if (!obj)
		return -EINVAL;
	body = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
	if (!body)
		return -ENOMEM;
	return kc_request(c, method, path, content_type, body, len, out, st);
}

int kc_get(struct kc_client *c, const char *path, json_object **out, struct kc_status *st)
{
	return kc_request(c, "GET", path, NULL, NULL, 0, out, st);
}

int kc_create(struct kc_client *c, const char *path, json_object *obj, json_object **out,
	      struct kc_status *st)
{
	return send_json(c, "POST", path, "application/json", obj, out, st);
}

int kc_replace(struct kc_client *c, const char *path, json_object *obj, json_object **out,
	       struct kc_status *st)
{
	return send_json(c, "PUT", path, "application/json", obj, out, st);
}

int kc_merge_patch(struct kc_client *c, const char *path, json_object *patch, json_object **out,
		   struct kc_status *st)
{
	return send_json(c, "PATCH", path, "application/merge-patch+json", patch, out, st);
}

int kc_apply(struct kc_client *c, const char *path, json_object *obj, const char *field_manager,
	     bool force, json_object **out, struct kc_status *st)
{
	char full[8192], q[512] = "";
	int rc, n;

	if (out)
		*out = NULL;
	if (!path || !field_manager || !field_manager[0])
		return -EINVAL;
	rc = kc_query_add(q, sizeof(q), "fieldManager", field_manager);
	if (!rc && force)
		rc = kc_query_add(q, sizeof(q), "force", "true");
	if (rc)
		return rc;
	n = snprintf(full, sizeof(full), "%s%s%s", path, strchr(path, '?') ? "&" : "?", q);
	if (n < 0 || (size_t)n >= sizeof(full))
		return -ENAMETOOLONG;
	return send_json(c, "PATCH", full, "application/apply-patch+yaml", obj, out, st);
}

int kc_delete(struct kc_client *c, const char *path, const struct kc_delete_opts *opts,
	      json_object **out, struct kc_status *st)
{
	json_object *body = NULL, *pre = NULL;
	int rc = -ENOMEM;

	if (out)
		*out = NULL;
	body = json_object_new_object();
	if (!body)
		goto out;
	if (json_object_object_add(body, "apiVersion", json_object_new_string("v1")) ||
	    json_object_object_add(body, "kind", json_object_new_string("DeleteOptions")))
		goto out;
	if (opts && (opts->uid || opts->resource_version)) {
		pre = json_object_new_object();
		if (!pre)
			goto out;
		if (opts->uid && json_object_object_add(pre, "uid", json_object_new_string(opts->uid)))
			goto out;
		if (opts->resource_version &&
		    json_object_object_add(pre, "resourceVersion",
					   json_object_new_string(opts->resource_version)))
			goto out;
		if (json_object_object_add(body, "preconditions", pre))
			goto out;
		pre = NULL;
	}
	if (opts && opts->propagation_policy &&
	    json_object_object_add(body, "propagationPolicy",
				   json_object_new_string(opts->propagation_policy)))
		goto out;
	if (opts && opts->grace_period_seconds >= 0 &&
	    json_object_object_add(body, "gracePeriodSeconds",
				   json_object_new_int64(opts->grace_period_seconds)))
		goto out;
	rc = send_json(c, "DELETE", path, "application/json", body, out, st);
out:
	json_object_put(pre);
	json_object_put(body);
	return rc;
}
