/*
 * Channel transport tests: a real ch_server in a thread on 127.0.0.1 with a
 * kernel-chosen port, real ch_call clients, and two fake servers (nothing
 * listening; TCP that never speaks TLS).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ch.h"
#include "ch_internal.h"
#include "ch_testsrv.h"
#include "log.h"

#define TOKEN "test-token-abc.def.ghi"

enum job_mode { JOB_ACCEPT, JOB_KNOWN_SUCCEEDED, JOB_REFUSE };

struct tsrv {
	struct cts s;

	atomic_int auth_calls;
	atomic_int job_calls;
	atomic_int allow;
	atomic_int cached; /* the precheck's "cache": TOKEN was accepted once */
	atomic_int mode;
	pthread_mutex_t mu;
	struct ch_job got; /* copy of the last job (cert_pem owned) */
	char got_token[128];
};

static int t_auth(void *arg, const char *token)
{
	struct tsrv *t = arg;

	atomic_fetch_add(&t->auth_calls, 1);
	pthread_mutex_lock(&t->mu);
	snprintf(t->got_token, sizeof(t->got_token), "%s", token);
	pthread_mutex_unlock(&t->mu);
	if (atomic_load(&t->allow) && strcmp(token, TOKEN) == 0) {
		atomic_store(&t->cached, 1);
		return 0;
	}
	return -1;
}

/* Like the helper's: a token accepted before is allowed without another review. */
static int t_precheck(void *arg, const char *token)
{
	struct tsrv *t = arg;

	return atomic_load(&t->cached) && atomic_load(&t->allow) && strcmp(token, TOKEN) == 0
		       ? CH_AUTH_ALLOW
		       : CH_AUTH_REVIEW;
}

static int t_job(void *arg, const struct ch_job *job, struct ch_state *now)
{
	struct tsrv *t = arg;

	pthread_mutex_lock(&t->mu);
	ch_job_cleanup(&t->got);
	t->got = *job;
	t->got.cert_pem = job->cert_pem ? strdup(job->cert_pem) : NULL;
	pthread_mutex_unlock(&t->mu);
	atomic_fetch_add(&t->job_calls, 1);
	switch (atomic_load(&t->mode)) {
	case JOB_KNOWN_SUCCEEDED:
		now->state = CH_SUCCEEDED;
		now->bytes = 42;
		snprintf(now->message, sizeof(now->message), "Already done.");
		return 0;
	case JOB_REFUSE:
		snprintf(now->reason, sizeof(now->reason), "NodeMismatch");
		snprintf(now->message, sizeof(now->message), "Not my node.");
		return -EINVAL;
	default:
		now->state = CH_ACCEPTED;
		return 0;
	}
}

static struct tsrv *tsrv_start(void)
{
	struct tsrv *t = calloc(1, sizeof(*t));
	struct ch_server_opts o;

	assert_non_null(t);
	pthread_mutex_init(&t->mu, NULL);
	atomic_store(&t->allow, 1);
	memset(&o, 0, sizeof(o));
	o.ops.precheck = t_precheck;
	o.ops.authenticate = t_auth;
	o.ops.on_job = t_job;
	o.ops.arg = t;
	cts_start(&t->s, &o, 0, NULL);
	return t;
}

