/*
 * ctl_options.c - the option table and its parser (see ctl_options.h).
 */
#include "ctl_options.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum opt_type { OPT_STR, OPT_INT, OPT_BOOL, OPT_NSLIST, OPT_FLAG };

struct opt {
	const char *name;
	enum opt_type type;
	size_t off;  /* offset in struct ctl_options */
	size_t size; /* OPT_STR: buffer size */
	long min, max;
	const char *dflt; /* as it would be written on the command line; NULL: none */
	const char *help;
};

#define OFF(f) offsetof(struct ctl_options, f)
#define SZ(f) sizeof(((struct ctl_options *)0)->f)

static const struct opt opts[] = {
	{ "kubeconfig", OPT_STR, OFF(kubeconfig), SZ(kubeconfig), 0, 0, NULL,
	  "kubeconfig file (default: $KUBECONFIG, else the in-cluster ServiceAccount)" },
	{ "namespace", OPT_STR, OFF(ns), SZ(ns), 0, 0, "podcheckpoint-system",
	  "operator namespace: leader Lease and node helper Leases (default: $POD_NAMESPACE)" },
	{ "watch-namespace", OPT_NSLIST, 0, 0, 0, 0, NULL,
	  "namespace of PodCheckpoints to handle; repeatable or comma-separated (default: all)" },
	{ "workers", OPT_INT, OFF(workers), 0, 1, 64, "2", "concurrent reconcilers" },
	{ "helper-wait-seconds", OPT_INT, OFF(helper_wait_seconds), 0, 1, 86400, "60",
	  "how long a checkpoint may wait for (or lose) its node helper before NodeHelperUnavailable" },
	{ "job-margin-seconds", OPT_INT, OFF(job_margin_seconds), 0, 0, 86400, "60",
	  "added to timeoutSeconds x containers for the Timeout deadline" },
	{ "queue-wait-seconds", OPT_INT, OFF(queue_wait_seconds), 0, 1, 86400, "600",
	  "how long a dispatched checkpoint may wait for a free slot on its node helper before QueueTimeout" },
	{ "poll-seconds", OPT_INT, OFF(poll_seconds), 0, 1, 3600, "5",
	  "how often an in-flight checkpoint is re-sent to its helper" },
	{ "leader-elect", OPT_BOOL, OFF(leader_elect), 0, 0, 0, "true",
	  "hold Lease podcheckpoint-controller in the operator namespace before working" },
	{ "allow-expired-certificates", OPT_BOOL, OFF(allow_expired), 0, 0, 0, "false",
	  "accept expired or not-yet-valid encryption certificates" },
	{ "identity", OPT_STR, OFF(identity), SZ(identity), 0, 0, NULL,
	  "leader election identity (default: $POD_NAME, else the host name)" },
	{ "channel-token-file", OPT_STR, OFF(channel_token_file), SZ(channel_token_file), 0, 0,
	  "/var/run/secrets/checkpointing.dev/channel/token",
	  "the token presented to node helpers: a projected ServiceAccount token with audience "
	  "channel.checkpointing.dev (re-read on every call; the API token is never sent)" },
	{ "kube-api-qps", OPT_INT, OFF(kube_api_qps), 0, 0, 100000, "200",
	  "client-side limit on API requests per second (watches excepted); 0: none" },
	{ "kube-api-burst", OPT_INT, OFF(kube_api_burst), 0, 1, 100000, "400",
	  "requests allowed at once above --kube-api-qps" },
	{ "log-level", OPT_STR, OFF(log_level), SZ(log_level), 0, 0, "info",
	  "error, warn, info or debug" },
	{ "metrics-addr", OPT_STR, OFF(metrics_addr), SZ(metrics_addr), 0, 0, ":8080",
	  "address of /metrics, /healthz and /readyz (HOST:PORT, :PORT, [V6]:PORT; 0: off)" },
	{ "help", OPT_FLAG, OFF(help), 0, 0, 0, NULL, "show this help" },
	{ "version", OPT_FLAG, OFF(version), 0, 0, 0, NULL, "print the version" },
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *f, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, f);
		vsnprintf(err, errlen, f, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int add_ns_list(struct ctl_options *o, const char *val, char *err, size_t errlen)
{
	const char *p = val;

	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (n > 0) {
			bool dup = false;

			if (n >= sizeof(o->watch_ns[0]))
				return fail(err, errlen, "--watch-namespace: namespace name too long");
			for (size_t i = 0; i < o->nwatch; i++)
				dup = dup || (strlen(o->watch_ns[i]) == n && memcmp(o->watch_ns[i], p, n) == 0);
			if (!dup) {
				if (o->nwatch >= CTL_MAX_WATCH_NS)
					return fail(err, errlen, "--watch-namespace: more than %d namespaces",
						    CTL_MAX_WATCH_NS);
				memcpy(o->watch_ns[o->nwatch], p, n);
				o->watch_ns[o->nwatch][n] = '\0';
				o->nwatch++;
			}
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "yes")) {
		*out = true;
		return 0;
	}
	if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "no")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

