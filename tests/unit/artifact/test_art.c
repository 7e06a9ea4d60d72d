/*
 * test_art.c - lib/artifact: certificate checks, plain and encrypted bundles
 * (checked against the openssl CLI), streaming decryption, failure cleanup
 * and bounded memory on a 512 MiB input.
 *
 * Env: PCP_ART_BIG_MIB overrides the size of the streaming test (default 512,
 * 0 skips it).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "art.h"
#include "fsutil.h"

static char tdir[256];
static char cmd[8192];

static const char *pth(const char *name)
{
	static char bufs[8][512];
	static int i;
	char *b = bufs[i++ % 8];

	(void)snprintf(b, 512, "%s/%s", tdir, name);
	return b;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	va_list ap;
	int st;

	va_start(ap, fmt);
	(void)vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static char *slurp(const char *path, size_t *len)
{
	char *p = NULL;

	if (fsu_read_file(path, 64u << 20, &p, len) != 0)
		return NULL;
	return p;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Number of hidden (temp) files in a directory. */
static int hidden_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] == '.' && strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void gen_cert(const char *name, const char *newkey, const char *days)
{
	assert_int_equal(sh("openssl req -x509 %s -nodes -keyout %s/%s.key -out %s/%s.crt "
			    "-days %s -subj /CN=%s >/dev/null 2>&1",
			    newkey, tdir, name, tdir, name, days, name),
			 0);
}

static int setup(void **state)
{
	(void)state;
	(void)snprintf(tdir, sizeof(tdir), "%s/pcp-art-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tdir))
		return -1;
	gen_cert("rsa2048", "-newkey rsa:2048", "30");
	gen_cert("rsa3072", "-newkey rsa:3072", "30");
	gen_cert("rsa1024", "-newkey rsa:1024", "30");
	gen_cert("p256", "-newkey ec -pkeyopt ec_paramgen_curve:P-256", "30");
	gen_cert("p384", "-newkey ec -pkeyopt ec_paramgen_curve:P-384", "30");
	gen_cert("k256", "-newkey ec -pkeyopt ec_paramgen_curve:secp256k1", "30");
	gen_cert("ed25519", "-newkey ed25519", "30");
	gen_cert("ed448", "-newkey ed448", "30");
	gen_cert("other", "-newkey rsa:2048", "30");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (tdir[0] && getenv("PCP_ART_KEEP") == NULL)
		(void)sh("rm -rf %s", tdir);
	return 0;
}

static struct art_cert *load(const char *name, bool allow_expired, time_t now,
			     enum art_cert_error *why, char *msg, size_t msglen, int *rcp)
{
	char file[64];
	struct art_cert *c = NULL;
	size_t len = 0;
	char *pem;
	int rc;

	(void)snprintf(file, sizeof(file), "%s.crt", name);
	pem = slurp(pth(file), &len);
	assert_non_null(pem);
	rc = art_cert_parse(pem, len, allow_expired, now, &c, why, msg, msglen);
	free(pem);
	if (rcp)
		*rcp = rc;
	return c;
}

/* ------------------------------------------------------------ certificates */

static void test_cert_supported(void **state)
{
	static const struct {
		const char *name, *desc;
	} ok[] = { { "rsa2048", "RSA-2048" }, { "rsa3072", "RSA-3072" }, { "p256", "EC-P256" },
		   { "p384", "EC-P384" } };
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		enum art_cert_error why = ART_CERT_GARBAGE;
		char msg[256] = "x", fp[ART_SHA256_HEX], file[64];
		size_t len = 0;
		char *want;
		int rc;
		struct art_cert *c = load(ok[i].name, false, time(NULL), &why, msg, sizeof(msg), &rc);

		assert_int_equal(rc, 0);
		assert_non_null(c);
		assert_int_equal(why, ART_CERT_OK);
		assert_string_equal(msg, "");
		assert_string_equal(art_cert_key_desc(c), ok[i].desc);
		/* fingerprint = sha256 of the DER, as openssl computes it */
		(void)snprintf(file, sizeof(file), "%s.fp", ok[i].name);
		assert_int_equal(sh("openssl x509 -in %s/%s.crt -outform DER | sha256sum | cut -c1-64 > %s",
				    tdir, ok[i].name, pth(file)),
				 0);
		want = slurp(pth(file), &len);
		assert_non_null(want);
		assert_true(len >= 64);
		memcpy(fp, want, 64);
		fp[64] = '\0';
		assert_string_equal(art_cert_fingerprint(c), fp);
		free(want);
		art_cert_free(c);
	}
	art_cert_free(NULL);
}

