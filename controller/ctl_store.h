/*
 * ctl_store.h - the controller's compact cache (prefix ctl_store_).
 *
 * What the decisions read about pods and PodCheckpoints, kept as small
 * records instead of json-c trees (the informers run in projection mode,
 * kc.h, and hand every object to ctl_store_*_put, then free the tree):
 *
 *   - a pod record: uid (16 bytes when a canonical UUID), deletion, the
 *     names of the containers that can be checkpointed (spec.containers and
 *     native sidecars), node name and phase interned (ctl_intern.h), one
 *     allocation (~48 B, ~146 B with its map entry);
 *   - a PodCheckpoint that is not terminal: the object as compact JSON text
 *     with what no decision reads stripped (managedFields, the last-applied
 *     annotation, apiVersion/kind, put back on reading), one slab slot,
 *     parsed again for the one reconcile that needs it (ctl_store_pcp_get),
 *     so the writers that need the object (the status guard, the condition
 *     merge, the finalizer patch, the Event's involvedObject) keep working
 *     on the real thing; it is text because any of its fields can still be
 *     read and written, and there are only as many as are in flight;
 *   - a terminal PodCheckpoint: a packed typed record (ctl_store_int.h) of
 *     only what TTL expiry, deletion (finalizer, artifact) and the Event
 *     read: uid, resourceVersion, phase, podName, node, completion and Ready
 *     (status, reason, transition time), the artifact path (only its suffix
 *     when it has the helper's layout), the finalizers, deletionTimestamp,
 *     deletionPolicy and the TTL (~100 B in a slab slot, ~190 B with its map entry);
 *     ctl_store_pcp_get builds the same json-c tree from it as from the
 *     object for those fields. A terminal CR that does not fit the packed
 *     form (255+ finalizers) stays text, with its status stripped to those
 *     fields;
 *   - an index "ns/podName" -> the CRs naming that pod that are not
 *     terminal, each with what the serialisation rule reads (struct
 *     ctl_other): a pod event wakes only that pod's CRs, a terminal CR only
 *     its siblings, the pre-dispatch gather reads the siblings without
 *     walking every CR.
 *
 * Every map is split into 16 shards, each under its own mutex, held only for
 * a lookup or an update (never across I/O or a callback into the queue
 * except ctl_store_pcp_foreach_key, whose callback must not call back into
 * the store). Writers are the informer threads (one per map); readers are
 * the workers. Records carry the epoch of the LIST they were last seen in
 * (mark and sweep, kc.h).
 *
 * Ownership: the store owns its records; every getter copies out (or hands
 * back a new json-c tree the caller puts). ctl_store_free accepts NULL.
 * Pure: no I/O, no clock.
 */
#ifndef PCP_CTL_STORE_H
#define PCP_CTL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "ctl_reconcile.h"

struct ctl_store;

int ctl_store_new(struct ctl_store **out);
void ctl_store_free(struct ctl_store *s);

/* Called for every record a sweep removed (after the shard locks are released). */
typedef void (*ctl_store_gone_fn)(void *arg, const char *ns, const char *name, const char *uid,
				  const char *pod);

/* ---------------------------------------------------------------- pods */

/* Stores (replaces) the record of pod (borrowed). 0, -EINVAL (no name), -ENOMEM. */
int ctl_store_pod_put(struct ctl_store *s, json_object *pod, uint64_t epoch);
/* Removes ns/name; 0 or -ENOENT. */
int ctl_store_pod_delete(struct ctl_store *s, const char *ns, const char *name);
/* Removes every pod not put with `epoch`, calling fn (uid and pod NULL). */
void ctl_store_pod_sweep(struct ctl_store *s, uint64_t epoch, ctl_store_gone_fn fn, void *arg);
/*
 * Fills o's pod fields (pod_exists, pod_uid, pod_phase, pod_node,
 * pod_deleting, pod_containers) from the record of ns/name, or clears them
 * (pod_exists false) when there is none. True when found.
 */
bool ctl_store_pod_obs(struct ctl_store *s, const char *ns, const char *name, struct ctl_obs *o);
size_t ctl_store_pod_count(struct ctl_store *s);

/* ---------------------------------------------------------------- PodCheckpoints */

/* What a put or delete changed, for the caller's wake-ups. */
struct ctl_store_change {
	bool terminal;              /* the CR (as now stored) is Succeeded or Failed */
	char uid[CTL_UID_MAX];
	char pod[CTL_NAME_MAX];     /* spec.podName, "" when none */
};

/*
 * Stores (replaces) the record of pcp (borrowed; stripped in place of what
 * is not kept). 0, -EINVAL (no namespace/name), -ENOMEM. *chg (may be NULL)
 * describes the stored CR.
 */
int ctl_store_pcp_put(struct ctl_store *s, json_object *pcp, uint64_t epoch,
		      struct ctl_store_change *chg);
/* Removes ns/name; 0 (then *chg describes what was removed) or -ENOENT. */
int ctl_store_pcp_delete(struct ctl_store *s, const char *ns, const char *name,
			 struct ctl_store_change *chg);
/* Removes every CR not put with `epoch`, calling fn with its uid and pod. */
void ctl_store_pcp_sweep(struct ctl_store *s, uint64_t epoch, ctl_store_gone_fn fn, void *arg);
/* A new json-c tree of the stored CR (json_object_put it), or NULL when absent. */
json_object *ctl_store_pcp_get(struct ctl_store *s, const char *ns, const char *name);
/* Calls fn(arg, "ns/name") for every stored CR, one shard lock at a time. */
void ctl_store_pcp_foreach_key(struct ctl_store *s, void (*fn)(void *arg, const char *key),
			       void *arg);
size_t ctl_store_pcp_count(struct ctl_store *s);
/* Bytes the CR records' slabs have mapped outside the malloc heap (ctl_slab.h). */
size_t ctl_store_mapped_bytes(struct ctl_store *s);
/* Bytes held by CR records (texts and packed records, without map entries). */
size_t ctl_store_pcp_bytes(struct ctl_store *s);

/* ---------------------------------------------------------------- the pod -> CRs index */

/*
 * Calls fn(arg, "ns/name") for every non-terminal CR naming pod ns/pod,
 * except `self` (NULL: none). The names are copied out under the shard lock
 * and fn runs after it is released. Returns how many.
 */
size_t ctl_store_wake_pod(struct ctl_store *s, const char *ns, const char *pod, const char *self,
			  void (*fn)(void *arg, const char *key), void *arg);
/*
 * The non-terminal CRs naming pod ns/pod except `self`, into others[0..cap)
 * (names copied into names[i], others[i].name points there). Returns how many.
 */
size_t ctl_store_siblings(struct ctl_store *s, const char *ns, const char *pod, const char *self,
			  struct ctl_other *others, char (*names)[CTL_NAME_MAX], size_t cap);

#endif
