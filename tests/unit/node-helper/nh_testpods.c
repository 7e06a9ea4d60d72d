/*
 * nh_testpods.c - the several-PodCheckpoints fake world of test_nh_parallel
 * (nh_testpods.h).
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

#include "kc.h"
#include "nh_job.h"
#include "nh_journal.h"
#include "nh_testpods.h"

#define CR_PREFIX "/apis/checkpointing.dev/v1alpha1/namespaces/ns/podcheckpoints/"
#define POD_PREFIX "/api/v1/namespaces/ns/pods/"
#define NF "{\"kind\":\"Status\",\"code\":404,\"reason\":\"NotFound\"}"

struct nhp_world nhp;

void nhp_fail_cr(int i)
{
	pthread_mutex_lock(&nhp.mu);
	json_object_object_add(kc_json_get(nhp.c[i].cr, "status"), "phase",
			       json_object_new_string("Failed"));
	nhp.c[i].rv++;
	nht_set_rv(nhp.c[i].cr, nhp.c[i].rv);
	pthread_mutex_unlock(&nhp.mu);
}

/* "cp-3" -> 3, -1 otherwise. */
static int nhp_index_of(const char *name, const char *prefix, int max)
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

static int nhp_on_kubelet(int fd, const char *path)
{
	char pod[64], ctr[64], file[1024], ts[32], body[1200];
	int p, ms;

	if (sscanf(path, "/checkpoint/ns/%63[^/]/%63s", pod, ctr) != 2 ||
	    (p = nhp_index_of(pod, "pod-", NHP_NPOD)) < 0)
		return fs_reply_json(fd, 404, NF);
	pthread_mutex_lock(&nhp.mu);
	nhp.inflight++;
	if (nhp.inflight > nhp.max_inflight)
		nhp.max_inflight = nhp.inflight;
	nhp.pod_inflight[p]++;
	if (nhp.pod_inflight[p] > nhp.pod_max_inflight[p])
		nhp.pod_max_inflight[p] = nhp.pod_inflight[p];
	nhp.pod_calls[p]++;
	ms = nhp.sleep_ms[p];
	for (int i = 0; i < NHP_NCR; i++)
		if (nhp.c[i].cr && strcmp(kc_json_str(nhp.c[i].cr, "spec.podName"), pod) == 0)
			nhp.c[i].nkubelet++;
	kc_time_rfc3339(time(NULL), ts);
	snprintf(file, sizeof(file), "%s/checkpoint-%s_ns-%s-%s.tar", nhp.ckpt_dir, pod, ctr, ts);
	pthread_mutex_unlock(&nhp.mu);
	if (ms)
		usleep((useconds_t)ms * 1000);
	nht_write_tar(file); /* the runtime finishes even when the client left */
	pthread_mutex_lock(&nhp.mu);
	nhp.inflight--;
	nhp.pod_inflight[p]--;
	pthread_mutex_unlock(&nhp.mu);
	snprintf(body, sizeof(body), "{\"items\":[\"%s\"]}", file);
	return fs_reply_json(fd, 200, body);
}

static int nhp_on_status_patch(int fd, int i, const struct fs_req *req)
{
	json_object *p = json_tokener_parse(req->body ? req->body : "");
	int rc, code;

	if (!nhp.c[i].cr) {
		json_object_put(p);
		return fs_reply_json(fd, 404, NF);
	}
	nhp.c[i].npatch++;
	if (nhp.c[i].conflict_first && nhp.c[i].npatch == 1) { /* someone else wrote meanwhile */
		nhp.c[i].rv++;
		nht_set_rv(nhp.c[i].cr, nhp.c[i].rv);
	}
	code = nht_apply_status(nhp.c[i].cr, &nhp.c[i].rv, p);
	if (code == 409)
		rc = fs_reply_json(fd, 409, "{\"kind\":\"Status\",\"code\":409,\"reason\":\"Conflict\"}");
	else if (code == 422)
		rc = fs_reply_json(fd, 422, "{\"kind\":\"Status\",\"code\":422,\"reason\":\"Invalid\"}");
	else
		rc = fs_reply_json(fd, 200, json_object_to_json_string(nhp.c[i].cr));
	json_object_put(p);
	return rc;
}

