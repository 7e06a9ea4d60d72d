/*
 * test_nh_run.c - the helper's job state machine against a fake API server
 * and kubelet (one HTTP server, tests/unit/kc/fake_server.c), with a fault
 * at every step: the CR turned terminal or re-dispatched between steps, 409
 * on each status write, the CR failed, deleted or re-created right after
 * each write was answered, each write's answer lost (applied or not), ENOSPC
 * on each journal write, a kubelet call that times out (and its late archive
 * swept), jobs whose contents disagree with their CR, a Failed status the
 * API server does not apply (503 some times, or every time), and the API
 * requests one job makes. The fake world is nh_testcr.c; recovery is test_nh_recover.
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
#include "nh_testcr.h"
#include "nh_testenv.h"
#include "nh_util.h"


/* ---------------------------------------------------------------- tests */

static void test_happy_leave_running(void **state)
{
	struct nhw_fx *f = *state;

	nhw_run_one(f);
	assert_string_equal(nhw_phase(), "Succeeded");
	assert_int_equal(nhw.nkubelet, 3); /* app, db and the running native sidecar */
	assert_int_equal(nhw.ndelete, 0);
	assert_int_equal(nhw.nready_true, 1);
	assert_non_null(nhw_str("status.startTime")[0] ? "x" : NULL);
	assert_int_equal(nhw_count_artifacts(f), 1);
	assert_int_equal(nht_count_files(nhw.ckpt_dir), 0); /* no plaintext left */
	/* the helper never writes the controller's fields */
	assert_string_equal(nhw_str("status.nodeName"), "node-a");
	assert_string_equal(nhw_str("status.podUID"), "pod-uid");
}

static void test_leave_running_false_commit_point(void **state)
{
	struct nhw_fx *f = *state;

	nhw_reset("false", 30, ",\"containers\":[\"app\"]", "node-a");
	nhw_run_one(f);
	assert_string_equal(nhw_phase(), "Succeeded");
	assert_int_equal(nhw.nkubelet, 1);
	assert_int_equal(nhw.ndelete, 1);
	/* Running, Running (deletingPod), Succeeded: Ready=True once, at the end */
	assert_int_equal(nhw.nphases, 3);
	assert_string_equal(nhw.phases[0], "Running");
	assert_string_equal(nhw.phases[1], "Running");
	assert_string_equal(nhw.phases[2], "Succeeded");
	assert_int_equal(nhw.nready_true, 1);
	assert_true(nhw_bool("status.podDeleted"));
	assert_false(nhw_bool("status.deletingPod"));
}

static void test_not_ours_does_nothing(void **state)
{
	struct nhw_fx *f = *state;

	/* dispatched to another node: a job naming it here does nothing */
	nhw_reset("false", 30, "", "node-b");
	nhw_run_one(f);
	assert_int_equal(nhw.nkubelet, 0);
	assert_int_equal(nhw.npatch, 0);
	assert_int_equal(nhw.ndelete, 0);
	assert_int_equal(nh_journal_state(f->e->j, "cr-uid", NULL, NULL), -ENOENT); /* forgotten */
	nht_runner_close(f->e);

	/* already Failed: the same */
	nhw_reset("false", 30, "", "node-a");
	pthread_mutex_lock(&nhw.mu);
	nhw_fail_cr_locked();
	pthread_mutex_unlock(&nhw.mu);
	nhw_run_one(f);
	assert_int_equal(nhw.nkubelet, 0);
	assert_int_equal(nhw.npatch, 0);
	assert_int_equal(nhw.ndelete, 0);
	assert_string_equal(nhw_phase(), "Failed");
	nht_runner_close(f->e);

	/* deleted and re-created with the same name: another uid */
	nhw_reset("false", 30, "", "node-a");
	pthread_mutex_lock(&nhw.mu);
	json_object_object_add(kc_json_get(nhw.cr, "metadata"), "uid", json_object_new_string("new-uid"));
	pthread_mutex_unlock(&nhw.mu);
	nhw_run_one(f);
	assert_int_equal(nhw.nkubelet, 0);
	assert_int_equal(nhw.npatch, 0);
	assert_int_equal(nhw.ndelete, 0);
}

