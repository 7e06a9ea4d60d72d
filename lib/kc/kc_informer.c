/*
 * kc_informer.c - LIST+WATCH of one resource in its own thread.
 *
 * Loop: LIST (paginated, limit/continue) -> replace the cache, diff for
 * deletions -> WATCH from the list's resourceVersion with bookmarks and a
 * server-side timeout -> on a clean end, watch again from the last RV; on
 * 410 Gone (HTTP or an ERROR event) relist; on any other failure back off
 * (0.5 s doubling to 30 s, jittered) and watch again from the last RV.
 * The stop flag is checked by curl's progress callback (about once per
 * second) and by every backoff wait, so kc_informer_free returns within ~1 s.
 *
 * Two modes (kc.h): the cache mode keeps every object as a json-c tree in a
 * kc_cache (small caches: Leases, tests); the projection mode keeps nothing,
 * hands each object to the consumer's project() as it is parsed, one LIST
 * page at a time, and finds vanished objects by mark and sweep (an epoch per
 * complete LIST, the consumer sweeps what it did not see in it).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kc_internal.h"
#include "log.h"

#define KC_LIST_LIMIT "500"
#define KC_BACKOFF_MIN_MS 500
#define KC_BACKOFF_MAX_MS 30000
#define KC_WATCH_TIMEOUT_S 270 /* plus up to 60 s of jitter */

struct kc_informer {
	struct kc_config *cfg; /* borrowed */
	struct kc_client *c;
	struct kc_cache *cache;
	struct kc_watch_parser *wp;
	const struct kc_resource *res;
	char *ns, *label_selector, *field_selector;
	void (*on_event)(void *arg, enum kc_event_type type, json_object *obj);
	void *arg;
	int resync_seconds;
	int (*project)(void *arg, enum kc_event_type type, json_object *obj, uint64_t epoch);
	void (*sweep)(void *arg, uint64_t epoch);
	void (*resync)(void *arg);

	pthread_t thread;
	bool started;
	pthread_mutex_t lock; /* guards synced, and the cond waits */
	pthread_cond_t cond;  /* CLOCK_MONOTONIC */
	atomic_bool stop;
	bool synced;

