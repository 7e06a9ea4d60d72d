/* Journal round trip, reload at start, resume decisions. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dbuf.h"
#include "fsutil.h"
#include "nh_journal.h"
#include "nh_util.h"

static struct nh_record *mkrec(const char *uid, enum nh_jstate s)
{
	struct nh_record *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	snprintf(r->job.uid, sizeof(r->job.uid), "%s", uid);
	snprintf(r->job.ns, sizeof(r->job.ns), "default");
	snprintf(r->job.name, sizeof(r->job.name), "cp1");
	snprintf(r->job.pod, sizeof(r->job.pod), "web");
	snprintf(r->job.pod_uid, sizeof(r->job.pod_uid), "pod-uid-1");
	snprintf(r->job.node, sizeof(r->job.node), "node-a");
	r->job.ncontainers = 2;
	snprintf(r->job.containers[0], sizeof(r->job.containers[0]), "app");
	snprintf(r->job.containers[1], sizeof(r->job.containers[1]), "sidecar");
	r->job.timeout_seconds = 120;
	r->job.leave_running = false;
	r->job.encrypt = true;
	snprintf(r->job.secret_name, sizeof(r->job.secret_name), "ckpt-key");
	r->state = s;
	snprintf(r->message, sizeof(r->message), "a \"quoted\" message");
	snprintf(r->pod_uid, sizeof(r->pod_uid), "pod-uid-1");
	r->nresults = 1;
	snprintf(r->results[0].name, sizeof(r->results[0].name), "app");
	snprintf(r->results[0].archive, sizeof(r->results[0].archive), "/host/var/lib/kubelet/checkpoints/checkpoint-web_default-app-2024-03-04T12:20:30Z.tar");
	snprintf(r->results[0].checkpoint_time, sizeof(r->results[0].checkpoint_time), "2024-03-04T12:20:30Z");
	snprintf(r->results[0].sha256, sizeof(r->results[0].sha256), "%064d", 7);
	r->results[0].size_bytes = 5000000000ULL;
	snprintf(r->artifact.path, sizeof(r->artifact.path), "/art/default/cp1-%s.tar.cms", uid);
	r->artifact.size_bytes = 123;
	r->artifact.encrypted = true;
	snprintf(r->artifact.recipient_fingerprint, sizeof(r->artifact.recipient_fingerprint), "%064d", 9);
	snprintf(r->accepted_time, sizeof(r->accepted_time), "2024-03-04T12:20:00Z");
	return r;
}

static void test_round_trip(void **state)
{
	struct nh_record *a = mkrec("u1", NH_J_DURABLE), *b = calloc(1, sizeof(*b));
	json_object *obj = NULL;
	char err[128];
	(void)state;
	assert_int_equal(nh_record_to_json(a, &obj), 0);
	assert_int_equal(nh_record_from_json(obj, b, err, sizeof(err)), 0);
	assert_memory_equal(&a->job, &b->job, sizeof(a->job));
	assert_int_equal(b->state, NH_J_DURABLE);
	assert_string_equal(b->message, a->message);
	assert_int_equal(b->nresults, 1);
	assert_string_equal(b->results[0].archive, a->results[0].archive);
	assert_true(b->results[0].size_bytes == 5000000000ULL);
	assert_string_equal(b->artifact.path, a->artifact.path);
	assert_true(b->artifact.encrypted);
	assert_string_equal(b->artifact.recipient_fingerprint, a->artifact.recipient_fingerprint);
	assert_false(b->final_written);
	json_object_put(obj);
	a->final_written = true;
	assert_int_equal(nh_record_to_json(a, &obj), 0);
	assert_int_equal(nh_record_from_json(obj, b, err, sizeof(err)), 0);
	assert_true(b->final_written);
	/* a record from before the field: not known to be settled */
	json_object_object_del(obj, "finalWritten");
	assert_int_equal(nh_record_from_json(obj, b, err, sizeof(err)), 0);
	assert_false(b->final_written);
	/* a broken record is refused, not half-read */
	json_object_object_del(obj, "state");
	assert_int_equal(nh_record_from_json(obj, b, err, sizeof(err)), -EBADMSG);
	json_object_put(obj);
	free(a);
	free(b);
}

