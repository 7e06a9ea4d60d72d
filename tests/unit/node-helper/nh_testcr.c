/*
 * nh_testcr.c - the one-PodCheckpoint fake world of the runner tests
 * (nh_testcr.h).
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ch.h"
#include "kc.h"
#include "nh_job.h"
#include "nh_journal.h"
#include "nh_testcr.h"

#define NS "ns"
#define CR_PATH "/apis/checkpointing.dev/v1alpha1/namespaces/ns/podcheckpoints/cp"
#define POD_PATH "/api/v1/namespaces/ns/pods/web"

struct nhw_world nhw;

void nhw_fail_cr_locked(void)
{
	json_object *st = kc_json_get(nhw.cr, "status");

	json_object_object_add(st, "phase", json_object_new_string("Failed"));
	nhw.rv++;
	nht_set_rv(nhw.cr, nhw.rv);
}

/* The faults happen after the answer (the object as written), as they would
 * in the API server: someone else's write after ours. */
static void nhw_after_patch_locked(void)
{
	if (nhw.npatch == nhw.terminal_after_patch)
		nhw_fail_cr_locked();
	if (nhw.npatch == nhw.delete_after_patch) {
		json_object_put(nhw.cr);
		nhw.cr = NULL;
	}
	if (nhw.npatch == nhw.recreate_after_patch) {
		json_object_object_add(kc_json_get(nhw.cr, "metadata"), "uid",
				       json_object_new_string("new-uid"));
		json_object_object_add(nhw.cr, "status", json_tokener_parse("{}"));
		nhw.rv++;
		nht_set_rv(nhw.cr, nhw.rv);
	}
}

static int nhw_on_status_patch(int fd, const struct fs_req *req)
{
	json_object *p = json_tokener_parse(req->body ? req->body : "");
	json_object *conds = kc_json_get(p, "status.conditions");
	const char *ph = kc_json_str(p, "status.phase");
	int rc, code;

	nhw.npatch++;
	if (!nhw.cr) {
		json_object_put(p);
		return fs_reply_json(fd, 404, "{\"kind\":\"Status\",\"code\":404,\"reason\":\"NotFound\"}");
	}
	if (nhw.npatch == nhw.conflict_on_patch) { /* someone else wrote meanwhile */
		nhw.rv++;
		nht_set_rv(nhw.cr, nhw.rv);
	}
	if (nhw.npatch == nhw.lose_patch && !nhw.lose_applies) {
		json_object_put(p);
		return -1; /* the answer is lost before the write: the connection closes */
	}
	if (ph && strcmp(ph, "Failed") == 0) {
		nhw.nfailed_patch++;
		if (nhw.reject_failed < 0 || nhw.nrejected < nhw.reject_failed) {
			nhw.nrejected++; /* the API server does not apply it (overloaded) */
			json_object_put(p);
			return fs_reply_json(fd, 503, "{\"kind\":\"Status\",\"code\":503,\"reason\":\"ServiceUnavailable\"}");
		}
	}
	code = nht_apply_status(nhw.cr, &nhw.rv, p);
	if (code == 409) {
		rc = fs_reply_json(fd, 409, "{\"kind\":\"Status\",\"code\":409,\"reason\":\"Conflict\"}");
	} else if (code == 422) {
		nhw.nover_terminal++;
		rc = fs_reply_json(fd, 422, "{\"kind\":\"Status\",\"code\":422,\"reason\":\"Invalid\"}");
	} else {
		for (size_t i = 0; conds && i < json_object_array_length(conds); i++) {
			json_object *c = json_object_array_get_idx(conds, i);
			if (strcmp(kc_json_str(c, "type"), "Ready") == 0 &&
			    strcmp(kc_json_str(c, "status"), "True") == 0)
				nhw.nready_true++;
		}
		if (nhw.nphases < 32)
			snprintf(nhw.phases[nhw.nphases++], 16, "%s", ph ? ph : "?");
		rc = nhw.npatch == nhw.lose_patch ? -1 : fs_reply_json(fd, 200, json_object_to_json_string(nhw.cr));
		nhw_after_patch_locked();
	}
	json_object_put(p);
	return rc;
}

