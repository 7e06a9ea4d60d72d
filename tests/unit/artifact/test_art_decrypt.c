/*
 * test_art_decrypt.c - art_decrypt failures on damaged artifacts: each kind
 * of damage gets its own error code and sentence, and leaves no file in the
 * output directory (neither out_path nor a hidden temp file). Also the
 * definite-length (DER) encoding of the same artifact, and authAttrs.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "art.h"

static char dir[] = "/tmp/pcp-art-dec-XXXXXX";
static char odir[300];
static long art_size; /* size of p256.cms */

static const char *pth(const char *name)
{
	static char bufs[8][400];
	static int i;
	char *b = bufs[i++ % 8];

	(void)snprintf(b, 400, "%s/%s", dir, name);
	return b;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int st;

	va_start(ap, fmt);
	(void)vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("command failed: %s", cmd);
}

/* Entries in the output directory (there must be none after a failure). */
static int out_entries(void)
{
	DIR *d = opendir(odir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void make_artifact(const char *name, const char *certname)
{
	struct art_writer *w = NULL;
	struct art_result res;
	struct art_cert *c = NULL;
	enum art_cert_error why;
	char msg[256], sha[ART_SHA256_HEX], *pem = NULL;
	uint64_t size;
	FILE *f;
	long len;

	f = fopen(pth(certname), "rb");
	assert_non_null(f);
	pem = calloc(1, 65536);
	assert_non_null(pem);
	len = (long)fread(pem, 1, 65535, f);
	fclose(f);
	assert_int_equal(art_cert_parse(pem, (size_t)len, false, time(NULL), &c, &why, msg, sizeof(msg)), 0);
	free(pem);
	assert_int_equal(art_writer_open(pth(name), c, &w, msg, sizeof(msg)), 0);
	assert_int_equal(art_writer_add_bytes(w, "manifest.json", "{}", 2, msg, sizeof(msg)), 0);
	assert_int_equal(art_writer_add_file(w, "app.tar", pth("src.img"), sha, &size, msg, sizeof(msg)), 0);
	assert_int_equal(art_writer_commit(w, &res, msg, sizeof(msg)), 0);
	art_cert_free(c);
}

static int setup(void **state)
{
	struct stat st;

	(void)state;
	if (!mkdtemp(dir))
		return -1;
	(void)snprintf(odir, sizeof(odir), "%s/out", dir);
	sh("cd %s && mkdir -m 700 out && head -c 700000 /dev/urandom > src.img && "
	   "for k in p256 other; do openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	   "-nodes -keyout $k.key -out $k.crt -days 2 -subj /CN=$k >/dev/null 2>&1; done && "
	   "openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.crt -days 2 "
	   "-subj /CN=rsa >/dev/null 2>&1",
	   dir);
	make_artifact("p256.cms", "p256.crt");
	make_artifact("rsa.cms", "rsa.crt");
	if (stat(pth("p256.cms"), &st) != 0)
		return -1;
	art_size = (long)st.st_size;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sh("rm -rf %s", dir);
	return 0;
}

/* Decrypts art (in dir) into out/plain.tar; expects rc and needle in the
 * message, and an empty output directory. */
static void expect_fail(const char *art, const char *key, const char *crt, int want_rc,
			const char *needle)
{
	char msg[512] = "", out[400];
	int rc;

	(void)snprintf(out, sizeof(out), "%s/plain.tar", odir);
	rc = art_decrypt(pth(art), pth(key), crt ? pth(crt) : NULL, out, msg, sizeof(msg));
	if (rc != want_rc || !strstr(msg, needle))
		fail_msg("%s: rc %d (want %d), message \"%s\" (want \"%s\")", art, rc, want_rc, msg,
			 needle);
	assert_int_equal(out_entries(), 0);
}

/* Copies p256.cms to name with the byte at off XORed with x. */
static void flipped(const char *name, long off, unsigned x)
{
	sh("cd %s && cp p256.cms %s && python3 -c \"import sys; f=open('%s','r+b'); f.seek(%ld); "
	   "b=f.read(1)[0]; f.seek(%ld); f.write(bytes([b ^ %u]))\"",
	   dir, name, name, off, off, x);
}

static void test_good_and_der(void **state)
{
	char msg[512], out[400];

	(void)state;
	(void)snprintf(out, sizeof(out), "%s/plain.tar", odir);
	assert_int_equal(art_decrypt(pth("p256.cms"), pth("p256.key"), pth("p256.crt"), out, msg, sizeof(msg)), 0);
	sh("openssl cms -decrypt -binary -inform DER -in %s -inkey %s -out %s/ossl.tar && cmp -s %s %s/ossl.tar",
	   pth("p256.cms"), pth("p256.key"), dir, out, dir);
	assert_int_equal(unlink(out), 0);
	/* the same structure re-encoded with definite lengths (primitive content) */
	sh("openssl cms -cmsout -inform DER -outform DER -in %s -out %s", pth("rsa.cms"), pth("der.cms"));
	assert_int_equal(art_decrypt(pth("der.cms"), pth("rsa.key"), NULL, out, msg, sizeof(msg)), 0);
	sh("openssl cms -decrypt -binary -inform DER -in %s -inkey %s -out %s/ossl.tar && cmp -s %s %s/ossl.tar",
	   pth("rsa.cms"), pth("rsa.key"), dir, out, dir);
	assert_int_equal(unlink(out), 0);
}

static void test_flipped_ciphertext(void **state)
{
	(void)state;
	flipped("ct.cms", art_size / 2, 0x55);
	expect_fail("ct.cms", "p256.key", "p256.crt", -EBADMSG, "AES-GCM tag mismatch");
}

/* The file ends: ... 00 00 (content EOC) 00 00 (aeci EOC) 04 10 <tag> 00 00 x3 */
static void test_flipped_tag(void **state)
{
	(void)state;
	flipped("tag.cms", art_size - 6 - 8, 0x01);
	expect_fail("tag.cms", "p256.key", "p256.crt", -EBADMSG, "AES-GCM tag mismatch");
	/* the mac's own header damaged: a malformed structure, not a tag mismatch */
	flipped("maclen.cms", art_size - 6 - 18, 0x01); /* OCTET STRING -> BOOLEAN-ish tag */
	expect_fail("maclen.cms", "p256.key", "p256.crt", -EPROTO, "not a well-formed");
}

static void test_truncated(void **state)
{
	(void)state;
	sh("head -c %ld %s > %s", art_size - 100, pth("p256.cms"), pth("short.cms"));
	expect_fail("short.cms", "p256.key", "p256.crt", -ENODATA, "is truncated");
	sh("head -c %ld %s > %s", art_size / 3, pth("p256.cms"), pth("short2.cms"));
	expect_fail("short2.cms", "p256.key", "p256.crt", -ENODATA, "is truncated");
	sh("head -c 40 %s > %s", pth("p256.cms"), pth("short3.cms"));
	expect_fail("short3.cms", "p256.key", "p256.crt", -ENODATA, "is truncated");
}

static void test_wrong_key(void **state)
{
	(void)state;
	/* another key of the same type: the content key does not unwrap */
	expect_fail("p256.cms", "other.key", NULL, -ENOKEY, "wrong key");
	expect_fail("rsa.cms", "other.key", NULL, -ENOENT, "not encrypted to");
	/* another certificate with its own key: not a recipient */
	expect_fail("p256.cms", "other.key", "other.crt", -ENOENT, "not encrypted to");
	/* key and certificate that do not belong together */
	expect_fail("p256.cms", "other.key", "p256.crt", -EINVAL, "does not belong");
}

static void test_refused_formats(void **state)
{
	(void)state;
	/* authAttrs [1] inserted before the mac (indefinite outer lengths) */
	sh("cd %s && python3 -c \"d=open('p256.cms','rb').read(); i=len(d)-6-18; "
	   "open('attrs.cms','wb').write(d[:i]+bytes([0xa1,2,0x30,0])+d[i:])\"",
	   dir);
	expect_fail("attrs.cms", "p256.key", "p256.crt", -ENOTSUP, "authenticated attributes");
	sh("cd %s && openssl cms -encrypt -aes-256-cbc -binary -outform DER -in src.img -recip p256.crt "
	   "-out env.cms",
	   dir);
	expect_fail("env.cms", "p256.key", "p256.crt", -ENOTSUP, "EnvelopedData");
	sh("cd %s && printf 'trailing' | cat p256.cms - > trail.cms", dir);
	expect_fail("trail.cms", "p256.key", "p256.crt", -EPROTO, "not a well-formed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_and_der),
		cmocka_unit_test(test_flipped_ciphertext),
		cmocka_unit_test(test_flipped_tag),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_refused_formats),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
