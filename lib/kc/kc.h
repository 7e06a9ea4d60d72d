/*
 * kc.h - a small Kubernetes API client on libcurl + json-c.
 *
 * Objects:
 *   struct kc_config   immutable connection settings (server, CA, client cert,
 *                      token or token file). Thread-safe; shared by clients.
 *   struct kc_client   one libcurl easy handle with connection reuse. Used by
 *                      ONE thread at a time: create one per thread.
 *   struct kc_informer LIST+WATCH of one resource in its own thread, feeding a
 *                      local cache (struct kc_cache) and a callback.
 *
 * Errors: every call returns 0 or a negative errno-style code. Calls that talk
 * to the API server also fill a struct kc_status with the HTTP code and the
 * API server's Status reason and message (-EIO and http=0 for transport
 * errors, with curl's message). Never "NULL means some error".
 *
 * Ownership: _new/_free pairs; every _free accepts NULL. json_object **out
 * parameters hand the caller one reference (json_object_put it). json_object *
 * inputs are borrowed.
 *
 * Credentials are handed to libcurl as in-memory blobs, never temp files; a
 * token file is re-read when its mtime changes (ServiceAccount tokens rotate).
 * Nothing here logs a token, a key or a Secret's data.
 */
#ifndef PCP_KC_H
#define PCP_KC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* Caps on what we accept from the network. */
#define KC_MAX_RESPONSE (32u * 1024u * 1024u) /* one LIST or GET response */
#define KC_MAX_WATCH_LINE (4u * 1024u * 1024u) /* one watch event */
#define KC_DEFAULT_TIMEOUT_MS 30000L

/* ---------------------------------------------------------------- errors */

struct kc_status {
	long http;          /* HTTP code; 0 when the request never got an answer */
	char reason[64];    /* Status.reason, e.g. "NotFound", "Conflict", or "" */
	char message[512];  /* Status.message, or curl's error, or "" */
};

void kc_status_clear(struct kc_status *st);
/* Fills st from an HTTP code and a response body (a Status object or not). */
void kc_status_from_response(struct kc_status *st, long http, const char *body, size_t len);
bool kc_is_not_found(const struct kc_status *st);     /* 404 */
bool kc_is_conflict(const struct kc_status *st);      /* 409 Conflict (not AlreadyExists) */
bool kc_is_already_exists(const struct kc_status *st);/* 409 AlreadyExists */
bool kc_is_gone(const struct kc_status *st);          /* 410 / Expired */
bool kc_is_forbidden(const struct kc_status *st);     /* 403 */
bool kc_is_invalid(const struct kc_status *st);       /* 422 */

/* ---------------------------------------------------------------- config */

struct kc_config;

/*
 * Loads a kubeconfig. path NULL: $KUBECONFIG (first entry), then
 * ~/.kube/config. context NULL: current-context. On error returns -EINVAL
 * (or -errno) and writes "file:line: what is wrong" into err.
 */
int kc_config_load_kubeconfig(const char *path, const char *context, struct kc_config **out,
			      char *err, size_t errlen);
/* Same, from a YAML text in memory; `name` is used in error messages. */
int kc_config_parse_kubeconfig(const char *name, const char *yaml, size_t len, const char *context,
			       struct kc_config **out, char *err, size_t errlen);
/*
 * In-cluster: KUBERNETES_SERVICE_HOST/PORT, the ServiceAccount token file,
 * CA and namespace under /var/run/secrets/kubernetes.io/serviceaccount
 * (root overridable for tests with $KC_SA_DIR).
 */
int kc_config_load_incluster(struct kc_config **out, char *err, size_t errlen);
/* kubeconfig if `kubeconfig` is non-NULL or $KUBECONFIG is set, else in-cluster. */
int kc_config_load_auto(const char *kubeconfig, struct kc_config **out, char *err, size_t errlen);
void kc_config_free(struct kc_config *cfg);

const char *kc_config_server(const struct kc_config *cfg);    /* "https://host:port" */
const char *kc_config_namespace(const struct kc_config *cfg); /* context/in-cluster ns or "default" */
/*
 * Client-side rate limit for every request of every kc_client made from cfg
 * (watch streams excepted): a token bucket of `burst` refilled at `qps`/s
 * (kc_ratelimit.h; the daemons' --kube-api-qps/--kube-api-burst, default
 * 200/400). qps <= 0 removes the limit. Set it before the first
 * kc_client_new of cfg: while clients of cfg exist (their requests read the
 * limiter without a lock) it is refused with -EBUSY and the limit stays.
 * 0, -EBUSY, -EINVAL (qps above KC_MAX_QPS, burst outside 1..KC_MAX_BURST),
 * -ENOMEM.
 */
