/*
 * nh_kubelet.h - the kubelet checkpoint API client (libcurl, direct: the
 * kubelet is a different server with a different CA than the API server).
 *
 * POST <url>/checkpoint/<ns>/<pod>/<container>?timeout=<s>, bearer token =
 * the helper's own ServiceAccount token (asked for on every call: it
 * rotates), CA from --kubelet-ca as an in-memory blob, deadline timeout +
 * margin, response capped at 64 KiB. Every answer maps to a status reason
 * and a one-sentence message (nh_kubelet_map, a pure function).
 *
 * Threads: one nh_kubelet per worker thread (it owns one curl handle).
 */
#ifndef PCP_NH_KUBELET_H
#define PCP_NH_KUBELET_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define NH_KUBELET_MAX_RESPONSE (64u * 1024u)

/* Writes the current bearer token into buf; 0, or negative (no token: the
 * request is sent without Authorization). Never logged. */
typedef int (*nh_token_fn)(void *arg, char *buf, size_t cap);

struct nh_kubelet_opts {
	const char *url;         /* "https://node-1:10250", "https://10.0.0.5:10250" or "http://127.0.0.1:x" (tests) */
	/*
	 * When the URL's host is node_name, connect to address instead of asking
	 * DNS (CURLOPT_RESOLVE): the certificate is verified for the node name,
	 * the connection goes to the node IP. NULL/"" for either: plain URL.
	 */
	const char *node_name;
	const char *address;
	const char *ca_file;     /* PEM bundle, or NULL/"" for the system store */
	bool insecure_skip_verify;
	long margin_seconds;     /* added to the per-container timeout */
	const char *host_root;   /* prefix for returned paths, "" for none */
	const char *kubelet_root; /* the kubelet's root dir on the node ("/var/lib/kubelet") */
	nh_token_fn token;       /* may be NULL */
	void *token_arg;
	atomic_int *stop; /* abort the transfer when non-zero; may be NULL */
};

/* Outcome of one kubelet call. */
struct nh_kubelet_result {
	bool ok;
	long http;                /* 0 when no answer */
	char reason[64];          /* "" when ok; else KubeletError, Timeout, Interrupted */
	char message[512];
	char node_path[1024];     /* the path the kubelet returned */
	char local_path[1024];    /* host_root + node_path */
};

struct nh_kubelet;

/* Reads the CA file into memory, parses the URL. -errno with a sentence in err. */
int nh_kubelet_new(const struct nh_kubelet_opts *opts, struct nh_kubelet **out, char *err,
		   size_t errlen);
void nh_kubelet_free(struct nh_kubelet *k);

/*
 * Asks the kubelet to checkpoint one container. Returns 0 when the kubelet
 * gave a valid archive path (res->ok), else a negative code with res->reason
 * and res->message filled. Never blocks past timeout_s + margin (plus the
 * connect phase, capped at 10 s inside that deadline).
 */
int nh_kubelet_checkpoint(struct nh_kubelet *k, const char *ns, const char *pod,
			  const char *container, int timeout_s, struct nh_kubelet_result *res);

/*
 * Whether the kubelet's returned path is exactly
 * <kubelet_root>/checkpoints/checkpoint-<pod>_<ns>-<container>-<time>.tar
 * (one component after the prefix, no "/" in the time part).
 */
bool nh_kubelet_path_ok(const char *kubelet_root, const char *ns, const char *pod,
			const char *container, const char *node_path);

/* Transport outcome, for the pure mapping. */
enum nh_kubelet_transport {
	NH_KT_OK,        /* an HTTP answer arrived (see http) */
	NH_KT_TIMEOUT,   /* deadline passed */
	NH_KT_TOO_BIG,   /* answer larger than NH_KUBELET_MAX_RESPONSE */
	NH_KT_ABORTED,   /* the daemon is stopping */
	NH_KT_ERROR,     /* connection refused, TLS failure, ...: curl_msg says */
};

/*
 * Maps one answer to (ok, reason, message). body need not be
 * NUL-terminated. Validates a 200 answer: exactly one item, an absolute
 * path without "..", that fits with host_root prepended.
 */
void nh_kubelet_map(enum nh_kubelet_transport t, long http, const char *body, size_t len,
		    const char *curl_msg, const char *url, const char *ns, const char *pod,
		    const char *container, long deadline_s, const char *host_root,
		    struct nh_kubelet_result *res);

#endif
