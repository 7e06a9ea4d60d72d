/*
 * kc_config.c - connection settings (struct in kc_config_int.h): the object
 * and its accessors, bearer tokens re-read from disk when they rotate, TLS
 * material kept in memory and handed to libcurl as blobs, the in-cluster
 * ServiceAccount config, and the file helpers the kubeconfig parser
 * (kc_kubeconfig.c) shares.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "fsutil.h"
#include "kc_config_int.h"
#include "kc_internal.h"
#include "log.h"

#define KC_SA_DEFAULT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
/* Re-read a token file at least this often even if its mtime did not move. */
#define KC_TOKEN_RECHECK_MS 60000


void kc_config_blob_free(struct kc_blob *b)
{
	if (b->data) {
		OPENSSL_cleanse(b->data, b->len);
		free(b->data);
	}
	b->data = NULL;
	b->len = 0;
}

static void str_wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

int kc_config_new_empty(struct kc_config **out)
{
	struct kc_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return -ENOMEM;
	if (pthread_mutex_init(&cfg->lock, NULL)) {
		free(cfg);
		return -ENOMEM;
	}
	*out = cfg;
	return 0;
}

void kc_config_free(struct kc_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->server);
	free(cfg->ns);
	kc_config_blob_free(&cfg->ca);
	kc_config_blob_free(&cfg->cert);
	kc_config_blob_free(&cfg->key);
	str_wipe_free(cfg->token);
	free(cfg->token_file);
	pthread_mutex_destroy(&cfg->lock);
	kc_ratelimit_free(cfg->rl);
	free(cfg);
}

int kc_config_set_rate_limit(struct kc_config *cfg, double qps, int burst)
{
	struct kc_ratelimit *rl = NULL;
	bool busy;
	int rc;

	if (!cfg)
		return -EINVAL;
	if (qps > 0) {
		rc = kc_ratelimit_new(qps, burst, &rl);
		if (rc)
			return rc;
	}
	/* set once at start-up, before any client exists (kc.h): a client's
	 * request reads cfg->rl without a lock */
	pthread_mutex_lock(&cfg->lock);
	busy = cfg->clients > 0;
	if (!busy) {
		kc_ratelimit_free(cfg->rl);
		cfg->rl = rl;
		rl = NULL;
	}
	pthread_mutex_unlock(&cfg->lock);
	kc_ratelimit_free(rl);
	return busy ? -EBUSY : 0;
}

void kc_config_client_count(struct kc_config *cfg, int delta)
{
	pthread_mutex_lock(&cfg->lock);
	if (delta > 0)
		cfg->clients++;
	else if (cfg->clients > 0)
		cfg->clients--;
	pthread_mutex_unlock(&cfg->lock);
}

struct kc_ratelimit *kc_config_rate_limit(const struct kc_config *cfg)
{
	return cfg ? cfg->rl : NULL;
}

const char *kc_config_server(const struct kc_config *cfg)
{
	return cfg ? cfg->server : NULL;
}

const char *kc_config_namespace(const struct kc_config *cfg)
{
	return cfg && cfg->ns ? cfg->ns : "default";
}

bool kc_config_has_token(const struct kc_config *cfg)
{
	return cfg && (cfg->token || cfg->token_file);
}


/* fsu_read_file for regular files only: a FIFO or a device named as a
 * credential file would block (or never end) instead of failing. */
int kc_config_read_regular(const char *path, size_t max, char **out, size_t *len)
{
	struct stat sb;

	*out = NULL;
	if (stat(path, &sb))
		return -errno;
	if (!S_ISREG(sb.st_mode))
		return -EINVAL;
	return fsu_read_file(path, max, out, len);
}

/* ------------------------------------------------------------ tokens */

/* Reads a token file, trimming trailing whitespace; -ENODATA when empty. */
static int read_token_file(const char *path, char **out, struct stat *sb)
{
	char *data = NULL;
	size_t len = 0;
	int rc;

	if (stat(path, sb))
		return -errno;
	rc = kc_config_read_regular(path, KC_MAX_TOKEN, &data, &len);
	if (rc)
		return rc;
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' ||
			   data[len - 1] == ' ' || data[len - 1] == '\t'))
		data[--len] = '\0';
	if (len == 0 || memchr(data, '\0', len) || strpbrk(data, "\r\n")) {
		str_wipe_free(data);
		return -ENODATA;
	}
	*out = data;
	return 0;
}