int kc_config_set_rate_limit(struct kc_config *cfg, double qps, int burst);
/* Replaces the credentials with a bearer token read from `path` (re-read on change). */
int kc_config_set_token_file(struct kc_config *cfg, const char *path);
/*
 * Current bearer token (re-reading the token file if it changed) copied into
 * buf. -ENOENT when the config has no token. For callers that must present
 * the same identity elsewhere (e.g. the WebSocket channel, the kubelet).
 */
int kc_config_token(struct kc_config *cfg, char *buf, size_t cap);

/* ---------------------------------------------------------------- paths */

struct kc_resource {
	const char *group;   /* "" for the core group */
	const char *version; /* "v1" */
	const char *plural;  /* "pods" */
	const char *kind;    /* "Pod" */
	bool namespaced;
};

extern const struct kc_resource KC_RES_PODS;
extern const struct kc_resource KC_RES_SECRETS;
extern const struct kc_resource KC_RES_NODES;
extern const struct kc_resource KC_RES_EVENTS;        /* events.k8s.io/v1 */
extern const struct kc_resource KC_RES_LEASES;        /* coordination.k8s.io/v1 */
extern const struct kc_resource KC_RES_TOKENREVIEWS;  /* authentication.k8s.io/v1 */
extern const struct kc_resource KC_RES_PODCHECKPOINTS;/* checkpointing.dev/v1alpha1 */

/*
 * Builds "/api/v1/namespaces/NS/pods/NAME/SUB?QUERY" (or /apis/G/V/...),
 * percent-escaping ns, name and sub as path segments. ns NULL or "" for
 * cluster-scoped or all-namespaces; name, sub, query may be NULL. query is
 * appended as given (build it with kc_query_add). -ENAMETOOLONG if it does
 * not fit in cap.
 */
int kc_path(char *buf, size_t cap, const struct kc_resource *res, const char *ns,
	    const char *name, const char *sub, const char *query);
/* Appends "key=escaped(value)" to a query string in buf, with '&' as needed. */
int kc_query_add(char *buf, size_t cap, const char *key, const char *value);
/* Percent-escapes one path segment or query value (RFC 3986 unreserved kept). */
int kc_escape(char *buf, size_t cap, const char *s);

/* ---------------------------------------------------------------- requests */

struct kc_client;

int kc_client_new(struct kc_config *cfg, struct kc_client **out);
void kc_client_free(struct kc_client *c);
/* Per-request deadline (default KC_DEFAULT_TIMEOUT_MS). */
void kc_client_set_timeout(struct kc_client *c, long timeout_ms);
/* Sent as User-Agent (borrowed, static string). */
void kc_client_set_user_agent(struct kc_client *c, const char *ua);
/*
 * Wipes (OPENSSL_cleanse) the client's response buffer, all of its capacity:
 * call right after a request whose answer held secret data (a Secret GET).
 * Also done by kc_client_free.
 */
void kc_client_wipe_response(struct kc_client *c);

/*
 * The general request: method, path (from kc_path), optional body with its
 * content type. On 2xx returns 0 and, if out != NULL and the body is JSON,
 * *out = parsed body. On any other answer returns a negative code mapped
 * from the HTTP status (-ENOENT 404, -EEXIST 409
 * AlreadyExists, -EAGAIN 409 Conflict, -ESTALE 410, -EACCES 401/403,
 * -EINVAL 400/422, -EIO otherwise, -ETIMEDOUT on deadline) and fills st.
 */
int kc_request(struct kc_client *c, const char *method, const char *path, const char *content_type,
	       const char *body, size_t body_len, json_object **out, struct kc_status *st);

int kc_get(struct kc_client *c, const char *path, json_object **out, struct kc_status *st);
int kc_create(struct kc_client *c, const char *path, json_object *obj, json_object **out,
	      struct kc_status *st);
int kc_replace(struct kc_client *c, const char *path, json_object *obj, json_object **out,
	       struct kc_status *st);