/* The file text written directly (nh_record_to_text) parses to the same
 * object as the json-c tree (nh_record_to_json), with strings that need
 * escaping (quotes, backslash, control bytes, slashes, UTF-8) and two
 * results, and reads back into the same record. */
static void test_text_equals_tree(void **state)
{
	struct nh_record *a = mkrec("u1", NH_J_FAILED), *b = calloc(1, sizeof(*b));
	json_object *tree = NULL, *text = NULL;
	struct dbuf buf;
	char err[128];
	(void)state;
	snprintf(a->message, sizeof(a->message), "say \"no\" \\ C:\\x\n\t\r\b\f \x01\x1f\x7f /a/b caf\xc3\xa9 \xe2\x9c\x93");
	snprintf(a->reason, sizeof(a->reason), "KubeletError");
	a->nresults = 2;
	snprintf(a->results[1].name, sizeof(a->results[1].name), "db\"x");
	a->results[1].size_bytes = 0;
	a->kubelet_started = 1700000000;
	a->final_written = true;
	a->job.ncontainers = 2;
	snprintf(a->job.containers[1], sizeof(a->job.containers[1]), "side\\car");
	dbuf_init(&buf, 1u << 20);
	assert_int_equal(nh_record_to_text(a, &buf), 0);
	assert_int_equal(nh_record_to_json(a, &tree), 0);
	text = json_tokener_parse(buf.data);
	assert_non_null(text);
	if (!json_object_equal(tree, text))
		fail_msg("text %s\ntree %s", buf.data, json_object_to_json_string(tree));
	assert_int_equal(nh_record_from_json(text, b, err, sizeof(err)), 0);
	assert_string_equal(b->message, a->message);
	assert_string_equal(b->results[1].name, a->results[1].name);
	assert_string_equal(b->job.containers[1], a->job.containers[1]);
	assert_true(b->final_written);
	/* and without results or containers: empty arrays */
	a->nresults = 0;
	a->job.ncontainers = 0;
	dbuf_reset(&buf);
	json_object_put(text);
	json_object_put(tree);
	assert_int_equal(nh_record_to_text(a, &buf), 0);
	assert_int_equal(nh_record_to_json(a, &tree), 0);
	text = json_tokener_parse(buf.data);
	assert_true(json_object_equal(tree, text));
	json_object_put(text);
	json_object_put(tree);
	dbuf_cleanup(&buf);
	free(a);
	free(b);
}

static void test_states(void **state)
{
	enum nh_jstate s;
	(void)state;
	for (int i = NH_J_ACCEPTED; i <= NH_J_FAILED; i++) {
		assert_int_equal(nh_jstate_parse(nh_jstate_name((enum nh_jstate)i), &s), 0);
		assert_int_equal((int)s, i);
	}
	assert_string_equal(nh_jstate_name(NH_J_STATUS_WRITTEN), "status-written");
	assert_string_equal(nh_jstate_name(NH_J_DELETING_POD), "deleting-pod");
	assert_int_equal(nh_jstate_parse("encrypting", &s), -EINVAL);
}

