/* lib/status: phases, the terminal guard, the condition merge, patch builders. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kc.h"
#include "pst.h"

static json_object *cr_with(const char *phase, const char *node, const char *pod_uid)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "{\"metadata\":{\"name\":\"cp\",\"namespace\":\"ns\",\"uid\":\"u1\",\"generation\":2,"
		 "\"resourceVersion\":\"9\"},\"status\":{%s%s%s%s%s%s%s%s%s"
		 "\"conditions\":[{\"type\":\"Custom\",\"status\":\"True\",\"reason\":\"X\",\"message\":\"\","
		 "\"lastTransitionTime\":\"2020-01-01T00:00:00Z\"},"
		 "{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"Pending\",\"message\":\"m\","
		 "\"lastTransitionTime\":\"2021-01-01T00:00:00Z\"},"
		 "{\"type\":\"Stalled\",\"status\":\"True\",\"reason\":\"Old\",\"message\":\"\","
		 "\"lastTransitionTime\":\"2021-01-01T00:00:00Z\"}]}}",
		 phase ? "\"phase\":\"" : "", phase ? phase : "", phase ? "\"," : "",
		 node ? "\"nodeName\":\"" : "", node ? node : "", node ? "\"," : "",
		 pod_uid ? "\"podUID\":\"" : "", pod_uid ? pod_uid : "", pod_uid ? "\"," : "");
	return json_tokener_parse(text);
}

static void test_phases(void **state)
{
	enum pst_phase p;

	(void)state;
	for (int i = PST_NONE; i <= PST_FAILED; i++) {
		assert_int_equal(pst_phase_parse(pst_phase_name((enum pst_phase)i), &p), 0);
		assert_int_equal((int)p, i);
	}
	assert_int_equal(pst_phase_parse(NULL, &p), 0);
	assert_int_equal(p, PST_NONE);
	assert_int_equal(pst_phase_parse("Done", &p), -EINVAL);
	assert_true(pst_terminal(PST_SUCCEEDED));
	assert_true(pst_terminal(PST_FAILED));
	assert_false(pst_terminal(PST_RUNNING));
	assert_false(pst_terminal(PST_PENDING));
}

static void test_guard(void **state)
{
	struct pst_expect helper = { .uid = "u1", .node = "node-a", .pod_uid = "pu" };
	struct pst_expect ctl = { .uid = "u1" };
	char why[256];
	json_object *cr;

	(void)state;
	assert_int_equal(pst_guard(NULL, &ctl, why, sizeof(why)), PST_GONE);
	cr = cr_with("Running", "node-a", "pu");
	assert_int_equal(pst_guard(cr, &helper, why, sizeof(why)), PST_WRITABLE);
	assert_int_equal(pst_guard(cr, &ctl, why, sizeof(why)), PST_WRITABLE);
	helper.uid = "u2"; /* deleted and re-created with the same name */
	assert_int_equal(pst_guard(cr, &helper, why, sizeof(why)), PST_GONE);
	assert_non_null(strstr(why, "replaced"));
	helper.uid = "u1";
	helper.node = "node-b"; /* a job sent to another node's helper */
	assert_int_equal(pst_guard(cr, &helper, why, sizeof(why)), PST_NOT_OURS);
	assert_non_null(strstr(why, "node-a"));
	helper.node = "node-a";
	helper.pod_uid = "other";
	assert_int_equal(pst_guard(cr, &helper, why, sizeof(why)), PST_NOT_OURS);
	json_object_put(cr);

	/* terminal beats everything, for every writer */
	for (int i = 0; i < 2; i++) {
		cr = cr_with(i ? "Failed" : "Succeeded", "node-a", "pu");
		helper.pod_uid = "pu";
		assert_int_equal(pst_guard(cr, &helper, why, sizeof(why)), PST_IS_TERMINAL);
		assert_int_equal(pst_guard(cr, &ctl, why, sizeof(why)), PST_IS_TERMINAL);
		assert_non_null(strstr(why, "already"));
		json_object_put(cr);
	}
	/* not dispatched: no nodeName */
	cr = cr_with("Pending", NULL, NULL);
	assert_int_equal(pst_guard(cr, &helper, why, sizeof(why)), PST_NOT_OURS);
	assert_int_equal(pst_guard(cr, &ctl, why, sizeof(why)), PST_WRITABLE);
	json_object_put(cr);
}

