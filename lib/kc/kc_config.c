/*
 * kc_config.c - connection settings: kubeconfig (libyaml document API, errors
 * as "file:line: what"), in-cluster ServiceAccount config, bearer tokens
 * re-read from disk when they rotate, and TLS material kept in memory and
 * handed to libcurl as blobs.
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
#include <yaml.h>

#include "fsutil.h"
#include "kc_internal.h"
#include "log.h"

#define KC_SA_DEFAULT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
/* Re-read a token file at least this often even if its mtime did not move. */
#define KC_TOKEN_RECHECK_MS 60000

struct kc_blob {
	unsigned char *data;
	size_t len;
};

struct kc_config {
	char *server;
	char *ns;
	struct kc_blob ca, cert, key;
	bool insecure;

	pthread_mutex_t lock; /* guards everything below */
	char *token;          /* static token, or the cached content of token_file */
	char *token_file;
	struct timespec token_mtime;
	off_t token_size;
	ino_t token_ino;
	int64_t token_read_ms;

	struct kc_ratelimit *rl; /* owned; NULL: no client-side limit */
};

static void blob_free(struct kc_blob *b)
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

static int config_new(struct kc_config **out)
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
	blob_free(&cfg->ca);
	blob_free(&cfg->cert);
	blob_free(&cfg->key);
	str_wipe_free(cfg->token);
	free(cfg->token_file);
	pthread_mutex_destroy(&cfg->lock);
	kc_ratelimit_free(cfg->rl);
	free(cfg);
}

int kc_config_set_rate_limit(struct kc_config *cfg, double qps, int burst)
{
	struct kc_ratelimit *rl = NULL;
	int rc;

	if (!cfg)
		return -EINVAL;
	if (qps > 0) {
		rc = kc_ratelimit_new(qps, burst, &rl);
		if (rc)
			return rc;
	}
	/* set once at start-up, before any client exists (kc.h) */
	kc_ratelimit_free(cfg->rl);
	cfg->rl = rl;
	return 0;
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
static int read_regular(const char *path, size_t max, char **out, size_t *len)
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
	rc = read_regular(path, KC_MAX_TOKEN, &data, &len);
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
static int token_refresh_locked(struct kc_config *cfg)
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
	rc = token_refresh_locked(cfg);
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
	blob_free(&cfg->cert);
	blob_free(&cfg->key);
	str_wipe_free(cfg->token);
	cfg->token = NULL;
	free(cfg->token_file);
	cfg->token_file = p;
	rc = token_refresh_locked(cfg);
	pthread_mutex_unlock(&cfg->lock);
	return rc;
}

/* ------------------------------------------------------------ TLS */

