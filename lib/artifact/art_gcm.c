/*
 * art_gcm.c - decryption of the encryptedContent of an AuthEnvelopedData.
 *
 * OpenSSL's CMS code does only the recipient part, on the small skeleton
 * (art_ber_skeleton): it finds our RecipientInfo, unwraps the content-
 * encryption key (RSA-OAEP key transport or ECDH + AES key wrap) and
 * CMS_dataInit sets up an AES-256-GCM cipher context with that key and the
 * nonce from the GCM parameters. We take that context out of its cipher BIO
 * (BIO_get_cipher_ctx) and drive it ourselves: the ciphertext segments
 * straight from the read buffer through EVP_DecryptUpdate into the sink, then
 * EVP_CTRL_GCM_SET_TAG with the mac and EVP_DecryptFinal_ex. CMS_decrypt is
 * not used: since 3.0.20 it holds the whole plaintext in memory until the
 * tag is checked. The key never leaves OpenSSL's context; freeing the BIO
 * chain wipes it. Memory: one ART_CHUNK output buffer.
 */
#include "art_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#define GCM_TAG_MIN 12 /* RFC 5084: aes-ICVlen 12..16, default 12 */
#define GCM_TAG_MAX 16

struct art_gcm {
	BIO *chain;          /* owned: cipher BIO -> null BIO, from CMS_dataInit */
	EVP_CIPHER_CTX *ctx; /* borrowed from the cipher BIO */
	unsigned char tag[GCM_TAG_MAX];
	int taglen;
};

/* Nonce and ICV length from the contentEncryptionAlgorithm; the mac. */
struct gcm_params {
	unsigned char nonce[EVP_MAX_IV_LENGTH];
	int nonce_len;
	long icv_len;
};

static int read_params(const struct art_cms_hdr *h, struct gcm_params *gp, struct art_gcm *g,
		       const char *name, char *msg, size_t msglen)
{
	const unsigned char *q = (const unsigned char *)h->body.data + h->alg_off;
	X509_ALGOR *alg = d2i_X509_ALGOR(NULL, &q, (long)h->alg_len);
	STACK_OF(ASN1_TYPE) *seq = NULL;
	ASN1_OCTET_STRING *mac = NULL;
	const ASN1_OBJECT *obj = NULL;
	const void *pval = NULL;
	const ASN1_STRING *ps;
	const ASN1_TYPE *t;
	int ptype = 0, rc = -EPROTO;

	if (!alg)
		goto bad;
	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	if (OBJ_obj2nid(obj) != NID_aes_256_gcm) {
		char oid[80] = "";

		(void)OBJ_obj2txt(oid, sizeof(oid), obj, 0);
		art_msg(msg, msglen, "%s is encrypted with %s; only AES-256-GCM is supported", name,
			oid);
		rc = -ENOTSUP;
		goto out;
	}
	if (ptype != V_ASN1_SEQUENCE)
		goto bad;
	ps = pval;
	q = ASN1_STRING_get0_data(ps);
	seq = d2i_ASN1_SEQUENCE_ANY(NULL, &q, ASN1_STRING_length(ps));
	if (!seq || sk_ASN1_TYPE_num(seq) < 1 || sk_ASN1_TYPE_num(seq) > 2)
		goto bad;
	t = sk_ASN1_TYPE_value(seq, 0);
	if (t->type != V_ASN1_OCTET_STRING || t->value.octet_string->length < 1 ||
	    t->value.octet_string->length > EVP_MAX_IV_LENGTH)
		goto bad;
	gp->nonce_len = t->value.octet_string->length;
	memcpy(gp->nonce, t->value.octet_string->data, (size_t)gp->nonce_len);
	gp->icv_len = GCM_TAG_MIN;
	if (sk_ASN1_TYPE_num(seq) == 2) {
		t = sk_ASN1_TYPE_value(seq, 1);
		if (t->type != V_ASN1_INTEGER)
			goto bad;
		gp->icv_len = ASN1_INTEGER_get(t->value.integer);
	}
	if (gp->icv_len < GCM_TAG_MIN || gp->icv_len > GCM_TAG_MAX)
		goto bad;
	q = (const unsigned char *)h->body.data + h->mac_off;
	mac = d2i_ASN1_OCTET_STRING(NULL, &q, (long)h->mac_len);
	if (!mac || mac->length != gp->icv_len)
		goto bad;
	memcpy(g->tag, mac->data, (size_t)mac->length);
	g->taglen = mac->length;
	rc = 0;
	goto out;
bad:
	art_msg(msg, msglen, "%s has invalid AES-GCM parameters or authentication tag", name);
out:
	ASN1_OCTET_STRING_free(mac);
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	X509_ALGOR_free(alg);
	return rc;
}

