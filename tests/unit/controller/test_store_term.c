/*
 * test_store_term.c - the packed record of a terminal PodCheckpoint
 * (ctl_store_pack.c): what ctl_store_pcp_get hands back decides, patches the
 * finalizer and names the Event exactly as the object it was made from; the
 * uid and artifact path packing falls back to text; a CR that does not pack
 * stays text; interned strings go when their last record goes.
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

#include "ctl_store.h"
#include "ctl_store_int.h"
#include "kc.h"

static json_object *parse(const char *s)
{
	json_object *o = json_tokener_parse(s);

	assert_non_null(o);
	return o;
}

#define UID "0c5f9d3e-1a2b-4000-8000-00000000002a"

/* Terminal CRs of every shape the packing distinguishes. */
static const char *const CRS[] = {
	/* the helper's artifact layout, a canonical uid, our finalizer, a TTL */
	"{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"cp1\",\"uid\":\"" UID "\",\"resourceVersion\":\"4242\","
	"\"generation\":1,\"finalizers\":[\"checkpointing.dev/artifact\"],\"managedFields\":[{}]},"
	"\"spec\":{\"podName\":\"web\",\"ttlSecondsAfterFinished\":600,\"deletionPolicy\":\"Delete\"},"
	"\"status\":{\"phase\":\"Succeeded\",\"nodeName\":\"n1\",\"message\":\"m\",\"podUID\":\"pu\","
	"\"completionTime\":\"2026-12-01T10:00:04Z\",\"artifact\":{\"path\":"
	"\"/var/lib/podcheckpoint/artifacts/ns1/cp1-" UID ".tar.age\",\"sha256\":\"ab\"},"
	"\"checkpointLocation\":{\"type\":\"NodeLocal\",\"nodeLocal\":{\"nodeName\":\"n1\",\"path\":\"/other\"}},"
	"\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"Succeeded\",\"message\":\"x\","
	"\"lastTransitionTime\":\"2026-12-01T10:00:04Z\"},{\"type\":\"Stalled\",\"status\":\"False\"}]}}",
	/* Failed before dispatch: no node, no artifact, no finalizer, no TTL */
	"{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"cp2\",\"uid\":\"" UID "\",\"resourceVersion\":\"9\"},"
	"\"spec\":{\"podName\":\"gone\"},"
	"\"status\":{\"phase\":\"Failed\",\"message\":\"no pod\",\"conditions\":[{\"type\":\"Ready\","
	"\"status\":\"False\",\"reason\":\"PodNotFound\",\"lastTransitionTime\":\"2026-12-01T10:00:05.250Z\"}]}}",
	/* being deleted, others' finalizers around ours, a uid and a path of other shapes */
	"{\"metadata\":{\"namespace\":\"ns2\",\"name\":\"cp3\",\"uid\":\"u-3\",\"resourceVersion\":\"77\","
	"\"deletionTimestamp\":\"2026-12-01T11:00:00Z\","
	"\"finalizers\":[\"example.com/a\",\"checkpointing.dev/artifact\",\"example.com/b\"]},"
	"\"spec\":{\"podName\":\"db\",\"ttlSecondsAfterFinished\":0},"
	"\"status\":{\"phase\":\"Succeeded\",\"nodeName\":\"n2\",\"completionTime\":\"2026-12-01T10:00:04.5Z\","
	"\"checkpointLocation\":{\"nodeLocal\":{\"path\":\"/var/lib/kubelet/checkpoints/c.tar\"}},"
	"\"conditions\":[{\"type\":\"Ready\",\"status\":\"Unknown\"}]}}",
	/* an upper-case uid (not canonical), a path naming another CR, a negative TTL */
	"{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"cp4\",\"uid\":\"0C5F9D3E-1A2B-4000-8000-00000000002A\","
	"\"resourceVersion\":\"5\",\"finalizers\":[\"example.com/only\"]},"
	"\"spec\":{\"podName\":\"web\",\"ttlSecondsAfterFinished\":-1},"
	"\"status\":{\"phase\":\"Failed\",\"nodeName\":\"n1\","
	"\"artifact\":{\"path\":\"/var/lib/podcheckpoint/artifacts/ns1/cp1-" UID ".tar\"}}}",
};

static void assert_same_obs(const struct ctl_obs *a, const struct ctl_obs *b)
{
	assert_string_equal(a->ns, b->ns);
	assert_string_equal(a->name, b->name);
	assert_string_equal(a->uid, b->uid);
	assert_string_equal(a->pod_name, b->pod_name);
	assert_int_equal(a->phase, b->phase);
	assert_string_equal(a->st_node, b->st_node);
	assert_int_equal(a->completion_ms, b->completion_ms);
	assert_string_equal(a->ready_status, b->ready_status);
	assert_string_equal(a->ready_reason, b->ready_reason);
	assert_int_equal(a->ready_transition_ms, b->ready_transition_ms);
	assert_string_equal(a->artifact_path, b->artifact_path);
	assert_int_equal(a->has_finalizer, b->has_finalizer);
	assert_int_equal(a->deleting, b->deleting);
	assert_int_equal(a->deletion_ms, b->deletion_ms);
	assert_int_equal(a->policy_delete, b->policy_delete);
	assert_int_equal(a->has_ttl, b->has_ttl);
	assert_int_equal(a->ttl_seconds, b->ttl_seconds);
}

