/*
 * bench_jprune.c - the node helper's first journal prune after an upgrade
 * from the 7-day rule: N `done` records of one container, completed over the
 * last 7 days, pruned with the default policy (docs/node-helper.md, "The
 * journal's bound"), while a second thread asks the journal for a state every
 * millisecond as the lws thread does. Prints how long the prune took, how
 * many records went, and the longest time a journal call waited meanwhile
 * (what every other user of the journal sees of the prune's lock hold).
 *
 *   bench_jprune [records [state-dir-parent]]   default 10000 /tmp
 *
 * The records are written without fsync (setting up is not measured); the
 * prune itself does what the helper does.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dbuf.h"
#include "fsutil.h"
#include "kc.h"
#include "nh_journal.h"

static struct nh_journal *jn;
static atomic_bool done;
static atomic_llong max_wait_us, calls;

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *prober(void *arg)
{
	struct timespec ms = { 0, 1000000 };
	struct ch_state st;

	(void)arg;
	while (!atomic_load(&done)) {
		long long t = mono_us();

		(void)nh_journal_state(jn, "r-0", &st, NULL);
		t = mono_us() - t;
		if (t > atomic_load(&max_wait_us))
			atomic_store(&max_wait_us, t);
		atomic_fetch_add(&calls, 1);
		nanosleep(&ms, NULL);
	}
	return NULL;
}

static int write_records(const char *dir, long n)
{
	struct nh_record *r = calloc(1, sizeof(*r));
	struct dbuf b;
	char path[600];
	int64_t now = time(NULL);
	int rc = 0;

	if (!r)
		return -ENOMEM;
	dbuf_init(&b, 1u << 20);
	r->state = NH_J_DONE;
	r->job.ncontainers = 1;
	snprintf(r->job.ns, sizeof(r->job.ns), "default");
	snprintf(r->job.containers[0], sizeof(r->job.containers[0]), "app");
	r->nresults = 1;
	snprintf(r->results[0].name, sizeof(r->results[0].name), "app");
	for (long i = 0; i < n && rc == 0; i++) {
		snprintf(r->job.uid, sizeof(r->job.uid), "r-%ld", i);
		snprintf(r->job.name, sizeof(r->job.name), "cp-%ld", i);
		/* completed over the last 7 days, newest first */
		kc_time_rfc3339(now - 60 - (int64_t)i * 604000 / n, r->completion_time);
		snprintf(r->artifact.path, sizeof(r->artifact.path), "/art/default/cp-%ld-r-%ld.tar", i, i);
		b.len = 0;
		rc = nh_record_to_text(r, &b);
		if (rc == 0)
			rc = nh_journal_path(dir, r->job.uid, path, sizeof(path));
		if (rc == 0) {
			FILE *f = fopen(path, "we");
			if (!f || fwrite(b.data, 1, b.len, f) != b.len)
				rc = -EIO;
			if (f && fclose(f) != 0)
				rc = -EIO;
		}
	}
	dbuf_cleanup(&b);
	free(r);
	return rc;
}

int main(int argc, char **argv)
{
	struct nh_prune_policy p = { .keep_seconds = 604800, .settled_keep_seconds = 3600,
				     .max_records = 4096 };
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
	char dir[512], jobs[600], cmd[700];
	pthread_t th;
	int64_t t;
	size_t removed;
	int rc;

	snprintf(dir, sizeof(dir), "%s/nh-jprune-XXXXXX", argc > 2 ? argv[2] : "/tmp");
	if (n < 1 || !mkdtemp(dir))
		return 2;
	snprintf(jobs, sizeof(jobs), "%s/jobs", dir);
	rc = fsu_mkdir_p(jobs, 0700);
	if (rc == 0)
		rc = write_records(dir, n);
	if (rc == 0)
		rc = nh_journal_open(dir, &jn);
	if (rc) {
		fprintf(stderr, "setup: %s\n", strerror(-rc));
		return 1;
	}
	pthread_create(&th, NULL, prober, NULL);
	usleep(20000);
	atomic_store(&max_wait_us, 0);
	atomic_store(&calls, 0);
	t = mono_us();
	removed = nh_journal_prune(jn, &p);
	t = mono_us() - t;
	atomic_store(&done, true);
	pthread_join(th, NULL);
	printf("records %ld pruned %zu left %zu prune_ms %.1f max_journal_wait_ms %.2f probe_calls %lld\n",
	       n, removed, nh_journal_count(jn), (double)t / 1000.0, (double)atomic_load(&max_wait_us) / 1000.0,
	       atomic_load(&calls));
	nh_journal_free(jn);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}