static void expect_refusal(const char *name, enum art_cert_error want, const char *needle)
{
	enum art_cert_error why = ART_CERT_OK;
	char msg[256] = "";
	int rc;
	struct art_cert *c = load(name, false, time(NULL), &why, msg, sizeof(msg), &rc);

	assert_int_equal(rc, -EINVAL);
	assert_null(c);
	assert_int_equal(why, want);
	if (!strstr(msg, needle))
		fail_msg("%s: message \"%s\" lacks \"%s\"", name, msg, needle);
}

static void test_cert_unsupported_keys(void **state)
{
	(void)state;
	expect_refusal("ed25519", ART_CERT_UNSUPPORTED_KEY,
		       "tls.crt holds an Ed25519 key; only RSA (2048 bits or more) and EC "
		       "P-256/P-384 certificates are supported");
	expect_refusal("ed448", ART_CERT_UNSUPPORTED_KEY, "Ed448");
	expect_refusal("k256", ART_CERT_UNSUPPORTED_KEY, "secp256k1");
	expect_refusal("rsa1024", ART_CERT_UNSUPPORTED_KEY, "1024 bits");
}

static void test_cert_validity(void **state)
{
	enum art_cert_error why;
	char msg[256];
	int rc;
	struct art_cert *c;

	(void)state;
	/* 10 years from now the 30-day certificate has expired */
	c = load("p256", false, time(NULL) + 10L * 365 * 86400, &why, msg, sizeof(msg), &rc);
	assert_null(c);
	assert_int_equal(rc, -EINVAL);
	assert_int_equal(why, ART_CERT_EXPIRED);
	assert_non_null(strstr(msg, "expired on"));
	/* in 2001 it was not yet valid */
	c = load("p256", false, 1000000000, &why, msg, sizeof(msg), &rc);
	assert_null(c);
	assert_int_equal(why, ART_CERT_NOT_YET_VALID);
	assert_non_null(strstr(msg, "not valid before"));
	/* allow_expired skips the check */
	c = load("p256", true, time(NULL) + 10L * 365 * 86400, &why, msg, sizeof(msg), &rc);
	assert_int_equal(rc, 0);
	assert_non_null(c);
	art_cert_free(c);
	/* a certificate generated already expired (openssl x509 -days -1 style) */
	assert_int_equal(sh("openssl x509 -in %s -signkey %s -days -1 -out %s >/dev/null 2>&1",
			    pth("rsa2048.crt"), pth("rsa2048.key"), pth("expired.crt")),
			 0);
	c = load("expired", false, time(NULL), &why, msg, sizeof(msg), &rc);
	assert_null(c);
	assert_int_equal(why, ART_CERT_EXPIRED);
}

static void test_cert_garbage(void **state)
{
	static const char junk[] = "hello, I am not a certificate\n";
	static const char bad_pem[] = "-----BEGIN CERTIFICATE-----\nAAAA!!!!\n-----END CERTIFICATE-----\n";
	enum art_cert_error why = ART_CERT_OK;
	struct art_cert *c = (struct art_cert *)1;
	char msg[256];
	size_t len;
	char *key;

	(void)state;
	assert_int_equal(art_cert_parse(junk, sizeof(junk) - 1, false, time(NULL), &c, &why, msg, sizeof(msg)),
			 -EINVAL);
	assert_null(c);
	assert_int_equal(why, ART_CERT_GARBAGE);
	assert_non_null(strstr(msg, "does not hold a PEM certificate"));

	assert_int_equal(art_cert_parse(bad_pem, sizeof(bad_pem) - 1, false, time(NULL), &c, &why, msg,
					sizeof(msg)),
			 -EINVAL);
	assert_int_equal(why, ART_CERT_GARBAGE);

	assert_int_equal(art_cert_parse("", 0, false, time(NULL), &c, &why, msg, sizeof(msg)), -EINVAL);
	assert_int_equal(why, ART_CERT_GARBAGE);
	assert_non_null(strstr(msg, "empty"));

	/* a private key where the certificate should be */
	key = slurp(pth("p256.key"), &len);
	assert_non_null(key);
	assert_int_equal(art_cert_parse(key, len, false, time(NULL), &c, &why, msg, sizeof(msg)), -EINVAL);
	assert_int_equal(why, ART_CERT_GARBAGE);
	assert_non_null(strstr(msg, "private key"));
	free(key);
	/* key + certificate in one file: refused too (never carry a key) */
	assert_int_equal(sh("cat %s %s > %s", pth("p256.key"), pth("p256.crt"), pth("bundle.crt")), 0);
	assert_null(load("bundle", false, time(NULL), &why, msg, sizeof(msg), NULL));
	assert_int_equal(why, ART_CERT_GARBAGE);
	/* a chain: the first certificate is used */
	assert_int_equal(sh("cat %s %s > %s", pth("p384.crt"), pth("rsa2048.crt"), pth("chain.crt")), 0);
	c = load("chain", false, time(NULL), &why, msg, sizeof(msg), NULL);
	assert_non_null(c);
	assert_string_equal(art_cert_key_desc(c), "EC-P384");
	art_cert_free(c);
}

