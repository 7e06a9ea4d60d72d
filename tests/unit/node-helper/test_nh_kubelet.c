/* Kubelet answer mapping, against a tiny plain-HTTP server on 127.0.0.1. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "nh_kubelet.h"

/* ---------------------------------------------------------------- fake kubelet */

struct fake {
	int lfd;
	int port;
	pthread_t thr;
	/* scenario for the next request */
	int status;
	const char *body;
	size_t big;       /* >0: send this many bytes of body */
	int hang_ms;      /* sleep before answering */
	/* recorded */
	char request_line[1024];
	char auth[256];
	int requests;
	volatile int quit;
};

static struct fake F;

static void *fake_main(void *arg)
{
	(void)arg;
	while (!F.quit) {
		char buf[8192];
		size_t used = 0;
		int fd = accept(F.lfd, NULL, NULL);
		if (fd < 0)
			continue;
		if (F.quit) {
			close(fd);
			break;
		}
		while (used < sizeof(buf) - 1) {
			ssize_t n = read(fd, buf + used, sizeof(buf) - 1 - used);
			if (n <= 0)
				break;
			used += (size_t)n;
			buf[used] = '\0';
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		buf[used] = '\0';
		{
			char *eol = strstr(buf, "\r\n");
			char *a = strstr(buf, "Authorization: ");
			size_t n = eol ? (size_t)(eol - buf) : 0;
			if (n >= sizeof(F.request_line))
				n = sizeof(F.request_line) - 1;
			memcpy(F.request_line, buf, n);
			F.request_line[n] = '\0';
			F.auth[0] = '\0';
			if (a) {
				char *e = strstr(a, "\r\n");
				size_t m = e ? (size_t)(e - a) : 0;
				if (m >= sizeof(F.auth))
					m = sizeof(F.auth) - 1;
				memcpy(F.auth, a, m);
				F.auth[m] = '\0';
			}
		}
		F.requests++;
		if (F.hang_ms)
			usleep((useconds_t)F.hang_ms * 1000);
		{
			char hdr[256];
			size_t blen = F.big ? F.big : strlen(F.body);
			int n = snprintf(hdr, sizeof(hdr),
					 "HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
					 F.status, blen);
			if (write(fd, hdr, (size_t)n) < 0) {
				close(fd);
				continue;
			}
			if (F.big) {
				char chunk[4096];
				memset(chunk, 'x', sizeof(chunk));
				for (size_t s = 0; s < F.big; s += sizeof(chunk))
					if (write(fd, chunk, F.big - s < sizeof(chunk) ? F.big - s : sizeof(chunk)) < 0)
						break;
			} else if (write(fd, F.body, blen) < 0) {
				/* client gone */
			}
		}
		close(fd);
	}
	return NULL;
}

static int fake_token(void *arg, char *buf, size_t cap)
{
	(void)arg;
	snprintf(buf, cap, "test-token-123");
	return 0;
}

static int setup(void **state)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int one = 1;
	(void)state;
	memset(&F, 0, sizeof(F));
	F.lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(F.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(F.lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(F.lfd, 8) != 0)
		return -1;
	getsockname(F.lfd, (struct sockaddr *)&a, &len);
	F.port = ntohs(a.sin_port);
	F.body = "";
	return pthread_create(&F.thr, NULL, fake_main, NULL);
}

static int teardown(void **state)
{
	struct sockaddr_in a;
	int fd;
	(void)state;
	F.quit = 1;
	/* wake accept() */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)F.port);
	connect(fd, (struct sockaddr *)&a, sizeof(a));
	close(fd);
	pthread_join(F.thr, NULL);
	close(F.lfd);
	return 0;
}

static struct nh_kubelet *mk(const char *host_root, long margin)
{
	char url[64];
	struct nh_kubelet_opts o;
	struct nh_kubelet *k = NULL;
	char err[256];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", F.port);
	memset(&o, 0, sizeof(o));
	o.url = url;
	o.margin_seconds = margin;
	o.host_root = host_root;
	o.token = fake_token;
	assert_int_equal(nh_kubelet_new(&o, &k, err, sizeof(err)), 0);
	return k;
}

