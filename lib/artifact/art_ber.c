/*
 * art_ber.c - the BER reader of the decryption side: a buffered positional
 * reader over the artifact file, the walker over encryptedContent segments,
 * pass 1 (structure check + the small header parts) and the detached DER
 * skeleton that OpenSSL parses instead of the whole file.
 *
 * Memory: one ART_CHUNK read buffer and at most 1 MiB of header parts,
 * whatever the artifact's size. Depth of nested indefinite TLVs is capped.
 */
#include "art_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SMALL_MAX (1u << 20) /* cap for the non-content parts */
#define MAX_DEPTH 32

/* ------------------------------------------------------------ reader */

int art_rd_init(struct art_rd *r, int fd, uint64_t size)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->size = size;
	r->buf = malloc(ART_CHUNK);
	return r->buf ? 0 : -ENOMEM;
}

void art_rd_cleanup(struct art_rd *r)
{
	if (!r)
		return;
	free(r->buf);
	r->buf = NULL;
}

static int rd_fill(struct art_rd *r)
{
	ssize_t n;

	if (r->pos >= r->boff && r->pos < r->boff + r->blen)
		return 0;
	if (r->pos >= r->size)
		return -ENODATA;
	do
		n = pread(r->fd, r->buf, ART_CHUNK, (off_t)r->pos);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ENODATA; /* the file shrank under us */
	r->boff = r->pos;
	r->blen = (size_t)n;
	return 0;
}

int art_rd_span(struct art_rd *r, size_t max, const unsigned char **p, size_t *n)
{
	int rc = rd_fill(r);
	size_t off, k;

	if (rc)
		return rc;
	off = (size_t)(r->pos - r->boff);
	k = r->blen - off;
	if (k > max)
		k = max;
	*p = r->buf + off;
	*n = k;
	r->pos += k;
	return 0;
}

static int rd_read(struct art_rd *r, void *out, size_t n)
{
	unsigned char *o = out;

	while (n > 0) {
		const unsigned char *p;
		size_t k;
		int rc = art_rd_span(r, n, &p, &k);

		if (rc)
			return rc;
		memcpy(o, p, k);
		o += k;
		n -= k;
	}
	return 0;
}

static int rd_peek(struct art_rd *r, unsigned char *c)
{
	int rc = rd_fill(r);

	if (rc)
		return rc;
	*c = r->buf[r->pos - r->boff];
	return 0;
}

/* Reads a tag+length header. Single-byte tags only (all that CMS uses). */
static int rd_hdr(struct art_rd *r, struct art_tl *t)
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
		return -ENODATA;
	return 0;
}

static bool is_eoc(const struct art_tl *t)
{
	return t->tag == 0 && !t->indef && t->len == 0;
}

/* Skips one complete TLV (any encoding) starting at r->pos. */
static int rd_skip_tlv(struct art_rd *r, int depth)
{
	struct art_tl t;
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
static int rd_copy_tlv(struct art_rd *r, struct dbuf *out)
{
	uint64_t start = r->pos, end;
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
		const unsigned char *p;
		size_t k;

		rc = art_rd_span(r, n, &p, &k);
		if (rc)
			return rc;
		rc = dbuf_add(out, p, k);
		if (rc)
			return rc;
		n -= k;
	}
	return 0;
}

static int rd_expect_end(struct art_rd *r, const struct art_tl *t, uint64_t content_start)
{
	struct art_tl e;
	int rc;

	if (!t->indef)
		return r->pos == content_start + t->len ? 0 : -EPROTO;
	rc = rd_hdr(r, &e);
	if (rc)
		return rc;
	return is_eoc(&e) ? 0 : -EPROTO;
}

/* ------------------------------------------------ encryptedContent walker */

void art_walker_init(struct art_walker *w, struct art_rd *r, const struct art_tl *hdr)
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

