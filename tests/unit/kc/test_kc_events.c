/* Events and Leases against an in-test server. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_server.h"
#include "kc.h"
#include "kc_testutil.h"

/* ------------------------------------------------------------ events */

static void test_event(void **state)
{
	struct fake_server *s = NULL;
	struct kc_config *cfg;
	struct kc_client *c = NULL;
	struct kc_status st;
	struct kc_event_source src = { "checkpointing.dev/controller", "ctl-0" };
	json_object *reg, *body;
	struct fs_req r;
	const char *name, *t;
	char big[3000];
	(void)state;

	assert_int_equal(fs_start(kt_h_pod, NULL, &s), 0);
	cfg = kt_config_for(s, "    token: t\n");
	assert_int_equal(kc_client_new(cfg, &c), 0);
	reg = kt_parse("{\"apiVersion\":\"checkpointing.dev/v1alpha1\",\"kind\":\"PodCheckpoint\","
		    "\"metadata\":{\"namespace\":\"team-a\",\"name\":\"cp1\",\"uid\":\"u-1\","
		    "\"resourceVersion\":\"77\"}}");
	assert_int_equal(kc_event_emit(c, &src, reg, "Normal", "CheckpointCompleted", "Checkpoint",
				       &st, "pod %s checkpointed in %d ms", "web-0", 42), 0);
	kt_get_req(s, 0, &r);
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.target, "/apis/events.k8s.io/v1/namespaces/team-a/events");
	assert_string_equal(r.content_type, "application/json");
	body = kt_parse(r.body);
	assert_string_equal(kc_json_str(body, "apiVersion"), "events.k8s.io/v1");
	assert_string_equal(kc_json_str(body, "kind"), "Event");
	name = kc_json_str(body, "metadata.name");
	assert_non_null(name);
	assert_int_equal(strncmp(name, "cp1.", 4), 0);
	assert_true(strlen(name) > 4 && strspn(name + 4, "0123456789abcdef") == strlen(name + 4));
	assert_string_equal(kc_json_str(body, "metadata.namespace"), "team-a");
	t = kc_json_str(body, "eventTime");
	assert_non_null(t);
	assert_int_equal(strlen(t), 27); /* 2026-11-28T18:00:00.000000Z */
	assert_int_equal(t[19], '.');
	assert_int_equal(t[26], 'Z');
	assert_string_equal(kc_json_str(body, "reportingController"), "checkpointing.dev/controller");
	assert_string_equal(kc_json_str(body, "reportingInstance"), "ctl-0");
	assert_string_equal(kc_json_str(body, "action"), "Checkpoint");
	assert_string_equal(kc_json_str(body, "reason"), "CheckpointCompleted");
	assert_string_equal(kc_json_str(body, "type"), "Normal");
	assert_string_equal(kc_json_str(body, "note"), "pod web-0 checkpointed in 42 ms");
	assert_string_equal(kc_json_str(body, "regarding.apiVersion"), "checkpointing.dev/v1alpha1");
	assert_string_equal(kc_json_str(body, "regarding.kind"), "PodCheckpoint");
	assert_string_equal(kc_json_str(body, "regarding.namespace"), "team-a");
	assert_string_equal(kc_json_str(body, "regarding.name"), "cp1");
	assert_string_equal(kc_json_str(body, "regarding.uid"), "u-1");
	assert_string_equal(kc_json_str(body, "regarding.resourceVersion"), "77");
	json_object_put(body);
	fs_req_free(&r);

	/* long notes are cut to 1024 bytes */
	memset(big, 'n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(kc_event_emit(c, &src, reg, "Warning", "KubeletError", "Checkpoint", &st,
				       "%s", big), 0);
	kt_get_req(s, 1, &r);
	body = kt_parse(r.body);
	assert_int_equal(strlen(kc_json_str(body, "note")), 1024);
	json_object_put(body);
	fs_req_free(&r);
	json_object_put(reg);

	/* a regarding object without a name is refused */
	reg = kt_parse("{\"metadata\":{}}");
	assert_int_equal(kc_event_emit(c, &src, reg, "Normal", "R", "A", &st, "x"), -EINVAL);
	json_object_put(reg);
	kc_client_free(c);
	kc_config_free(cfg);
	fs_stop(s);
}

