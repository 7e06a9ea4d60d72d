/* libFuzzer driver: the decryption side's BER reader (art_ber_parse and the
 * skeleton OpenSSL then parses) and the entry point art_decrypt, on any bytes
 * as the artifact file. Invariants: the reader returns one of its documented
 * codes with offsets inside what it copied; art_decrypt either succeeds and
 * leaves exactly out_path, or fails with a sentence and leaves no file.
 * The seed corpus (tests/fuzz/corpus/fuzz_cms) holds artifacts encrypted to
 * the throwaway P-256 fixture below, so the fuzzer reaches the recipient and
 * the GCM code; it is test material, not a secret. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "art_internal.h"

static const char fixture_key[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgaSwAWeymoJlvLgoP\n"
	"IDe5OyCVq7X2L6oMc5KWRYB53KKhRANCAASGMa69pqNJmgxUzDEquIyVtZ4b/Uyz\n"
	"1qILYbbOCyK1s9T37t22cvj5LYjKML6GFk8qPbAkuqxkKfZjjAPXRaF4\n"
	"-----END PRIVATE KEY-----\n";
static const char fixture_crt[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBfjCCASOgAwIBAgIUZSAxVOSk6rKfnzLm29+O/4TqsRQwCgYIKoZIzj0EAwIw\n"
	"EzERMA8GA1UEAwwIcGNwLWZ1enowIBcNMjYxMjAxMDc1NDMyWhgPMjEyNjExMDcw\n"
	"NzU0MzJaMBMxETAPBgNVBAMMCHBjcC1mdXp6MFkwEwYHKoZIzj0CAQYIKoZIzj0D\n"
	"AQcDQgAEhjGuvaajSZoMVMwxKriMlbWeG/1Ms9aiC2G2zgsitbPU9+7dtnL4+S2I\n"
	"yjC+hhZPKj2wJLqsZCn2Y4wD10WheKNTMFEwHQYDVR0OBBYEFKgvSesZ6TAHMxdW\n"
	"bLTE73MeThaSMB8GA1UdIwQYMBaAFKgvSesZ6TAHMxdWbLTE73MeThaSMA8GA1Ud\n"
	"EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhANBwDXWJy7nTvd14rLkyS392\n"
	"iGgjDqUbRFlfvZJuoOggAiEAnGCra7WJs4+jYGiRPRP9ez71pMcdxFUbhYxwxGyP\n"
	"VCQ=\n"
	"-----END CERTIFICATE-----\n";

static char dir[64], in_path[128], key_path[128], crt_path[128], out_dir[128], out_path[160];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
		__builtin_trap();
}

static void cleanup(void)
{
	(void)unlink(out_path);
	(void)rmdir(out_dir);
	(void)unlink(in_path);
	(void)unlink(key_path);
	(void)unlink(crt_path);
	(void)rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	(void)snprintf(dir, sizeof(dir), "/tmp/pcp-fuzz-cms-XXXXXX");
	if (!mkdtemp(dir))
		__builtin_trap();
	(void)snprintf(in_path, sizeof(in_path), "%s/in.cms", dir);
	(void)snprintf(key_path, sizeof(key_path), "%s/tls.key", dir);
	(void)snprintf(crt_path, sizeof(crt_path), "%s/tls.crt", dir);
	(void)snprintf(out_dir, sizeof(out_dir), "%s/out", dir);
	(void)snprintf(out_path, sizeof(out_path), "%s/plain.tar", out_dir);
	put(key_path, fixture_key, sizeof(fixture_key) - 1);
	put(crt_path, fixture_crt, sizeof(fixture_crt) - 1);
	if (mkdir(out_dir, 0700) != 0 || atexit(cleanup) != 0)
		__builtin_trap();
	return 0;
}

static void fuzz_reader(size_t size)
{
	struct art_rd r;
	struct art_cms_hdr h;
	struct dbuf sk;
	int fd = open(in_path, O_RDONLY), rc;

	if (fd < 0)
		__builtin_trap();
	art_cms_hdr_init(&h);
	dbuf_init(&sk, 2u << 20);
	rc = art_rd_init(&r, fd, size);
	if (!rc)
		rc = art_ber_parse(&r, &h);
	if (rc == 0) {
		const unsigned char *q;
		CMS_ContentInfo *cms;

		if (h.alg_off + h.alg_len > h.body.len || h.mac_off + h.mac_len > h.body.len ||
		    h.content_pos > size || art_ber_skeleton(&h, &sk) != 0)
			__builtin_trap();
		q = (const unsigned char *)sk.data;
		cms = d2i_CMS_ContentInfo(NULL, &q, (long)sk.len);
		CMS_ContentInfo_free(cms);
	} else if (rc != -ENOTSUP && rc != -ENODATA && rc != -EPROTO && rc != -EMSGSIZE &&
		   rc != -ENOMEM) {
		__builtin_trap();
	}
	dbuf_cleanup(&sk);
	art_cms_hdr_cleanup(&h);
	art_rd_cleanup(&r);
	close(fd);
}

/* Entries left in the output directory. */
static int leftovers(void)
{
	DIR *d = opendir(out_dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		__builtin_trap();
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char msg[512] = "";
	int rc;

	put(in_path, data, size);
	fuzz_reader(size);
	/* odd sizes: key only (try every RecipientInfo), even: key + certificate */
	rc = art_decrypt(in_path, key_path, (size & 1) ? NULL : crt_path, out_path, msg, sizeof(msg));
	if (rc == 0) {
		if (leftovers() != 1 || unlink(out_path) != 0)
			__builtin_trap();
	} else if (rc > 0 || msg[0] == '\0' || leftovers() != 0) {
		__builtin_trap();
	}
	return 0;
}