/* application/merge-patch+json. Put metadata.resourceVersion in the patch for
 * an optimistic-concurrency precondition (409 Conflict when stale). */
int kc_merge_patch(struct kc_client *c, const char *path, json_object *patch, json_object **out,
		   struct kc_status *st);
/* Server-side apply: application/apply-patch+yaml (JSON is valid YAML). */
int kc_apply(struct kc_client *c, const char *path, json_object *obj, const char *field_manager,
	     bool force, json_object **out, struct kc_status *st);

struct kc_delete_opts {
	const char *uid;                /* precondition, or NULL */
	const char *resource_version;   /* precondition, or NULL */
	const char *propagation_policy; /* "Background", "Foreground", "Orphan" or NULL */
	long grace_period_seconds;      /* -1: server default */
};
int kc_delete(struct kc_client *c, const char *path, const struct kc_delete_opts *opts,
	      json_object **out, struct kc_status *st);

/* ---------------------------------------------------------------- cache */

/* Objects keyed by "namespace/name" (or "name"), thread-safe. */
struct kc_cache;

int kc_cache_new(struct kc_cache **out);
void kc_cache_free(struct kc_cache *cache);
/* Stores obj (takes a new reference). Keeps the newer one by resourceVersion
 * arrival order: last write wins. */
int kc_cache_put(struct kc_cache *cache, json_object *obj);
/* Removes by key; 0 or -ENOENT. */
int kc_cache_delete(struct kc_cache *cache, const char *ns, const char *name);
/* A new reference to the object, or NULL when absent (not an error). */
json_object *kc_cache_get(struct kc_cache *cache, const char *ns, const char *name);
size_t kc_cache_len(struct kc_cache *cache);
/* Calls fn for every object (borrowed for the call) under the lock. */
void kc_cache_foreach(struct kc_cache *cache, void (*fn)(void *arg, json_object *obj), void *arg);
/* Replaces the whole content with the items of a LIST (after a relist). */
int kc_cache_replace(struct kc_cache *cache, json_object *items);

/* ---------------------------------------------------------------- watch */

/*
 * Splits a watch stream (JSON objects separated by '\n', arriving in
 * arbitrary chunks) into events. Bounded: a line longer than max_line fails
 * with -EMSGSIZE. Embedded; exposed for tests and fuzzing.
 */
enum kc_event_type { KC_ADDED, KC_MODIFIED, KC_DELETED, KC_BOOKMARK, KC_ERROR };

struct kc_watch_parser;
int kc_watch_parser_new(size_t max_line, struct kc_watch_parser **out);
void kc_watch_parser_free(struct kc_watch_parser *p);
/*
 * Feeds a chunk; calls fn once per complete event with the parsed type and
 * object (borrowed for the call). Returns 0, -EMSGSIZE, -EBADMSG (a line that
 * is not a watch event), or the first non-zero value fn returned.
 */
int kc_watch_parser_feed(struct kc_watch_parser *p, const char *chunk, size_t len,
			 int (*fn)(void *arg, enum kc_event_type type, json_object *obj),
			 void *arg);

struct kc_informer;

struct kc_informer_opts {
	const struct kc_resource *res;
	const char *ns;             /* NULL or "": all namespaces */
	const char *label_selector; /* or NULL */
	const char *field_selector; /* or NULL */
	/* Called from the informer thread after the cache is updated; obj borrowed.
	 * On relist, called with KC_ADDED/KC_MODIFIED for every listed object and
	 * KC_DELETED for those that vanished. */
	void (*on_event)(void *arg, enum kc_event_type type, json_object *obj);
	void *arg;
	/* >0: call on_event(KC_MODIFIED) for every cached object this often (in
	 * projection mode: call resync(arg)). 0: never (e.g. for pods). */
	int resync_seconds;
	/*
	 * Projection mode (project != NULL), for large caches: the informer keeps
	 * no json-c trees and no cache (kc_informer_cache returns NULL, on_event
	 * is not called); the consumer keeps its own compact records. Each object
	 * is handed to project() (borrowed: the tree is freed right after) from
	 * the informer thread. LIST pages are handed over one at a time (at most
	 * one page of 500 objects is parsed at once). Every complete LIST has a
	 * new epoch (1, 2, ...): listed objects come with type KC_ADDED and that
	 * epoch, watch events (ADDED, MODIFIED, DELETED) with the current epoch;
	 * after the last page sweep(arg, epoch) says that whatever the consumer
	 * holds that was not handed over with that epoch has vanished (it treats
	 * it as deleted). project returns 0 or a negative code: in a LIST, the
	 * list is retried with backoff; in a watch, the watch is resumed from the
	 * event before (the event comes again).
	 */
	int (*project)(void *arg, enum kc_event_type type, json_object *obj, uint64_t epoch);
	void (*sweep)(void *arg, uint64_t epoch);
	void (*resync)(void *arg); /* projection mode only; may be NULL */
};

