/*
 * art_decrypt.c - streaming decryption of a CMS AuthEnvelopedData artifact.
 *
 * OpenSSL can only parse a whole CMS structure in memory (d2i_CMS_bio), which
 * for a multi-GiB checkpoint means multi-GiB of RAM. Instead we walk the BER
 * ourselves with a small buffered reader:
 *   pass 1: parse the headers, copy the small parts (version, recipientInfos,
 *           algorithm, mac, attributes) into a bounded buffer and skip over
 *           the encryptedContent chunks with lseek-style offsets;
 *   then:   build a "detached" DER skeleton (the same structure without
 *           encryptedContent), d2i it and hand CMS_decrypt() a source BIO
 *   pass 2: that yields the ciphertext by walking the chunks again.
 * The GCM tag is verified by OpenSSL at the end of the stream; the plaintext
 * goes to a hidden temp file that is renamed to out_path only on success.
 * Memory: O(chunk), independent of the artifact's size.
 */
#include "art_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
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

#define RD_BUF (64u * 1024u)
#define SMALL_MAX (1u << 20) /* cap for the non-content parts */
#define MAX_DEPTH 32

/* ------------------------------------------------------------ reader */

struct rd {
	int fd;
	uint64_t size; /* file size */
	uint64_t pos;  /* absolute read position */
	unsigned char *buf;
	uint64_t boff; /* file offset of buf[0] */
	size_t blen;
};

static int rd_fill(struct rd *r)
{
	ssize_t n;

	if (r->pos >= r->boff && r->pos < r->boff + r->blen)
		return 0;
	if (r->pos >= r->size)
		return -EPROTO;
	do
		n = pread(r->fd, r->buf, RD_BUF, (off_t)r->pos);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPROTO;
	r->boff = r->pos;
	r->blen = (size_t)n;
	return 0;
}

static int rd_read(struct rd *r, void *out, size_t n)
{
	unsigned char *o = out;

	while (n > 0) {
		int rc = rd_fill(r);
		size_t off, k;

		if (rc)
			return rc;
		off = (size_t)(r->pos - r->boff);
		k = r->blen - off;
		if (k > n)
			k = n;
		memcpy(o, r->buf + off, k);
		o += k;
		n -= k;
		r->pos += k;
	}
	return 0;
}

static int rd_peek(struct rd *r, unsigned char *c)
{
	int rc = rd_fill(r);

	if (rc)
		return rc;
	*c = r->buf[r->pos - r->boff];
	return 0;
}

struct tl {
	unsigned char tag;
	bool indef;
	uint64_t len; /* content length when !indef */
};

/* Reads a tag+length header. Single-byte tags only (all that CMS uses). */
static int rd_hdr(struct rd *r, struct tl *t)
{
	unsigned char b;
	int rc;

	memset(t, 0, sizeof(*t));
	rc = rd_read(r, &t->tag, 1);
	if (rc)
		return rc;
	if ((t->tag & 0x1f) == 0x1f)
		return -EPROTO;
	rc = rd_read(r, &b, 1);
	if (rc)
		return rc;
	if (b < 0x80) {
		t->len = b;
	} else if (b == 0x80) {
		if (!(t->tag & 0x20))
			return -EPROTO; /* indefinite only for constructed */
		t->indef = true;
	} else {
		unsigned n = b & 0x7fu;

		if (n > 8)
			return -EPROTO;
		for (unsigned i = 0; i < n; i++) {
			rc = rd_read(r, &b, 1);
			if (rc)
				return rc;
			if (t->len >> 56)
				return -EPROTO;
			t->len = (t->len << 8) | b;
		}
	}
	if (!t->indef && t->len > r->size - r->pos)
		return -EPROTO;
	return 0;
}

static bool is_eoc(const struct tl *t)
{
	return t->tag == 0 && !t->indef && t->len == 0;
}

/* Skips one complete TLV (any encoding) starting at r->pos. */
static int rd_skip_tlv(struct rd *r, int depth)
{
	struct tl t;
	int rc;

	if (depth > MAX_DEPTH)
		return -EPROTO;
	rc = rd_hdr(r, &t);
	if (rc)
		return rc;
	if (!t.indef) {
		r->pos += t.len;
		return 0;
	}
	for (;;) {
		unsigned char c[2];
		uint64_t save = r->pos;

		rc = rd_read(r, c, 2);
		if (rc)
			return rc;
		if (c[0] == 0 && c[1] == 0)
			return 0;
		r->pos = save;
		rc = rd_skip_tlv(r, depth + 1);
		if (rc)
			return rc;
	}
}

