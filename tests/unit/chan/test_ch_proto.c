/* Unit tests for the channel's JSON messages and the self-signed certificate. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ch.h"
#include "ch_internal.h"

static void fill_job(struct ch_job *j)
{
	memset(j, 0, sizeof(*j));
	j->op = CH_OP_CHECKPOINT;
	snprintf(j->uid, sizeof(j->uid), "0b6f5c1e-1111-2222-3333-444455556666");
	snprintf(j->ns, sizeof(j->ns), "team-a");
	snprintf(j->name, sizeof(j->name), "nightly \"quoted\" \\ name");
	j->cert_pem = strdup("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
}

static void test_job_roundtrip(void **state)
{
	struct ch_job a, b;
	char *text = NULL, err[256];

	(void)state;
	fill_job(&a);
	assert_int_equal(ch_job_encode(&a, &text), 0);
	assert_non_null(strstr(text, "\"v\":2"));
	assert_non_null(strstr(text, "\"type\":\"job\""));
	assert_non_null(strstr(text, "\"op\":\"checkpoint\""));
	/* identity and the certificate only: nothing the helper reads from the CR */
	assert_null(strstr(text, "\"pod\""));
	assert_null(strstr(text, "leaveRunning"));
	assert_null(strstr(text, "containers"));
	assert_int_equal(ch_job_decode(text, strlen(text), &b, err, sizeof(err)), 0);
	assert_int_equal(b.op, a.op);
	assert_string_equal(b.uid, a.uid);
	assert_string_equal(b.ns, a.ns);
	assert_string_equal(b.name, a.name);
	assert_string_equal(b.cert_pem, a.cert_pem);
	free(text);
	ch_job_cleanup(&b);

	/* delete-artifact and cancel: identity only; a certPem is not kept */
	for (int op = CH_OP_DELETE_ARTIFACT; op <= CH_OP_CANCEL; op++) {
		a.op = (enum ch_op)op;
		assert_int_equal(ch_job_encode(&a, &text), 0);
		assert_non_null(strstr(text, op == CH_OP_CANCEL ? "\"op\":\"cancel\""
								: "\"op\":\"delete-artifact\""));
		assert_null(strstr(text, "certPem"));
		assert_int_equal(ch_job_decode(text, strlen(text), &b, err, sizeof(err)), 0);
		assert_int_equal(b.op, op);
		assert_null(b.cert_pem);
		free(text);
		ch_job_cleanup(&b);
	}
	/* a v1 job's extra fields are ignored: the helper never trusts them */
	{
		const char *v1 = "{\"v\":2,\"type\":\"job\",\"op\":\"checkpoint\",\"uid\":\"u\",\"namespace\":\"ns\","
				 "\"name\":\"n\",\"pod\":\"victim\",\"leaveRunning\":false,\"node\":\"x\"}";

		assert_int_equal(ch_job_decode(v1, strlen(v1), &b, err, sizeof(err)), 0);
		assert_string_equal(b.name, "n");
		ch_job_cleanup(&b);
	}
	ch_job_cleanup(&a);
	ch_job_cleanup(NULL);
}

