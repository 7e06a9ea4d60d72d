/* Status patches, conditions, success message, manifest. */
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
#include "nh_status.h"
#include "nh_util.h"

static const char *CR =
	"{\"apiVersion\":\"checkpointing.dev/v1alpha1\",\"kind\":\"PodCheckpoint\","
	"\"metadata\":{\"name\":\"cp1\",\"namespace\":\"default\",\"uid\":\"u1\",\"generation\":3,"
	"\"resourceVersion\":\"777\"},"
	"\"status\":{\"phase\":\"Pending\",\"conditions\":["
	"{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"Pending\",\"message\":\"m\","
	"\"lastTransitionTime\":\"2024-01-01T00:00:00Z\",\"observedGeneration\":3},"
	"{\"type\":\"Custom\",\"status\":\"True\",\"reason\":\"X\",\"message\":\"keep me\","
	"\"lastTransitionTime\":\"2023-01-01T00:00:00Z\",\"observedGeneration\":1}]}}";

static json_object *find_cond(json_object *patch, const char *type)
{
	json_object *arr = kc_json_get(patch, "status.conditions");
	assert_non_null(arr);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *c = json_object_array_get_idx(arr, i);
		if (strcmp(kc_json_str(c, "type"), type) == 0)
			return c;
	}
	return NULL;
}

static void test_running_keeps_ltt(void **state)
{
	json_object *cr = json_tokener_parse(CR), *p = NULL, *c;
	(void)state;
	assert_int_equal(nh_status_running(cr, "Checkpointing 1 container", "2024-05-05T05:05:04Z",
					   "2024-05-05T05:05:05Z", &p), 0);
	assert_string_equal(kc_json_str(p, "metadata.resourceVersion"), "777");
	assert_string_equal(kc_json_str(p, "status.phase"), "Running");
	/* the checkpoint deadline counts from here */
	assert_string_equal(kc_json_str(p, "status.startTime"), "2024-05-05T05:05:04Z");
	/* never the controller's fields */
	assert_null(kc_json_get(p, "status.nodeName"));
	assert_null(kc_json_get(p, "status.podUID"));
	assert_int_equal(kc_json_int64(p, "status.observedGeneration", 0, NULL), 3);
	c = find_cond(p, "Ready");
	assert_non_null(c);
	assert_string_equal(kc_json_str(c, "status"), "False");
	assert_string_equal(kc_json_str(c, "reason"), "CheckpointInProgress");
	/* status unchanged (False -> False): lastTransitionTime kept */
	assert_string_equal(kc_json_str(c, "lastTransitionTime"), "2024-01-01T00:00:00Z");
	/* the full array is sent: other conditions survive untouched */
	c = find_cond(p, "Custom");
	assert_non_null(c);
	assert_string_equal(kc_json_str(c, "message"), "keep me");
	/* kstatus reads Reconciling=True as InProgress */
	c = find_cond(p, "Reconciling");
	assert_non_null(c);
	assert_string_equal(kc_json_str(c, "status"), "True");
	assert_int_equal(json_object_array_length(kc_json_get(p, "status.conditions")), 3);
	json_object_put(p);
	json_object_put(cr);
}

static void test_failed(void **state)
{
	json_object *cr = json_tokener_parse(CR), *p = NULL, *c;
	(void)state;
	assert_int_equal(nh_status_failed(cr, "KubeletError", "the kubelet says: container app does not exist",
					  "2024-05-05T05:05:05Z", &p), 0);
	assert_string_equal(kc_json_str(p, "status.phase"), "Failed");
	assert_string_equal(kc_json_str(p, "status.message"), "the kubelet says: container app does not exist");
	assert_string_equal(kc_json_str(p, "status.completionTime"), "2024-05-05T05:05:05Z");
	c = find_cond(p, "Ready");
	assert_string_equal(kc_json_str(c, "status"), "False");
	assert_string_equal(kc_json_str(c, "reason"), "CheckpointFailed");
	assert_string_equal(kc_json_str(c, "lastTransitionTime"), "2024-01-01T00:00:00Z");
	c = find_cond(p, "Stalled");
	assert_non_null(c);
	assert_string_equal(kc_json_str(c, "status"), "True");
	assert_string_equal(kc_json_str(c, "reason"), "KubeletError");
	assert_string_equal(kc_json_str(c, "message"), "the kubelet says: container app does not exist");
	assert_string_equal(kc_json_str(c, "lastTransitionTime"), "2024-05-05T05:05:05Z");
	assert_int_equal(kc_json_int64(c, "observedGeneration", 0, NULL), 3);
	c = find_cond(p, "Reconciling");
	assert_string_equal(kc_json_str(c, "status"), "False");
	/* a terminal patch removes the helper's progress (merge patch null) */
	assert_true(json_object_object_get_ex(kc_json_get(p, "status"), "progress", &c));
	assert_null(c);
	json_object_put(p);
	json_object_put(cr);
}