/* The URL names the node; the connection goes to the pinned address, no DNS. */
static void test_pinned_name(void **state)
{
	char url[64], err[256];
	struct nh_kubelet_opts o;
	struct nh_kubelet *k = NULL;
	struct nh_kubelet_result r;
	(void)state;
	F.status = 200;
	F.body = "{\"items\":[\"/var/lib/kubelet/checkpoints/checkpoint-web_default-app-2024-03-04T12:20:30Z.tar\"]}";
	F.big = 0;
	F.hang_ms = 0;
	snprintf(url, sizeof(url), "http://pcp-no-such-host.invalid:%d", F.port);
	memset(&o, 0, sizeof(o));
	o.url = url;
	o.node_name = "pcp-no-such-host.invalid";
	o.address = "127.0.0.1";
	o.margin_seconds = 5;
	o.host_root = "";
	assert_int_equal(nh_kubelet_new(&o, &k, err, sizeof(err)), 0);
	assert_int_equal(nh_kubelet_checkpoint(k, "default", "web", "app", 30, &r), 0);
	assert_true(r.ok);
	nh_kubelet_free(k);
	/* another name is not pinned: DNS says no */
	o.node_name = "other-node";
	assert_int_equal(nh_kubelet_new(&o, &k, err, sizeof(err)), 0);
	assert_int_not_equal(nh_kubelet_checkpoint(k, "default", "web", "app", 30, &r), 0);
	assert_string_equal(r.reason, "KubeletError");
	nh_kubelet_free(k);
}

static void scenario(int status, const char *body)
{
	F.status = status;
	F.body = body;
	F.big = 0;
	F.hang_ms = 0;
}

static void test_ok(void **state)
{
	struct nh_kubelet *k = mk("/host", 5);
	struct nh_kubelet_result r;
	(void)state;
	scenario(200, "{\"items\":[\"/var/lib/kubelet/checkpoints/checkpoint-web_default-app-2024-03-04T12:20:30Z.tar\"]}");
	assert_int_equal(nh_kubelet_checkpoint(k, "default", "web", "app", 30, &r), 0);
	assert_true(r.ok);
	assert_string_equal(r.node_path,
			    "/var/lib/kubelet/checkpoints/checkpoint-web_default-app-2024-03-04T12:20:30Z.tar");
	assert_string_equal(r.local_path,
			    "/host/var/lib/kubelet/checkpoints/checkpoint-web_default-app-2024-03-04T12:20:30Z.tar");
	assert_string_equal(F.request_line, "POST /checkpoint/default/web/app?timeout=30 HTTP/1.1");
	assert_string_equal(F.auth, "Authorization: Bearer test-token-123");
	nh_kubelet_free(k);
}

static void expect(int status, const char *body, const char *reason, const char *msg_part)
{
	struct nh_kubelet *k = mk("", 5);
	struct nh_kubelet_result r;
	scenario(status, body);
	assert_int_not_equal(nh_kubelet_checkpoint(k, "default", "web", "app", 30, &r), 0);
	assert_false(r.ok);
	assert_string_equal(r.reason, reason);
	if (!strstr(r.message, msg_part))
		fail_msg("message \"%s\" lacks \"%s\"", r.message, msg_part);
	nh_kubelet_free(k);
}

static void test_200_bad(void **state)
{
	(void)state;
	expect(200, "{\"items\":[\"/a.tar\",\"/b.tar\"]}", "KubeletError", "exactly one");
	expect(200, "{\"items\":[]}", "KubeletError", "exactly one");
	expect(200, "{\"items\":[\"relative/a.tar\"]}", "KubeletError", "absolute");
	expect(200, "{\"items\":[\"/var/../etc/shadow\"]}", "KubeletError", "absolute");
	expect(200, "{\"items\":[42]}", "KubeletError", "not a string");
	expect(200, "<html>hello</html>", "KubeletError", "unexpected answer");
	expect(200, "{\"foo\":1}", "KubeletError", "unexpected answer");
}

static void test_404(void **state)
{
	(void)state;
	expect(404, "pod does not exist\n", "KubeletError",
	       "the kubelet says: pod default/web does not exist");
	expect(404, "container app does not exist\n", "KubeletError",
	       "the kubelet says: container app does not exist");
	expect(404, "cannot parse value of timeout parameter\n", "KubeletError",
	       "the kubelet says: cannot parse value of timeout parameter");
	expect(404, "404 page not found\n", "KubeletError",
	       "the kubelet has no checkpoint API (ContainerCheckpoint feature gate off?)");
}

static void test_500(void **state)
{
	(void)state;
	expect(500,
	       "checkpointing of default/web/app failed (rpc error: code = Unimplemented desc = unknown method CheckpointContainer)\nsecond line",
	       "KubeletError", "rpc error: code = Unimplemented desc = unknown method CheckpointContainer)");
	expect(500, "checkpointing of default/web/app failed (rpc error: code = Unknown desc = CRIU binary not found or too old)",
	       "KubeletError", "CRIU binary not found");
	/* what containerd 2.4 answers when CRIU fails: long, and the end names the
	 * log with the real cause; the message keeps it */
	expect(500,
	       "checkpointing of default/web/app failed (rpc error: code = Unknown desc = checkpointing container "
	       "\"bd2b3a6c0916a06f1d8a3b65cb2d2e583e6cb356db39267817abbbf903004ec4\" failed: "
	       "/usr/local/sbin/runc did not terminate successfully: exit status 1: criu failed: type DUMP errno 0 "
	       "path= /run/containerd/io.containerd.runtime.v2.task/k8s.io/"
	       "bd2b3a6c0916a06f1d8a3b65cb2d2e583e6cb356db39267817abbbf903004ec4/criu-dump.log: "
	       "check the log file for more information)",
	       "KubeletError", "criu-dump.log: check the log file for more information)");
	{
		struct nh_kubelet *k = mk("", 5);
		struct nh_kubelet_result r;
		scenario(500, "checkpointing failed\nsecret second line");
		nh_kubelet_checkpoint(k, "default", "web", "app", 30, &r);
		assert_null(strstr(r.message, "second line"));
		assert_null(strchr(r.message, '\n'));
		nh_kubelet_free(k);
	}
}

