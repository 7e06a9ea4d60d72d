/*
 * kcp_cli.c - the pure parts of kubectl-checkpoint (see kcp_cli.h).
 */
#include "kcp_cli.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kc.h"

#define RES "podcheckpoint.checkpointing.dev"

/* ---------------------------------------------------------------- usage */

void kcp_usage(FILE *f, enum kcp_cmd cmd)
{
	switch (cmd) {
	case KCP_CMD_CREATE:
		fprintf(f,
			"Checkpoint a running pod: create a PodCheckpoint (" RES ").\n\n"
			"usage: kubectl checkpoint create POD [-n NS] [--name NAME] [--container C]...\n"
			"         [--encrypt-to SECRET] [--delete-pod] [--timeout SECONDS]\n"
			"         [--deletion-policy Retain|Delete] [--wait[=DURATION]]\n\n"
			"  -n, --namespace NS        namespace of the pod (default: the context's)\n"
			"      --name NAME           PodCheckpoint name (default: POD-yyyymmdd-hhmmss)\n"
			"  -c, --container C         checkpoint only this container (repeatable)\n"
			"      --encrypt-to SECRET   encrypt to the tls.crt of this kubernetes.io/tls Secret\n"
			"      --delete-pod          delete the pod once the artifact is durable\n"
			"      --timeout SECONDS     per-container kubelet timeout, 1..3600 (default 300)\n"
			"      --deletion-policy P   Retain (default) or Delete the artifact with the resource\n"
			"      --wait[=DURATION]     wait until it finished (default 5m; 90s, 5m, 1h)\n"
			"      --kubeconfig PATH     kubeconfig (default: $KUBECONFIG, ~/.kube/config)\n"
			"\nExit status with --wait: 0 Succeeded, 1 Failed, 2 timed out.\n");
		break;
	case KCP_CMD_LIST:
		fprintf(f, "List PodCheckpoints.\n\n"
			   "usage: kubectl checkpoint list [-n NS | -A] [--kubeconfig PATH]\n\n"
			   "  -n, --namespace NS     namespace (default: the context's)\n"
			   "  -A, --all-namespaces   list in every namespace\n");
		break;
	case KCP_CMD_WAIT:
		fprintf(f, "Wait until a PodCheckpoint finished and print its artifact.\n\n"
			   "usage: kubectl checkpoint wait NAME [-n NS] [--timeout DURATION] "
			   "[--kubeconfig PATH]\n\n"
			   "  --timeout DURATION   give up after this long (default 5m; 90s, 5m, 1h)\n"
			   "\nExit status: 0 Succeeded, 1 Failed, 2 timed out.\n");
		break;
	case KCP_CMD_DECRYPT:
		fprintf(f, "Decrypt a PodCheckpoint artifact (same bytes as openssl cms -decrypt).\n\n"
			   "usage: kubectl checkpoint decrypt ARTIFACT --key tls.key [--cert tls.crt] "
			   "-o OUT.tar\n\n"
			   "  -k, --key PATH    the recipient's private key (PEM)\n"
			   "  -c, --cert PATH   the recipient's certificate (PEM)\n"
			   "  -o, --output PATH where the plaintext tar goes (0600, only if intact)\n");
		break;
	case KCP_CMD_NONE:
	default:
		fprintf(f, "Checkpoint pods with PodCheckpoint (" RES ").\n\n"
			   "usage: kubectl checkpoint COMMAND [flags]\n\n"
			   "commands:\n"
			   "  create POD     create a PodCheckpoint for a running pod\n"
			   "  list           list PodCheckpoints\n"
			   "  wait NAME      wait until a PodCheckpoint finished\n"
			   "  decrypt FILE   decrypt an encrypted artifact\n\n"
			   "global flags: --kubeconfig PATH, -h/--help\n"
			   "Run 'kubectl checkpoint COMMAND --help' for a command's flags.\n");
		break;
	}
}

/* ---------------------------------------------------------------- durations */