/*
 * Starts LIST+WATCH in a new thread with its own kc_client: resourceVersion
 * continuity, allowWatchBookmarks, relist on 410 Gone, reconnect with
 * jittered exponential backoff (capped), timeoutSeconds on each watch.
 * cfg is borrowed and must outlive the informer.
 */
int kc_informer_start(struct kc_config *cfg, const struct kc_informer_opts *opts,
		      struct kc_informer **out);
/* Stops the thread (within a bounded time) and frees everything. */
void kc_informer_free(struct kc_informer *inf);
/* True once the first LIST is in the cache. */
bool kc_informer_synced(struct kc_informer *inf);
/* Waits until synced or timeout_ms passes; 0 or -ETIMEDOUT. */
int kc_informer_wait_synced(struct kc_informer *inf, long timeout_ms);
/* The informer's cache (borrowed); NULL in projection mode. */
struct kc_cache *kc_informer_cache(struct kc_informer *inf);

/* ---------------------------------------------------------------- events */

struct kc_event_source {
	const char *controller; /* reportingController, e.g. "checkpointing.dev/controller" */
	const char *instance;   /* reportingInstance, e.g. pod or host name */
};

/*
 * Creates an events.k8s.io/v1 Event about `regarding` (borrowed; its
 * apiVersion, kind, metadata.namespace/name/uid/resourceVersion are used).
 * type "Normal" or "Warning"; reason CamelCase; action CamelCase; the note
 * is printf-formatted (truncated to 1024 bytes).
 */
int kc_event_emit(struct kc_client *c, const struct kc_event_source *src, json_object *regarding,
		  const char *type, const char *reason, const char *action, struct kc_status *st,
		  const char *fmt, ...) __attribute__((format(printf, 8, 9)));

/* ---------------------------------------------------------------- leases */

struct kc_lease {
	char holder[256];
	long duration_seconds;
	int64_t renew_time_ms; /* epoch ms of spec.renewTime, 0 when unset */
	json_object *annotations; /* owned (put it with kc_lease_cleanup), may be NULL */
	char resource_version[32];
};

void kc_lease_cleanup(struct kc_lease *l);
/* Fills out from a Lease object (borrowed), e.g. one of an informer's cache. */
void kc_lease_from_object(json_object *obj, struct kc_lease *out);
int kc_lease_get(struct kc_client *c, const char *ns, const char *name, struct kc_lease *out,
		 struct kc_status *st);
/*
 * Creates or renews Lease ns/name held by `holder` (renewTime = now,
 * acquireTime on create or change of holder), with the given annotations
 * (borrowed, may be NULL) merged into metadata.annotations.
 */
int kc_lease_renew(struct kc_client *c, const char *ns, const char *name, const char *holder,
		   long duration_seconds, json_object *annotations, struct kc_status *st);
/*
 * Leader election on a Lease: acquires it if free or expired, renews it if
 * held by us. *leader = true when we hold it after the call.
 */
int kc_lease_try_acquire(struct kc_client *c, const char *ns, const char *name,
			 const char *holder, long duration_seconds, bool *leader,
			 struct kc_status *st);

/* ---------------------------------------------------------------- helpers */

/* Borrowed string at a dotted path ("metadata.name"), or NULL. */
const char *kc_json_str(json_object *obj, const char *dotted);
/* Borrowed object at a dotted path, or NULL. */
json_object *kc_json_get(json_object *obj, const char *dotted);
/* RFC 3339 UTC ("2026-11-28T18:00:00Z") for epoch seconds. buf >= 21 bytes. */
void kc_time_rfc3339(int64_t epoch_s, char buf[32]);
/* Parses RFC 3339 (Z or offset, optional fraction) into epoch ms; 0 or -EINVAL. */
int kc_time_parse(const char *s, int64_t *epoch_ms);