/* With cfg->lock held: re-reads the token file if it changed. */
int kc_config_token_refresh_locked(struct kc_config *cfg)
{
	struct stat sb;
	char *tok = NULL;
	int64_t now = kc_now_ms();
	int rc;

	if (!cfg->token_file)
		return 0;
	if (cfg->token && stat(cfg->token_file, &sb) == 0 &&
	    sb.st_mtim.tv_sec == cfg->token_mtime.tv_sec &&
	    sb.st_mtim.tv_nsec == cfg->token_mtime.tv_nsec && sb.st_size == cfg->token_size &&
	    sb.st_ino == cfg->token_ino && now - cfg->token_read_ms < KC_TOKEN_RECHECK_MS)
		return 0;
	rc = read_token_file(cfg->token_file, &tok, &sb);
	if (rc) {
		if (cfg->token) {
			LOG_WARN("msg=\"token file unreadable, keeping the previous token\" path=%s err=%d",
				 cfg->token_file, rc);
			return 0;
		}
		return rc;
	}
	str_wipe_free(cfg->token);
	cfg->token = tok;
	cfg->token_mtime = sb.st_mtim;
	cfg->token_size = sb.st_size;
	cfg->token_ino = sb.st_ino;
	cfg->token_read_ms = now;
	return 0;
}

int kc_config_token(struct kc_config *cfg, char *buf, size_t cap)
{
	int rc;
	size_t n;

	if (!cfg || !buf || cap == 0)
		return -EINVAL;
	buf[0] = '\0';
	pthread_mutex_lock(&cfg->lock);
	rc = kc_config_token_refresh_locked(cfg);
	if (rc)
		goto out;
	if (!cfg->token) {
		rc = -ENOENT;
		goto out;
	}
	n = strlen(cfg->token);
	if (n >= cap) {
		rc = -ENOSPC;
		goto out;
	}
	memcpy(buf, cfg->token, n + 1);
out:
	pthread_mutex_unlock(&cfg->lock);
	return rc;
}

int kc_config_set_token_file(struct kc_config *cfg, const char *path)
{
	char *p;
	int rc;

	if (!cfg || !path || !path[0])
		return -EINVAL;
	p = strdup(path);
	if (!p)
		return -ENOMEM;
	pthread_mutex_lock(&cfg->lock);
	kc_config_blob_free(&cfg->cert);
	kc_config_blob_free(&cfg->key);
	str_wipe_free(cfg->token);
	cfg->token = NULL;
	free(cfg->token_file);
	cfg->token_file = p;
	rc = kc_config_token_refresh_locked(cfg);
	pthread_mutex_unlock(&cfg->lock);
	return rc;
}

/* ------------------------------------------------------------ TLS */

/* An idle connection (a watch between events, a client between requests)
 * gives its ~34 KiB of TLS record buffers back; OpenSSL takes them again for
 * the next record. */
static CURLcode ssl_ctx_release_buffers(CURL *h, void *ssl_ctx, void *arg)
{
	(void)h;
	(void)arg;
	SSL_CTX_set_mode((SSL_CTX *)ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
	return CURLE_OK;
}

int kc_config_apply_tls(const struct kc_config *cfg, CURL *h)
{
	struct curl_blob b;
	CURLcode cc = CURLE_OK;

	/* best effort: a libcurl without OpenSSL refuses the option, nothing more */
	(void)curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_release_buffers);

	if (cfg->ca.data) {
		b.data = cfg->ca.data;
		b.len = cfg->ca.len;
		b.flags = CURL_BLOB_NOCOPY;
		cc = curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
		/* Trust the cluster CA only, not the system store as well. */
		if (!cc)
			cc = curl_easy_setopt(h, CURLOPT_CAINFO, NULL);
		if (!cc)
			cc = curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	}
	if (!cc && cfg->cert.data && cfg->key.data) {
		b.data = cfg->cert.data;
		b.len = cfg->cert.len;
		b.flags = CURL_BLOB_NOCOPY;
		cc = curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &b);
		if (!cc)
			cc = curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
		b.data = cfg->key.data;
		b.len = cfg->key.len;
		if (!cc)
			cc = curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &b);
		if (!cc)
			cc = curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (!cc && cfg->insecure) {
		cc = curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		if (!cc)
			cc = curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return cc ? -EINVAL : 0;
}

