/*
 * nh_journal.c - job records on disk (one JSON file each), the in-memory
 * summary table and the pruning of finished records. See nh_journal.h; the
 * record's JSON form is in nh_jrecord.c.
 */
#include "nh_journal.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dbuf.h"
#include "fsutil.h"
#include "kc.h"
#include "log.h"
#include "nh_util.h"

#define NH_JOURNAL_MAX_FILE (1024u * 1024u)
/* Between two batches a prune lets the lock's waiters in, waiting for them
 * at most this long (a stream of callers cannot stall it for longer). */
#define NH_PRUNE_YIELD_MS 50

/* ---------------------------------------------------------------- table */

struct nh_jentry {
	char uid[64];
	enum nh_jstate state;
	int64_t done_ms; /* completionTime of a done/failed record, 0 unknown */
	struct ch_state st;
	bool queued;
	bool settled; /* done, or failed with final_written (nh_prune_policy) */
	bool drop;    /* prune: marked to go */
	bool gone;    /* prune: its file unlinked in this batch */
};

struct nh_journal {
	char dir[4096]; /* <state-dir>/jobs */
	pthread_mutex_t lock; /* taken with nh_lock, given back with nh_unlock */
	atomic_uint waiting;  /* threads in nh_lock not holding the lock yet */
	pthread_cond_t turn;  /* a prune between batches waits here for them */
	bool pruning;         /* a prune is running (under lock) */
	struct nh_jentry *v;
	size_t n, cap;
	nh_journal_fault_fn fault;
	void *fault_arg;
	nh_journal_prune_fault_fn prune_fault;
	void *prune_fault_arg;
};

void nh_journal_set_fault(struct nh_journal *j, nh_journal_fault_fn fn, void *arg)
{
	j->fault = fn;
	j->fault_arg = arg;
}

void nh_journal_set_prune_fault(struct nh_journal *j, nh_journal_prune_fault_fn fn, void *arg)
{
	j->prune_fault = fn;
	j->prune_fault_arg = arg;
}

int nh_journal_path(const char *state_dir, const char *uid, char *buf, size_t cap)
{
	int n;

	if (!nh_safe_segment(uid))
		return -EINVAL;
	n = snprintf(buf, cap, "%s/jobs/%s.json", state_dir, uid);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return 0;
}

