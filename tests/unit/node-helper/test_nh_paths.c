/* Path safety, delete-artifact, job validation, container selection, util helpers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fsutil.h"
#include "nh_job.h"
#include "nh_kubelet.h"
#include "nh_sweep.h"
#include "nh_server.h"
#include "nh_util.h"

static void test_path_under(void **state)
{
	(void)state;
	assert_true(nh_path_under("/art", "/art/ns/cp-u.tar"));
	assert_true(nh_path_under("/art", "/art/x"));
	assert_false(nh_path_under("/art", "/art"));
	assert_false(nh_path_under("/art", "/art/"));
	assert_false(nh_path_under("/art", "/artx/ns/a.tar"));
	assert_false(nh_path_under("/art", "/art/../etc/passwd"));
	assert_false(nh_path_under("/art", "/art/ns/../../etc/passwd"));
	assert_false(nh_path_under("/art", "/art/ns/./a.tar"));
	assert_false(nh_path_under("/art", "/art//a.tar"));
	assert_false(nh_path_under("/art", "/art/ns/"));
	assert_false(nh_path_under("/art", "art/ns/a.tar"));
	assert_false(nh_path_under("/art", "/etc/passwd"));
	assert_true(nh_path_under("/", "/var/lib/kubelet/checkpoints/a.tar"));
	assert_false(nh_path_under("/", "/var/../a.tar"));
	assert_true(nh_safe_segment("default"));
	assert_true(nh_safe_segment("3f1d2c4b-aaaa-bbbb-cccc-0123456789ab"));
	assert_false(nh_safe_segment(".."));
	assert_false(nh_safe_segment("a/b"));
	assert_false(nh_safe_segment(""));
	assert_string_equal(nh_basename("/a/b/c.tar"), "c.tar");
}

static void test_one_line(void **state)
{
	char buf[16];
	(void)state;
	nh_one_line("  hello\tworld\nsecond", 20, buf, sizeof(buf));
	assert_string_equal(buf, "hello world");
	nh_one_line("0123456789abcdefghijkl", 22, buf, sizeof(buf));
	assert_int_equal(strlen(buf), 15);
	/* the start and the end survive, the middle goes */
	assert_string_equal(buf, "0123...efghijkl");
	nh_one_line("   ", 3, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

static void mkjob(struct ch_job *job, const char *uid)
{
	memset(job, 0, sizeof(*job));
	job->op = CH_OP_DELETE_ARTIFACT;
	snprintf(job->uid, sizeof(job->uid), "%s", uid);
	snprintf(job->ns, sizeof(job->ns), "default");
	snprintf(job->name, sizeof(job->name), "cp1");
}

static void mkspec(struct nh_jobspec *spec, const char *uid)
{
	memset(spec, 0, sizeof(*spec));
	spec->op = CH_OP_CHECKPOINT;
	snprintf(spec->uid, sizeof(spec->uid), "%s", uid);
	snprintf(spec->ns, sizeof(spec->ns), "default");
	snprintf(spec->name, sizeof(spec->name), "cp1");
	snprintf(spec->pod, sizeof(spec->pod), "web");
	snprintf(spec->node, sizeof(spec->node), "node-a");
}

static void test_delete_artifact(void **state)
{
	char dir[] = "/tmp/nh-art-XXXXXX", art[64], sub[128], outside[128], p2[256], p3[256];
	struct nh_journal *j = NULL;
	struct ch_job job;
	struct ch_state st;
	struct nh_record *r = calloc(1, sizeof(*r));
	json_object *live = json_tokener_parse("{\"metadata\":{\"uid\":\"u1\"}}");
	json_object *deleting = json_tokener_parse(
		"{\"metadata\":{\"uid\":\"u1\",\"deletionTimestamp\":\"2024-01-01T00:00:00Z\"}}");
	json_object *other = json_tokener_parse("{\"metadata\":{\"uid\":\"someone-else\"}}");
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(art, sizeof(art), "%s/art", dir);
	snprintf(sub, sizeof(sub), "%s/art/default", dir);
	assert_int_equal(fsu_mkdir_p(sub, 0700), 0);
	assert_int_equal(nh_journal_open(dir, &j), 0);

	/* 1. recorded in the journal: the journal's path, and only while the CR
	 *    is being deleted or gone */
	mkjob(&job, "u1");
	mkspec(&r->job, "u1");
	r->job.encrypt = true;
	assert_int_equal(nh_artifact_path(art, &r->job, r->artifact.path, sizeof(r->artifact.path)), 0);
	assert_int_equal(fsu_write_atomic(r->artifact.path, "data", 4), 0);
	r->state = NH_J_DONE;
	assert_int_equal(nh_journal_save(j, r), 0);
	assert_int_equal(nh_delete_artifact(art, j, &job, live, &st), -EPERM);
	assert_int_equal(st.state, CH_REFUSED);
	assert_string_equal(st.reason, "NotDeleting");
	assert_int_equal(access(r->artifact.path, F_OK), 0);
	assert_int_equal(nh_delete_artifact(art, j, &job, deleting, &st), 0);
	assert_int_equal(st.state, CH_SUCCEEDED);
	assert_int_not_equal(access(r->artifact.path, F_OK), 0);
	assert_int_equal(nh_journal_state(j, "u1", NULL, NULL), -ENOENT);
	/* idempotent: again (now gone) -> succeeded */
	assert_int_equal(nh_delete_artifact(art, j, &job, NULL, &st), 0);
	assert_int_equal(st.state, CH_SUCCEEDED);

	/* 2. not in the journal (pruned, or never ours): only the recomputed
	 *    names, .tar and .tar.cms; a file elsewhere is never touched */
	mkjob(&job, "u2");
	snprintf(outside, sizeof(outside), "%s/outside.tar", dir);
	assert_int_equal(fsu_write_atomic(outside, "x", 1), 0);
	snprintf(p2, sizeof(p2), "%s/default/cp1-u2.tar", art);
	snprintf(p3, sizeof(p3), "%s/default/cp1-u2.tar.cms", art);
	assert_int_equal(fsu_write_atomic(p2, "x", 1), 0);
	assert_int_equal(fsu_write_atomic(p3, "x", 1), 0);
	/* a CR of that name with another uid: this one's is gone */
	assert_int_equal(nh_delete_artifact(art, j, &job, other, &st), 0);
	assert_int_equal(st.state, CH_SUCCEEDED);
	assert_non_null(strstr(st.message, "2 artifact files"));
	assert_int_not_equal(access(p2, F_OK), 0);
	assert_int_not_equal(access(p3, F_OK), 0);
	assert_int_equal(access(outside, F_OK), 0);
	/* an unsafe name: nothing computed, nothing removed */
	snprintf(job.name, sizeof(job.name), "..");
	assert_int_equal(nh_delete_artifact(art, j, &job, NULL, &st), 0);
	assert_non_null(strstr(st.message, "0 artifact files"));
	assert_int_equal(access(outside, F_OK), 0);

	/* 3. a job still running: busy, ask again */
	mkjob(&job, "u3");
	mkspec(&r->job, "u3");
	r->state = NH_J_BUNDLING;
	assert_int_equal(nh_journal_save(j, r), 0);
	assert_int_equal(nh_delete_artifact(art, j, &job, NULL, &st), 0);
	assert_int_equal(st.state, CH_BUSY);

	json_object_put(live);
	json_object_put(deleting);
	json_object_put(other);
	nh_journal_free(j);
	free(r);
}

static void test_artifact_path(void **state)
{
	struct nh_jobspec job;
	char p[256];
	(void)state;
	mkspec(&job, "u9");
	assert_int_equal(nh_artifact_path("/art", &job, p, sizeof(p)), 0);
	assert_string_equal(p, "/art/default/cp1-u9.tar");
	job.encrypt = true;
	assert_int_equal(nh_artifact_path("/art", &job, p, sizeof(p)), 0);
	assert_string_equal(p, "/art/default/cp1-u9.tar.cms");
	snprintf(job.name, sizeof(job.name), "../x");
	assert_int_equal(nh_artifact_path("/art", &job, p, sizeof(p)), -EINVAL);
}

static void test_validate(void **state)
{
	struct nh_options opt;
	struct ch_job job;
	struct ch_state st;
	(void)state;
	memset(&opt, 0, sizeof(opt));
	snprintf(opt.node_name, sizeof(opt.node_name), "node-a");
	mkjob(&job, "u1");
	job.op = CH_OP_CHECKPOINT;
	assert_int_equal(nh_job_validate(&opt, &job, &st), 0);
	snprintf(job.uid, sizeof(job.uid), "../../x");
	assert_int_equal(nh_job_validate(&opt, &job, &st), -EINVAL);
	assert_int_equal(st.state, CH_REFUSED);
	assert_string_equal(st.reason, "InvalidJob");
}

static void test_writer_reason(void **state)
{
	(void)state;
	assert_string_equal(nh_writer_reason(-ENOSPC, true), "StorageFailed");
	assert_string_equal(nh_writer_reason(-EIO, false), "StorageFailed");
	assert_string_equal(nh_writer_reason(-EPROTO, true), "EncryptionFailed");
	assert_string_equal(nh_writer_reason(-EPROTO, false), "StorageFailed");
}

/* Container selection (native sidecars), kubelet archive paths, sweep names. */
static void test_select_and_paths(void **state)
{
	struct nh_jobspec spec;
	json_object *pod;
	char reason[64], msg[512];
	int64_t t;

	(void)state;
	pod = json_tokener_parse(
		"{\"spec\":{\"containers\":[{\"name\":\"app\"},{\"name\":\"db\"}],\"initContainers\":"
		"[{\"name\":\"init\"},{\"name\":\"proxy\",\"restartPolicy\":\"Always\"}]},\"status\":"
		"{\"containerStatuses\":[{\"name\":\"app\",\"state\":{\"running\":{}}},{\"name\":\"db\","
		"\"state\":{\"running\":{}}}],\"initContainerStatuses\":[{\"name\":\"init\",\"state\":"
		"{\"terminated\":{}}},{\"name\":\"proxy\",\"state\":{\"running\":{}}}]}}");
	assert_non_null(pod);
	memset(&spec, 0, sizeof(spec));
	assert_int_equal(nh_select_containers(pod, &spec, reason, sizeof(reason), msg, sizeof(msg)), 0);
	assert_int_equal(spec.ncontainers, 3);
	assert_string_equal(spec.containers[2], "proxy"); /* the running native sidecar */
	spec.ncontainers = 1;
	snprintf(spec.containers[0], CH_NAME_MAX, "proxy"); /* naming a sidecar is fine */
	assert_int_equal(nh_select_containers(pod, &spec, reason, sizeof(reason), msg, sizeof(msg)), 0);
	snprintf(spec.containers[0], CH_NAME_MAX, "init"); /* a plain init container is not */
	assert_int_equal(nh_select_containers(pod, &spec, reason, sizeof(reason), msg, sizeof(msg)), -ENOENT);
	assert_string_equal(reason, "ContainerNotFound");
	json_object_put(pod);

	assert_true(nh_kubelet_path_ok("/var/lib/kubelet", "ns", "web", "app",
				       "/var/lib/kubelet/checkpoints/checkpoint-web_ns-app-2024-01-01T00:00:00Z.tar"));
	assert_false(nh_kubelet_path_ok("/var/lib/kubelet", "ns", "web", "app",
					"/var/lib/kubelet/checkpoints/checkpoint-web_ns-db-2024-01-01T00:00:00Z.tar"));
	assert_false(nh_kubelet_path_ok("/var/lib/kubelet", "ns", "web", "app", "/etc/shadow"));
	assert_false(nh_kubelet_path_ok("/var/lib/kubelet", "ns", "web", "app",
					"/var/lib/kubelet/checkpoints/checkpoint-web_ns-app-x/../../../etc/x.tar"));
	assert_false(nh_kubelet_path_ok("/var/lib/kubelet", "ns", "web", "app",
					"/var/lib/kubelet/checkpoints/checkpoint-web_ns-app-2024.tgz"));

	assert_int_equal(nh_sweep_name_time("checkpoint-web_ns-app-2024-01-01T00:00:05Z.tar",
					    "checkpoint-web_ns-app-", &t), 0);
	assert_int_equal(t, 1704067205);
	/* container "app" must not match container "app-b"'s archives */
	assert_int_equal(nh_sweep_name_time("checkpoint-web_ns-app-b-2024-01-01T00:00:05Z.tar",
					    "checkpoint-web_ns-app-", &t), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_under),     cmocka_unit_test(test_one_line),
		cmocka_unit_test(test_delete_artifact), cmocka_unit_test(test_artifact_path),
		cmocka_unit_test(test_validate),       cmocka_unit_test(test_writer_reason),
		cmocka_unit_test(test_select_and_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
