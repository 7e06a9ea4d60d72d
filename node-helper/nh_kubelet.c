/*
 * nh_kubelet.c - POST /checkpoint/<ns>/<pod>/<container> to the kubelet and
 * map every possible answer to a status reason and message (kubelet.md).
 */
#include "nh_kubelet.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "dbuf.h"
#include "fsutil.h"
#include "log.h"
#include "nh_util.h"

#define NH_KUBELET_MAX_CA (1024u * 1024u)
#define NH_TOKEN_MAX 16384

struct nh_kubelet {
	CURL *curl;
	char url[512];
	struct curl_slist *resolve; /* "<node>:<port>:<address>", or NULL */
	char *ca;         /* PEM bundle in memory, or NULL */
	size_t ca_len;
	bool insecure;
	long margin;
	char host_root[1024];
	char kubelet_root[1024];
	nh_token_fn token;
	void *token_arg;
	atomic_int *stop;
};

struct nh_xfer {
	struct dbuf body;
	bool too_big;
	atomic_int *stop;
};

static size_t nh_write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct nh_xfer *x = arg;
	size_t n = size * nmemb;

	if (dbuf_add(&x->body, p, n) != 0) {
		x->too_big = true;
		return 0;
	}
	return n;
}

static int nh_progress_cb(void *arg, curl_off_t dlt, curl_off_t dln, curl_off_t ult,
			  curl_off_t uln)
{
	struct nh_xfer *x = arg;
	(void)dlt;
	(void)dln;
	(void)ult;
	(void)uln;
	return x->stop && *x->stop ? 1 : 0;
}

/*
 * With the URL's host equal to the node name, pins that name to the node's
 * address: libcurl then connects to the address, sends the name as SNI and
 * verifies the certificate against the name. That is how kubelet serving
 * certificates are made (kubeadm/kind self-signed: the hostname only;
 * serverTLSBootstrap: the name plus addresses the kubelet knows).
 */
