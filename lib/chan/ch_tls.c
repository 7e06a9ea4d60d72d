/*
 * ch_tls.c - the helper's self-signed serving certificate and fingerprints.
 *
 * The certificate is pinned by its SHA-256 fingerprint (of the DER), which
 * the helper publishes in its Lease; nothing else about it is trusted, so it
 * only needs to be a well-formed P-256 server certificate with the helper's
 * IP in its SAN (for tools that do check names).
 */
#include "ch.h"
#include "ch_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

int ch_x509_fingerprint(X509 *cert, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	static const char digits[] = "0123456789abcdef";

	hex[0] = '\0';
	if (!cert || X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32)
		return -EINVAL;
	for (unsigned int i = 0; i < mdlen; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 0xf];
	}
	hex[64] = '\0';
	return 0;
}

int ch_fingerprint_normalize(const char *in, char out[65])
{
	size_t n = 0;

	out[0] = '\0';
	if (!in)
		return -EINVAL;
	for (const char *p = in; *p; p++) {
		char c = *p;

		if (c == ':')
			continue;
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) || n >= 64) {
			out[0] = '\0';
			return -EINVAL;
		}
		out[n++] = c;
	}
	if (n != 64) {
		out[0] = '\0';
		return -EINVAL;
	}
	out[64] = '\0';
	return 0;
}

int ch_cert_fingerprint(const char *cert_pem, char fingerprint_hex[65])
{
	BIO *bio = NULL;
	X509 *x = NULL;
	int rc = -EINVAL;

	fingerprint_hex[0] = '\0';
	if (!cert_pem)
		goto out;
	bio = BIO_new_mem_buf(cert_pem, -1);
	if (!bio) {
		rc = -ENOMEM;
		goto out;
	}
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (!x)
		goto out;
	rc = ch_x509_fingerprint(x, fingerprint_hex);
out:
	X509_free(x);
	BIO_free(bio);
	return rc;
}

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!ext)
		return -EINVAL;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -ENOMEM;
}

/* Copies a memory BIO's contents into a new NUL-terminated string. */
static int bio_to_string(BIO *bio, char **out)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);

	*out = NULL;
	if (n <= 0 || !data)
		return -EINVAL;
	*out = malloc((size_t)n + 1);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, data, (size_t)n);
	(*out)[n] = '\0';
	return 0;
}

int ch_make_self_signed(const char *ip, int days, char **cert_pem, char **key_pem,
			char fingerprint_hex[65])
{
	unsigned char addr[16];
	char san[96];
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	X509_NAME *name;
	BIGNUM *serial = NULL;
	BIO *cbio = NULL, *kbio = NULL;
	int rc = -EINVAL;

	*cert_pem = NULL;
	*key_pem = NULL;
	fingerprint_hex[0] = '\0';
	if (!ip || days <= 0 || days > 36500)
		goto out;
	if (inet_pton(AF_INET, ip, addr) != 1 && inet_pton(AF_INET6, ip, addr) != 1)
		goto out;
	rc = -ENOMEM;
	pkey = EVP_EC_gen("P-256");
	x = X509_new();
	serial = BN_new();
	if (!pkey || !x || !serial)
		goto out;
	/* 127 random bits: positive, non-zero with overwhelming probability. */
	if (BN_rand(serial, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1 ||
	    !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)))
		goto out;
	if (X509_set_version(x, 2) != 1 || !X509_gmtime_adj(X509_getm_notBefore(x), -300) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) ||
	    X509_set_pubkey(x, pkey) != 1)
		goto out;
	name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
				       (const unsigned char *)"podcheckpoint", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)ip, -1,
				       -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1)
		goto out;
	if (snprintf(san, sizeof(san), "IP:%s", ip) >= (int)sizeof(san)) {
		rc = -EINVAL;
		goto out;
	}
	if (add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_ext(x, NID_key_usage, "critical,digitalSignature") ||
	    add_ext(x, NID_ext_key_usage, "serverAuth") ||
	    add_ext(x, NID_subject_key_identifier, "hash") ||
	    add_ext(x, NID_subject_alt_name, san))
		goto out;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto out;
	cbio = BIO_new(BIO_s_mem());
	kbio = BIO_new(BIO_s_secmem()); /* cleansed when freed */
	if (!cbio || !kbio)
		goto out;
	if (PEM_write_bio_X509(cbio, x) != 1 ||
	    PEM_write_bio_PrivateKey(kbio, pkey, NULL, NULL, 0, NULL, NULL) != 1)
		goto out;
	rc = bio_to_string(cbio, cert_pem);
	if (rc)
		goto out;
	rc = bio_to_string(kbio, key_pem);
	if (rc)
		goto out;
	rc = ch_x509_fingerprint(x, fingerprint_hex);
out:
	if (rc) {
		free(*cert_pem);
		*cert_pem = NULL;
		if (*key_pem) {
			OPENSSL_cleanse(*key_pem, strlen(*key_pem));
			free(*key_pem);
			*key_pem = NULL;
		}
	}
	BIO_free(cbio);
	BIO_free(kbio);
	BN_free(serial);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}