int kc_config_apply_tls(const struct kc_config *cfg, CURL *h)
{
	struct curl_blob b;
	CURLcode cc = CURLE_OK;

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

static void errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int kc_base64_decode(const char *in, size_t len, char **out, size_t *out_len)
{
	size_t cap = len / 4 * 3 + 4, n = 0, pad = 0;
	char *buf = malloc(cap);
	unsigned acc = 0;
	int bits = 0, rc = 0;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)in[i], v;

		if (c == '\n' || c == '\r' || c == ' ' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		v = b64val(c);
		if (v < 0 || pad) {
			rc = -EINVAL;
			goto out;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (char)((acc >> bits) & 0xffu);
		}
	}
	if (pad > 2 || bits >= 6) {
		rc = -EINVAL;
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	buf = NULL;
out:
	if (buf) {
		OPENSSL_cleanse(buf, cap);
		free(buf);
	}
	return rc;
}

/* base64 (with or without newlines) -> new buffer. */
static int b64_decode(const char *in, size_t inlen, struct kc_blob *out)
{
	char *buf = NULL;
	size_t n = 0;
	int rc = kc_base64_decode(in, inlen, &buf, &n);

	if (rc)
		return rc;
	out->data = (unsigned char *)buf;
	out->len = n;
	return 0;
}

static bool looks_pem(const struct kc_blob *b)
{
	static const char tag[] = "-----BEGIN ";

	if (b->len < sizeof(tag))
		return false;
	for (size_t i = 0; i + sizeof(tag) - 1 <= b->len; i++)
		if (memcmp(b->data + i, tag, sizeof(tag) - 1) == 0)
			return true;
	return false;
}

/* Joins dir and a (relative) path. */
static int resolve_path(const char *dir, const char *p, char *buf, size_t cap)
{
	int n;

	if (p[0] == '/' || !dir || !dir[0])
		n = snprintf(buf, cap, "%s", p);
	else
		n = snprintf(buf, cap, "%s/%s", dir, p);
	return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

static int read_blob(const char *path, struct kc_blob *out)
{
	char *data = NULL;
	size_t len = 0;
	int rc = read_regular(path, KC_MAX_CONFIG_FILE, &data, &len);

	if (rc)
		return rc;
	out->data = (unsigned char *)data;
	out->len = len;
	return 0;
}

/* ------------------------------------------------------------ YAML */

struct ky {
	yaml_document_t doc;
	const char *name; /* for messages */
	const char *dir;  /* for relative paths */
	char *err;
	size_t errlen;
};

static unsigned long yline(const yaml_node_t *n)
{
	return n ? (unsigned long)n->start_mark.line + 1 : 1;
}

/* A scalar's value, or NULL (not a scalar, or holds a NUL byte). */
static const char *yscalar(const yaml_node_t *n)
{
	if (!n || n->type != YAML_SCALAR_NODE)
		return NULL;
	if (memchr(n->data.scalar.value, '\0', n->data.scalar.length))
		return NULL;
	return (const char *)n->data.scalar.value;
}

/* The pair of `key` in map, or NULL. */
static yaml_node_pair_t *ypair(struct ky *y, yaml_node_t *map, const char *key)
{
	size_t klen = strlen(key);

	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);

		if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == klen &&
		    memcmp(k->data.scalar.value, key, klen) == 0)
			return p;
	}
	return NULL;
}

/* The key node of `key` in map (its line is where the user looks), or NULL. */
static yaml_node_t *ykey(struct ky *y, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *p = ypair(y, map, key);

	return p ? yaml_document_get_node(&y->doc, p->key) : NULL;
}

/* The value node of `key` in map, or NULL. */
static yaml_node_t *yget(struct ky *y, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *p = ypair(y, map, key);

	return p ? yaml_document_get_node(&y->doc, p->value) : NULL;
}

/* A scalar child; -EINVAL with a message if present but not a string. */
static int ystr(struct ky *y, yaml_node_t *map, const char *key, const char **out)
{
	yaml_node_t *n = yget(y, map, key);

	*out = NULL;
	if (!n)
		return 0;
	if (n->type == YAML_SCALAR_NODE && n->data.scalar.length == 0 &&
	    n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
		return 0; /* "key:" with no value (null) */
	*out = yscalar(n);
	if (!*out) {
		errf(y->err, y->errlen, "%s:%lu: %s must be a string", y->name, yline(n), key);
		return -EINVAL;
	}
	return 0;
}

/* The entry of a named list ("clusters", "users", "contexts") whose name is
 * `want`; returns its `field` mapping (e.g. "cluster"). */
static int yfind_named(struct ky *y, yaml_node_t *root, const char *list, const char *field,
		       const char *want, yaml_node_t *ref, yaml_node_t **out)
{
	yaml_node_t *seq = yget(y, root, list);

	*out = NULL;
	if (seq && seq->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *it = seq->data.sequence.items.start;
		     it < seq->data.sequence.items.top; it++) {
			yaml_node_t *e = yaml_document_get_node(&y->doc, *it);
			const char *nm = yscalar(yget(y, e, "name"));

			if (nm && strcmp(nm, want) == 0) {
				yaml_node_t *v = yget(y, e, field);

				if (!v || v->type != YAML_MAPPING_NODE) {
					errf(y->err, y->errlen, "%s:%lu: %s entry \"%s\" has no %s mapping",
					     y->name, yline(e), list, want, field);
					return -EINVAL;
				}
				*out = v;
				return 0;
			}
		}
	} else if (seq && !(seq->type == YAML_SCALAR_NODE && seq->data.scalar.length == 0)) {
		errf(y->err, y->errlen, "%s:%lu: %s must be a list", y->name, yline(seq), list);
		return -EINVAL;
	}
	errf(y->err, y->errlen, "%s:%lu: %s \"%s\" not found in %s", y->name,
	     yline(seq ? seq : ref), field, want, list);
	return -EINVAL;
}