/* ------------------------------------------------------------ leases */

struct lease_srv {
	pthread_mutex_t lock;
	json_object *lease; /* NULL: absent */
	int rv;
	int puts, posts;
	bool force_conflict;
};

static int h_lease(struct fake_server *s, int fd, const struct fs_req *r, void *arg)
{
	struct lease_srv *ls = arg;
	char rv[16];
	int rc;
	(void)s;

	pthread_mutex_lock(&ls->lock);
	if (strcmp(r->method, "GET") == 0) {
		rc = ls->lease ? fs_reply_json(fd, 200, json_object_to_json_string(ls->lease))
			       : fs_reply_json(fd, 404, "{\"kind\":\"Status\",\"reason\":\"NotFound\",\"code\":404}");
	} else if (strcmp(r->method, "POST") == 0) {
		ls->posts++;
		if (ls->lease) {
			rc = fs_reply_json(fd, 409, "{\"kind\":\"Status\",\"reason\":\"AlreadyExists\",\"code\":409}");
		} else {
			ls->lease = kt_parse(r->body);
			snprintf(rv, sizeof(rv), "%d", ++ls->rv);
			json_object_object_add(kc_json_get(ls->lease, "metadata"), "resourceVersion",
					       json_object_new_string(rv));
			rc = fs_reply_json(fd, 201, json_object_to_json_string(ls->lease));
		}
	} else if (strcmp(r->method, "PUT") == 0) {
		json_object *n = kt_parse(r->body);
		const char *want = kc_json_rv(n);

		ls->puts++;
		snprintf(rv, sizeof(rv), "%d", ls->rv);
		if (ls->force_conflict || !want || strcmp(want, rv) != 0) {
			json_object_put(n);
			rc = fs_reply_json(fd, 409, "{\"kind\":\"Status\",\"reason\":\"Conflict\",\"code\":409}");
		} else {
			json_object_put(ls->lease);
			ls->lease = n;
			snprintf(rv, sizeof(rv), "%d", ++ls->rv);
			json_object_object_add(kc_json_get(ls->lease, "metadata"), "resourceVersion",
					       json_object_new_string(rv));
			rc = fs_reply_json(fd, 200, json_object_to_json_string(ls->lease));
		}
	} else {
		rc = fs_reply_json(fd, 405, "{}");
	}
	pthread_mutex_unlock(&ls->lock);
	return rc ? -1 : 0;
}