/* ------------------------------------------------------------ helpers */

void kc_config_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void kc_config_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Joins dir and a (relative) path. */
int kc_config_join_path(const char *dir, const char *p, char *buf, size_t cap)
{
	int n;

	if (p[0] == '/' || !dir || !dir[0])
		n = snprintf(buf, cap, "%s", p);
	else
		n = snprintf(buf, cap, "%s/%s", dir, p);
	return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

int kc_config_read_blob(const char *path, struct kc_blob *out)
{
	char *data = NULL;
	size_t len = 0;
	int rc = kc_config_read_regular(path, KC_MAX_CONFIG_FILE, &data, &len);

	if (rc)
		return rc;
	out->data = (unsigned char *)data;
	out->len = len;
	return 0;
}

int kc_config_load_incluster(struct kc_config **out, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *dir = getenv("KC_SA_DIR");
	struct kc_config *cfg = NULL;
	char path[PATH_MAX], *ns = NULL, url[512];
	size_t nslen = 0;
	long portnum;
	char *end;
	int rc, n;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!dir || !dir[0])
		dir = KC_SA_DEFAULT_DIR;
	if (!host || !host[0] || !port || !port[0]) {
		kc_config_errf(err, errlen, "in-cluster: KUBERNETES_SERVICE_HOST/PORT not set");
		return -ENOENT;
	}
	errno = 0;
	portnum = strtol(port, &end, 10);
	if (errno || *end || portnum < 1 || portnum > 65535) {
		kc_config_errf(err, errlen, "in-cluster: bad KUBERNETES_SERVICE_PORT \"%s\"", port);
		return -EINVAL;
	}
	n = snprintf(url, sizeof(url), strchr(host, ':') ? "https://[%s]:%ld" : "https://%s:%ld",
		     host, portnum);
	if (n < 0 || (size_t)n >= sizeof(url))
		return -ENAMETOOLONG;
	rc = kc_config_new_empty(&cfg);
	if (rc)
		goto out;
	cfg->server = strdup(url);
	rc = -ENOMEM;
	if (!cfg->server)
		goto out;
	rc = kc_config_join_path(dir, "ca.crt", path, sizeof(path));
	if (!rc)
		rc = kc_config_read_blob(path, &cfg->ca);
	if (rc) {
		kc_config_errf(err, errlen, "in-cluster: cannot read %s: %s", path, strerror(-rc));
		goto out;
	}
	rc = kc_config_join_path(dir, "token", path, sizeof(path));
	if (rc)
		goto out;
	cfg->token_file = strdup(path);
	rc = -ENOMEM;
	if (!cfg->token_file)
		goto out;
	rc = kc_config_token_refresh_locked(cfg);
	if (rc) {
		kc_config_errf(err, errlen, "in-cluster: cannot read %s: %s", path, strerror(-rc));
		goto out;
	}
	rc = kc_config_join_path(dir, "namespace", path, sizeof(path));
	if (rc)
		goto out;
	if (kc_config_read_regular(path, 256, &ns, &nslen) == 0) {
		while (nslen > 0 && (ns[nslen - 1] == '\n' || ns[nslen - 1] == ' '))
			ns[--nslen] = '\0';
	}
	cfg->ns = strdup(ns && ns[0] ? ns : "default");
	rc = -ENOMEM;
	if (!cfg->ns)
		goto out;
	rc = 0;
	*out = cfg;
	cfg = NULL;
out:
	free(ns);
	kc_config_free(cfg);
	return rc;
}

int kc_config_load_auto(const char *kubeconfig, struct kc_config **out, char *err, size_t errlen)
{
	const char *env = getenv("KUBECONFIG");
	const char *host = getenv("KUBERNETES_SERVICE_HOST");

	if ((kubeconfig && kubeconfig[0]) || (env && env[0]))
		return kc_config_load_kubeconfig(kubeconfig, NULL, out, err, errlen);
	if (host && host[0])
		return kc_config_load_incluster(out, err, errlen);
	/* Neither: the usual ~/.kube/config, as kubectl does. */
	return kc_config_load_kubeconfig(NULL, NULL, out, err, errlen);
}
