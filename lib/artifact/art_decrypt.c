/*
 * art_decrypt.c - streaming decryption of a CMS AuthEnvelopedData artifact:
 * the entry point art_decrypt and the PEM key/certificate loading.
 *
 * OpenSSL can only parse a whole CMS structure in memory (d2i_CMS_bio), and
 * since 3.0.20 CMS_decrypt holds the whole plaintext until the tag is
 * checked; for a multi-GiB checkpoint that means multi-GiB of RAM. Instead:
 *   pass 1 (art_ber.c): walk the BER, check the whole structure, copy the
 *           small parts and build a detached DER skeleton for OpenSSL;
 *   recipient (art_gcm.c): OpenSSL's CMS finds our RecipientInfo and
 *           unwraps the content key into an AES-256-GCM context;
 *   pass 2 (art_gcm.c): we stream the ciphertext through that context into
 *           a hidden 0600 temp file, fsync it, check the GCM tag,
 *           and only then rename it to out_path. Any failure unlinks it.
 * Memory: O(chunk), independent of the artifact's size.
 */
#include "art_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "dbuf.h"
#include "fsutil.h"

/* ------------------------------------------------------------ keys */

static void *parse_key(BIO *b)
{
	return PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"");
}

static void *parse_cert(BIO *b)
{
	return PEM_read_bio_X509(b, NULL, NULL, NULL);
}

/*
 * Reads the PEM file at path (at most 1 MiB) and parses it with parse into
 * *out. `what` names it ("private key") and `holds` what it should hold, for
 * messages. secret: the file's bytes are wiped after use.
 */
static int load_pem(const char *path, const char *what, const char *holds, bool secret,
		    void *(*parse)(BIO *b), void **out, char *msg, size_t msglen)
{
	char *pem = NULL;
	size_t len = 0;
	BIO *b = NULL;
	int rc;

	*out = NULL;
	rc = fsu_read_file(path, 1u << 20, &pem, &len);
	if (rc) {
		art_msg(msg, msglen, "cannot read the %s %s: %s", what, path, strerror(-rc));
		goto out;
	}
	b = BIO_new_mem_buf(pem, (int)len);
	if (!b) {
		rc = -ENOMEM;
		goto out;
	}
	*out = parse(b);
	if (!*out) {
		rc = -EINVAL;
		art_msg(msg, msglen, "%s does not hold %s", path, holds);
	}
out:
	BIO_free(b);
	if (pem && secret)
		OPENSSL_cleanse(pem, len);
	free(pem);
	return rc;
}

static int load_key(const char *path, EVP_PKEY **out, char *msg, size_t msglen)
{
	void *k = NULL;
	int rc = load_pem(path, "private key", "an unencrypted PEM private key", true, parse_key,
			  &k, msg, msglen);

	*out = k;
	return rc;
}

static int load_cert(const char *path, X509 **out, char *msg, size_t msglen)
{
	void *x = NULL;
	int rc = load_pem(path, "certificate", "a PEM certificate", false, parse_cert, &x, msg,
			  msglen);

	*out = x;
	return rc;
}

/* ------------------------------------------------------------ decrypt */

static void parse_msg(int rc, const char *in_path, char *msg, size_t msglen)
{
	if (rc == -ENOTSUP)
		art_msg(msg, msglen,
			"%s is CMS EnvelopedData, not AuthEnvelopedData; decrypt it with openssl cms "
			"-decrypt",
			in_path);
	else if (rc == -ENODATA)
		art_msg(msg, msglen,
			"%s is truncated: the file ends before its CMS structure does", in_path);
	else if (rc == -EMSGSIZE)
		art_msg(msg, msglen, "%s has a CMS header larger than 1 MiB", in_path);
	else if (rc == -ENOMEM)
		art_msg(msg, msglen, "out of memory while reading %s", in_path);
	else
		art_msg(msg, msglen, "%s is not a well-formed CMS AuthEnvelopedData artifact",
			in_path);
}