/* Appends the raw bytes of one complete TLV to out and advances past it. */
static int rd_copy_tlv(struct rd *r, struct dbuf *out)
{
	uint64_t start = r->pos, end;
	unsigned char tmp[4096];
	size_t n;
	int rc = rd_skip_tlv(r, 0);

	if (rc)
		return rc;
	end = r->pos;
	if (end - start > out->max - out->len)
		return -EMSGSIZE;
	n = (size_t)(end - start);
	r->pos = start;
	while (n > 0) {
		size_t k = n < sizeof(tmp) ? n : sizeof(tmp);

		rc = rd_read(r, tmp, k);
		if (rc)
			return rc;
		rc = dbuf_add(out, tmp, k);
		if (rc)
			return rc;
		n -= k;
	}
	return 0;
}

static int rd_expect_end(struct rd *r, const struct tl *t, uint64_t content_start)
{
	struct tl e;
	int rc;

	if (!t->indef)
		return r->pos == content_start + t->len ? 0 : -EPROTO;
	rc = rd_hdr(r, &e);
	if (rc)
		return rc;
	return is_eoc(&e) ? 0 : -EPROTO;
}

/* ------------------------------------------------ encryptedContent walker */

struct walker {
	struct rd *r;
	bool prim;     /* [0] IMPLICIT primitive OCTET STRING */
	bool indef;
	uint64_t end;  /* for definite constructed */
	uint64_t left; /* bytes left in the current segment */
	bool done;
	int err;
};

static void walker_init(struct walker *w, struct rd *r, const struct tl *hdr)
{
	memset(w, 0, sizeof(*w));
	w->r = r;
	w->prim = !(hdr->tag & 0x20);
	w->indef = hdr->indef;
	w->end = r->pos + hdr->len;
	if (w->prim) {
		w->left = hdr->len;
		if (w->left == 0)
			w->done = true;
	}
}

/* Moves to the next segment; sets done at the end. */
static int walker_next(struct walker *w)
{
	struct tl t;
	int rc;

	if (w->prim) {
		w->done = true;
		return 0;
	}
	if (!w->indef && w->r->pos == w->end) {
		w->done = true;
		return 0;
	}
	rc = rd_hdr(w->r, &t);
	if (rc)
		return rc;
	if (is_eoc(&t)) {
		if (!w->indef)
			return -EPROTO;
		w->done = true;
		return 0;
	}
	if (t.tag != 0x04 || t.indef)
		return -EPROTO; /* nested constructed chunks: not produced by OpenSSL */
	if (!w->indef && w->r->pos + t.len > w->end)
		return -EPROTO;
	w->left = t.len;
	return 0;
}

/* ----------------------------------------------- source BIO over a walker */

static int src_bio_read(BIO *b, char *out, int outl)
{
	struct walker *w = BIO_get_data(b);
	int rc;

	BIO_clear_retry_flags(b);
	if (outl <= 0)
		return 0;
	while (!w->done && w->left == 0) {
		rc = walker_next(w);
		if (rc) {
			w->err = rc;
			return -1;
		}
	}
	if (w->done)
		return 0;
	{
		size_t k = w->left < (uint64_t)outl ? (size_t)w->left : (size_t)outl;

		rc = rd_read(w->r, out, k);
		if (rc) {
			w->err = rc;
			return -1;
		}
		w->left -= k;
		return (int)k;
	}
}

static long src_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct walker *w = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_EOF:
		return w && w->done ? 1 : 0;
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int src_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *src_method;
static pthread_once_t src_once = PTHREAD_ONCE_INIT;

static void src_method_setup(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pcp-art-src");

	if (!m)
		return;
	if (BIO_meth_set_read(m, src_bio_read) != 1 || BIO_meth_set_ctrl(m, src_bio_ctrl) != 1 ||
	    BIO_meth_set_create(m, src_bio_create) != 1) {
		BIO_meth_free(m);
		return;
	}
	src_method = m;
}

/* ------------------------------------------------------------ parsing */

static const unsigned char oid_auth_enveloped[] = { 0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
						    0x01, 0x09, 0x10, 0x01, 0x17 };
static const unsigned char oid_enveloped[] = { 0x06, 0x09, 0x2a, 0x86, 0x48,
					       0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03 };

struct parsed {
	struct dbuf body;     /* AuthEnvelopedData fields minus encryptedContent */
	struct tl content;    /* header of encryptedContent */
	uint64_t content_pos; /* offset just after that header */
};

