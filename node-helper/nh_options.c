/*
 * nh_options.c - the option table (redis config.c style): every option in
 * one place with its type, default, bounds, environment variable and help.
 */
#include "nh_options.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum nh_opt_type { NH_OPT_STRING, NH_OPT_LONG, NH_OPT_BYTES, NH_OPT_BOOL };

struct nh_opt {
	const char *name; /* without "--" */
	const char *env;  /* or NULL */
	enum nh_opt_type type;
	size_t offset;
	size_t size;      /* for strings: capacity */
	const char *def;  /* default, parsed like user input */
	long long min, max;
	const char *help;
};

#define STR(field) NH_OPT_STRING, offsetof(struct nh_options, field), \
	sizeof(((struct nh_options *)0)->field)
#define NUM(field, t) t, offsetof(struct nh_options, field), 0

static const struct nh_opt nh_opts[] = {
	{ "node-name", "NODE_NAME", STR(node_name), "", 0, 0,
	  "name of this node (required)" },
	{ "bind-address", "NODE_IP", STR(bind_address), "", 0, 0,
	  "IP to serve the channel on and to publish in the Lease (required)" },
	{ "port", NULL, NUM(port, NH_OPT_LONG), "10443", 1, 65535, "channel port" },
	{ "namespace", "POD_NAMESPACE", STR(namespace_), "podcheckpoint-system", 0, 0,
	  "operator namespace (Leases)" },
	{ "kubeconfig", NULL, STR(kubeconfig), "", 0, 0,
	  "kubeconfig file (default: $KUBECONFIG, else in-cluster)" },
	{ "kubelet-url", NULL, STR(kubelet_url), "", 0, 0,
	  "kubelet base URL (default https://<node-name>:<kubelet-port>, connected to at "
	  "--kubelet-address)" },
	{ "kubelet-port", NULL, NUM(kubelet_port, NH_OPT_LONG), "10250", 1, 65535,
	  "kubelet port of the default --kubelet-url" },
	{ "kubelet-address", NULL, STR(kubelet_address), "", 0, 0,
	  "IP the kubelet URL's host connects to when that host is the node name "
	  "(default: --bind-address); the certificate is still verified for the name" },
	{ "kubelet-ca", NULL, STR(kubelet_ca), "", 0, 0,
	  "PEM file that verifies the kubelet's serving certificate: the node's self-signed "
	  "<kubelet-root>/pki/kubelet.crt, or the cluster CA with serverTLSBootstrap" },
	{ "kubelet-insecure-skip-verify", NULL, NUM(kubelet_insecure_skip_verify, NH_OPT_BOOL),
	  "false", 0, 1, "do not verify the kubelet's certificate (logged as a warning)" },
	{ "kubelet-timeout-margin-seconds", NULL, NUM(kubelet_timeout_margin_seconds, NH_OPT_LONG),
	  "30", 0, 3600, "added to the per-container timeout for the HTTP deadline" },
	{ "artifact-dir", NULL, STR(artifact_dir), "/var/lib/podcheckpoint/artifacts", 0, 0,
	  "where artifacts are stored (0700)" },
	{ "state-dir", NULL, STR(state_dir), "/var/lib/podcheckpoint/state", 0, 0,
	  "where the job journal is kept" },
	{ "host-root", NULL, STR(host_root), "", 0, 0,
	  "prefix for host paths returned by the kubelet (e.g. /host)" },
	{ "kubelet-root-dir", NULL, STR(kubelet_root_dir), "/var/lib/kubelet", 0, 0,
	  "the kubelet's --root-dir on the node: archives must be <it>/checkpoints/checkpoint-<pod>_<ns>-<ctr>-*.tar" },
	{ "late-archive-grace-seconds", NULL, NUM(late_archive_grace_seconds, NH_OPT_LONG), "300",
	  0, 86400, "after a kubelet call is given up, remove its late archive for this long" },
	{ "journal-keep-seconds", NULL, NUM(journal_keep_seconds, NH_OPT_LONG), "604800", 0,
	  31536000, "prune finished job records after this long (0: never)" },
	{ "journal-settled-keep-seconds", NULL, NUM(journal_settled_keep_seconds, NH_OPT_LONG),
	  "3600", 0, 31536000,
	  "prune a settled job record (done, or failed with its status applied) after this long (0: only by --journal-keep-seconds)" },
	{ "journal-max-records", NULL, NUM(journal_max_records, NH_OPT_LONG), "4096", 0, 1000000,
	  "beyond this many job records the oldest settled ones are pruned first (0: no cap)" },
	{ "max-parallel-jobs", NULL, NUM(max_parallel_jobs, NH_OPT_LONG), "4", 1, 64,
	  "checkpoint jobs run at once on this node (runner threads); never two of the same pod" },
	{ "max-queued-jobs", NULL, NUM(max_queued_jobs, NH_OPT_LONG), "64", 0, 4096,
	  "jobs waiting for a free runner (answered queued); beyond that a new job is answered busy" },
	{ "max-queue-wait-seconds", NULL, NUM(max_queue_wait_seconds, NH_OPT_LONG), "600", 1, 86400,
	  "a job that has not started this long after it was accepted fails with QueueTimeout "
	  "(the controller's --queue-wait-seconds)" },
	{ "min-free-bytes", NULL, NUM(min_free_bytes, NH_OPT_BYTES), "1Gi", 0, LLONG_MAX,
	  "refuse to start, and fail jobs, when the artifact filesystem has less free" },
	{ "controller-identity", NULL, STR(controller_identity),
	  "system:serviceaccount:podcheckpoint-system:podcheckpoint-controller", 0, 0,
	  "the only user allowed on the channel (checked by TokenReview)" },
	{ "lease-duration-seconds", NULL, NUM(lease_duration_seconds, NH_OPT_LONG), "15", 3, 3600,
	  "Lease duration; renewed every third of it" },
	{ "kube-api-qps", NULL, NUM(kube_api_qps, NH_OPT_LONG), "200", 0, 100000,
	  "client-side limit on API requests per second (watches excepted); 0: none" },
	{ "kube-api-burst", NULL, NUM(kube_api_burst, NH_OPT_LONG), "400", 1, 100000,
	  "requests allowed at once above --kube-api-qps" },
	{ "log-level", NULL, STR(log_level), "info", 0, 0, "error, warn, info or debug" },
	{ "metrics-addr", NULL, STR(metrics_addr), ":10444", 0, 0,
	  "address of /metrics, /healthz and /readyz (HOST:PORT, :PORT, [V6]:PORT; 0: off)" },
	{ "help", NULL, NUM(help, NH_OPT_BOOL), "false", 0, 1, "show this help" },
};

