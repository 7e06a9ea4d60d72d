/*
 * test_nh_run.c - the helper's job state machine against a fake API server
 * and kubelet (one HTTP server, tests/unit/kc/fake_server.c), with a fault
 * at every step: the CR turned terminal or re-dispatched between steps, 409
 * on each status write, the CR failed, deleted or re-created right after
 * each write was answered, each write's answer lost (applied or not), ENOSPC
 * on each journal write, a kubelet call that times out (and its late archive
 * swept), a crash after each journal state (recovery, and after an
 * unjournaled Succeeded), jobs whose contents disagree with their CR, and
 * the API requests one job makes. The fake answers a write with the object
 * as written; what "others" do (the faults) comes after the answer.
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

#define NS "ns"
#define CR_PATH "/apis/checkpointing.dev/v1alpha1/namespaces/ns/podcheckpoints/cp"
#define POD_PATH "/api/v1/namespaces/ns/pods/web"

/* ---------------------------------------------------------------- fake world */

struct world {
	pthread_mutex_t mu;
	json_object *cr;  /* NULL: deleted */
	json_object *pod; /* NULL: deleted */
	long rv;
	char ckpt_dir[512];
	/* faults */
	int conflict_on_patch;     /* answer 409 to this status patch (1-based), 0 none */
	int terminal_after_patch;  /* after answering this patch, the "controller" fails the CR */
	int delete_after_patch;    /* after answering this patch, the CR is deleted */
	int recreate_after_patch;  /* ... deleted and re-created with the same name (new uid) */
	int lose_patch;            /* this patch's answer is lost (connection closed) */
	bool lose_applies;         /* ... after it was applied */
	int terminal_after_kubelet; /* after this kubelet call, the CR is failed */
	int kubelet_sleep_ms;      /* then write the archive (late if the client left) */
	/* what happened */
	int npatch, nkubelet, ndelete, nready_true;
	int nget_cr, nget_pod, nevents, nover_terminal; /* the last: writes refused by the transition rule */
	char phases[32][16];
	int nphases;
};

static struct world W;

static void world_fail_cr_locked(void)
{
	json_object *st = kc_json_get(W.cr, "status");

	json_object_object_add(st, "phase", json_object_new_string("Failed"));
	W.rv++;
	nht_set_rv(W.cr, W.rv);
}

/* The faults happen after the answer (the object as written), as they would
 * in the API server: someone else's write after ours. */
static void after_patch_locked(void)
{
	if (W.npatch == W.terminal_after_patch)
		world_fail_cr_locked();
	if (W.npatch == W.delete_after_patch) {
		json_object_put(W.cr);
		W.cr = NULL;
	}
	if (W.npatch == W.recreate_after_patch) {
		json_object_object_add(kc_json_get(W.cr, "metadata"), "uid",
				       json_object_new_string("new-uid"));
		json_object_object_add(W.cr, "status", json_tokener_parse("{}"));
		W.rv++;
		nht_set_rv(W.cr, W.rv);
	}
}

static int on_status_patch(int fd, const struct fs_req *req)
{
	json_object *p = json_tokener_parse(req->body ? req->body : "");
	json_object *conds = kc_json_get(p, "status.conditions");
	const char *ph = kc_json_str(p, "status.phase");
	int rc, code;

	W.npatch++;
	if (!W.cr) {
		json_object_put(p);
		return fs_reply_json(fd, 404, "{\"kind\":\"Status\",\"code\":404,\"reason\":\"NotFound\"}");
	}
	if (W.npatch == W.conflict_on_patch) { /* someone else wrote meanwhile */
		W.rv++;
		nht_set_rv(W.cr, W.rv);
	}
	if (W.npatch == W.lose_patch && !W.lose_applies) {
		json_object_put(p);
		return -1; /* the answer is lost before the write: the connection closes */
	}
	code = nht_apply_status(W.cr, &W.rv, p);
	if (code == 409) {
		rc = fs_reply_json(fd, 409, "{\"kind\":\"Status\",\"code\":409,\"reason\":\"Conflict\"}");
	} else if (code == 422) {
		W.nover_terminal++;
		rc = fs_reply_json(fd, 422, "{\"kind\":\"Status\",\"code\":422,\"reason\":\"Invalid\"}");
	} else {
		for (size_t i = 0; conds && i < json_object_array_length(conds); i++) {
			json_object *c = json_object_array_get_idx(conds, i);
			if (strcmp(kc_json_str(c, "type"), "Ready") == 0 &&
			    strcmp(kc_json_str(c, "status"), "True") == 0)
				W.nready_true++;
		}
		if (W.nphases < 32)
			snprintf(W.phases[W.nphases++], 16, "%s", ph ? ph : "?");
		rc = W.npatch == W.lose_patch ? -1 : fs_reply_json(fd, 200, json_object_to_json_string(W.cr));
		after_patch_locked();
	}
	json_object_put(p);
	return rc;
}