static void assert_same_json(json_object *a, json_object *b)
{
	assert_string_equal(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
			    json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN));
}

static void test_term_same_decisions(void **state)
{
	const struct ctl_policy pol = { .helper_wait_seconds = 60, .job_margin_seconds = 60,
					.poll_seconds = 5, .queue_wait_seconds = 600 };
	const int64_t nows[] = { 0, 1764583205000, 1764583804000, 1764583805000, 1764590000000 };
	struct ctl_obs *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct ctl_decision da, db;
	struct ctl_store *s = NULL;
	(void)state;

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(ctl_store_new(&s), 0);
	for (size_t i = 0; i < sizeof(CRS) / sizeof(CRS[0]); i++) {
		json_object *orig = parse(CRS[i]), *put = parse(CRS[i]), *got, *pa, *pb;
		struct ctl_store_change chg;

		assert_int_equal(ctl_store_pcp_put(s, put, 1, &chg), 0);
		json_object_put(put);
		assert_true(chg.terminal);
		assert_string_equal(chg.uid, kc_json_str(orig, "metadata.uid"));
		assert_string_equal(chg.pod, kc_json_str(orig, "spec.podName"));
		got = ctl_store_pcp_get(s, kc_json_str(orig, "metadata.namespace"),
					kc_json_str(orig, "metadata.name"));
		assert_non_null(got);
		assert_int_equal(ctl_obs_from_pcp(a, orig), 0);
		assert_int_equal(ctl_obs_from_pcp(b, got), 0);
		assert_same_obs(a, b);
		/* the same decision at every time around the TTL, deleting or not */
		for (size_t j = 0; j < sizeof(nows) / sizeof(nows[0]); j++) {
			a->now_ms = b->now_ms = nows[j];
			ctl_decide(&pol, a, &da);
			ctl_decide(&pol, b, &db);
			assert_int_equal(da.actions, db.actions);
			assert_int_equal(da.requeue_ms, db.requeue_ms);
			assert_string_equal(da.why, db.why);
			assert_false(db.write_status); /* terminal is final */
		}
		/* the finalizer patches (others' finalizers, in order) and the Event's object */
		assert_int_equal(ctl_finalizer_patch(orig, false, &pa), 0);
		assert_int_equal(ctl_finalizer_patch(got, false, &pb), 0);
		assert_same_json(pa, pb);
		json_object_put(pa);
		json_object_put(pb);
		assert_int_equal(ctl_finalizer_patch(orig, true, &pa), 0);
		assert_int_equal(ctl_finalizer_patch(got, true, &pb), 0);
		assert_same_json(pa, pb);
		json_object_put(pa);
		json_object_put(pb);
		assert_string_equal(kc_json_str(got, "kind"), "PodCheckpoint");
		assert_string_equal(kc_json_str(got, "apiVersion"), "checkpointing.dev/v1alpha1");
		assert_string_equal(kc_json_str(got, "metadata.resourceVersion"),
				    kc_json_str(orig, "metadata.resourceVersion"));
		/* what no terminal decision reads is not kept */
		assert_null(kc_json_get(got, "status.message"));
		assert_null(kc_json_get(got, "status.podUID"));
		assert_null(kc_json_get(got, "metadata.managedFields"));
		json_object_put(got);
		json_object_put(orig);
	}
	ctl_store_free(s);
	free(a);
	free(b);
}

struct gone {
	int n;
	char what[4][128];
};

static void on_gone(void *arg, const char *ns, const char *name, const char *uid, const char *pod)
{
	struct gone *g = arg;

	if (g->n < 4)
		snprintf(g->what[g->n++], sizeof(g->what[0]), "%s/%s %s %s", ns, name, uid, pod);
}

static void count_key(void *arg, const char *key)
{
	(void)key;
	(*(int *)arg)++;
}