static void tsrv_stop(struct tsrv *t)
{
	cts_stop(&t->s);
	ch_job_cleanup(&t->got);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static void make_job(struct ch_job *j, const char *uid)
{
	memset(j, 0, sizeof(*j));
	j->op = CH_OP_CHECKPOINT;
	snprintf(j->uid, sizeof(j->uid), "%s", uid);
	snprintf(j->ns, sizeof(j->ns), "team-a");
	snprintf(j->name, sizeof(j->name), "nightly");
}

static void call_opts(struct ch_call_opts *o, const struct tsrv *t, long wait_ms)
{
	memset(o, 0, sizeof(*o));
	o->endpoint = t->s.endpoint;
	o->fingerprint = t->s.fp;
	o->token = TOKEN;
	o->connect_timeout_ms = 3000;
	o->wait_ms = wait_ms;
}

struct notifier {
	struct tsrv *t;
	char uid[64];
	int before; /* job_calls value to wait past */
};

static void *t_notify(void *arg)
{
	struct notifier *n = arg;
	struct ch_state st;
	int64_t deadline = ch_now_ms() + 5000;

	while (atomic_load(&n->t->job_calls) <= n->before && ch_now_ms() < deadline)
		usleep(5000);
	usleep(50000);
	memset(&st, 0, sizeof(st));
	snprintf(st.uid, sizeof(st.uid), "%s", n->uid);
	st.state = CH_RUNNING;
	snprintf(st.container, sizeof(st.container), "app");
	ch_server_notify(n->t->s.srv, &st);
	/* a state for another job must not reach this client */
	snprintf(st.uid, sizeof(st.uid), "someone-else");
	st.state = CH_FAILED;
	ch_server_notify(n->t->s.srv, &st);
	usleep(50000);
	snprintf(st.uid, sizeof(st.uid), "%s", n->uid);
	st.state = CH_SUCCEEDED;
	st.bytes = 1234;
	snprintf(st.message, sizeof(st.message), "Checkpoint stored.");
	ch_server_notify(n->t->s.srv, &st);
	return NULL;
}

static void test_full_call(void **state)
{
	struct tsrv *t = tsrv_start();
	struct ch_call_opts o;
	struct ch_job job;
	struct ch_state last;
	struct notifier n = { .t = t, .uid = "uid-full", .before = 0 };
	pthread_t th;
	char err[256];
	int rc;

	(void)state;
	make_job(&job, "uid-full");
	job.cert_pem = strdup("-----BEGIN CERTIFICATE-----\nXYZ\n-----END CERTIFICATE-----\n");
	call_opts(&o, t, 5000);
	assert_int_equal(pthread_create(&th, NULL, t_notify, &n), 0);
	rc = ch_call(&o, &job, &last, err, sizeof(err));
	pthread_join(th, NULL);
	assert_int_equal(rc, 0);
	assert_int_equal(last.state, CH_SUCCEEDED);
	assert_string_equal(last.uid, "uid-full");
	assert_int_equal(last.bytes, 1234);
	assert_string_equal(last.message, "Checkpoint stored.");
	assert_int_equal(atomic_load(&t->job_calls), 1);
	assert_int_equal(atomic_load(&t->auth_calls), 1);
	pthread_mutex_lock(&t->mu);
	assert_string_equal(t->got_token, TOKEN);
	assert_string_equal(t->got.uid, job.uid);
	assert_string_equal(t->got.ns, job.ns);
	assert_string_equal(t->got.name, job.name);
	assert_string_equal(t->got.cert_pem, job.cert_pem);
	pthread_mutex_unlock(&t->mu);

	/* known uid: the existing (final) state comes back at once */
	atomic_store(&t->mode, JOB_KNOWN_SUCCEEDED);
	rc = ch_call(&o, &job, &last, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_int_equal(last.state, CH_SUCCEEDED);
	assert_int_equal(last.bytes, 42);

	/* on_job refuses: a final REFUSED state with its reason */
	atomic_store(&t->mode, JOB_REFUSE);
	rc = ch_call(&o, &job, &last, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_int_equal(last.state, CH_REFUSED);
	assert_string_equal(last.reason, "NodeMismatch");
	ch_job_cleanup(&job);
	tsrv_stop(t);
}

static void test_large_job_reassembled(void **state)
{
	struct tsrv *t = tsrv_start();
	struct ch_call_opts o;
	struct ch_job job;
	struct ch_state last;
	char err[256];

	(void)state;
	atomic_store(&t->mode, JOB_KNOWN_SUCCEEDED);
	make_job(&job, "uid-large");
	job.cert_pem = malloc(CH_MAX_CERT_PEM + 1);
	memset(job.cert_pem, 'Q', CH_MAX_CERT_PEM);
	job.cert_pem[CH_MAX_CERT_PEM] = '\0';
	call_opts(&o, t, 1000);
	assert_int_equal(ch_call(&o, &job, &last, err, sizeof(err)), 0);
	assert_int_equal(last.state, CH_SUCCEEDED);
	pthread_mutex_lock(&t->mu);
	assert_string_equal(t->got.cert_pem, job.cert_pem);
	pthread_mutex_unlock(&t->mu);
	ch_job_cleanup(&job);
	tsrv_stop(t);
}

static void test_wait_expires(void **state)
{
	struct tsrv *t = tsrv_start();
	struct ch_call_opts o;
	struct ch_job job;
	struct ch_state last;
	char err[256];
	int64_t t0, dt;

	(void)state;
	make_job(&job, "uid-wait");
	call_opts(&o, t, 300);
	t0 = ch_now_ms();
	assert_int_equal(ch_call(&o, &job, &last, err, sizeof(err)), 0);
	dt = ch_now_ms() - t0;
	assert_int_equal(last.state, CH_ACCEPTED);
	assert_string_equal(last.uid, "uid-wait");
	assert_true(dt >= 300);
	assert_true(dt < 3000);
	tsrv_stop(t);
}

static void test_wrong_fingerprint(void **state)
{
	struct tsrv *t = tsrv_start();
	struct tsrv *impostor = tsrv_start();
	struct ch_call_opts o;
	struct ch_job job;
	struct ch_state last;
	char err[256];

	(void)state;
	make_job(&job, "uid-pin");
	/* the right server, a wrong pin */
	call_opts(&o, t, 500);
	o.fingerprint = impostor->s.fp;
	assert_int_equal(ch_call(&o, &job, &last, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "pinned"));
	assert_int_equal(atomic_load(&t->auth_calls), 0);
	assert_int_equal(atomic_load(&t->job_calls), 0);

	/* an impostor at the pinned endpoint: it never sees the token */
	call_opts(&o, impostor, 500);
	o.fingerprint = t->s.fp;
	assert_int_equal(ch_call(&o, &job, &last, err, sizeof(err)), -EPERM);
	assert_int_equal(atomic_load(&impostor->auth_calls), 0);
	assert_string_equal(impostor->got_token, "");

	/* a malformed pin is a local error */
	o.fingerprint = "abcd";
	assert_int_equal(ch_call(&o, &job, &last, err, sizeof(err)), -EINVAL);

	/* control: the right pin (upper case, colons) works */
	{
		char colons[100];
		size_t k = 0;

		for (int i = 0; i < 64; i++) {
			char ch = t->s.fp[i];

			colons[k++] = (ch >= 'a' && ch <= 'f') ? (char)(ch - 'a' + 'A') : ch;
			if (i % 2 == 1 && i < 63)
				colons[k++] = ':';
		}
		colons[k] = '\0';
		call_opts(&o, t, 200);
		o.fingerprint = colons;
		assert_int_equal(ch_call(&o, &job, &last, err, sizeof(err)), 0);
		assert_int_equal(last.state, CH_ACCEPTED);
	}
	tsrv_stop(impostor);
	tsrv_stop(t);
}

static void test_auth_refused(void **state)
{
	struct tsrv *t = tsrv_start();
	struct ch_call_opts o;
	struct ch_job job;
	struct ch_state last;
	char err[256];

	(void)state;
	make_job(&job, "uid-auth");
	atomic_store(&t->allow, 0);
	call_opts(&o, t, 500);
	assert_int_equal(ch_call(&o, &job, &last, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "1008"));
	assert_int_equal(atomic_load(&t->auth_calls), 1);
	assert_int_equal(atomic_load(&t->job_calls), 0);

	/* a blank token never reaches authenticate: 401 */
	atomic_store(&t->allow, 1);
	o.token = "   ";
	assert_int_equal(ch_call(&o, &job, &last, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "401"));
	assert_int_equal(atomic_load(&t->auth_calls), 1);
	assert_int_equal(atomic_load(&t->job_calls), 0);

	/* an empty token, or one that could inject a header, is refused locally */
	o.token = "";
	assert_int_equal(ch_call(&o, &job, &last, err, sizeof(err)), -EINVAL);
	o.token = "abc\r\nX-Evil: 1";
	assert_int_equal(ch_call(&o, &job, &last, err, sizeof(err)), -EINVAL);
	assert_int_equal(atomic_load(&t->auth_calls), 1);
	tsrv_stop(t);
}

/* A loopback port with nothing listening (or, if `listening`, a listener that never accepts). */
static int grab_port(bool listening, int *fd_out)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int port;

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	port = ntohs(a.sin_port);
	if (listening) {
		assert_int_equal(listen(fd, 8), 0);
		*fd_out = fd;
	} else {
		close(fd);
		*fd_out = -1;
	}
	return port;
}

static void test_connection_refused(void **state)
{
	struct ch_call_opts o;
	struct ch_job job;
	struct ch_state last;
	char err[256], ep[64];
	int fd, port = grab_port(false, &fd);
	int64_t t0;

	(void)state;
	make_job(&job, "uid-refused");
	snprintf(ep, sizeof(ep), "wss://127.0.0.1:%d", port);
	memset(&o, 0, sizeof(o));
	o.endpoint = ep;
	o.fingerprint = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	o.token = TOKEN;
	o.connect_timeout_ms = 3000;
	o.wait_ms = 1000;
	t0 = ch_now_ms();
	assert_int_equal(ch_call(&o, &job, &last, err, sizeof(err)), -ECONNREFUSED);
	assert_true(ch_now_ms() - t0 < 2500);
	assert_true(strlen(err) > 10);

	o.endpoint = "https://127.0.0.1:1";
	assert_int_equal(ch_call(&o, &job, &last, err, sizeof(err)), -EINVAL);
}

static void test_tls_never_completes(void **state)
{
	struct ch_call_opts o;
	struct ch_job job;
	struct ch_state last;
	char err[256], ep[64];
	int fd, port = grab_port(true, &fd);
	int64_t t0, dt;

	(void)state;
	make_job(&job, "uid-silent");
	snprintf(ep, sizeof(ep), "wss://127.0.0.1:%d", port);
	memset(&o, 0, sizeof(o));
	o.endpoint = ep;
	o.fingerprint = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	o.token = TOKEN;
	o.connect_timeout_ms = 500;
	o.wait_ms = 2000;
	t0 = ch_now_ms();
	assert_int_equal(ch_call(&o, &job, &last, err, sizeof(err)), -ETIMEDOUT);
	dt = ch_now_ms() - t0;
	assert_true(dt >= 500);
	assert_true(dt < 500 + 1500);
	close(fd);
}

static void test_oversized_and_garbage(void **state)
{
	struct tsrv *t = tsrv_start();
	struct ch_call_opts o;
	struct ch_job job;
	struct ch_state last;
	char err[256];
	size_t big = CH_MAX_MESSAGE + 4096;
	char *text = malloc(big);
	int rc;

	(void)state;
	/* a message over CH_MAX_MESSAGE: the server closes with 1009 */
	memset(text, ' ', big);
	call_opts(&o, t, 1000);
	rc = ch_call_raw(&o, "uid-big", text, big, &last, err, sizeof(err));
	assert_int_equal(rc, -EMSGSIZE);
	assert_int_equal(atomic_load(&t->job_calls), 0);

	/* ch_call itself refuses to send one */
	make_job(&job, "uid-big");
	job.cert_pem = malloc(big);
	memset(job.cert_pem, 'Z', big - 1);
	job.cert_pem[big - 1] = '\0';
	assert_int_equal(ch_call(&o, &job, &last, err, sizeof(err)), -EMSGSIZE);
	ch_job_cleanup(&job);

	/* not JSON: refused with a reason, on_job not called */
	rc = ch_call_raw(&o, "", "hello", 5, &last, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_int_equal(last.state, CH_REFUSED);
	assert_string_equal(last.reason, "BadRequest");
	assert_true(strlen(last.message) > 10);

	/* wrong version: refused as UnsupportedProtocol, uid echoed */
	{
		const char *v2 = "{\"v\":2,\"type\":\"job\",\"uid\":\"uid-v2\"}";

		rc = ch_call_raw(&o, "uid-v2", v2, strlen(v2), &last, err, sizeof(err));
		assert_int_equal(rc, 0);
		assert_int_equal(last.state, CH_REFUSED);
		assert_string_equal(last.uid, "uid-v2");
		assert_string_equal(last.reason, "UnsupportedProtocol");
	}
	assert_int_equal(atomic_load(&t->job_calls), 0);

	/* the server is still fine afterwards */
	make_job(&job, "uid-after");
	call_opts(&o, t, 100);
	assert_int_equal(ch_call(&o, &job, &last, err, sizeof(err)), 0);
	assert_int_equal(last.state, CH_ACCEPTED);
	free(text);
	tsrv_stop(t);
}

struct par {
	struct tsrv *t;
	int idx;
	int rc;
	struct ch_state last;
};

static void *par_call(void *arg)
{
	struct par *p = arg;
	struct ch_call_opts o;
	struct ch_job job;
	char uid[32], err[256];

	snprintf(uid, sizeof(uid), "par-%d", p->idx);
	make_job(&job, uid);
	call_opts(&o, p->t, 100);
	p->rc = ch_call(&o, &job, &p->last, err, sizeof(err));
	return NULL;
}

static void test_parallel_calls(void **state)
{
	struct tsrv *t = tsrv_start();
	struct par p[6];
	pthread_t th[6];

	(void)state;
	for (int i = 0; i < 6; i++) {
		p[i].t = t;
		p[i].idx = i;
		assert_int_equal(pthread_create(&th[i], NULL, par_call, &p[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		char uid[32];

		pthread_join(th[i], NULL);
		snprintf(uid, sizeof(uid), "par-%d", i);
		assert_int_equal(p[i].rc, 0);
		assert_int_equal(p[i].last.state, CH_ACCEPTED);
		assert_string_equal(p[i].last.uid, uid);
	}
	assert_int_equal(atomic_load(&t->job_calls), 6);
	tsrv_stop(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_call),
		cmocka_unit_test(test_large_job_reassembled),
		cmocka_unit_test(test_wait_expires),
		cmocka_unit_test(test_wrong_fingerprint),
		cmocka_unit_test(test_auth_refused),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_tls_never_completes),
		cmocka_unit_test(test_oversized_and_garbage),
		cmocka_unit_test(test_parallel_calls),
	};

	cts_test_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