static int nh_file_path(const struct nh_journal *j, const char *uid, char *buf, size_t cap)
{
	int n;

	if (!nh_safe_segment(uid))
		return -EINVAL;
	n = snprintf(buf, cap, "%s/%s.json", j->dir, uid);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * Every user of the table locks through these two: nh_lock counts the
 * threads waiting for the lock, so that a prune can hand the lock to them
 * between its batches (nh_prune_yield), and nh_unlock tells the prune when
 * one of them is done.
 */
static void nh_lock(struct nh_journal *j)
{
	atomic_fetch_add(&j->waiting, 1);
	pthread_mutex_lock(&j->lock);
	atomic_fetch_sub(&j->waiting, 1);
}

static void nh_unlock(struct nh_journal *j)
{
	if (j->pruning)
		pthread_cond_signal(&j->turn);
	pthread_mutex_unlock(&j->lock);
}

/* Caller holds the lock. */
static struct nh_jentry *nh_find(struct nh_journal *j, const char *uid)
{
	for (size_t i = 0; i < j->n; i++)
		if (strcmp(j->v[i].uid, uid) == 0)
			return &j->v[i];
	return NULL;
}

/* Caller holds the lock. */
static int nh_upsert(struct nh_journal *j, const struct nh_record *r)
{
	struct nh_jentry *e = nh_find(j, r->job.uid);

	if (!e) {
		if (j->n == j->cap) {
			size_t ncap = j->cap ? j->cap * 2 : 16;
			struct nh_jentry *nv = realloc(j->v, ncap * sizeof(*nv));
			if (!nv)
				return -ENOMEM;
			j->v = nv;
			j->cap = ncap;
		}
		e = &j->v[j->n++];
		memset(e, 0, sizeof(*e));
		nh_strlcpy(e->uid, r->job.uid, sizeof(e->uid));
	}
	e->drop = false; /* written during a prune: kept until the next one */
	e->state = r->state;
	e->settled = r->state == NH_J_DONE || (r->state == NH_J_FAILED && r->final_written);
	e->done_ms = 0;
	if ((r->state == NH_J_DONE || r->state == NH_J_FAILED) && r->completion_time[0] &&
	    kc_time_parse(r->completion_time, &e->done_ms) != 0)
		e->done_ms = 0;
	nh_record_to_ch_state(r, &e->st);
	return 0;
}

static int nh_load_file(struct nh_journal *j, const char *path, struct nh_record *r)
{
	char *text = NULL, err[160];
	json_object *obj = NULL;
	int rc;

	rc = fsu_read_file(path, NH_JOURNAL_MAX_FILE, &text, NULL);
	if (rc)
		goto out;
	obj = json_tokener_parse(text);
	if (!obj) {
		rc = -EBADMSG;
		goto out;
	}
	rc = nh_record_from_json(obj, r, err, sizeof(err));
	if (rc) {
		LOG_WARN("msg=\"journal record unreadable\" path=%s err=\"%s\"", path, err);
		goto out;
	}
out:
	(void)j;
	json_object_put(obj);
	free(text);
	return rc;
}

int nh_journal_open(const char *state_dir, struct nh_journal **out)
{
	struct nh_journal *j = NULL;
	struct nh_record *r = NULL;
	DIR *d = NULL;
	struct dirent *de;
	int rc = 0, n;

	*out = NULL;
	j = calloc(1, sizeof(*j));
	r = malloc(sizeof(*r));
	if (!j || !r) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_init(&j->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&j->turn, &ca);
		pthread_condattr_destroy(&ca);
	}
	atomic_init(&j->waiting, 0);
	n = snprintf(j->dir, sizeof(j->dir), "%s/jobs", state_dir);
	if (n < 0 || (size_t)n >= sizeof(j->dir)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	rc = fsu_mkdir_p(j->dir, 0700);
	if (rc)
		goto out;
	d = opendir(j->dir);
	if (!d) {
		rc = -errno;
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		char path[4096 + 300], bad[4096 + 310];
		size_t len = strlen(de->d_name);
		if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		n = snprintf(path, sizeof(path), "%s/%s", j->dir, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path))
			continue;
		if (nh_load_file(j, path, r) != 0 ||
		    strncmp(de->d_name, r->job.uid, len - 5) != 0 || strlen(r->job.uid) != len - 5) {
			snprintf(bad, sizeof(bad), "%s.bad", path);
			LOG_WARN("msg=\"journal record skipped\" path=%s moved_to=%s", path, bad);
			rename(path, bad);
			continue;
		}
		rc = nh_upsert(j, r);
		if (rc)
			goto out;
	}
	LOG_INFO("msg=\"journal loaded\" dir=%s jobs=%zu", j->dir, j->n);
	*out = j;
	j = NULL;
out:
	if (d)
		closedir(d);
	free(r);
	nh_journal_free(j);
	return rc;
}

void nh_journal_free(struct nh_journal *j)
{
	if (!j)
		return;
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->turn);
	free(j->v);
	free(j);
}

int nh_journal_save(struct nh_journal *j, const struct nh_record *r)
{
	char path[4096 + 80];
	struct dbuf text;
	int rc;

	dbuf_init(&text, NH_JOURNAL_MAX_FILE);
	rc = nh_file_path(j, r->job.uid, path, sizeof(path));
	if (rc)
		goto out;
	if (j->fault) {
		rc = j->fault(j->fault_arg, r);
		if (rc)
			goto out;
	}
	rc = nh_record_to_text(r, &text); /* the JSON of nh_record_to_json, without the tree */
	if (rc)
		goto out;
	rc = fsu_write_atomic(path, text.data, text.len);
	if (rc) {
		LOG_ERROR("msg=\"journal write failed\" pcp=%s/%s uid=%s state=%s err=%d",
			  r->job.ns, r->job.name, r->job.uid, nh_jstate_name(r->state), rc);
		goto out;
	}
	nh_lock(j);
	rc = nh_upsert(j, r);
	nh_unlock(j);
out:
	dbuf_cleanup(&text);
	return rc;
}

