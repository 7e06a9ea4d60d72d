/*
 * kc_testutil.h - what the kc HTTP tests share: a scratch directory per test
 * program, a monotonic clock, a sleep, a client config pointing at a
 * fake_server, and a JSON parse that fails the test on bad input.
 */
#ifndef KC_TESTUTIL_H
#define KC_TESTUTIL_H

#include <stdint.h>

#include <json-c/json.h>

#include "fake_server.h"
#include "kc.h"

/* cmocka group setup/teardown: make and remove the scratch directory
 * (/tmp/kc-test-XXXXXX). */
int kt_setup(void **state);
int kt_teardown(void **state);
/* The scratch directory (borrowed; valid between kt_setup and kt_teardown). */
const char *kt_tmpdir(void);

int64_t kt_mono_ms(void);
void kt_sleep_ms(long ms);

/* A config for the server with the given user section (YAML lines, indented
 * 4), written under kt_tmpdir(). Fails the test on error; caller frees with
 * kc_config_free. */
struct kc_config *kt_config_for(struct fake_server *s, const char *user_yaml);

/* Copy of the server's request i; fails the test if there is none. Free
 * with fs_req_free. */
void kt_get_req(struct fake_server *s, int i, struct fs_req *r);

/* A handler that answers every request with a Pod ns1/p1: 201 to a POST,
 * 200 to anything else. */
int kt_h_pod(struct fake_server *s, int fd, const struct fs_req *r, void *arg);

/* Parses s; fails the test on error. Caller owns the result (json_object_put). */
json_object *kt_parse(const char *s);

#endif