/* The CR failed by the controller right after the Running write was answered
 * (the first kubelet call acts on that fresh answer; the re-read after it, a
 * long wait, stops the job), or during the first of three kubelet calls:
 * either way no second call, no delete, no artifact, no plaintext, nothing
 * written over Failed. At the commit point: test_cr_changed_after_each_write. */
static void test_terminal_between_steps(void **state)
{
	struct nhw_fx *f = *state;

	for (int after_kubelet = 0; after_kubelet < 2; after_kubelet++) {
		nhw_reset("false", 30, "", "node-a");
		nhw.terminal_after_patch = after_kubelet ? 0 : 1;
		nhw.terminal_after_kubelet = after_kubelet ? 1 : 0;
		nhw_run_one(f);
		assert_int_equal(nhw.nkubelet, 1);
		assert_int_equal(nhw.ndelete, 0);
		assert_string_equal(nhw_phase(), "Failed");
		assert_int_equal(nhw.nphases, 1);
		assert_int_equal(nhw.nover_terminal, 0);
		assert_int_equal(nhw_count_artifacts(f), 0);
		assert_int_equal(nht_count_files(nhw.ckpt_dir), 0);
		nhw_reset_dirs(f);
	}
}

static void test_conflict_on_each_status_write(void **state)
{
	struct nhw_fx *f = *state;

	for (int k = 1; k <= 3; k++) {
		nhw_reset("false", 30, ",\"containers\":[\"app\"]", "node-a");
		nhw.conflict_on_patch = k;
		nhw_run_one(f);
		assert_string_equal(nhw_phase(), "Succeeded");
		assert_int_equal(nhw.nkubelet, 1); /* a 409 never repeats a checkpoint */
		assert_int_equal(nhw.ndelete, 1);
		assert_int_equal(nhw.nready_true, 1);
		/* the start, the one before the delete, one re-read for the 409 */
		assert_int_equal(nhw.nget_cr, 3);
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
		int nkubelet, nget_cr, nget_pod, npatch, nevents, ndelete, nsave;
	} c[] = {
		/* journal writes: accepted (submit, start), checkpointing (start; per
		 * container: the call, its archive), bundling, durable, then done
		 * (leaveRunning) or deleting-pod, pod-deleted, done */
		{ "true", ",\"containers\":[\"app\"]", 1, 1, 1, 2, 3, 0, 8 },
		{ "true", "", 3, 3, 1, 2, 3, 0, 12 },
		{ "false", ",\"containers\":[\"app\"]", 1, 2, 1, 3, 5, 1, 10 },
	};
	struct nhw_fx *f = *state;

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		nhw_reset(c[i].leave, 30, c[i].containers, "node-a");
		f->nsave = 0;
		nhw_run_one(f);
		assert_string_equal(nhw_phase(), "Succeeded");
		assert_int_equal(f->nsave, c[i].nsave);
		assert_int_equal(nhw.nkubelet, c[i].nkubelet);
		assert_int_equal(nhw.nget_cr, c[i].nget_cr);
		assert_int_equal(nhw.nget_pod, c[i].nget_pod);
		assert_int_equal(nhw.npatch, c[i].npatch);
		assert_int_equal(nhw.nevents, c[i].nevents);
		assert_int_equal(nhw.ndelete, c[i].ndelete);
		nht_runner_close(f->e);
	}
}

static void test_cr_changed_after_each_write(void **state)
{
	struct nhw_fx *f = *state;

	for (int k = 1; k <= 2; k++) {
		for (int what = 0; what < 3; what++) {
			print_message("after write %d: %s\n", k,
				      what == 0 ? "Failed" : what == 1 ? "deleted" : "re-created");
			nhw_reset("false", 30, ",\"containers\":[\"app\"]", "node-a");
			if (what == 0)
				nhw.terminal_after_patch = k;
			else if (what == 1)
				nhw.delete_after_patch = k;
			else
				nhw.recreate_after_patch = k;
			nhw_run_one(f);
			assert_int_equal(nhw.nphases, k); /* nothing written after the change */
			assert_int_equal(nhw.nover_terminal, 0);
			assert_int_equal(nhw.ndelete, 0);
			assert_int_equal(nhw.nready_true, 0);
			assert_int_equal(nhw.nkubelet, 1);
			assert_int_equal(nht_count_files(nhw.ckpt_dir), 0);
			/* at the commit point a Failed status records the artifact */
			assert_int_equal(nhw_count_artifacts(f), k == 2 && what == 0 ? 1 : 0);
			if (what == 0)
				assert_string_equal(nhw_phase(), "Failed");
			else if (what == 1)
				assert_string_equal(nhw_phase(), "(gone)");
			else
				assert_string_equal(nhw_str("metadata.uid"), "new-uid");
			assert_int_equal(nhw_jstate(f), NH_J_FAILED);
			assert_true(nhw_final(f)); /* the CR wants nothing more: prunable early */
			nhw_reset_dirs(f);
		}
	}
}

