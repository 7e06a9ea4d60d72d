/*
 * test_nh_parallel.c - the runner with several slots (--max-parallel-jobs)
 * against a fake API server and kubelet holding several PodCheckpoints and
 * pods (tests/unit/kc/fake_server.c, one thread per connection):
 * jobs of different pods really run at once while those of one pod
 * serialize; queued and busy answers at the limits; cancel and
 * delete-artifact of queued and running jobs; the wait for a slot bounded
 * from the accept (QueueTimeout) and a kubelet timeout while others run;
 * a 409 on every job's first status write; ENOSPC on one job's journal
 * while the others run; a restart with several jobs journaled.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "ch.h"
#include "fsutil.h"
#include "kc.h"
#include "nh_job.h"
#include "nh_journal.h"
#include "nh_sweep.h"
#include "nh_testenv.h"
#include "nh_util.h"

#define NCR 8
#define NPOD 6
#define CR_PREFIX "/apis/checkpointing.dev/v1alpha1/namespaces/ns/podcheckpoints/"
#define POD_PREFIX "/api/v1/namespaces/ns/pods/"
#define NF "{\"kind\":\"Status\",\"code\":404,\"reason\":\"NotFound\"}"

/* ---------------------------------------------------------------- fake world */

struct wcr {
	json_object *cr; /* NULL: deleted */
	long rv;
	int npatch, nkubelet;
	bool conflict_first; /* answer 409 to its first status patch */
};

struct world {
	pthread_mutex_t mu;
	struct wcr c[NCR];
	json_object *pod[NPOD];
	char ckpt_dir[512];
	int sleep_ms[NPOD]; /* kubelet call duration per pod */
	/* what happened */
	int inflight, max_inflight;
	int pod_inflight[NPOD], pod_max_inflight[NPOD], pod_calls[NPOD];
};

static struct world W;

static void fail_cr(int i)
{
	pthread_mutex_lock(&W.mu);
	json_object_object_add(kc_json_get(W.c[i].cr, "status"), "phase",
			       json_object_new_string("Failed"));
	W.c[i].rv++;
	nht_set_rv(W.c[i].cr, W.c[i].rv);
	pthread_mutex_unlock(&W.mu);
}

/* "cp-3" -> 3, -1 otherwise. */
static int index_of(const char *name, const char *prefix, int max)
{
	size_t n = strlen(prefix);
	char *end = NULL;
	long v;

	if (strncmp(name, prefix, n) != 0)
		return -1;
	v = strtol(name + n, &end, 10);
	if (end == name + n || (*end && *end != '/') || v < 0 || v >= max)
		return -1;
	return (int)v;
}

static int on_kubelet(int fd, const char *path)
{
	char pod[64], ctr[64], file[1024], ts[32], body[1200];
	int p, ms;

	if (sscanf(path, "/checkpoint/ns/%63[^/]/%63s", pod, ctr) != 2 ||
	    (p = index_of(pod, "pod-", NPOD)) < 0)
		return fs_reply_json(fd, 404, NF);
	pthread_mutex_lock(&W.mu);
	W.inflight++;
	if (W.inflight > W.max_inflight)
		W.max_inflight = W.inflight;
	W.pod_inflight[p]++;
	if (W.pod_inflight[p] > W.pod_max_inflight[p])
		W.pod_max_inflight[p] = W.pod_inflight[p];
	W.pod_calls[p]++;
	ms = W.sleep_ms[p];
	for (int i = 0; i < NCR; i++)
		if (W.c[i].cr && strcmp(kc_json_str(W.c[i].cr, "spec.podName"), pod) == 0)
			W.c[i].nkubelet++;
	kc_time_rfc3339(time(NULL), ts);
	snprintf(file, sizeof(file), "%s/checkpoint-%s_ns-%s-%s.tar", W.ckpt_dir, pod, ctr, ts);
	pthread_mutex_unlock(&W.mu);
	if (ms)
		usleep((useconds_t)ms * 1000);
	nht_write_tar(file); /* the runtime finishes even when the client left */
	pthread_mutex_lock(&W.mu);
	W.inflight--;
	W.pod_inflight[p]--;
	pthread_mutex_unlock(&W.mu);
	snprintf(body, sizeof(body), "{\"items\":[\"%s\"]}", file);
	return fs_reply_json(fd, 200, body);
}

