/*
 * ctl_gather.h - gathering one PodCheckpoint's observation (ctl_gather.c).
 *
 * Each call fills its part of `o` (borrowed) from the caches of `ctx` or
 * with `c` (the worker's client) and returns 0 or a negative errno; what
 * was not found is an observation (pod_exists false, secret_exists false,
 * lease_exists false), not an error. ctl_gather_secret hands back the
 * decoded tls.crt PEM in *pem (free() it; public data) and wipes the rest
 * of the Secret; it never reads tls.key.
 */
#ifndef PCP_CTL_GATHER_H
#define PCP_CTL_GATHER_H

#include <stdbool.h>

#include "ctl_io.h"

#define CTL_NODE_TTL_MS 30000L /* how long a Node's verdict for one endpoint is reused */

/* The endpoint-on-node verdicts (owned by struct ctl_ctx). */
int ctl_node_cache_new(struct ctl_node_cache **out);
void ctl_node_cache_free(struct ctl_node_cache *nc);

/* The pod spec.podName names: from the cache, or live (GET) when `live`. */
int ctl_gather_pod(struct ctl_ctx *ctx, struct kc_client *c, struct ctl_obs *o, bool live);
/* The encryption Secret: existence, type, tls.crt parsed and checked. */
int ctl_gather_secret(struct ctl_ctx *ctx, struct kc_client *c, struct ctl_obs *o, char **pem);
/* Lease pcp-helper-<node> from the Lease cache: freshness, endpoint (only an
 * address of that node, checked against a Node GET kept CTL_NODE_TTL_MS), pin. */
int ctl_gather_lease(struct ctl_ctx *ctx, struct kc_client *c, struct ctl_obs *o, const char *node);

#endif