static void test_auth(void **state)
{
	(void)state;
	expect(401, "Unauthorized", "KubeletError",
	       "the kubelet refused the node helper's credentials (401): grant nodes/checkpoint");
	expect(403, "Forbidden (user=x, verb=create, resource=nodes, subresource=checkpoint)",
	       "KubeletError",
	       "the kubelet refused the node helper's credentials (403): grant nodes/checkpoint");
	expect(502, "bad gateway", "KubeletError", "HTTP 502");
}

static void test_timeout(void **state)
{
	struct nh_kubelet *k = mk("", 0);
	struct nh_kubelet_result r;
	(void)state;
	scenario(200, "{\"items\":[\"/a.tar\"]}");
	F.hang_ms = 2500;
	assert_int_equal(nh_kubelet_checkpoint(k, "default", "web", "app", 1, &r), -ETIMEDOUT);
	assert_string_equal(r.reason, "Timeout");
	assert_string_equal(r.message, "the kubelet did not answer within 1 s for container app");
	nh_kubelet_free(k);
	F.hang_ms = 0;
}

static void test_too_big(void **state)
{
	struct nh_kubelet *k = mk("", 5);
	struct nh_kubelet_result r;
	(void)state;
	scenario(200, "");
	F.big = 200 * 1024;
	assert_int_not_equal(nh_kubelet_checkpoint(k, "default", "web", "app", 30, &r), 0);
	assert_string_equal(r.reason, "KubeletError");
	assert_non_null(strstr(r.message, "64 KiB"));
	F.big = 0;
	nh_kubelet_free(k);
}

static void test_refused(void **state)
{
	struct nh_kubelet_opts o;
	struct nh_kubelet *k = NULL;
	struct nh_kubelet_result r;
	char err[128];
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	char url[64];
	(void)state;
	/* a port nobody listens on */
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	port = ntohs(a.sin_port);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	memset(&o, 0, sizeof(o));
	o.url = url;
	o.margin_seconds = 5;
	o.host_root = "";
	assert_int_equal(nh_kubelet_new(&o, &k, err, sizeof(err)), 0);
	assert_int_not_equal(nh_kubelet_checkpoint(k, "default", "web", "app", 30, &r), 0);
	assert_string_equal(r.reason, "KubeletError");
	assert_non_null(strstr(r.message, "cannot reach the kubelet at http://127.0.0.1:"));
	nh_kubelet_free(k);
}

static void test_map_pure(void **state)
{
	struct nh_kubelet_result r;
	(void)state;
	nh_kubelet_map(NH_KT_ERROR, 0, NULL, 0, "SSL certificate problem: self-signed certificate",
		       "https://10.0.0.5:10250", "ns", "p", "c", 330, "", &r);
	assert_string_equal(r.reason, "KubeletError");
	assert_string_equal(r.message, "cannot reach the kubelet at https://10.0.0.5:10250: SSL certificate problem: self-signed certificate");
	nh_kubelet_map(NH_KT_ABORTED, 0, NULL, 0, "", "u", "ns", "p", "c", 330, "", &r);
	assert_string_equal(r.reason, "Interrupted");
	{
		const char *b = "{\"items\":[\"/x/y.tar\"]}";
		nh_kubelet_map(NH_KT_OK, 200, b, strlen(b), "", "u", "ns", "p", "c", 330, "/host", &r);
	}
	assert_true(r.ok);
	assert_string_equal(r.local_path, "/host/x/y.tar");
}

static void test_bad_ca(void **state)
{
	struct nh_kubelet_opts o;
	struct nh_kubelet *k = NULL;
	char err[256];
	(void)state;
	memset(&o, 0, sizeof(o));
	o.url = "https://127.0.0.1:1";
	o.ca_file = "/nonexistent/ca.pem";
	assert_int_equal(nh_kubelet_new(&o, &k, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "--kubelet-ca"));
	assert_null(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok),
		cmocka_unit_test(test_pinned_name),
		cmocka_unit_test(test_200_bad),
		cmocka_unit_test(test_404),
		cmocka_unit_test(test_500),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_map_pure),
		cmocka_unit_test(test_bad_ca),
	};
	int rc;
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, setup, teardown);
	curl_global_cleanup();
	return rc;
}