static int add_len(struct dbuf *b, size_t len)
{
	unsigned char l[9];
	size_t n = 0;

	if (len < 0x80) {
		l[0] = (unsigned char)len;
		return dbuf_add(b, l, 1);
	}
	for (size_t v = len; v; v >>= 8)
		n++;
	l[0] = (unsigned char)(0x80 | n);
	for (size_t i = 0; i < n; i++)
		l[1 + i] = (unsigned char)(len >> (8 * (n - 1 - i)));
	return dbuf_add(b, l, n + 1);
}

static int add_tl(struct dbuf *b, unsigned char tag, size_t len)
{
	int rc = dbuf_add(b, &tag, 1);

	return rc ? rc : add_len(b, len);
}

/* Pass 1. On -ENOTSUP the file is CMS but not AuthEnvelopedData. */
static int parse_artifact(struct rd *r, struct parsed *p)
{
	struct tl ci, ex, aed, aeci;
	uint64_t ci_c, ex_c, aed_c, aeci_c;
	struct dbuf aeci_body;
	unsigned char oid[sizeof(oid_auth_enveloped)];
	unsigned char c;
	struct walker w;
	int rc;

	dbuf_init(&aeci_body, SMALL_MAX);
	rc = rd_hdr(r, &ci);
	if (rc || ci.tag != 0x30) {
		rc = -EPROTO;
		goto out;
	}
	ci_c = r->pos;
	rc = rd_read(r, oid, sizeof(oid_enveloped));
	if (rc)
		goto out;
	if (memcmp(oid, oid_enveloped, sizeof(oid_enveloped)) == 0) {
		rc = -ENOTSUP;
		goto out;
	}
	rc = rd_read(r, oid + sizeof(oid_enveloped), sizeof(oid) - sizeof(oid_enveloped));
	if (rc || memcmp(oid, oid_auth_enveloped, sizeof(oid)) != 0) {
		rc = -EPROTO;
		goto out;
	}
	rc = rd_hdr(r, &ex);
	if (rc || ex.tag != 0xa0) {
		rc = -EPROTO;
		goto out;
	}
	ex_c = r->pos;
	rc = rd_hdr(r, &aed);
	if (rc || aed.tag != 0x30) {
		rc = -EPROTO;
		goto out;
	}
	aed_c = r->pos;
	/* version */
	if ((rc = rd_peek(r, &c)) != 0 || c != 0x02 || (rc = rd_copy_tlv(r, &p->body)) != 0)
		goto bad;
	/* originatorInfo [0] OPTIONAL */
	if ((rc = rd_peek(r, &c)) != 0)
		goto bad;
	if (c == 0xa0 && ((rc = rd_copy_tlv(r, &p->body)) != 0 || (rc = rd_peek(r, &c)) != 0))
		goto bad;
	/* recipientInfos SET */
	if (c != 0x31 || (rc = rd_copy_tlv(r, &p->body)) != 0)
		goto bad;
	/* authEncryptedContentInfo */
	rc = rd_hdr(r, &aeci);
	if (rc || aeci.tag != 0x30)
		goto bad;
	aeci_c = r->pos;
	if ((rc = rd_peek(r, &c)) != 0 || c != 0x06 || (rc = rd_copy_tlv(r, &aeci_body)) != 0)
		goto bad;
	if ((rc = rd_peek(r, &c)) != 0 || c != 0x30 || (rc = rd_copy_tlv(r, &aeci_body)) != 0)
		goto bad;
	rc = rd_hdr(r, &p->content);
	if (rc || (p->content.tag != 0x80 && p->content.tag != 0xa0))
		goto bad; /* detached content is not an artifact */
	p->content_pos = r->pos;
	walker_init(&w, r, &p->content);
	while (!w.done) {
		if (w.left == 0) {
			rc = walker_next(&w);
			if (rc)
				goto bad;
			continue;
		}
		if (w.left > r->size - r->pos)
			goto bad;
		r->pos += w.left;
		w.left = 0;
		if (w.prim)
			w.done = true;
	}
	if ((rc = rd_expect_end(r, &aeci, aeci_c)) != 0)
		goto bad;
	if ((rc = add_tl(&p->body, 0x30, aeci_body.len)) != 0 ||
	    (rc = dbuf_add(&p->body, aeci_body.data, aeci_body.len)) != 0)
		goto out;
	/* authAttrs [1] OPTIONAL, mac, unauthAttrs [2] OPTIONAL */
	if ((rc = rd_peek(r, &c)) != 0)
		goto bad;
	if (c == 0xa1 && ((rc = rd_copy_tlv(r, &p->body)) != 0 || (rc = rd_peek(r, &c)) != 0))
		goto bad;
	if (c != 0x04 || (rc = rd_copy_tlv(r, &p->body)) != 0)
		goto bad;
	if (aed.indef || r->pos < aed_c + aed.len) {
		if ((rc = rd_peek(r, &c)) != 0)
			goto bad;
		if (c == 0xa2 && (rc = rd_copy_tlv(r, &p->body)) != 0)
			goto bad;
	}
	if (rd_expect_end(r, &aed, aed_c) || rd_expect_end(r, &ex, ex_c) ||
	    rd_expect_end(r, &ci, ci_c))
		goto bad;
	if (r->pos != r->size)
		goto bad; /* trailing bytes */
	rc = 0;
	goto out;
bad:
	if (rc != -ENOMEM && rc != -EMSGSIZE)
		rc = -EPROTO;
	if (rc == 0)
		rc = -EPROTO;
out:
	dbuf_cleanup(&aeci_body);
	return rc;
}