static int handler(struct fake_server *s, int fd, const struct fs_req *req, void *arg)
{
	char path[4096];
	char *q;
	int rc = 0;

	(void)s;
	(void)arg;
	snprintf(path, sizeof(path), "%s", req->target);
	q = strchr(path, '?');
	if (q)
		*q = '\0';
	pthread_mutex_lock(&W.mu);
	if (strcmp(req->method, "GET") == 0 && strcmp(path, CR_PATH) == 0) {
		W.nget_cr++;
		if (!W.cr)
			rc = fs_reply_json(fd, 404, "{\"kind\":\"Status\",\"code\":404,\"reason\":\"NotFound\"}");
		else
			rc = fs_reply_json(fd, 200, json_object_to_json_string(W.cr));
	} else if (strcmp(req->method, "PATCH") == 0 && strcmp(path, CR_PATH "/status") == 0) {
		rc = on_status_patch(fd, req);
	} else if (strcmp(req->method, "GET") == 0 && strcmp(path, POD_PATH) == 0) {
		W.nget_pod++;
		if (!W.pod)
			rc = fs_reply_json(fd, 404, "{\"kind\":\"Status\",\"code\":404,\"reason\":\"NotFound\"}");
		else
			rc = fs_reply_json(fd, 200, json_object_to_json_string(W.pod));
	} else if (strcmp(req->method, "DELETE") == 0 && strcmp(path, POD_PATH) == 0) {
		W.ndelete++;
		json_object_put(W.pod);
		W.pod = NULL;
		rc = fs_reply_json(fd, 200, "{\"kind\":\"Status\",\"status\":\"Success\"}");
	} else if (strcmp(req->method, "POST") == 0 && strstr(path, "/events")) {
		W.nevents++;
		rc = fs_reply_json(fd, 201, "{}");
	} else if (strcmp(req->method, "POST") == 0 && strncmp(path, "/checkpoint/ns/web/", 19) == 0) {
		char file[1024], ts[32], body[1200];
		int sleep_ms = W.kubelet_sleep_ms;

		W.nkubelet++;
		if (W.nkubelet == W.terminal_after_kubelet)
			world_fail_cr_locked();
		kc_time_rfc3339(time(NULL), ts);
		snprintf(file, sizeof(file), "%s/checkpoint-web_ns-%s-%s.tar", W.ckpt_dir, path + 19, ts);
		pthread_mutex_unlock(&W.mu);
		if (sleep_ms)
			usleep((useconds_t)sleep_ms * 1000);
		nht_write_tar(file); /* the runtime finishes even when the client left */
		snprintf(body, sizeof(body), "{\"items\":[\"%s\"]}", file);
		return fs_reply_json(fd, 200, body);
	} else {
		rc = fs_reply_json(fd, 404, "{\"kind\":\"Status\",\"code\":404}");
	}
	pthread_mutex_unlock(&W.mu);
	return rc;
}

/* ---------------------------------------------------------------- fixture */

struct fx {
	struct nht_env *e;
	int enospc_on_save; /* fail this journal write (1-based) with -ENOSPC */
	int nsave;
};

static int journal_fault(void *arg, const struct nh_record *r)
{
	struct fx *f = arg;

	(void)r;
	f->nsave++;
	return f->nsave == f->enospc_on_save ? -ENOSPC : 0;
}

#define CR_TMPL \
	"{\"apiVersion\":\"checkpointing.dev/v1alpha1\",\"kind\":\"PodCheckpoint\"," \
	"\"metadata\":{\"name\":\"cp\",\"namespace\":\"ns\",\"uid\":\"cr-uid\",\"generation\":1," \
	"\"resourceVersion\":\"1\"}," \
	"\"spec\":{\"podName\":\"web\",\"leaveRunning\":%s,\"timeoutSeconds\":%d%s}," \
	"\"status\":{\"phase\":\"Pending\",\"nodeName\":\"%s\",\"podUID\":\"pod-uid\"," \
	"\"dispatchTime\":\"2024-01-01T00:00:00Z\",\"conditions\":[]}}"