static int nhp_handler(struct fake_server *s, int fd, const struct fs_req *req, void *arg)
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
		return nhp_on_kubelet(fd, path);
	pthread_mutex_lock(&nhp.mu);
	if (strncmp(path, CR_PREFIX, strlen(CR_PREFIX)) == 0 &&
	    (i = nhp_index_of(path + strlen(CR_PREFIX), "cp-", NHP_NCR)) >= 0) {
		if (strcmp(req->method, "PATCH") == 0 && strstr(path, "/status"))
			rc = nhp_on_status_patch(fd, i, req);
		else if (strcmp(req->method, "GET") == 0 && nhp.c[i].cr)
			rc = fs_reply_json(fd, 200, json_object_to_json_string(nhp.c[i].cr));
		else
			rc = fs_reply_json(fd, 404, NF);
	} else if (strncmp(path, POD_PREFIX, strlen(POD_PREFIX)) == 0 &&
		   (i = nhp_index_of(path + strlen(POD_PREFIX), "pod-", NHP_NPOD)) >= 0) {
		if (strcmp(req->method, "GET") == 0 && nhp.pod[i])
			rc = fs_reply_json(fd, 200, json_object_to_json_string(nhp.pod[i]));
		else
			rc = fs_reply_json(fd, 404, NF);
	} else if (strcmp(req->method, "POST") == 0 && strstr(path, "/events")) {
		rc = fs_reply_json(fd, 201, "{}");
	} else {
		rc = fs_reply_json(fd, 404, NF);
	}
	pthread_mutex_unlock(&nhp.mu);
	return rc;
}

/* CR cp-i for pod-p, dispatched to node-a. */
void nhp_cr_new(int i, int p, int timeout)
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
	pthread_mutex_lock(&nhp.mu);
	json_object_put(nhp.c[i].cr);
	nhp.c[i].cr = json_tokener_parse(text);
	nhp.c[i].rv = 1;
	pthread_mutex_unlock(&nhp.mu);
	assert_non_null(nhp.c[i].cr);
}

void nhp_reset(void)
{
	pthread_mutex_lock(&nhp.mu);
	for (int i = 0; i < NHP_NCR; i++) {
		json_object_put(nhp.c[i].cr);
		memset(&nhp.c[i], 0, sizeof(nhp.c[i]));
	}
	for (int p = 0; p < NHP_NPOD; p++) {
		char text[1024];

		json_object_put(nhp.pod[p]);
		snprintf(text, sizeof(text),
			 "{\"metadata\":{\"name\":\"pod-%d\",\"namespace\":\"ns\",\"uid\":\"pu-%d\"},"
			 "\"spec\":{\"nodeName\":\"node-a\",\"containers\":[{\"name\":\"app\"}]},"
			 "\"status\":{\"phase\":\"Running\",\"containerStatuses\":["
			 "{\"name\":\"app\",\"state\":{\"running\":{}}}]}}",
			 p, p);
		nhp.pod[p] = json_tokener_parse(text);
		nhp.sleep_ms[p] = 0;
		nhp.pod_inflight[p] = nhp.pod_max_inflight[p] = nhp.pod_calls[p] = 0;
	}
	nhp.inflight = nhp.max_inflight = 0;
	pthread_mutex_unlock(&nhp.mu);
}

const char *nhp_str(int i, const char *dotted)
{
	static char buf[8][512];
	static int k;
	char *b;

	pthread_mutex_lock(&nhp.mu);
	b = buf[k++ % 8];
	snprintf(b, 512, "%s",
		 nhp.c[i].cr && kc_json_str(nhp.c[i].cr, dotted) ? kc_json_str(nhp.c[i].cr, dotted) : "");
	pthread_mutex_unlock(&nhp.mu);
	return b;
}