/* Skeleton: ContentInfo { authEnvelopedData, [0] { SEQUENCE body } } */
static int build_skeleton(const struct parsed *p, struct dbuf *sk)
{
	struct dbuf inner;
	int rc;

	dbuf_init(&inner, SMALL_MAX * 2);
	if ((rc = dbuf_add(&inner, oid_auth_enveloped, sizeof(oid_auth_enveloped))) != 0)
		goto out;
	{
		struct dbuf seq;

		dbuf_init(&seq, SMALL_MAX * 2);
		rc = add_tl(&seq, 0x30, p->body.len);
		if (!rc)
			rc = dbuf_add(&seq, p->body.data, p->body.len);
		if (!rc)
			rc = add_tl(&inner, 0xa0, seq.len);
		if (!rc)
			rc = dbuf_add(&inner, seq.data, seq.len);
		dbuf_cleanup(&seq);
		if (rc)
			goto out;
	}
	if ((rc = add_tl(sk, 0x30, inner.len)) != 0 || (rc = dbuf_add(sk, inner.data, inner.len)) != 0)
		goto out;
out:
	dbuf_cleanup(&inner);
	return rc;
}

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

/* Is cert one of the recipients? (for a clear "wrong certificate" message) */
static bool cert_is_recipient(CMS_ContentInfo *cms, X509 *cert)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);

	for (int i = 0; ris && i < sk_CMS_RecipientInfo_num(ris); i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
		int type = CMS_RecipientInfo_type(ri);

		if (type == CMS_RECIPINFO_TRANS && CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0)
			return true;
		if (type == CMS_RECIPINFO_AGREE) {
			STACK_OF(CMS_RecipientEncryptedKey) *reks = CMS_RecipientInfo_kari_get0_reks(ri);

			for (int j = 0; reks && j < sk_CMS_RecipientEncryptedKey_num(reks); j++)
				if (CMS_RecipientEncryptedKey_cert_cmp(
					    sk_CMS_RecipientEncryptedKey_value(reks, j), cert) == 0)
					return true;
		}
	}
	return false;
}