static void world_reset(const char *leave, int timeout, const char *containers, const char *node)
{
	char text[2048];

	pthread_mutex_lock(&W.mu);
	json_object_put(W.cr);
	json_object_put(W.pod);
	snprintf(text, sizeof(text), CR_TMPL, leave, timeout, containers, node);
	W.cr = json_tokener_parse(text);
	assert_non_null(W.cr);
	W.pod = json_tokener_parse(
		"{\"metadata\":{\"name\":\"web\",\"namespace\":\"ns\",\"uid\":\"pod-uid\"},"
		"\"spec\":{\"nodeName\":\"node-a\",\"containers\":[{\"name\":\"app\"},{\"name\":\"db\"}],"
		"\"initContainers\":[{\"name\":\"init\"},{\"name\":\"proxy\",\"restartPolicy\":\"Always\"}]},"
		"\"status\":{\"phase\":\"Running\",\"containerStatuses\":["
		"{\"name\":\"app\",\"state\":{\"running\":{}}},{\"name\":\"db\",\"state\":{\"running\":{}}}],"
		"\"initContainerStatuses\":[{\"name\":\"init\",\"state\":{\"terminated\":{}}},"
		"{\"name\":\"proxy\",\"state\":{\"running\":{}}}]}}");
	assert_non_null(W.pod);
	W.rv = 1;
	W.conflict_on_patch = W.terminal_after_patch = W.terminal_after_kubelet = 0;
	W.delete_after_patch = W.recreate_after_patch = W.lose_patch = 0;
	W.lose_applies = false;
	W.kubelet_sleep_ms = 0;
	W.npatch = W.nkubelet = W.ndelete = W.nready_true = W.nphases = 0;
	W.nget_cr = W.nget_pod = W.nevents = W.nover_terminal = 0;
	pthread_mutex_unlock(&W.mu);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	pthread_mutex_init(&W.mu, NULL);
	world_reset("true", 30, "", "node-a");
	f->e = nht_env_new("run", handler, NULL);
	snprintf(W.ckpt_dir, sizeof(W.ckpt_dir), "%s", f->e->ckpt);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	nht_env_free(f->e);
	pthread_mutex_lock(&W.mu);
	json_object_put(W.cr);
	json_object_put(W.pod);
	W.cr = W.pod = NULL;
	pthread_mutex_unlock(&W.mu);
	free(f);
	return 0;
}

/* Submits cp's job and waits until the runner is idle with the job ended. */
static void run_job(struct fx *f, const char *cert_pem)
{
	struct ch_job job;

	memset(&job, 0, sizeof(job));
	job.op = CH_OP_CHECKPOINT;
	snprintf(job.uid, sizeof(job.uid), "cr-uid");
	snprintf(job.ns, sizeof(job.ns), NS);
	snprintf(job.name, sizeof(job.name), "cp");
	job.cert_pem = cert_pem ? strdup(cert_pem) : NULL;
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	assert_int_equal(nh_runner_submit(f->e->rn, &job), 0);
	ch_job_cleanup(&job);
	for (int i = 0; i < 300; i++) {
		usleep(50 * 1000);
		if (!nh_journal_is_queued(f->e->j, "cr-uid")) /* the runner is done with it */
			return;
	}
	fail_msg("the job did not end");
}

/* A fresh runner runs cp's job to its end. */
static void run_one(struct fx *f)
{
	nht_runner_open(f->e, journal_fault, f);
	run_job(f, NULL);
}

static const char *cr_phase(void)
{
	static char buf[32];

	pthread_mutex_lock(&W.mu);
	snprintf(buf, sizeof(buf), "%s", W.cr ? kc_json_str(W.cr, "status.phase") : "(gone)");
	pthread_mutex_unlock(&W.mu);
	return buf;
}

static const char *cr_str(const char *dotted)
{
	static char buf[512];

	pthread_mutex_lock(&W.mu);
	snprintf(buf, sizeof(buf), "%s", W.cr && kc_json_str(W.cr, dotted) ? kc_json_str(W.cr, dotted) : "");
	pthread_mutex_unlock(&W.mu);
	return buf;
}

static bool cr_bool(const char *dotted)
{
	bool v;

	pthread_mutex_lock(&W.mu);
	v = W.cr && kc_json_get(W.cr, dotted) && json_object_get_boolean(kc_json_get(W.cr, dotted));
	pthread_mutex_unlock(&W.mu);
	return v;
}

static int count_artifacts(struct fx *f)
{
	char d[256];

	snprintf(d, sizeof(d), "%s/ns", f->e->art);
	return nht_count_files(d);
}

/* ---------------------------------------------------------------- tests */

static void test_happy_leave_running(void **state)
{
	struct fx *f = *state;

	run_one(f);
	assert_string_equal(cr_phase(), "Succeeded");
	assert_int_equal(W.nkubelet, 3); /* app, db and the running native sidecar */
	assert_int_equal(W.ndelete, 0);
	assert_int_equal(W.nready_true, 1);
	assert_non_null(cr_str("status.startTime")[0] ? "x" : NULL);
	assert_int_equal(count_artifacts(f), 1);
	assert_int_equal(nht_count_files(W.ckpt_dir), 0); /* no plaintext left */
	/* the helper never writes the controller's fields */
	assert_string_equal(cr_str("status.nodeName"), "node-a");
	assert_string_equal(cr_str("status.podUID"), "pod-uid");
}

