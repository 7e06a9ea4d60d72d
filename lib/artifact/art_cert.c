/*
 * art_cert.c - recipient certificate checks: PEM -> X509, supported key
 * type, validity period, SHA-256 fingerprint of the DER.
 */
#include "art_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

struct art_cert {
	X509 *x509;
	char fingerprint[ART_SHA256_HEX];
	char key_desc[32];
};

X509 *art_cert_x509(const struct art_cert *cert)
{
	return cert ? cert->x509 : NULL;
}

void art_cert_free(struct art_cert *cert)
{
	if (!cert)
		return;
	X509_free(cert->x509);
	free(cert);
}

const char *art_cert_fingerprint(const struct art_cert *cert)
{
	return cert ? cert->fingerprint : "";
}

const char *art_cert_key_desc(const struct art_cert *cert)
{
	return cert ? cert->key_desc : "";
}

/* Does the PEM text hold a private key block? (to give a precise message) */
static bool pem_has_private_key(const char *pem, size_t len)
{
	static const char *const marks[] = {
		"-----BEGIN PRIVATE KEY-----",     "-----BEGIN RSA PRIVATE KEY-----",
		"-----BEGIN EC PRIVATE KEY-----",  "-----BEGIN ENCRYPTED PRIVATE KEY-----",
		"-----BEGIN DSA PRIVATE KEY-----", "-----BEGIN OPENSSH PRIVATE KEY-----",
	};

	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
		size_t ml = strlen(marks[i]);

		for (size_t off = 0; off + ml <= len; off++)
			if (pem[off] == '-' && memcmp(pem + off, marks[i], ml) == 0)
				return true;
	}
	return false;
}

/* Classifies the public key: 0 and a description, or ART_CERT_UNSUPPORTED_KEY
 * with a sentence. */
static enum art_cert_error check_key(EVP_PKEY *pk, char *desc, size_t desclen, char *msg,
				     size_t msglen)
{
	int bits = EVP_PKEY_get_bits(pk);

	if (EVP_PKEY_is_a(pk, "RSA")) {
		if (bits < 2048) {
			art_msg(msg, msglen,
				"tls.crt holds an RSA key of %d bits; RSA keys need 2048 bits or more",
				bits);
			return ART_CERT_UNSUPPORTED_KEY;
		}
		art_msg(desc, desclen, "RSA-%d", bits);
		return ART_CERT_OK;
	}
	if (EVP_PKEY_is_a(pk, "EC")) {
		char curve[64] = "";
		size_t cl = 0;

		if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve),
						   &cl) != 1)
			curve[0] = '\0';
		if (strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0) {
			art_msg(desc, desclen, "EC-P256");
			return ART_CERT_OK;
		}
		if (strcmp(curve, "secp384r1") == 0 || strcmp(curve, "P-384") == 0) {
			art_msg(desc, desclen, "EC-P384");
			return ART_CERT_OK;
		}
		art_msg(msg, msglen,
			"tls.crt holds an EC key on curve %s; only RSA (2048 bits or more) and EC "
			"P-256/P-384 certificates are supported",
			curve[0] ? curve : "(explicit parameters)");
		return ART_CERT_UNSUPPORTED_KEY;
	}
	{
		const char *name = "an unknown";

		if (EVP_PKEY_is_a(pk, "ED25519"))
			name = "an Ed25519";
		else if (EVP_PKEY_is_a(pk, "ED448"))
			name = "an Ed448";
		else if (EVP_PKEY_is_a(pk, "X25519"))
			name = "an X25519";
		else if (EVP_PKEY_is_a(pk, "X448"))
			name = "an X448";
		else if (EVP_PKEY_is_a(pk, "DSA"))
			name = "a DSA";
		else if (EVP_PKEY_is_a(pk, "RSA-PSS"))
			name = "an RSA-PSS-only";
		else if (EVP_PKEY_is_a(pk, "DH") || EVP_PKEY_is_a(pk, "DHX"))
			name = "a Diffie-Hellman";
		art_msg(msg, msglen,
			"tls.crt holds %s key; only RSA (2048 bits or more) and EC P-256/P-384 "
			"certificates are supported",
			name);
	}
	return ART_CERT_UNSUPPORTED_KEY;
}