#define NH_NOPTS (sizeof(nh_opts) / sizeof(nh_opts[0]))

int nh_parse_bytes(const char *s, uint64_t *out)
{
	static const struct {
		const char *sfx;
		uint64_t mul;
	} units[] = {
		{ "", 1 },
		{ "k", 1000ULL }, { "K", 1000ULL }, { "M", 1000000ULL }, { "G", 1000000000ULL },
		{ "T", 1000000000000ULL },
		{ "Ki", 1ULL << 10 }, { "Mi", 1ULL << 20 }, { "Gi", 1ULL << 30 }, { "Ti", 1ULL << 40 },
	};
	char *end = NULL;
	unsigned long long v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].sfx) != 0)
			continue;
		if (v > UINT64_MAX / units[i].mul)
			return -EINVAL;
		*out = (uint64_t)v * units[i].mul;
		return 0;
	}
	return -EINVAL;
}

static int nh_parse_bool(const char *s, bool *out)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0 || strcmp(s, "yes") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0 || strcmp(s, "no") == 0) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

/* Applies one textual value to option `op`; `src` names where it came from. */
static int nh_opt_set(struct nh_options *o, const struct nh_opt *op, const char *val,
		      const char *src, char *err, size_t errlen)
{
	char *base = (char *)o + op->offset;
	int rc = 0;

	switch (op->type) {
	case NH_OPT_STRING: {
		size_t n = strlen(val);
		if (n >= op->size) {
			snprintf(err, errlen, "%s: value is longer than %zu bytes", src, op->size - 1);
			rc = -EINVAL;
			goto out;
		}
		memcpy(base, val, n + 1);
		break;
	}
	case NH_OPT_LONG: {
		char *end = NULL;
		long v;
		errno = 0;
		v = strtol(val, &end, 10);
		if (errno || end == val || *end) {
			snprintf(err, errlen, "%s: \"%.64s\" is not a number", src, val);
			rc = -EINVAL;
			goto out;
		}
		if (v < op->min || v > op->max) {
			snprintf(err, errlen, "%s: %ld is out of range %lld..%lld", src, v, op->min,
				 op->max);
			rc = -EINVAL;
			goto out;
		}
		memcpy(base, &v, sizeof(v));
		break;
	}
	case NH_OPT_BYTES: {
		uint64_t v = 0;
		if (nh_parse_bytes(val, &v) != 0) {
			snprintf(err, errlen, "%s: \"%.64s\" is not a size (e.g. 1073741824, 512Mi, 1Gi)",
				 src, val);
			rc = -EINVAL;
			goto out;
		}
		if (v > (uint64_t)op->max) {
			snprintf(err, errlen, "%s: %.64s is too large", src, val);
			rc = -EINVAL;
			goto out;
		}
		memcpy(base, &v, sizeof(v));
		break;
	}
	case NH_OPT_BOOL: {
		bool v = false;
		if (nh_parse_bool(val, &v) != 0) {
			snprintf(err, errlen, "%s: \"%.64s\" is not true or false", src, val);
			rc = -EINVAL;
			goto out;
		}
		memcpy(base, &v, sizeof(v));
		break;
	}
	}
out:
	return rc;
}

