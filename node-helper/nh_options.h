/*
 * nh_options.h - the node helper's settings: one table, flags and env.
 *
 * Precedence: built-in default < environment variable < command-line flag.
 * Flags are "--name=value" or "--name value"; booleans are "--name" or
 * "--name=true|false". Every option has bounds checked at parse time.
 */
#ifndef PCP_NH_OPTIONS_H
#define PCP_NH_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define NH_PATH_MAX 4096

struct nh_options {
	char node_name[254];
	char bind_address[64];
	long port;
	char namespace_[64];
	char kubeconfig[NH_PATH_MAX];
	char kubelet_url[512];
	long kubelet_port;
	char kubelet_address[64];
	char kubelet_ca[NH_PATH_MAX];
	bool kubelet_insecure_skip_verify;
	long kubelet_timeout_margin_seconds;
	char artifact_dir[NH_PATH_MAX];
	char state_dir[NH_PATH_MAX];
	char host_root[NH_PATH_MAX];
	char kubelet_root_dir[NH_PATH_MAX]; /* the kubelet's --root-dir, as on the node */
	long late_archive_grace_seconds;    /* sweep given-up calls' archives this long */
	long journal_keep_seconds;          /* prune finished journal records after */
	long journal_settled_keep_seconds;  /* ... settled ones (nothing more to write) after */
	long journal_max_records;           /* beyond this many, the oldest settled go first */
	long max_parallel_jobs;             /* runner threads: jobs of different pods at once */
	long max_queued_jobs;               /* jobs waiting for a runner beyond those; then busy */
	long max_queue_wait_seconds;        /* a job not started this long after accept: QueueTimeout */
	uint64_t min_free_bytes;
	char controller_identity[256];
	long lease_duration_seconds;
	long kube_api_qps; /* 0: no client-side limit */
	long kube_api_burst;
	char log_level[16];
	char metrics_addr[128]; /* /metrics, /healthz, /readyz; "" or "0": off */
	bool help;
};

/*
 * Fills o from defaults, the environment and argv (argv[0] is skipped).
 * Returns 0, or -EINVAL with one sentence in err ("--port: 70000 is out of
 * range 1..65535"). With --help, returns 0 with o->help set and skips the
 * checks for required options. Derived defaults: --kubelet-url is
 * https://<node-name>:<kubelet-port> when not given, --kubelet-address is
 * --bind-address.
 */
int nh_options_parse(struct nh_options *o, int argc, char **argv, char *err, size_t errlen);
/* Writes the option table as help text. */
void nh_options_usage(FILE *f);
/* Parses "1073741824", "512Mi", "1Gi", "10G" (SI or IEC suffix). 0 or -EINVAL. */
int nh_parse_bytes(const char *s, uint64_t *out);

#endif
