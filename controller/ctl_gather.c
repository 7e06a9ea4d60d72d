/*
 * ctl_gather.c - reads the world into a struct ctl_obs: the pod (from the
 * cache, or live right before a dispatch), the recipient Secret's tls.crt
 * (validated; every buffer that held Secret data wiped), and the node
 * helper's Lease (its endpoint checked against the node's addresses).
 * Decides nothing (ctl_reconcile.c does).
 */
#include "ctl_gather.h"
#include "ctl_store.h"
#include "ctl_trust.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "art.h"
#include "ch.h"
#include "ctl_metrics.h"
#include "log.h"
#include "pst.h"

/* ---------------------------------------------------------------- gathering */

int ctl_gather_pod(struct ctl_ctx *ctx, struct kc_client *c, struct ctl_obs *o, bool live)
{
	struct ctl_store *store = ctl_ctx_store(ctx, o->ns);
	json_object *pod = NULL;
	struct kc_status st;
	char path[1024];
	int rc = 0;

	if (store && ctl_store_pod_obs(store, o->ns, o->pod_name, o))
		return 0;
	if (!live) {
		ctl_obs_set_pod(o, NULL);
		return 0;
	}
	/* The cache may lag behind a pod created a moment ago: ask before a
	 * decision takes its absence for PodNotFound. */
	rc = kc_path(path, sizeof(path), &KC_RES_PODS, o->ns, o->pod_name, NULL, NULL);
	if (!rc)
		rc = kc_get(c, path, &pod, &st);
	if (rc == -ENOENT) {
		rc = 0;
		pod = NULL;
	} else if (rc) {
		LOG_WARN("msg=\"cannot read pod\" pcp=%s/%s pod=%s http=%ld error=\"%s\"", o->ns,
			 o->name, o->pod_name, st.http, st.message);
		return rc;
	}
	ctl_obs_set_pod(o, pod);
	json_object_put(pod);
	return rc;
}

static enum ctl_cert_check map_cert(enum art_cert_error why)
{
	switch (why) {
	case ART_CERT_OK:
		return CTL_CERT_OK;
	case ART_CERT_UNSUPPORTED_KEY:
		return CTL_CERT_UNSUPPORTED_KEY;
	case ART_CERT_EXPIRED:
		return CTL_CERT_EXPIRED;
	case ART_CERT_NOT_YET_VALID:
		return CTL_CERT_NOT_YET_VALID;
	case ART_CERT_GARBAGE:
	default:
		return CTL_CERT_GARBAGE;
	}
}

/* Wipes a string json-c owns (its bytes, in place). */
static void wipe_jstr(json_object *v)
{
	if (v && json_object_is_type(v, json_type_string))
		OPENSSL_cleanse((void *)(uintptr_t)json_object_get_string(v),
				(size_t)json_object_get_string_len(v));
}

/*
 * Before a Secret object is freed: wipe every data value (tls.key among
 * them, though it is never read) and the last-applied annotation, which
 * kubectl apply fills with the whole Secret.
 */
static void wipe_secret(json_object *sec)
{
	json_object *data = sec ? kc_json_get(sec, "data") : NULL;
	json_object *ann = sec ? kc_json_get(sec, "metadata.annotations") : NULL;
	json_object *v = NULL;

	if (data && json_object_is_type(data, json_type_object)) {
		json_object_object_foreach(data, key, val) {
			(void)key;
			wipe_jstr(val);
		}
	}
	if (ann && json_object_is_type(ann, json_type_object) &&
	    json_object_object_get_ex(ann, "kubectl.kubernetes.io/last-applied-configuration", &v))
		wipe_jstr(v);
}

/* Reads the Secret and checks its tls.crt; *pem gets the certificate PEM. */
int ctl_gather_secret(struct ctl_ctx *ctx, struct kc_client *c, struct ctl_obs *o, char **pem)
{
	json_object *sec = NULL;
	struct kc_status st;
	struct art_cert *cert = NULL;
	enum art_cert_error why = ART_CERT_OK;
	char path[1024];
	size_t len = 0;
	int rc;

	*pem = NULL;
	if (!o->secret_name[0]) {
		ctl_obs_set_secret(o, NULL, pem, &len);
		return 0;
	}
	rc = kc_path(path, sizeof(path), &KC_RES_SECRETS, o->ns, o->secret_name, NULL, NULL);
	if (!rc)
		rc = kc_get(c, path, &sec, &st);
	if (rc == -ENOENT) {
		sec = NULL;
		rc = 0;
	} else if (rc) {
		LOG_WARN("msg=\"cannot read secret\" pcp=%s/%s secret=%s http=%ld error=\"%s\"", o->ns,
			 o->name, o->secret_name, st.http, st.message);
		goto out;
	}
	rc = ctl_obs_set_secret(o, sec, pem, &len);
	if (rc || !*pem)
		goto out;
	rc = art_cert_parse(*pem, len, ctx->pol.allow_expired, (time_t)(o->now_ms / 1000), &cert,
			    &why, o->cert_msg, sizeof(o->cert_msg));
	if (rc == 0) {
		o->cert = CTL_CERT_OK;
		ctl_copy(o->cert_fingerprint, sizeof(o->cert_fingerprint), art_cert_fingerprint(cert));
	} else if (rc == -EINVAL) {
		o->cert = map_cert(why);
		rc = 0;
	}
out:
	art_cert_free(cert);
	wipe_secret(sec);
	json_object_put(sec);
	kc_client_wipe_response(c);
	return rc;
}

/* ---------------------------------------------------------------- node verdicts */

/* One node's last verdict for one endpoint. */
struct verdict {
	struct verdict *next;
	int64_t expires_ms;
	bool ok;
	char *endpoint;
	char *why;
	char node[];
};