static int set_opt(struct ctl_options *o, const struct opt *d, const char *val, char *err,
		   size_t errlen)
{
	char *base = (char *)o;

	switch (d->type) {
	case OPT_STR: {
		size_t n = strlen(val);

		if (n >= d->size)
			return fail(err, errlen, "--%s: value longer than %zu bytes", d->name, d->size - 1);
		memcpy(base + d->off, val, n + 1);
		return 0;
	}
	case OPT_INT: {
		char *end = NULL;
		long v;

		errno = 0;
		v = strtol(val, &end, 10);
		if (errno || end == val || *end)
			return fail(err, errlen, "--%s: \"%s\" is not a whole number", d->name, val);
		if (v < d->min || v > d->max)
			return fail(err, errlen, "--%s: %ld is outside %ld..%ld", d->name, v, d->min, d->max);
		*(int *)(void *)(base + d->off) = (int)v;
		return 0;
	}
	case OPT_BOOL:
	case OPT_FLAG:
		if (parse_bool(val, (bool *)(void *)(base + d->off)) != 0)
			return fail(err, errlen, "--%s: \"%s\" is not true or false", d->name, val);
		return 0;
	case OPT_NSLIST:
		return add_ns_list(o, val, err, errlen);
	}
	return -EINVAL;
}

static const struct opt *find(const char *name, size_t n)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strlen(opts[i].name) == n && memcmp(opts[i].name, name, n) == 0)
			return &opts[i];
	return NULL;
}

int ctl_options_parse(struct ctl_options *o, int argc, char **argv, char *err, size_t errlen)
{
	const char *env;
	int rc = 0;

	memset(o, 0, sizeof(*o));
	for (size_t i = 0; i < NOPTS; i++) {
		if (opts[i].dflt) {
			rc = set_opt(o, &opts[i], opts[i].dflt, err, errlen);
			if (rc)
				goto out;
		}
	}
	env = getenv("POD_NAMESPACE");
	if (env && *env && strlen(env) < sizeof(o->ns))
		memcpy(o->ns, env, strlen(env) + 1);
	env = getenv("POD_NAME");
	if (env && *env && strlen(env) < sizeof(o->identity)) {
		memcpy(o->identity, env, strlen(env) + 1);
	} else if (gethostname(o->identity, sizeof(o->identity) - 1) != 0 || !o->identity[0]) {
		snprintf(o->identity, sizeof(o->identity), "podcheckpoint-controller-%ld", (long)getpid());
	}

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *name, *eq, *val = NULL;
		const struct opt *d;
		size_t n;
		bool neg = false;

		if (strncmp(a, "--", 2) != 0 || !a[2]) {
			rc = fail(err, errlen, "unexpected argument \"%s\" (options start with --)", a);
			goto out;
		}
		name = a + 2;
		eq = strchr(name, '=');
		n = eq ? (size_t)(eq - name) : strlen(name);
		d = find(name, n);
		if (!d && n > 3 && strncmp(name, "no-", 3) == 0 && !eq) {
			d = find(name + 3, n - 3);
			neg = d && (d->type == OPT_BOOL || d->type == OPT_FLAG);
			if (!neg)
				d = NULL;
		}
		if (!d) {
			rc = fail(err, errlen, "unknown option --%.*s (see --help)", (int)n, name);
			goto out;
		}
		if (neg) {
			val = "false";
		} else if (eq) {
			val = eq + 1;
		} else if (d->type == OPT_BOOL || d->type == OPT_FLAG) {
			val = "true";
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			rc = fail(err, errlen, "--%s needs a value", d->name);
			goto out;
		}
		rc = set_opt(o, d, val, err, errlen);
		if (rc)
			goto out;
	}
	if (!o->ns[0])
		rc = fail(err, errlen, "--namespace must not be empty");
out:
	return rc;
}

void ctl_options_usage(FILE *f, const char *prog)
{
	fprintf(f, "usage: %s [options]\n\nThe PodCheckpoint controller (podcheckpoints.checkpointing.dev).\n\n",
		prog ? prog : "podcheckpoint-controller");
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *d = &opts[i];
		const char *arg = d->type == OPT_INT ? "=N" :
				  d->type == OPT_BOOL ? "[=true|false]" :
				  d->type == OPT_FLAG ? "" : "=VALUE";

		fprintf(f, "  --%s%s\n      %s", d->name, arg, d->help);
		if (d->dflt)
			fprintf(f, " [default %s]", d->dflt);
		fputc('\n', f);
	}
}