static void test_leave_running_false_commit_point(void **state)
{
	struct fx *f = *state;

	world_reset("false", 30, ",\"containers\":[\"app\"]", "node-a");
	run_one(f);
	assert_string_equal(cr_phase(), "Succeeded");
	assert_int_equal(W.nkubelet, 1);
	assert_int_equal(W.ndelete, 1);
	/* Running, Running (deletingPod), Succeeded: Ready=True once, at the end */
	assert_int_equal(W.nphases, 3);
	assert_string_equal(W.phases[0], "Running");
	assert_string_equal(W.phases[1], "Running");
	assert_string_equal(W.phases[2], "Succeeded");
	assert_int_equal(W.nready_true, 1);
	assert_true(cr_bool("status.podDeleted"));
	assert_false(cr_bool("status.deletingPod"));
}

static void test_not_ours_does_nothing(void **state)
{
	struct fx *f = *state;

	/* dispatched to another node: a job naming it here does nothing */
	world_reset("false", 30, "", "node-b");
	run_one(f);
	assert_int_equal(W.nkubelet, 0);
	assert_int_equal(W.npatch, 0);
	assert_int_equal(W.ndelete, 0);
	assert_int_equal(nh_journal_state(f->e->j, "cr-uid", NULL, NULL), -ENOENT); /* forgotten */
	nht_runner_close(f->e);

	/* already Failed: the same */
	world_reset("false", 30, "", "node-a");
	pthread_mutex_lock(&W.mu);
	world_fail_cr_locked();
	pthread_mutex_unlock(&W.mu);
	run_one(f);
	assert_int_equal(W.nkubelet, 0);
	assert_int_equal(W.npatch, 0);
	assert_int_equal(W.ndelete, 0);
	assert_string_equal(cr_phase(), "Failed");
	nht_runner_close(f->e);

	/* deleted and re-created with the same name: another uid */
	world_reset("false", 30, "", "node-a");
	pthread_mutex_lock(&W.mu);
	json_object_object_add(kc_json_get(W.cr, "metadata"), "uid", json_object_new_string("new-uid"));
	pthread_mutex_unlock(&W.mu);
	run_one(f);
	assert_int_equal(W.nkubelet, 0);
	assert_int_equal(W.npatch, 0);
	assert_int_equal(W.ndelete, 0);
}

static void test_terminal_between_steps(void **state)
{
	struct fx *f = *state;

	/* failed by the controller right after answering Running: the first
	 * kubelet call acts on that fresh answer, the re-read after it (a long
	 * wait) stops the job: no second call, no delete, no artifact, no
	 * plaintext, and nothing written over Failed */
	world_reset("false", 30, "", "node-a");
	W.terminal_after_patch = 1;
	run_one(f);
	assert_int_equal(W.nkubelet, 1);
	assert_int_equal(W.ndelete, 0);
	assert_string_equal(cr_phase(), "Failed");
	assert_int_equal(W.nphases, 1);
	assert_int_equal(W.nover_terminal, 0);
	assert_int_equal(count_artifacts(f), 0);
	assert_int_equal(nht_count_files(W.ckpt_dir), 0);
	nht_runner_close(f->e);

	/* failed during the first of three kubelet calls: no second, no delete,
	 * no artifact, no plaintext */
	world_reset("false", 30, "", "node-a");
	W.terminal_after_kubelet = 1;
	run_one(f);
	assert_int_equal(W.nkubelet, 1);
	assert_int_equal(W.ndelete, 0);
	assert_string_equal(cr_phase(), "Failed");
	assert_int_equal(count_artifacts(f), 0);
	assert_int_equal(nht_count_files(W.ckpt_dir), 0);
	nht_runner_close(f->e);

	/* failed at the commit point (after "deleting pod" was recorded): the
	 * pod is kept; the artifact the status records is kept */
	world_reset("false", 30, ",\"containers\":[\"app\"]", "node-a");
	W.terminal_after_patch = 2;
	run_one(f);
	assert_int_equal(W.nkubelet, 1);
	assert_int_equal(W.ndelete, 0);
	assert_string_equal(cr_phase(), "Failed");
	assert_int_equal(W.nready_true, 0);
	assert_int_equal(count_artifacts(f), 1);
}

static void test_conflict_on_each_status_write(void **state)
{
	struct fx *f = *state;

	for (int k = 1; k <= 3; k++) {
		world_reset("false", 30, ",\"containers\":[\"app\"]", "node-a");
		W.conflict_on_patch = k;
		run_one(f);
		assert_string_equal(cr_phase(), "Succeeded");
		assert_int_equal(W.nkubelet, 1); /* a 409 never repeats a checkpoint */
		assert_int_equal(W.ndelete, 1);
		assert_int_equal(W.nready_true, 1);
		/* the start, the one before the delete, one re-read for the 409 */
		assert_int_equal(W.nget_cr, 3);
		nht_runner_close(f->e);
		assert_int_equal(system("true"), 0);
		{
			char cmd[256];
			snprintf(cmd, sizeof(cmd), "rm -rf %s/* %s/ns", f->e->state, f->e->art);
			assert_int_equal(system(cmd), 0);
		}
	}
}