int kcp_parse_duration(const char *s, long *seconds)
{
	char *end = NULL;
	long long v, mult = 1;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (*end != '\0') {
		switch (*end) {
		case 's': mult = 1; break;
		case 'm': mult = 60; break;
		case 'h': mult = 3600; break;
		case 'd': mult = 86400; break;
		default: return -EINVAL;
		}
		if (end[1] != '\0')
			return -EINVAL;
	}
	if (v < 0 || v > KCP_MAX_DURATION_SECONDS / mult)
		return -EINVAL;
	*seconds = (long)(v * mult);
	return 0;
}

void kcp_format_age(int64_t s, char *buf, size_t cap)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(buf, cap, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(buf, cap, "%" PRId64 "m", s / 60);
	else if (s < 86400)
		snprintf(buf, cap, "%" PRId64 "h", s / 3600);
	else
		snprintf(buf, cap, "%" PRId64 "d", s / 86400);
}

int kcp_default_name(const char *pod, int64_t epoch_s, char *buf, size_t cap)
{
	time_t t = (time_t)epoch_s;
	struct tm tm;
	char stamp[32];
	int n;

	if (!pod || !gmtime_r(&t, &tm) || strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm) == 0)
		return -EINVAL;
	n = snprintf(buf, cap, "%s-%s", pod, stamp);
	if (n < 0 || (size_t)n >= cap || n > 253)
		return -ENAMETOOLONG;
	return 0;
}

/* ---------------------------------------------------------------- arguments */

enum flag_id {
	F_HELP, F_KUBECONFIG, F_NS, F_ALL_NS, F_NAME, F_CONTAINER, F_ENCRYPT_TO, F_DELETE_POD,
	F_TIMEOUT, F_DELETION_POLICY, F_WAIT, F_KEY, F_CERT, F_OUT,
};

#define C_ALL ((1u << KCP_CMD_NONE) | (1u << KCP_CMD_CREATE) | (1u << KCP_CMD_LIST) | \
	       (1u << KCP_CMD_WAIT) | (1u << KCP_CMD_DECRYPT))
#define C_API ((1u << KCP_CMD_NONE) | (1u << KCP_CMD_CREATE) | (1u << KCP_CMD_LIST) | \
	       (1u << KCP_CMD_WAIT))
#define C_(x) (1u << KCP_CMD_##x)

enum { V_NONE, V_REQUIRED, V_OPTIONAL };

/* Every flag in one table: long name, short letter, value, where it is valid. */
static const struct flag {
	const char *lng;
	char shrt;
	int value;
	unsigned cmds;
	enum flag_id id;
} flags[] = {
	{"help", 'h', V_NONE, C_ALL, F_HELP},
	{"kubeconfig", 0, V_REQUIRED, C_ALL, F_KUBECONFIG},
	{"namespace", 'n', V_REQUIRED, C_API, F_NS},
	{"all-namespaces", 'A', V_NONE, C_(NONE) | C_(LIST), F_ALL_NS},
	{"name", 0, V_REQUIRED, C_(CREATE), F_NAME},
	{"container", 0, V_REQUIRED, C_(CREATE), F_CONTAINER},
	{"encrypt-to", 0, V_REQUIRED, C_(CREATE), F_ENCRYPT_TO},
	{"delete-pod", 0, V_NONE, C_(CREATE), F_DELETE_POD},
	{"timeout", 0, V_REQUIRED, C_(CREATE) | C_(WAIT), F_TIMEOUT},
	{"deletion-policy", 0, V_REQUIRED, C_(CREATE), F_DELETION_POLICY},
	{"wait", 0, V_OPTIONAL, C_(CREATE), F_WAIT},
	{"key", 'k', V_REQUIRED, C_(DECRYPT), F_KEY},
	{"cert", 0, V_REQUIRED, C_(DECRYPT), F_CERT},
	{"output", 'o', V_REQUIRED, C_(DECRYPT), F_OUT},
};

/* -c means --container for create and --cert for decrypt. */
static const struct flag *find_short(char c, enum kcp_cmd cmd)
{
	if (c == 'c')
		return cmd == KCP_CMD_DECRYPT ? &flags[F_CERT] : &flags[F_CONTAINER];
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (flags[i].shrt == c)
			return &flags[i];
	return NULL;
}

static const struct flag *find_long(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (strlen(flags[i].lng) == len && strncmp(flags[i].lng, name, len) == 0)
			return &flags[i];
	return NULL;
}