static void test_state_roundtrip(void **state)
{
	struct ch_state a, b;
	char *text = NULL, err[256];
	enum ch_state_kind k;

	(void)state;
	memset(&a, 0, sizeof(a));
	snprintf(a.uid, sizeof(a.uid), "u-1");
	a.state = CH_FAILED;
	snprintf(a.reason, sizeof(a.reason), "KubeletError");
	snprintf(a.message, sizeof(a.message), "The kubelet said \"no\".\n");
	a.bytes = 123456789012ull;
	snprintf(a.container, sizeof(a.container), "app");
	assert_int_equal(ch_state_encode(&a, &text), 0);
	assert_int_equal(ch_state_decode(text, strlen(text), &b, err, sizeof(err)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	free(text);

	for (int i = CH_ACCEPTED; i <= CH_BUSY; i++) {
		assert_int_equal(ch_state_parse_name(ch_state_name((enum ch_state_kind)i), &k), 0);
		assert_int_equal((int)k, i);
	}
	assert_string_equal(ch_state_name(CH_SUCCEEDED), "succeeded");
	assert_string_equal(ch_state_name(CH_QUEUED), "queued");
	assert_string_equal(ch_state_name(CH_BUSY), "busy");
	assert_int_equal(ch_state_parse_name("done", &k), -EINVAL);
	assert_int_equal(ch_state_parse_name(NULL, &k), -EINVAL);
}

/* Decodes `text` as a job, expects `want`, and a non-empty error sentence. */
static void expect_job_error(const char *text, int want)
{
	struct ch_job j;
	char err[256] = "";

	assert_int_equal(ch_job_decode(text, strlen(text), &j, err, sizeof(err)), want);
	assert_true(strlen(err) > 5);
	assert_null(j.cert_pem);
	assert_string_equal(j.uid, "");
}

#define JOB_HEAD "{\"v\":2,\"type\":\"job\",\"op\":\"checkpoint\","
#define JOB_OK_TAIL "\"uid\":\"u\",\"namespace\":\"ns\",\"name\":\"n\""

static void test_decode_errors(void **state)
{
	char *big = NULL;
	struct ch_job j;
	struct ch_state st;
	char err[256];
	size_t off;

	(void)state;
	/* control: the minimal job is fine, unknown fields ignored */
	{
		const char *ok = JOB_HEAD JOB_OK_TAIL ",\"future\":{\"x\":[1,2]}}";

		assert_int_equal(ch_job_decode(ok, strlen(ok), &j, err, sizeof(err)), 0);
		assert_string_equal(j.name, "n");
		ch_job_cleanup(&j);
	}
	expect_job_error("{\"v\":1,\"type\":\"job\",\"op\":\"checkpoint\"," JOB_OK_TAIL "}", -EPROTO);
	expect_job_error("{\"type\":\"job\",\"op\":\"checkpoint\"," JOB_OK_TAIL "}", -EPROTO);
	expect_job_error("{\"v\":\"2\",\"type\":\"job\",\"op\":\"checkpoint\"," JOB_OK_TAIL "}",
			 -EPROTO);
	expect_job_error("{\"v\":2,\"type\":\"state\",\"op\":\"checkpoint\"," JOB_OK_TAIL "}",
			 -EPROTO);
	expect_job_error("{\"v\":2,\"type\":\"job\",\"op\":\"restore\"," JOB_OK_TAIL "}", -EPROTO);
	expect_job_error(JOB_HEAD "\"namespace\":\"ns\",\"name\":\"n\"}",
			 -EBADMSG); /* missing uid */
	expect_job_error(JOB_HEAD "\"uid\":\"\",\"namespace\":\"ns\",\"name\":\"n\"}",
			 -EBADMSG); /* empty uid */
	expect_job_error(JOB_HEAD "\"uid\":5,\"namespace\":\"ns\",\"name\":\"n\"}",
			 -EBADMSG); /* mistyped uid */
	expect_job_error(JOB_HEAD "\"uid\":\"u\",\"namespace\":\"ns\"}",
			 -EBADMSG); /* no name */
	expect_job_error(JOB_HEAD JOB_OK_TAIL ",\"certPem\":5}", -EBADMSG);
	expect_job_error("not json at all", -EBADMSG);
	expect_job_error("{\"v\":2,", -EBADMSG);
	expect_job_error("[1,2,3]", -EBADMSG);
	expect_job_error(JOB_HEAD JOB_OK_TAIL "} trailing", -EBADMSG);
	expect_job_error(JOB_HEAD "\"uid\":\"u\\u0000x\",\"namespace\":\"ns\",\"name\":\"n\"}",
			 -EBADMSG); /* embedded NUL */

	/* oversized name: 253 bytes fit CH_NAME_MAX (254 with NUL), 254 do not */
	big = malloc(CH_MAX_MESSAGE + 100);
	assert_non_null(big);
	for (size_t n = CH_NAME_MAX - 1; n <= CH_NAME_MAX; n++) {
		off = (size_t)snprintf(big, 200, JOB_HEAD "\"uid\":\"u\",\"namespace\":\"ns\",\"name\":\"");
		memset(big + off, 'a', n);
		off += n;
		memcpy(big + off, "\"}", 3);
		if (n == CH_NAME_MAX - 1) {
			assert_int_equal(ch_job_decode(big, strlen(big), &j, err, sizeof(err)), 0);
			assert_int_equal(strlen(j.name), n);
			ch_job_cleanup(&j);
		} else {
			expect_job_error(big, -EBADMSG);
		}
	}
	/* certificate over 64 KiB */
	off = (size_t)snprintf(big, 200, JOB_HEAD JOB_OK_TAIL ",\"certPem\":\"");
	memset(big + off, 'A', CH_MAX_CERT_PEM + 1);
	off += CH_MAX_CERT_PEM + 1;
	memcpy(big + off, "\"}", 3);
	expect_job_error(big, -EBADMSG);
	/* whole message over CH_MAX_MESSAGE */
	memset(big, ' ', CH_MAX_MESSAGE + 10);
	big[CH_MAX_MESSAGE + 10] = '\0';
	expect_job_error(big, -EMSGSIZE);
	free(big);

	/* state errors */
	{
		const char *s1 = "{\"v\":2,\"type\":\"state\",\"state\":\"running\"}";
		const char *s2 = "{\"v\":2,\"type\":\"state\",\"uid\":\"u\",\"state\":\"sleeping\"}";
		const char *s3 = "{\"v\":2,\"type\":\"job\",\"uid\":\"u\",\"state\":\"running\"}";
		const char *s4 = "{\"v\":2,\"type\":\"state\",\"uid\":\"u\",\"state\":\"running\",\"bytes\":-5}";

		assert_int_equal(ch_state_decode(s1, strlen(s1), &st, err, sizeof(err)), -EBADMSG);
		assert_int_equal(ch_state_decode(s2, strlen(s2), &st, err, sizeof(err)), -EBADMSG);
		assert_int_equal(ch_state_decode(s3, strlen(s3), &st, err, sizeof(err)), -EPROTO);
		assert_int_equal(ch_state_decode(s4, strlen(s4), &st, err, sizeof(err)), -EBADMSG);
		assert_int_equal(ch_state_decode("", 0, &st, err, sizeof(err)), -EBADMSG);
	}
}

static void test_self_signed(void **state)
{
	char *cert = NULL, *key = NULL, fp[65], fp2[65], want[65];
	unsigned char md[32];
	unsigned int mdlen = 0;
	BIO *b;
	X509 *x;
	EVP_PKEY *k;
	GENERAL_NAMES *sans;

	(void)state;
	assert_int_equal(ch_make_self_signed("127.0.0.2", 30, &cert, &key, fp), 0);
	assert_int_equal(strlen(fp), 64);
	assert_non_null(strstr(cert, "BEGIN CERTIFICATE"));
	assert_non_null(strstr(key, "PRIVATE KEY"));

	/* independent computation: SHA-256 over the DER */
	b = BIO_new_mem_buf(cert, -1);
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(x);
	assert_int_equal(X509_digest(x, EVP_sha256(), md, &mdlen), 1);
	for (unsigned i = 0; i < 32; i++)
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(fp, want);
	assert_int_equal(ch_cert_fingerprint(cert, fp2), 0);
	assert_string_equal(fp2, fp);

	/* key matches, P-256, v3, SAN IP */
	b = BIO_new_mem_buf(key, -1);
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(k);
	assert_int_equal(X509_check_private_key(x, k), 1);
	assert_true(EVP_PKEY_is_a(k, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(k), 256);
	assert_int_equal(X509_get_version(x), 2);
	assert_int_equal(X509_check_ip_asc(x, "127.0.0.2", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "127.0.0.3", 0), 0);
	sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	assert_non_null(sans);
	assert_int_equal(sk_GENERAL_NAME_num(sans), 1);
	GENERAL_NAMES_free(sans);
	EVP_PKEY_free(k);
	X509_free(x);

	/* two certificates never share serial/fingerprint */
	{
		char *c2 = NULL, *k2 = NULL, f2[65];

		assert_int_equal(ch_make_self_signed("::1", 1, &c2, &k2, f2), 0);
		assert_string_not_equal(f2, fp);
		free(c2);
		free(k2);
	}
	free(cert);
	free(key);

	assert_int_equal(ch_make_self_signed("not-an-ip", 30, &cert, &key, fp), -EINVAL);
	assert_null(cert);
	assert_null(key);
	assert_int_equal(ch_make_self_signed("10.0.0.1", 0, &cert, &key, fp), -EINVAL);
	assert_int_equal(ch_cert_fingerprint("garbage", fp), -EINVAL);
}

static void test_fingerprint_normalize(void **state)
{
	char out[65];
	const char *lower = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

	(void)state;
	assert_int_equal(ch_fingerprint_normalize(lower, out), 0);
	assert_string_equal(out, lower);
	assert_int_equal(ch_fingerprint_normalize(
				 "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff",
				 out),
			 0);
	assert_string_equal(out, lower);
	assert_int_equal(ch_fingerprint_normalize("abc", out), -EINVAL);
	assert_int_equal(ch_fingerprint_normalize(NULL, out), -EINVAL);
	assert_int_equal(ch_fingerprint_normalize(
				 "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", out),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_job_roundtrip),
		cmocka_unit_test(test_state_roundtrip),
		cmocka_unit_test(test_decode_errors),
		cmocka_unit_test(test_self_signed),
		cmocka_unit_test(test_fingerprint_normalize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