/* A terminal CR leaves the pod -> CRs index; a sweep still names its uid and pod. */
static void test_term_index_and_sweep(void **state)
{
	struct ctl_store *s = NULL;
	struct ctl_other others[2];
	char names[2][CTL_NAME_MAX];
	struct gone g = { 0 };
	struct ctl_store_change chg;
	json_object *p;
	size_t text;
	int woken = 0;
	(void)state;

	assert_int_equal(ctl_store_new(&s), 0);
	p = parse("{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"cp1\",\"uid\":\"" UID "\"},"
		  "\"spec\":{\"podName\":\"web\"},\"status\":{\"phase\":\"Pending\",\"nodeName\":\"n1\"}}");
	assert_int_equal(ctl_store_pcp_put(s, p, 1, NULL), 0);
	json_object_put(p);
	assert_int_equal(ctl_store_siblings(s, "ns1", "web", NULL, others, names, 2), 1);
	/* turning terminal gives up most of the text */
	text = ctl_store_pcp_bytes(s);
	p = parse(CRS[0]);
	assert_int_equal(ctl_store_pcp_put(s, p, 1, &chg), 0);
	json_object_put(p);
	assert_true(chg.terminal);
	assert_true(ctl_store_pcp_bytes(s) < text);
	text = ctl_store_pcp_bytes(s);
	p = parse(CRS[0]);
	assert_int_equal(ctl_store_pcp_put(s, p, 1, &chg), 0);
	json_object_put(p);
	assert_int_equal(ctl_store_pcp_bytes(s), text);
	assert_int_equal(ctl_store_siblings(s, "ns1", "web", NULL, others, names, 2), 0);
	assert_int_equal(ctl_store_wake_pod(s, "ns1", "web", NULL, count_key, &woken), 0);
	assert_int_equal(ctl_smap_len(&s->idx), 0);
	p = parse(CRS[1]);
	assert_int_equal(ctl_store_pcp_put(s, p, 1, NULL), 0);
	json_object_put(p);
	text = ctl_store_pcp_bytes(s);
	assert_int_equal(ctl_store_pcp_delete(s, "ns1", "cp2", &chg), 0);
	assert_true(ctl_store_pcp_bytes(s) < text);
	ctl_store_pcp_sweep(s, 2, on_gone, &g);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.what[0], "ns1/cp1 " UID " web");
	assert_int_equal(ctl_store_pcp_bytes(s), 0);
	ctl_store_free(s);
}

/* A CR the packed form cannot hold (255+ finalizers) is kept as text, whole. */
static void test_term_too_big_stays_text(void **state)
{
	struct ctl_store *s = NULL;
	struct ctl_store_change chg;
	json_object *p = parse(CRS[0]), *fins = kc_json_get(p, "metadata.finalizers"), *got;
	char f[32];
	(void)state;

	for (int i = 0; i < 300; i++) {
		snprintf(f, sizeof(f), "example.com/f%d", i);
		assert_int_equal(kc_json_append(fins, json_object_new_string(f)), 0);
	}
	assert_int_equal(ctl_store_new(&s), 0);
	assert_int_equal(ctl_store_pcp_put(s, p, 1, &chg), 0);
	json_object_put(p);
	assert_true(chg.terminal);
	assert_string_equal(chg.uid, UID);
	got = ctl_store_pcp_get(s, "ns1", "cp1");
	assert_non_null(got);
	assert_int_equal(json_object_array_length(kc_json_get(got, "metadata.finalizers")), 301);
	assert_int_equal(ctl_smap_len(&s->idx), 0);
	json_object_put(got);
	ctl_store_free(s);
}

/* Node names, phases and artifact directories are kept once, and go with their last record. */
static void test_intern_released(void **state)
{
	struct ctl_store *s = NULL;
	struct ctl_obs *o = calloc(1, sizeof(*o));
	char buf[512], name[32];
	(void)state;

	assert_non_null(o);
	assert_int_equal(ctl_store_new(&s), 0);
	for (int i = 0; i < 100; i++) {
		json_object *p;

		snprintf(buf, sizeof(buf),
			 "{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"p%d\",\"uid\":\"" UID "\"},"
			 "\"spec\":{\"nodeName\":\"node-%d\",\"containers\":[{\"name\":\"app\"}]},"
			 "\"status\":{\"phase\":\"Running\"}}", i, i % 4);
		p = parse(buf);
		assert_int_equal(ctl_store_pod_put(s, p, 1), 0);
		json_object_put(p);
	}
	for (int i = 0; i < 100; i++) {
		json_object *p = parse(CRS[0]);

		snprintf(name, sizeof(name), "cp%d", i);
		assert_int_equal(kc_json_set_str(kc_json_get(p, "metadata"), "name", name), 0);
		assert_int_equal(ctl_store_pcp_put(s, p, 1, NULL), 0);
		json_object_put(p);
	}
	/* node-0..3, Running, n1, the artifact directory */
	assert_int_equal(ctl_intern_len(&s->strs), 7);
	assert_true(ctl_store_pod_obs(s, "ns1", "p5", o));
	assert_string_equal(o->pod_node, "node-1");
	assert_string_equal(o->pod_phase, "Running");
	assert_string_equal(o->pod_uid, UID);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		assert_int_equal(ctl_store_pod_delete(s, "ns1", name), 0);
	}
	assert_int_equal(ctl_intern_len(&s->strs), 2);
	ctl_store_pcp_sweep(s, 2, NULL, NULL);
	assert_int_equal(ctl_intern_len(&s->strs), 0);
	ctl_store_free(s);
	free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_term_same_decisions),
		cmocka_unit_test(test_term_index_and_sweep),
		cmocka_unit_test(test_term_too_big_stays_text),
		cmocka_unit_test(test_intern_released),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