/* ------------------------------------------------------------ bundles */

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

#define SRC1_LEN (700 * 1024 + 13) /* spans several 256 KiB chunks */
static const char manifest[] = "{\"pod\":\"demo\"}";

/* Creates the source files; returns the src1 content (caller frees). */
static unsigned char *make_sources(void)
{
	unsigned char *b = malloc(SRC1_LEN);

	assert_non_null(b);
	for (size_t i = 0; i < SRC1_LEN; i++)
		b[i] = (unsigned char)((i * 2654435761u) >> 13);
	write_file(pth("src1.tar"), b, SRC1_LEN);
	write_file(pth("src2.tar"), "tiny", 4);
	return b;
}

/* Writes the standard 3-entry bundle. */
static void write_bundle(const char *final, const struct art_cert *rc_cert, struct art_result *res)
{
	struct art_writer *w = NULL;
	char msg[256], sha[ART_SHA256_HEX];
	uint64_t size = 0;

	assert_int_equal(art_writer_open(final, rc_cert, &w, msg, sizeof(msg)), 0);
	assert_non_null(w);
	assert_false(exists(final));
	assert_int_equal(art_writer_add_bytes(w, "manifest.json", manifest, strlen(manifest), msg, sizeof(msg)), 0);
	assert_int_equal(art_writer_add_file(w, "containers/app.tar", pth("src1.tar"), sha, &size, msg, sizeof(msg)), 0);
	assert_int_equal(size, SRC1_LEN);
	{
		char want[ART_SHA256_HEX];
		uint64_t wsz;

		assert_int_equal(art_sha256_file(pth("src1.tar"), want, &wsz), 0);
		assert_string_equal(sha, want);
	}
	assert_int_equal(art_writer_add_file(w, "containers/sidecar.tar", pth("src2.tar"), sha, &size, msg, sizeof(msg)), 0);
	assert_int_equal(size, 4);
	assert_true(art_writer_bytes_out(w) > 0);
	assert_false(exists(final));
	assert_int_equal(hidden_files(tdir), 1);
	assert_int_equal(art_writer_commit(w, res, msg, sizeof(msg)), 0);
	assert_true(exists(final));
	assert_int_equal(hidden_files(tdir), 0);
}

/* Checks a plain tar: entries in order, contents byte for byte. */
static void check_tar(const char *path, const unsigned char *src1)
{
	static const char *const names[] = { "manifest.json", "containers/app.tar", "containers/sidecar.tar" };
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	size_t idx = 0;

	assert_non_null(a);
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		la_int64_t sz = archive_entry_size(e);
		unsigned char *buf;

		assert_true(idx < 3);
		assert_string_equal(archive_entry_pathname(e), names[idx]);
		assert_int_equal(archive_entry_perm(e), 0600);
		buf = malloc((size_t)sz + 1);
		assert_non_null(buf);
		assert_int_equal(archive_read_data(a, buf, (size_t)sz + 1), sz);
		if (idx == 0)
			assert_memory_equal(buf, manifest, strlen(manifest));
		else if (idx == 1)
			assert_true(sz == SRC1_LEN && memcmp(buf, src1, SRC1_LEN) == 0);
		else
			assert_true(sz == 4 && memcmp(buf, "tiny", 4) == 0);
		free(buf);
		idx++;
	}
	assert_int_equal(idx, 3);
	archive_read_free(a);
	/* GNU tar agrees */
	assert_int_equal(sh("tar -tf %s > %s/list.txt && printf 'manifest.json\\ncontainers/app.tar\\ncontainers/sidecar.tar\\n' | cmp -s - %s/list.txt",
			    path, tdir, tdir),
			 0);
}