/* Key transport: OpenSSL decrypts encryptedKey (OAEP parameters from the
 * RecipientInfo) into the content key. 1 ok, 0 wrong key, -1 error. */
static int try_ktri(CMS_ContentInfo *cms, CMS_RecipientInfo *ri, EVP_PKEY *pkey)
{
	int r;

	if (EVP_PKEY_up_ref(pkey) != 1)
		return -1;
	if (CMS_RecipientInfo_set0_pkey(ri, pkey) != 1) {
		EVP_PKEY_free(pkey);
		return -1;
	}
	r = CMS_RecipientInfo_decrypt(cms, ri);
	(void)CMS_RecipientInfo_set0_pkey(ri, NULL); /* drops our reference */
	return r == 1 ? 1 : 0;
}

/* Key agreement: ECDH with the originator key, KDF, AES key unwrap (whose
 * integrity check fails for a wrong key). 1 ok, 0 wrong key, -1 error. */
static int try_kari(CMS_ContentInfo *cms, CMS_RecipientInfo *ri,
		    CMS_RecipientEncryptedKey *rek, EVP_PKEY *pkey)
{
	int r;

	if (CMS_RecipientInfo_kari_set0_pkey_and_peer(ri, pkey, NULL) != 1)
		return 0; /* e.g. a key on another curve */
	r = CMS_RecipientInfo_kari_decrypt(cms, ri, rek);
	(void)CMS_RecipientInfo_kari_set0_pkey(ri, NULL);
	return r == 1 ? 1 : 0;
}

/* Unwraps the content key into cms: 0, -ENOENT (no RecipientInfo for this
 * certificate / key type), -ENOKEY (wrong key), -ENOMEM. */
static int unwrap_key(CMS_ContentInfo *cms, EVP_PKEY *pkey, X509 *cert)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
	bool tried = false;
	int base = EVP_PKEY_get_base_id(pkey);

	for (int i = 0; ris && i < sk_CMS_RecipientInfo_num(ris); i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
		int type = CMS_RecipientInfo_type(ri), r;

		if (type == CMS_RECIPINFO_TRANS && base == EVP_PKEY_RSA) {
			if (cert && CMS_RecipientInfo_ktri_cert_cmp(ri, cert) != 0)
				continue;
			tried = true;
			r = try_ktri(cms, ri, pkey);
			if (r != 0)
				return r > 0 ? 0 : -ENOMEM;
		} else if (type == CMS_RECIPINFO_AGREE && base == EVP_PKEY_EC) {
			STACK_OF(CMS_RecipientEncryptedKey) *reks = CMS_RecipientInfo_kari_get0_reks(ri);

			for (int j = 0; reks && j < sk_CMS_RecipientEncryptedKey_num(reks); j++) {
				CMS_RecipientEncryptedKey *rek = sk_CMS_RecipientEncryptedKey_value(reks, j);

				if (cert && CMS_RecipientEncryptedKey_cert_cmp(rek, cert) != 0)
					continue;
				tried = true;
				r = try_kari(cms, ri, rek, pkey);
				if (r != 0)
					return r > 0 ? 0 : -ENOMEM;
			}
		}
	}
	return tried ? -ENOKEY : -ENOENT;
}