static const char *cmd_name(enum kcp_cmd cmd)
{
	static const char *const names[] = {"", "create", "list", "wait", "decrypt"};
	return names[cmd];
}

static enum kcp_cmd cmd_from(const char *s)
{
	for (int c = KCP_CMD_CREATE; c <= KCP_CMD_DECRYPT; c++)
		if (strcmp(s, cmd_name((enum kcp_cmd)c)) == 0)
			return (enum kcp_cmd)c;
	return KCP_CMD_NONE;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/*
 * One flag at argv[*i]: finds it, takes its value (inline after '=' or the
 * attached short form, else the next argument), and stores it.
 */
static int take_flag(int argc, char **argv, int *i, enum kcp_cmd cmd, struct kcp_args *a,
		     char *err, size_t errlen)
{
	const char *arg = argv[*i], *val = NULL, *shown = arg;
	const struct flag *f;
	char sname[3] = {'-', 0, 0};
	long secs;
	int rc;

	if (arg[1] == '-') {
		const char *eq = strchr(arg + 2, '=');
		size_t len = eq ? (size_t)(eq - (arg + 2)) : strlen(arg + 2);

		f = find_long(arg + 2, len);
		if (eq)
			val = eq + 1;
		if (!f)
			return fail(err, errlen, "unknown flag: --%.*s", (int)len, arg + 2);
		if (eq && f->value == V_NONE)
			return fail(err, errlen, "flag --%s takes no value", f->lng);
	} else {
		sname[1] = arg[1];
		shown = sname;
		f = find_short(arg[1], cmd);
		if (!f)
			return fail(err, errlen, "unknown shorthand flag: '%c' in %s", arg[1], arg);
		if (arg[2] != '\0') {
			if (f->value == V_NONE)
				return fail(err, errlen, "flag -%c takes no value (in %s)", arg[1], arg);
			val = arg[2] == '=' ? arg + 3 : arg + 2;
		}
	}
	if (!(f->cmds & (1u << cmd)))
		return fail(err, errlen, "flag --%s is not valid for '%s'", f->lng,
			    cmd == KCP_CMD_NONE ? "kubectl checkpoint" : cmd_name(cmd));
	if (f->value == V_REQUIRED && !val) {
		if (*i + 1 >= argc)
			return fail(err, errlen, "flag needs an argument: %s", shown);
		val = argv[++*i];
	}
	if (f->value == V_REQUIRED && val[0] == '\0')
		return fail(err, errlen, "flag %s needs a non-empty value", shown);

	switch (f->id) {
	case F_HELP: a->help = true; break;
	case F_KUBECONFIG: a->kubeconfig = val; break;
	case F_NS: a->ns = val; break;
	case F_ALL_NS: a->all_ns = true; break;
	case F_NAME: a->name = val; break;
	case F_CONTAINER:
		if (a->create.n_containers >= KCP_MAX_CONTAINERS)
			return fail(err, errlen, "at most %d --container flags", KCP_MAX_CONTAINERS);
		a->create.containers[a->create.n_containers++] = val;
		break;
	case F_ENCRYPT_TO: a->create.encrypt_to = val; break;
	case F_DELETE_POD: a->create.delete_pod = true; break;
	case F_TIMEOUT:
		rc = kcp_parse_duration(val, &secs);
		if (rc)
			return fail(err, errlen, "invalid --timeout %s: want seconds or 90s, 5m, 1h",
				    val);
		if (cmd == KCP_CMD_CREATE) {
			if (secs < 1 || secs > 3600)
				return fail(err, errlen, "invalid --timeout %s: must be 1..3600 seconds",
					    val);
			a->create.timeout_seconds = secs;
		} else {
			a->wait_seconds = secs;
		}
		break;
	case F_DELETION_POLICY:
		if (strcmp(val, "Retain") != 0 && strcmp(val, "Delete") != 0)
			return fail(err, errlen, "invalid --deletion-policy %s: want Retain or Delete",
				    val);
		a->create.deletion_policy = val;
		break;
	case F_WAIT:
		a->wait = true;
		if (val && kcp_parse_duration(val, &a->wait_seconds))
			return fail(err, errlen, "invalid --wait=%s: want seconds or 90s, 5m, 1h",
				    val);
		break;
	case F_KEY: a->key = val; break;
	case F_CERT: a->cert = val; break;
	case F_OUT: a->out = val; break;
	}
	return 0;
}

/* Pass 1: the subcommand is the first argument that is neither a flag nor a
 * flag's separate value. */
static enum kcp_cmd find_cmd(int argc, char **argv, int *at)
{
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];