static int nhw_handler(struct fake_server *s, int fd, const struct fs_req *req, void *arg)
{
	char path[4096];
	char *q;
	long stall;
	int rc = 0;

	(void)arg;
	snprintf(path, sizeof(path), "%s", req->target);
	q = strchr(path, '?');
	if (q)
		*q = '\0';
	pthread_mutex_lock(&nhw.mu);
	if (strcmp(req->method, "GET") == 0 && strcmp(path, CR_PATH) == 0) {
		nhw.nget_cr++;
		if (!nhw.cr)
			rc = fs_reply_json(fd, 404, "{\"kind\":\"Status\",\"code\":404,\"reason\":\"NotFound\"}");
		else
			rc = fs_reply_json(fd, 200, json_object_to_json_string(nhw.cr));
	} else if (strcmp(req->method, "PATCH") == 0 && strcmp(path, CR_PATH "/status") == 0) {
		rc = nhw_on_status_patch(fd, req);
	} else if (strcmp(req->method, "GET") == 0 && strcmp(path, POD_PATH) == 0) {
		nhw.nget_pod++;
		if (!nhw.pod)
			rc = fs_reply_json(fd, 404, "{\"kind\":\"Status\",\"code\":404,\"reason\":\"NotFound\"}");
		else
			rc = fs_reply_json(fd, 200, json_object_to_json_string(nhw.pod));
	} else if (strcmp(req->method, "DELETE") == 0 && strcmp(path, POD_PATH) == 0) {
		nhw.ndelete++;
		json_object_put(nhw.pod);
		nhw.pod = NULL;
		rc = fs_reply_json(fd, 200, "{\"kind\":\"Status\",\"status\":\"Success\"}");
	} else if (strcmp(req->method, "POST") == 0 && strstr(path, "/events")) {
		nhw.nevents++;
		rc = fs_reply_json(fd, 201, "{}");
	} else if (strcmp(req->method, "POST") == 0 && strncmp(path, "/checkpoint/ns/web/", 19) == 0) {
		char file[1024], ts[32], body[1200];
		int sleep_ms = nhw.kubelet_sleep_ms;

		nhw.nkubelet++;
		if (nhw.nkubelet == nhw.terminal_after_kubelet)
			nhw_fail_cr_locked();
		kc_time_rfc3339(time(NULL), ts);
		snprintf(file, sizeof(file), "%s/checkpoint-web_ns-%s-%s.tar", nhw.ckpt_dir, path + 19, ts);
		pthread_mutex_unlock(&nhw.mu);
		if (sleep_ms)
			usleep((useconds_t)sleep_ms * 1000);
		nht_write_tar(file); /* the runtime finishes even when the client left */
		snprintf(body, sizeof(body), "{\"items\":[\"%s\"]}", file);
		return fs_reply_json(fd, 200, body);
	} else {
		rc = fs_reply_json(fd, 404, "{\"kind\":\"Status\",\"code\":404}");
	}
	stall = rc == -1 ? nhw.lose_after_ms : 0;
	pthread_mutex_unlock(&nhw.mu);
	if (stall)
		fs_hang(s, stall); /* no answer until the client gave up */
	return rc;
}