/* What one job asks the API server, besides the controller's writes:
 * leaveRunning: one GET of the CR (the start), the pod once, Running and
 * Succeeded written from the answers before them, three Events
 * (CheckpointStarted, CheckpointCompleted, Checkpointed on the pod); with
 * three containers a re-read before each call after the first (each call
 * is a long wait); leaveRunning: false a GET right before the pod delete,
 * the commit point's write and two Events more (PodDeleted,
 * DeletedAfterCheckpoint). */
static void test_requests_per_job(void **state)
{
	static const struct {
		const char *leave, *containers;
		int nkubelet, nget_cr, nget_pod, npatch, nevents, ndelete;
	} c[] = {
		{ "true", ",\"containers\":[\"app\"]", 1, 1, 1, 2, 3, 0 },
		{ "true", "", 3, 3, 1, 2, 3, 0 },
		{ "false", ",\"containers\":[\"app\"]", 1, 2, 1, 3, 5, 1 },
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		world_reset(c[i].leave, 30, c[i].containers, "node-a");
		run_one(f);
		assert_string_equal(cr_phase(), "Succeeded");
		assert_int_equal(W.nkubelet, c[i].nkubelet);
		assert_int_equal(W.nget_cr, c[i].nget_cr);
		assert_int_equal(W.nget_pod, c[i].nget_pod);
		assert_int_equal(W.npatch, c[i].npatch);
		assert_int_equal(W.nevents, c[i].nevents);
		assert_int_equal(W.ndelete, c[i].ndelete);
		nht_runner_close(f->e);
	}
}

static int jstate(struct fx *f)
{
	enum nh_jstate js = NH_J_ACCEPTED;

	assert_int_equal(nh_journal_state(f->e->j, "cr-uid", NULL, &js), 0);
	return (int)js;
}

static void reset_dirs(struct fx *f)
{
	char cmd[256];

	nht_runner_close(f->e);
	snprintf(cmd, sizeof(cmd), "rm -rf %s/* %s/ns %s/*", f->e->state, f->e->art, W.ckpt_dir);
	assert_int_equal(system(cmd), 0);
}

/* The CR failed by the controller, deleted, or deleted and re-created right
 * after each of the helper's non-terminal writes was answered: the job stops
 * at its next request, never writes over the terminal status, never deletes
 * the pod, and keeps an artifact only when a terminal status records it. */
static void test_cr_changed_after_each_write(void **state)
{
	struct fx *f = *state;

	for (int k = 1; k <= 2; k++) {
		for (int what = 0; what < 3; what++) {
			print_message("after write %d: %s\n", k,
				      what == 0 ? "Failed" : what == 1 ? "deleted" : "re-created");
			world_reset("false", 30, ",\"containers\":[\"app\"]", "node-a");
			if (what == 0)
				W.terminal_after_patch = k;
			else if (what == 1)
				W.delete_after_patch = k;
			else
				W.recreate_after_patch = k;
			run_one(f);
			assert_int_equal(W.nphases, k); /* nothing written after the change */
			assert_int_equal(W.nover_terminal, 0);
			assert_int_equal(W.ndelete, 0);
			assert_int_equal(W.nready_true, 0);
			assert_int_equal(W.nkubelet, 1);
			assert_int_equal(nht_count_files(W.ckpt_dir), 0);
			/* at the commit point a Failed status records the artifact */
			assert_int_equal(count_artifacts(f), k == 2 && what == 0 ? 1 : 0);
			if (what == 0)
				assert_string_equal(cr_phase(), "Failed");
			else if (what == 1)
				assert_string_equal(cr_phase(), "(gone)");
			else
				assert_string_equal(cr_str("metadata.uid"), "new-uid");
			assert_int_equal(jstate(f), NH_J_FAILED);
			reset_dirs(f);
		}
	}
}

static void lost_answer_check(struct fx *f, int ndelete)
{
	assert_string_equal(cr_phase(), "Succeeded");
	assert_int_equal(W.nkubelet, 1);
	assert_int_equal(W.ndelete, ndelete);
	assert_int_equal(W.nready_true, 1);
	assert_int_equal(W.nover_terminal, 0);
	assert_int_equal(count_artifacts(f), 1);
	assert_int_equal(nht_count_files(W.ckpt_dir), 0);
	assert_int_equal(jstate(f), NH_J_DONE);
	reset_dirs(f);
}

/* The answer to each status write lost (the connection closes), before or
 * after the API server applied it: the job ends as if it had arrived, and
 * a re-read that shows its own Succeeded keeps the artifact. */
static void test_lost_answer_on_each_write(void **state)
{
	struct fx *f = *state;

	/* leaveRunning true: Running, Succeeded; false: Running, deletingPod, Succeeded */
	for (int leave = 0; leave < 2; leave++) {
		for (int k = 1; k <= 3 - leave; k++) {
			for (int applied = 0; applied < 2; applied++) {
				print_message("leaveRunning %s, answer of write %d lost, %s\n",
					      leave ? "true" : "false", k, applied ? "applied" : "not applied");
				world_reset(leave ? "true" : "false", 30, ",\"containers\":[\"app\"]", "node-a");
				W.lose_patch = k;
				W.lose_applies = applied;
				run_one(f);
				lost_answer_check(f, leave ? 0 : 1);
			}
		}
	}
}

