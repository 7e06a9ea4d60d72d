/* kubeconfig parsing (good and broken files, file:line errors), in-cluster
 * config, token files and rotation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kc.h"

/* "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" */
#define PEM_CA "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
#define PEM_CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkFBQUEKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="

static char tmpdir[256];

static void write_file(const char *rel, const char *content)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kc-test-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[512];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char good[] =
	"apiVersion: v1\n"                                          /* 1 */
	"kind: Config\n"                                            /* 2 */
	"clusters:\n"                                               /* 3 */
	"- name: prod\n"                                            /* 4 */
	"  cluster:\n"                                              /* 5 */
	"    server: https://10.0.0.1:6443/\n"                      /* 6 */
	"    certificate-authority-data: " PEM_CA_B64 "\n"          /* 7 */
	"- name: dev\n"                                             /* 8 */
	"  cluster:\n"                                              /* 9 */
	"    server: https://dev.example:443\n"                     /* 10 */
	"    certificate-authority: ca.pem\n"                       /* 11 */
	"    insecure-skip-tls-verify: false\n"                     /* 12 */
	"contexts:\n"                                               /* 13 */
	"- name: prod-admin\n"                                      /* 14 */
	"  context:\n"                                              /* 15 */
	"    cluster: prod\n"                                       /* 16 */
	"    user: admin\n"                                         /* 17 */
	"- name: dev-ci\n"                                          /* 18 */
	"  context:\n"                                              /* 19 */
	"    cluster: dev\n"                                        /* 20 */
	"    user: ci\n"                                            /* 21 */
	"    namespace: ci-ns\n"                                    /* 22 */
	"- name: dev-files\n"                                       /* 23 */
	"  context: {cluster: dev, user: files}\n"                  /* 24 */
	"current-context: prod-admin\n"                             /* 25 */
	"users:\n"                                                  /* 26 */
	"- name: admin\n"                                           /* 27 */
	"  user:\n"                                                 /* 28 */
	"    client-certificate-data: " PEM_CA_B64 "\n"             /* 29 */
	"    client-key-data: " PEM_CA_B64 "\n"                     /* 30 */
	"- name: ci\n"                                              /* 31 */
	"  user:\n"                                                 /* 32 */
	"    tokenFile: sub/token\n"                                /* 33 */
	"- name: files\n"                                           /* 34 */
	"  user:\n"                                                 /* 35 */
	"    client-certificate: certs/c.pem\n"                     /* 36 */
	"    client-key: certs/k.pem\n"                             /* 37 */
	"    token: static-token\n";                                /* 38 */