/* reason of cp-i's Stalled condition, "" without one */
const char *nhp_stalled_reason(int i)
{
	static char buf[64];
	json_object *conds;

	buf[0] = '\0';
	pthread_mutex_lock(&nhp.mu);
	conds = nhp.c[i].cr ? kc_json_get(nhp.c[i].cr, "status.conditions") : NULL;
	for (size_t k = 0; conds && k < json_object_array_length(conds); k++) {
		json_object *c = json_object_array_get_idx(conds, k);

		if (kc_json_str(c, "type") && strcmp(kc_json_str(c, "type"), "Stalled") == 0)
			snprintf(buf, sizeof(buf), "%s", kc_json_str(c, "reason") ? kc_json_str(c, "reason") : "");
	}
	pthread_mutex_unlock(&nhp.mu);
	return buf;
}

int nhp_journal_fault(void *arg, const struct nh_record *r)
{
	struct nhp_fx *f = arg;
	int rc = 0;

	pthread_mutex_lock(&f->mu); /* called from every slot */
	if (f->enospc_uid[0] && strcmp(r->job.uid, f->enospc_uid) == 0 &&
	    ++f->nsave == f->enospc_nth)
		rc = -ENOSPC;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int nhp_setup(void **state)
{
	struct nhp_fx *f = calloc(1, sizeof(*f));

	pthread_mutex_init(&nhp.mu, NULL);
	pthread_mutex_init(&f->mu, NULL);
	nhp_reset();
	f->e = nht_env_new("par", nhp_handler, NULL);
	snprintf(nhp.ckpt_dir, sizeof(nhp.ckpt_dir), "%s", f->e->ckpt);
	f->e->opt.max_parallel_jobs = 4;
	f->e->opt.max_queued_jobs = 64;
	f->e->opt.max_queue_wait_seconds = 600;
	*state = f;
	return 0;
}

int nhp_teardown(void **state)
{
	struct nhp_fx *f = *state;

	nht_env_free(f->e);
	pthread_mutex_lock(&nhp.mu);
	for (int i = 0; i < NHP_NCR; i++) {
		json_object_put(nhp.c[i].cr);
		nhp.c[i].cr = NULL;
	}
	for (int p = 0; p < NHP_NPOD; p++) {
		json_object_put(nhp.pod[p]);
		nhp.pod[p] = NULL;
	}
	pthread_mutex_unlock(&nhp.mu);
	pthread_mutex_destroy(&f->mu);
	free(f);
	return 0;
}

void nhp_job_of(int i, struct ch_job *job)
{
	memset(job, 0, sizeof(*job));
	job->op = CH_OP_CHECKPOINT;
	snprintf(job->uid, sizeof(job->uid), "u-%d", i);
	snprintf(job->ns, sizeof(job->ns), "ns");
	snprintf(job->name, sizeof(job->name), "cp-%d", i);
}

int nhp_submit(struct nhp_fx *f, int i)
{
	struct ch_job job;

	nhp_job_of(i, &job);
	return nh_runner_submit(f->e->rn, &job);
}

const char *nhp_uid_of(int i)
{
	static char buf[8][16];
	static int k;
	char *b = buf[k++ % 8];

	snprintf(b, 16, "u-%d", i);
	return b;
}

/* Waits until none of cp-0..cp-(n-1) is queued or running. */
void nhp_wait_idle(struct nhp_fx *f, int n, long ms)
{
	for (long t = 0; t < ms; t += 20) {
		bool busy = false;

		for (int i = 0; i < n; i++)
			busy = busy || nh_journal_is_queued(f->e->j, nhp_uid_of(i));
		if (!busy)
			return;
		usleep(20 * 1000);
	}
	fail_msg("the jobs did not end");
}

bool nhp_wait_inflight(int n, long ms)
{
	for (long t = 0; t < ms; t += 10) {
		int cur;

		pthread_mutex_lock(&nhp.mu);
		cur = nhp.inflight;
		pthread_mutex_unlock(&nhp.mu);
		if (cur >= n)
			return true;
		usleep(10 * 1000);
	}
	return false;
}

enum ch_state_kind nhp_state_of(struct nhp_fx *f, int i, char *msg, size_t cap)
{
	struct ch_state st;

	if (nh_journal_state(f->e->j, nhp_uid_of(i), &st, NULL) != 0)
		return (enum ch_state_kind)-1;
	if (msg)
		snprintf(msg, cap, "%s", st.message);
	return st.state;
}