int nh_journal_get(struct nh_journal *j, const char *uid, struct nh_record *r)
{
	char path[4096 + 80];
	int rc;

	rc = nh_file_path(j, uid, path, sizeof(path));
	if (rc)
		return rc == -EINVAL ? -ENOENT : rc;
	return nh_load_file(j, path, r);
}

int nh_journal_state(struct nh_journal *j, const char *uid, struct ch_state *st,
		     enum nh_jstate *js)
{
	struct nh_jentry *e;
	int rc = -ENOENT;

	nh_lock(j);
	e = nh_find(j, uid);
	if (e) {
		if (st)
			*st = e->st;
		if (js)
			*js = e->state;
		rc = 0;
	}
	nh_unlock(j);
	return rc;
}

int nh_journal_remove(struct nh_journal *j, const char *uid)
{
	char path[4096 + 80];
	struct nh_jentry *e;
	int rc;

	rc = nh_file_path(j, uid, path, sizeof(path));
	if (rc)
		return rc == -EINVAL ? -ENOENT : rc;
	if (unlink(path) != 0)
		rc = -errno;
	else
		fsu_fsync_dir(j->dir);
	nh_lock(j);
	e = nh_find(j, uid);
	if (e) {
		*e = j->v[--j->n];
		rc = 0;
	}
	nh_unlock(j);
	return rc;
}

void nh_journal_progress(struct nh_journal *j, const char *uid, uint64_t bytes,
			 const char *container)
{
	struct nh_jentry *e;

	nh_lock(j);
	e = nh_find(j, uid);
	if (e) {
		e->st.bytes = bytes;
		nh_strlcpy(e->st.container, container ? container : "", sizeof(e->st.container));
	}
	nh_unlock(j);
}

int nh_journal_set_queued(struct nh_journal *j, const char *uid, bool queued)
{
	struct nh_jentry *e;
	int rc = -ENOENT;

	nh_lock(j);
	e = nh_find(j, uid);
	if (e) {
		e->queued = queued;
		rc = 0;
	}
	nh_unlock(j);
	return rc;
}

bool nh_journal_is_queued(struct nh_journal *j, const char *uid)
{
	struct nh_jentry *e;
	bool q = false;

	nh_lock(j);
	e = nh_find(j, uid);
	if (e)
		q = e->queued;
	nh_unlock(j);
	return q;
}

size_t nh_journal_count(struct nh_journal *j)
{
	size_t n;

	nh_lock(j);
	n = j->n;
	nh_unlock(j);
	return n;
}

int nh_journal_uids(struct nh_journal *j, char (**uids)[64], size_t *n)
{
	char(*v)[64];
	int rc = 0;

	nh_lock(j);
	v = calloc(j->n ? j->n : 1, sizeof(*v));
	if (!v) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < j->n; i++)
		memcpy(v[i], j->v[i].uid, sizeof(v[i]));
	*uids = v;
	*n = j->n;
out:
	nh_unlock(j);
	return rc;
}

/* Finished and not in the runner's hands: the only records pruning looks at. */
static bool nh_finished(const struct nh_jentry *e)
{
	return (e->state == NH_J_DONE || e->state == NH_J_FAILED) && !e->queued;
}

static bool nh_older(const struct nh_jentry *e, int64_t now, long seconds)
{
	return seconds > 0 && e->done_ms > 0 && e->done_ms <= now - (int64_t)seconds * 1000;
}

static int nh_cmp_done(const void *a, const void *b)
{
	const struct nh_jentry *x = *(const struct nh_jentry *const *)a;
	const struct nh_jentry *y = *(const struct nh_jentry *const *)b;

	return x->done_ms < y->done_ms ? -1 : x->done_ms > y->done_ms;
}