static void test_progress(void **state)
{
	json_object *cr = json_tokener_parse(CR), *p = NULL, *c;
	(void)state;
	assert_int_equal(nh_status_progress(cr, "Checkpointing container side (2 of 2) of pod default/web",
					    "side", 1, 2, "2024-05-05T05:05:05Z", &p), 0);
	assert_string_equal(kc_json_str(p, "status.phase"), "Running");
	assert_string_equal(kc_json_str(p, "status.progress.container"), "side");
	assert_int_equal(kc_json_int64(p, "status.progress.containersDone", -1, NULL), 1);
	assert_int_equal(kc_json_int64(p, "status.progress.containersTotal", -1, NULL), 2);
	c = find_cond(p, "Ready");
	assert_string_equal(kc_json_str(c, "reason"), "CheckpointInProgress");
	/* never the controller's fields */
	assert_null(kc_json_get(p, "status.nodeName"));
	assert_null(kc_json_get(p, "status.podUID"));
	json_object_put(p);
	/* added to a Running patch (the job's first write) */
	assert_int_equal(nh_status_running(cr, "started", "2024-05-05T05:05:05Z", "2024-05-05T05:05:05Z", &p), 0);
	assert_int_equal(nh_status_add_progress(p, "app", 0, 2), 0);
	assert_string_equal(kc_json_str(p, "status.progress.container"), "app");
	assert_string_equal(kc_json_str(p, "status.startTime"), "2024-05-05T05:05:05Z");
	json_object_put(p);
	json_object_put(cr);
}

