/*
 * The journal's prune in batches: a prune of many records holds the journal's
 * mutex for at most NH_PRUNE_BATCH unlinks at a time and lets a waiting
 * journal call in between two batches; a record the runner takes between two
 * batches stays. (The prune's rules, crash and full disk: test_nh_journal.)
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dbuf.h"
#include "fsutil.h"
#include "kc.h"
#include "nh_journal.h"

#define NREC (3 * NH_PRUNE_BATCH)

/* NREC done records completed two hours ago, written straight into
 * <dir>/jobs (no fsync: only the prune is under test). */
static void write_records(const char *dir)
{
	struct nh_record *r = calloc(1, sizeof(*r));
	struct dbuf b;
	char path[600];

	assert_non_null(r);
	dbuf_init(&b, 1u << 20);
	snprintf(path, sizeof(path), "%s/jobs", dir);
	assert_int_equal(fsu_mkdir_p(path, 0700), 0);
	r->state = NH_J_DONE;
	snprintf(r->job.ns, sizeof(r->job.ns), "default");
	kc_time_rfc3339(time(NULL) - 7200, r->completion_time);
	for (int i = 0; i < NREC; i++) {
		FILE *f;

		snprintf(r->job.uid, sizeof(r->job.uid), "r-%d", i);
		snprintf(r->job.name, sizeof(r->job.name), "cp-%d", i);
		b.len = 0;
		assert_int_equal(nh_record_to_text(r, &b), 0);
		assert_int_equal(nh_journal_path(dir, r->job.uid, path, sizeof(path)), 0);
		f = fopen(path, "we");
		assert_non_null(f);
		assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
		assert_int_equal(fclose(f), 0);
	}
	dbuf_cleanup(&b);
	free(r);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * The other user of the journal (the lws thread, another slot): started by
 * the prune's first unlink, it lists the uids (one lock hold) and then marks
 * the last of them queued (another), noting how many unlinks the prune had
 * done when each call returned. Only plain values here: the main thread
 * asserts.
 */
struct other {
	struct nh_journal *j;
	pthread_t th;
	atomic_int unlinks;      /* prune fault seam calls so far */
	atomic_bool go, calling; /* started; about to take the lock */
	int seen_list, seen_queued; /* unlinks when each call returned */
	size_t listed;
	char queued[64];
};

static void *other_main(void *arg)
{
	struct other *o = arg;
	char(*uids)[64] = NULL;

	atomic_store(&o->calling, true);
	if (nh_journal_uids(o->j, &uids, &o->listed) != 0)
		return NULL;
	o->seen_list = atomic_load(&o->unlinks);
	if (o->listed > 0) {
		/* the table keeps its order: the last uid is in the last batch */
		memcpy(o->queued, uids[o->listed - 1], sizeof(o->queued));
		(void)nh_journal_set_queued(o->j, o->queued, true);
		o->seen_queued = atomic_load(&o->unlinks);
	}
	free(uids);
	return NULL;
}

/* Called with the journal's mutex held, before each unlink. */
static int on_unlink(void *arg, const char *uid)
{
	struct other *o = arg;
	int n = atomic_fetch_add(&o->unlinks, 1) + 1;

	(void)uid;
	if (n == 1) {
		assert_int_equal(pthread_create(&o->th, NULL, other_main, o), 0);
		atomic_store(&o->go, true);
		for (int i = 0; i < 5000 && !atomic_load(&o->calling); i++)
			sleep_ms(1);
		sleep_ms(100); /* it is blocked on the mutex by now */
	} else if (n == NH_PRUNE_BATCH + 1) {
		sleep_ms(100); /* its second call is blocked on the mutex by now */
	}
	return 0;
}

static void test_prune_batches(void **state)
{
	char dir[] = "/tmp/nh-jprune-XXXXXX", path[600], cmd[700];
	struct nh_prune_policy p = { .keep_seconds = 86400, .settled_keep_seconds = 3600 };
	struct other o = { .seen_list = -1, .seen_queued = -1 };
	enum nh_jstate js;

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_records(dir);
	assert_int_equal(nh_journal_open(dir, &o.j), 0);
	assert_int_equal(nh_journal_count(o.j), NREC);
	nh_journal_set_prune_fault(o.j, on_unlink, &o);
	/* every record but the one taken meanwhile goes */
	assert_int_equal(nh_journal_prune(o.j, &p), NREC - 1);
	assert_true(atomic_load(&o.go));
	assert_int_equal(pthread_join(o.th, NULL), 0);
	/* the listing got in after the first batch, not after the whole prune
	 * (without batches: after all NREC unlinks, with an empty table) */
	assert_int_equal(o.seen_list, NH_PRUNE_BATCH);
	assert_int_equal(o.listed, NREC - NH_PRUNE_BATCH);
	/* right after it (the prune still waiting for it) or after the second */
	assert_true(o.seen_queued >= NH_PRUNE_BATCH && o.seen_queued <= 2 * NH_PRUNE_BATCH);
	/* marked at the start, queued before its batch: still there, on disk too */
	assert_int_equal(nh_journal_count(o.j), 1);
	assert_int_equal(nh_journal_state(o.j, o.queued, NULL, &js), 0);
	assert_int_equal(js, NH_J_DONE);
	assert_true(nh_journal_is_queued(o.j, o.queued));
	assert_int_equal(nh_journal_path(dir, o.queued, path, sizeof(path)), 0);
	assert_int_equal(access(path, F_OK), 0);
	/* NREC - 1 unlinks were attempted: the queued one was not */
	assert_int_equal(atomic_load(&o.unlinks), NREC - 1);
	nh_journal_free(o.j);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prune_batches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
