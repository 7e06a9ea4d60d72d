/*
 * ctl_leases.h - the helpers' Leases as small typed records (prefix
 * ctl_leases_), fed by the Lease informer in projection mode (kc.h): what
 * the decisions (ctl_gather.c) and the helpers metric (ctl_metrics.c) read
 * of a Lease, and nothing else.
 *
 * Why not the informer's json-c cache: a helper renews its Lease every
 * duration/3, so at 50 nodes the cache re-allocated a tree 5 times a second,
 * wherever malloc found room, and each live tree pinned heap pages among
 * free ones. A record is allocated once per Lease and updated in place.
 *
 * A ctl_smap by Lease name (one namespace: the informer's); a shard lock
 * held for one lookup or update. Ownership: the table owns its records;
 * ctl_leases_get copies one out. Every function accepts a NULL table.
 */
#ifndef PCP_CTL_LEASES_H
#define PCP_CTL_LEASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "ctl_reconcile.h"
#include "kc.h"

#define CTL_LEASE_ENDPOINT_ANN "checkpointing.dev/endpoint"
#define CTL_LEASE_CERT_ANN "checkpointing.dev/cert-sha256"

struct ctl_leases;

/* A copy of one Lease's record. */
struct ctl_lease_view {
	int64_t renew_ms;          /* spec.renewTime, 0 when unset or malformed */
	long duration_seconds;     /* spec.leaseDurationSeconds */
	char endpoint[CTL_ENDPOINT_MAX]; /* the annotations (truncated), "" when absent */
	char fingerprint[65];
};

int ctl_leases_new(struct ctl_leases **out);
void ctl_leases_free(struct ctl_leases *l);
size_t ctl_leases_count(struct ctl_leases *l);

/* The informer's projection callbacks (arg: the table). */
int ctl_leases_project(void *arg, enum kc_event_type type, json_object *obj, uint64_t epoch);
void ctl_leases_sweep(void *arg, uint64_t epoch);

/* Lease `name`'s record into *out: true, or false (zeroed) when there is none. */
bool ctl_leases_get(struct ctl_leases *l, const char *name, struct ctl_lease_view *out);
/* Leases named prefix* renewed within their duration at now_ms. */
int ctl_leases_count_fresh(struct ctl_leases *l, const char *prefix, int64_t now_ms);

#endif