static void test_enospc_on_each_journal_write(void **state)
{
	struct fx *f = *state;

	/* writes: accepted(submit) accepted(start) checkpointing checkpointing(call)
	 * checkpointing(result) bundling durable ...: each fails once in turn */
	for (int k = 2; k <= 9; k++) {
		char cmd[256];

		world_reset("true", 30, ",\"containers\":[\"app\"]", "node-a");
		f->nsave = 0;
		f->enospc_on_save = k;
		print_message("ENOSPC on journal write %d\n", k);
		run_one(f);
		/* never left "running": either done or failed with a reason */
		if (strcmp(cr_phase(), "Failed") == 0) {
			assert_non_null(strstr(cr_str("status.message"), "journal"));
			assert_int_equal(count_artifacts(f), 0);
		} else {
			assert_string_equal(cr_phase(), "Succeeded");
			assert_int_equal(count_artifacts(f), 1);
		}
		assert_true(W.nkubelet <= 1);
		assert_int_equal(nht_count_files(W.ckpt_dir), 0);
		nht_runner_close(f->e);
		f->enospc_on_save = 0;
		snprintf(cmd, sizeof(cmd), "rm -rf %s/* %s/ns", f->e->state, f->e->art);
		assert_int_equal(system(cmd), 0);
	}
}

static void test_kubelet_timeout_late_archive_swept(void **state)
{
	struct fx *f = *state;

	/* timeoutSeconds 1 + margin 1: the helper gives up at 2 s; the runtime
	 * writes the archive at 3 s, after the CR is Failed */
	world_reset("false", 1, ",\"containers\":[\"app\"]", "node-a");
	W.kubelet_sleep_ms = 3000;
	run_one(f);
	assert_string_equal(cr_phase(), "Failed");
	assert_non_null(strstr(cr_str("status.message"), "did not answer"));
	assert_int_equal(W.ndelete, 0);
	assert_int_equal(nh_sweep_count(f->e->sweep), 1);
	for (int i = 0; i < 60 && nht_count_files(W.ckpt_dir) == 0; i++)
		usleep(100 * 1000);
	assert_int_equal(nht_count_files(W.ckpt_dir), 1); /* the late plaintext */
	assert_int_equal(nh_sweep_tick(f->e->sweep, (int64_t)time(NULL)), 1);
	assert_int_equal(nht_count_files(W.ckpt_dir), 0);
	/* the sweep is journaled: a restart continues it */
	nht_runner_close(f->e);
	assert_int_equal(nh_sweep_open(f->e->state, W.ckpt_dir, 60, &f->e->sweep), 0);
	assert_int_equal(nh_sweep_count(f->e->sweep), 1);
	assert_int_equal(nh_sweep_tick(f->e->sweep, (int64_t)time(NULL) + 3600), 0);
	assert_int_equal(nh_sweep_count(f->e->sweep), 0); /* expired */
	nh_sweep_free(f->e->sweep);
	f->e->sweep = NULL;
}

static void test_container_not_running(void **state)
{
	struct fx *f = *state;

	/* a plain init container: not checkpointable */
	world_reset("false", 30, ",\"containers\":[\"app\",\"init\"]", "node-a");
	run_one(f);
	assert_string_equal(cr_phase(), "Failed");
	assert_int_equal(W.nkubelet, 0); /* nothing frozen */
	assert_int_equal(W.ndelete, 0);
	assert_non_null(strstr(cr_str("status.message"), "container init"));
	nht_runner_close(f->e);
	/* one of the selected containers exited: refused before freezing the others */
	world_reset("false", 30, "", "node-a");
	pthread_mutex_lock(&W.mu);
	json_object_object_add(json_object_array_get_idx(kc_json_get(W.pod, "status.containerStatuses"), 1),
			       "state", json_tokener_parse("{\"terminated\":{\"exitCode\":1}}"));
	pthread_mutex_unlock(&W.mu);
	run_one(f);
	assert_string_equal(cr_phase(), "Failed");
	assert_int_equal(W.nkubelet, 0);
	assert_int_equal(W.ndelete, 0);
	assert_non_null(strstr(cr_str("status.message"), "container db of pod ns/web is not running"));
}