static void test_resume(void **state)
{
	struct nh_record *r = mkrec("u", NH_J_ACCEPTED);
	struct ch_state st;
	(void)state;
	r->state = NH_J_ACCEPTED;
	assert_int_equal(nh_resume_decide(r), NH_RESUME_INTERRUPTED);
	r->state = NH_J_CHECKPOINTING;
	assert_int_equal(nh_resume_decide(r), NH_RESUME_INTERRUPTED);
	r->state = NH_J_BUNDLING;
	assert_int_equal(nh_resume_decide(r), NH_RESUME_INTERRUPTED);
	r->state = NH_J_DURABLE;
	assert_int_equal(nh_resume_decide(r), NH_RESUME_CONTINUE);
	r->state = NH_J_STATUS_WRITTEN;
	assert_int_equal(nh_resume_decide(r), NH_RESUME_CONTINUE);
	r->state = NH_J_DELETING_POD;
	assert_int_equal(nh_resume_decide(r), NH_RESUME_CONTINUE);
	r->state = NH_J_POD_DELETED;
	assert_int_equal(nh_resume_decide(r), NH_RESUME_CONTINUE);
	r->state = NH_J_DONE;
	assert_int_equal(nh_resume_decide(r), NH_RESUME_NOTHING);
	nh_record_to_ch_state(r, &st);
	assert_int_equal(st.state, CH_SUCCEEDED);
	assert_true(st.bytes == 123);
	r->state = NH_J_FAILED;
	assert_int_equal(nh_resume_decide(r), NH_RESUME_NOTHING);
	snprintf(r->reason, sizeof(r->reason), "KubeletError");
	nh_record_to_ch_state(r, &st);
	assert_int_equal(st.state, CH_FAILED);
	assert_string_equal(st.reason, "KubeletError");
	r->state = NH_J_BUNDLING;
	nh_record_to_ch_state(r, &st);
	assert_int_equal(st.state, CH_RUNNING);
	assert_string_equal(st.reason, "");
	r->state = NH_J_ACCEPTED;
	nh_record_to_ch_state(r, &st);
	assert_int_equal(st.state, CH_QUEUED); /* waiting for a free slot */
	free(r);
}

