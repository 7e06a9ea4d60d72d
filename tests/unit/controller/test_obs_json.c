/*
 * test_obs_json.c - the JSON glue of ctl_decide(): the observation from
 * the CR, the status and finalizer patches, time and phase parsing.
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

#include "ctl_reconcile.h"
#include "kc.h"
#include "obs_fixture.h"

/* ---------------------------------------------------------------- JSON glue */

static json_object *parse(const char *s)
{
	json_object *j = json_tokener_parse(s);

	assert_non_null(j);
	return j;
}

static void test_obs_from_json(void **state)
{
	json_object *pcp = parse(
		"{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"c\",\"uid\":\"u1\",\"generation\":2,"
		"\"creationTimestamp\":\"2023-11-14T22:13:20Z\",\"finalizers\":[\"x\",\"checkpointing.dev/artifact\"],"
		"\"resourceVersion\":\"77\"},"
		"\"spec\":{\"podName\":\"web\",\"containers\":[\"a\",\"b\"],\"timeoutSeconds\":30,"
		"\"encrypt\":true,\"encryptionSecret\":\"s\",\"leaveRunning\":false,"
		"\"deletionPolicy\":\"Delete\",\"ttlSecondsAfterFinished\":0},"
		"\"status\":{\"phase\":\"Running\",\"startTime\":\"2023-11-14T22:13:21.5Z\","
		"\"nodeName\":\"n1\",\"artifact\":{\"path\":\"/a.tar\"},"
		"\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"CheckpointInProgress\"}]}}");
	json_object *pod = parse(
		"{\"metadata\":{\"uid\":\"pu\"},\"spec\":{\"nodeName\":\"n1\",\"initContainers\":[{\"name\":\"init\"}],"
		"\"containers\":[{\"name\":\"a\"},{\"name\":\"b\"}]},\"status\":{\"phase\":\"Running\"}}");
	json_object *sec = parse("{\"type\":\"kubernetes.io/tls\",\"data\":{\"tls.crt\":\"LS0tLS1CRUdJTg==\",\"tls.key\":\"c2VjcmV0\"}}");
	struct ctl_obs *o = calloc(1, sizeof(*o));
	struct ctl_other x;
	char *pem = NULL;
	size_t pem_len = 0;

	(void)state;
	assert_int_equal(ctl_obs_from_pcp(o, pcp), 0);
	assert_string_equal(o->ns, "ns1");
	assert_string_equal(o->uid, "u1");
	assert_int_equal(o->generation, 2);
	assert_int_equal(o->creation_ms, 1700000000000LL);
	assert_true(o->has_finalizer);
	assert_false(o->deleting);
	assert_int_equal(o->nspec_containers, 2);
	assert_int_equal(o->timeout_seconds, 30);
	assert_true(o->encrypt);
	assert_false(o->leave_running);
	assert_true(o->policy_delete);
	assert_true(o->has_ttl);
	assert_int_equal(o->ttl_seconds, 0);
	assert_int_equal(o->phase, CTL_PHASE_RUNNING);
	assert_int_equal(o->start_ms, 1700000001500LL);
	assert_string_equal(o->artifact_path, "/a.tar");
	assert_string_equal(o->ready_reason, "CheckpointInProgress");

	ctl_obs_set_pod(o, pod);
	assert_true(o->pod_exists);
	assert_int_equal(o->npod_containers, 2); /* init containers are not regular */
	assert_string_equal(o->pod_containers[1], "b");
	ctl_obs_set_pod(o, NULL);
	assert_false(o->pod_exists);

	assert_int_equal(ctl_obs_set_secret(o, sec, &pem, &pem_len), 0);
	assert_true(o->secret_exists);
	assert_string_equal(pem, "-----BEGIN");
	assert_int_equal(pem_len, 10);
	free(pem);
	assert_int_equal(ctl_obs_set_secret(o, NULL, &pem, &pem_len), 0);
	assert_false(o->secret_exists);
	assert_null(pem);

	ctl_other_from_pcp(&x, pcp);
	assert_string_equal(x.name, "c");
	assert_true(x.dispatched);
	assert_false(x.terminal);

	json_object_put(pcp);
	json_object_put(pod);
	json_object_put(sec);
	free(o);
}