static void lost_answer_check(struct nhw_fx *f, int ndelete)
{
	assert_string_equal(nhw_phase(), "Succeeded");
	assert_int_equal(nhw.nkubelet, 1);
	assert_int_equal(nhw.ndelete, ndelete);
	assert_int_equal(nhw.nready_true, 1);
	assert_int_equal(nhw.nover_terminal, 0);
	assert_int_equal(nhw_count_artifacts(f), 1);
	assert_int_equal(nht_count_files(nhw.ckpt_dir), 0);
	assert_int_equal(nhw_jstate(f), NH_J_DONE);
	nhw_reset_dirs(f);
}

/* The answer to each status write lost (the connection closes, or nothing
 * comes back before the deadline), before or after the API server applied
 * it: the job ends as if it had arrived, and a re-read that shows its own
 * Succeeded keeps the artifact. */
static void test_lost_answer_on_each_write(void **state)
{
	struct nhw_fx *f = *state;

	/* leaveRunning true: Running, Succeeded; false: Running, deletingPod, Succeeded */
	for (int leave = 0; leave < 2; leave++) {
		for (int k = 1; k <= 3 - leave; k++) {
			for (int applied = 0; applied < 2; applied++) {
				print_message("leaveRunning %s, answer of write %d lost, %s\n",
					      leave ? "true" : "false", k, applied ? "applied" : "not applied");
				nhw_reset(leave ? "true" : "false", 30, ",\"containers\":[\"app\"]", "node-a");
				nhw.lose_patch = k;
				nhw.lose_applies = applied;
				nhw_run_one(f);
				lost_answer_check(f, leave ? 0 : 1);
			}
		}
	}
	/* and once a real timeout: Succeeded applied, no answer within the
	 * helper's request deadline (10 s) */
	nhw_reset("true", 30, ",\"containers\":[\"app\"]", "node-a");
	nhw.lose_patch = 2;
	nhw.lose_applies = true;
	nhw.lose_after_ms = 12000;
	nhw_run_one(f);
	lost_answer_check(f, 0);
}

static void test_enospc_on_each_journal_write(void **state)
{
	struct nhw_fx *f = *state;

	/* writes: accepted(submit) accepted(start) checkpointing checkpointing(call)
	 * checkpointing(result) bundling durable ...: each fails once in turn */
	for (int k = 2; k <= 9; k++) {
		char cmd[256];

		nhw_reset("true", 30, ",\"containers\":[\"app\"]", "node-a");
		f->nsave = 0;
		f->enospc_on_save = k;
		print_message("ENOSPC on journal write %d\n", k);
		nhw_run_one(f);
		/* never left "running": either done or failed with a reason */
		if (strcmp(nhw_phase(), "Failed") == 0) {
			assert_non_null(strstr(nhw_str("status.message"), "journal"));
			assert_int_equal(nhw_count_artifacts(f), 0);
			/* its Failed status applied: journaled as settled */
			assert_int_equal(nhw_jstate(f), NH_J_FAILED);
			assert_true(nhw_final(f));
		} else {
			assert_string_equal(nhw_phase(), "Succeeded");
			assert_int_equal(nhw_count_artifacts(f), 1);
		}
		assert_true(nhw.nkubelet <= 1);
		assert_int_equal(nht_count_files(nhw.ckpt_dir), 0);
		nht_runner_close(f->e);
		f->enospc_on_save = 0;
		snprintf(cmd, sizeof(cmd), "rm -rf %s/* %s/ns", f->e->state, f->e->art);
		assert_int_equal(system(cmd), 0);
	}
}

