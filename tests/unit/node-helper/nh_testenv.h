/*
 * nh_testenv.h - the scaffolding the node helper's runner tests share
 * (test_nh_run, test_nh_parallel): a temporary tree (artifact dir, state
 * dir, kubelet root with its checkpoints dir), one fake HTTP server
 * (tests/unit/kc/fake_server.c) that plays API server and kubelet through
 * the test's handler, the kubeconfig and the runner's options pointing at
 * it, the runner with its journal and sweeper; the fake API server's rules
 * for a status patch; small file helpers. Each test keeps its own fake
 * world (what the handler serves and the faults it injects).
 *
 * Ownership: nht_env_new allocates the env, nht_env_free closes the runner,
 * stops the server and removes the tree. Failures are cmocka assertions.
 */
#ifndef PCP_NH_TESTENV_H
#define PCP_NH_TESTENV_H

#include <stddef.h>

#include <json-c/json.h>

#include "fake_server.h"
#include "nh_job.h"
#include "nh_journal.h"
#include "nh_options.h"
#include "nh_sweep.h"

struct kc_config;

struct nht_env {
	char dir[64], art[128], state[128], root[128], ckpt[512]; /* ckpt: root/checkpoints */
	struct fake_server *srv;
	struct kc_config *cfg;
	struct nh_journal *j;   /* NULL while the runner is closed */
	struct nh_sweep *sweep; /* likewise */
	struct nh_runner *rn;   /* likewise */
	struct nh_options opt;  /* node-a, the fake kubelet, the tree; tests may change it */
};

/* A fresh tree under /tmp/nh-<tag>-XXXXXX and the server answering with h. */
struct nht_env *nht_env_new(const char *tag, fs_handler h, void *arg);
void nht_env_free(struct nht_env *e);
/* Opens journal (with the fault seam, fn may be NULL), sweeper and runner
 * (not started); closing frees them. */
void nht_runner_open(struct nht_env *e, nh_journal_fault_fn fn, void *arg);
void nht_runner_close(struct nht_env *e);

/* A minimal complete ustar archive with one small file: 0 or -1. */
int nht_write_tar(const char *path);
/* Entries of dir other than dot files (0 when it does not exist). */
int nht_count_files(const char *dir);

/* metadata.resourceVersion of cr := rv. */
void nht_set_rv(json_object *cr, long rv);
/*
 * The API server's rules for a status merge patch of cr (at *rv): 409 when
 * the patch's metadata.resourceVersion is not *rv; 422 (the CRD's transition
 * rule) when cr is Succeeded or Failed and the patch sets another phase or
 * none; else patch.status merged into cr.status, *rv + 1: 200.
 */
int nht_apply_status(json_object *cr, long *rv, json_object *patch);

#endif