static void test_status_patch(void **state)
{
	struct ctl_obs *o = base();
	struct ctl_decision d;
	json_object *existing = parse(
		"[{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"Pending\",\"lastTransitionTime\":\"2023-01-01T00:00:00Z\"},"
		"{\"type\":\"Custom\",\"status\":\"True\"}]");
	json_object *patch = NULL, *conds;
	const char *text;

	(void)state;
	ctl_decide(&POL, o, &d); /* dispatch */
	assert_int_equal(ctl_status_patch(&d, existing, "42", o->now_ms, &patch), 0);
	text = json_object_to_json_string_ext(patch, JSON_C_TO_STRING_PLAIN);
	print_message("%s\n", text);
	assert_string_equal(kc_json_str(patch, "metadata.resourceVersion"), "42");
	assert_string_equal(kc_json_str(patch, "status.phase"), "Pending");
	assert_string_equal(kc_json_str(patch, "status.nodeName"), "node-a");
	/* dispatchTime, not startTime: the helper writes that when it starts */
	assert_string_equal(kc_json_str(patch, "status.dispatchTime"), "2023-11-14T22:13:21Z");
	assert_null(kc_json_get(patch, "status.startTime"));
	assert_null(kc_json_get(patch, "status.completionTime"));
	conds = kc_json_get(patch, "status.conditions");
	assert_int_equal(json_object_array_length(conds), 3);
	/* the shared merge: order kept, Ready replaced in place */
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 1), "type"), "Custom");
	/* not terminal yet: Reconciling=True (kstatus InProgress) */
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 2), "type"), "Reconciling");
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 2), "status"), "True");
	/* Ready stays False: its lastTransitionTime is kept. */
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 0), "lastTransitionTime"),
			    "2023-01-01T00:00:00Z");
	json_object_put(patch);

	o->pod_exists = false;
	ctl_decide(&POL, o, &d);
	assert_int_equal(ctl_status_patch(&d, existing, NULL, o->now_ms, &patch), 0);
	assert_null(kc_json_get(patch, "metadata"));
	assert_string_equal(kc_json_str(patch, "status.phase"), "Failed");
	assert_non_null(kc_json_str(patch, "status.completionTime"));
	conds = kc_json_get(patch, "status.conditions");
	assert_int_equal(json_object_array_length(conds), 4);
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 0), "reason"), "CheckpointFailed");
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 3), "type"), "Reconciling");
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 3), "status"), "False");
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 2), "type"), "Stalled");
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 2), "status"), "True");
	assert_string_equal(kc_json_str(json_object_array_get_idx(conds, 2), "reason"), "PodNotFound");
	json_object_put(patch);
	json_object_put(existing);
	free(o);
}

static void test_finalizer_patch(void **state)
{
	json_object *pcp = parse("{\"metadata\":{\"resourceVersion\":\"5\",\"finalizers\":[\"other/x\"]}}");
	json_object *patch = NULL, *list;

	(void)state;
	assert_int_equal(ctl_finalizer_patch(pcp, true, &patch), 0);
	list = kc_json_get(patch, "metadata.finalizers");
	assert_int_equal(json_object_array_length(list), 2);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(list, 1)), CTL_FINALIZER);
	assert_string_equal(kc_json_str(patch, "metadata.resourceVersion"), "5");
	json_object_put(patch);
	json_object_put(pcp);

	pcp = parse("{\"metadata\":{\"finalizers\":[\"checkpointing.dev/artifact\",\"other/x\"]}}");
	assert_int_equal(ctl_finalizer_patch(pcp, false, &patch), 0);
	list = kc_json_get(patch, "metadata.finalizers");
	assert_int_equal(json_object_array_length(list), 1);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(list, 0)), "other/x");
	json_object_put(patch);
	json_object_put(pcp);
}

static void test_time_and_phase_parse(void **state)
{
	int64_t ms;
	char buf[32];

	(void)state;
	assert_int_equal(kc_time_parse("2023-11-14T22:13:20Z", &ms), 0);
	assert_int_equal(ms, 1700000000000LL);
	assert_int_equal(kc_time_parse("2023-11-14T23:13:20.250+01:00", &ms), 0);
	assert_int_equal(ms, 1700000000250LL);
	assert_int_equal(kc_time_parse("2023-11-14", &ms), -EINVAL);
	assert_int_equal(kc_time_parse("2023-11-14T22:13:20", &ms), -EINVAL);
	assert_int_equal(kc_time_parse("2023-11-14T22:13:20Zjunk", &ms), -EINVAL);
	kc_time_rfc3339(1700000000999LL / 1000, buf);
	assert_string_equal(buf, "2023-11-14T22:13:20Z");
	/* kc_base64_decode (the Secret's tls.crt) is tested in tests/unit/kc. */
	assert_int_equal(ctl_phase_parse("Bogus", &(enum ctl_phase){ 0 }), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_obs_from_json),
		cmocka_unit_test(test_status_patch),
		cmocka_unit_test(test_finalizer_patch),
		cmocka_unit_test(test_time_and_phase_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