	/* informer thread only */
	char rv[128];
	bool need_list;
	unsigned attempt;
	unsigned seed;
	unsigned events;
	int64_t next_resync_ms;
	uint64_t epoch; /* projection mode: of the current (or last complete) LIST */
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void deadline_ts(long ms, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Sleeps up to ms unless stopped; true when stopped. */
static bool sleep_or_stop(struct kc_informer *inf, long ms)
{
	struct timespec ts;

	deadline_ts(ms, &ts);
	pthread_mutex_lock(&inf->lock);
	while (!atomic_load(&inf->stop))
		if (pthread_cond_timedwait(&inf->cond, &inf->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&inf->lock);
	return atomic_load(&inf->stop);
}

static long next_backoff(struct kc_informer *inf)
{
	long d = KC_BACKOFF_MIN_MS;

	for (unsigned i = 0; i < inf->attempt && d < KC_BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > KC_BACKOFF_MAX_MS)
		d = KC_BACKOFF_MAX_MS;
	if (inf->attempt < 32)
		inf->attempt++;
	/* Full jitter over the upper half: [d/2, d]. */
	return d / 2 + (long)((unsigned)rand_r(&inf->seed) % (unsigned)(d / 2 + 1));
}

static void emit(struct kc_informer *inf, enum kc_event_type t, json_object *obj)
{
	if (inf->on_event)
		inf->on_event(inf->arg, t, obj);
}

static void set_rv(struct kc_informer *inf, json_object *obj)
{
	const char *rv = kc_json_rv(obj);

	if (rv && rv[0] && strlen(rv) < sizeof(inf->rv))
		snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
}

/* Items of a LIST lack apiVersion/kind; fill them so consumers (Events'
 * `regarding`) see whole objects. */
static void fill_type(const struct kc_resource *res, json_object *obj)
{
	char av[128];

	if (!json_object_is_type(obj, json_type_object))
		return;
	if (!kc_json_str(obj, "kind"))
		json_object_object_add(obj, "kind", json_object_new_string(res->kind));
	if (!kc_json_str(obj, "apiVersion")) {
		if (res->group && res->group[0])
			snprintf(av, sizeof(av), "%s/%s", res->group, res->version);
		else
			snprintf(av, sizeof(av), "%s", res->version);
		json_object_object_add(obj, "apiVersion", json_object_new_string(av));
	}
}

/* ------------------------------------------------------------ resync */

static void collect(void *arg, json_object *obj)
{
	json_object_array_add((json_object *)arg, json_object_get(obj));
}

static void maybe_resync(struct kc_informer *inf)
{
	json_object *all;

	if (inf->resync_seconds <= 0 || !inf->synced || mono_ms() < inf->next_resync_ms)
		return;
	inf->next_resync_ms = mono_ms() + (int64_t)inf->resync_seconds * 1000;
	if (inf->project) {
		if (inf->resync)
			inf->resync(inf->arg);
		return;
	}
	all = json_object_new_array();
	if (!all)
		return;
	kc_cache_foreach(inf->cache, collect, all);
	for (size_t i = 0; i < json_object_array_length(all) && !atomic_load(&inf->stop); i++)
		emit(inf, KC_MODIFIED, json_object_array_get_idx(all, i));
	json_object_put(all);
}

/* curl progress hook: stop flag, and periodic resync while a watch idles. */
static int should_abort(void *arg)
{
	struct kc_informer *inf = arg;

	if (atomic_load(&inf->stop))
		return 1;
	maybe_resync(inf);
	return 0;
}

/* ------------------------------------------------------------ list */

static int build_query(struct kc_informer *inf, char *q, size_t cap)
{
	int rc = 0;

	q[0] = '\0';
	if (inf->label_selector && inf->label_selector[0])
		rc = kc_query_add(q, cap, "labelSelector", inf->label_selector);
	if (!rc && inf->field_selector && inf->field_selector[0])
		rc = kc_query_add(q, cap, "fieldSelector", inf->field_selector);
	return rc;
}

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

		rc = build_query(inf, q, sizeof(q));
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

			fill_type(inf->res, it);
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

static void set_synced(struct kc_informer *inf)
{
	if (inf->synced)
		return;
	pthread_mutex_lock(&inf->lock);
	inf->synced = true;
	pthread_cond_broadcast(&inf->cond);
	pthread_mutex_unlock(&inf->lock);
	inf->next_resync_ms = mono_ms() + (int64_t)inf->resync_seconds * 1000;
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
	set_synced(inf);
	return 0;
}

static int relist(struct kc_informer *inf)
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
	set_synced(inf);
	for (size_t i = 0; i < n && !atomic_load(&inf->stop); i++)
		emit(inf, existed[i] ? KC_MODIFIED : KC_ADDED, json_object_array_get_idx(items, i));
	for (size_t i = 0; i < json_object_array_length(gone) && !atomic_load(&inf->stop); i++)
		emit(inf, KC_DELETED, json_object_array_get_idx(gone, i));
out:
	free(existed);
	kc_cache_free(fresh);
	json_object_put(gone);
	json_object_put(items);
	return rc;
}

/* ------------------------------------------------------------ watch */

static int on_watch_event(void *arg, enum kc_event_type type, json_object *obj)
{
	struct kc_informer *inf = arg;
	json_object *code;

	if (inf->project && (type == KC_ADDED || type == KC_MODIFIED || type == KC_DELETED)) {
		int rc;

		fill_type(inf->res, obj);
		rc = inf->project(inf->arg, type, obj, inf->epoch);
		if (rc)
			return rc; /* rv not advanced: the watch resumes before this event */
		set_rv(inf, obj);
		inf->events++;
		return 0;
	}
	switch (type) {
	case KC_ADDED:
	case KC_MODIFIED:
		fill_type(inf->res, obj);
		if (kc_cache_put(inf->cache, obj))
			return -ENOMEM;
		set_rv(inf, obj);
		inf->events++;
		emit(inf, type, obj);
		return 0;
	case KC_DELETED:
		fill_type(inf->res, obj);
		(void)kc_cache_delete(inf->cache, kc_json_str(obj, "metadata.namespace"),
				      kc_json_str(obj, "metadata.name"));
		set_rv(inf, obj);
		inf->events++;
		emit(inf, type, obj);
		return 0;
	case KC_BOOKMARK:
		set_rv(inf, obj);
		inf->events++;
		return 0;
	case KC_ERROR:
	default:
		code = kc_json_get(obj, "code");
		if ((code && json_object_get_int(code) == 410) ||
		    (kc_json_str(obj, "reason") && (strcmp(kc_json_str(obj, "reason"), "Expired") == 0 ||
						    strcmp(kc_json_str(obj, "reason"), "Gone") == 0))) {
			LOG_INFO("msg=\"watch expired, relisting\" resource=%s rv=%s",
				 inf->res->plural, inf->rv);
			inf->need_list = true;
			return -ESTALE;
		}
		LOG_WARN("msg=\"watch error event\" resource=%s code=%d reason=%s",
			 inf->res->plural, code ? json_object_get_int(code) : 0,
			 kc_json_str(obj, "reason") ? kc_json_str(obj, "reason") : "");
		return -EIO;
	}
}

static int on_watch_data(void *arg, const char *p, size_t n)
{
	struct kc_informer *inf = arg;

	return kc_watch_parser_feed(inf->wp, p, n, on_watch_event, inf);
}

static int watch_once(struct kc_informer *inf)
{
	char q[4096], path[8192], tmo[16];
	struct kc_status st;
	long tmo_s = KC_WATCH_TIMEOUT_S + (long)((unsigned)rand_r(&inf->seed) % 60u);
	int rc;

	snprintf(tmo, sizeof(tmo), "%ld", tmo_s);
	rc = build_query(inf, q, sizeof(q));
	if (!rc)
		rc = kc_query_add(q, sizeof(q), "watch", "true");
	if (!rc)
		rc = kc_query_add(q, sizeof(q), "resourceVersion", inf->rv);
	if (!rc)
		rc = kc_query_add(q, sizeof(q), "allowWatchBookmarks", "true");
	if (!rc)
		rc = kc_query_add(q, sizeof(q), "timeoutSeconds", tmo);
	if (!rc)
		rc = kc_path(path, sizeof(path), inf->res, inf->ns, NULL, NULL, q);
	if (rc)
		return rc;
	kc_watch_parser_reset(inf->wp);
	inf->events = 0;
	/* The server ends the watch after tmo_s; our deadline is a little later. */
	rc = kc_request_stream(inf->c, path, (tmo_s + 30) * 1000, on_watch_data, inf, &st);
	if (rc == -ESTALE)
		inf->need_list = true;
	if (rc && rc != -ESTALE && rc != -ECANCELED)
		LOG_WARN("msg=\"watch ended\" resource=%s http=%ld reason=%s err=%d detail=\"%s\" rv=%s",
			 inf->res->plural, st.http, st.reason, rc, st.message, inf->rv);
	return rc;
}

static void *informer_main(void *arg)
{
	struct kc_informer *inf = arg;

	inf->need_list = true;
	while (!atomic_load(&inf->stop)) {
		int rc;

		maybe_resync(inf);
		if (inf->need_list) {
			rc = relist(inf);
			if (rc) {
				if (rc != -ECANCELED)
					sleep_or_stop(inf, next_backoff(inf));
				continue;
			}
			inf->attempt = 0;
		}
		rc = watch_once(inf);
		if (atomic_load(&inf->stop))
			break;
		kc_metrics_watch_restart(inf->res->plural);
		if (rc == 0 || (rc == -ESTALE && inf->need_list)) {
			/* Clean end (server timeout) or relist: go on at once. */
			if (inf->events)
				inf->attempt = 0;
			continue;
		}
		if (inf->events)
			inf->attempt = 0; /* the watch was healthy before it broke */
		sleep_or_stop(inf, next_backoff(inf));
	}
	return NULL;
}

/* ------------------------------------------------------------ lifecycle */

static char *dup_opt(const char *s, bool *fail)
{
	char *d;

	if (!s || !s[0])
		return NULL;
	d = strdup(s);
	if (!d)
		*fail = true;
	return d;
}

int kc_informer_start(struct kc_config *cfg, const struct kc_informer_opts *opts,
		      struct kc_informer **out)
{
	struct kc_informer *inf = NULL;
	pthread_condattr_t ca;
	bool fail = false;
	int rc = -EINVAL;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!cfg || !opts || !opts->res)
		return -EINVAL;
	inf = calloc(1, sizeof(*inf));
	if (!inf)
		return -ENOMEM;
	inf->cfg = cfg;
	inf->res = opts->res;
	inf->on_event = opts->on_event;
	inf->arg = opts->arg;
	inf->resync_seconds = opts->resync_seconds;
	inf->project = opts->project;
	inf->sweep = opts->sweep;
	inf->resync = opts->resync;
	inf->seed = (unsigned)mono_ms() ^ (unsigned)(uintptr_t)inf;
	atomic_init(&inf->stop, false);
	inf->ns = dup_opt(opts->ns, &fail);
	inf->label_selector = dup_opt(opts->label_selector, &fail);
	inf->field_selector = dup_opt(opts->field_selector, &fail);
	rc = -ENOMEM;
	if (fail)
		goto fail_alloc;
	if (pthread_mutex_init(&inf->lock, NULL))
		goto fail_alloc;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&inf->cond, &ca)) {
		pthread_condattr_destroy(&ca);
		pthread_mutex_destroy(&inf->lock);
		goto fail_alloc;
	}
	pthread_condattr_destroy(&ca);
	*out = inf; /* from here kc_informer_free cleans up */
	rc = inf->project ? 0 : kc_cache_new(&inf->cache);
	if (!rc)
		rc = kc_watch_parser_new(KC_MAX_WATCH_LINE, &inf->wp);
	if (!rc)
		rc = kc_client_new(cfg, &inf->c);
	if (rc)
		goto fail;
	kc_client_set_abort(inf->c, should_abort, inf);
	if (pthread_create(&inf->thread, NULL, informer_main, inf)) {
		rc = -EAGAIN;
		goto fail;
	}
	inf->started = true;
	return 0;
