/*
 * kc_informer_list.c - an informer's LIST (see kc_informer_int.h): all
 * pages (limit/continue; an expired continue token starts the list over,
 * at most 3 times), then
 *   - cache mode: the items replace the cache, diffed against it so that
 *     on_event sees what was added, modified and deleted;
 *   - projection mode: each item goes to project() as its page is parsed,
 *     tagged with the epoch of this LIST (a new one per list, and per
 *     restart), and sweep(epoch) removes what the consumer did not see in
 *     it (mark and sweep, kc.h): no copy of the objects is ever kept.
 * Runs on the informer thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_informer_int.h"
#include "kc_internal.h"
#include "log.h"

/*
 * All pages: into *items (cache mode), or handed to project() page by page
 * with a new epoch (projection mode, *items stays NULL). The list's
 * resourceVersion into rv.
 */
static int list_all(struct kc_informer *inf, json_object **items, char *rv, size_t rvcap)
{
	char q[4096], path[8192], cont[4096] = "";
	json_object *all = NULL, *page = NULL;
	struct kc_status st;
	int rc, restarts = 0;

	*items = NULL;
	if (inf->project)
		inf->epoch++;
	else if (!(all = json_object_new_array()))
		return -ENOMEM;
	for (;;) {
		const char *next, *prv;
		json_object *arr;

		rc = kc_informer_build_query(inf, q, sizeof(q));
		if (!rc)
			rc = kc_query_add(q, sizeof(q), "limit", KC_LIST_LIMIT);
		if (!rc && cont[0])
			rc = kc_query_add(q, sizeof(q), "continue", cont);
		if (!rc)
			rc = kc_path(path, sizeof(path), inf->res, inf->ns, NULL, NULL, q);
		if (rc)
			goto out;
		rc = kc_get(inf->c, path, &page, &st);
		if (rc == -ESTALE && cont[0] && restarts++ < 3) {
			/* The continue token expired: start the list over. */
			LOG_INFO("msg=\"list continue token expired, restarting list\" resource=%s",
				 inf->res->plural);
			cont[0] = '\0';
			if (inf->project) {
				inf->epoch++; /* what the first pages handed over is swept unless listed again */
				continue;
			}
			json_object_put(all);
			all = json_object_new_array();
			if (!all) {
				rc = -ENOMEM;
				goto out;
			}
			continue;
		}
		if (rc) {
			LOG_WARN("msg=\"list failed\" resource=%s http=%ld reason=%s err=%d detail=\"%s\"",
				 inf->res->plural, st.http, st.reason, rc, st.message);
			goto out;
		}
		arr = kc_json_get(page, "items");
		if (!page || (arr && !json_object_is_type(arr, json_type_array))) {
			rc = -EBADMSG;
			goto out;
		}
		for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
			json_object *it = json_object_array_get_idx(arr, i);

			kc_informer_fill_type(inf->res, it);
			if (inf->project) {
				rc = inf->project(inf->arg, KC_ADDED, it, inf->epoch);
				if (rc)
					goto out;
				continue;
			}
			if (json_object_array_add(all, json_object_get(it))) {
				rc = -ENOMEM;
				goto out;
			}
		}
		prv = kc_json_str(page, "metadata.resourceVersion");
		if (prv)
			snprintf(rv, rvcap, "%s", prv);
		next = kc_json_str(page, "metadata.continue");
		if (!next || !next[0])
			break;
		if (strlen(next) >= sizeof(cont)) {
			rc = -ENAMETOOLONG;
			goto out;
		}
		snprintf(cont, sizeof(cont), "%s", next);
		json_object_put(page);
		page = NULL;
		if (atomic_load(&inf->stop)) {
			rc = -ECANCELED;
			goto out;
		}
	}
	*items = all;
	all = NULL;
	rc = 0;
out:
	json_object_put(page);
	json_object_put(all);
	return rc;
}

struct diff_ctx {
	struct kc_cache *fresh;
	json_object *gone;
};

static void find_gone(void *arg, json_object *obj)
{
	struct diff_ctx *d = arg;
	json_object *o = kc_cache_get(d->fresh, kc_json_str(obj, "metadata.namespace"),
				      kc_json_str(obj, "metadata.name"));

	if (!o)
		json_object_array_add(d->gone, json_object_get(obj));
	json_object_put(o);
}

/* Projection mode: the pages went to project() already; sweep what vanished. */
static int relist_projected(struct kc_informer *inf)
{
	json_object *none = NULL;
	char rv[sizeof(inf->rv)] = "";
	int rc;

	kc_metrics_relist(inf->res->plural);
	rc = list_all(inf, &none, rv, sizeof(rv));
	json_object_put(none);
	if (rc)
		return rc;
	if (inf->sweep)
		inf->sweep(inf->arg, inf->epoch);
	snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
	inf->need_list = false;
	LOG_INFO("msg=\"listed\" resource=%s ns=%s epoch=%llu rv=%s", inf->res->plural,
		 inf->ns ? inf->ns : "", (unsigned long long)inf->epoch, inf->rv);
	kc_informer_set_synced(inf);
	return 0;
}

int kc_informer_relist(struct kc_informer *inf)
{
	json_object *items = NULL, *gone = NULL;
	struct kc_cache *fresh = NULL;
	struct diff_ctx d;
	char rv[sizeof(inf->rv)] = "";
	bool *existed = NULL;
	size_t n;
	int rc;

	if (inf->project)
		return relist_projected(inf);
	kc_metrics_relist(inf->res->plural);
	rc = list_all(inf, &items, rv, sizeof(rv));
	if (rc)
		goto out;
	n = json_object_array_length(items);
	rc = -ENOMEM;
	gone = json_object_new_array();
	existed = calloc(n ? n : 1, sizeof(*existed));
	if (!gone || !existed || kc_cache_new(&fresh))
		goto out;
	for (size_t i = 0; i < n; i++) {
		json_object *it = json_object_array_get_idx(items, i);
		json_object *old = kc_cache_get(inf->cache, kc_json_str(it, "metadata.namespace"),
						kc_json_str(it, "metadata.name"));

		existed[i] = old != NULL;
		json_object_put(old);
		(void)kc_cache_put(fresh, it);
	}
	d.fresh = fresh;
	d.gone = gone;
	kc_cache_foreach(inf->cache, find_gone, &d);
	rc = kc_cache_replace(inf->cache, items);
	if (rc)
		goto out;
	snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
	inf->need_list = false;
	LOG_INFO("msg=\"listed\" resource=%s ns=%s items=%zu deleted=%zu rv=%s", inf->res->plural,
		 inf->ns ? inf->ns : "", n, json_object_array_length(gone), inf->rv);
	kc_informer_set_synced(inf);
	for (size_t i = 0; i < n && !atomic_load(&inf->stop); i++)
		kc_informer_emit(inf, existed[i] ? KC_MODIFIED : KC_ADDED, json_object_array_get_idx(items, i));
	for (size_t i = 0; i < json_object_array_length(gone) && !atomic_load(&inf->stop); i++)
		kc_informer_emit(inf, KC_DELETED, json_object_array_get_idx(gone, i));
out:
	free(existed);
	kc_cache_free(fresh);
	json_object_put(gone);
	json_object_put(items);
	return rc;
}