static int on_status_patch(int fd, int i, const struct fs_req *req)
{
	json_object *p = json_tokener_parse(req->body ? req->body : "");
	int rc, code;

	if (!W.c[i].cr) {
		json_object_put(p);
		return fs_reply_json(fd, 404, NF);
	}
	W.c[i].npatch++;
	if (W.c[i].conflict_first && W.c[i].npatch == 1) { /* someone else wrote meanwhile */
		W.c[i].rv++;
		nht_set_rv(W.c[i].cr, W.c[i].rv);
	}
	code = nht_apply_status(W.c[i].cr, &W.c[i].rv, p);
	if (code == 409)
		rc = fs_reply_json(fd, 409, "{\"kind\":\"Status\",\"code\":409,\"reason\":\"Conflict\"}");
	else if (code == 422)
		rc = fs_reply_json(fd, 422, "{\"kind\":\"Status\",\"code\":422,\"reason\":\"Invalid\"}");
	else
		rc = fs_reply_json(fd, 200, json_object_to_json_string(W.c[i].cr));
	json_object_put(p);
	return rc;
}

static int handler(struct fake_server *s, int fd, const struct fs_req *req, void *arg)
{
	char path[4096];
	char *q;
	int rc, i;

	(void)s;
	(void)arg;
	snprintf(path, sizeof(path), "%s", req->target);
	q = strchr(path, '?');
	if (q)
		*q = '\0';
	if (strcmp(req->method, "POST") == 0 && strncmp(path, "/checkpoint/", 12) == 0)
		return on_kubelet(fd, path);
	pthread_mutex_lock(&W.mu);
	if (strncmp(path, CR_PREFIX, strlen(CR_PREFIX)) == 0 &&
	    (i = index_of(path + strlen(CR_PREFIX), "cp-", NCR)) >= 0) {
		if (strcmp(req->method, "PATCH") == 0 && strstr(path, "/status"))
			rc = on_status_patch(fd, i, req);
		else if (strcmp(req->method, "GET") == 0 && W.c[i].cr)
			rc = fs_reply_json(fd, 200, json_object_to_json_string(W.c[i].cr));
		else
			rc = fs_reply_json(fd, 404, NF);
	} else if (strncmp(path, POD_PREFIX, strlen(POD_PREFIX)) == 0 &&
		   (i = index_of(path + strlen(POD_PREFIX), "pod-", NPOD)) >= 0) {
		if (strcmp(req->method, "GET") == 0 && W.pod[i])
			rc = fs_reply_json(fd, 200, json_object_to_json_string(W.pod[i]));
		else
			rc = fs_reply_json(fd, 404, NF);
	} else if (strcmp(req->method, "POST") == 0 && strstr(path, "/events")) {
		rc = fs_reply_json(fd, 201, "{}");
	} else {
		rc = fs_reply_json(fd, 404, NF);
	}
	pthread_mutex_unlock(&W.mu);
	return rc;
}

/* CR cp-i for pod-p, dispatched to node-a. */
static void world_cr(int i, int p, int timeout)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "{\"apiVersion\":\"checkpointing.dev/v1alpha1\",\"kind\":\"PodCheckpoint\","
		 "\"metadata\":{\"name\":\"cp-%d\",\"namespace\":\"ns\",\"uid\":\"u-%d\",\"generation\":1,"
		 "\"resourceVersion\":\"1\"},"
		 "\"spec\":{\"podName\":\"pod-%d\",\"leaveRunning\":true,\"timeoutSeconds\":%d,"
		 "\"containers\":[\"app\"]},"
		 "\"status\":{\"phase\":\"Pending\",\"nodeName\":\"node-a\",\"podUID\":\"pu-%d\","
		 "\"dispatchTime\":\"2024-01-01T00:00:00Z\",\"conditions\":[]}}",
		 i, i, p, timeout, p);
	pthread_mutex_lock(&W.mu);
	json_object_put(W.c[i].cr);
	W.c[i].cr = json_tokener_parse(text);
	W.c[i].rv = 1;
	pthread_mutex_unlock(&W.mu);
	assert_non_null(W.c[i].cr);
}