		if (strcmp(s, "--") == 0) {
			if (i + 1 < argc) {
				*at = i + 1;
				return cmd_from(argv[i + 1]);
			}
			break;
		}
		if (s[0] == '-' && s[1] != '\0') {
			const struct flag *f = NULL;

			if (s[1] == '-' && !strchr(s, '='))
				f = find_long(s + 2, strlen(s + 2));
			else if (s[1] != '-' && s[2] == '\0')
				f = find_short(s[1], KCP_CMD_NONE);
			if (f && f->value == V_REQUIRED)
				i++;
			continue;
		}
		*at = i;
		return cmd_from(s);
	}
	*at = 0;
	return KCP_CMD_NONE;
}

int kcp_parse_args(int argc, char **argv, struct kcp_args *a, char *err, size_t errlen)
{
	bool dashdash = false;
	int at = 0, rc;

	memset(a, 0, sizeof(*a));
	a->wait_seconds = KCP_DEFAULT_WAIT_SECONDS;
	if (errlen)
		err[0] = '\0';
	a->cmd = find_cmd(argc, argv, &at);
	if (at && a->cmd == KCP_CMD_NONE)
		return fail(err, errlen, "unknown command \"%s\" (want create, list, wait or decrypt)",
			    argv[at]);
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];

		if (i == at)
			continue;
		if (!dashdash && strcmp(s, "--") == 0) {
			dashdash = true;
			continue;
		}
		if (!dashdash && s[0] == '-' && s[1] != '\0') {
			rc = take_flag(argc, argv, &i, a->cmd, a, err, errlen);
			if (rc)
				return rc;
			continue;
		}
		if (a->target || a->cmd == KCP_CMD_LIST || a->cmd == KCP_CMD_NONE)
			return fail(err, errlen, "unexpected argument \"%s\"", s);
		a->target = s;
	}
	if (a->help)
		return 0;
	switch (a->cmd) {
	case KCP_CMD_NONE:
		return fail(err, errlen, "missing command (want create, list, wait or decrypt)");
	case KCP_CMD_CREATE:
		if (!a->target)
			return fail(err, errlen, "create: missing POD");
		a->create.pod = a->target;
		break;
	case KCP_CMD_LIST:
		if (a->all_ns && a->ns)
			return fail(err, errlen, "list: -A and -n are mutually exclusive");
		break;
	case KCP_CMD_WAIT:
		if (!a->target)
			return fail(err, errlen, "wait: missing NAME");
		a->wait = true;
		break;
	case KCP_CMD_DECRYPT:
		if (!a->target)
			return fail(err, errlen, "decrypt: missing ARTIFACT");
		if (!a->key)
			return fail(err, errlen, "decrypt: --key is required");
		if (!a->out)
			return fail(err, errlen, "decrypt: -o OUT is required");
		break;
	}
	return 0;
}

/* ---------------------------------------------------------------- objects */

int kcp_build_spec(const struct kcp_create_opts *o, json_object **out)
{
	json_object *spec = NULL, *arr = NULL;
	int rc;

	*out = NULL;
	if (!o || !o->pod || !o->pod[0])
		return -EINVAL;
	spec = json_object_new_object();
	if (!spec)
		return -ENOMEM;
	rc = kc_json_set_str(spec, "podName", o->pod);
	if (rc)
		goto out;
	if (o->encrypt_to) {
		rc = kc_json_set(spec, "encrypt", json_object_new_boolean(1));
		if (!rc)
			rc = kc_json_set_str(spec, "encryptionSecret", o->encrypt_to);
		if (rc)
			goto out;
	}
	if (o->delete_pod) {
		rc = kc_json_set(spec, "leaveRunning", json_object_new_boolean(0));
		if (rc)
			goto out;
	}
	if (o->n_containers) {
		arr = json_object_new_array();
		if (!arr) {
			rc = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < o->n_containers; i++) {
			rc = kc_json_append(arr, json_object_new_string(o->containers[i]));
			if (rc)
				goto out;
		}
		rc = kc_json_set(spec, "containers", arr);
		arr = NULL; /* owned by spec now, or put on failure */
		if (rc)
			goto out;
	}
	if (o->timeout_seconds > 0) {
		rc = kc_json_set(spec, "timeoutSeconds", json_object_new_int64(o->timeout_seconds));
		if (rc)
			goto out;
	}
	if (o->deletion_policy) {
		rc = kc_json_set_str(spec, "deletionPolicy", o->deletion_policy);
		if (rc)
			goto out;
	}
	*out = spec;
	spec = NULL;
out:
	json_object_put(arr);
	json_object_put(spec);
	return rc;
}