/* Caller holds the lock. Marks the oldest settled records beyond max. */
static void nh_mark_over_cap(struct nh_journal *j, size_t max)
{
	struct nh_jentry **c = NULL;
	size_t keep = 0, nc = 0;

	for (size_t i = 0; i < j->n; i++)
		keep += !j->v[i].drop;
	if (!max || keep <= max)
		return;
	c = malloc(j->n * sizeof(*c));
	if (!c)
		return; /* the age rules still ran; the cap waits for the next prune */
	for (size_t i = 0; i < j->n; i++)
		if (!j->v[i].drop && j->v[i].settled && nh_finished(&j->v[i]))
			c[nc++] = &j->v[i];
	qsort(c, nc, sizeof(*c), nh_cmp_done); /* unknown completion (0) first */
	for (size_t i = 0; i < nc && keep > max; i++, keep--)
		c[i]->drop = true;
	free(c);
}

/*
 * Caller holds the lock. Unlinks the files of at most NH_PRUNE_BATCH marked
 * records, then drops their entries. A marked record taken by the runner
 * since it was marked stays. Once the fault seam says stop, every mark is
 * cleared. Returns whether marked records remain for another batch.
 */
static bool nh_prune_batch(struct nh_journal *j, size_t *removed, bool *stop)
{
	size_t unlinked = 0, w = 0;
	bool more = false;

	/* Files first: a crash between two unlinks leaves whole records only. */
	for (size_t i = 0; i < j->n; i++) {
		struct nh_jentry *e = &j->v[i];
		char path[4096 + 80];

		if (!e->drop)
			continue;
		if (unlinked == NH_PRUNE_BATCH && !*stop) {
			more = true;
			break;
		}
		e->drop = false;
		if (*stop || !nh_finished(e))
			continue;
		if (j->prune_fault && j->prune_fault(j->prune_fault_arg, e->uid) != 0) {
			*stop = true;
			continue;
		}
		if (nh_file_path(j, e->uid, path, sizeof(path)) != 0 ||
		    (unlink(path) != 0 && errno != ENOENT))
			continue;
		e->gone = true;
		unlinked++;
	}
	for (size_t i = 0; i < j->n; i++) {
		if (j->v[i].gone) {
			LOG_DEBUG("msg=\"journal record pruned\" uid=%s", j->v[i].uid);
			(*removed)++;
			continue;
		}
		j->v[w++] = j->v[i];
	}
	j->n = w;
	return more;
}

/* Caller holds the lock: between two batches of a prune, the threads waiting
 * for the lock have it first (the lock is released while this waits), for at
 * most NH_PRUNE_YIELD_MS in all. */
static void nh_prune_yield(struct nh_journal *j)
{
	struct timespec dl;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_nsec += NH_PRUNE_YIELD_MS * 1000000L;
	dl.tv_sec += dl.tv_nsec / 1000000000L;
	dl.tv_nsec %= 1000000000L;
	while (atomic_load(&j->waiting) > 0)
		if (pthread_cond_timedwait(&j->turn, &j->lock, &dl) == ETIMEDOUT)
			break;
}

size_t nh_journal_prune(struct nh_journal *j, const struct nh_prune_policy *p)
{
	int64_t now = kc_now_ms();
	size_t removed = 0, left;
	bool stop = false;

	if (!p)
		return 0;
	nh_lock(j);
	if (j->pruning) { /* another slot's prune is at work: it covers this one */
		nh_unlock(j);
		return 0;
	}
	j->pruning = true;
	for (size_t i = 0; i < j->n; i++) {
		struct nh_jentry *e = &j->v[i];

		e->gone = false;
		e->drop = nh_finished(e) && (nh_older(e, now, p->keep_seconds) ||
					     (e->settled && nh_older(e, now, p->settled_keep_seconds)));
	}
	nh_mark_over_cap(j, p->max_records);
	while (nh_prune_batch(j, &removed, &stop))
		nh_prune_yield(j);
	j->pruning = false;
	left = j->n;
	nh_unlock(j);
	if (removed) {
		fsu_fsync_dir(j->dir);
		LOG_INFO("msg=\"journal pruned\" records=%zu left=%zu", removed, left);
	}
	return removed;
}