static void world_reset(void)
{
	pthread_mutex_lock(&W.mu);
	for (int i = 0; i < NCR; i++) {
		json_object_put(W.c[i].cr);
		memset(&W.c[i], 0, sizeof(W.c[i]));
	}
	for (int p = 0; p < NPOD; p++) {
		char text[1024];

		json_object_put(W.pod[p]);
		snprintf(text, sizeof(text),
			 "{\"metadata\":{\"name\":\"pod-%d\",\"namespace\":\"ns\",\"uid\":\"pu-%d\"},"
			 "\"spec\":{\"nodeName\":\"node-a\",\"containers\":[{\"name\":\"app\"}]},"
			 "\"status\":{\"phase\":\"Running\",\"containerStatuses\":["
			 "{\"name\":\"app\",\"state\":{\"running\":{}}}]}}",
			 p, p);
		W.pod[p] = json_tokener_parse(text);
		W.sleep_ms[p] = 0;
		W.pod_inflight[p] = W.pod_max_inflight[p] = W.pod_calls[p] = 0;
	}
	W.inflight = W.max_inflight = 0;
	pthread_mutex_unlock(&W.mu);
}

static const char *cr_str(int i, const char *dotted)
{
	static char buf[8][512];
	static int k;
	char *b;

	pthread_mutex_lock(&W.mu);
	b = buf[k++ % 8];
	snprintf(b, 512, "%s",
		 W.c[i].cr && kc_json_str(W.c[i].cr, dotted) ? kc_json_str(W.c[i].cr, dotted) : "");
	pthread_mutex_unlock(&W.mu);
	return b;
}

/* reason of cp-i's Stalled condition, "" without one */
static const char *stalled_reason(int i)
{
	static char buf[64];
	json_object *conds;

	buf[0] = '\0';
	pthread_mutex_lock(&W.mu);
	conds = W.c[i].cr ? kc_json_get(W.c[i].cr, "status.conditions") : NULL;
	for (size_t k = 0; conds && k < json_object_array_length(conds); k++) {
		json_object *c = json_object_array_get_idx(conds, k);

		if (kc_json_str(c, "type") && strcmp(kc_json_str(c, "type"), "Stalled") == 0)
			snprintf(buf, sizeof(buf), "%s", kc_json_str(c, "reason") ? kc_json_str(c, "reason") : "");
	}
	pthread_mutex_unlock(&W.mu);
	return buf;
}

/* ---------------------------------------------------------------- fixture */

struct fx {
	struct nht_env *e;
	pthread_mutex_t mu;
	char enospc_uid[64]; /* fail this uid's journal write number enospc_nth */
	int enospc_nth, nsave;
};

static int journal_fault(void *arg, const struct nh_record *r)
{
	struct fx *f = arg;
	int rc = 0;

	pthread_mutex_lock(&f->mu); /* called from every slot */
	if (f->enospc_uid[0] && strcmp(r->job.uid, f->enospc_uid) == 0 &&
	    ++f->nsave == f->enospc_nth)
		rc = -ENOSPC;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	pthread_mutex_init(&W.mu, NULL);
	pthread_mutex_init(&f->mu, NULL);
	world_reset();
	f->e = nht_env_new("par", handler, NULL);
	snprintf(W.ckpt_dir, sizeof(W.ckpt_dir), "%s", f->e->ckpt);
	f->e->opt.max_parallel_jobs = 4;
	f->e->opt.max_queued_jobs = 64;
	f->e->opt.max_queue_wait_seconds = 600;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	nht_env_free(f->e);
	pthread_mutex_lock(&W.mu);
	for (int i = 0; i < NCR; i++) {
		json_object_put(W.c[i].cr);
		W.c[i].cr = NULL;
	}
	for (int p = 0; p < NPOD; p++) {
		json_object_put(W.pod[p]);
		W.pod[p] = NULL;
	}
	pthread_mutex_unlock(&W.mu);
	pthread_mutex_destroy(&f->mu);
	free(f);
	return 0;
}

static void job_of(int i, struct ch_job *job)
{
	memset(job, 0, sizeof(*job));
	job->op = CH_OP_CHECKPOINT;
	snprintf(job->uid, sizeof(job->uid), "u-%d", i);
	snprintf(job->ns, sizeof(job->ns), "ns");
	snprintf(job->name, sizeof(job->name), "cp-%d", i);
}

static int submit(struct fx *f, int i)
{
	struct ch_job job;

	job_of(i, &job);
	return nh_runner_submit(f->e->rn, &job);
}

