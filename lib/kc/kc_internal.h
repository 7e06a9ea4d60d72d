/*
 * kc_internal.h - shared between the lib/kc source files only (not installed,
 * not for other modules).
 */
#ifndef PCP_KC_INTERNAL_H
#define PCP_KC_INTERNAL_H

#include <curl/curl.h>

#include "kc.h"
#include "kc_ratelimit.h"

/* Bearer tokens are small (a JWT is ~1 KiB); anything bigger is refused. */
#define KC_MAX_TOKEN 16384u
/* kubeconfig, CA, certificate, key files. */
#define KC_MAX_CONFIG_FILE (4u * 1024u * 1024u)

/* kc_config.c: sets TLS options (blobs, verification) on a reset handle. */
int kc_config_apply_tls(const struct kc_config *cfg, CURL *h);
/* kc_client_new (+1) and kc_client_free (-1): the config's count of clients,
 * which kc_config_set_rate_limit refuses to change the limit under. */
void kc_config_client_count(struct kc_config *cfg, int delta);
/* The config's limiter (kc_config_set_rate_limit), or NULL. */
struct kc_ratelimit *kc_config_rate_limit(const struct kc_config *cfg);
/* True when the config carries a bearer token (static or file). */
bool kc_config_has_token(const struct kc_config *cfg);

/* kc_client.c: called from curl's progress callback (~1/s and on every
 * transfer step) with arg; non-zero aborts the transfer (-ECANCELED). */
void kc_client_set_abort(struct kc_client *c, int (*fn)(void *arg), void *arg);

/*
 * GET `path` streaming the body of a 2xx answer to on_data (which returns 0
 * or a negative code that stops the transfer and is returned). A non-2xx
 * answer is collected (bounded) and mapped like kc_request. Returns 0 when
 * the server ended the stream, -ETIMEDOUT when timeout_ms passed.
 */
int kc_request_stream(struct kc_client *c, const char *path, long timeout_ms,
		      int (*on_data)(void *arg, const char *p, size_t n), void *arg,
		      struct kc_status *st);

/* kc_status.c: fills st for a transport failure (http 0). */
void kc_status_set_transport(struct kc_status *st, const char *msg);

/* kc_cache.c: key "ns/name" or "name" of an object; -EINVAL without a name. */
int kc_cache_key(json_object *obj, char *buf, size_t cap);

/* kc_metrics.c: one finished request (answered: an HTTP status came back). */
void kc_metrics_request(const char *verb, long http, bool answered, double seconds,
			const char *transport_error);
void kc_metrics_watch_restart(const char *resource);
void kc_metrics_relist(const char *resource);

#endif