static int nh_kubelet_pin(struct nh_kubelet *k, const struct nh_kubelet_opts *opts, char *err,
			  size_t errlen)
{
	CURLU *u = NULL;
	char *host = NULL, *port = NULL, entry[600];
	bool v6;
	int rc = 0, n;

	if (!opts->node_name || !opts->node_name[0] || !opts->address || !opts->address[0])
		goto out;
	u = curl_url();
	if (!u) {
		rc = -ENOMEM;
		goto out;
	}
	if (curl_url_set(u, CURLUPART_URL, opts->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		snprintf(err, errlen, "--kubelet-url \"%.200s\" is not a URL with a host", opts->url);
		rc = -EINVAL;
		goto out;
	}
	if (strcasecmp(host, opts->node_name) != 0)
		goto out; /* another host name or an IP: verified as given */
	v6 = strchr(opts->address, ':') != NULL;
	n = snprintf(entry, sizeof(entry), "%s:%s:%s%s%s", host, port, v6 ? "[" : "",
		     opts->address, v6 ? "]" : "");
	if (n < 0 || (size_t)n >= sizeof(entry)) {
		snprintf(err, errlen, "kubelet host name or address too long");
		rc = -ENAMETOOLONG;
		goto out;
	}
	k->resolve = curl_slist_append(NULL, entry);
	if (!k->resolve)
		rc = -ENOMEM;
out:
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

int nh_kubelet_new(const struct nh_kubelet_opts *opts, struct nh_kubelet **out, char *err,
		   size_t errlen)
{
	struct nh_kubelet *k = NULL;
	int rc = 0;

	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (!k) {
		rc = -ENOMEM;
		goto out;
	}
	if (nh_strlcpy(k->url, opts->url, sizeof(k->url)) != 0 ||
	    nh_strlcpy(k->host_root, opts->host_root ? opts->host_root : "",
		       sizeof(k->host_root)) != 0) {
		snprintf(err, errlen, "kubelet URL or host root too long");
		rc = -ENAMETOOLONG;
		goto out;
	}
	if (nh_strlcpy(k->kubelet_root,
		       opts->kubelet_root && *opts->kubelet_root ? opts->kubelet_root : "/var/lib/kubelet",
		       sizeof(k->kubelet_root)) != 0) {
		snprintf(err, errlen, "kubelet root dir too long");
		rc = -ENAMETOOLONG;
		goto out;
	}
	k->insecure = opts->insecure_skip_verify;
	k->margin = opts->margin_seconds;
	k->token = opts->token;
	k->token_arg = opts->token_arg;
	k->stop = opts->stop;
	if (opts->ca_file && opts->ca_file[0]) {
		rc = fsu_read_file(opts->ca_file, NH_KUBELET_MAX_CA, &k->ca, &k->ca_len);
		if (rc) {
			snprintf(err, errlen, "cannot read --kubelet-ca %s: %s", opts->ca_file,
				 strerror(-rc));
			goto out;
		}
		if (!strstr(k->ca, "-----BEGIN CERTIFICATE-----")) {
			snprintf(err, errlen, "--kubelet-ca %s holds no PEM certificate", opts->ca_file);
			rc = -EINVAL;
			goto out;
		}
	}
	k->curl = curl_easy_init();
	if (!k->curl) {
		rc = -ENOMEM;
		goto out;
	}
	rc = nh_kubelet_pin(k, opts, err, errlen);
	if (rc)
		goto out;
	*out = k;
	k = NULL;
out:
	nh_kubelet_free(k);
	return rc;
}

void nh_kubelet_free(struct nh_kubelet *k)
{
	if (!k)
		return;
	if (k->curl)
		curl_easy_cleanup(k->curl);
	curl_slist_free_all(k->resolve);
	free(k->ca);
	free(k);
}

/* Closes the handle's connection (a call given up on, or broken) and starts
 * afresh; k->curl NULL when that fails (the next call re-creates it). */
static void nh_kubelet_drop(struct nh_kubelet *k)
{
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(k->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_cleanup(k->curl);
	k->curl = curl_easy_init();
}

static void nh_set(struct nh_kubelet_result *res, const char *reason)
{
	res->ok = false;
	nh_strlcpy(res->reason, reason, sizeof(res->reason));
}

/* Validates the 200 body {"items":["<path>"]}; fills res->node_path/local_path. */
static int nh_parse_items(const char *body, size_t len, const char *host_root,
			  struct nh_kubelet_result *res, const char **why)
{
	struct json_tokener *tok = NULL;
	json_object *obj = NULL, *items = NULL, *item;
	const char *path;
	int rc = -EBADMSG, n;

	*why = "the body is not JSON";
	tok = json_tokener_new();
	if (!tok || len > INT32_MAX) {
		rc = -ENOMEM;
		goto out;
	}
	obj = json_tokener_parse_ex(tok, body, (int)len);
	if (!obj || json_tokener_get_error(tok) != json_tokener_success)
		goto out;
	*why = "no \"items\" list";
	if (!json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, "items", &items) ||
	    !json_object_is_type(items, json_type_array))
		goto out;
	*why = "expected exactly one archive path in \"items\"";
	if (json_object_array_length(items) != 1)
		goto out;
	item = json_object_array_get_idx(items, 0);
	*why = "the archive path is not a string";
	if (!json_object_is_type(item, json_type_string))
		goto out;
	path = json_object_get_string(item);
	*why = "the archive path is not an absolute path without \"..\"";
	if (!nh_path_under("/", path) || strlen(path) >= sizeof(res->node_path))
		goto out;
	*why = "the archive path is too long";
	memcpy(res->node_path, path, strlen(path) + 1);
	n = snprintf(res->local_path, sizeof(res->local_path), "%s%s", host_root, path);
	if (n < 0 || (size_t)n >= sizeof(res->local_path))
		goto out;
	*why = NULL;
	rc = 0;
out:
	json_object_put(obj);
	if (tok)
		json_tokener_free(tok);
	return rc;
}

static bool nh_starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool nh_ends(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

void nh_kubelet_map(enum nh_kubelet_transport t, long http, const char *body, size_t len,
		    const char *curl_msg, const char *url, const char *ns, const char *pod,
		    const char *container, long deadline_s, const char *host_root,
		    struct nh_kubelet_result *res)
{
	char text[460]; /* room for CRIU's dump log path, which names the cause */
	const char *why = NULL;

	memset(res, 0, sizeof(*res));
	res->http = http;
	nh_one_line(body, body ? len : 0, text, sizeof(text));
	switch (t) {
	case NH_KT_ABORTED:
		nh_set(res, "Interrupted");
		snprintf(res->message, sizeof(res->message),
			 "the node helper stopped while the kubelet was checkpointing container %s",
			 container);
		return;
	case NH_KT_TIMEOUT:
		nh_set(res, "Timeout");
		snprintf(res->message, sizeof(res->message),
			 "the kubelet did not answer within %ld s for container %s", deadline_s,
			 container);
		return;
	case NH_KT_TOO_BIG:
		nh_set(res, "KubeletError");
		snprintf(res->message, sizeof(res->message),
			 "unexpected answer from the kubelet for container %s: more than %u KiB",
			 container, NH_KUBELET_MAX_RESPONSE / 1024);
		return;
	case NH_KT_ERROR:
		nh_set(res, "KubeletError");
		snprintf(res->message, sizeof(res->message), "cannot reach the kubelet at %s: %s",
			 url, curl_msg && *curl_msg ? curl_msg : "transfer failed");
		return;
	case NH_KT_OK:
		break;
	}
	if (http == 200) {
		if (nh_parse_items(body ? body : "", body ? len : 0, host_root ? host_root : "", res,
				   &why) == 0) {
			res->ok = true;
			snprintf(res->message, sizeof(res->message), "container %s checkpointed to %.400s",
				 container, res->node_path);
			return;
		}
		res->node_path[0] = res->local_path[0] = '\0';
		nh_set(res, "KubeletError");
		snprintf(res->message, sizeof(res->message),
			 "unexpected answer from the kubelet for container %s: %s", container,
			 why ? why : "malformed");
		return;
	}
	nh_set(res, "KubeletError");
	if (http == 404) {
		if (strcmp(text, "pod does not exist") == 0)
			snprintf(res->message, sizeof(res->message),
				 "the kubelet says: pod %s/%s does not exist", ns, pod);
		else if (strcmp(text, "cannot parse value of timeout parameter") == 0 ||
			 (nh_starts(text, "container ") && nh_ends(text, " does not exist")))
			snprintf(res->message, sizeof(res->message), "the kubelet says: %s", text);
		else
			snprintf(res->message, sizeof(res->message),
				 "the kubelet has no checkpoint API (ContainerCheckpoint feature gate off?)");
		return;
	}
	if (http == 401 || http == 403) {
		snprintf(res->message, sizeof(res->message),
			 "the kubelet refused the node helper's credentials (%ld): grant nodes/checkpoint",
			 http);
		return;
	}
	if (http == 500) {
		bool unimpl = strstr(text, "Unimplemented") || strstr(text, "not implemented");
		snprintf(res->message, sizeof(res->message), "the kubelet could not checkpoint container %s: %s%s",
			 container, text[0] ? text : "(no details)",
			 unimpl ? " (the container runtime cannot checkpoint: containerd >= 2.0 or CRI-O with CRIU is needed)"
				: "");
		return;
	}
	snprintf(res->message, sizeof(res->message),
		 "unexpected answer from the kubelet for container %s: HTTP %ld %s", container, http,
		 text);
}

bool nh_kubelet_path_ok(const char *kubelet_root, const char *ns, const char *pod,
			const char *container, const char *node_path)
{
	char prefix[2048];
	size_t pl, nl;
	int n;

	n = snprintf(prefix, sizeof(prefix), "%s/checkpoints/checkpoint-%s_%s-%s-",
		     kubelet_root && *kubelet_root ? kubelet_root : "/var/lib/kubelet", pod, ns,
		     container);
	if (n < 0 || (size_t)n >= sizeof(prefix))
		return false;
	pl = (size_t)n;
	nl = strlen(node_path);
	if (nl <= pl + 4 || strncmp(node_path, prefix, pl) != 0 ||
	    strcmp(node_path + nl - 4, ".tar") != 0)
		return false;
	return strchr(node_path + pl, '/') == NULL && strstr(node_path + pl, "..") == NULL;
}

int nh_kubelet_checkpoint(struct nh_kubelet *k, const char *ns, const char *pod,
			  const char *container, int timeout_s, struct nh_kubelet_result *res)
{
	char url[2048], errbuf[CURL_ERROR_SIZE], *tok = NULL, *hdr = NULL;
	char *ens = NULL, *epod = NULL, *ectr = NULL;
	struct curl_slist *headers = NULL;
	struct curl_blob blob;
	struct nh_xfer x;
	enum nh_kubelet_transport t = NH_KT_OK;
	long http = 0, deadline;
	CURLcode cc;
	int rc = 0, n;

	memset(res, 0, sizeof(*res));
	dbuf_init(&x.body, NH_KUBELET_MAX_RESPONSE);
	x.too_big = false;
	x.stop = k->stop;
	errbuf[0] = '\0';
	deadline = (timeout_s > 0 ? timeout_s : 300) + k->margin;

	if (!k->curl && !(k->curl = curl_easy_init())) {
		rc = -ENOMEM;
		goto map;
	}
	curl_easy_reset(k->curl);
	ens = curl_easy_escape(k->curl, ns, 0);
	epod = curl_easy_escape(k->curl, pod, 0);
	ectr = curl_easy_escape(k->curl, container, 0);
	if (!ens || !epod || !ectr) {
		rc = -ENOMEM;
		goto map;
	}
	if (timeout_s > 0)
		n = snprintf(url, sizeof(url), "%s/checkpoint/%s/%s/%s?timeout=%d", k->url, ens, epod,
			     ectr, timeout_s);
	else
		n = snprintf(url, sizeof(url), "%s/checkpoint/%s/%s/%s", k->url, ens, epod, ectr);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		rc = -ENAMETOOLONG;
		goto map;
	}
	if (k->token) {
		tok = calloc(1, NH_TOKEN_MAX);
		hdr = calloc(1, NH_TOKEN_MAX + 32);
		if (!tok || !hdr) {
			rc = -ENOMEM;
			goto map;
		}
		if (k->token(k->token_arg, tok, NH_TOKEN_MAX) == 0 && tok[0]) {
			snprintf(hdr, NH_TOKEN_MAX + 32, "Authorization: Bearer %s", tok);
			headers = curl_slist_append(headers, hdr);
			if (!headers) {
				rc = -ENOMEM;
				goto map;
			}
		}
	}
	{
		struct curl_slist *h2 = curl_slist_append(headers, "Accept: application/json");
		if (!h2) {
			rc = -ENOMEM;
			goto map;
		}
		headers = h2;
	}
	curl_easy_setopt(k->curl, CURLOPT_URL, url);
	if (k->resolve)
		curl_easy_setopt(k->curl, CURLOPT_RESOLVE, k->resolve);
	curl_easy_setopt(k->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(k->curl, CURLOPT_NOSIGNAL, 1L);
	/* The connection of a completed call is kept for the next one (no new
	 * TCP + TLS handshake per job: curl_easy_reset keeps it, and libcurl
	 * reuses it only with the same TLS settings). Reused at most 60 s idle
	 * (a server that closes idle connections after a minute or more does not
	 * close it under a request; one found closed is not reused, libcurl
	 * checks before sending). A call given up on (deadline, cancel,
	 * shutdown, any transport error) closes its connection: nh_kubelet_drop
	 * below, so the kubelet sees the client go away and is never left
	 * working on a call nobody waits for. */
	curl_easy_setopt(k->curl, CURLOPT_MAXAGE_CONN, 60L);
	curl_easy_setopt(k->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(k->curl, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(k->curl, CURLOPT_POSTFIELDSIZE, 0L);
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(k->curl, CURLOPT_TIMEOUT_MS, deadline * 1000L);
	curl_easy_setopt(k->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 deadline * 1000L < 10000L ? deadline * 1000L : 10000L);
	curl_easy_setopt(k->curl, CURLOPT_WRITEFUNCTION, nh_write_cb);
	curl_easy_setopt(k->curl, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(k->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(k->curl, CURLOPT_XFERINFOFUNCTION, nh_progress_cb);
	curl_easy_setopt(k->curl, CURLOPT_XFERINFODATA, &x);
	curl_easy_setopt(k->curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(k->curl, CURLOPT_USERAGENT, "podcheckpoint-node-helper");
	if (k->ca) {
		blob.data = k->ca;
		blob.len = k->ca_len;
		blob.flags = CURL_BLOB_COPY;
		curl_easy_setopt(k->curl, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (k->insecure) {
		curl_easy_setopt(k->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(k->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	cc = curl_easy_perform(k->curl);
	if (cc != CURLE_OK)
		nh_kubelet_drop(k);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &http);
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		t = NH_KT_TIMEOUT;
	} else if (cc == CURLE_WRITE_ERROR && x.too_big) {
		t = NH_KT_TOO_BIG;
	} else if (cc == CURLE_ABORTED_BY_CALLBACK) {
		t = NH_KT_ABORTED;
	} else {
		t = NH_KT_ERROR;
		if (!errbuf[0])
			snprintf(errbuf, sizeof(errbuf), "%s", curl_easy_strerror(cc));
	}
	nh_kubelet_map(t, http, x.body.data, x.body.len, errbuf, k->url, ns, pod, container,
		       deadline, k->host_root, res);
	if (res->ok && !nh_kubelet_path_ok(k->kubelet_root, ns, pod, container, res->node_path)) {
		nh_set(res, "KubeletError");
		snprintf(res->message, sizeof(res->message),
			 "the kubelet returned %.300s for container %s, not an archive of that container under %.100s/checkpoints",
			 res->node_path, container, k->kubelet_root);
		res->node_path[0] = res->local_path[0] = '\0';
	}
	rc = res->ok ? 0 : (t == NH_KT_TIMEOUT ? -ETIMEDOUT : t == NH_KT_ABORTED ? -EINTR : -EIO);
	goto out;
map:
	nh_set(res, "KubeletError");
	snprintf(res->message, sizeof(res->message),
		 "cannot build the kubelet request for container %s: %s", container, strerror(-rc));
out:
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(k->curl, CURLOPT_ERRORBUFFER, NULL);
	for (struct curl_slist *h = headers; h; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(headers);
	if (tok) {
		explicit_bzero(tok, NH_TOKEN_MAX);
		free(tok);
	}
	if (hdr) {
		explicit_bzero(hdr, NH_TOKEN_MAX + 32);
		free(hdr);
	}
	curl_free(ens);
	curl_free(epod);
	curl_free(ectr);
	dbuf_cleanup(&x.body);
	return rc;
}