static void check_result(const struct art_result *res, const char *final, bool enc)
{
	char sha[ART_SHA256_HEX];
	uint64_t size = 0;
	struct stat st;

	assert_string_equal(res->path, final);
	assert_int_equal(art_sha256_file(final, sha, &size), 0);
	assert_string_equal(res->sha256, sha);
	assert_int_equal(res->size_bytes, size);
	assert_int_equal(stat(final, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal((uint64_t)st.st_size, size);
	assert_int_equal(res->encrypted, enc);
}

static void test_writer_plain(void **state)
{
	struct art_result res;
	unsigned char *src1;
	const char *final = pth("plain.tar");

	(void)state;
	src1 = make_sources();
	write_bundle(final, NULL, &res);
	check_result(&res, final, false);
	assert_string_equal(res.recipient_fingerprint, "");
	check_tar(final, src1);
	free(src1);
}

static void encrypted_roundtrip(const char *name, const char *kt_needle)
{
	struct art_result res;
	unsigned char *src1;
	char art[64], ossl[64], ours[64], printed[64];
	char msg[256];
	enum art_cert_error why;
	struct art_cert *c;
	size_t plen = 0;
	char *print;

	(void)snprintf(art, sizeof(art), "%s.cms", name);
	(void)snprintf(ossl, sizeof(ossl), "%s-openssl.tar", name);
	(void)snprintf(ours, sizeof(ours), "%s-ours.tar", name);
	(void)snprintf(printed, sizeof(printed), "%s-print.txt", name);
	src1 = make_sources();
	c = load(name, false, time(NULL), &why, msg, sizeof(msg), NULL);
	assert_non_null(c);
	write_bundle(pth(art), c, &res);
	check_result(&res, pth(art), true);
	assert_string_equal(res.recipient_fingerprint, art_cert_fingerprint(c));
	/* the standard tool decrypts it to the tar */
	assert_int_equal(sh("openssl cms -decrypt -binary -inform DER -in %s -inkey %s/%s.key -recip %s/%s.crt -out %s",
			    pth(art), tdir, name, tdir, name, pth(ossl)),
			 0);
	check_tar(pth(ossl), src1);
	/* the structure is AuthEnvelopedData with AES-256-GCM and the right key transport */
	assert_int_equal(sh("openssl cms -cmsout -print -inform DER -in %s > %s", pth(art), pth(printed)), 0);
	print = slurp(pth(printed), &plen);
	assert_non_null(print);
	assert_non_null(strstr(print, "id-smime-ct-authEnvelopedData"));
	assert_non_null(strstr(print, "aes-256-gcm"));
	if (!strstr(print, kt_needle))
		fail_msg("%s: no %s in the CMS dump", name, kt_needle);
	free(print);
	/* our decryptor gives the same bytes */
	assert_int_equal(art_decrypt(pth(art), pth("x.key"), NULL, pth(ours), msg, sizeof(msg)) < 0, 1);
	{
		char key[64], crt[64];

		(void)snprintf(key, sizeof(key), "%s.key", name);
		(void)snprintf(crt, sizeof(crt), "%s.crt", name);
		assert_int_equal(art_decrypt(pth(art), pth(key), pth(crt), pth(ours), msg, sizeof(msg)), 0);
	}
	assert_int_equal(sh("cmp -s %s %s", pth(ossl), pth(ours)), 0);
	{
		struct stat st;

		assert_int_equal(stat(pth(ours), &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
	}
	assert_int_equal(hidden_files(tdir), 0);
	art_cert_free(c);
	free(src1);
}

static void test_writer_rsa(void **state)
{
	(void)state;
	encrypted_roundtrip("rsa2048", "rsaesOaep");
	encrypted_roundtrip("rsa3072", "rsaesOaep");
}

static void test_writer_p256(void **state)
{
	(void)state;
	encrypted_roundtrip("p256", "dhSinglePass-stdDH-sha256kdf-scheme");
}

static void test_writer_p384(void **state)
{
	(void)state;
	encrypted_roundtrip("p384", "dhSinglePass-stdDH-sha384kdf-scheme");
}

/* Decryption failures: nothing at out_path, no temp files. */
static void expect_decrypt_fails(const char *art, const char *key, const char *crt, const char *needle)
{
	char msg[256] = "";
	const char *out = pth("fail-out.tar");

	assert_true(art_decrypt(art, key, crt, out, msg, sizeof(msg)) < 0);
	assert_false(exists(out));
	assert_int_equal(hidden_files(tdir), 0);
	if (needle && !strstr(msg, needle))
		fail_msg("decrypt message \"%s\" lacks \"%s\"", msg, needle);
}

static void test_decrypt_failures(void **state)
{
	struct stat st;
	off_t size;

	(void)state;
	/* from test_writer_rsa/p256 */
	assert_int_equal(stat(pth("rsa2048.cms"), &st), 0);
	size = st.st_size;
	/* wrong key pair */
	expect_decrypt_fails(pth("rsa2048.cms"), pth("other.key"), pth("other.crt"), "not encrypted to");
	/* key without cert, wrong key: the content key does not unwrap */
	expect_decrypt_fails(pth("rsa2048.cms"), pth("other.key"), NULL, "wrong key");
	/* key and cert that do not belong together */
	expect_decrypt_fails(pth("rsa2048.cms"), pth("other.key"), pth("rsa2048.crt"), "does not belong");
	/* EC artifact, RSA key */
	expect_decrypt_fails(pth("p256.cms"), pth("rsa2048.key"), pth("rsa2048.crt"), NULL);
	/* a flipped byte in the middle of the ciphertext */
	assert_int_equal(sh("cp %s %s && printf '\\125' | dd of=%s bs=1 seek=%lld conv=notrunc 2>/dev/null",
			    pth("rsa2048.cms"), pth("tampered.cms"), pth("tampered.cms"), (long long)size / 2),
			 0);
	assert_int_equal(sh("cmp -s %s %s", pth("rsa2048.cms"), pth("tampered.cms")), 1);
	expect_decrypt_fails(pth("tampered.cms"), pth("rsa2048.key"), pth("rsa2048.crt"), "authentication");
	/* openssl agrees that it is bad */
	assert_true(sh("openssl cms -decrypt -binary -inform DER -in %s -inkey %s -recip %s -out %s 2>/dev/null",
		       pth("tampered.cms"), pth("rsa2048.key"), pth("rsa2048.crt"), pth("o.tar")) != 0);
	/* a flipped byte in the tag (mac) near the end */
	assert_int_equal(sh("cp %s %s && printf '\\001' | dd of=%s bs=1 seek=%lld conv=notrunc 2>/dev/null",
			    pth("p256.cms"), pth("tampered2.cms"), pth("tampered2.cms"), 0LL),
			 0);
	expect_decrypt_fails(pth("tampered2.cms"), pth("p256.key"), pth("p256.crt"), NULL);
	assert_int_equal(stat(pth("p256.cms"), &st), 0);
	assert_int_equal(sh("cp %s %s && printf '\\252' | dd of=%s bs=1 seek=%lld conv=notrunc 2>/dev/null",
			    pth("p256.cms"), pth("tampered3.cms"), pth("tampered3.cms"), (long long)st.st_size - 10),
			 0);
	expect_decrypt_fails(pth("tampered3.cms"), pth("p256.key"), pth("p256.crt"), NULL);
	/* truncated */
	assert_int_equal(sh("head -c %lld %s > %s", (long long)size - 100, pth("rsa2048.cms"), pth("short.cms")), 0);
	expect_decrypt_fails(pth("short.cms"), pth("rsa2048.key"), pth("rsa2048.crt"), "truncated");
	/* a plain tar is not an artifact */
	expect_decrypt_fails(pth("plain.tar"), pth("rsa2048.key"), pth("rsa2048.crt"), NULL);
	/* missing input */
	expect_decrypt_fails(pth("nope.cms"), pth("rsa2048.key"), pth("rsa2048.crt"), NULL);
}

static void test_writer_abort_and_failures(void **state)
{
	struct art_writer *w = NULL;
	struct art_result res;
	char msg[256], sha[ART_SHA256_HEX];
	uint64_t size;
	const char *final = pth("aborted.tar");
	unsigned char *src1;
	enum art_cert_error why;
	struct art_cert *c;

	(void)state;
	src1 = make_sources();
	/* abort after some data: nothing left */
	assert_int_equal(art_writer_open(final, NULL, &w, msg, sizeof(msg)), 0);
	assert_int_equal(art_writer_add_file(w, "a.tar", pth("src1.tar"), sha, &size, msg, sizeof(msg)), 0);
	assert_int_equal(hidden_files(tdir), 1);
	art_writer_abort(w);
	art_writer_abort(NULL);
	assert_false(exists(final));
	assert_int_equal(hidden_files(tdir), 0);

	/* encrypted abort */
	c = load("p256", false, time(NULL), &why, msg, sizeof(msg), NULL);
	assert_non_null(c);
	assert_int_equal(art_writer_open(final, c, &w, msg, sizeof(msg)), 0);
	assert_int_equal(art_writer_add_file(w, "a.tar", pth("src1.tar"), sha, &size, msg, sizeof(msg)), 0);
	art_writer_abort(w);
	assert_false(exists(final));
	assert_int_equal(hidden_files(tdir), 0);

	/* a missing source file fails the add; commit then fails and leaves nothing */
	assert_int_equal(art_writer_open(final, c, &w, msg, sizeof(msg)), 0);
	assert_int_equal(art_writer_add_bytes(w, "manifest.json", "{}", 2, msg, sizeof(msg)), 0);
	assert_int_equal(art_writer_add_file(w, "b.tar", pth("missing.tar"), sha, &size, msg, sizeof(msg)), -ENOENT);
	assert_non_null(strstr(msg, "missing.tar"));
	assert_true(art_writer_add_bytes(w, "x", "y", 1, msg, sizeof(msg)) < 0);
	assert_true(art_writer_commit(w, &res, msg, sizeof(msg)) < 0);
	assert_false(exists(final));
	assert_int_equal(hidden_files(tdir), 0);
	assert_string_equal(res.sha256, "");

	/* bad entry names */
	assert_int_equal(art_writer_open(final, NULL, &w, msg, sizeof(msg)), 0);
	assert_int_equal(art_writer_add_bytes(w, "../evil", "x", 1, msg, sizeof(msg)), -EINVAL);
	art_writer_abort(w);
	assert_int_equal(art_writer_open(final, NULL, &w, msg, sizeof(msg)), 0);
	assert_int_equal(art_writer_add_bytes(w, "/abs", "x", 1, msg, sizeof(msg)), -EINVAL);
	assert_true(art_writer_commit(w, NULL, msg, sizeof(msg)) < 0);
	assert_false(exists(final));

	/* a directory as source, and a missing artifact directory */
	assert_int_equal(art_writer_open(final, NULL, &w, msg, sizeof(msg)), 0);
	assert_int_equal(art_writer_add_file(w, "d", tdir, sha, &size, msg, sizeof(msg)), -EINVAL);
	art_writer_abort(w);
	w = (struct art_writer *)1;
	assert_int_equal(art_writer_open(pth("no/such/dir/a.tar"), NULL, &w, msg, sizeof(msg)), -ENOENT);
	assert_null(w);
	assert_int_equal(hidden_files(tdir), 0);

	/* empty bundle is a valid (empty) tar */
	assert_int_equal(art_writer_open(final, NULL, &w, msg, sizeof(msg)), 0);
	assert_int_equal(art_writer_commit(w, &res, msg, sizeof(msg)), 0);
	assert_true(exists(final));
	assert_int_equal(sh("tar -tf %s | wc -c | grep -qx 0", final), 0);
	assert_int_equal(unlink(final), 0);

	/* commit replaces an older artifact atomically */
	art_cert_free(c);
	free(src1);
}

/* ------------------------------------------------ streaming / bounded memory */

static long maxrss_kib(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return -1;
	return ru.ru_maxrss;
}

/* Child: encrypt a sparse big file to P-256, decrypt it with art_decrypt,
 * check the content hash; exit code 0 when all ok and RSS stayed bounded. */
static int big_child(uint64_t mib)
{
	struct art_writer *w = NULL;
	struct art_result res;
	enum art_cert_error why;
	struct art_cert *c;
	char msg[256], sha_in[ART_SHA256_HEX];
	uint64_t size = 0;
	long rss0, rss1, rss2;
	int fd;

	fd = open(pth("big.img"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)(mib << 20)) != 0)
		return 10;
	/* some non-zero bytes so the content is not trivially zero */
	if (pwrite(fd, "PodCheckpoint", 13, (off_t)((mib << 20) / 3)) != 13)
		return 11;
	close(fd);
	c = load("p256", false, time(NULL), &why, msg, sizeof(msg), NULL);
	if (!c)
		return 12;
	rss0 = maxrss_kib();
	if (art_writer_open(pth("big.cms"), c, &w, msg, sizeof(msg)) != 0 ||
	    art_writer_add_bytes(w, "manifest.json", "{}", 2, msg, sizeof(msg)) != 0 ||
	    art_writer_add_file(w, "big.img", pth("big.img"), sha_in, &size, msg, sizeof(msg)) != 0 ||
	    art_writer_commit(w, &res, msg, sizeof(msg)) != 0)
		return 13;
	rss1 = maxrss_kib();
	if (art_decrypt(pth("big.cms"), pth("p256.key"), pth("p256.crt"), pth("big.tar"), msg, sizeof(msg)) != 0) {
		fprintf(stderr, "decrypt: %s\n", msg);
		return 14;
	}
	rss2 = maxrss_kib();
	unlink(pth("big.cms"));
	/* the inner entry hashes to the input */
	{
		struct archive *a = archive_read_new();
		struct archive_entry *e;
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		unsigned char d[32], *buf = malloc(1 << 20);
		unsigned int dl = 0;
		char got[ART_SHA256_HEX];
		bool found = false;
		static const char hx[] = "0123456789abcdef";

		archive_read_support_format_tar(a);
		if (archive_read_open_filename(a, pth("big.tar"), 1 << 20) != ARCHIVE_OK)
			return 15;
		while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
			la_ssize_t n;

			if (strcmp(archive_entry_pathname(e), "big.img") != 0)
				continue;
			found = true;
			EVP_DigestInit_ex(md, EVP_sha256(), NULL);
			while ((n = archive_read_data(a, buf, 1 << 20)) > 0)
				EVP_DigestUpdate(md, buf, (size_t)n);
			EVP_DigestFinal_ex(md, d, &dl);
		}
		archive_read_free(a);
		EVP_MD_CTX_free(md);
		free(buf);
		if (!found)
			return 16;
		for (unsigned i = 0; i < 32; i++) {
			got[2 * i] = hx[d[i] >> 4];
			got[2 * i + 1] = hx[d[i] & 15];
		}
		got[64] = '\0';
		if (strcmp(got, sha_in) != 0)
			return 17;
	}
	unlink(pth("big.tar"));
	unlink(pth("big.img"));
	art_cert_free(c);
	fprintf(stderr, "streaming: input %llu MiB, artifact %llu bytes, peak RSS before %ld KiB, "
			"after encrypt %ld KiB, after decrypt %ld KiB\n",
		(unsigned long long)mib, (unsigned long long)res.size_bytes, rss0, rss1, rss2);
	/* growth must be tiny compared with the input (bounded by chunk sizes) */
	if (rss1 - rss0 > 64 * 1024 || rss2 - rss0 > 64 * 1024)
		return 18;
	return 0;
}

static void test_streaming_bounded_memory(void **state)
{
	const char *env = getenv("PCP_ART_BIG_MIB");
	long mib = 512;
	pid_t pid;
	int st = 0;

	(void)state;
	if (env) {
		char *end;

		mib = strtol(env, &end, 10);
		if (*end || mib < 0)
			mib = 512;
	}
	if (mib == 0)
		skip();
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(big_child((uint64_t)mib));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cert_supported),
		cmocka_unit_test(test_cert_unsupported_keys),
		cmocka_unit_test(test_cert_validity),
		cmocka_unit_test(test_cert_garbage),
		cmocka_unit_test(test_writer_plain),
		cmocka_unit_test(test_writer_rsa),
		cmocka_unit_test(test_writer_p256),
		cmocka_unit_test(test_writer_p384),
		cmocka_unit_test(test_decrypt_failures),
		cmocka_unit_test(test_writer_abort_and_failures),
		cmocka_unit_test(test_streaming_bounded_memory),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
