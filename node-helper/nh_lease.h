/*
 * nh_lease.h - the helper's heartbeat: Lease pcp-helper-<node> in the
 * operator namespace, renewed every duration/3 (retried after 1 s on
 * failure) by its own thread with its own kc_client, carrying the
 * annotations the controller needs to find and pin this helper:
 *   checkpointing.dev/endpoint: wss://<ip>:<port>
 *   checkpointing.dev/cert-sha256: <hex>
 *   checkpointing.dev/node: <node>
 * and label app.kubernetes.io/component: node-helper (set by a merge patch
 * after the first renewal, since kc_lease_renew carries no labels).
 */
#ifndef PCP_NH_LEASE_H
#define PCP_NH_LEASE_H

#include <json-c/json.h>

struct kc_config;

struct nh_lease_opts {
	struct kc_config *cfg;   /* borrowed, outlives the lease thread */
	const char *ns;
	const char *node;
	const char *endpoint;    /* "wss://10.0.0.5:10443" */
	const char *fingerprint; /* serving certificate SHA-256, hex */
	long duration_seconds;
};

struct nh_lease;

/* Copies opts and starts the thread. */
int nh_lease_start(const struct nh_lease_opts *opts, struct nh_lease **out);
/* Stops the thread (within the kc request deadline) and frees. NULL ok. */
void nh_lease_stop(struct nh_lease *l);

/* "pcp-helper-<node>" into buf: 0 or -ENAMETOOLONG. */
int nh_lease_name(const char *node, char *buf, size_t cap);
/* The annotations object (new reference). */
int nh_lease_annotations(const char *endpoint, const char *fingerprint, const char *node,
			 json_object **out);

#endif
