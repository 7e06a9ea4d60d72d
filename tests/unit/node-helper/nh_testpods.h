/*
 * nh_testpods.h - the fake world of test_nh_parallel: up to NHP_NCR
 * PodCheckpoints ns/cp-<i> (uid u-<i>) over NHP_NPOD pods ns/pod-<p>, served
 * with the kubelet by one fake server (nh_testenv.h, one thread per
 * connection, so kubelet calls really overlap). The kubelet counts calls in
 * flight (overall and per pod) and sleeps per pod as set; a CR can answer
 * 409 to its first status write.
 *
 * nhp is the tests' (one world per process); nhp.mu guards it against the
 * server's threads.
 */
#ifndef PCP_NH_TESTPODS_H
#define PCP_NH_TESTPODS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "ch.h"
#include "nh_journal.h"
#include "nh_testenv.h"

#define NHP_NCR 8
#define NHP_NPOD 6

struct nhp_cr {
	json_object *cr; /* NULL: deleted */
	long rv;
	int npatch, nkubelet;
	bool conflict_first; /* answer 409 to its first status patch */
};

struct nhp_world {
	pthread_mutex_t mu;
	struct nhp_cr c[NHP_NCR];
	json_object *pod[NHP_NPOD];
	char ckpt_dir[512];
	int sleep_ms[NHP_NPOD]; /* kubelet call duration per pod */
	/* what happened */
	int inflight, max_inflight;
	int pod_inflight[NHP_NPOD], pod_max_inflight[NHP_NPOD], pod_calls[NHP_NPOD];
};

extern struct nhp_world nhp;

/* The cmocka fixture: the env (4 slots, 64 queued) and the journal fault
 * (ENOSPC at one uid's n-th write). */
struct nhp_fx {
	struct nht_env *e;
	pthread_mutex_t mu;
	char enospc_uid[64]; /* fail this uid's journal write number enospc_nth */
	int enospc_nth, nsave;
};

/* cp-i turned Failed (as the controller would). */
void nhp_fail_cr(int i);
/* CR cp-i for pod-p (leaveRunning, one container app), dispatched to node-a. */
void nhp_cr_new(int i, int p, int timeout);
/* No CRs; every pod afresh (Running, container app); counters zero. */
void nhp_reset(void);
/* A string field of cp-i ("" when absent); the reason of its Stalled condition. */
const char *nhp_str(int i, const char *dotted);
const char *nhp_stalled_reason(int i);
int nhp_journal_fault(void *arg, const struct nh_record *r);
int nhp_setup(void **state);
int nhp_teardown(void **state);
/* cp-i's checkpoint job; nhp_submit submits it; nhp_uid_of: "u-<i>". */
void nhp_job_of(int i, struct ch_job *job);
int nhp_submit(struct nhp_fx *f, int i);
const char *nhp_uid_of(int i);
/* Waits until none of cp-0..cp-(n-1) is queued or running (fails after ms). */
void nhp_wait_idle(struct nhp_fx *f, int n, long ms);
/* Waits until n kubelet calls are in flight: true, or false after ms. */
bool nhp_wait_inflight(int n, long ms);
/* cp-i's state as the journal answers the channel (-1: no record). */
enum ch_state_kind nhp_state_of(struct nhp_fx *f, int i, char *msg, size_t cap);

#endif