static void prepare_good(char *path, size_t cap)
{
	char d[512];

	snprintf(d, sizeof(d), "%s/sub", tmpdir);
	mkdir(d, 0700);
	snprintf(d, sizeof(d), "%s/certs", tmpdir);
	mkdir(d, 0700);
	write_file("ca.pem", PEM_CA);
	write_file("certs/c.pem", PEM_CA);
	write_file("certs/k.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
	write_file("sub/token", "token-one\n");
	write_file("kubeconfig", good);
	snprintf(path, cap, "%s/kubeconfig", tmpdir);
}

static void test_kubeconfig_good(void **state)
{
	struct kc_config *cfg = NULL;
	char path[512], err[512], tok[128];
	(void)state;

	prepare_good(path, sizeof(path));
	/* current-context, data fields, namespace default */
	assert_int_equal(kc_config_load_kubeconfig(path, NULL, &cfg, err, sizeof(err)), 0);
	assert_string_equal(kc_config_server(cfg), "https://10.0.0.1:6443");
	assert_string_equal(kc_config_namespace(cfg), "default");
	assert_int_equal(kc_config_token(cfg, tok, sizeof(tok)), -ENOENT);
	kc_config_free(cfg);

	/* named context, relative CA file, tokenFile relative to the kubeconfig dir */
	assert_int_equal(kc_config_load_kubeconfig(path, "dev-ci", &cfg, err, sizeof(err)), 0);
	assert_string_equal(kc_config_server(cfg), "https://dev.example:443");
	assert_string_equal(kc_config_namespace(cfg), "ci-ns");
	assert_int_equal(kc_config_token(cfg, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "token-one");
	assert_int_equal(kc_config_token(cfg, tok, 4), -ENOSPC);
	kc_config_free(cfg);

	/* flow mapping context, cert/key files, static token */
	assert_int_equal(kc_config_load_kubeconfig(path, "dev-files", &cfg, err, sizeof(err)), 0);
	assert_int_equal(kc_config_token(cfg, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "static-token");
	kc_config_free(cfg);

	/* $KUBECONFIG (first entry) when path is NULL; load_auto prefers it */
	char env[1100];
	snprintf(env, sizeof(env), "%s:/nonexistent", path);
	setenv("KUBECONFIG", env, 1);
	assert_int_equal(kc_config_load_kubeconfig(NULL, "dev-ci", &cfg, err, sizeof(err)), 0);
	assert_string_equal(kc_config_namespace(cfg), "ci-ns");
	kc_config_free(cfg);
	assert_int_equal(kc_config_load_auto(NULL, &cfg, err, sizeof(err)), 0);
	assert_string_equal(kc_config_server(cfg), "https://10.0.0.1:6443");
	kc_config_free(cfg);
	unsetenv("KUBECONFIG");
	kc_config_free(NULL);
}

struct bad_case {
	const char *yaml;
	const char *context;
	const char *want; /* substring of err */
};

static void test_kubeconfig_broken(void **state)
{
	static const struct bad_case cases[] = {
		{ "clusters: [\n  - {name: x\n", NULL, "bad.yaml:2: not valid YAML" },
		{ "a: 1\nb: [1,\n", NULL, "bad.yaml:3: not valid YAML" },
		{ "key: value\n  other: : :\n", NULL, "bad.yaml:2: not valid YAML" },
		{ "", NULL, "bad.yaml:1: empty document" },
		{ "- a\n- b\n", NULL, "bad.yaml:1: a kubeconfig must be a mapping" },
		{ "apiVersion: v1\nclusters: []\n", NULL, "bad.yaml:1: no current-context" },
		{ "apiVersion: v1\ncurrent-context: nope\ncontexts:\n- name: other\n  context: {cluster: c}\n",
		  NULL, "bad.yaml:4: context \"nope\" not found in contexts" },
		{ "contexts:\n- name: a\n  context:\n    cluster: missing\ncurrent-context: a\n"
		  "clusters:\n- name: other\n  cluster: {server: https://x}\n",
		  NULL, "bad.yaml:7: cluster \"missing\" not found in clusters" },
		{ "contexts:\n- name: a\n  context:\n    cluster: c\n", "a",
		  "bad.yaml:4: cluster \"c\" not found in clusters" },
		{ "contexts:\n- name: a\n  context:\n    cluster: c\ncurrent-context: a\nclusters:\n"
		  "- name: c\n  cluster:\n    insecure-skip-tls-verify: true\n",
		  NULL, "bad.yaml:9: cluster \"c\" has no server" },
		{ "contexts:\n- name: a\n  context:\n    cluster: c\ncurrent-context: a\nclusters:\n"
		  "- name: c\n  cluster:\n    server: https://x\n    certificate-authority-data: \"!!notbase64!!\"\n",
		  NULL, "bad.yaml:10: certificate-authority-data is not base64-encoded PEM" },
		{ "contexts:\n- name: a\n  context:\n    cluster: c\ncurrent-context: a\nclusters:\n"
		  "- name: c\n  cluster:\n    server: https://x\n    certificate-authority-data: aGVsbG8=\n",
		  NULL, "bad.yaml:10: certificate-authority-data is not base64-encoded PEM" },
		{ "contexts:\n- name: a\n  context:\n    cluster: c\ncurrent-context: a\nclusters:\n"
		  "- name: c\n  cluster:\n    server: ftp://x\n",
		  NULL, "bad.yaml:9: server \"ftp://x\" is not an http(s) URL" },
		{ "contexts:\n- name: a\n  context:\n    cluster: c\ncurrent-context: a\nclusters:\n"
		  "- name: c\n  cluster:\n    server: https://x\n    certificate-authority: /nonexistent/ca\n",
		  NULL, "bad.yaml:10: certificate-authority: cannot read /nonexistent/ca" },
		{ "contexts:\n- name: a\n  context:\n    cluster: c\n    user: u\ncurrent-context: a\n"
		  "clusters:\n- name: c\n  cluster:\n    server: https://x\nusers:\n- name: v\n  user: {}\n",
		  NULL, "bad.yaml:12: user \"u\" not found in users" },
		{ "contexts:\n- name: a\n  context:\n    cluster: c\n    user: u\ncurrent-context: a\n"
		  "clusters:\n- name: c\n  cluster:\n    server: https://x\nusers:\n- name: u\n  user:\n"
		  "    exec:\n      command: aws\n",
		  NULL, "bad.yaml:14: user \"u\": exec is not supported" },
		{ "contexts:\n- name: a\n  context:\n    cluster: c\n    user: u\ncurrent-context: a\n"
		  "clusters:\n- name: c\n  cluster:\n    server: https://x\nusers:\n- name: u\n  user:\n"
		  "    client-certificate-data: " PEM_CA_B64 "\n",
		  NULL, "bad.yaml:14: user \"u\" needs both a client certificate and a client key" },
		{ "contexts:\n- name: a\n  context:\n    cluster: c\n    user: u\ncurrent-context: a\n"
		  "clusters:\n- name: c\n  cluster:\n    server: https://x\nusers:\n- name: u\n  user:\n"
		  "    token: [1, 2]\n",
		  NULL, "bad.yaml:14: token must be a string" },
		{ "contexts:\n- name: a\n  context:\n    cluster: c\n    user: u\ncurrent-context: a\n"
		  "clusters:\n- name: c\n  cluster:\n    server: https://x\nusers:\n- name: u\n  user:\n"
		  "    tokenFile: /dev/null\n",
		  NULL, "bad.yaml:14: tokenFile: cannot read /dev/null" },
		{ "contexts:\n- name: a\n  context:\n    cluster: c\ncurrent-context: a\nclusters:\n"
		  "- name: c\n  cluster:\n    server: https://x\n    insecure-skip-tls-verify: maybe\n",
		  NULL, "bad.yaml:10: insecure-skip-tls-verify must be true or false" },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kc_config *cfg = (struct kc_config *)1;
		char err[512] = "";
		int rc = kc_config_parse_kubeconfig("bad.yaml", cases[i].yaml, strlen(cases[i].yaml),
						    cases[i].context, &cfg, err, sizeof(err));

		if (rc == 0 || !strstr(err, cases[i].want))
			fail_msg("case %zu: rc=%d err=\"%s\" want \"%s\"", i, rc, err, cases[i].want);
		assert_null(cfg);
	}
	/* a missing file */
	{
		struct kc_config *cfg = NULL;
		char err[512];

		assert_int_equal(kc_config_load_kubeconfig("/nonexistent/kc", NULL, &cfg, err, sizeof(err)),
				 -ENOENT);
		assert_non_null(strstr(err, "/nonexistent/kc: cannot read"));
	}
}

static void test_incluster(void **state)
{
	struct kc_config *cfg = NULL;
	char err[512], tok[64], d[512];
	(void)state;

	snprintf(d, sizeof(d), "%s/sa", tmpdir);
	mkdir(d, 0700);
	write_file("sa/ca.crt", PEM_CA);
	write_file("sa/token", "sa-token-1\n");
	write_file("sa/namespace", "kube-sys\n");
	setenv("KC_SA_DIR", d, 1);
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(kc_config_load_incluster(&cfg, err, sizeof(err)), -ENOENT);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443x", 1);
	assert_int_equal(kc_config_load_incluster(&cfg, err, sizeof(err)), -EINVAL);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(kc_config_load_incluster(&cfg, err, sizeof(err)), 0);
	assert_string_equal(kc_config_server(cfg), "https://10.96.0.1:443");
	assert_string_equal(kc_config_namespace(cfg), "kube-sys");
	assert_int_equal(kc_config_token(cfg, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "sa-token-1");
	kc_config_free(cfg);
	/* IPv6 host; load_auto picks in-cluster without $KUBECONFIG */
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	unsetenv("KUBECONFIG");
	assert_int_equal(kc_config_load_auto(NULL, &cfg, err, sizeof(err)), 0);
	assert_string_equal(kc_config_server(cfg), "https://[fd00::1]:443");
	kc_config_free(cfg);
	/* no token file: an error that names it */
	write_file("sa/token", "");
	assert_int_equal(kc_config_load_incluster(&cfg, err, sizeof(err)), -ENODATA);
	assert_non_null(strstr(err, "sa/token"));
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv("KC_SA_DIR");
}

static void test_token_rotation(void **state)
{
	struct kc_config *cfg = NULL;
	char path[512], err[512], tok[64], tpath[512], tmp[512];
	(void)state;

	prepare_good(path, sizeof(path));
	assert_int_equal(kc_config_load_kubeconfig(path, "dev-ci", &cfg, err, sizeof(err)), 0);
	assert_int_equal(kc_config_token(cfg, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "token-one");
	/* rewritten in place (mtime/size change) */
	write_file("sub/token", "token-two-longer\n");
	assert_int_equal(kc_config_token(cfg, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "token-two-longer");
	/* replaced by rename (as the kubelet's atomic writer does): new inode */
	write_file("sub/token.new", "token-3-abcdefgh\n");
	snprintf(tpath, sizeof(tpath), "%s/sub/token", tmpdir);
	snprintf(tmp, sizeof(tmp), "%s/sub/token.new", tmpdir);
	assert_int_equal(rename(tmp, tpath), 0);
	assert_int_equal(kc_config_token(cfg, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "token-3-abcdefgh");
	/* file vanishes: keep the last good token */
	unlink(tpath);
	assert_int_equal(kc_config_token(cfg, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "token-3-abcdefgh");
	/* set_token_file replaces the credentials */
	write_file("other-token", "other\n");
	snprintf(tpath, sizeof(tpath), "%s/other-token", tmpdir);
	assert_int_equal(kc_config_set_token_file(cfg, tpath), 0);
	assert_int_equal(kc_config_token(cfg, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "other");
	assert_int_equal(kc_config_set_token_file(cfg, "/nonexistent/token"), -ENOENT);
	kc_config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kubeconfig_good),
		cmocka_unit_test(test_kubeconfig_broken),
		cmocka_unit_test(test_incluster),
		cmocka_unit_test(test_token_rotation),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