static void test_lease(void **state)
{
	struct lease_srv ls = { .rv = 0 };
	struct fake_server *s = NULL;
	struct kc_config *cfg;
	struct kc_client *c = NULL;
	struct kc_status st;
	struct kc_lease l;
	bool leader = true;
	json_object *ann;
	const char *t;
	int puts_before;
	(void)state;

	pthread_mutex_init(&ls.lock, NULL);
	assert_int_equal(fs_start(h_lease, &ls, &s), 0);
	cfg = kt_config_for(s, "    token: t\n");
	assert_int_equal(kc_client_new(cfg, &c), 0);

	assert_int_equal(kc_lease_get(c, "ns1", "ctl", &l, &st), -ENOENT);
	kc_lease_cleanup(&l);
	/* free: acquire by create */
	assert_int_equal(kc_lease_try_acquire(c, "ns1", "ctl", "a", 15, &leader, &st), 0);
	assert_true(leader);
	assert_int_equal(ls.posts, 1);
	t = kc_json_str(ls.lease, "spec.renewTime");
	assert_non_null(t);
	assert_int_equal(strlen(t), 27);
	assert_string_equal(t + 19 + 7, "Z");
	assert_non_null(kc_json_str(ls.lease, "spec.acquireTime"));
	/* held by a, fresh: b does not get it and does not write */
	assert_int_equal(kc_lease_try_acquire(c, "ns1", "ctl", "b", 15, &leader, &st), 0);
	assert_false(leader);
	assert_int_equal(ls.puts, 0);
	/* read */
	assert_int_equal(kc_lease_get(c, "ns1", "ctl", &l, &st), 0);
	assert_string_equal(l.holder, "a");
	assert_int_equal(l.duration_seconds, 15);
	assert_true(l.renew_time_ms > kc_now_ms() - 10000 && l.renew_time_ms <= kc_now_ms() + 1000);
	assert_string_equal(l.resource_version, "1");
	kc_lease_cleanup(&l);
	/* a renews with annotations (PUT with the RV precondition) */
	ann = kt_parse("{\"checkpointing.dev/endpoint\":\"wss://10.0.0.5:8443\"}");
	assert_int_equal(kc_lease_renew(c, "ns1", "ctl", "a", 15, ann, &st), 0);
	json_object_put(ann);
	assert_int_equal(ls.puts, 1);
	assert_int_equal(kc_lease_get(c, "ns1", "ctl", &l, &st), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(l.annotations, "checkpointing.dev/endpoint")),
			    "wss://10.0.0.5:8443");
	assert_string_equal(l.resource_version, "2");
	kc_lease_cleanup(&l);
	/* a renews as leader */
	assert_int_equal(kc_lease_try_acquire(c, "ns1", "ctl", "a", 15, &leader, &st), 0);
	assert_true(leader);
	/* expired: b takes it over, transition counted */
	pthread_mutex_lock(&ls.lock);
	json_object_object_add(kc_json_get(ls.lease, "spec"), "renewTime",
			       json_object_new_string("2020-01-01T00:00:00.000000Z"));
	pthread_mutex_unlock(&ls.lock);
	assert_int_equal(kc_lease_try_acquire(c, "ns1", "ctl", "b", 15, &leader, &st), 0);
	assert_true(leader);
	assert_string_equal(kc_json_str(ls.lease, "spec.holderIdentity"), "b");
	assert_int_equal(json_object_get_int(kc_json_get(ls.lease, "spec.leaseTransitions")), 1);
	/* release: only the holder gives it back, and then anyone takes it at once */
	puts_before = ls.puts;
	assert_int_equal(kc_lease_release(c, "ns1", "ctl", "a", &st), 0);
	assert_int_equal(ls.puts, puts_before);
	assert_int_equal(kc_lease_release(c, "ns1", "ctl", "b", &st), 0);
	assert_int_equal(ls.puts, puts_before + 1);
	assert_string_equal(kc_json_str(ls.lease, "spec.holderIdentity"), "");
	assert_int_equal(json_object_get_int(kc_json_get(ls.lease, "spec.leaseDurationSeconds")), 1);
	assert_int_equal(kc_lease_try_acquire(c, "ns1", "ctl", "b", 15, &leader, &st), 0);
	assert_true(leader);
	/* lost race: conflict means "not leader", not an error */
	ls.force_conflict = true;
	assert_int_equal(kc_lease_try_acquire(c, "ns1", "ctl", "b", 15, &leader, &st), 0);
	assert_false(leader);
	assert_int_equal(kc_lease_renew(c, "ns1", "ctl", "b", 15, NULL, &st), -EAGAIN);
	assert_true(kc_is_conflict(&st));
	/* bad arguments */
	assert_int_equal(kc_lease_try_acquire(c, "ns1", "ctl", "", 15, &leader, &st), -EINVAL);
	assert_int_equal(kc_lease_renew(c, "ns1", "ctl", "b", 0, NULL, &st), -EINVAL);
	kc_lease_cleanup(NULL);

	kc_client_free(c);
	kc_config_free(cfg);
	fs_stop(s);
	json_object_put(ls.lease);
	pthread_mutex_destroy(&ls.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event),
		cmocka_unit_test(test_lease),
	};

	return cmocka_run_group_tests(tests, kt_setup, kt_teardown);
}