fail:
	kc_informer_free(inf);
	*out = NULL;
	return rc;
fail_alloc:
	free(inf->ns);
	free(inf->label_selector);
	free(inf->field_selector);
	free(inf);
	return rc;
}

void kc_informer_free(struct kc_informer *inf)
{
	if (!inf)
		return;
	pthread_mutex_lock(&inf->lock);
	atomic_store(&inf->stop, true);
	pthread_cond_broadcast(&inf->cond);
	pthread_mutex_unlock(&inf->lock);
	if (inf->started)
		pthread_join(inf->thread, NULL);
	kc_client_free(inf->c);
	kc_watch_parser_free(inf->wp);
	kc_cache_free(inf->cache);
	pthread_cond_destroy(&inf->cond);
	pthread_mutex_destroy(&inf->lock);
	free(inf->ns);
	free(inf->label_selector);
	free(inf->field_selector);
	free(inf);
}

bool kc_informer_synced(struct kc_informer *inf)
{
	bool s;

	if (!inf)
		return false;
	pthread_mutex_lock(&inf->lock);
	s = inf->synced;
	pthread_mutex_unlock(&inf->lock);
	return s;
}

int kc_informer_wait_synced(struct kc_informer *inf, long timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	if (!inf)
		return -EINVAL;
	deadline_ts(timeout_ms > 0 ? timeout_ms : 0, &ts);
	pthread_mutex_lock(&inf->lock);
	while (!inf->synced && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&inf->cond, &inf->lock, &ts);
	rc = inf->synced ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&inf->lock);
	return rc;
}

struct kc_cache *kc_informer_cache(struct kc_informer *inf)
{
	return inf ? inf->cache : NULL;
}
