/*
 * kubectl-checkpoint - the kubectl plugin for PodCheckpoint
 * (podcheckpoints.checkpointing.dev). On $PATH, kubectl runs it as
 * `kubectl checkpoint ...`:
 *
 *   kubectl checkpoint create POD [-n NS] [--encrypt-to SECRET] [--wait[=5m]] ...
 *   kubectl checkpoint list [-n NS | -A]
 *   kubectl checkpoint wait NAME [-n NS] [--timeout 5m]
 *   kubectl checkpoint decrypt ARTIFACT --key tls.key [--cert tls.crt] -o OUT.tar
 *
 * Exit status: 0 ok; 1 an API error, a Failed PodCheckpoint or a failed
 * decryption; 2 bad usage or a wait that ran out of time.
 * The pure parts (flags, spec, table, summary) live in kcp_cli.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "art.h"
#include "kc.h"
#include "kcp_cli.h"
#include "kcp_progress.h"

#define RES "podcheckpoint.checkpointing.dev"
#define POLL_MS 500L
#define PROGRESS_EVERY_MS 15000L
#define REQUEST_TIMEOUT_MS 15000L

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_TIMEOUT = 2 };

/* One line about an API error: the API server's Status message if there is one. */
static void api_error(const char *what, int rc, const struct kc_status *st)
{
	if (st->message[0])
		fprintf(stderr, "error: %s: %s\n", what, st->message);
	else if (st->http)
		fprintf(stderr, "error: %s: HTTP %ld\n", what, st->http);
	else
		fprintf(stderr, "error: %s: %s\n", what, strerror(-rc));
}

/* The client for the kubeconfig in --kubeconfig, $KUBECONFIG or ~/.kube/config. */
static int connect_api(const struct kcp_args *a, struct kc_config **cfg, struct kc_client **c)
{
	char err[512] = "";
	int rc;

	rc = kc_config_load_kubeconfig(a->kubeconfig, NULL, cfg, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "error: kubeconfig: %s\n", err[0] ? err : strerror(-rc));
		return rc;
	}
	rc = kc_client_new(*cfg, c);
	if (rc) {
		fprintf(stderr, "error: client: %s\n", strerror(-rc));
		return rc;
	}
	kc_client_set_timeout(*c, REQUEST_TIMEOUT_MS);
	kc_client_set_user_agent(*c, "kubectl-checkpoint/0.1");
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* A GET failure worth retrying while waiting: no answer, or a 5xx / 429. */
static bool transient(const struct kc_status *st)
{
	return st->http == 0 || st->http == 429 || st->http >= 500;
}

/*
 * Polls ns/name every POLL_MS until Succeeded (prints the summary, 0), Failed
 * (prints reason and message, 1) or the deadline (2).
 */
static int wait_done(struct kc_client *c, const char *ns, const char *name, long seconds)
{
	int64_t start = mono_ms(), deadline = start + (int64_t)seconds * 1000, shown = 0;
	char path[1024], phase[32] = "", line[1024], last[1024] = "";
	struct kc_status st;
	json_object *obj = NULL;
	int rc, ret = EXIT_FAIL;

	rc = kc_path(path, sizeof(path), &KC_RES_PODCHECKPOINTS, ns, name, NULL, NULL);
	if (rc) {
		fprintf(stderr, "error: name too long: %s\n", name);
		return EXIT_FAIL;
	}
	for (;;) {
		int64_t left = deadline - mono_ms();

		kc_client_set_timeout(c, left < 1000 ? 1000 : left < REQUEST_TIMEOUT_MS ? (long)left
										 : REQUEST_TIMEOUT_MS);
		kc_status_clear(&st);
		rc = kc_get(c, path, &obj, &st);
		if (rc == 0) {
			int done = kcp_phase_done(obj);

			snprintf(phase, sizeof(phase), "%s", kc_json_str(obj, "status.phase") ?
				 kc_json_str(obj, "status.phase") : "");
			if (done > 0) {
				kcp_print_succeeded(stdout, obj);
				ret = EXIT_OK;
				goto out;
			}
			/* Progress on stderr (stdout keeps the summary): each change, and a
			 * reminder every PROGRESS_EVERY_MS so a long checkpoint is not silence. */
			kcp_progress_line(obj, line, sizeof(line));
			if (!done && (strcmp(line, last) != 0 || mono_ms() - shown >= PROGRESS_EVERY_MS)) {
				fprintf(stderr, "[%4llds] %s/%s %s\n",
					(long long)((mono_ms() - start) / 1000), ns, name, line);
				snprintf(last, sizeof(last), "%s", line);
				shown = mono_ms();
			}
			if (done < 0) {
				const char *reason, *message;

				kcp_failure(obj, &reason, &message);
				fprintf(stderr, "error: " RES "/%s failed: %s: %s\n", name,
					reason[0] ? reason : "Unknown",
					message[0] ? message : "(no message)");
				ret = EXIT_FAIL;
				goto out;
			}
			json_object_put(obj);
			obj = NULL;
		} else if (!transient(&st)) {
			api_error("get " RES, rc, &st);
			ret = EXIT_FAIL;
			goto out;
		}
		left = deadline - mono_ms();
		if (left <= 0)
			break;
		sleep_ms(left < POLL_MS ? left : POLL_MS); /* one last look at the deadline */
	}
	fprintf(stderr, "error: timed out after %lds waiting for " RES "/%s (phase %s)\n", seconds,
		name, phase[0] ? phase : "unknown");
	ret = EXIT_TIMEOUT;
out:
	json_object_put(obj);
	return ret;
}