static void test_kubelet_timeout_late_archive_swept(void **state)
{
	struct nhw_fx *f = *state;

	/* timeoutSeconds 1 + margin 1: the helper gives up at 2 s; the runtime
	 * writes the archive at 3 s, after the CR is Failed */
	nhw_reset("false", 1, ",\"containers\":[\"app\"]", "node-a");
	nhw.kubelet_sleep_ms = 3000;
	nhw_run_one(f);
	assert_string_equal(nhw_phase(), "Failed");
	assert_non_null(strstr(nhw_str("status.message"), "did not answer"));
	assert_int_equal(nhw.ndelete, 0);
	assert_int_equal(nh_sweep_count(f->e->sweep), 1);
	for (int i = 0; i < 60 && nht_count_files(nhw.ckpt_dir) == 0; i++)
		usleep(100 * 1000);
	assert_int_equal(nht_count_files(nhw.ckpt_dir), 1); /* the late plaintext */
	assert_int_equal(nh_sweep_tick(f->e->sweep, (int64_t)time(NULL)), 1);
	assert_int_equal(nht_count_files(nhw.ckpt_dir), 0);
	/* the sweep is journaled: a restart continues it */
	nht_runner_close(f->e);
	assert_int_equal(nh_sweep_open(f->e->state, nhw.ckpt_dir, 60, &f->e->sweep), 0);
	assert_int_equal(nh_sweep_count(f->e->sweep), 1);
	assert_int_equal(nh_sweep_tick(f->e->sweep, (int64_t)time(NULL) + 3600), 0);
	assert_int_equal(nh_sweep_count(f->e->sweep), 0); /* expired */
	nh_sweep_free(f->e->sweep);
	f->e->sweep = NULL;
}

static void test_container_not_running(void **state)
{
	struct nhw_fx *f = *state;

	/* a plain init container: not checkpointable */
	nhw_reset("false", 30, ",\"containers\":[\"app\",\"init\"]", "node-a");
	nhw_run_one(f);
	assert_string_equal(nhw_phase(), "Failed");
	assert_int_equal(nhw.nkubelet, 0); /* nothing frozen */
	assert_int_equal(nhw.ndelete, 0);
	assert_non_null(strstr(nhw_str("status.message"), "container init"));
	nht_runner_close(f->e);
	/* one of the selected containers exited: refused before freezing the others */
	nhw_reset("false", 30, "", "node-a");
	pthread_mutex_lock(&nhw.mu);
	json_object_object_add(json_object_array_get_idx(kc_json_get(nhw.pod, "status.containerStatuses"), 1),
			       "state", json_tokener_parse("{\"terminated\":{\"exitCode\":1}}"));
	pthread_mutex_unlock(&nhw.mu);
	nhw_run_one(f);
	assert_string_equal(nhw_phase(), "Failed");
	assert_int_equal(nhw.nkubelet, 0);
	assert_int_equal(nhw.ndelete, 0);
	assert_non_null(strstr(nhw_str("status.message"), "container db of pod ns/web is not running"));
}

static void test_wrong_recipient_does_nothing(void **state)
{
	struct nhw_fx *f = *state;
	char *cert = NULL, *key = NULL, fp[65];

	assert_int_equal(ch_make_self_signed("127.0.0.1", 2, &cert, &key, fp), 0);
	nhw_reset("true", 30, ",\"encrypt\":true,\"encryptionSecret\":\"k\"", "node-a");
	pthread_mutex_lock(&nhw.mu);
	json_object_object_add(kc_json_get(nhw.cr, "status"), "recipientFingerprint",
			       json_object_new_string("00ff"));
	pthread_mutex_unlock(&nhw.mu);
	nht_runner_open(f->e, nhw_journal_fault, f);
	nhw_run_job(f, cert);
	assert_int_equal(nhw.nkubelet, 0);
	assert_int_equal(nhw.npatch, 0);
	nht_runner_close(f->e);
	/* the recorded one: encrypted and done */
	nhw_reset("true", 30, ",\"encrypt\":true,\"encryptionSecret\":\"k\",\"containers\":[\"app\"]", "node-a");
	pthread_mutex_lock(&nhw.mu);
	json_object_object_add(kc_json_get(nhw.cr, "status"), "recipientFingerprint",
			       json_object_new_string(fp));
	pthread_mutex_unlock(&nhw.mu);
	nht_runner_open(f->e, nhw_journal_fault, f);
	nhw_run_job(f, cert);
	assert_string_equal(nhw_phase(), "Succeeded");
	assert_true(nhw_bool("status.artifact.encrypted"));
	free(cert);
	free(key);
}