static const struct nh_opt *nh_opt_find(const char *name, size_t len)
{
	for (size_t i = 0; i < NH_NOPTS; i++)
		if (strlen(nh_opts[i].name) == len && strncmp(nh_opts[i].name, name, len) == 0)
			return &nh_opts[i];
	return NULL;
}

/* Strips trailing slashes from a directory option ("/a/b/" -> "/a/b"). */
static void nh_trim_slash(char *p)
{
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
}

int nh_options_parse(struct nh_options *o, int argc, char **argv, char *err, size_t errlen)
{
	char src[128];
	int rc = 0, n;

	memset(o, 0, sizeof(*o));
	if (errlen)
		err[0] = '\0';
	for (size_t i = 0; i < NH_NOPTS; i++) {
		snprintf(src, sizeof(src), "default of --%s", nh_opts[i].name);
		rc = nh_opt_set(o, &nh_opts[i], nh_opts[i].def, src, err, errlen);
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < NH_NOPTS; i++) {
		const char *v = nh_opts[i].env ? getenv(nh_opts[i].env) : NULL;
		if (!v || !*v)
			continue;
		snprintf(src, sizeof(src), "$%s", nh_opts[i].env);
		rc = nh_opt_set(o, &nh_opts[i], v, src, err, errlen);
		if (rc)
			goto out;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *val;
		const struct nh_opt *op;
		size_t len;

		if (strncmp(a, "--", 2) != 0) {
			snprintf(err, errlen, "unexpected argument \"%.64s\" (options start with --)", a);
			rc = -EINVAL;
			goto out;
		}
		a += 2;
		eq = strchr(a, '=');
		len = eq ? (size_t)(eq - a) : strlen(a);
		op = nh_opt_find(a, len);
		if (!op) {
			snprintf(err, errlen, "unknown option --%.*s (see --help)", (int)(len > 64 ? 64 : len), a);
			rc = -EINVAL;
			goto out;
		}
		if (eq) {
			val = eq + 1;
		} else if (op->type == NH_OPT_BOOL) {
			val = "true";
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			snprintf(err, errlen, "--%s needs a value", op->name);
			rc = -EINVAL;
			goto out;
		}
		snprintf(src, sizeof(src), "--%s", op->name);
		rc = nh_opt_set(o, op, val, src, err, errlen);
		if (rc)
			goto out;
	}
	if (o->help)
		goto out;
	if (!o->node_name[0]) {
		snprintf(err, errlen, "--node-name (or $NODE_NAME) is required");
		rc = -EINVAL;
		goto out;
	}
	if (!o->bind_address[0]) {
		snprintf(err, errlen, "--bind-address (or $NODE_IP) is required");
		rc = -EINVAL;
		goto out;
	}
	_Static_assert(sizeof(o->kubelet_address) >= sizeof(o->bind_address),
		       "kubelet_address holds a bind_address");
	if (!o->kubelet_address[0])
		memcpy(o->kubelet_address, o->bind_address, sizeof(o->bind_address));
	if (!o->kubelet_url[0]) {
		/*
		 * By name, like the API server's own kubelet client: the kubelet's
		 * serving certificate names the node (self-signed kubelet.crt: the
		 * hostname only, no IP), while the connection goes to the node IP
		 * (nh_kubelet pins the name to --kubelet-address, no DNS involved).
		 */
		n = snprintf(o->kubelet_url, sizeof(o->kubelet_url), "https://%s:%ld", o->node_name,
			     o->kubelet_port);
		if (n < 0 || (size_t)n >= sizeof(o->kubelet_url)) {
			snprintf(err, errlen, "--kubelet-url: derived URL too long");
			rc = -EINVAL;
			goto out;
		}
	} else {
		size_t ul = strlen(o->kubelet_url);
		while (ul > 0 && o->kubelet_url[ul - 1] == '/')
			o->kubelet_url[--ul] = '\0';
		if (strncmp(o->kubelet_url, "https://", 8) != 0 &&
		    strncmp(o->kubelet_url, "http://", 7) != 0) {
			snprintf(err, errlen, "--kubelet-url: \"%.64s\" must start with https:// (or http://)",
				 o->kubelet_url);
			rc = -EINVAL;
			goto out;
		}
	}
	if (o->artifact_dir[0] != '/' || o->state_dir[0] != '/') {
		snprintf(err, errlen, "--artifact-dir and --state-dir must be absolute paths");
		rc = -EINVAL;
		goto out;
	}
	if (o->kubelet_root_dir[0] != '/') {
		snprintf(err, errlen, "--kubelet-root-dir must be an absolute path");
		rc = -EINVAL;
		goto out;
	}
	if (o->host_root[0] && o->host_root[0] != '/') {
		snprintf(err, errlen, "--host-root must be an absolute path or empty");
		rc = -EINVAL;
		goto out;
	}
	nh_trim_slash(o->artifact_dir);
	nh_trim_slash(o->state_dir);
	nh_trim_slash(o->host_root);
	nh_trim_slash(o->kubelet_root_dir);
	if (strcmp(o->host_root, "/") == 0)
		o->host_root[0] = '\0';
	if (strcmp(o->log_level, "error") != 0 && strcmp(o->log_level, "warn") != 0 &&
	    strcmp(o->log_level, "info") != 0 && strcmp(o->log_level, "debug") != 0) {
		snprintf(err, errlen, "--log-level: \"%.16s\" is not error, warn, info or debug",
			 o->log_level);
		rc = -EINVAL;
		goto out;
	}
out:
	return rc;
}

void nh_options_usage(FILE *f)
{
	fprintf(f, "Usage: podcheckpoint-node-helper [options]\n\n"
		   "The PodCheckpoint node helper: serves checkpoint jobs from the controller,\n"
		   "calls the kubelet, stores the pod-level artifact on this node.\n\nOptions:\n");
	for (size_t i = 0; i < NH_NOPTS; i++) {
		const struct nh_opt *op = &nh_opts[i];
		fprintf(f, "  --%-32s %s", op->name, op->help);
		if (op->def[0] && op->type != NH_OPT_BOOL)
			fprintf(f, " (default %s)", op->def);
		if (op->env)
			fprintf(f, " [$%s]", op->env);
		if (op->type == NH_OPT_LONG)
			fprintf(f, " [%lld..%lld]", op->min, op->max);
		fputc('\n', f);
	}
}