static int cmd_create(const struct kcp_args *a)
{
	struct kc_config *cfg = NULL;
	struct kc_client *c = NULL;
	json_object *obj = NULL, *created = NULL;
	struct kc_status st;
	char path[1024], name[254];
	const char *ns;
	int rc, ret = EXIT_FAIL;

	if (connect_api(a, &cfg, &c))
		goto out;
	ns = a->ns ? a->ns : kc_config_namespace(cfg);
	if (a->name) {
		snprintf(name, sizeof(name), "%s", a->name);
	} else if (kcp_default_name(a->create.pod, (int64_t)time(NULL), name, sizeof(name))) {
		fprintf(stderr, "error: pod name too long for a default name; use --name\n");
		ret = EXIT_USAGE;
		goto out;
	}
	rc = kcp_build_pcp(&a->create, ns, name, &obj);
	if (!rc)
		rc = kc_path(path, sizeof(path), &KC_RES_PODCHECKPOINTS, ns, NULL, NULL, NULL);
	if (rc) {
		fprintf(stderr, "error: building the request: %s\n", strerror(-rc));
		goto out;
	}
	kc_status_clear(&st);
	rc = kc_create(c, path, obj, &created, &st);
	if (rc) {
		api_error("create " RES, rc, &st);
		goto out;
	}
	printf(RES "/%s created\n", name);
	fflush(stdout);
	ret = a->wait ? wait_done(c, ns, name, a->wait_seconds) : EXIT_OK;
out:
	json_object_put(created);
	json_object_put(obj);
	kc_client_free(c);
	kc_config_free(cfg);
	return ret;
}

static int cmd_list(const struct kcp_args *a)
{
	struct kc_config *cfg = NULL;
	struct kc_client *c = NULL;
	json_object *list = NULL, *items;
	struct kcp_row *rows = NULL;
	struct kc_status st;
	char path[1024];
	const char *ns = NULL;
	size_t n = 0;
	int64_t now = kc_now_ms();
	int rc, ret = EXIT_FAIL;

	if (connect_api(a, &cfg, &c))
		goto out;
	if (!a->all_ns)
		ns = a->ns ? a->ns : kc_config_namespace(cfg);
	rc = kc_path(path, sizeof(path), &KC_RES_PODCHECKPOINTS, ns, NULL, NULL, NULL);
	if (rc) {
		fprintf(stderr, "error: namespace name too long\n");
		goto out;
	}
	kc_status_clear(&st);
	rc = kc_get(c, path, &list, &st);
	if (rc) {
		api_error("list " RES, rc, &st);
		goto out;
	}
	items = kc_json_get(list, "items");
	if (items && json_object_is_type(items, json_type_array))
		n = json_object_array_length(items);
	if (n == 0) {
		if (ns)
			fprintf(stderr, "No resources found in %s namespace.\n", ns);
		else
			fprintf(stderr, "No resources found\n");
		ret = EXIT_OK;
		goto out;
	}
	rows = calloc(n, sizeof(*rows));
	if (!rows) {
		fprintf(stderr, "error: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		kcp_row_from_pcp(json_object_array_get_idx(items, i), now, &rows[i]);
	kcp_print_table(stdout, rows, n, a->all_ns);
	ret = EXIT_OK;
out:
	free(rows);
	json_object_put(list);
	kc_client_free(c);
	kc_config_free(cfg);
	return ret;
}

static int cmd_wait(const struct kcp_args *a)
{
	struct kc_config *cfg = NULL;
	struct kc_client *c = NULL;
	int ret = EXIT_FAIL;

	if (connect_api(a, &cfg, &c))
		goto out;
	ret = wait_done(c, a->ns ? a->ns : kc_config_namespace(cfg), a->target, a->wait_seconds);
out:
	kc_client_free(c);
	kc_config_free(cfg);
	return ret;
}

static int cmd_decrypt(const struct kcp_args *a)
{
	char msg[1024] = "";
	int rc;

	rc = art_decrypt(a->target, a->key, a->cert, a->out, msg, sizeof(msg));
	if (rc) {
		fprintf(stderr, "error: decrypt %s: %s\n", a->target, msg[0] ? msg : strerror(-rc));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct kcp_args a;
	char err[512];

	if (kcp_parse_args(argc, argv, &a, err, sizeof(err))) {
		fprintf(stderr, "error: %s\nSee 'kubectl checkpoint %s--help'.\n", err,
			a.cmd == KCP_CMD_CREATE	  ? "create "
			: a.cmd == KCP_CMD_LIST	  ? "list "
			: a.cmd == KCP_CMD_WAIT	  ? "wait "
			: a.cmd == KCP_CMD_DECRYPT ? "decrypt "
						   : "");
		return EXIT_USAGE;
	}
	if (a.help) {
		kcp_usage(stdout, a.cmd);
		return EXIT_OK;
	}
	switch (a.cmd) {
	case KCP_CMD_CREATE: return cmd_create(&a);
	case KCP_CMD_LIST: return cmd_list(&a);
	case KCP_CMD_WAIT: return cmd_wait(&a);
	case KCP_CMD_DECRYPT: return cmd_decrypt(&a);
	case KCP_CMD_NONE: break;
	}
	kcp_usage(stderr, KCP_CMD_NONE);
	return EXIT_USAGE;
}