int art_gcm_open(CMS_ContentInfo *cms, EVP_PKEY *pkey, X509 *cert, const struct art_cms_hdr *h,
		 const char *name, struct art_gcm **out, char *msg, size_t msglen)
{
	struct art_gcm *g = calloc(1, sizeof(*g));
	struct gcm_params gp;
	BIO *null = NULL, *cb;
	unsigned char iv[EVP_MAX_IV_LENGTH];
	int rc;

	*out = NULL;
	if (!g) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = read_params(h, &gp, g, name, msg, msglen)) != 0)
		goto out;
	rc = unwrap_key(cms, pkey, cert);
	if (rc == -ENOENT)
		art_msg(msg, msglen, "%s was not encrypted to this certificate/key", name);
	else if (rc == -ENOKEY)
		art_msg(msg, msglen,
			"the private key does not open %s (wrong key: the content key does not "
			"unwrap)",
			name);
	if (rc)
		goto out;
	null = BIO_new(BIO_s_null());
	if (!null) {
		rc = -ENOMEM;
		goto out;
	}
	g->chain = CMS_dataInit(cms, null);
	if (!g->chain) {
		rc = -EPROTO;
		art_msg(msg, msglen, "OpenSSL cannot set up the content decryption of %s", name);
		goto out;
	}
	null = NULL; /* part of the chain now */
	cb = BIO_find_type(g->chain, BIO_TYPE_CIPHER);
	if (!cb || BIO_get_cipher_ctx(cb, &g->ctx) != 1 || !g->ctx ||
	    EVP_CIPHER_CTX_get_nid(g->ctx) != NID_aes_256_gcm ||
	    EVP_CIPHER_CTX_get_iv_length(g->ctx) != gp.nonce_len ||
	    EVP_CIPHER_CTX_get_original_iv(g->ctx, iv, (size_t)gp.nonce_len) != 1 ||
	    memcmp(iv, gp.nonce, (size_t)gp.nonce_len) != 0 ||
	    EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_SET_TAG, g->taglen, g->tag) != 1) {
		rc = -EPROTO;
		art_msg(msg, msglen, "OpenSSL set up an unexpected content cipher for %s", name);
		goto out;
	}
	*out = g;
	g = NULL;
	rc = 0;
out:
	BIO_free(null);
	art_gcm_free(g);
	ERR_clear_error();
	return rc;
}

int art_gcm_stream(struct art_gcm *g, struct art_rd *r, const struct art_cms_hdr *h,
		   struct art_sink *s)
{
	unsigned char *out = malloc(ART_CHUNK);
	struct art_walker w;
	size_t olen = 0;
	int outl = 0, rc = 0;

	if (!out)
		return -ENOMEM;
	r->pos = h->content_pos;
	art_walker_init(&w, r, &h->content);
	for (;;) {
		const unsigned char *p;
		size_t n, want;

		if (w.left == 0) {
			if (w.done)
				break;
			if ((rc = art_walker_next(&w)) != 0)
				goto out;
			continue;
		}
		want = ART_CHUNK - olen;
		if (want > w.left)
			want = (size_t)w.left;
		if ((rc = art_rd_span(r, want, &p, &n)) != 0)
			goto out;
		/* GCM is a stream mode: n bytes in, n bytes out */
		if (EVP_DecryptUpdate(g->ctx, out + olen, &outl, p, (int)n) != 1 ||
		    (size_t)outl != n) {
			rc = -EIO;
			goto out;
		}
		olen += n;
		w.left -= n;
		if (olen == ART_CHUNK) {
			if ((rc = art_sink_write(s, out, olen)) != 0)
				goto out;
			olen = 0;
		}
	}
	if (EVP_DecryptFinal_ex(g->ctx, out + olen, &outl) != 1) {
		rc = -EBADMSG;
		goto out;
	}
	olen += (size_t)outl;
	rc = art_sink_write(s, out, olen);
out:
	OPENSSL_cleanse(out, ART_CHUNK); /* plaintext */
	free(out);
	ERR_clear_error();
	return rc;
}

void art_gcm_free(struct art_gcm *g)
{
	if (!g)
		return;
	BIO_free_all(g->chain); /* frees the cipher context, wiping the key */
	OPENSSL_cleanse(g->tag, sizeof(g->tag));
	free(g);
}
