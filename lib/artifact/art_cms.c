/*
 * art_cms.c - streaming CMS AuthEnvelopedData (RFC 5083/5084) encryption
 * with AES-256-GCM, DER, indefinite-length (BER streaming) encoding.
 *
 * Recipient: RSA -> KeyTransRecipientInfo with RSAES-OAEP (SHA-256, MGF1
 * SHA-256); EC P-256/P-384 -> KeyAgreeRecipientInfo (ephemeral-static ECDH,
 * X9.63 KDF with SHA-256 resp. SHA-384, AES-256 key wrap).
 *
 * Streaming: BIO_new_CMS() writes the DER header to `out` and returns the
 * head of a BIO chain (GCM cipher BIO -> ASN.1 chunking BIO -> out). Every
 * write becomes one OCTET STRING chunk of the encryptedContent; BIO_flush()
 * runs CMS_dataFinal (recipient key wrap, GCM tag into `mac`) and writes
 * the trailer. Memory is bounded by the chunk size, not the input.
 */
#include "art_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

struct art_cms_enc {
	CMS_ContentInfo *cms;
	BIO *head;     /* owned chain down to (excluding) out */
	BIO *out;      /* borrowed */
	int finished;
};

static int set_recipient_params(CMS_RecipientInfo *ri, EVP_PKEY *pk)
{
	EVP_PKEY_CTX *pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);

	if (!pctx)
		return -EIO;
	if (EVP_PKEY_is_a(pk, "RSA")) {
		if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0)
			return -EIO;
		return 0;
	}
	if (EVP_PKEY_is_a(pk, "EC")) {
		const EVP_MD *kdf = EVP_PKEY_get_bits(pk) > 256 ? EVP_sha384() : EVP_sha256();

		/* Only the digest: OpenSSL's ecdh_cms_encrypt() selects the X9.63
		 * KDF itself and treats a preset KDF type as unknown. */
		if (EVP_PKEY_CTX_set_ecdh_kdf_md(pctx, kdf) <= 0)
			return -EIO;
		return 0;
	}
	return -ENOTSUP;
}

int art_cms_enc_new(X509 *cert, BIO *out, struct art_cms_enc **encp, char *msg, size_t msglen)
{
	struct art_cms_enc *e = NULL;
	CMS_RecipientInfo *ri;
	EVP_PKEY *pk = X509_get0_pubkey(cert);
	int rc = -EIO;

	*encp = NULL;
	if (!pk) {
		art_msg(msg, msglen, "the certificate has no usable public key");
		rc = -EINVAL;
		goto out;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		rc = -ENOMEM;
		goto out;
	}
	e->out = out;
	e->cms = CMS_AuthEnvelopedData_create(EVP_aes_256_gcm());
	if (!e->cms) {
		art_msg(msg, msglen, "OpenSSL could not create a CMS AuthEnvelopedData structure");
		goto out;
	}
	ri = CMS_add1_recipient_cert(e->cms, cert, EVP_PKEY_is_a(pk, "RSA") ? CMS_KEY_PARAM : 0);
	if (!ri) {
		art_msg(msg, msglen, "OpenSSL refused the certificate as a CMS recipient");
		goto out;
	}
	rc = set_recipient_params(ri, pk);
	if (rc) {
		art_msg(msg, msglen, "OpenSSL refused the key transport/agreement parameters for this certificate");
		goto out;
	}
	e->head = BIO_new_CMS(out, e->cms);
	if (!e->head) {
		art_msg(msg, msglen, "OpenSSL could not start the streamed CMS output");
		rc = -EIO;
		goto out;
	}
	rc = 0;
	*encp = e;
	e = NULL;
out:
	if (rc)
		ERR_clear_error();
	art_cms_enc_free(e);
	return rc;
}

int art_cms_enc_write(struct art_cms_enc *e, const void *p, size_t n)
{
	const char *c = p;

	if (!e || !e->head || e->finished)
		return -EINVAL;
	while (n > 0) {
		int part = n > (size_t)INT_MAX ? INT_MAX : (int)n;
		int w = BIO_write(e->head, c, part);

		if (w <= 0) {
			ERR_clear_error();
			return -EIO;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int art_cms_enc_finish(struct art_cms_enc *e, char *msg, size_t msglen)
{
	if (!e || !e->head || e->finished)
		return -EINVAL;
	e->finished = 1;
	/* BIO_flush on the NDEF chain calls CMS_dataFinal (GCM tag, key
	 * wrap) and writes the indefinite-length trailer into out. */
	if (BIO_flush(e->head) != 1) {
		ERR_clear_error();
		art_msg(msg, msglen, "finishing the CMS structure (encryption tag and trailer) failed");
		return -EIO;
	}
	return 0;
}

void art_cms_enc_free(struct art_cms_enc *e)
{
	if (!e)
		return;
	if (e->head) {
		/* Free the chain down to, but not including, the caller's out. */
		BIO *b = e->head;

		while (b && b != e->out) {
			BIO *next = BIO_pop(b);

			BIO_free(b);
			b = next;
		}
	}
	CMS_ContentInfo_free(e->cms);
	free(e);
}