int art_walker_next(struct art_walker *w)
{
	struct art_tl t;
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

/* ------------------------------------------------------------ parsing */

static const unsigned char oid_auth_enveloped[] = { 0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
						    0x01, 0x09, 0x10, 0x01, 0x17 };
static const unsigned char oid_enveloped[] = { 0x06, 0x09, 0x2a, 0x86, 0x48,
					       0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03 };

void art_cms_hdr_init(struct art_cms_hdr *h)
{
	memset(h, 0, sizeof(*h));
	dbuf_init(&h->body, SMALL_MAX);
}

void art_cms_hdr_cleanup(struct art_cms_hdr *h)
{
	if (h)
		dbuf_cleanup(&h->body);
}

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

/* Appends tag, DER length and the bytes of src. */
static int add_tlv(struct dbuf *b, unsigned char tag, const struct dbuf *src)
{
	int rc = dbuf_add(b, &tag, 1);

	if (!rc)
		rc = add_len(b, src->len);
	if (!rc)
		rc = dbuf_add(b, src->data, src->len);
	return rc;
}

/* Reads an expected header; a wrong tag is -EPROTO. */
static int expect_hdr(struct art_rd *r, unsigned char tag, struct art_tl *t, uint64_t *cpos)
{
	int rc = rd_hdr(r, t);

	if (rc)
		return rc;
	if (t->tag != tag)
		return -EPROTO;
	*cpos = r->pos;
	return 0;
}

/* Copies the next TLV when its tag is `tag` (*copied says so), or must be. */
static int copy_if(struct art_rd *r, unsigned char tag, bool required, struct dbuf *out,
		   bool *copied)
{
	unsigned char c;
	int rc = rd_peek(r, &c);

	if (copied)
		*copied = false;
	if (rc)
		return rc;
	if (c != tag)
		return required ? -EPROTO : 0;
	if (copied)
		*copied = true;
	return rd_copy_tlv(r, out);
}

/* Skips the content segments, checking each header (pass 1). */
static int skip_content(struct art_rd *r, const struct art_tl *content)
{
	struct art_walker w;
	int rc;

	art_walker_init(&w, r, content);
	while (!w.done) {
		if (w.left == 0) {
			rc = art_walker_next(&w);
			if (rc)
				return rc;
			continue;
		}
		if (w.left > r->size - r->pos)
			return -ENODATA;
		r->pos += w.left;
		w.left = 0;
		if (w.prim)
			w.done = true;
	}
	return 0;
}

/* authEncryptedContentInfo: contentType, algorithm, encryptedContent. */
static int parse_aeci(struct art_rd *r, struct art_cms_hdr *h)
{
	struct art_tl aeci;
	struct dbuf body;
	uint64_t aeci_c;
	size_t alg_off;
	int rc;

	dbuf_init(&body, SMALL_MAX);
	if ((rc = expect_hdr(r, 0x30, &aeci, &aeci_c)) != 0 ||
	    (rc = copy_if(r, 0x06, true, &body, NULL)) != 0)
		goto out;
	alg_off = body.len;
	if ((rc = copy_if(r, 0x30, true, &body, NULL)) != 0)
		goto out;
	h->alg_len = body.len - alg_off;
	rc = rd_hdr(r, &h->content);
	if (rc)
		goto out;
	if (h->content.tag != 0x80 && h->content.tag != 0xa0) {
		rc = -EPROTO; /* detached content is not an artifact */
		goto out;
	}
	h->content_pos = r->pos;
	if ((rc = skip_content(r, &h->content)) != 0 || (rc = rd_expect_end(r, &aeci, aeci_c)) != 0)
		goto out;
	rc = add_tlv(&h->body, 0x30, &body);
	h->alg_off = h->body.len - body.len + alg_off; /* body ends h->body */
out:
	dbuf_cleanup(&body);
	return rc;
}

int art_ber_parse(struct art_rd *r, struct art_cms_hdr *h)
{
	struct art_tl ci, ex, aed;
	uint64_t ci_c, ex_c, aed_c;
	unsigned char oid[sizeof(oid_auth_enveloped)];
	bool had;
	int rc;

	r->pos = 0;
	if ((rc = expect_hdr(r, 0x30, &ci, &ci_c)) != 0 ||
	    (rc = rd_read(r, oid, sizeof(oid_enveloped))) != 0)
		goto out;
	if (memcmp(oid, oid_enveloped, sizeof(oid_enveloped)) == 0) {
		rc = -ENOTSUP;
		goto out;
	}
	if ((rc = rd_read(r, oid + sizeof(oid_enveloped), sizeof(oid) - sizeof(oid_enveloped))) != 0)
		goto out;
	if (memcmp(oid, oid_auth_enveloped, sizeof(oid)) != 0) {
		rc = -EPROTO;
		goto out;
	}
	if ((rc = expect_hdr(r, 0xa0, &ex, &ex_c)) != 0 ||
	    (rc = expect_hdr(r, 0x30, &aed, &aed_c)) != 0)
		goto out;
	/* version, originatorInfo [0] OPTIONAL, recipientInfos SET */
	if ((rc = copy_if(r, 0x02, true, &h->body, NULL)) != 0 ||
	    (rc = copy_if(r, 0xa0, false, &h->body, NULL)) != 0 ||
	    (rc = copy_if(r, 0x31, true, &h->body, NULL)) != 0)
		goto out;
	if ((rc = parse_aeci(r, h)) != 0)
		goto out;
	/* authAttrs [1] OPTIONAL, mac, unauthAttrs [2] OPTIONAL */
	if ((rc = copy_if(r, 0xa1, false, &h->body, &h->auth_attrs)) != 0)
		goto out;
	h->mac_off = h->body.len;
	if ((rc = copy_if(r, 0x04, true, &h->body, NULL)) != 0)
		goto out;
	h->mac_len = h->body.len - h->mac_off;
	if ((aed.indef || r->pos < aed_c + aed.len) &&
	    (rc = copy_if(r, 0xa2, false, &h->body, &had)) != 0)
		goto out;
	if ((rc = rd_expect_end(r, &aed, aed_c)) != 0 || (rc = rd_expect_end(r, &ex, ex_c)) != 0 ||
	    (rc = rd_expect_end(r, &ci, ci_c)) != 0)
		goto out;
	if (r->pos != r->size)
		rc = -EPROTO; /* trailing bytes */
out:
	if (rc && rc != -ENOMEM && rc != -EMSGSIZE && rc != -ENOTSUP && rc != -ENODATA)
		rc = -EPROTO; /* read errors of a regular file are rare; keep the set small */
	return rc;
}

int art_ber_skeleton(const struct art_cms_hdr *h, struct dbuf *sk)
{
	struct dbuf seq, ex, inner;
	int rc;

	dbuf_init(&seq, SMALL_MAX + 16);
	dbuf_init(&ex, SMALL_MAX + 32);
	dbuf_init(&inner, SMALL_MAX + 64);
	if ((rc = add_tlv(&seq, 0x30, &h->body)) != 0 || (rc = add_tlv(&ex, 0xa0, &seq)) != 0 ||
	    (rc = dbuf_add(&inner, oid_auth_enveloped, sizeof(oid_auth_enveloped))) != 0 ||
	    (rc = dbuf_add(&inner, ex.data, ex.len)) != 0)
		goto out;
	rc = add_tlv(sk, 0x30, &inner);
out:
	dbuf_cleanup(&inner);
	dbuf_cleanup(&ex);
	dbuf_cleanup(&seq);
	return rc;
}
