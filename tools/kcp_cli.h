/*
 * kcp_cli.h - the pure parts of the kubectl plugin `kubectl-checkpoint`:
 * argument parsing, durations, ages, the PodCheckpoint built from the
 * options, the `list` table and the summary of a finished PodCheckpoint.
 * Nothing here talks to the network, so the unit tests call all of it.
 *
 * Errors: 0 or a negative errno-style code; where a human needs to know what
 * is wrong, one line is written into the caller's err buffer.
 * Ownership: strings in struct kcp_args are borrowed from argv; json_object
 * **out parameters hand the caller one reference; json_object * inputs are
 * borrowed.
 */
#ifndef PCP_KCP_CLI_H
#define PCP_KCP_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#define KCP_MAX_CONTAINERS 32
#define KCP_DEFAULT_WAIT_SECONDS 300L
/* Longest duration we accept anywhere (one week). */
#define KCP_MAX_DURATION_SECONDS (7L * 24 * 3600)

enum kcp_cmd { KCP_CMD_NONE = 0, KCP_CMD_CREATE, KCP_CMD_LIST, KCP_CMD_WAIT, KCP_CMD_DECRYPT };

/* What `create` puts into spec. NULL / 0 / false: the field is left out. */
struct kcp_create_opts {
	const char *pod;
	const char *containers[KCP_MAX_CONTAINERS];
	size_t n_containers;
	const char *encrypt_to;      /* encrypt: true + encryptionSecret */
	bool delete_pod;             /* leaveRunning: false */
	long timeout_seconds;        /* timeoutSeconds (1..3600), 0: unset */
	const char *deletion_policy; /* "Retain" | "Delete" or NULL */
};

struct kcp_args {
	enum kcp_cmd cmd;
	bool help;              /* -h/--help seen: print usage of cmd, exit 0 */
	const char *kubeconfig; /* --kubeconfig, or NULL */
	const char *ns;         /* -n/--namespace, or NULL (kubeconfig context's) */
	bool all_ns;            /* list -A */
	const char *target;     /* create: POD, wait: NAME, decrypt: ARTIFACT */
	const char *name;       /* create --name, or NULL (POD-yyyymmdd-hhmmss) */
	struct kcp_create_opts create;
	bool wait;              /* create --wait; always true for `wait` */
	long wait_seconds;      /* deadline of the wait */
	const char *key, *cert, *out; /* decrypt */
};

/*
 * Parses argv[1..argc-1] (argv[0] is the program). Flags may come before or
 * after the subcommand, as `--flag value`, `--flag=value`, `-n value` or
 * `-nvalue`; `--` ends the flags. Returns 0, or -EINVAL with a one-line
 * message in err (unknown flag, flag not valid for the subcommand, missing
 * or bad value, missing or extra argument).
 */
int kcp_parse_args(int argc, char **argv, struct kcp_args *a, char *err, size_t errlen);

/* The subcommand's usage text (the overall one for KCP_CMD_NONE). */
void kcp_usage(FILE *f, enum kcp_cmd cmd);

/*
 * "90s", "5m", "1h", "2d" or plain seconds "120" into seconds (0 allowed).
 * -EINVAL for anything else, a negative value or more than
 * KCP_MAX_DURATION_SECONDS.
 */
int kcp_parse_duration(const char *s, long *seconds);

/* kubectl-style short age: "5s", "3m", "2h", "4d" (buf >= 16 bytes). Negative
 * ages (clock skew) print as "0s". */
void kcp_format_age(int64_t seconds, char *buf, size_t cap);

/* POD-yyyymmdd-hhmmss (UTC) into buf. -ENAMETOOLONG if it does not fit or is
 * longer than a Kubernetes object name (253). */
int kcp_default_name(const char *pod, int64_t epoch_s, char *buf, size_t cap);

/* The spec object for the options. 0, -EINVAL (no pod), -ENOMEM. */
int kcp_build_spec(const struct kcp_create_opts *o, json_object **out);
/* The whole PodCheckpoint (apiVersion, kind, metadata.name/namespace, spec). */
int kcp_build_pcp(const struct kcp_create_opts *o, const char *ns, const char *name,
		  json_object **out);

/* One row of `kubectl checkpoint list` (fields truncated to fit). */
struct kcp_row {
	char ns[64];
	char name[254];
	char pod[254];
	char node[254];
	char phase[16];
	char encrypted[8];
	char age[16];
	char reason[64];
};

/* Fills row from a PodCheckpoint; now_ms is the current time (epoch ms). */
void kcp_row_from_pcp(json_object *obj, int64_t now_ms, struct kcp_row *row);
/* The table with a header, columns aligned; the NAMESPACE column when show_ns. */
void kcp_print_table(FILE *f, const struct kcp_row *rows, size_t n, bool show_ns);

/* 1 Succeeded, -1 Failed, 0 anything else (not finished yet). */
int kcp_phase_done(json_object *obj);
/*
 * The failure reason: Stalled condition's reason (Ready's if there is no
 * Stalled condition); message: the Stalled condition's message or
 * status.message. Borrowed strings, "" when absent.
 */
void kcp_failure(json_object *obj, const char **reason, const char **message);
/* The human summary of a finished PodCheckpoint (node, artifact, size,
 * sha256, encryption), for `create --wait` and `wait`. */
void kcp_print_succeeded(FILE *f, json_object *obj);

#endif