int art_decrypt(const char *in_path, const char *key_path, const char *cert_path,
		const char *out_path, char *msg, size_t msglen)
{
	struct rd r = { .fd = -1 };
	struct parsed p;
	struct dbuf sk;
	struct walker w;
	struct stat st;
	CMS_ContentInfo *cms = NULL;
	EVP_PKEY *pkey = NULL;
	X509 *cert = NULL;
	BIO *src = NULL, *fdbio = NULL, *outb = NULL;
	char tmp[PATH_MAX] = "";
	int ofd = -1, rc;

	dbuf_init(&p.body, SMALL_MAX);
	dbuf_init(&sk, SMALL_MAX * 2 + 64);
	if (!in_path || !key_path || !out_path) {
		rc = -EINVAL;
		goto out;
	}
	r.fd = open(in_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (r.fd < 0 || fstat(r.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		if (r.fd >= 0 && !S_ISREG(st.st_mode))
			errno = EINVAL;
		rc = -errno;
		art_msg(msg, msglen, "cannot open %s: %s", in_path, strerror(errno));
		goto out;
	}
	r.size = (uint64_t)st.st_size;
	r.buf = malloc(RD_BUF);
	if (!r.buf) {
		rc = -ENOMEM;
		goto out;
	}
	rc = parse_artifact(&r, &p);
	if (rc) {
		if (rc == -ENOTSUP)
			art_msg(msg, msglen,
				"%s is CMS EnvelopedData, not AuthEnvelopedData; decrypt it with "
				"openssl cms -decrypt",
				in_path);
		else
			art_msg(msg, msglen,
				"%s is not a complete CMS AuthEnvelopedData artifact (truncated or "
				"modified)",
				in_path);
		goto out;
	}
	rc = build_skeleton(&p, &sk);
	if (rc)
		goto out;
	{
		const unsigned char *q = (const unsigned char *)sk.data;

		cms = d2i_CMS_ContentInfo(NULL, &q, (long)sk.len);
	}
	if (!cms) {
		rc = -EPROTO;
		art_msg(msg, msglen, "%s has a CMS header OpenSSL cannot read", in_path);
		goto out;
	}
	rc = load_key(key_path, &pkey, msg, msglen);
	if (rc)
		goto out;
	if (cert_path) {
		rc = load_cert(cert_path, &cert, msg, msglen);
		if (rc)
			goto out;
		if (X509_check_private_key(cert, pkey) != 1) {
			rc = -EINVAL;
			art_msg(msg, msglen, "the private key %s does not belong to the certificate %s",
				key_path, cert_path);
			goto out;
		}
		if (!cert_is_recipient(cms, cert)) {
			rc = -EBADMSG;
			art_msg(msg, msglen, "%s was not encrypted to this certificate/key", in_path);
			goto out;
		}
	}
	if (pthread_once(&src_once, src_method_setup) != 0 || !src_method) {
		rc = -ENOMEM;
		goto out;
	}
	r.pos = p.content_pos;
	walker_init(&w, &r, &p.content);
	src = BIO_new(src_method);
	if (!src) {
		rc = -ENOMEM;
		goto out;
	}
	BIO_set_data(src, &w);
	ofd = art_tmpfile(out_path, tmp, sizeof(tmp));
	if (ofd < 0) {
		rc = ofd;
		tmp[0] = '\0';
		art_msg(msg, msglen, "cannot create a temporary file next to %s: %s", out_path,
			strerror(-rc));
		goto out;
	}
	fdbio = BIO_new_fd(ofd, BIO_NOCLOSE);
	outb = BIO_new(BIO_f_buffer());
	if (!fdbio || !outb || BIO_set_write_buffer_size(outb, ART_CHUNK) != 1) {
		rc = -ENOMEM;
		goto out;
	}
	BIO_push(outb, fdbio);
	fdbio = NULL; /* owned by the outb chain now */
	if (CMS_decrypt(cms, pkey, cert, src, outb, CMS_BINARY) != 1) {
		bool no_match = false;
		unsigned long e;

		while ((e = ERR_get_error()) != 0)
			if (ERR_GET_LIB(e) == ERR_LIB_CMS && ERR_GET_REASON(e) == CMS_R_NO_MATCHING_RECIPIENT)
				no_match = true;
		rc = -EBADMSG;
		if (w.err)
			art_msg(msg, msglen, "%s is truncated or malformed inside its encrypted content",
				in_path);
		else if (no_match)
			art_msg(msg, msglen, "%s was not encrypted to this certificate/key", in_path);
		else
			art_msg(msg, msglen,
				"decrypting %s failed: wrong key, or the artifact was modified "
				"(authentication tag mismatch)",
				in_path);
		goto out;
	}
	if (BIO_flush(outb) != 1) {
		rc = -EIO;
		art_msg(msg, msglen, "writing %s failed", out_path);
		goto out;
	}
	if (fsync(ofd) != 0 || close(ofd) != 0) {
		ofd = -1;
		rc = -errno;
		art_msg(msg, msglen, "writing %s failed: %s", out_path, strerror(errno));
		goto out;
	}
	ofd = -1;
	if (rename(tmp, out_path) != 0) {
		rc = -errno;
		art_msg(msg, msglen, "renaming into %s failed: %s", out_path, strerror(errno));
		goto out;
	}
	tmp[0] = '\0';
	(void)fsu_fsync_parent(out_path);
	if (msg && msglen)
		msg[0] = '\0';
	rc = 0;
out:
	ERR_clear_error();
	BIO_free(src);
	BIO_free_all(outb);
	BIO_free(fdbio);
	if (ofd >= 0)
		close(ofd);
	if (tmp[0])
		(void)unlink(tmp);
	CMS_ContentInfo_free(cms);
	EVP_PKEY_free(pkey); /* OpenSSL clears private key material on free */
	X509_free(cert);
	dbuf_cleanup(&sk);
	dbuf_cleanup(&p.body);
	free(r.buf);
	if (r.fd >= 0)
		close(r.fd);
	return rc;
}