/* ------------------------------------------ additions (lib/kc owner) ---- */
/*
 * Added by the lib/kc implementation; nothing above changed signature.
 */

/* The negative code kc_request returns for a filled status (0 for 2xx). */
int kc_status_to_errno(const struct kc_status *st);

/* After kc_watch_parser_feed returned non-zero the parser holds an undefined
 * partial line: reset it before feeding a new stream. */
void kc_watch_parser_reset(struct kc_watch_parser *p);

/* metav1.MicroTime: "2026-11-28T18:00:00.123456Z" for epoch microseconds. */
void kc_time_rfc3339_micro(int64_t epoch_us, char buf[40]);
/* Current wall-clock time in epoch microseconds / milliseconds. */
int64_t kc_now_us(void);
int64_t kc_now_ms(void);

/* Parses JSON (nesting up to 128) from a buffer; -EBADMSG if not JSON or
 * trailing garbage. *out gets one reference. */
int kc_json_parse(const char *buf, size_t len, json_object **out);

/*
 * The number at a dotted path as int64 (a JSON double is truncated), or dflt
 * when absent or not a number. present (may be NULL) says which.
 */
int64_t kc_json_int64(json_object *obj, const char *dotted, int64_t dflt, bool *present);

/*
 * Standard base64 (RFC 4648 alphabet; spaces, tabs and line breaks ignored;
 * trailing '=' padding optional) into a new NUL-terminated buffer: *out (free()
 * it) and *out_len (without the NUL). -EINVAL for other characters, data after
 * padding or a dangling final character; -ENOMEM. Nothing is left behind on
 * failure (partial output is wiped: kubeconfig *-data fields carry keys).
 */
int kc_base64_decode(const char *in, size_t len, char **out, size_t *out_len);

/*
 * Building objects: each takes val (a new value: on failure it is put, and a
 * NULL val, i.e. a failed json_object_new_*, is -ENOMEM). 0 or -ENOMEM.
 */
int kc_json_set(json_object *obj, const char *key, json_object *val);
int kc_json_append(json_object *arr, json_object *val);
/*
 * In a function with `int rc` and an `out:` label: kc_json_set / kc_json_append,
 * or set rc and goto out.
 */
#define KC_JSON_ADD(obj, key, val)                                      \
	do {                                                            \
		int e_ = kc_json_set((obj), (key), (val));              \
		if (e_) {                                               \
			rc = e_;                                        \
			goto out;                                       \
		}                                                       \
	} while (0)
#define KC_JSON_ADDA(arr, val)                                          \
	do {                                                            \
		int e_ = kc_json_append((arr), (val));                  \
		if (e_) {                                               \
			rc = e_;                                        \
			goto out;                                       \
		}                                                       \
	} while (0)
/* kc_json_set with a new string copy of val; val NULL: nothing added, 0. */
int kc_json_set_str(json_object *obj, const char *key, const char *val);

/*
 * Gives back Lease ns/name if `holder` holds it (holderIdentity "" and a 1 s
 * duration, as client-go's ReleaseOnCancel), so another candidate takes over
 * at once instead of waiting for it to expire. Not held by us: 0, no write.
 */
int kc_lease_release(struct kc_client *c, const char *ns, const char *name, const char *holder,
		     struct kc_status *st);

/* The resourceVersion of a cached/received object (borrowed) or NULL. */
#define kc_json_rv(obj) kc_json_str((obj), "metadata.resourceVersion")

/* ------------------------------------------------------------ metrics
 * Every request the client makes is counted in the process's metrics
 * registry (podcheckpoint_api_requests_total{verb,code},
 * podcheckpoint_api_request_duration_seconds{verb}); informers count
 * podcheckpoint_watch_restarts_total and podcheckpoint_relists_total by
 * resource. kc_metrics_register makes those families show (at zero) before
 * the first request.
 */
void kc_metrics_register(void);
/*
 * Readiness of the API connection, process-wide: 0 when the last request to
 * the API server got an answer (not 503) and, if max_age_ms > 0, that answer
 * is at most max_age_ms old. Else negative and one sentence in why.
 */
int kc_api_check(long max_age_ms, char *why, size_t cap);

#endif