#define NODE_BUCKETS 256u

struct ctl_node_cache {
	pthread_mutex_t lock;
	struct verdict *b[NODE_BUCKETS];
};

static unsigned node_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h % NODE_BUCKETS;
}

static void verdict_free(struct verdict *v)
{
	if (!v)
		return;
	free(v->endpoint);
	free(v->why);
	free(v);
}

int ctl_node_cache_new(struct ctl_node_cache **out)
{
	struct ctl_node_cache *nc = calloc(1, sizeof(*nc));

	*out = NULL;
	if (!nc || pthread_mutex_init(&nc->lock, NULL) != 0) {
		free(nc);
		return -ENOMEM;
	}
	*out = nc;
	return 0;
}

void ctl_node_cache_free(struct ctl_node_cache *nc)
{
	if (!nc)
		return;
	for (size_t i = 0; i < NODE_BUCKETS; i++) {
		struct verdict *v = nc->b[i], *next;

		for (; v; v = next) {
			next = v->next;
			verdict_free(v);
		}
	}
	pthread_mutex_destroy(&nc->lock);
	free(nc);
}

/* A fresh verdict for (node, endpoint): 1 ok, 0 refused (why filled), -1 none. */
static int verdict_get(struct ctl_node_cache *nc, const char *node, const char *endpoint,
		       int64_t now, char *why, size_t whylen)
{
	int r = -1;

	if (!nc)
		return -1;
	pthread_mutex_lock(&nc->lock);
	for (struct verdict *v = nc->b[node_hash(node)]; v; v = v->next) {
		if (strcmp(v->node, node) != 0)
			continue;
		if (v->expires_ms > now && strcmp(v->endpoint, endpoint) == 0) {
			r = v->ok ? 1 : 0;
			ctl_copy(why, whylen, v->why);
		}
		break;
	}
	pthread_mutex_unlock(&nc->lock);
	return r;
}

/* Replaces node's verdict (one per node: an endpoint change replaces it). */
static void verdict_put(struct ctl_node_cache *nc, const char *node, const char *endpoint,
			int64_t expires_ms, bool ok, const char *why)
{
	size_t len = strlen(node);
	struct verdict *v = calloc(1, sizeof(*v) + len + 1), **pp, *old = NULL;

	if (!nc || !v)
		goto fail;
	memcpy(v->node, node, len + 1);
	v->expires_ms = expires_ms;
	v->ok = ok;
	v->endpoint = strdup(endpoint);
	v->why = strdup(why ? why : "");
	if (!v->endpoint || !v->why)
		goto fail;
	pthread_mutex_lock(&nc->lock);
	for (pp = &nc->b[node_hash(node)]; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->node, node) == 0) {
			old = *pp;
			*pp = old->next;
			break;
		}
	}
	v->next = nc->b[node_hash(node)];
	nc->b[node_hash(node)] = v;
	pthread_mutex_unlock(&nc->lock);
	verdict_free(old);
	return;
fail:
	verdict_free(v);
}

/*
 * A Lease whose endpoint is not an address of its node (when the node lists
 * addresses) is not a helper we talk to: forget the endpoint, so the decision
 * sees no available helper. A Node we cannot read is not a reason to refuse.
 * The verdict is kept CTL_NODE_TTL_MS (a node's addresses rarely change, and
 * the channel still pins the helper's certificate), so polls do not GET it.
 */
static void check_endpoint(struct ctl_ctx *ctx, struct kc_client *c, struct ctl_obs *o,
			   const char *node)
{
	json_object *n = NULL;
	struct kc_status st;
	char path[512], why[512] = "";
	int v;

	kc_status_clear(&st);
	if (!o->endpoint[0])
		return;
	v = verdict_get(ctx->nodes, node, o->endpoint, o->now_ms, why, sizeof(why));
	if (v < 0) {
		if (kc_path(path, sizeof(path), &KC_RES_NODES, NULL, node, NULL, NULL) != 0 ||
		    kc_get(c, path, &n, &st) != 0) {
			LOG_DEBUG("msg=\"cannot read node\" pcp=%s/%s node=%s http=%ld", o->ns, o->name,
				  node, st.http);
			return;
		}
		v = ctl_endpoint_on_node(o->endpoint, n, why, sizeof(why)) ? 1 : 0;
		json_object_put(n);
		verdict_put(ctx->nodes, node, o->endpoint, o->now_ms + CTL_NODE_TTL_MS, v == 1, why);
	}
	if (v == 0) {
		LOG_WARN("msg=\"helper lease refused\" pcp=%s/%s node=%s endpoint=%s why=\"%s\"", o->ns,
			 o->name, node, o->endpoint, why);
		o->endpoint[0] = '\0';
		o->fingerprint[0] = '\0';
		o->lease_fresh = false;
	}
}

int ctl_gather_lease(struct ctl_ctx *ctx, struct kc_client *c, struct ctl_obs *o, const char *node)
{
	struct ctl_lease_view l;
	char name[CTL_NAME_MAX + 16];

	if (!node || !node[0])
		return 0;
	snprintf(name, sizeof(name), "pcp-helper-%s", node);
	/* From the Lease informer's records: a Lease renewed a moment ago and not
	 * seen yet only makes the decision wait for the next event or requeue. */
	if (!ctl_leases_get(ctx->leases, name, &l))
		return 0;
	o->lease_exists = true;
	o->lease_fresh = l.renew_ms > 0 && l.renew_ms + (int64_t)l.duration_seconds * 1000 > o->now_ms;
	ctl_copy(o->endpoint, sizeof(o->endpoint), l.endpoint);
	ctl_copy(o->fingerprint, sizeof(o->fingerprint), l.fingerprint);
	check_endpoint(ctx, c, o, node);
	return 0;
}
