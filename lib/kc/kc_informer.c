/*
 * kc_informer.c - LIST+WATCH of one resource in its own thread: the loop,
 * the watch, backoff, resync and the lifecycle. The LIST (pages, the cache
 * mode's diff, the projection mode's epochs): kc_informer_list.c.
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

#include "kc_informer_int.h"
#include "kc_internal.h"
#include "log.h"

#define KC_BACKOFF_MIN_MS 500
#define KC_BACKOFF_MAX_MS 30000
#define KC_WATCH_TIMEOUT_S 270 /* plus up to 60 s of jitter */

int64_t kc_informer_mono_ms(void)
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

void kc_informer_emit(struct kc_informer *inf, enum kc_event_type t, json_object *obj)
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
void kc_informer_fill_type(const struct kc_resource *res, json_object *obj)
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

	if (inf->resync_seconds <= 0 || !inf->synced || kc_informer_mono_ms() < inf->next_resync_ms)
		return;
	inf->next_resync_ms = kc_informer_mono_ms() + (int64_t)inf->resync_seconds * 1000;
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
		kc_informer_emit(inf, KC_MODIFIED, json_object_array_get_idx(all, i));
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

/* ------------------------------------------------------------ shared with kc_informer_list.c */

int kc_informer_build_query(struct kc_informer *inf, char *q, size_t cap)
{
	int rc = 0;

	q[0] = '\0';
	if (inf->label_selector && inf->label_selector[0])
		rc = kc_query_add(q, cap, "labelSelector", inf->label_selector);
	if (!rc && inf->field_selector && inf->field_selector[0])
		rc = kc_query_add(q, cap, "fieldSelector", inf->field_selector);
	return rc;
}

void kc_informer_set_synced(struct kc_informer *inf)
{
	if (inf->synced)
		return;
	pthread_mutex_lock(&inf->lock);
	inf->synced = true;
	pthread_cond_broadcast(&inf->cond);
	pthread_mutex_unlock(&inf->lock);
	inf->next_resync_ms = kc_informer_mono_ms() + (int64_t)inf->resync_seconds * 1000;
}

/* ------------------------------------------------------------ watch */

static int on_watch_event(void *arg, enum kc_event_type type, json_object *obj)
{
	struct kc_informer *inf = arg;
	json_object *code;

	if (inf->project && (type == KC_ADDED || type == KC_MODIFIED || type == KC_DELETED)) {
		int rc;

		kc_informer_fill_type(inf->res, obj);
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
		kc_informer_fill_type(inf->res, obj);
		if (kc_cache_put(inf->cache, obj))
			return -ENOMEM;
		set_rv(inf, obj);
		inf->events++;
		kc_informer_emit(inf, type, obj);
		return 0;
	case KC_DELETED:
		kc_informer_fill_type(inf->res, obj);
		(void)kc_cache_delete(inf->cache, kc_json_str(obj, "metadata.namespace"),
				      kc_json_str(obj, "metadata.name"));
		set_rv(inf, obj);
		inf->events++;
		kc_informer_emit(inf, type, obj);
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
	rc = kc_informer_build_query(inf, q, sizeof(q));
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
			rc = kc_informer_relist(inf);
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
	inf->seed = (unsigned)kc_informer_mono_ms() ^ (unsigned)(uintptr_t)inf;
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