/*
 * The job's Failed status is not applied (the API server answers 503): the
 * status write tries again, up to its 8 attempts in 30 s (nh_cr.c). Applied
 * at the fourth: the CR is Failed and the record settled. Never applied: the
 * CR is not Failed, the record stays failed and unsettled, a re-send is
 * answered failed from it (nh_server.c), and it goes only by
 * --journal-keep-seconds, not by the settled window.
 */
static void test_failed_write_rejected(void **state)
{
	struct nhw_fx *f = *state;
	struct nh_prune_policy settled = { .keep_seconds = 86400, .settled_keep_seconds = 1 };
	struct nh_prune_policy keep = { .keep_seconds = 1 };
	struct ch_state st;
	enum nh_jstate js;

	/* a plain init container cannot be checkpointed: the job fails at its start */
	nhw_reset("false", 30, ",\"containers\":[\"app\",\"init\"]", "node-a");
	nhw.reject_failed = 3;
	nhw_run_one(f);
	assert_string_equal(nhw_phase(), "Failed");
	assert_non_null(strstr(nhw_str("status.message"), "container init"));
	assert_int_equal(nhw.nrejected, 3);
	assert_int_equal(nhw.nfailed_patch, 4);
	assert_int_equal(nhw.nkubelet, 0);
	assert_int_equal(nhw_jstate(f), NH_J_FAILED);
	assert_true(nhw_final(f)); /* applied: settled */
	nhw_reset_dirs(f);

	nhw_reset("false", 30, ",\"containers\":[\"app\",\"init\"]", "node-a");
	nhw.reject_failed = -1;
	nhw_run_one(f);
	assert_string_not_equal(nhw_phase(), "Failed");
	assert_int_equal(nhw.nfailed_patch, 8);
	assert_int_equal(nhw.nrejected, 8);
	assert_int_equal(nhw.nkubelet, 0);
	assert_int_equal(nhw_jstate(f), NH_J_FAILED);
	assert_false(nhw_final(f)); /* not known applied: unsettled */
	assert_int_equal(nh_journal_state(f->e->j, "cr-uid", &st, &js), 0);
	assert_int_equal(st.state, CH_FAILED);
	assert_string_equal(st.reason, "ContainerNotFound");
	/* it completed more than 1 s ago (the attempts took ~18 s) */
	assert_int_equal(nh_journal_prune(f->e->j, &settled), 0);
	assert_int_equal(nhw_jstate(f), NH_J_FAILED);
	assert_int_equal(nh_journal_prune(f->e->j, &keep), 1);
	assert_int_equal(nh_journal_state(f->e->j, "cr-uid", NULL, NULL), -ENOENT);
}

/* A crash after each journal state, then a restart: what recovery does. */
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_happy_leave_running, nhw_setup, nhw_teardown),
		cmocka_unit_test_setup_teardown(test_leave_running_false_commit_point, nhw_setup, nhw_teardown),
		cmocka_unit_test_setup_teardown(test_not_ours_does_nothing, nhw_setup, nhw_teardown),
		cmocka_unit_test_setup_teardown(test_terminal_between_steps, nhw_setup, nhw_teardown),
		cmocka_unit_test_setup_teardown(test_conflict_on_each_status_write, nhw_setup, nhw_teardown),
		cmocka_unit_test_setup_teardown(test_requests_per_job, nhw_setup, nhw_teardown),
		cmocka_unit_test_setup_teardown(test_cr_changed_after_each_write, nhw_setup, nhw_teardown),
		cmocka_unit_test_setup_teardown(test_lost_answer_on_each_write, nhw_setup, nhw_teardown),
		cmocka_unit_test_setup_teardown(test_enospc_on_each_journal_write, nhw_setup, nhw_teardown),
		cmocka_unit_test_setup_teardown(test_kubelet_timeout_late_archive_swept, nhw_setup, nhw_teardown),
		cmocka_unit_test_setup_teardown(test_container_not_running, nhw_setup, nhw_teardown),
		cmocka_unit_test_setup_teardown(test_wrong_recipient_does_nothing, nhw_setup, nhw_teardown),
		cmocka_unit_test_setup_teardown(test_failed_write_rejected, nhw_setup, nhw_teardown),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
