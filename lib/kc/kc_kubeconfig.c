/*
 * kc_kubeconfig.c - kubeconfig files (libyaml document API, errors as
 * "file:line: what"): current or named context, its cluster (server, CA,
 * insecure-skip-tls-verify) and user (client certificate and key, token or
 * tokenFile), data inline (base64 PEM) or in files relative to the
 * kubeconfig's directory. Fills a struct kc_config (kc_config_int.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <yaml.h>

#include "kc_config_int.h"
#include "kc_internal.h"
#include "log.h"

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
		kc_config_errf(y->err, y->errlen, "%s:%lu: %s must be a string", y->name, yline(n), key);
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
					kc_config_errf(y->err, y->errlen, "%s:%lu: %s entry \"%s\" has no %s mapping",
					     y->name, yline(e), list, want, field);
					return -EINVAL;
				}
				*out = v;
				return 0;
			}
		}
	} else if (seq && !(seq->type == YAML_SCALAR_NODE && seq->data.scalar.length == 0)) {
		kc_config_errf(y->err, y->errlen, "%s:%lu: %s must be a list", y->name, yline(seq), list);
		return -EINVAL;
	}
	kc_config_errf(y->err, y->errlen, "%s:%lu: %s \"%s\" not found in %s", y->name,
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
			kc_config_blob_free(out);
			kc_config_errf(y->err, y->errlen, "%s:%lu: %s is not base64-encoded PEM", y->name,
			     yline(dn), data_key);
			return -EINVAL;
		}
		return 0;
	}
	if ((rc = ystr(y, map, file_key, &s)))
		return rc;
	if (!s)
		return 0;
	if (kc_config_join_path(y->dir, s, path, sizeof(path))) {
		kc_config_errf(y->err, y->errlen, "%s:%lu: %s: path too long", y->name, yline(fn), file_key);
		return -ENAMETOOLONG;
	}
	rc = kc_config_read_blob(path, out);
	if (rc) {
		kc_config_errf(y->err, y->errlen, "%s:%lu: %s: cannot read %s: %s", y->name, yline(fn),
		     file_key, path, strerror(-rc));
		return rc;
	}
	if (!looks_pem(out)) {
		kc_config_blob_free(out);
		kc_config_errf(y->err, y->errlen, "%s:%lu: %s: %s is not PEM", y->name, yline(fn), file_key,
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
		kc_config_errf(y->err, y->errlen, "%s:%lu: cluster \"%s\" has no server", y->name, yline(cl),
		     clname);
		return -EINVAL;
	}
	if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0) {
		kc_config_errf(y->err, y->errlen, "%s:%lu: server \"%s\" is not an http(s) URL", y->name,
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
		kc_config_errf(y->err, y->errlen, "%s:%lu: insecure-skip-tls-verify must be true or false",
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
			kc_config_errf(y->err, y->errlen, "%s:%lu: user \"%s\": %s is not supported (use a client certificate or a token)",
			     y->name, yline(n), uname, unsupported[i]);
			return -ENOTSUP;
		}
	}
	if ((rc = ydata_or_file(y, u, "client-certificate-data", "client-certificate", &cfg->cert)))
		return rc;
	if ((rc = ydata_or_file(y, u, "client-key-data", "client-key", &cfg->key)))
		return rc;
	if (!cfg->cert.data != !cfg->key.data) {
		kc_config_errf(y->err, y->errlen, "%s:%lu: user \"%s\" needs both a client certificate and a client key",
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
		if (kc_config_join_path(y->dir, tokfile, path, sizeof(path)))
			return -ENAMETOOLONG;
		cfg->token_file = strdup(path);
		if (!cfg->token_file)
			return -ENOMEM;
		rc = kc_config_token_refresh_locked(cfg);
		if (rc) {
			kc_config_errf(y->err, y->errlen, "%s:%lu: tokenFile: cannot read %s: %s", y->name,
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
		kc_config_errf(y->err, y->errlen, "%s:1: empty document", y->name);
		return -EINVAL;
	}
	if (root->type != YAML_MAPPING_NODE) {
		kc_config_errf(y->err, y->errlen, "%s:%lu: a kubeconfig must be a mapping", y->name, yline(root));
		return -EINVAL;
	}
	if (!ctxname || !ctxname[0]) {
		if ((rc = ystr(y, root, "current-context", &ctxname)))
			return rc;
		if (!ctxname || !ctxname[0]) {
			kc_config_errf(y->err, y->errlen, "%s:%lu: no current-context and no context given",
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
		kc_config_errf(y->err, y->errlen, "%s:%lu: context \"%s\" names no cluster", y->name,
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
	kc_config_errf(err, errlen, "%s", "");
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	if (!yaml_parser_load(&parser, &y.doc)) {
		kc_config_errf(err, errlen, "%s:%lu: not valid YAML: %s", y.name,
		     (unsigned long)parser.problem_mark.line + 1,
		     parser.problem ? parser.problem : "parse error");
		rc = -EINVAL;
		goto out;
	}
	have_doc = true;
	rc = kc_config_new_empty(&cfg);
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
			if (kc_config_join_path(home, ".kube/config", buf, sizeof(buf)))
				return -ENAMETOOLONG;
		} else {
			kc_config_errf(err, errlen, "no kubeconfig: neither $KUBECONFIG nor $HOME is set");
			return -ENOENT;
		}
		path = buf;
	}
	rc = kc_config_read_regular(path, KC_MAX_CONFIG_FILE, &data, &len);
	if (rc) {
		kc_config_errf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
		return rc;
	}
	rc = kc_config_parse_kubeconfig(path, data, len, context, out, err, errlen);
	if (data) {
		OPENSSL_cleanse(data, len);
		free(data);
	}
	return rc;
}