static void test_disk(void **state)
{
	char dir[] = "/tmp/nh-journal-XXXXXX", path[512], bad[512];
	struct nh_journal *j = NULL;
	struct nh_record *a = mkrec("uid-a", NH_J_CHECKPOINTING), *b = mkrec("uid-b", NH_J_DONE);
	struct nh_record *got = calloc(1, sizeof(*got));
	struct ch_state st;
	enum nh_jstate js;
	struct stat sb;
	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(nh_journal_open(dir, &j), 0);
	assert_int_equal(nh_journal_count(j), 0);
	assert_int_equal(nh_journal_save(j, a), 0);
	assert_int_equal(nh_journal_save(j, b), 0);
	snprintf(path, sizeof(path), "%s/jobs/uid-a.json", dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* junk file and a wrong-uid file are moved aside at load */
	snprintf(bad, sizeof(bad), "%s/jobs/junk.json", dir);
	assert_int_equal(fsu_write_atomic(bad, "{not json", 9), 0);
	nh_journal_free(j);
	j = NULL;
	assert_int_equal(nh_journal_open(dir, &j), 0);
	assert_int_equal(nh_journal_count(j), 2);
	snprintf(bad, sizeof(bad), "%s/jobs/junk.json.bad", dir);
	assert_int_equal(access(bad, F_OK), 0);
	assert_int_equal(nh_journal_state(j, "uid-a", &st, &js), 0);
	assert_int_equal(js, NH_J_CHECKPOINTING);
	assert_int_equal(st.state, CH_RUNNING);
	assert_int_equal(nh_journal_get(j, "uid-b", got), 0);
	assert_int_equal(got->state, NH_J_DONE);
	assert_int_equal(nh_journal_get(j, "nope", got), -ENOENT);
	assert_int_equal(nh_journal_get(j, "../etc", got), -ENOENT);
	/* progress and queued flags are in memory */
	nh_journal_progress(j, "uid-a", 4096, "app");
	assert_int_equal(nh_journal_state(j, "uid-a", &st, NULL), 0);
	assert_true(st.bytes == 4096);
	assert_string_equal(st.container, "app");
	assert_false(nh_journal_is_queued(j, "uid-a"));
	assert_int_equal(nh_journal_set_queued(j, "uid-a", true), 0);
	assert_true(nh_journal_is_queued(j, "uid-a"));
	/* update, remove */
	a->state = NH_J_FAILED;
	assert_int_equal(nh_journal_save(j, a), 0);
	assert_int_equal(nh_journal_state(j, "uid-a", NULL, &js), 0);
	assert_int_equal(js, NH_J_FAILED);
	assert_int_equal(nh_journal_remove(j, "uid-a"), 0);
	assert_int_equal(nh_journal_state(j, "uid-a", NULL, NULL), -ENOENT);
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(nh_journal_count(j), 1);
	/* an unsafe uid is never turned into a path */
	snprintf(a->job.uid, sizeof(a->job.uid), "../x");
	assert_int_equal(nh_journal_save(j, a), -EINVAL);
	nh_journal_free(j);
	nh_journal_free(NULL);
	free(a);
	free(b);
	free(got);
}

/* Finished records go after --journal-keep-seconds; running ones never. */
static void test_prune(void **state)
{
	char dir[] = "/tmp/nh-prune-XXXXXX";
	struct nh_journal *j = NULL;
	struct nh_record *old = mkrec("uid-old", NH_J_DONE), *fresh = mkrec("uid-new", NH_J_FAILED);
	struct nh_record *live = mkrec("uid-live", NH_J_CHECKPOINTING);

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(nh_journal_open(dir, &j), 0);
	snprintf(old->completion_time, sizeof(old->completion_time), "2020-01-01T00:00:00Z");
	kc_time_rfc3339(time(NULL), fresh->completion_time);
	snprintf(live->completion_time, sizeof(live->completion_time), "2020-01-01T00:00:00Z");
	assert_int_equal(nh_journal_save(j, old), 0);
	assert_int_equal(nh_journal_save(j, fresh), 0);
	assert_int_equal(nh_journal_save(j, live), 0);
	struct nh_prune_policy never = { 0, 0, 0 }, hour = { 3600, 0, 0 };
	assert_int_equal(nh_journal_prune(j, &never), 0); /* 0: never */
	assert_int_equal(nh_journal_prune(j, NULL), 0);
	assert_int_equal(nh_journal_prune(j, &hour), 1);
	assert_int_equal(nh_journal_state(j, "uid-old", NULL, NULL), -ENOENT);
	assert_int_equal(nh_journal_get(j, "uid-old", old), -ENOENT); /* the file too */
	assert_int_equal(nh_journal_state(j, "uid-new", NULL, NULL), 0);
	assert_int_equal(nh_journal_state(j, "uid-live", NULL, NULL), 0);
	nh_journal_free(j);
	free(old);
	free(fresh);
	free(live);
}

/* A finished record completed `ago` seconds ago (ago < 0: no completion time). */
static struct nh_record *finished(const char *uid, enum nh_jstate s, bool final, long ago)
{
	struct nh_record *r = mkrec(uid, s);

	r->final_written = final;
	if (ago >= 0)
		kc_time_rfc3339(time(NULL) - ago, r->completion_time);
	return r;
}

static void save_all(struct nh_journal *j, struct nh_record **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(nh_journal_save(j, v[i]), 0);
}

static bool has(struct nh_journal *j, const char *uid)
{
	return nh_journal_state(j, uid, NULL, NULL) == 0;
}

static void rm_tree(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void free_all(struct nh_record **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
}

/*
 * Settled records (done; failed with final_written) go after the short
 * window; an unsettled failed one only after the long one; running, queued
 * and fresh ones never. The artifact a done record names stays.
 */
static void test_prune_settled(void **state)
{
	char dir[] = "/tmp/nh-prune-XXXXXX", art[512];
	struct nh_journal *j = NULL;
	struct nh_record *v[] = {
		finished("done-old", NH_J_DONE, false, 7200),  /* done: settled by its steps */
		finished("failed-set", NH_J_FAILED, true, 7200),
		finished("failed-unset", NH_J_FAILED, false, 7200),
		finished("done-fresh", NH_J_DONE, false, 60),
		finished("done-queued", NH_J_DONE, false, 7200),
		finished("live", NH_J_STATUS_WRITTEN, true, 7200),
	};
	struct nh_prune_policy p = { .keep_seconds = 86400, .settled_keep_seconds = 3600 };
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(art, sizeof(art), "%s/cp1-done-old.tar", dir);
	snprintf(v[0]->artifact.path, sizeof(v[0]->artifact.path), "%s", art);
	f = fopen(art, "w");
	assert_non_null(f);
	fputs("artifact", f);
	fclose(f);
	assert_int_equal(nh_journal_open(dir, &j), 0);
	save_all(j, v, 6);
	assert_int_equal(nh_journal_set_queued(j, "done-queued", true), 0);
	assert_int_equal(nh_journal_prune(j, &p), 2);
	assert_false(has(j, "done-old"));
	assert_false(has(j, "failed-set"));
	assert_true(has(j, "failed-unset"));
	assert_true(has(j, "done-fresh"));
	assert_true(has(j, "done-queued"));
	assert_true(has(j, "live"));
	assert_int_equal(access(art, F_OK), 0); /* pruning never touches an artifact */
	/* without the short rule the settled ones wait for the long one */
	p.settled_keep_seconds = 0;
	p.keep_seconds = 3600;
	assert_int_equal(nh_journal_set_queued(j, "done-queued", false), 0);
	assert_int_equal(nh_journal_prune(j, &p), 2); /* failed-unset, done-queued */
	assert_true(has(j, "done-fresh"));
	assert_true(has(j, "live"));
	nh_journal_free(j);
	/* what was pruned is gone from disk too: a reopen sees the same */
	assert_int_equal(nh_journal_open(dir, &j), 0);
	assert_int_equal(nh_journal_count(j), 2);
	nh_journal_free(j);
	rm_tree(dir);
	free_all(v, 6);
}

/* Over the cap the oldest settled records go first, whatever their age;
 * never an unsettled, a running or a queued one. */
static void test_prune_cap(void **state)
{
	char dir[] = "/tmp/nh-prune-XXXXXX";
	struct nh_journal *j = NULL;
	struct nh_record *v[] = {
		finished("s-50", NH_J_DONE, false, 50),
		finished("s-10", NH_J_DONE, false, 10),
		finished("s-40", NH_J_FAILED, true, 40),
		finished("s-20", NH_J_DONE, false, 20),
		finished("s-notime", NH_J_DONE, false, -1),
		finished("s-30", NH_J_DONE, false, 30),
		finished("u-99", NH_J_FAILED, false, 99),
		finished("live", NH_J_CHECKPOINTING, false, 99),
	};
	struct nh_prune_policy p = { .keep_seconds = 86400, .settled_keep_seconds = 3600,
				     .max_records = 5 };

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(nh_journal_open(dir, &j), 0);
	save_all(j, v, 8);
	assert_int_equal(nh_journal_prune(j, &p), 3);
	assert_int_equal(nh_journal_count(j), 5);
	assert_false(has(j, "s-notime")); /* unknown completion: oldest */
	assert_false(has(j, "s-50"));
	assert_false(has(j, "s-40"));
	assert_true(has(j, "s-30"));
	assert_true(has(j, "s-20"));
	assert_true(has(j, "s-10"));
	assert_true(has(j, "u-99"));
	assert_true(has(j, "live"));
	/* a cap below what must stay: every settled one goes, nothing else */
	p.max_records = 1;
	assert_int_equal(nh_journal_set_queued(j, "s-10", true), 0);
	assert_int_equal(nh_journal_prune(j, &p), 2);
	assert_int_equal(nh_journal_count(j), 3);
	assert_true(has(j, "s-10"));
	assert_true(has(j, "u-99"));
	assert_true(has(j, "live"));
	nh_journal_free(j);
	rm_tree(dir);
	free_all(v, 8);
}

struct crash_at {
	int calls, at;
};

static int prune_crash(void *arg, const char *uid)
{
	struct crash_at *c = arg;

	(void)uid;
	return ++c->calls >= c->at ? -EINTR : 0;
}

/* A crash part-way through a prune: whole records only, each still valid,
 * and the next prune finishes the work. */
static void test_prune_crash(void **state)
{
	char dir[] = "/tmp/nh-prune-XXXXXX", bad[600];
	struct nh_journal *j = NULL;
	struct nh_record *v[] = {
		finished("a", NH_J_DONE, false, 7200), finished("b", NH_J_DONE, false, 7200),
		finished("c", NH_J_FAILED, true, 7200), finished("d", NH_J_DONE, false, 7200),
		finished("e", NH_J_DONE, false, 7200), finished("live", NH_J_DURABLE, false, 7200),
	};
	struct nh_prune_policy p = { .keep_seconds = 86400, .settled_keep_seconds = 3600 };
	struct crash_at c = { .at = 3 };
	struct nh_record *r = malloc(sizeof(*r));

	(void)state;
	assert_non_null(r);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(nh_journal_open(dir, &j), 0);
	save_all(j, v, 6);
	nh_journal_set_prune_fault(j, prune_crash, &c);
	assert_int_equal(nh_journal_prune(j, &p), 2); /* two unlinks, then the crash */
	assert_int_equal(nh_journal_count(j), 4);     /* the table matches the disk */
	nh_journal_free(j);
	/* restart: every record left loads whole (none renamed .bad) */
	assert_int_equal(nh_journal_open(dir, &j), 0);
	assert_int_equal(nh_journal_count(j), 4);
	for (size_t i = 0; i < 6; i++) {
		snprintf(bad, sizeof(bad), "%s/jobs/%s.json.bad", dir, v[i]->job.uid);
		assert_int_not_equal(access(bad, F_OK), 0);
		if (has(j, v[i]->job.uid))
			assert_int_equal(nh_journal_get(j, v[i]->job.uid, r), 0);
	}
	assert_int_equal(nh_journal_prune(j, &p), 3);
	assert_int_equal(nh_journal_count(j), 1);
	assert_true(has(j, "live"));
	nh_journal_free(j);
	rm_tree(dir);
	free(r);
	free_all(v, 6);
}

static int full_disk(void *arg, const struct nh_record *r)
{
	(void)arg;
	return r->final_written ? -ENOSPC : 0;
}

/* A full disk when the record is rewritten as settled: the old record stays
 * whole and unsettled, so it is kept by the long rule only. */
static void test_prune_full_disk(void **state)
{
	char dir[] = "/tmp/nh-prune-XXXXXX";
	struct nh_journal *j = NULL;
	struct nh_record *a = finished("f", NH_J_FAILED, false, 7200), *got = malloc(sizeof(*got));
	struct nh_prune_policy p = { .keep_seconds = 86400, .settled_keep_seconds = 3600 };

	(void)state;
	assert_non_null(got);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(nh_journal_open(dir, &j), 0);
	assert_int_equal(nh_journal_save(j, a), 0);
	nh_journal_set_fault(j, full_disk, NULL);
	a->final_written = true;
	assert_int_equal(nh_journal_save(j, a), -ENOSPC);
	assert_int_equal(nh_journal_prune(j, &p), 0);
	assert_int_equal(nh_journal_get(j, "f", got), 0);
	assert_false(got->final_written);
	nh_journal_free(j);
	assert_int_equal(nh_journal_open(dir, &j), 0);
	assert_int_equal(nh_journal_prune(j, &p), 0);
	p.keep_seconds = 3600;
	assert_int_equal(nh_journal_prune(j, &p), 1);
	/* with space again the rewrite settles it */
	nh_journal_set_fault(j, NULL, NULL);
	assert_int_equal(nh_journal_save(j, a), 0);
	p.keep_seconds = 86400;
	assert_int_equal(nh_journal_prune(j, &p), 1);
	nh_journal_free(j);
	rm_tree(dir);
	free(a);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_text_equals_tree),
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_resume),
		cmocka_unit_test(test_disk),
		cmocka_unit_test(test_prune),
		cmocka_unit_test(test_prune_settled),
		cmocka_unit_test(test_prune_cap),
		cmocka_unit_test(test_prune_crash),
		cmocka_unit_test(test_prune_full_disk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