static void test_wrong_recipient_does_nothing(void **state)
{
	struct fx *f = *state;
	char *cert = NULL, *key = NULL, fp[65];

	assert_int_equal(ch_make_self_signed("127.0.0.1", 2, &cert, &key, fp), 0);
	world_reset("true", 30, ",\"encrypt\":true,\"encryptionSecret\":\"k\"", "node-a");
	pthread_mutex_lock(&W.mu);
	json_object_object_add(kc_json_get(W.cr, "status"), "recipientFingerprint",
			       json_object_new_string("00ff"));
	pthread_mutex_unlock(&W.mu);
	nht_runner_open(f->e, journal_fault, f);
	run_job(f, cert);
	assert_int_equal(W.nkubelet, 0);
	assert_int_equal(W.npatch, 0);
	nht_runner_close(f->e);
	/* the recorded one: encrypted and done */
	world_reset("true", 30, ",\"encrypt\":true,\"encryptionSecret\":\"k\",\"containers\":[\"app\"]", "node-a");
	pthread_mutex_lock(&W.mu);
	json_object_object_add(kc_json_get(W.cr, "status"), "recipientFingerprint",
			       json_object_new_string(fp));
	pthread_mutex_unlock(&W.mu);
	nht_runner_open(f->e, journal_fault, f);
	run_job(f, cert);
	assert_string_equal(cr_phase(), "Succeeded");
	assert_true(cr_bool("status.artifact.encrypted"));
	free(cert);
	free(key);
}

/* A crash after each journal state, then a restart: what recovery does. */
static void test_recovery_after_each_state(void **state)
{
	static const enum nh_jstate states[] = { NH_J_ACCEPTED, NH_J_CHECKPOINTING, NH_J_BUNDLING,
						 NH_J_DURABLE, NH_J_DELETING_POD, NH_J_POD_DELETED };
	struct fx *f = *state;
	struct nh_record *r = calloc(1, sizeof(*r));

	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		char arch[1024], cmd[256];
		bool started = states[i] != NH_J_ACCEPTED;

		print_message("crash after %s\n", nh_jstate_name(states[i]));
		world_reset("false", 30, ",\"containers\":[\"app\"]", "node-a");
		pthread_mutex_lock(&W.mu);
		json_object_object_add(kc_json_get(W.cr, "status"), "phase",
				       json_object_new_string(started ? "Running" : "Pending"));
		if (states[i] >= NH_J_DELETING_POD)
			json_object_object_add(kc_json_get(W.cr, "status"), "deletingPod",
					       json_object_new_boolean(true));
		if (states[i] == NH_J_POD_DELETED) {
			json_object_put(W.pod);
			W.pod = NULL;
		}
		pthread_mutex_unlock(&W.mu);
		memset(r, 0, sizeof(*r));
		r->job.op = CH_OP_CHECKPOINT;
		snprintf(r->job.uid, sizeof(r->job.uid), "cr-uid");
		snprintf(r->job.ns, sizeof(r->job.ns), "ns");
		snprintf(r->job.name, sizeof(r->job.name), "cp");
		if (started) {
			snprintf(r->job.pod, sizeof(r->job.pod), "web");
			snprintf(r->job.pod_uid, sizeof(r->job.pod_uid), "pod-uid");
			snprintf(r->pod_uid, sizeof(r->pod_uid), "pod-uid");
			snprintf(r->job.node, sizeof(r->job.node), "node-a");
			r->job.ncontainers = 1;
			snprintf(r->job.containers[0], CH_NAME_MAX, "app");
		}
		r->state = states[i];
		snprintf(arch, sizeof(arch), "%s/checkpoint-web_ns-app-2024-01-01T00:00:00Z.tar", W.ckpt_dir);
		if (states[i] == NH_J_CHECKPOINTING || states[i] == NH_J_BUNDLING) {
			assert_int_equal(nht_write_tar(arch), 0);
			r->nresults = 1;
			snprintf(r->results[0].name, CH_NAME_MAX, "app");
			snprintf(r->results[0].archive, sizeof(r->results[0].archive), "%s", arch);
		}
		if (states[i] == NH_J_CHECKPOINTING) {
			/* and a second call in flight at the crash */
			snprintf(r->container, sizeof(r->container), "db");
			r->kubelet_started = (int64_t)time(NULL);
		}
		if (states[i] >= NH_J_BUNDLING) {
			assert_int_equal(nh_artifact_path(f->e->art, &r->job, r->artifact.path,
							  sizeof(r->artifact.path)), 0);
			assert_int_equal(fsu_mkdir_p(f->e->art, 0700), 0);
			snprintf(cmd, sizeof(cmd), "%s/ns", f->e->art);
			assert_int_equal(fsu_mkdir_p(cmd, 0700), 0);
			assert_int_equal(nht_write_tar(r->artifact.path), 0);
			if (states[i] == NH_J_BUNDLING)
				r->artifact.path[0] = '\0'; /* renamed, "durable" not yet journaled */
		}
		assert_int_equal(fsu_mkdir_p(f->e->state, 0700), 0);
		nht_runner_open(f->e, journal_fault, f);
		assert_int_equal(nh_journal_save(f->e->j, r), 0);
		assert_int_equal(nh_runner_recover(f->e->rn), 0);
		assert_int_equal(nh_runner_start(f->e->rn), 0);
		for (int t = 0; t < 100 && (nh_journal_is_queued(f->e->j, "cr-uid")); t++)
			usleep(50 * 1000);
		usleep(100 * 1000);
		switch (states[i]) {
		case NH_J_ACCEPTED: /* nothing happened: forgotten, the controller re-sends */
			assert_int_equal(nh_journal_state(f->e->j, "cr-uid", NULL, NULL), -ENOENT);
			assert_int_equal(W.npatch, 0);
			break;
		case NH_J_CHECKPOINTING:
		case NH_J_BUNDLING: /* Interrupted, no plaintext, no unrecorded artifact */
			assert_string_equal(cr_phase(), "Failed");
			assert_non_null(strstr(cr_str("status.message"), "restarted"));
			assert_int_not_equal(access(arch, F_OK), 0);
			assert_int_equal(count_artifacts(f), 0);
			assert_int_equal(W.nkubelet, 0);
			assert_int_equal(W.ndelete, 0);
			if (states[i] == NH_J_CHECKPOINTING)
				assert_int_equal(nh_sweep_count(f->e->sweep), 1); /* the call in flight */
			break;
		default: /* durable and later: finished, the pod deleted once at most */
			assert_string_equal(cr_phase(), "Succeeded");
			assert_int_equal(W.ndelete, states[i] == NH_J_POD_DELETED ? 0 : 1);
			assert_int_equal(W.nready_true, 1);
			assert_int_equal(W.nkubelet, 0);
			break;
		}
		nht_runner_close(f->e);
		snprintf(cmd, sizeof(cmd), "rm -rf %s/* %s/ns %s/*", f->e->state, f->e->art, W.ckpt_dir);
		assert_int_equal(system(cmd), 0);
	}
	free(r);
}

