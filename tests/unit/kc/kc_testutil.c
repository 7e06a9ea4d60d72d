/* What the kc HTTP tests share (see kc_testutil.h). */
#include "kc_testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static char tmpdir[256];

int kt_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kc-test-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

int kt_teardown(void **state)
{
	char cmd[512];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

const char *kt_tmpdir(void)
{
	return tmpdir;
}

int64_t kt_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kt_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

struct kc_config *kt_config_for(struct fake_server *s, const char *user_yaml)
{
	struct kc_config *cfg = NULL;
	char path[512], err[512];

	assert_int_equal(fs_kubeconfig(s, tmpdir, user_yaml, path, sizeof(path)), 0);
	if (kc_config_load_kubeconfig(path, NULL, &cfg, err, sizeof(err)))
		fail_msg("kubeconfig: %s", err);
	return cfg;
}

void kt_get_req(struct fake_server *s, int i, struct fs_req *r)
{
	assert_int_equal(fs_get(s, i, r), 0);
}

int kt_h_pod(struct fake_server *s, int fd, const struct fs_req *r, void *arg)
{
	(void)s;
	(void)arg;
	return fs_reply_json(fd, strcmp(r->method, "POST") == 0 ? 201 : 200,
			     "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"p1\",\"namespace\":\"ns1\"}}");
}

json_object *kt_parse(const char *s)
{
	json_object *o = NULL;

	assert_int_equal(kc_json_parse(s, strlen(s), &o), 0);
	return o;
}