static const char *uid_of(int i)
{
	static char buf[8][16];
	static int k;
	char *b = buf[k++ % 8];

	snprintf(b, 16, "u-%d", i);
	return b;
}

/* Waits until none of cp-0..cp-(n-1) is queued or running. */
static void wait_idle(struct fx *f, int n, long ms)
{
	for (long t = 0; t < ms; t += 20) {
		bool busy = false;

		for (int i = 0; i < n; i++)
			busy = busy || nh_journal_is_queued(f->e->j, uid_of(i));
		if (!busy)
			return;
		usleep(20 * 1000);
	}
	fail_msg("the jobs did not end");
}

static bool wait_inflight(int n, long ms)
{
	for (long t = 0; t < ms; t += 10) {
		int cur;

		pthread_mutex_lock(&W.mu);
		cur = W.inflight;
		pthread_mutex_unlock(&W.mu);
		if (cur >= n)
			return true;
		usleep(10 * 1000);
	}
	return false;
}

static enum ch_state_kind state_of(struct fx *f, int i, char *msg, size_t cap)
{
	struct ch_state st;

	if (nh_journal_state(f->e->j, uid_of(i), &st, NULL) != 0)
		return (enum ch_state_kind)-1;
	if (msg)
		snprintf(msg, cap, "%s", st.message);
	return st.state;
}

/* ---------------------------------------------------------------- tests */