/* Opens in_path, runs pass 1 and parses the skeleton into *cms. */
static int read_header(const char *in_path, struct art_rd *r, struct art_cms_hdr *h,
		       CMS_ContentInfo **cms, char *msg, size_t msglen)
{
	struct dbuf sk;
	struct stat st;
	int fd, rc;

	dbuf_init(&sk, (2u << 20));
	fd = open(in_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		art_msg(msg, msglen, "cannot open %s: %s", in_path, strerror(-rc));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		art_msg(msg, msglen, "cannot open %s: not a regular file", in_path);
		close(fd);
		goto out;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	rc = art_rd_init(r, fd, (uint64_t)st.st_size); /* r owns fd from here, even on failure */
	if (rc)
		goto out;
	rc = art_ber_parse(r, h);
	if (!rc)
		rc = art_ber_skeleton(h, &sk);
	if (rc) {
		parse_msg(rc, in_path, msg, msglen);
		goto out;
	}
	if (h->auth_attrs) {
		/* RFC 5083: the GCM AAD would be their DER. Our writer (OpenSSL 3.0)
		 * never adds them; refuse rather than guess. */
		rc = -ENOTSUP;
		art_msg(msg, msglen,
			"%s has authenticated attributes (authAttrs), which this decryptor does not "
			"support",
			in_path);
		goto out;
	}
	{
		const unsigned char *q = (const unsigned char *)sk.data;

		*cms = d2i_CMS_ContentInfo(NULL, &q, (long)sk.len);
	}
	if (!*cms) {
		rc = -EPROTO;
		art_msg(msg, msglen, "%s has a CMS header OpenSSL cannot read", in_path);
	}
out:
	dbuf_cleanup(&sk);
	return rc;
}

/* Loads the key (and the certificate, which must match it). */
static int load_keys(const char *key_path, const char *cert_path, EVP_PKEY **pkey, X509 **cert,
		     char *msg, size_t msglen)
{
	int rc = load_key(key_path, pkey, msg, msglen);

	if (rc || !cert_path)
		return rc;
	rc = load_cert(cert_path, cert, msg, msglen);
	if (rc)
		return rc;
	if (X509_check_private_key(*cert, *pkey) != 1) {
		ERR_clear_error();
		art_msg(msg, msglen, "the private key %s does not belong to the certificate %s",
			key_path, cert_path);
		return -EINVAL;
	}
	return 0;
}

/* fsync, close, rename into place, fsync the directory. *fd is closed. */
static int publish(int *fd, char *tmp, const char *out_path, char *msg, size_t msglen)
{
	int rc = fsync(*fd) == 0 ? 0 : -errno;

	if (close(*fd) != 0 && rc == 0)
		rc = -errno;
	*fd = -1;
	if (rc) {
		art_msg(msg, msglen, "writing %s failed: %s", out_path, strerror(-rc));
		return rc;
	}
	if (rename(tmp, out_path) != 0) {
		rc = -errno;
		art_msg(msg, msglen, "renaming into %s failed: %s", out_path, strerror(-rc));
		return rc;
	}
	tmp[0] = '\0';
	(void)fsu_fsync_parent(out_path);
	return 0;
}

int art_decrypt(const char *in_path, const char *key_path, const char *cert_path,
		const char *out_path, char *msg, size_t msglen)
{
	struct art_rd r = { .fd = -1 };
	struct art_cms_hdr h;
	struct art_sink sink = { .fd = -1 };
	struct art_gcm *g = NULL;
	CMS_ContentInfo *cms = NULL;
	EVP_PKEY *pkey = NULL;
	X509 *cert = NULL;
	char tmp[PATH_MAX] = "";
	int ofd = -1, rc;

	art_cms_hdr_init(&h);
	if (msg && msglen)
		msg[0] = '\0';
	if (!in_path || !key_path || !out_path) {
		rc = -EINVAL;
		art_msg(msg, msglen, "art_decrypt needs an input, a key and an output path");
		goto out;
	}
	if ((rc = read_header(in_path, &r, &h, &cms, msg, msglen)) != 0 ||
	    (rc = load_keys(key_path, cert_path, &pkey, &cert, msg, msglen)) != 0 ||
	    (rc = art_gcm_open(cms, pkey, cert, &h, in_path, &g, msg, msglen)) != 0)
		goto out;
	ofd = art_tmpfile(out_path, tmp, sizeof(tmp));
	if (ofd < 0) {
		rc = ofd;
		tmp[0] = '\0';
		art_msg(msg, msglen, "cannot create a temporary file next to %s: %s", out_path,
			strerror(-rc));
		goto out;
	}
	if ((rc = art_sink_init_nohash(&sink, ofd)) != 0)
		goto out;
	rc = art_gcm_stream(g, &r, &h, &sink);
	if (!rc)
		rc = art_sink_flush(&sink);
	if (rc == -EBADMSG)
		art_msg(msg, msglen,
			"%s failed authentication (AES-GCM tag mismatch): its encrypted content, "
			"nonce or tag was modified",
			in_path);
	else if (rc == -ENODATA || rc == -EPROTO)
		art_msg(msg, msglen, "%s changed while it was being decrypted", in_path);
	else if (rc)
		art_msg(msg, msglen, "writing %s failed: %s", out_path, strerror(-rc));
	if (rc || (rc = publish(&ofd, tmp, out_path, msg, msglen)) != 0)
		goto out;
	rc = 0;
out:
	ERR_clear_error();
	art_sink_cleanup(&sink);
	if (ofd >= 0)
		close(ofd);
	if (tmp[0])
		(void)unlink(tmp);
	art_gcm_free(g);
	CMS_ContentInfo_free(cms); /* holds no content key: CMS_dataInit wiped it */
	EVP_PKEY_free(pkey);       /* OpenSSL clears private key material on free */
	X509_free(cert);
	art_cms_hdr_cleanup(&h);
	if (r.fd >= 0)
		close(r.fd);
	art_rd_cleanup(&r);
	return rc;
}
