/*
 * test_store.c - the compact cache (ctl_store) and the per-uid memory
 * (ctl_mem): records keep what the decisions read and drop the rest, the
 * pod -> CRs index follows puts, renames, terminal phases, deletes and
 * sweeps, and a terminal CR keeps no memory.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl_mem.h"
#include "ctl_store.h"
#include "kc.h"

static json_object *parse(const char *s)
{
	json_object *o = json_tokener_parse(s);

	assert_non_null(o);
	return o;
}

static struct ctl_obs *new_obs(void)
{
	struct ctl_obs *o = calloc(1, sizeof(*o));

	assert_non_null(o);
	return o;
}

/* ---------------------------------------------------------------- pods */

static const char POD[] =
	"{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"web\",\"uid\":\"u-pod\","
	"\"managedFields\":[{\"manager\":\"kubelet\",\"fieldsV1\":{\"f:status\":{}}}]},"
	"\"spec\":{\"nodeName\":\"n1\",\"containers\":[{\"name\":\"app\"},{\"name\":\"log\"}],"
	"\"initContainers\":[{\"name\":\"init\"},{\"name\":\"side\",\"restartPolicy\":\"Always\"}]},"
	"\"status\":{\"phase\":\"Running\"}}";

static void test_pod_records(void **state)
{
	struct ctl_store *s = NULL;
	struct ctl_obs *o = new_obs();
	json_object *p = parse(POD);
	(void)state;

	assert_int_equal(ctl_store_new(&s), 0);
	assert_int_equal(ctl_store_pod_put(s, p, 1), 0);
	json_object_put(p);
	assert_true(ctl_store_pod_obs(s, "ns1", "web", o));
	assert_true(o->pod_exists);
	assert_string_equal(o->pod_uid, "u-pod");
	assert_string_equal(o->pod_node, "n1");
	assert_string_equal(o->pod_phase, "Running");
	assert_false(o->pod_deleting);
	/* what ctl_obs_set_pod lists: containers, then native sidecars only */
	assert_int_equal(o->npod_containers, 3);
	assert_string_equal(o->pod_containers[0], "app");
	assert_string_equal(o->pod_containers[1], "log");
	assert_string_equal(o->pod_containers[2], "side");
	/* same namespace, other name; other namespace, same name */
	assert_false(ctl_store_pod_obs(s, "ns1", "web2", o));
	assert_false(o->pod_exists);
	assert_int_equal(o->npod_containers, 0);
	assert_false(ctl_store_pod_obs(s, "ns2", "web", o));
	/* an update replaces the record */
	p = parse("{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"web\",\"uid\":\"u-pod\","
		  "\"deletionTimestamp\":\"2026-01-01T00:00:00Z\"},\"spec\":{\"nodeName\":\"n1\"},"
		  "\"status\":{\"phase\":\"Succeeded\"}}");
	assert_int_equal(ctl_store_pod_put(s, p, 2), 0);
	json_object_put(p);
	assert_true(ctl_store_pod_obs(s, "ns1", "web", o));
	assert_true(o->pod_deleting);
	assert_string_equal(o->pod_phase, "Succeeded");
	assert_int_equal(o->npod_containers, 0);
	/* no name: refused */
	p = parse("{\"metadata\":{\"namespace\":\"ns1\"}}");
	assert_int_equal(ctl_store_pod_put(s, p, 2), -EINVAL);
	json_object_put(p);
	assert_int_equal(ctl_store_pod_count(s), 1);
	assert_int_equal(ctl_store_pod_delete(s, "ns1", "web"), 0);
	assert_int_equal(ctl_store_pod_delete(s, "ns1", "web"), -ENOENT);
	assert_int_equal(ctl_store_pod_count(s), 0);
	ctl_store_free(s);
	ctl_store_free(NULL);
	free(o);
}

struct gone_log {
	int n;
	char names[8][64];
};

static void on_gone(void *arg, const char *ns, const char *name, const char *uid, const char *pod)
{
	struct gone_log *g = arg;

	if (g->n < 8)
		snprintf(g->names[g->n++], sizeof(g->names[0]), "%s/%s uid=%s pod=%s", ns, name,
			 uid ? uid : "-", pod ? pod : "-");
}

static json_object *mkpod(const char *name)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"%s\"}}", name);
	return parse(buf);
}