int nhw_journal_fault(void *arg, const struct nh_record *r)
{
	struct nhw_fx *f = arg;

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

void nhw_reset(const char *leave, int timeout, const char *containers, const char *node)
{
	char text[2048];

	pthread_mutex_lock(&nhw.mu);
	json_object_put(nhw.cr);
	json_object_put(nhw.pod);
	snprintf(text, sizeof(text), CR_TMPL, leave, timeout, containers, node);
	nhw.cr = json_tokener_parse(text);
	assert_non_null(nhw.cr);
	nhw.pod = json_tokener_parse(
		"{\"metadata\":{\"name\":\"web\",\"namespace\":\"ns\",\"uid\":\"pod-uid\"},"
		"\"spec\":{\"nodeName\":\"node-a\",\"containers\":[{\"name\":\"app\"},{\"name\":\"db\"}],"
		"\"initContainers\":[{\"name\":\"init\"},{\"name\":\"proxy\",\"restartPolicy\":\"Always\"}]},"
		"\"status\":{\"phase\":\"Running\",\"containerStatuses\":["
		"{\"name\":\"app\",\"state\":{\"running\":{}}},{\"name\":\"db\",\"state\":{\"running\":{}}}],"
		"\"initContainerStatuses\":[{\"name\":\"init\",\"state\":{\"terminated\":{}}},"
		"{\"name\":\"proxy\",\"state\":{\"running\":{}}}]}}");
	assert_non_null(nhw.pod);
	nhw.rv = 1;
	nhw.conflict_on_patch = nhw.terminal_after_patch = nhw.terminal_after_kubelet = 0;
	nhw.delete_after_patch = nhw.recreate_after_patch = nhw.lose_patch = 0;
	nhw.lose_applies = false;
	nhw.lose_after_ms = 0;
	nhw.reject_failed = nhw.nfailed_patch = nhw.nrejected = 0;
	nhw.kubelet_sleep_ms = 0;
	nhw.npatch = nhw.nkubelet = nhw.ndelete = nhw.nready_true = nhw.nphases = 0;
	nhw.nget_cr = nhw.nget_pod = nhw.nevents = nhw.nover_terminal = 0;
	pthread_mutex_unlock(&nhw.mu);
}

int nhw_setup(void **state)
{
	struct nhw_fx *f = calloc(1, sizeof(*f));

	pthread_mutex_init(&nhw.mu, NULL);
	nhw_reset("true", 30, "", "node-a");
	f->e = nht_env_new("run", nhw_handler, NULL);
	snprintf(nhw.ckpt_dir, sizeof(nhw.ckpt_dir), "%s", f->e->ckpt);
	*state = f;
	return 0;
}

int nhw_teardown(void **state)
{
	struct nhw_fx *f = *state;

	nht_env_free(f->e);
	pthread_mutex_lock(&nhw.mu);
	json_object_put(nhw.cr);
	json_object_put(nhw.pod);
	nhw.cr = nhw.pod = NULL;
	pthread_mutex_unlock(&nhw.mu);
	free(f);
	return 0;
}

/* Submits cp's job and waits until the runner is idle with the job ended. */
void nhw_run_job(struct nhw_fx *f, const char *cert_pem)
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
	for (int i = 0; i < 600; i++) { /* 30 s: a case waits out a 10 s request deadline */
		usleep(50 * 1000);
		if (!nh_journal_is_queued(f->e->j, "cr-uid")) /* the runner is done with it */
			return;
	}
	fail_msg("the job did not end");
}

/* A fresh runner runs cp's job to its end. */
void nhw_run_one(struct nhw_fx *f)
{
	nht_runner_open(f->e, nhw_journal_fault, f);
	nhw_run_job(f, NULL);
}

const char *nhw_phase(void)
{
	static char buf[32];

	pthread_mutex_lock(&nhw.mu);
	snprintf(buf, sizeof(buf), "%s", nhw.cr ? kc_json_str(nhw.cr, "status.phase") : "(gone)");
	pthread_mutex_unlock(&nhw.mu);
	return buf;
}

const char *nhw_str(const char *dotted)
{
	static char buf[512];

	pthread_mutex_lock(&nhw.mu);
	snprintf(buf, sizeof(buf), "%s", nhw.cr && kc_json_str(nhw.cr, dotted) ? kc_json_str(nhw.cr, dotted) : "");
	pthread_mutex_unlock(&nhw.mu);
	return buf;
}

bool nhw_bool(const char *dotted)
{
	bool v;

	pthread_mutex_lock(&nhw.mu);
	v = nhw.cr && kc_json_get(nhw.cr, dotted) && json_object_get_boolean(kc_json_get(nhw.cr, dotted));
	pthread_mutex_unlock(&nhw.mu);
	return v;
}

int nhw_count_artifacts(struct nhw_fx *f)
{
	char d[256];

	snprintf(d, sizeof(d), "%s/ns", f->e->art);
	return nht_count_files(d);
}

int nhw_jstate(struct nhw_fx *f)
{
	enum nh_jstate js = NH_J_ACCEPTED;

	assert_int_equal(nh_journal_state(f->e->j, "cr-uid", NULL, &js), 0);
	return (int)js;
}

bool nhw_final(struct nhw_fx *f)
{
	struct nh_record *r = malloc(sizeof(*r));
	bool final;

	assert_non_null(r);
	assert_int_equal(nh_journal_get(f->e->j, "cr-uid", r), 0);
	final = r->final_written;
	free(r);
	return final;
}

void nhw_reset_dirs(struct nhw_fx *f)
{
	char cmd[256];

	nht_runner_close(f->e);
	snprintf(cmd, sizeof(cmd), "rm -rf %s/* %s/ns %s/*", f->e->state, f->e->art, nhw.ckpt_dir);
	assert_int_equal(system(cmd), 0);
}

/* The CR failed by the controller, deleted, or deleted and re-created right
 * after each of the helper's non-terminal writes was answered: the job stops
 * at its next request, never writes over the terminal status, never deletes
 * the pod, and keeps an artifact only when a terminal status records it. */