int kcp_build_pcp(const struct kcp_create_opts *o, const char *ns, const char *name,
		  json_object **out)
{
	json_object *obj = NULL, *meta = NULL, *spec = NULL;
	int rc;

	*out = NULL;
	if (!ns || !name)
		return -EINVAL;
	rc = kcp_build_spec(o, &spec);
	if (rc)
		return rc;
	obj = json_object_new_object();
	meta = json_object_new_object();
	if (!obj || !meta) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = kc_json_set_str(obj, "apiVersion", "checkpointing.dev/v1alpha1")) ||
	    (rc = kc_json_set_str(obj, "kind", "PodCheckpoint")) ||
	    (rc = kc_json_set_str(meta, "name", name)) ||
	    (rc = kc_json_set_str(meta, "namespace", ns)))
		goto out;
	rc = kc_json_set(obj, "metadata", meta);
	meta = NULL;
	if (rc)
		goto out;
	rc = kc_json_set(obj, "spec", spec);
	spec = NULL;
	if (rc)
		goto out;
	*out = obj;
	obj = NULL;
out:
	json_object_put(meta);
	json_object_put(spec);
	json_object_put(obj);
	return rc;
}

/* ---------------------------------------------------------------- status */

static const char *str_or(json_object *obj, const char *dotted, const char *dflt)
{
	const char *s = kc_json_str(obj, dotted);
	return s && s[0] ? s : dflt;
}

static json_object *condition(json_object *obj, const char *type)
{
	json_object *list = kc_json_get(obj, "status.conditions");
	size_t n;

	if (!list || !json_object_is_type(list, json_type_array))
		return NULL;
	n = json_object_array_length(list);
	for (size_t i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(list, i);
		const char *t = kc_json_str(c, "type");

		if (t && strcmp(t, type) == 0)
			return c;
	}
	return NULL;
}

int kcp_phase_done(json_object *obj)
{
	const char *p = kc_json_str(obj, "status.phase");

	if (p && strcmp(p, "Succeeded") == 0)
		return 1;
	if (p && strcmp(p, "Failed") == 0)
		return -1;
	return 0;
}

void kcp_failure(json_object *obj, const char **reason, const char **message)
{
	json_object *c = condition(obj, "Stalled");

	if (!c)
		c = condition(obj, "Ready");
	*reason = str_or(c, "reason", "");
	*message = str_or(obj, "status.message", str_or(c, "message", ""));
}

static bool get_bool(json_object *obj, const char *dotted, bool *val)
{
	json_object *b = kc_json_get(obj, dotted);

	if (!b || !json_object_is_type(b, json_type_boolean))
		return false;
	*val = json_object_get_boolean(b) != 0;
	return true;
}