static void test_merge(void **state)
{
	json_object *cr = cr_with("Pending", NULL, NULL), *arr = NULL, *c;
	const struct pst_cond set[] = {
		{ "Ready", "False", "CheckpointInProgress", "going" },
		{ "Stalled", NULL, NULL, NULL }, /* dropped */
		{ "New", "True", "Yes", "" },
	};

	(void)state;
	assert_int_equal(pst_conditions_merge(kc_json_get(cr, "status.conditions"), set, 3, 2,
					      "2024-01-01T00:00:00Z", &arr), 0);
	assert_int_equal(json_object_array_length(arr), 3); /* Custom, Ready, New */
	c = json_object_array_get_idx(arr, 0);
	assert_string_equal(kc_json_str(c, "type"), "Custom"); /* order kept, untouched */
	assert_string_equal(kc_json_str(c, "lastTransitionTime"), "2020-01-01T00:00:00Z");
	c = json_object_array_get_idx(arr, 1);
	assert_string_equal(kc_json_str(c, "type"), "Ready");
	assert_string_equal(kc_json_str(c, "reason"), "CheckpointInProgress");
	/* False -> False: the transition time is kept */
	assert_string_equal(kc_json_str(c, "lastTransitionTime"), "2021-01-01T00:00:00Z");
	assert_int_equal(kc_json_int64(c, "observedGeneration", 0, NULL), 2);
	c = json_object_array_get_idx(arr, 2);
	assert_string_equal(kc_json_str(c, "type"), "New");
	assert_string_equal(kc_json_str(c, "lastTransitionTime"), "2024-01-01T00:00:00Z");
	json_object_put(arr);
	/* from nothing */
	assert_int_equal(pst_conditions_merge(NULL, set, 3, 7, "2024-05-05T05:05:05Z", &arr), 0);
	assert_int_equal(json_object_array_length(arr), 2);
	json_object_put(arr);
	json_object_put(cr);
}

static void test_patches(void **state)
{
	json_object *cr = cr_with("Running", "node-a", "pu"), *p = NULL, *st = NULL;

	(void)state;
	assert_int_equal(pst_patch_failed(cr, "Timeout", "too slow", "2024-01-01T00:00:00Z", &p, &st), 0);
	assert_string_equal(kc_json_str(p, "metadata.resourceVersion"), "9");
	assert_string_equal(kc_json_str(p, "status.phase"), "Failed");
	assert_string_equal(kc_json_str(p, "status.completionTime"), "2024-01-01T00:00:00Z");
	assert_int_equal(kc_json_int64(p, "status.observedGeneration", 0, NULL), 2);
	json_object_put(p);
	assert_int_equal(pst_patch_pending(cr, "Pending", "queued", "2024-01-01T00:00:00Z", &p, &st), 0);
	assert_string_equal(kc_json_str(p, "status.phase"), "Pending");
	/* Custom kept, Ready replaced, Stalled dropped, Reconciling=True (kstatus InProgress) */
	assert_int_equal(json_object_array_length(kc_json_get(p, "status.conditions")), 3);
	assert_string_equal(kc_json_str(json_object_array_get_idx(kc_json_get(p, "status.conditions"), 2),
					"type"), "Reconciling");
	assert_string_equal(kc_json_str(json_object_array_get_idx(kc_json_get(p, "status.conditions"), 2),
					"status"), "True");
	json_object_put(p);
	assert_int_equal(pst_patch_succeeded(cr, "done", NULL, "2024-01-02T00:00:00Z", &p, &st), 0);
	assert_string_equal(kc_json_str(p, "status.completionTime"), "2024-01-02T00:00:00Z");
	/* terminal: Reconciling=False */
	{
		json_object *c = kc_json_get(p, "status.conditions");
		bool seen = false;

		for (size_t i = 0; i < json_object_array_length(c); i++) {
			json_object *x = json_object_array_get_idx(c, i);

			if (strcmp(kc_json_str(x, "type"), "Reconciling") == 0) {
				assert_string_equal(kc_json_str(x, "status"), "False");
				seen = true;
			}
		}
		assert_true(seen);
	}
	json_object_put(p);
	json_object_put(cr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_phases),
		cmocka_unit_test(test_guard),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_patches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