static struct nh_record *mkrec(void)
{
	struct nh_record *r = calloc(1, sizeof(*r));
	snprintf(r->job.uid, sizeof(r->job.uid), "u1");
	snprintf(r->job.ns, sizeof(r->job.ns), "default");
	snprintf(r->job.name, sizeof(r->job.name), "cp1");
	snprintf(r->job.pod, sizeof(r->job.pod), "web");
	snprintf(r->job.node, sizeof(r->job.node), "node-a");
	r->job.encrypt = true;
	snprintf(r->pod_uid, sizeof(r->pod_uid), "pod-uid");
	r->nresults = 2;
	snprintf(r->results[0].name, sizeof(r->results[0].name), "app");
	snprintf(r->results[0].archive, sizeof(r->results[0].archive), "/host/var/lib/kubelet/checkpoints/checkpoint-web_default-app-2024-03-04T12:20:30Z.tar");
	snprintf(r->results[0].checkpoint_time, sizeof(r->results[0].checkpoint_time), "2024-03-04T12:20:30Z");
	snprintf(r->results[0].sha256, sizeof(r->results[0].sha256), "aa");
	r->results[0].size_bytes = 1000;
	snprintf(r->results[1].name, sizeof(r->results[1].name), "side");
	snprintf(r->results[1].archive, sizeof(r->results[1].archive), "/x/checkpoint-web_default-side-2024-03-04T12:20:31Z.tar");
	r->results[1].size_bytes = 2000;
	snprintf(r->artifact.path, sizeof(r->artifact.path), "/var/lib/podcheckpoint/artifacts/default/cp1-u1.tar.cms");
	r->artifact.size_bytes = 3 * 1024 * 1024 / 2;
	snprintf(r->artifact.sha256, sizeof(r->artifact.sha256), "%064d", 5);
	r->artifact.encrypted = true;
	snprintf(r->artifact.recipient_fingerprint, sizeof(r->artifact.recipient_fingerprint),
		 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	snprintf(r->completion_time, sizeof(r->completion_time), "2024-03-04T12:21:00Z");
	return r;
}

static void test_succeeded(void **state)
{
	json_object *cr = json_tokener_parse(CR), *p = NULL, *c, *arr;
	struct nh_record *r = mkrec();
	(void)state;
	assert_int_equal(nh_status_succeeded(cr, r, "2024-05-05T05:05:05Z", &p), 0);
	assert_string_equal(kc_json_str(p, "status.phase"), "Succeeded");
	assert_string_equal(kc_json_str(p, "status.message"),
			    "Checkpointed 2 containers of pod default/web to /var/lib/podcheckpoint/artifacts/default/cp1-u1.tar.cms (1.5 MiB, encrypted to 0123456789abcdef)");
	assert_string_equal(kc_json_str(p, "status.checkpointLocation.type"), "NodeLocal");
	assert_string_equal(kc_json_str(p, "status.checkpointLocation.nodeLocal.nodeName"), "node-a");
	assert_string_equal(kc_json_str(p, "status.checkpointLocation.nodeLocal.path"), r->artifact.path);
	assert_string_equal(kc_json_str(p, "status.artifact.path"), r->artifact.path);
	assert_int_equal(kc_json_int64(p, "status.artifact.sizeBytes", 0, NULL), 3 * 1024 * 1024 / 2);
	assert_true(json_object_get_boolean(kc_json_get(p, "status.artifact.encrypted")));
	assert_string_equal(kc_json_str(p, "status.artifact.recipientFingerprint"), r->artifact.recipient_fingerprint);
	assert_string_equal(kc_json_str(p, "status.completionTime"), "2024-03-04T12:21:00Z");
	assert_false(json_object_get_boolean(kc_json_get(p, "status.podDeleted")));
	arr = kc_json_get(p, "status.containers");
	assert_int_equal(json_object_array_length(arr), 2);
	assert_string_equal(kc_json_str(json_object_array_get_idx(arr, 0), "name"), "app");
	assert_int_equal(kc_json_int64(json_object_array_get_idx(arr, 1), "sizeBytes", 0, NULL), 2000);
	c = find_cond(p, "Ready");
	assert_string_equal(kc_json_str(c, "status"), "True");
	assert_string_equal(kc_json_str(c, "reason"), "CheckpointCompleted");
	assert_string_equal(kc_json_str(c, "lastTransitionTime"), "2024-05-05T05:05:05Z");
	c = find_cond(p, "Stalled");
	assert_string_equal(kc_json_str(c, "status"), "False");
	c = find_cond(p, "Reconciling");
	assert_string_equal(kc_json_str(c, "status"), "False");
	assert_null(kc_json_get(p, "status.nodeName"));
	assert_null(kc_json_get(p, "status.podUID"));
	assert_null(kc_json_get(p, "status.recipientFingerprint"));
	json_object_put(p);
	r->pod_deleted = true;
	r->nresults = 1;
	r->artifact.encrypted = false;
	assert_int_equal(nh_status_succeeded(cr, r, "2024-05-05T05:05:05Z", &p), 0);
	assert_true(json_object_get_boolean(kc_json_get(p, "status.podDeleted")));
	assert_non_null(strstr(kc_json_str(p, "status.message"), "1 container of pod"));
	assert_non_null(strstr(kc_json_str(p, "status.message"), "; the pod was deleted"));
	assert_null(kc_json_get(p, "status.artifact.recipientFingerprint"));
	json_object_put(p);
	json_object_put(cr);
	free(r);
}

/* leaveRunning=false: the commit point is Running (Ready stays False), then
 * either Succeeded with Ready=True once, or Failed with the artifact kept. */
static void test_deleting_pod_and_kept(void **state)
{
	json_object *cr = json_tokener_parse(CR), *p = NULL, *c;
	struct nh_record *r = mkrec();

	(void)state;
	r->job.leave_running = false;
	snprintf(r->job.pod_uid, sizeof(r->job.pod_uid), "pod-uid");
	assert_int_equal(nh_status_deleting_pod(cr, r, "2024-05-05T05:05:05Z", &p), 0);
	assert_string_equal(kc_json_str(p, "status.phase"), "Running");
	assert_true(json_object_get_boolean(kc_json_get(p, "status.deletingPod")));
	assert_string_equal(kc_json_str(p, "status.artifact.path"), r->artifact.path);
	assert_non_null(strstr(kc_json_str(p, "status.message"), "deleting pod default/web"));
	c = find_cond(p, "Ready");
	assert_string_equal(kc_json_str(c, "status"), "False");
	json_object_put(p);

	assert_int_equal(nh_status_artifact_kept(cr, r, "PodDeleteFailed", "kept", "2024-05-05T05:05:05Z", &p), 0);
	assert_string_equal(kc_json_str(p, "status.phase"), "Failed");
	assert_false(json_object_get_boolean(kc_json_get(p, "status.deletingPod")));
	assert_string_equal(kc_json_str(p, "status.artifact.path"), r->artifact.path);
	c = find_cond(p, "Stalled");
	assert_string_equal(kc_json_str(c, "reason"), "PodDeleteFailed");
	json_object_put(p);
	json_object_put(cr);
	free(r);
}

static void test_manifest(void **state)
{
	struct nh_record *r = mkrec();
	json_object *pod = json_tokener_parse("{\"metadata\":{\"uid\":\"pod-uid\"},\"spec\":{\"nodeName\":\"node-a\",\"containers\":[{\"name\":\"app\"}]}}");
	json_object *m = NULL, *arr;
	(void)state;
	assert_int_equal(nh_manifest_build(r, pod, "2024-03-04T12:21:00Z", r->artifact.recipient_fingerprint, &m), 0);
	assert_string_equal(kc_json_str(m, "apiVersion"), "checkpointing.dev/v1alpha1");
	assert_string_equal(kc_json_str(m, "kind"), "PodCheckpointArtifact");
	assert_string_equal(kc_json_str(m, "pod.namespace"), "default");
	assert_string_equal(kc_json_str(m, "pod.name"), "web");
	assert_string_equal(kc_json_str(m, "pod.uid"), "pod-uid");
	assert_string_equal(kc_json_str(m, "node"), "node-a");
	assert_string_equal(kc_json_str(m, "podCheckpoint.name"), "cp1");
	assert_string_equal(kc_json_str(m, "podCheckpoint.uid"), "u1");
	assert_string_equal(kc_json_str(m, "createdTime"), "2024-03-04T12:21:00Z");
	assert_string_equal(kc_json_str(m, "podSpec.nodeName"), "node-a");
	arr = kc_json_get(m, "containers");
	assert_int_equal(json_object_array_length(arr), 2);
	assert_string_equal(kc_json_str(json_object_array_get_idx(arr, 0), "archive"),
			    "checkpoint-web_default-app-2024-03-04T12:20:30Z.tar");
	assert_string_equal(kc_json_str(json_object_array_get_idx(arr, 0), "sha256"), "aa");
	assert_int_equal(kc_json_int64(json_object_array_get_idx(arr, 0), "sizeBytes", 0, NULL), 1000);
	assert_string_equal(kc_json_str(json_object_array_get_idx(arr, 0), "checkpointTime"), "2024-03-04T12:20:30Z");
	assert_true(json_object_get_boolean(kc_json_get(m, "encrypted")));
	assert_string_equal(kc_json_str(m, "recipientFingerprint"), r->artifact.recipient_fingerprint);
	json_object_put(pod); /* the manifest holds its own reference to the spec */
	assert_non_null(kc_json_get(m, "podSpec.containers"));
	json_object_put(m);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_running_keeps_ltt), cmocka_unit_test(test_failed),
		cmocka_unit_test(test_succeeded),         cmocka_unit_test(test_deleting_pod_and_kept),
		cmocka_unit_test(test_manifest), cmocka_unit_test(test_progress),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