static void asn1_time_str(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		art_msg(buf, len, "(unreadable time)");
}

int art_cert_parse(const char *pem, size_t len, bool allow_expired, time_t now,
		   struct art_cert **out, enum art_cert_error *why, char *msg, size_t msglen)
{
	struct art_cert *c = NULL;
	BIO *bio = NULL;
	X509 *x = NULL;
	EVP_PKEY *pk;
	enum art_cert_error e = ART_CERT_GARBAGE;
	unsigned char *der = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int derlen, rc = -EINVAL;

	if (out)
		*out = NULL;
	if (why)
		*why = ART_CERT_GARBAGE;
	if (!out || (!pem && len > 0)) {
		rc = -EINVAL;
		goto out;
	}
	if (len == 0 || !pem) {
		art_msg(msg, msglen, "tls.crt is empty; it must hold a PEM certificate");
		goto out;
	}
	if (len > INT_MAX) {
		art_msg(msg, msglen, "tls.crt is too large to be a certificate");
		goto out;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio) {
		rc = -ENOMEM;
		goto out;
	}
	if (pem_has_private_key(pem, len)) {
		/* Never accept (and so never carry around) private key material. */
		art_msg(msg, msglen,
			"tls.crt holds a private key; it must hold only the certificate (the key "
			"belongs in tls.key)");
		goto out;
	}
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (!x) {
		art_msg(msg, msglen,
			"tls.crt does not hold a PEM certificate (no readable \"BEGIN CERTIFICATE\" "
			"block)");
		goto out;
	}
	pk = X509_get0_pubkey(x);
	if (!pk) {
		art_msg(msg, msglen, "the certificate in tls.crt has a public key OpenSSL cannot read");
		e = ART_CERT_UNSUPPORTED_KEY;
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	e = check_key(pk, c->key_desc, sizeof(c->key_desc), msg, msglen);
	if (e != ART_CERT_OK)
		goto out;
	if (!allow_expired) {
		time_t t = now;
		char when[64];
		/* X509_cmp_time: -1 earlier than t, 1 later, 0 on error. */
		int nb = X509_cmp_time(X509_get0_notBefore(x), &t);
		int na = X509_cmp_time(X509_get0_notAfter(x), &t);

		if (nb == 0 || na == 0) {
			art_msg(msg, msglen,
				"the certificate in tls.crt has an unreadable validity period");
			e = ART_CERT_GARBAGE;
			goto out;
		}
		if (nb > 0) {
			asn1_time_str(X509_get0_notBefore(x), when, sizeof(when));
			art_msg(msg, msglen,
				"the certificate in tls.crt is not valid before %s",
				when);
			e = ART_CERT_NOT_YET_VALID;
			goto out;
		}
		if (na < 0) {
			asn1_time_str(X509_get0_notAfter(x), when, sizeof(when));
			art_msg(msg, msglen,
				"the certificate in tls.crt expired on %s",
				when);
			e = ART_CERT_EXPIRED;
			goto out;
		}
	}
	derlen = i2d_X509(x, &der);
	if (derlen <= 0 || EVP_Digest(der, (size_t)derlen, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32) {
		rc = -EIO;
		e = ART_CERT_GARBAGE;
		art_msg(msg, msglen, "the certificate in tls.crt could not be re-encoded");
		goto out;
	}
	art_hex(md, mdlen, c->fingerprint);
	c->x509 = x;
	x = NULL;
	*out = c;
	c = NULL;
	e = ART_CERT_OK;
	rc = 0;
out:
	if (why)
		*why = e;
	if (rc == 0 && msg && msglen)
		msg[0] = '\0';
	ERR_clear_error();
	OPENSSL_free(der);
	X509_free(x);
	art_cert_free(c);
	BIO_free(bio);
	return rc;
}
