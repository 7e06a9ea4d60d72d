/*
 * nh_testenv.c - the node helper's runner test scaffolding (nh_testenv.h).
 */
#include "nh_testenv.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fsutil.h"
#include "kc.h"

struct nht_env *nht_env_new(const char *tag, fs_handler h, void *arg)
{
	struct nht_env *e = calloc(1, sizeof(*e));
	char kcfg[512], err[256];

	assert_non_null(e);
	snprintf(e->dir, sizeof(e->dir), "/tmp/nh-%.16s-XXXXXX", tag);
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->art, sizeof(e->art), "%s/art", e->dir);
	snprintf(e->state, sizeof(e->state), "%s/state", e->dir);
	snprintf(e->root, sizeof(e->root), "%s/kubelet", e->dir);
	snprintf(e->ckpt, sizeof(e->ckpt), "%s/checkpoints", e->root);
	assert_int_equal(fsu_mkdir_p(e->art, 0700), 0);
	assert_int_equal(fsu_mkdir_p(e->ckpt, 0700), 0);
	assert_int_equal(fs_start(h, arg, &e->srv), 0);
	assert_int_equal(fs_kubeconfig(e->srv, e->dir, "    token: t\n", kcfg, sizeof(kcfg)), 0);
	assert_int_equal(kc_config_load_kubeconfig(kcfg, NULL, &e->cfg, err, sizeof(err)), 0);
	snprintf(e->opt.node_name, sizeof(e->opt.node_name), "node-a");
	snprintf(e->opt.kubelet_url, sizeof(e->opt.kubelet_url), "http://127.0.0.1:%d", fs_port(e->srv));
	snprintf(e->opt.artifact_dir, sizeof(e->opt.artifact_dir), "%s", e->art);
	snprintf(e->opt.state_dir, sizeof(e->opt.state_dir), "%s", e->state);
	snprintf(e->opt.kubelet_root_dir, sizeof(e->opt.kubelet_root_dir), "%s", e->root);
	e->opt.kubelet_timeout_margin_seconds = 1;
	e->opt.late_archive_grace_seconds = 60;
	return e;
}

void nht_env_free(struct nht_env *e)
{
	char cmd[128];

	if (!e)
		return;
	nht_runner_close(e);
	fs_stop(e->srv);
	kc_config_free(e->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
	assert_int_equal(system(cmd), 0);
	free(e);
}

void nht_runner_open(struct nht_env *e, nh_journal_fault_fn fn, void *arg)
{
	struct nh_runner_opts ro;
	char err[256];

	assert_int_equal(nh_journal_open(e->state, &e->j), 0);
	if (fn)
		nh_journal_set_fault(e->j, fn, arg);
	assert_int_equal(nh_sweep_open(e->state, e->ckpt, 60, &e->sweep), 0);
	memset(&ro, 0, sizeof(ro));
	ro.opt = &e->opt;
	ro.cfg = e->cfg;
	ro.journal = e->j;
	ro.sweep = e->sweep;
	assert_int_equal(nh_runner_new(&ro, &e->rn, err, sizeof(err)), 0);
}

void nht_runner_close(struct nht_env *e)
{
	nh_runner_free(e->rn);
	e->rn = NULL;
	nh_sweep_free(e->sweep);
	e->sweep = NULL;
	nh_journal_free(e->j);
	e->j = NULL;
}

int nht_write_tar(const char *path)
{
	unsigned char blk[512 * 4];
	unsigned sum = 0;
	FILE *f;

	memset(blk, 0, sizeof(blk));
	snprintf((char *)blk, 100, "checkpoint/pages-1.img");
	snprintf((char *)blk + 100, 8, "0000600");
	snprintf((char *)blk + 108, 8, "0000000");
	snprintf((char *)blk + 116, 8, "0000000");
	snprintf((char *)blk + 124, 12, "%011o", 5u);
	snprintf((char *)blk + 136, 12, "%011o", 0u);
	blk[156] = '0';
	memcpy(blk + 257, "ustar", 6);
	memcpy(blk + 263, "00", 2);
	memset(blk + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += blk[i];
	snprintf((char *)blk + 148, 8, "%06o", sum);
	memcpy(blk + 512, "hello", 5);
	f = fopen(path, "wb");
	if (!f)
		return -1;
	fwrite(blk, 1, sizeof(blk), f);
	return fclose(f);
}

int nht_count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	if (d)
		closedir(d);
	return n;
}

void nht_set_rv(json_object *cr, long rv)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", rv);
	json_object_object_add(kc_json_get(cr, "metadata"), "resourceVersion",
			       json_object_new_string(buf));
}

int nht_apply_status(json_object *cr, long *rv, json_object *patch)
{
	const char *prv = kc_json_str(patch, "metadata.resourceVersion");
	const char *ph = kc_json_str(patch, "status.phase");
	const char *cur = kc_json_str(cr, "status.phase");
	json_object *pst = kc_json_get(patch, "status"), *st = kc_json_get(cr, "status");
	char want[32];

	snprintf(want, sizeof(want), "%ld", *rv);
	if (!prv || strcmp(prv, want) != 0)
		return 409;
	if (cur && (strcmp(cur, "Succeeded") == 0 || strcmp(cur, "Failed") == 0) &&
	    (!ph || strcmp(ph, cur) != 0))
		return 422;
	if (!st) {
		st = json_object_new_object();
		json_object_object_add(cr, "status", st);
	}
	json_object_object_foreach(pst, k, v)
	{
		json_object_object_add(st, k, json_object_get(v));
	}
	(*rv)++;
	nht_set_rv(cr, *rv);
	return 200;
}
