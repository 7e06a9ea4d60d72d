/*
 * ctl_options.h - the controller's command line, from one option table.
 *
 * Every option is one row of a table (name, type, bounds, default, help) in
 * ctl_options.c; parsing, defaults and --help all come from that table.
 * Accepted forms: --name=value, --name value, and for booleans --name,
 * --name=true|false, --no-name. Environment: POD_NAMESPACE (default of
 * --namespace), POD_NAME then the host name (default of --identity).
 */
#ifndef PCP_CTL_OPTIONS_H
#define PCP_CTL_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CTL_MAX_WATCH_NS 32

struct ctl_options {
	char kubeconfig[4096]; /* "" : $KUBECONFIG, else in-cluster */
	char ns[64];           /* operator namespace: leader Lease, helper Leases */
	size_t nwatch;         /* 0: all namespaces */
	char watch_ns[CTL_MAX_WATCH_NS][64];
	int workers;
	int helper_wait_seconds;
	int queue_wait_seconds;
	int job_margin_seconds;
	int poll_seconds;
	int kube_api_qps;   /* 0: no client-side limit */
	int kube_api_burst;
	bool leader_elect;
	bool allow_expired;
	char identity[256];
	char channel_token_file[4096]; /* audience-bound token for the helpers */
	char log_level[16];
	char metrics_addr[128]; /* /metrics, /healthz, /readyz; "" or "0": off */
	bool help;
	bool version;
};

/*
 * Fills o with defaults, the environment, then argv (argv[0] skipped).
 * 0, or -EINVAL with one sentence in err ("--workers: 0 is below 1").
 */
int ctl_options_parse(struct ctl_options *o, int argc, char **argv, char *err, size_t errlen);
/* Writes the --help text generated from the table. */
void ctl_options_usage(FILE *f, const char *prog);

#endif