/* A crash after the Succeeded write, before the journal said so: the resumed
 * job finds its own result and keeps the artifact (not "someone else
 * decided", which would remove it). */
static void test_recovery_after_unjournaled_success(void **state)
{
	struct fx *f = *state;
	struct nh_record *r = calloc(1, sizeof(*r));
	char cmd[256];

	world_reset("true", 30, ",\"containers\":[\"app\"]", "node-a");
	r->job.op = CH_OP_CHECKPOINT;
	snprintf(r->job.uid, sizeof(r->job.uid), "cr-uid");
	snprintf(r->job.ns, sizeof(r->job.ns), "ns");
	snprintf(r->job.name, sizeof(r->job.name), "cp");
	snprintf(r->job.pod, sizeof(r->job.pod), "web");
	snprintf(r->job.pod_uid, sizeof(r->job.pod_uid), "pod-uid");
	snprintf(r->pod_uid, sizeof(r->pod_uid), "pod-uid");
	snprintf(r->job.node, sizeof(r->job.node), "node-a");
	r->job.leave_running = true;
	r->job.ncontainers = 1;
	snprintf(r->job.containers[0], CH_NAME_MAX, "app");
	r->state = NH_J_DURABLE;
	assert_int_equal(nh_artifact_path(f->e->art, &r->job, r->artifact.path, sizeof(r->artifact.path)), 0);
	snprintf(r->artifact.sha256, sizeof(r->artifact.sha256), "%064d", 7);
	snprintf(cmd, sizeof(cmd), "%s/ns", f->e->art);
	assert_int_equal(fsu_mkdir_p(cmd, 0700), 0);
	assert_int_equal(nht_write_tar(r->artifact.path), 0);
	pthread_mutex_lock(&W.mu);
	json_object_object_add(kc_json_get(W.cr, "status"), "phase", json_object_new_string("Succeeded"));
	json_object_object_add(kc_json_get(W.cr, "status"), "artifact", json_object_new_object());
	json_object_object_add(kc_json_get(W.cr, "status.artifact"), "sha256",
			       json_object_new_string(r->artifact.sha256));
	pthread_mutex_unlock(&W.mu);
	assert_int_equal(fsu_mkdir_p(f->e->state, 0700), 0);
	nht_runner_open(f->e, journal_fault, f);
	assert_int_equal(nh_journal_save(f->e->j, r), 0);
	assert_int_equal(nh_runner_recover(f->e->rn), 0);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	for (int t = 0; t < 100 && nh_journal_is_queued(f->e->j, "cr-uid"); t++)
		usleep(50 * 1000);
	usleep(100 * 1000);
	assert_string_equal(cr_phase(), "Succeeded");
	assert_int_equal(W.npatch, 0);
	assert_int_equal(count_artifacts(f), 1);
	assert_int_equal(jstate(f), NH_J_DONE);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_happy_leave_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leave_running_false_commit_point, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_ours_does_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_terminal_between_steps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflict_on_each_status_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_requests_per_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cr_changed_after_each_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_answer_on_each_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enospc_on_each_journal_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kubelet_timeout_late_archive_swept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_container_not_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_recipient_does_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_after_each_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_after_unjournaled_success, setup, teardown),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