/* many pods: shards grow; a sweep drops exactly those not seen in the epoch */
static void test_pod_sweep(void **state)
{
	struct ctl_store *s = NULL;
	struct gone_log g = { 0 };
	char name[32];
	(void)state;

	assert_int_equal(ctl_store_new(&s), 0);
	for (int i = 0; i < 2000; i++) {
		json_object *p;

		snprintf(name, sizeof(name), "p%d", i);
		p = mkpod(name);
		assert_int_equal(ctl_store_pod_put(s, p, 1), 0);
		json_object_put(p);
	}
	assert_int_equal(ctl_store_pod_count(s), 2000);
	for (int i = 0; i < 2000; i++) {
		json_object *p;

		if (i == 7)
			continue; /* vanished during the watch gap */
		snprintf(name, sizeof(name), "p%d", i);
		p = mkpod(name);
		assert_int_equal(ctl_store_pod_put(s, p, 2), 0);
		json_object_put(p);
	}
	ctl_store_pod_sweep(s, 2, on_gone, &g);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.names[0], "ns1/p7 uid=- pod=-");
	assert_int_equal(ctl_store_pod_count(s), 1999);
	ctl_store_free(s);
}

/* ---------------------------------------------------------------- PodCheckpoints */

static json_object *mkpcp(const char *name, const char *pod, const char *phase, const char *node)
{
	char buf[2048];

	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"checkpointing.dev/v1alpha1\",\"kind\":\"PodCheckpoint\","
		 "\"metadata\":{\"namespace\":\"ns1\",\"name\":\"%s\",\"uid\":\"u-%s\",\"resourceVersion\":\"7\","
		 "\"creationTimestamp\":\"2026-01-01T00:00:0%zuZ\",\"finalizers\":[\"checkpointing.dev/artifact\"],"
		 "\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":\"{big}\"},"
		 "\"managedFields\":[{\"manager\":\"kubectl\",\"fieldsV1\":{\"f:spec\":{}}}]},"
		 "\"spec\":{\"podName\":\"%s\",\"containers\":[\"app\"],\"ttlSecondsAfterFinished\":60},"
		 "\"status\":{\"phase\":\"%s\",\"nodeName\":\"%s\",\"message\":\"m\",\"podUID\":\"pu\","
		 "\"completionTime\":\"2026-01-01T00:02:00Z\","
		 "\"artifact\":{\"path\":\"/x/a.tar\",\"sha256\":\"ab\"},\"conditions\":["
		 "{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"Done\",\"message\":\"long\","
		 "\"lastTransitionTime\":\"2026-01-01T00:01:00Z\"},"
		 "{\"type\":\"Reconciling\",\"status\":\"False\",\"reason\":\"Done\",\"message\":\"long\"}]}}",
		 name, name, strlen(name) % 10, pod, phase, node);
	return parse(buf);
}

static void put(struct ctl_store *s, json_object *p, uint64_t epoch, struct ctl_store_change *chg)
{
	assert_int_equal(ctl_store_pcp_put(s, p, epoch, chg), 0);
	json_object_put(p);
}

struct keys {
	int n;
	char k[16][64];
};

static void add_key(void *arg, const char *key)
{
	struct keys *ks = arg;

	if (ks->n < 16)
		snprintf(ks->k[ks->n++], sizeof(ks->k[0]), "%s", key);
}

static bool has_key(const struct keys *ks, const char *key)
{
	for (int i = 0; i < ks->n; i++)
		if (strcmp(ks->k[i], key) == 0)
			return true;
	return false;
}

static void test_pcp_records(void **state)
{
	struct ctl_store *s = NULL;
	struct ctl_store_change chg;
	struct ctl_obs *o = new_obs();
	json_object *g;
	(void)state;

	assert_int_equal(ctl_store_new(&s), 0);
	put(s, mkpcp("cp1", "web", "Pending", ""), 1, &chg);
	assert_false(chg.terminal);
	assert_string_equal(chg.uid, "u-cp1");
	assert_string_equal(chg.pod, "web");
	g = ctl_store_pcp_get(s, "ns1", "cp1");
	assert_non_null(g);
	/* what no decision reads is gone, the rest is the object */
	assert_null(kc_json_get(g, "metadata.managedFields"));
	assert_null(kc_json_get(g, "metadata.annotations"));
	assert_int_equal(json_object_array_length(kc_json_get(g, "status.conditions")), 2);
	assert_int_equal(ctl_obs_from_pcp(o, g), 0);
	assert_string_equal(o->uid, "u-cp1");
	assert_string_equal(o->pod_name, "web");
	assert_true(o->has_finalizer);
	assert_string_equal(o->ready_reason, "Done");
	assert_string_equal(kc_json_rv(g), "7");
	json_object_put(g);
	assert_null(ctl_store_pcp_get(s, "ns1", "nope"));
	assert_null(ctl_store_pcp_get(s, "ns2", "cp1"));

	/* terminal: only Ready is kept, without its message; TTL still reads it */
	put(s, mkpcp("cp1", "web", "Succeeded", "n1"), 1, &chg);
	assert_true(chg.terminal);
	g = ctl_store_pcp_get(s, "ns1", "cp1");
	assert_int_equal(json_object_array_length(kc_json_get(g, "status.conditions")), 1);
	assert_int_equal(ctl_obs_from_pcp(o, g), 0);
	assert_int_equal(o->phase, CTL_PHASE_SUCCEEDED);
	assert_string_equal(o->ready_status, "True");
	assert_true(o->ready_transition_ms > 0);
	assert_string_equal(o->st_node, "n1");
	assert_string_equal(o->artifact_path, "/x/a.tar");
	assert_true(o->completion_ms > 0);
	assert_true(o->has_ttl);
	assert_int_equal(o->ttl_seconds, 60);
	assert_string_equal(o->st_message, ""); /* not read once terminal */
	assert_null(kc_json_get(g, "status.podUID"));
	assert_null(kc_json_get(g, "status.artifact.sha256"));
	/* what the Event's involvedObject needs is put back */
	assert_string_equal(kc_json_str(g, "apiVersion"), "checkpointing.dev/v1alpha1");
	assert_string_equal(kc_json_str(g, "kind"), "PodCheckpoint");
	json_object_put(g);
	assert_true(ctl_store_pcp_bytes(s) > 0);
	assert_int_equal(ctl_store_pcp_delete(s, "ns1", "cp1", &chg), 0);
	assert_string_equal(chg.uid, "u-cp1");
	assert_int_equal(ctl_store_pcp_delete(s, "ns1", "cp1", &chg), -ENOENT);
	assert_int_equal(ctl_store_pcp_bytes(s), 0);
	assert_int_equal(ctl_store_pcp_count(s), 0);
	ctl_store_free(s);
	free(o);
}

