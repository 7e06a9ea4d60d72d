/*
 * test_nh_parallel.c - the runner with several slots (--max-parallel-jobs)
 * against a fake API server and kubelet holding several PodCheckpoints and
 * pods (nh_testpods.c):
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
#include "nh_testpods.h"
#include "nh_util.h"

/* One slot: cp-0 running (its kubelet call takes call_ms), cp-1 and cp-2 queued. */
static void one_running_two_queued(struct nhp_fx *f, int call_ms)
{
	f->e->opt.max_parallel_jobs = 1;
	nhp_cr_new(0, 0, 30);
	nhp_cr_new(1, 1, 30);
	nhp_cr_new(2, 2, 30);
	nhp.sleep_ms[0] = call_ms;
	nht_runner_open(f->e, nhp_journal_fault, f);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	assert_int_equal(nhp_submit(f, 0), 0);
	assert_true(nhp_wait_inflight(1, 5000));
	assert_int_equal(nhp_submit(f, 1), 0);
	assert_int_equal(nhp_submit(f, 2), 0);
}

/* ---------------------------------------------------------------- tests */

/* Four pods at once; three jobs of pod-0 one after the other. */
static void test_pods_parallel_same_pod_serial(void **state)
{
	struct nhp_fx *f = *state;
	struct timespec t0, t1;
	double secs;

	for (int i = 0; i < 4; i++)
		nhp_cr_new(i, i, 30);
	nhp_cr_new(4, 0, 30);
	nhp_cr_new(5, 0, 30);
	for (int p = 0; p < NHP_NPOD; p++)
		nhp.sleep_ms[p] = 500;
	nht_runner_open(f->e, nhp_journal_fault, f);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* pod-0's three first: the others must not wait behind them */
	assert_int_equal(nhp_submit(f, 0), 0);
	assert_int_equal(nhp_submit(f, 4), 0);
	assert_int_equal(nhp_submit(f, 5), 0);
	for (int i = 1; i < 4; i++)
		assert_int_equal(nhp_submit(f, i), 0);
	nhp_wait_idle(f, 6, 20000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("6 jobs (4 pods, 3 of pod-0), 0.5 s kubelet calls, 4 slots: %.2f s, max %d at once\n",
		      secs, nhp.max_inflight);
	for (int i = 0; i < 6; i++)
		assert_string_equal(nhp_str(i, "status.phase"), "Succeeded");
	assert_int_equal(nhp.max_inflight, 4);     /* four pods really at once */
	for (int p = 0; p < 4; p++)
		assert_int_equal(nhp.pod_max_inflight[p], 1); /* never two of one pod */
	assert_int_equal(nhp.pod_calls[0], 3);
	for (int p = 1; p < 4; p++)
		assert_int_equal(nhp.pod_calls[p], 1);
	assert_true(secs >= 1.5); /* pod-0's three calls in a row */
	assert_int_equal(nht_count_files(nhp.ckpt_dir), 0);
}

/* Two slots, two waiting: the fifth is busy, nothing journaled. */
static void test_queued_then_busy(void **state)
{
	struct nhp_fx *f = *state;
	char msg[512];

	f->e->opt.max_parallel_jobs = 2;
	f->e->opt.max_queued_jobs = 2;
	for (int i = 0; i < 5; i++) {
		nhp_cr_new(i, i, 30);
		nhp.sleep_ms[i] = 800;
	}
	nht_runner_open(f->e, nhp_journal_fault, f);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	assert_int_equal(nhp_submit(f, 0), 0);
	assert_int_equal(nhp_submit(f, 1), 0);
	assert_true(nhp_wait_inflight(2, 5000));
	assert_int_equal(nhp_submit(f, 2), 0);
	assert_int_equal(nhp_state_of(f, 2, msg, sizeof(msg)), CH_QUEUED);
	assert_non_null(strstr(msg, "Queued on the node helper on node-a: 2 running (at most 2 at once), 0 ahead"));
	assert_int_equal(nhp_submit(f, 3), 0);
	assert_int_equal(nhp_state_of(f, 3, NULL, 0), CH_QUEUED);
	assert_int_equal(nhp_submit(f, 4), -EBUSY);
	assert_int_equal(nh_journal_state(f->e->j, "u-4", NULL, NULL), -ENOENT);
	nhp_wait_idle(f, 4, 20000);
	for (int i = 0; i < 4; i++)
		assert_string_equal(nhp_str(i, "status.phase"), "Succeeded");
	assert_int_equal(nhp.max_inflight, 2);
	assert_int_equal(nhp.pod_calls[4], 0);
	/* room again: the controller's re-send is taken */
	assert_int_equal(nhp_submit(f, 4), 0);
	nhp_wait_idle(f, 5, 20000);
	assert_string_equal(nhp_str(4, "status.phase"), "Succeeded");
}

/* cancel and delete-artifact, queued and running. */
static void test_cancel_and_delete_queued_running(void **state)
{
	struct nhp_fx *f = *state;
	struct ch_job job;
	struct ch_state st;
	int64_t deadline, t0;

	one_running_two_queued(f, 4000);
	/* queued cp-1: the controller failed it and cancels: gone at once */
	nhp_fail_cr(1);
	assert_int_equal(nh_runner_cancel(f->e->rn, "u-1"), 0);
	assert_int_equal(nh_journal_state(f->e->j, "u-1", NULL, NULL), -ENOENT);
	assert_false(nh_journal_is_queued(f->e->j, "u-1"));
	/* queued cp-2: its CR deleted; delete-artifact withdraws it and succeeds */
	pthread_mutex_lock(&nhp.mu);
	json_object_put(nhp.c[2].cr);
	nhp.c[2].cr = NULL;
	pthread_mutex_unlock(&nhp.mu);
	nhp_job_of(2, &job);
	job.op = CH_OP_DELETE_ARTIFACT;
	assert_int_equal(nh_runner_delete_artifact(f->e->rn, f->e->art, f->e->j, &job, NULL, &st), 0);
	assert_int_equal(st.state, CH_SUCCEEDED);
	assert_int_equal(nh_journal_state(f->e->j, "u-2", NULL, NULL), -ENOENT);
	/* running cp-0: deleted mid kubelet call: busy, the call is aborted,
	 * then delete-artifact succeeds */
	pthread_mutex_lock(&nhp.mu);
	json_object_put(nhp.c[0].cr);
	nhp.c[0].cr = NULL;
	pthread_mutex_unlock(&nhp.mu);
	nhp_job_of(0, &job);
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
	assert_int_equal(nhp.pod_calls[1] + nhp.pod_calls[2], 0);
	nhp_wait_idle(f, 3, 5000);
	assert_int_equal(nht_count_files(f->e->art), 0);
}

/* The controller cancels a running job while another pod's job runs on. */
static void test_cancel_running_others_go_on(void **state)
{
	struct nhp_fx *f = *state;

	nhp_cr_new(0, 0, 30);
	nhp_cr_new(1, 1, 30);
	nhp.sleep_ms[0] = 2000;
	nhp.sleep_ms[1] = 600;
	nht_runner_open(f->e, nhp_journal_fault, f);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	assert_int_equal(nhp_submit(f, 0), 0);
	assert_int_equal(nhp_submit(f, 1), 0);
	assert_true(nhp_wait_inflight(2, 5000));
	nhp_fail_cr(0);
	assert_int_equal(nh_runner_cancel(f->e->rn, "u-0"), 0);
	nhp_wait_idle(f, 2, 10000);
	assert_string_equal(nhp_str(0, "status.phase"), "Failed");
	assert_int_equal(nhp.c[0].npatch, 1); /* Running only: nothing after the cancel */
	assert_string_equal(nhp_str(1, "status.phase"), "Succeeded");
	assert_int_equal(nh_sweep_count(f->e->sweep), 1);
}

/* Timeout while queued: its own bound from the accept; the CR failed
 * meanwhile by the controller: never run. */
static void test_timeout_while_queued(void **state)
{
	struct nhp_fx *f = *state;

	f->e->opt.max_queue_wait_seconds = 1;
	one_running_two_queued(f, 2200);
	nhp_fail_cr(2); /* QueueTimeout by the controller, cancel lost */
	nhp_wait_idle(f, 3, 15000);
	assert_string_equal(nhp_str(0, "status.phase"), "Succeeded");
	assert_string_equal(nhp_str(1, "status.phase"), "Failed");
	assert_string_equal(nhp_stalled_reason(1), "QueueTimeout");
	assert_non_null(strstr(nhp_str(1, "status.message"), "was not started"));
	assert_string_equal(nhp_str(1, "status.startTime"), ""); /* never started */
	assert_int_equal(nhp.pod_calls[1], 0);
	assert_int_equal(nhp.pod_calls[2], 0);
	assert_int_equal(nhp.c[2].npatch, 0); /* terminal: nothing written */
}

/* Timeout while running: one job's kubelet call runs out, another pod's
 * job next to it succeeds; the late archive is swept. */
static void test_timeout_while_running(void **state)
{
	struct nhp_fx *f = *state;

	nhp_cr_new(0, 0, 1); /* timeout 1 + margin 1 */
	nhp_cr_new(1, 1, 30);
	nhp.sleep_ms[0] = 3000;
	nhp.sleep_ms[1] = 300;
	nht_runner_open(f->e, nhp_journal_fault, f);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	assert_int_equal(nhp_submit(f, 0), 0);
	assert_int_equal(nhp_submit(f, 1), 0);
	nhp_wait_idle(f, 2, 15000);
	assert_string_equal(nhp_str(0, "status.phase"), "Failed");
	assert_non_null(strstr(nhp_str(0, "status.message"), "did not answer"));
	assert_string_equal(nhp_str(1, "status.phase"), "Succeeded");
	assert_int_equal(nhp.max_inflight, 2);
	assert_int_equal(nh_sweep_count(f->e->sweep), 1);
}

/* A 409 on every job's first status write: all succeed, one call each. */
static void test_conflict_every_job(void **state)
{
	struct nhp_fx *f = *state;

	for (int i = 0; i < 4; i++) {
		nhp_cr_new(i, i, 30);
		nhp.c[i].conflict_first = true;
		nhp.sleep_ms[i] = 200;
	}
	nht_runner_open(f->e, nhp_journal_fault, f);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(nhp_submit(f, i), 0);
	nhp_wait_idle(f, 4, 15000);
	for (int i = 0; i < 4; i++) {
		assert_string_equal(nhp_str(i, "status.phase"), "Succeeded");
		assert_int_equal(nhp.pod_calls[i], 1);
	}
}

/* ENOSPC on each journal write of one job in turn while three others run. */
static void test_enospc_one_job(void **state)
{
	struct nhp_fx *f = *state;

	/* cp-2's writes: accepted(nhp_submit) accepted(start) checkpointing
	 * checkpointing(call) checkpointing(result) bundling durable done */
	for (int k = 2; k <= 8; k++) {
		char cmd[256];

		print_message("ENOSPC on cp-2's journal write %d\n", k);
		nhp_reset();
		for (int i = 0; i < 4; i++) {
			nhp_cr_new(i, i, 30);
			nhp.sleep_ms[i] = 100;
		}
		pthread_mutex_lock(&f->mu);
		snprintf(f->enospc_uid, sizeof(f->enospc_uid), "u-2");
		f->enospc_nth = k;
		f->nsave = 0;
		pthread_mutex_unlock(&f->mu);
		nht_runner_open(f->e, nhp_journal_fault, f);
		assert_int_equal(nh_runner_start(f->e->rn), 0);
		for (int i = 0; i < 4; i++)
			assert_int_equal(nhp_submit(f, i), 0);
		nhp_wait_idle(f, 4, 15000);
		for (int i = 0; i < 4; i++) {
			if (i == 2 && strcmp(nhp_str(2, "status.phase"), "Failed") == 0) {
				assert_non_null(strstr(nhp_str(2, "status.message"), "journal"));
				continue;
			}
			assert_string_equal(nhp_str(i, "status.phase"), "Succeeded");
		}
		assert_true(nhp.pod_calls[2] <= 1);
		assert_int_equal(nht_count_files(nhp.ckpt_dir), 0);
		nht_runner_close(f->e);
		snprintf(cmd, sizeof(cmd), "rm -rf %s/* %s/ns", f->e->state, f->e->art);
		assert_int_equal(system(cmd), 0);
	}
}

/* A restart with several jobs journaled at different steps. */
static void test_restart_with_n_jobs(void **state)
{
	struct nhp_fx *f = *state;
	struct nh_record *r = calloc(1, sizeof(*r));
	static const enum nh_jstate st[] = { NH_J_ACCEPTED, NH_J_CHECKPOINTING, NH_J_DURABLE,
					     NH_J_DURABLE, NH_J_DURABLE };
	/* cp-2 and cp-3 resume on the same pod: one after the other */
	static const int pod[] = { 0, 1, 2, 2, 3 };

	assert_int_equal(fsu_mkdir_p(f->e->state, 0700), 0);
	nht_runner_open(f->e, nhp_journal_fault, f);
	for (int i = 0; i < 5; i++) {
		nhp_cr_new(i, pod[i], 30);
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
			pthread_mutex_lock(&nhp.mu);
			json_object_object_add(kc_json_get(nhp.c[i].cr, "status"), "phase",
					       json_object_new_string("Running"));
			pthread_mutex_unlock(&nhp.mu);
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
	nhp_wait_idle(f, 5, 15000);
	usleep(100 * 1000);
	/* accepted, never started: forgotten (the controller re-sends) */
	assert_int_equal(nh_journal_state(f->e->j, "u-0", NULL, NULL), -ENOENT);
	assert_int_equal(nhp.c[0].npatch, 0);
	/* started before durable: Interrupted, never a second checkpoint */
	assert_string_equal(nhp_str(1, "status.phase"), "Failed");
	assert_non_null(strstr(nhp_str(1, "status.message"), "restarted"));
	/* durable: finished, each once */
	for (int i = 2; i < 5; i++) {
		assert_string_equal(nhp_str(i, "status.phase"), "Succeeded");
		assert_int_equal(nhp.c[i].npatch, 1);
	}
	for (int p = 0; p < NHP_NPOD; p++)
		assert_int_equal(nhp.pod_calls[p], 0);
	free(r);
}

/* The kubelet connection: a completed call's is kept for the next job (one
 * API server and one kubelet connection for three jobs on one slot, no TCP
 * + TLS handshake per job); a call given up on (cancel) closes its own, so
 * the kubelet sees the client go away, and the next call opens a new one. */
static void test_kubelet_connection_kept_closed_on_give_up(void **state)
{
	struct nhp_fx *f = *state;
	int c0 = fs_conns(f->e->srv);

	f->e->opt.max_parallel_jobs = 1;
	nht_runner_open(f->e, nhp_journal_fault, f);
	assert_int_equal(nh_runner_start(f->e->rn), 0);
	for (int i = 0; i < 3; i++) {
		nhp_cr_new(i, i, 30);
		assert_int_equal(nhp_submit(f, i), 0);
		nhp_wait_idle(f, i + 1, 10000);
		assert_string_equal(nhp_str(i, "status.phase"), "Succeeded");
	}
	assert_int_equal(fs_conns(f->e->srv) - c0, 2);
	assert_int_equal(fs_open_conns(f->e->srv), 2);
	/* cp-3's call hangs 1.5 s and is cancelled: the server finds its
	 * connection closed when it answers; cp-4 then calls on a new one */
	nhp.sleep_ms[3] = 1500;
	nhp_cr_new(3, 3, 30);
	nhp_cr_new(4, 4, 30);
	assert_int_equal(nhp_submit(f, 3), 0);
	assert_true(nhp_wait_inflight(1, 5000));
	nhp_fail_cr(3);
	assert_int_equal(nh_runner_cancel(f->e->rn, "u-3"), 0);
	nhp_wait_idle(f, 4, 10000);
	assert_string_equal(nhp_str(3, "status.phase"), "Failed");
	assert_int_equal(nhp_submit(f, 4), 0);
	nhp_wait_idle(f, 5, 10000);
	assert_string_equal(nhp_str(4, "status.phase"), "Succeeded");
	assert_int_equal(fs_conns(f->e->srv) - c0, 3);
	for (int t = 0; t < 100 && fs_open_conns(f->e->srv) > 2; t++)
		usleep(50 * 1000);
	assert_int_equal(fs_open_conns(f->e->srv), 2); /* API + cp-4's kubelet connection */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pods_parallel_same_pod_serial, nhp_setup, nhp_teardown),
		cmocka_unit_test_setup_teardown(test_queued_then_busy, nhp_setup, nhp_teardown),
		cmocka_unit_test_setup_teardown(test_cancel_and_delete_queued_running, nhp_setup, nhp_teardown),
		cmocka_unit_test_setup_teardown(test_cancel_running_others_go_on, nhp_setup, nhp_teardown),
		cmocka_unit_test_setup_teardown(test_timeout_while_queued, nhp_setup, nhp_teardown),
		cmocka_unit_test_setup_teardown(test_timeout_while_running, nhp_setup, nhp_teardown),
		cmocka_unit_test_setup_teardown(test_conflict_every_job, nhp_setup, nhp_teardown),
		cmocka_unit_test_setup_teardown(test_enospc_one_job, nhp_setup, nhp_teardown),
		cmocka_unit_test_setup_teardown(test_restart_with_n_jobs, nhp_setup, nhp_teardown),
		cmocka_unit_test_setup_teardown(test_kubelet_connection_kept_closed_on_give_up, nhp_setup,
						nhp_teardown),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