/* "<key>-data" (base64) or "<key>" (a file path) into blob; require_pem. */
static int ydata_or_file(struct ky *y, yaml_node_t *map, const char *data_key,
			 const char *file_key, struct kc_blob *out)
{
	yaml_node_t *dn = yget(y, map, data_key), *fn = yget(y, map, file_key);
	const char *s;
	char path[PATH_MAX];
	int rc;

	if ((rc = ystr(y, map, data_key, &s)))
		return rc;
	if (s) {
		if (b64_decode(s, strlen(s), out) || !looks_pem(out)) {
			blob_free(out);
			errf(y->err, y->errlen, "%s:%lu: %s is not base64-encoded PEM", y->name,
			     yline(dn), data_key);
			return -EINVAL;
		}
		return 0;
	}
	if ((rc = ystr(y, map, file_key, &s)))
		return rc;
	if (!s)
		return 0;
	if (resolve_path(y->dir, s, path, sizeof(path))) {
		errf(y->err, y->errlen, "%s:%lu: %s: path too long", y->name, yline(fn), file_key);
		return -ENAMETOOLONG;
	}
	rc = read_blob(path, out);
	if (rc) {
		errf(y->err, y->errlen, "%s:%lu: %s: cannot read %s: %s", y->name, yline(fn),
		     file_key, path, strerror(-rc));
		return rc;
	}
	if (!looks_pem(out)) {
		blob_free(out);
		errf(y->err, y->errlen, "%s:%lu: %s: %s is not PEM", y->name, yline(fn), file_key,
		     path);
		return -EINVAL;
	}
	return 0;
}

static int parse_cluster(struct ky *y, yaml_node_t *cl, const char *clname, struct kc_config *cfg)
{
	const char *server, *insecure;
	int rc;

	if ((rc = ystr(y, cl, "server", &server)))
		return rc;
	if (!server || !server[0]) {
		errf(y->err, y->errlen, "%s:%lu: cluster \"%s\" has no server", y->name, yline(cl),
		     clname);
		return -EINVAL;
	}
	if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0) {
		errf(y->err, y->errlen, "%s:%lu: server \"%s\" is not an http(s) URL", y->name,
		     yline(yget(y, cl, "server")), server);
		return -EINVAL;
	}
	cfg->server = strdup(server);
	if (!cfg->server)
		return -ENOMEM;
	/* "https://h:6443/" -> "https://h:6443": paths start with '/'. */
	for (size_t n = strlen(cfg->server); n > 8 && cfg->server[n - 1] == '/'; n--)
		cfg->server[n - 1] = '\0';
	if ((rc = ydata_or_file(y, cl, "certificate-authority-data", "certificate-authority",
				&cfg->ca)))
		return rc;
	if ((rc = ystr(y, cl, "insecure-skip-tls-verify", &insecure)))
		return rc;
	if (insecure && strcmp(insecure, "true") == 0) {
		cfg->insecure = true;
		LOG_WARN("msg=\"TLS verification of the API server is disabled\" cluster=%s", clname);
	} else if (insecure && strcmp(insecure, "false") != 0) {
		errf(y->err, y->errlen, "%s:%lu: insecure-skip-tls-verify must be true or false",
		     y->name, yline(yget(y, cl, "insecure-skip-tls-verify")));
		return -EINVAL;
	}
	return 0;
}

