/*
 * test_nh_recover.c - the helper restarted with a job journaled at each
 * step (nh_recover.c, then the runner): what was interrupted before
 * `durable` fails as Interrupted with its plaintext gone and never a second
 * kubelet call; later steps resume (guarded) and finish; a Succeeded
 * written before the crash but not journaled is found and kept. Against the
 * fake world of nh_testcr.c.
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
#include <curl/curl.h>

#include "ch.h"
#include "kc.h"
#include "nh_job.h"
#include "nh_journal.h"
#include "fsutil.h"
#include "nh_sweep.h"
#include "nh_testcr.h"
#include "nh_util.h"

static void test_recovery_after_each_state(void **state)
{
	static const enum nh_jstate states[] = { NH_J_ACCEPTED, NH_J_CHECKPOINTING, NH_J_BUNDLING,
						 NH_J_DURABLE, NH_J_DELETING_POD, NH_J_POD_DELETED };
	struct nhw_fx *f = *state;
	struct nh_record *r = calloc(1, sizeof(*r));

	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		char arch[1024], cmd[256];
		bool started = states[i] != NH_J_ACCEPTED;

		print_message("crash after %s\n", nh_jstate_name(states[i]));
		nhw_reset("false", 30, ",\"containers\":[\"app\"]", "node-a");
		pthread_mutex_lock(&nhw.mu);
		json_object_object_add(kc_json_get(nhw.cr, "status"), "phase",
				       json_object_new_string(started ? "Running" : "Pending"));
		if (states[i] >= NH_J_DELETING_POD)
			json_object_object_add(kc_json_get(nhw.cr, "status"), "deletingPod",
					       json_object_new_boolean(true));
		if (states[i] == NH_J_POD_DELETED) {
			json_object_put(nhw.pod);
			nhw.pod = NULL;
		}
		pthread_mutex_unlock(&nhw.mu);
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
		snprintf(arch, sizeof(arch), "%s/checkpoint-web_ns-app-2024-01-01T00:00:00Z.tar", nhw.ckpt_dir);
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
		nht_runner_open(f->e, nhw_journal_fault, f);
		assert_int_equal(nh_journal_save(f->e->j, r), 0);
		assert_int_equal(nh_runner_recover(f->e->rn), 0);
		assert_int_equal(nh_runner_start(f->e->rn), 0);
		for (int t = 0; t < 100 && (nh_journal_is_queued(f->e->j, "cr-uid")); t++)
			usleep(50 * 1000);
		usleep(100 * 1000);
		switch (states[i]) {
		case NH_J_ACCEPTED: /* nothing happened: forgotten, the controller re-sends */
			assert_int_equal(nh_journal_state(f->e->j, "cr-uid", NULL, NULL), -ENOENT);
			assert_int_equal(nhw.npatch, 0);
			break;
		case NH_J_CHECKPOINTING:
		case NH_J_BUNDLING: /* Interrupted, no plaintext, no unrecorded artifact */
			assert_string_equal(nhw_phase(), "Failed");
			assert_non_null(strstr(nhw_str("status.message"), "restarted"));
			assert_int_not_equal(access(arch, F_OK), 0);
			assert_int_equal(nhw_count_artifacts(f), 0);
			assert_int_equal(nhw.nkubelet, 0);
			assert_int_equal(nhw.ndelete, 0);
			if (states[i] == NH_J_CHECKPOINTING)
				assert_int_equal(nh_sweep_count(f->e->sweep), 1); /* the call in flight */
			break;
		default: /* durable and later: finished, the pod deleted once at most */
			assert_string_equal(nhw_phase(), "Succeeded");
			assert_int_equal(nhw.ndelete, states[i] == NH_J_POD_DELETED ? 0 : 1);
			assert_int_equal(nhw.nready_true, 1);
			assert_int_equal(nhw.nkubelet, 0);
			break;
		}
		nht_runner_close(f->e);
		snprintf(cmd, sizeof(cmd), "rm -rf %s/* %s/ns %s/*", f->e->state, f->e->art, nhw.ckpt_dir);
		assert_int_equal(system(cmd), 0);
	}
	free(r);
}

/* A crash after the Succeeded write, before the journal said so: the resumed
 * job finds its own result and keeps the artifact (not "someone else
 * decided", which would remove it). */
static void test_recovery_after_unjournaled_success(void **state)
{
	struct nhw_fx *f = *state;
	struct nh_record *r = calloc(1, sizeof(*r));
	char cmd[256];

	nhw_reset("true", 30, ",\"containers\":[\"app\"]", "node-a");
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
	pthread_mutex_lock(&nhw.mu);
	json_object_object_add(kc_json_get(nhw.cr, "status"), "phase", json_object_new_string("Succeeded"));
	json_object_object_add(kc_json_get(nhw.cr, "status"), "artifact", json_object_new_object());
	json_object_object_add(kc_json_get(nhw.cr, "status.artifact"), "sha256",
			       json_object_new_string(r->artifact.sha256));
	pthread_mutex_unlock(&nhw.mu);
	assert_int_equal(fsu_mkdir_p(f->e->state, 0700), 0);
	nht_runner_open(f->e, nhw_journal_fault, f);
	assert_int_equal(nh_journal_save(f->e->j, r), 0);
	assert_int_equal(nh_runner_recover(f->e->rn), 0);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	for (int t = 0; t < 100 && nh_journal_is_queued(f->e->j, "cr-uid"); t++)
		usleep(50 * 1000);
	usleep(100 * 1000);
	assert_string_equal(nhw_phase(), "Succeeded");
	assert_int_equal(nhw.npatch, 0);
	assert_int_equal(nhw_count_artifacts(f), 1);
	assert_int_equal(nhw_jstate(f), NH_J_DONE);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_recovery_after_each_state, nhw_setup, nhw_teardown),
		cmocka_unit_test_setup_teardown(test_recovery_after_unjournaled_success, nhw_setup, nhw_teardown),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