void kcp_row_from_pcp(json_object *obj, int64_t now_ms, struct kcp_row *row)
{
	const char *created = kc_json_str(obj, "metadata.creationTimestamp");
	int64_t created_ms = 0;
	bool enc = false;

	memset(row, 0, sizeof(*row));
	snprintf(row->ns, sizeof(row->ns), "%s", str_or(obj, "metadata.namespace", ""));
	snprintf(row->name, sizeof(row->name), "%s", str_or(obj, "metadata.name", ""));
	snprintf(row->pod, sizeof(row->pod), "%s", str_or(obj, "spec.podName", ""));
	snprintf(row->node, sizeof(row->node), "%s", str_or(obj, "status.nodeName", ""));
	snprintf(row->phase, sizeof(row->phase), "%s", str_or(obj, "status.phase", "Pending"));
	/* What was done if known, else what was asked for. */
	if (!get_bool(obj, "status.artifact.encrypted", &enc))
		get_bool(obj, "spec.encrypt", &enc);
	snprintf(row->encrypted, sizeof(row->encrypted), "%s", enc ? "true" : "false");
	if (created && kc_time_parse(created, &created_ms) == 0)
		kcp_format_age((now_ms - created_ms) / 1000, row->age, sizeof(row->age));
	else
		snprintf(row->age, sizeof(row->age), "<unknown>");
	if (kcp_phase_done(obj) < 0) {
		const char *reason, *message;

		kcp_failure(obj, &reason, &message);
		snprintf(row->reason, sizeof(row->reason), "%s", reason);
	}
}

static int width(size_t w)
{
	return w > INT_MAX ? INT_MAX : (int)w;
}

static size_t max_len(size_t w, const char *s)
{
	size_t n = strlen(s);
	return n > w ? n : w;
}

void kcp_print_table(FILE *f, const struct kcp_row *rows, size_t n, bool show_ns)
{
	size_t w[7] = {strlen("NAMESPACE"), strlen("NAME"), strlen("POD"), strlen("NODE"),
		       strlen("PHASE"), strlen("ENCRYPTED"), strlen("AGE")};

	for (size_t i = 0; i < n; i++) {
		const struct kcp_row *r = &rows[i];

		w[0] = max_len(w[0], r->ns);
		w[1] = max_len(w[1], r->name);
		w[2] = max_len(w[2], r->pod);
		w[3] = max_len(w[3], r->node);
		w[4] = max_len(w[4], r->phase);
		w[5] = max_len(w[5], r->encrypted);
		w[6] = max_len(w[6], r->age);
	}
	/* Three spaces between columns, as kubectl; the last column unpadded. */
	if (show_ns)
		fprintf(f, "%-*s   ", width(w[0]), "NAMESPACE");
	fprintf(f, "%-*s   %-*s   %-*s   %-*s   %-*s   %-*s   REASON\n", width(w[1]), "NAME",
		width(w[2]), "POD", width(w[3]), "NODE", width(w[4]), "PHASE", width(w[5]),
		"ENCRYPTED", width(w[6]), "AGE");
	for (size_t i = 0; i < n; i++) {
		const struct kcp_row *r = &rows[i];
		char line[2048];
		size_t len;

		if (show_ns)
			fprintf(f, "%-*s   ", width(w[0]), r->ns);
		snprintf(line, sizeof(line), "%-*s   %-*s   %-*s   %-*s   %-*s   %-*s   %s",
			 width(w[1]), r->name, width(w[2]), r->pod[0] ? r->pod : "<none>",
			 width(w[3]), r->node[0] ? r->node : "<none>", width(w[4]), r->phase,
			 width(w[5]), r->encrypted, width(w[6]), r->age, r->reason);
		len = strlen(line);
		while (len > 0 && line[len - 1] == ' ')
			line[--len] = '\0';
		fprintf(f, "%s\n", line);
	}
}

void kcp_print_succeeded(FILE *f, json_object *obj)
{
	bool enc = false;
	bool have_size = false;
	int64_t size = kc_json_int64(obj, "status.artifact.sizeBytes", 0, &have_size);

	get_bool(obj, "status.artifact.encrypted", &enc);
	fprintf(f, RES "/%s succeeded\n", str_or(obj, "metadata.name", "?"));
	fprintf(f, "  node:       %s\n", str_or(obj, "status.nodeName", "<unknown>"));
	fprintf(f, "  artifact:   %s\n", str_or(obj, "status.artifact.path", "<unknown>"));
	if (have_size)
		fprintf(f, "  size:       %" PRId64 " bytes\n", size);
	else
		fprintf(f, "  size:       <unknown>\n");
	fprintf(f, "  sha256:     %s\n", str_or(obj, "status.artifact.sha256", "<unknown>"));
	if (enc)
		fprintf(f, "  encrypted:  true (recipient certificate sha256 %s)\n",
			str_or(obj, "status.artifact.recipientFingerprint", "<unknown>"));
	else
		fprintf(f, "  encrypted:  false\n");
}