static void test_index(void **state)
{
	struct ctl_store *s = NULL;
	struct ctl_other others[4];
	char names[4][CTL_NAME_MAX];
	struct keys ks = { 0 };
	struct gone_log gl = { 0 };
	(void)state;

	assert_int_equal(ctl_store_new(&s), 0);
	put(s, mkpcp("a", "web", "Pending", ""), 1, NULL);
	put(s, mkpcp("bb", "web", "Pending", "n1"), 1, NULL);
	put(s, mkpcp("ccc", "web", "Succeeded", "n1"), 1, NULL);
	put(s, mkpcp("d", "db", "Pending", ""), 1, NULL);

	/* a pod event wakes the non-terminal CRs of that pod only */
	assert_int_equal(ctl_store_wake_pod(s, "ns1", "web", NULL, add_key, &ks), 2);
	assert_true(has_key(&ks, "ns1/a"));
	assert_true(has_key(&ks, "ns1/bb"));
	ks.n = 0;
	assert_int_equal(ctl_store_wake_pod(s, "ns1", "web", "a", add_key, &ks), 1);
	assert_string_equal(ks.k[0], "ns1/bb");
	ks.n = 0;
	assert_int_equal(ctl_store_wake_pod(s, "ns2", "web", NULL, add_key, &ks), 0);
	assert_int_equal(ctl_store_wake_pod(s, "ns1", "nothing", NULL, add_key, &ks), 0);

	/* siblings for the serialisation rule: non-terminal, not self */
	assert_int_equal(ctl_store_siblings(s, "ns1", "web", "a", others, names, 4), 1);
	assert_string_equal(others[0].name, "bb");
	assert_true(others[0].dispatched);
	assert_false(others[0].terminal);
	assert_true(others[0].creation_ms > 0);
	assert_int_equal(ctl_store_siblings(s, "ns1", "web", "zz", others, names, 1), 1); /* cap */

	/* bb becomes terminal: no longer a sibling */
	put(s, mkpcp("bb", "web", "Failed", "n1"), 1, NULL);
	assert_int_equal(ctl_store_siblings(s, "ns1", "web", "a", others, names, 4), 0);
	/* a moves to another pod (an edit): the index follows */
	put(s, mkpcp("a", "db", "Pending", ""), 1, NULL);
	assert_int_equal(ctl_store_wake_pod(s, "ns1", "web", NULL, add_key, &ks), 0);
	assert_int_equal(ctl_store_siblings(s, "ns1", "db", "d", others, names, 4), 1);
	assert_string_equal(others[0].name, "a");

	/* relist (epoch 2) without d: swept, with its uid and pod, and gone from the index */
	put(s, mkpcp("a", "db", "Pending", ""), 2, NULL);
	put(s, mkpcp("bb", "web", "Failed", "n1"), 2, NULL);
	put(s, mkpcp("ccc", "web", "Succeeded", "n1"), 2, NULL);
	ctl_store_pcp_sweep(s, 2, on_gone, &gl);
	assert_int_equal(gl.n, 1);
	assert_string_equal(gl.names[0], "ns1/d uid=u-d pod=db");
	assert_int_equal(ctl_store_siblings(s, "ns1", "db", NULL, others, names, 4), 1);
	assert_int_equal(ctl_store_pcp_count(s), 3);
	ks.n = 0;
	ctl_store_pcp_foreach_key(s, add_key, &ks);
	assert_int_equal(ks.n, 3);
	assert_true(has_key(&ks, "ns1/ccc"));
	/* a delete takes it out of the index */
	assert_int_equal(ctl_store_pcp_delete(s, "ns1", "a", NULL), 0);
	assert_int_equal(ctl_store_siblings(s, "ns1", "db", NULL, others, names, 4), 0);
	ctl_store_free(s);
}