static int parse_user(struct ky *y, yaml_node_t *u, const char *uname, struct kc_config *cfg)
{
	static const char *const unsupported[] = { "exec", "auth-provider", "username",
						   "password" };
	const char *tok, *tokfile;
	char path[PATH_MAX];
	int rc;

	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
		yaml_node_t *n = ykey(y, u, unsupported[i]);

		if (n) {
			errf(y->err, y->errlen, "%s:%lu: user \"%s\": %s is not supported (use a client certificate or a token)",
			     y->name, yline(n), uname, unsupported[i]);
			return -ENOTSUP;
		}
	}
	if ((rc = ydata_or_file(y, u, "client-certificate-data", "client-certificate", &cfg->cert)))
		return rc;
	if ((rc = ydata_or_file(y, u, "client-key-data", "client-key", &cfg->key)))
		return rc;
	if (!cfg->cert.data != !cfg->key.data) {
		errf(y->err, y->errlen, "%s:%lu: user \"%s\" needs both a client certificate and a client key",
		     y->name, yline(u), uname);
		return -EINVAL;
	}
	if ((rc = ystr(y, u, "token", &tok)) || (rc = ystr(y, u, "tokenFile", &tokfile)))
		return rc;
	if (tok && tok[0]) {
		cfg->token = strdup(tok);
		if (!cfg->token)
			return -ENOMEM;
	} else if (tokfile && tokfile[0]) {
		if (resolve_path(y->dir, tokfile, path, sizeof(path)))
			return -ENAMETOOLONG;
		cfg->token_file = strdup(path);
		if (!cfg->token_file)
			return -ENOMEM;
		rc = token_refresh_locked(cfg);
		if (rc) {
			errf(y->err, y->errlen, "%s:%lu: tokenFile: cannot read %s: %s", y->name,
			     yline(yget(y, u, "tokenFile")), path, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int parse_doc(struct ky *y, const char *context, struct kc_config *cfg)
{
	yaml_node_t *root = yaml_document_get_root_node(&y->doc), *ctx, *cl, *u = NULL;
	const char *ctxname = context, *clname, *uname, *ns;
	int rc;

	if (!root) {
		errf(y->err, y->errlen, "%s:1: empty document", y->name);
		return -EINVAL;
	}
	if (root->type != YAML_MAPPING_NODE) {
		errf(y->err, y->errlen, "%s:%lu: a kubeconfig must be a mapping", y->name, yline(root));
		return -EINVAL;
	}
	if (!ctxname || !ctxname[0]) {
		if ((rc = ystr(y, root, "current-context", &ctxname)))
			return rc;
		if (!ctxname || !ctxname[0]) {
			errf(y->err, y->errlen, "%s:%lu: no current-context and no context given",
			     y->name, yline(root));
			return -EINVAL;
		}
	}
	if ((rc = yfind_named(y, root, "contexts", "context", ctxname, root, &ctx)))
		return rc;
	if ((rc = ystr(y, ctx, "cluster", &clname)) || (rc = ystr(y, ctx, "user", &uname)) ||
	    (rc = ystr(y, ctx, "namespace", &ns)))
		return rc;
	if (!clname || !clname[0]) {
		errf(y->err, y->errlen, "%s:%lu: context \"%s\" names no cluster", y->name,
		     yline(ctx), ctxname);
		return -EINVAL;
	}
	if ((rc = yfind_named(y, root, "clusters", "cluster", clname, ctx, &cl)))
		return rc;
	if (uname && uname[0] && (rc = yfind_named(y, root, "users", "user", uname, ctx, &u)))
		return rc;
	cfg->ns = strdup(ns && ns[0] ? ns : "default");
	if (!cfg->ns)
		return -ENOMEM;
	if ((rc = parse_cluster(y, cl, clname, cfg)))
		return rc;
	if (u && (rc = parse_user(y, u, uname, cfg)))
		return rc;
	return 0;
}

static int parse_kubeconfig_dir(const char *name, const char *dir, const char *yaml, size_t len,
				const char *context, struct kc_config **out, char *err,
				size_t errlen)
{
	struct kc_config *cfg = NULL;
	yaml_parser_t parser;
	struct ky y = { .name = name ? name : "kubeconfig", .dir = dir, .err = err, .errlen = errlen };
	bool have_doc = false;
	int rc;

	*out = NULL;
	errf(err, errlen, "%s", "");
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	if (!yaml_parser_load(&parser, &y.doc)) {
		errf(err, errlen, "%s:%lu: not valid YAML: %s", y.name,
		     (unsigned long)parser.problem_mark.line + 1,
		     parser.problem ? parser.problem : "parse error");
		rc = -EINVAL;
		goto out;
	}
	have_doc = true;
	rc = config_new(&cfg);
	if (rc)
		goto out;
	rc = parse_doc(&y, context, cfg);
	if (rc)
		goto out;
	*out = cfg;
	cfg = NULL;
out:
	if (have_doc)
		yaml_document_delete(&y.doc);
	yaml_parser_delete(&parser);
	kc_config_free(cfg);
	return rc;
}

int kc_config_parse_kubeconfig(const char *name, const char *yaml, size_t len, const char *context,
			       struct kc_config **out, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	const char *slash = name ? strrchr(name, '/') : NULL;

	if (!out || !yaml)
		return -EINVAL;
	if (slash && (size_t)(slash - name) < sizeof(dir)) {
		memcpy(dir, name, (size_t)(slash - name));
		dir[slash - name] = '\0';
		if (slash == name)
			snprintf(dir, sizeof(dir), "/");
	} else {
		snprintf(dir, sizeof(dir), ".");
	}
	return parse_kubeconfig_dir(name, dir, yaml, len, context, out, err, errlen);
}

int kc_config_load_kubeconfig(const char *path, const char *context, struct kc_config **out,
			      char *err, size_t errlen)
{
	char buf[PATH_MAX];
	char *data = NULL;
	size_t len = 0;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!path || !path[0]) {
		const char *env = getenv("KUBECONFIG");
		const char *home = getenv("HOME");

		if (env && env[0]) {
			size_t n = strcspn(env, ":");

			if (n >= sizeof(buf))
				return -ENAMETOOLONG;
			memcpy(buf, env, n);
			buf[n] = '\0';
		} else if (home && home[0]) {
			if (resolve_path(home, ".kube/config", buf, sizeof(buf)))
				return -ENAMETOOLONG;
		} else {
			errf(err, errlen, "no kubeconfig: neither $KUBECONFIG nor $HOME is set");
			return -ENOENT;
		}
		path = buf;
	}
	rc = read_regular(path, KC_MAX_CONFIG_FILE, &data, &len);
	if (rc) {
		errf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
		return rc;
	}
	rc = kc_config_parse_kubeconfig(path, data, len, context, out, err, errlen);
	if (data) {
		OPENSSL_cleanse(data, len);
		free(data);
	}
	return rc;
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
		errf(err, errlen, "in-cluster: KUBERNETES_SERVICE_HOST/PORT not set");
		return -ENOENT;
	}
	errno = 0;
	portnum = strtol(port, &end, 10);
	if (errno || *end || portnum < 1 || portnum > 65535) {
		errf(err, errlen, "in-cluster: bad KUBERNETES_SERVICE_PORT \"%s\"", port);
		return -EINVAL;
	}
	n = snprintf(url, sizeof(url), strchr(host, ':') ? "https://[%s]:%ld" : "https://%s:%ld",
		     host, portnum);
	if (n < 0 || (size_t)n >= sizeof(url))
		return -ENAMETOOLONG;
	rc = config_new(&cfg);
	if (rc)
		goto out;
	cfg->server = strdup(url);
	rc = -ENOMEM;
	if (!cfg->server)
		goto out;
	rc = resolve_path(dir, "ca.crt", path, sizeof(path));
	if (!rc)
		rc = read_blob(path, &cfg->ca);
	if (rc) {
		errf(err, errlen, "in-cluster: cannot read %s: %s", path, strerror(-rc));
		goto out;
	}
	rc = resolve_path(dir, "token", path, sizeof(path));
	if (rc)
		goto out;
	cfg->token_file = strdup(path);
	rc = -ENOMEM;
	if (!cfg->token_file)
		goto out;
	rc = token_refresh_locked(cfg);
	if (rc) {
		errf(err, errlen, "in-cluster: cannot read %s: %s", path, strerror(-rc));
		goto out;
	}
	rc = resolve_path(dir, "namespace", path, sizeof(path));
	if (rc)
		goto out;
	if (read_regular(path, 256, &ns, &nslen) == 0) {
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