/* Four pods at once; three jobs of pod-0 one after the other. */
static void test_pods_parallel_same_pod_serial(void **state)
{
	struct fx *f = *state;
	struct timespec t0, t1;
	double secs;

	for (int i = 0; i < 4; i++)
		world_cr(i, i, 30);
	world_cr(4, 0, 30);
	world_cr(5, 0, 30);
	for (int p = 0; p < NPOD; p++)
		W.sleep_ms[p] = 500;
	nht_runner_open(f->e, journal_fault, f);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* pod-0's three first: the others must not wait behind them */
	assert_int_equal(submit(f, 0), 0);
	assert_int_equal(submit(f, 4), 0);
	assert_int_equal(submit(f, 5), 0);
	for (int i = 1; i < 4; i++)
		assert_int_equal(submit(f, i), 0);
	wait_idle(f, 6, 20000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("6 jobs (4 pods, 3 of pod-0), 0.5 s kubelet calls, 4 slots: %.2f s, max %d at once\n",
		      secs, W.max_inflight);
	for (int i = 0; i < 6; i++)
		assert_string_equal(cr_str(i, "status.phase"), "Succeeded");
	assert_int_equal(W.max_inflight, 4);     /* four pods really at once */
	for (int p = 0; p < 4; p++)
		assert_int_equal(W.pod_max_inflight[p], 1); /* never two of one pod */
	assert_int_equal(W.pod_calls[0], 3);
	for (int p = 1; p < 4; p++)
		assert_int_equal(W.pod_calls[p], 1);
	assert_true(secs >= 1.5); /* pod-0's three calls in a row */
	assert_int_equal(nht_count_files(W.ckpt_dir), 0);
}

/* Two slots, two waiting: the fifth is busy, nothing journaled. */
static void test_queued_then_busy(void **state)
{
	struct fx *f = *state;
	char msg[512];

	f->e->opt.max_parallel_jobs = 2;
	f->e->opt.max_queued_jobs = 2;
	for (int i = 0; i < 5; i++) {
		world_cr(i, i, 30);
		W.sleep_ms[i] = 800;
	}
	nht_runner_open(f->e, journal_fault, f);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	assert_int_equal(submit(f, 0), 0);
	assert_int_equal(submit(f, 1), 0);
	assert_true(wait_inflight(2, 5000));
	assert_int_equal(submit(f, 2), 0);
	assert_int_equal(state_of(f, 2, msg, sizeof(msg)), CH_QUEUED);
	assert_non_null(strstr(msg, "Queued on the node helper on node-a: 2 running (at most 2 at once), 0 ahead"));
	assert_int_equal(submit(f, 3), 0);
	assert_int_equal(state_of(f, 3, NULL, 0), CH_QUEUED);
	assert_int_equal(submit(f, 4), -EBUSY);
	assert_int_equal(nh_journal_state(f->e->j, "u-4", NULL, NULL), -ENOENT);
	wait_idle(f, 4, 20000);
	for (int i = 0; i < 4; i++)
		assert_string_equal(cr_str(i, "status.phase"), "Succeeded");
	assert_int_equal(W.max_inflight, 2);
	assert_int_equal(W.pod_calls[4], 0);
	/* room again: the controller's re-send is taken */
	assert_int_equal(submit(f, 4), 0);
	wait_idle(f, 5, 20000);
	assert_string_equal(cr_str(4, "status.phase"), "Succeeded");
}

/* cancel and delete-artifact, queued and running. */
static void test_cancel_and_delete_queued_running(void **state)
{
	struct fx *f = *state;
	struct ch_job job;
	struct ch_state st;
	int64_t deadline, t0;

	f->e->opt.max_parallel_jobs = 1;
	world_cr(0, 0, 30);
	world_cr(1, 1, 30);
	world_cr(2, 2, 30);
	W.sleep_ms[0] = 4000;
	nht_runner_open(f->e, journal_fault, f);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	assert_int_equal(submit(f, 0), 0);
	assert_true(wait_inflight(1, 5000));
	assert_int_equal(submit(f, 1), 0);
	assert_int_equal(submit(f, 2), 0);
	/* queued cp-1: the controller failed it and cancels: gone at once */
	fail_cr(1);
	assert_int_equal(nh_runner_cancel(f->e->rn, "u-1"), 0);
	assert_int_equal(nh_journal_state(f->e->j, "u-1", NULL, NULL), -ENOENT);
	assert_false(nh_journal_is_queued(f->e->j, "u-1"));
	/* queued cp-2: its CR deleted; delete-artifact withdraws it and succeeds */
	pthread_mutex_lock(&W.mu);
	json_object_put(W.c[2].cr);
	W.c[2].cr = NULL;
	pthread_mutex_unlock(&W.mu);
	job_of(2, &job);
	job.op = CH_OP_DELETE_ARTIFACT;
	assert_int_equal(nh_runner_delete_artifact(f->e->rn, f->e->art, f->e->j, &job, NULL, &st), 0);
	assert_int_equal(st.state, CH_SUCCEEDED);
	assert_int_equal(nh_journal_state(f->e->j, "u-2", NULL, NULL), -ENOENT);
	/* running cp-0: deleted mid kubelet call: busy, the call is aborted,
	 * then delete-artifact succeeds */
	pthread_mutex_lock(&W.mu);
	json_object_put(W.c[0].cr);
	W.c[0].cr = NULL;
	pthread_mutex_unlock(&W.mu);
	job_of(0, &job);
	job.op = CH_OP_DELETE_ARTIFACT;
	t0 = nh_mono_ms();
	assert_int_equal(nh_runner_delete_artifact(f->e->rn, f->e->art, f->e->j, &job, NULL, &st), 0);
	assert_int_equal(st.state, CH_BUSY);
	deadline = t0 + 5000;
	do {
		usleep(20 * 1000);
		assert_int_equal(nh_runner_delete_artifact(f->e->rn, f->e->art, f->e->j, &job, NULL, &st), 0);
	} while (st.state == CH_BUSY && nh_mono_ms() < deadline);
	assert_int_equal(st.state, CH_SUCCEEDED);
	assert_true(nh_mono_ms() - t0 < 2500); /* aborted, not waited out (4 s call) */
	assert_int_equal(nh_sweep_count(f->e->sweep), 1);     /* its late archive */
	assert_int_equal(W.pod_calls[1] + W.pod_calls[2], 0);
	wait_idle(f, 3, 5000);
	assert_int_equal(nht_count_files(f->e->art), 0);
}

/* The controller cancels a running job while another pod's job runs on. */
static void test_cancel_running_others_go_on(void **state)
{
	struct fx *f = *state;

	world_cr(0, 0, 30);
	world_cr(1, 1, 30);
	W.sleep_ms[0] = 2000;
	W.sleep_ms[1] = 600;
	nht_runner_open(f->e, journal_fault, f);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	assert_int_equal(submit(f, 0), 0);
	assert_int_equal(submit(f, 1), 0);
	assert_true(wait_inflight(2, 5000));
	fail_cr(0);
	assert_int_equal(nh_runner_cancel(f->e->rn, "u-0"), 0);
	wait_idle(f, 2, 10000);
	assert_string_equal(cr_str(0, "status.phase"), "Failed");
	assert_int_equal(W.c[0].npatch, 1); /* Running only: nothing after the cancel */
	assert_string_equal(cr_str(1, "status.phase"), "Succeeded");
	assert_int_equal(nh_sweep_count(f->e->sweep), 1);
}

/* Timeout while queued: its own bound from the accept; the CR failed
 * meanwhile by the controller: never run. */
static void test_timeout_while_queued(void **state)
{
	struct fx *f = *state;

	f->e->opt.max_parallel_jobs = 1;
	f->e->opt.max_queue_wait_seconds = 1;
	world_cr(0, 0, 30);
	world_cr(1, 1, 30);
	world_cr(2, 2, 30);
	W.sleep_ms[0] = 2200;
	nht_runner_open(f->e, journal_fault, f);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	assert_int_equal(submit(f, 0), 0);
	assert_true(wait_inflight(1, 5000));
	assert_int_equal(submit(f, 1), 0);
	assert_int_equal(submit(f, 2), 0);
	fail_cr(2); /* QueueTimeout by the controller, cancel lost */
	wait_idle(f, 3, 15000);
	assert_string_equal(cr_str(0, "status.phase"), "Succeeded");
	assert_string_equal(cr_str(1, "status.phase"), "Failed");
	assert_string_equal(stalled_reason(1), "QueueTimeout");
	assert_non_null(strstr(cr_str(1, "status.message"), "was not started"));
	assert_string_equal(cr_str(1, "status.startTime"), ""); /* never started */
	assert_int_equal(W.pod_calls[1], 0);
	assert_int_equal(W.pod_calls[2], 0);
	assert_int_equal(W.c[2].npatch, 0); /* terminal: nothing written */
}

/* Timeout while running: one job's kubelet call runs out, another pod's
 * job next to it succeeds; the late archive is swept. */
static void test_timeout_while_running(void **state)
{
	struct fx *f = *state;

	world_cr(0, 0, 1); /* timeout 1 + margin 1 */
	world_cr(1, 1, 30);
	W.sleep_ms[0] = 3000;
	W.sleep_ms[1] = 300;
	nht_runner_open(f->e, journal_fault, f);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	assert_int_equal(submit(f, 0), 0);
	assert_int_equal(submit(f, 1), 0);
	wait_idle(f, 2, 15000);
	assert_string_equal(cr_str(0, "status.phase"), "Failed");
	assert_non_null(strstr(cr_str(0, "status.message"), "did not answer"));
	assert_string_equal(cr_str(1, "status.phase"), "Succeeded");
	assert_int_equal(W.max_inflight, 2);
	assert_int_equal(nh_sweep_count(f->e->sweep), 1);
}

/* A 409 on every job's first status write: all succeed, one call each. */
static void test_conflict_every_job(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < 4; i++) {
		world_cr(i, i, 30);
		W.c[i].conflict_first = true;
		W.sleep_ms[i] = 200;
	}
	nht_runner_open(f->e, journal_fault, f);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(submit(f, i), 0);
	wait_idle(f, 4, 15000);
	for (int i = 0; i < 4; i++) {
		assert_string_equal(cr_str(i, "status.phase"), "Succeeded");
		assert_int_equal(W.pod_calls[i], 1);
	}
}

