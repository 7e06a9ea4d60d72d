/*
 * kc_informer_int.h - shared between kc_informer.c (the thread: watch,
 * backoff, resync, lifecycle) and kc_informer_list.c (the LIST: pages,
 * the cache mode's diff, the projection mode's epochs and sweep) only.
 *
 * Ownership: struct kc_informer is kc_informer.c's (kc_informer_start /
 * kc_informer_free); the fields under "informer thread only" are touched by
 * the informer thread alone, so the list code takes no lock but `lock`
 * for synced.
 */
#ifndef PCP_KC_INFORMER_INT_H
#define PCP_KC_INFORMER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kc.h"

/*
 * Items per LIST page. Each page is parsed whole into a json-c tree before
 * its items are projected: ~37 KiB per kwok pod, so 500 a page made a
 * transient ~19 MiB, the controller's VmHWM at 10,000 pods; 100 keep it
 * near 4 MiB for a few more requests at (re)list.
 */
#define KC_LIST_LIMIT "100"

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

/* CLOCK_MONOTONIC in ms. */
int64_t kc_informer_mono_ms(void);
/* on_event (cache mode), if set. */
void kc_informer_emit(struct kc_informer *inf, enum kc_event_type t, json_object *obj);
/* Items of a LIST lack apiVersion/kind: filled in from inf->res. */
void kc_informer_fill_type(const struct kc_resource *res, json_object *obj);
/* The selectors as a query string into q. 0 or -ENAMETOOLONG. */
int kc_informer_build_query(struct kc_informer *inf, char *q, size_t cap);
/* Synced (once): wakes kc_informer_wait_synced, starts the resync clock. */
void kc_informer_set_synced(struct kc_informer *inf);

/* kc_informer_list.c: LIST everything again, into the cache (cache mode:
 * on_event for what changed and vanished) or through project() (projection
 * mode: a new epoch, then sweep); then synced. 0 or negative errno. */
int kc_informer_relist(struct kc_informer *inf);

#endif
