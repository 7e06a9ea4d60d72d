/*
 * main.c - podcheckpoint-node-helper: flags, wiring, signals. The work is
 * done in nh_*.c (see docs/node-helper.md).
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "ch.h"
#include "fsutil.h"
#include "kc.h"
#include "log.h"
#include "nh_auth.h"
#include "nh_job.h"
#include "nh_journal.h"
#include "nh_lease.h"
#include "nh_metrics.h"
#include "nh_options.h"
#include "nh_server.h"
#include "nh_sweep.h"

#define NH_DELETE_LOOKUP_TIMEOUT_MS 3000L

static volatile sig_atomic_t nh_stop;

static void nh_on_signal(int sig)
{
	(void)sig;
	nh_stop = 1;
}

static int nh_token(void *arg, char *buf, size_t cap)
{
	return kc_config_token(arg, buf, cap);
}

static void nh_wipe_free(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

int main(int argc, char **argv)
{
	struct nh_options opt;
	struct kc_config *cfg = NULL;
	struct nh_journal *journal = NULL;
	struct nh_runner *runner = NULL;
	struct nh_auth *auth = NULL;
	struct nh_lease *lease = NULL;
	struct nh_metrics *metrics = NULL;
	struct nh_sweep *sweep = NULL;
	struct kc_client *api = NULL;
	char ckpt_dir[4096 + 32];
	struct ch_server *srv = NULL;
	struct nh_server_ctx ctx;
	struct nh_runner_opts ropts;
	struct nh_lease_opts lopts;
	struct ch_server_opts sopts;
	struct sigaction sa;
	char err[512] = "", fp[65] = "", endpoint[128];
	char *cert_pem = NULL, *key_pem = NULL;
	uint64_t free_b = 0;
	int rc, status = 1;

	memset(&ctx, 0, sizeof(ctx));
	/* Two malloc arenas, not 8 per core: the runner slots, the channel's
	 * service thread and its auth worker would each keep freed memory in a
	 * heap of their own (the flood test watches the helper's RSS). */
	mallopt(M_ARENA_MAX, 2);
	log_set_component("node-helper");
	rc = nh_options_parse(&opt, argc, argv, err, sizeof(err));
	if (rc) {
		LOG_ERROR("msg=\"bad options\" err=\"%s\"", err);
		return 2;
	}
	if (opt.help) {
		nh_options_usage(stdout);
		return 0;
	}
	log_set_level_name(opt.log_level);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = nh_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	LOG_INFO("msg=\"starting\" node=%s bind=%s port=%ld namespace=%s kubelet=%s artifact_dir=%s state_dir=%s host_root=%s identity=%s",
		 opt.node_name, opt.bind_address, opt.port, opt.namespace_, opt.kubelet_url,
		 opt.artifact_dir, opt.state_dir, opt.host_root[0] ? opt.host_root : "-",
		 opt.controller_identity);
	LOG_INFO("msg=\"kubelet client\" kubelet=%s address=%s verify=%s ca=%s", opt.kubelet_url,
		 opt.kubelet_address, opt.kubelet_insecure_skip_verify ? "off" : "on",
		 opt.kubelet_ca[0] ? opt.kubelet_ca : "system");
	if (opt.kubelet_insecure_skip_verify)
		LOG_WARN("msg=\"kubelet certificate verification is OFF (--kubelet-insecure-skip-verify)\" kubelet=%s",
			 opt.kubelet_url);

	rc = fsu_mkdir_p(opt.artifact_dir, 0700);
	if (rc) {
		LOG_ERROR("msg=\"cannot create the artifact directory\" dir=%s err=\"%s\"",
			  opt.artifact_dir, strerror(-rc));
		goto out;
	}
	rc = fsu_free_bytes(opt.artifact_dir, &free_b);
	if (rc || free_b < opt.min_free_bytes) {
		LOG_ERROR("msg=\"not enough free space for artifacts; refusing to start\" dir=%s free_bytes=%llu min_free_bytes=%llu",
			  opt.artifact_dir, (unsigned long long)free_b,
			  (unsigned long long)opt.min_free_bytes);
		goto out;
	}
	rc = nh_metrics_start(&opt, &metrics, err, sizeof(err));
	if (rc) {
		LOG_ERROR("msg=\"cannot serve metrics\" addr=%s err=\"%s\"", opt.metrics_addr, err);
		goto out;
	}
	rc = kc_config_load_auto(opt.kubeconfig[0] ? opt.kubeconfig : NULL, &cfg, err, sizeof(err));
	if (rc) {
		LOG_ERROR("msg=\"cannot load API server credentials\" err=\"%s\"", err);
		goto out;
	}
	rc = kc_config_set_rate_limit(cfg, (double)opt.kube_api_qps, (int)opt.kube_api_burst);
	if (rc) {
		LOG_ERROR("msg=\"cannot set the API client rate limit\" err=\"%s\"", strerror(-rc));
		goto out;
	}
	rc = nh_journal_open(opt.state_dir, &journal);
	if (rc) {
		LOG_ERROR("msg=\"cannot open the journal\" dir=%s err=\"%s\"", opt.state_dir,
			  strerror(-rc));
		goto out;
	}
	snprintf(ckpt_dir, sizeof(ckpt_dir), "%s%s/checkpoints", opt.host_root, opt.kubelet_root_dir);
	rc = nh_sweep_open(opt.state_dir, ckpt_dir, opt.late_archive_grace_seconds, &sweep);
	if (rc == 0)
		rc = nh_sweep_start(sweep);
	if (rc) {
		LOG_ERROR("msg=\"cannot start the late-archive sweeper\" dir=%s rc=%d", ckpt_dir, rc);
		goto out;
	}
	rc = kc_client_new(cfg, &api);
	if (rc) {
		LOG_ERROR("msg=\"cannot create an API client\" rc=%d", rc);
		goto out;
	}
	kc_client_set_timeout(api, NH_DELETE_LOOKUP_TIMEOUT_MS);
	kc_client_set_user_agent(api, "podcheckpoint-node-helper");
	ctx.opt = &opt;
	ctx.journal = journal;
	ctx.api = api;
	memset(&ropts, 0, sizeof(ropts));
	ropts.opt = &opt;
	ropts.cfg = cfg;
	ropts.journal = journal;
	ropts.kubelet_token = nh_token;
	ropts.kubelet_token_arg = cfg;
	ropts.notify = nh_server_notify;
	ropts.notify_arg = &ctx;
	ropts.sweep = sweep;
	rc = nh_runner_new(&ropts, &runner, err, sizeof(err));
	if (rc) {
		LOG_ERROR("msg=\"cannot set up the kubelet client\" err=\"%s\"", err);
		goto out;
	}
	ctx.runner = runner;
	rc = nh_auth_new(cfg, opt.controller_identity, &auth);
	if (rc) {
		LOG_ERROR("msg=\"cannot set up authentication\" rc=%d", rc);
		goto out;
	}
	ctx.auth = auth;

	rc = ch_make_self_signed(opt.bind_address, 365, &cert_pem, &key_pem, fp);
	if (rc) {
		LOG_ERROR("msg=\"cannot make the serving certificate\" ip=%s rc=%d", opt.bind_address, rc);
		goto out;
	}
	memset(&sopts, 0, sizeof(sopts));
	sopts.bind_address = opt.bind_address;
	sopts.port = (int)opt.port;
	sopts.cert_pem = cert_pem;
	sopts.key_pem = key_pem;
	sopts.ops.precheck = nh_server_precheck;
	sopts.ops.authenticate = nh_server_authenticate;
	sopts.ops.on_job = nh_server_on_job;
	sopts.ops.expires = nh_server_token_expiry;
	sopts.ops.arg = &ctx;
	rc = ch_server_new(&sopts, &srv);
	/* The server holds its own copy of the key: ours is wiped at once. */
	nh_wipe_free(key_pem);
	key_pem = NULL;
	if (rc) {
		LOG_ERROR("msg=\"cannot start the channel server\" bind=%s port=%ld rc=%d",
			  opt.bind_address, opt.port, rc);
		goto out;
	}
	ctx.srv = srv;

	rc = nh_runner_recover(runner);
	if (rc == 0)
		rc = nh_runner_start(runner);
	if (rc) {
		LOG_ERROR("msg=\"cannot start the job runner\" rc=%d", rc);
		goto out;
	}
	if (strchr(opt.bind_address, ':'))
		snprintf(endpoint, sizeof(endpoint), "wss://[%s]:%ld", opt.bind_address, opt.port);
	else
		snprintf(endpoint, sizeof(endpoint), "wss://%s:%ld", opt.bind_address, opt.port);
	memset(&lopts, 0, sizeof(lopts));
	lopts.cfg = cfg;
	lopts.ns = opt.namespace_;
	lopts.node = opt.node_name;
	lopts.endpoint = endpoint;
	lopts.fingerprint = fp;
	lopts.duration_seconds = opt.lease_duration_seconds;
	rc = nh_lease_start(&lopts, &lease);
	if (rc) {
		LOG_ERROR("msg=\"cannot start the lease heartbeat\" rc=%d", rc);
		goto out;
	}
	LOG_INFO("msg=\"serving\" endpoint=%s cert_sha256=%s jobs=%zu", endpoint, fp,
		 nh_journal_count(journal));
	rc = ch_server_run(srv, &nh_stop);
	if (rc)
		LOG_ERROR("msg=\"channel server stopped\" rc=%d", rc);
	else
		status = 0;
	LOG_INFO("msg=\"stopping\"");
out:
	nh_lease_stop(lease);
	nh_runner_free(runner); /* aborts a kubelet call in flight; journal says where we were */
	ctx.srv = NULL;
	ch_server_free(srv);
	nh_sweep_free(sweep); /* after the runner: it adds entries until it stops */
	kc_client_free(api);
	nh_auth_free(auth);
	nh_journal_free(journal);
	kc_config_free(cfg);
	nh_wipe_free(key_pem);
	free(cert_pem);
	nh_metrics_stop(metrics);
	curl_global_cleanup();
	return status;
}