/* ENOSPC on each journal write of one job in turn while three others run. */
static void test_enospc_one_job(void **state)
{
	struct fx *f = *state;

	/* cp-2's writes: accepted(submit) accepted(start) checkpointing
	 * checkpointing(call) checkpointing(result) bundling durable done */
	for (int k = 2; k <= 8; k++) {
		char cmd[256];

		print_message("ENOSPC on cp-2's journal write %d\n", k);
		world_reset();
		for (int i = 0; i < 4; i++) {
			world_cr(i, i, 30);
			W.sleep_ms[i] = 100;
		}
		pthread_mutex_lock(&f->mu);
		snprintf(f->enospc_uid, sizeof(f->enospc_uid), "u-2");
		f->enospc_nth = k;
		f->nsave = 0;
		pthread_mutex_unlock(&f->mu);
		nht_runner_open(f->e, journal_fault, f);
		assert_int_equal(nh_runner_start(f->e->rn), 0);
		for (int i = 0; i < 4; i++)
			assert_int_equal(submit(f, i), 0);
		wait_idle(f, 4, 15000);
		for (int i = 0; i < 4; i++) {
			if (i == 2 && strcmp(cr_str(2, "status.phase"), "Failed") == 0) {
				assert_non_null(strstr(cr_str(2, "status.message"), "journal"));
				continue;
			}
			assert_string_equal(cr_str(i, "status.phase"), "Succeeded");
		}
		assert_true(W.pod_calls[2] <= 1);
		assert_int_equal(nht_count_files(W.ckpt_dir), 0);
		nht_runner_close(f->e);
		snprintf(cmd, sizeof(cmd), "rm -rf %s/* %s/ns", f->e->state, f->e->art);
		assert_int_equal(system(cmd), 0);
	}
}