/* ---------------------------------------------------------------- per-uid memory */

static void test_mem(void **state)
{
	struct ctl_mem_table *t = NULL;
	struct ctl_mem_view v;
	char uid[32];
	(void)state;

	assert_int_equal(ctl_mem_table_new(&t), 0);
	/* without create, nothing is made (a terminal CR) */
	assert_int_equal(ctl_mem_snapshot(t, "u1", 100, false, &v), 0);
	assert_int_equal(v.first_seen_ms, 0);
	assert_int_equal(ctl_mem_count(t), 0);
	/* first sight */
	assert_int_equal(ctl_mem_snapshot(t, "u1", 100, true, &v), 0);
	assert_int_equal(v.first_seen_ms, 100);
	assert_int_equal(ctl_mem_snapshot(t, "u1", 200, true, &v), 0);
	assert_int_equal(v.first_seen_ms, 100); /* kept */
	/* a failed call keeps the error, a later answer clears it */
	ctl_mem_record_call(t, "u1", 300, -EHOSTUNREACH, CTL_ANS_NONE, NULL, NULL, "refused", true,
			    "PEM", 2);
	assert_int_equal(ctl_mem_snapshot(t, "u1", 300, true, &v), 0);
	assert_string_equal(v.last_error, "refused");
	assert_int_equal(v.ncontainers, 2);
	assert_string_equal(v.cert_pem, "PEM");
	ctl_mem_view_cleanup(&v);
	ctl_mem_record_call(t, "u1", 400, 0, CTL_ANS_BUSY, "Busy", "queue full", "", true, NULL, 0);
	ctl_mem_record_call(t, "u1", 500, 0, CTL_ANS_BUSY, "Busy", "queue full", "", true, NULL, 0);
	ctl_mem_record_call(t, "u1", 600, 0, CTL_ANS_FAILED, "Failed", "boom", "", true, NULL, 0);
	ctl_mem_mark_queued_event(t, "u1");
	ctl_mem_delete_result(t, "u1", 700, false, "no helper");
	assert_int_equal(ctl_mem_snapshot(t, "u1", 800, true, &v), 0);
	assert_int_equal(v.answer, CTL_ANS_FAILED);
	assert_int_equal(v.answer_failed_since_ms, 600);
	assert_int_equal(v.last_contact_ms, 600);
	assert_int_equal(v.busy_count, 0);
	assert_string_equal(v.answer_message, "boom");
	assert_string_equal(v.last_error, "no helper");
	assert_int_equal(v.delete_failing_since_ms, 700);
	assert_true(v.queued_event_sent);
	assert_string_equal(v.cert_pem, "PEM");
	ctl_mem_view_cleanup(&v);
	/* many uids: the table grows, each lookup finds its own */
	for (int i = 0; i < 5000; i++) {
		snprintf(uid, sizeof(uid), "uid-%d", i);
		assert_int_equal(ctl_mem_snapshot(t, uid, i, true, &v), 0);
	}
	assert_int_equal(ctl_mem_count(t), 5001);
	assert_int_equal(ctl_mem_snapshot(t, "uid-4321", 0, false, &v), 0);
	assert_int_equal(v.first_seen_ms, 4321);
	for (int i = 0; i < 5000; i++) {
		snprintf(uid, sizeof(uid), "uid-%d", i);
		ctl_mem_forget(t, uid);
	}
	ctl_mem_forget(t, "u1");
	ctl_mem_forget(t, "u1");
	ctl_mem_forget(t, NULL);
	assert_int_equal(ctl_mem_count(t), 0);
	/* calls on a forgotten uid change nothing and create nothing */
	ctl_mem_record_call(t, "u1", 1, 0, CTL_ANS_RUNNING, "", "", "", true, NULL, 1);
	assert_int_equal(ctl_mem_count(t), 0);
	ctl_mem_table_free(t);
	ctl_mem_table_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pod_records),
		cmocka_unit_test(test_pod_sweep),
		cmocka_unit_test(test_pcp_records),
		cmocka_unit_test(test_index),
		cmocka_unit_test(test_mem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
