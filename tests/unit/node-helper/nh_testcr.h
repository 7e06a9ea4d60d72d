/*
 * nh_testcr.h - the fake world of test_nh_run and test_nh_recover: one
 * PodCheckpoint ns/cp (uid cr-uid) for pod ns/web (uid pod-uid, containers
 * app and db, a plain init container and a running native sidecar proxy),
 * served with the kubelet by one fake server (nh_testenv.h). The handler
 * counts what it is asked and injects the faults set in nhw; it answers a
 * status write with the object as written and applies "someone else's"
 * change (the faults) after the answer.
 *
 * nhw is the tests' (one world per process); nhw.mu guards it against the
 * server's threads: read it under the lock (nhw_phase, nhw_str, nhw_bool)
 * or once the runner is idle.
 */
#ifndef PCP_NH_TESTCR_H
#define PCP_NH_TESTCR_H

#include <pthread.h>
#include <stdbool.h>

#include <json-c/json.h>

#include "nh_journal.h"
#include "nh_testenv.h"

struct nhw_world {
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
	long lose_after_ms;        /* ... closed only after this long (the client's deadline) */
	int reject_failed;         /* answer 503 to this many patches to phase Failed, -1 all */
	int terminal_after_kubelet; /* after this kubelet call, the CR is failed */
	int kubelet_sleep_ms;      /* then write the archive (late if the client left) */
	/* what happened */
	int npatch, nkubelet, ndelete, nready_true;
	int nget_cr, nget_pod, nevents, nover_terminal; /* the last: writes refused by the transition rule */
	int nfailed_patch, nrejected; /* patches to phase Failed; those answered 503 */
	char phases[32][16];
	int nphases;
};

extern struct nhw_world nhw;

/* The cmocka fixture: the env and the journal fault (ENOSPC at one write). */
struct nhw_fx {
	struct nht_env *e;
	int enospc_on_save; /* fail this journal write (1-based) with -ENOSPC */
	int nsave;
};

int nhw_setup(void **state);
int nhw_teardown(void **state);
/* The CR (leaveRunning, timeoutSeconds, extra spec fields, status.nodeName)
 * and the pod afresh, faults and counters zero. */
void nhw_reset(const char *leave, int timeout, const char *containers, const char *node);
/* The CR turned Failed (as the controller would); caller holds nhw.mu. */
void nhw_fail_cr_locked(void);
int nhw_journal_fault(void *arg, const struct nh_record *r);
/* Submits cp's job (cert_pem may be NULL) and waits until it ended. */
void nhw_run_job(struct nhw_fx *f, const char *cert_pem);
/* A fresh runner runs cp's job to its end. */
void nhw_run_one(struct nhw_fx *f);
/* The CR's status.phase ("(gone)" when deleted), a string and a bool field. */
const char *nhw_phase(void);
const char *nhw_str(const char *dotted);
bool nhw_bool(const char *dotted);
int nhw_count_artifacts(struct nhw_fx *f);
/* cp's journal state (asserted to exist). */
int nhw_jstate(struct nhw_fx *f);
/* cp's journal record says final_written (asserted to exist). */
bool nhw_final(struct nhw_fx *f);
/* Closes the runner and empties the state, artifact and checkpoints dirs. */
void nhw_reset_dirs(struct nhw_fx *f);

#endif