/* A restart with several jobs journaled at different steps. */
static void test_restart_with_n_jobs(void **state)
{
	struct fx *f = *state;
	struct nh_record *r = calloc(1, sizeof(*r));
	static const enum nh_jstate st[] = { NH_J_ACCEPTED, NH_J_CHECKPOINTING, NH_J_DURABLE,
					     NH_J_DURABLE, NH_J_DURABLE };
	/* cp-2 and cp-3 resume on the same pod: one after the other */
	static const int pod[] = { 0, 1, 2, 2, 3 };

	assert_int_equal(fsu_mkdir_p(f->e->state, 0700), 0);
	nht_runner_open(f->e, journal_fault, f);
	for (int i = 0; i < 5; i++) {
		world_cr(i, pod[i], 30);
		memset(r, 0, sizeof(*r));
		r->job.op = CH_OP_CHECKPOINT;
		snprintf(r->job.uid, sizeof(r->job.uid), "u-%d", i);
		snprintf(r->job.ns, sizeof(r->job.ns), "ns");
		snprintf(r->job.name, sizeof(r->job.name), "cp-%d", i);
		r->state = st[i];
		if (st[i] != NH_J_ACCEPTED) {
			snprintf(r->job.pod, sizeof(r->job.pod), "pod-%d", pod[i]);
			snprintf(r->job.pod_uid, sizeof(r->job.pod_uid), "pu-%d", pod[i]);
			snprintf(r->pod_uid, sizeof(r->pod_uid), "pu-%d", pod[i]);
			snprintf(r->job.node, sizeof(r->job.node), "node-a");
			r->job.ncontainers = 1;
			r->job.leave_running = true;
			snprintf(r->job.containers[0], CH_NAME_MAX, "app");
			pthread_mutex_lock(&W.mu);
			json_object_object_add(kc_json_get(W.c[i].cr, "status"), "phase",
					       json_object_new_string("Running"));
			pthread_mutex_unlock(&W.mu);
		}
		if (st[i] == NH_J_DURABLE) {
			char dir[256];

			assert_int_equal(nh_artifact_path(f->e->art, &r->job, r->artifact.path,
							  sizeof(r->artifact.path)), 0);
			snprintf(dir, sizeof(dir), "%s/ns", f->e->art);
			assert_int_equal(fsu_mkdir_p(dir, 0700), 0);
			assert_int_equal(nht_write_tar(r->artifact.path), 0);
			r->artifact.size_bytes = 2048;
		}
		assert_int_equal(nh_journal_save(f->e->j, r), 0);
	}
	assert_int_equal(nh_runner_recover(f->e->rn), 0);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	wait_idle(f, 5, 15000);
	usleep(100 * 1000);
	/* accepted, never started: forgotten (the controller re-sends) */
	assert_int_equal(nh_journal_state(f->e->j, "u-0", NULL, NULL), -ENOENT);
	assert_int_equal(W.c[0].npatch, 0);
	/* started before durable: Interrupted, never a second checkpoint */
	assert_string_equal(cr_str(1, "status.phase"), "Failed");
	assert_non_null(strstr(cr_str(1, "status.message"), "restarted"));
	/* durable: finished, each once */
	for (int i = 2; i < 5; i++) {
		assert_string_equal(cr_str(i, "status.phase"), "Succeeded");
		assert_int_equal(W.c[i].npatch, 1);
	}
	for (int p = 0; p < NPOD; p++)
		assert_int_equal(W.pod_calls[p], 0);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pods_parallel_same_pod_serial, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queued_then_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_and_delete_queued_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_running_others_go_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_while_queued, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_while_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflict_every_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enospc_one_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_with_n_jobs, setup, teardown),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
