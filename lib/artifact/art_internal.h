/*
 * art_internal.h - shared between the files of lib/artifact only.
 *
 * The write side is a chain of sinks:
 *   libarchive --write cb--> [CMS encryptor BIO chain] --> art_sink BIO --> temp fd
 * The art_sink hashes (SHA-256) and counts exactly the bytes that reach disk.
 */
#ifndef PCP_ART_INTERNAL_H
#define PCP_ART_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "art.h"
#include "dbuf.h"

#define ART_CHUNK (256u * 1024u) /* copy / read granularity */

/* Writes one sentence into msg (if msg and msglen are non-zero). */
void art_msg(char *msg, size_t msglen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void art_hex(const unsigned char *p, size_t n, char *out);

/* The X509 inside a parsed certificate (borrowed). */
X509 *art_cert_x509(const struct art_cert *cert);

/* ---- the disk sink: fd + SHA-256 + byte count ---- */
struct art_sink {
	int fd;             /* borrowed */
	EVP_MD_CTX *md;     /* owned */
	uint64_t bytes;     /* accepted (hashed) so far */
	uint64_t disk;      /* written to fd so far (bytes minus buffered) */
	uint64_t flushed;   /* start of the window not yet handed to writeback */
	unsigned char *buf; /* ART_CHUNK write buffer: OpenSSL's BIOs write ~4 KiB pieces */
	size_t blen;
	size_t hwm;         /* highest blen reached: only buf[0, hwm) ever held data */
	int err;            /* first write error (negative errno), sticky */
};

int art_sink_init(struct art_sink *s, int fd);
/* The same without the SHA-256 (art_sink_final then fails): decryption output. */
int art_sink_init_nohash(struct art_sink *s, int fd);
void art_sink_cleanup(struct art_sink *s);
/* Writes all n bytes or fails (negative errno, also kept in s->err). */
int art_sink_write(struct art_sink *s, const void *p, size_t n);
/* Writes out the buffer (call before fsync). */
int art_sink_flush(struct art_sink *s);
/* Finishes the digest into hex. */
int art_sink_final(struct art_sink *s, char hex[ART_SHA256_HEX]);
/* A BIO (sink BIO, not owning s) writing into s; free with BIO_free. */
BIO *art_sink_bio_new(struct art_sink *s);

/* ---- streaming CMS AuthEnvelopedData encryptor (art_cms.c) ---- */
struct art_cms_enc;

/* Starts a CMS AuthEnvelopedData (AES-256-GCM) to cert, DER streamed to out
 * (borrowed; must outlive the encryptor). */
int art_cms_enc_new(X509 *cert, BIO *out, struct art_cms_enc **encp, char *msg, size_t msglen);
int art_cms_enc_write(struct art_cms_enc *e, const void *p, size_t n);
/* Writes the GCM tag and the DER trailer. */
int art_cms_enc_finish(struct art_cms_enc *e, char *msg, size_t msglen);
void art_cms_enc_free(struct art_cms_enc *e);

/* Makes a unique hidden temp file ".<base>.tmp-<random>" next to final_path
 * with O_EXCL, mode 0600. tmp receives its path. Returns fd or -errno. */
int art_tmpfile(const char *final_path, char *tmp, size_t tmplen);

/* ---- BER reader over a file (art_ber.c): the decryption side ---- */

/* Buffered positional reader over fd (borrowed). Reading past the end of the
 * file gives -ENODATA (truncated); malformed BER gives -EPROTO. */
struct art_rd {
	int fd;
	uint64_t size; /* file size */
	uint64_t pos;  /* absolute read position */
	unsigned char *buf; /* ART_CHUNK, owned */
	uint64_t boff; /* file offset of buf[0] */
	size_t blen;
};

int art_rd_init(struct art_rd *r, int fd, uint64_t size);
void art_rd_cleanup(struct art_rd *r);
/* Borrows up to max (> 0) bytes at r->pos from the buffer (valid until the
 * next call) and advances past them; *n is at least 1 on success. */
int art_rd_span(struct art_rd *r, size_t max, const unsigned char **p, size_t *n);

struct art_tl {
	unsigned char tag;
	bool indef;
	uint64_t len; /* content length when !indef */
};

/* Walks the segments of encryptedContent ([0] IMPLICIT OCTET STRING,
 * primitive or constructed of primitive OCTET STRINGs). */
struct art_walker {
	struct art_rd *r; /* borrowed */
	bool prim;
	bool indef;
	uint64_t end;  /* for definite constructed */
	uint64_t left; /* bytes left in the current segment */
	bool done;
};

/* r->pos must be just after the header hdr. */
void art_walker_init(struct art_walker *w, struct art_rd *r, const struct art_tl *hdr);
/* Moves to the next segment (w->left > 0) or sets w->done. */
int art_walker_next(struct art_walker *w);

/* What pass 1 learns about an AuthEnvelopedData file. Embedded:
 * art_cms_hdr_init / art_cms_hdr_cleanup. */
struct art_cms_hdr {
	struct dbuf body;     /* AuthEnvelopedData fields minus encryptedContent (owned) */
	struct art_tl content; /* header of encryptedContent */
	uint64_t content_pos; /* file offset just after that header */
	size_t alg_off, alg_len; /* contentEncryptionAlgorithm TLV inside body */
	size_t mac_off, mac_len; /* mac TLV inside body */
	bool auth_attrs;      /* authAttrs [1] present */
};

void art_cms_hdr_init(struct art_cms_hdr *h);
void art_cms_hdr_cleanup(struct art_cms_hdr *h);
/*
 * Pass 1 from offset 0: checks the whole BER structure (every content segment
 * header, the trailer, no trailing bytes) and copies the small parts (capped
 * at 1 MiB). -ENOTSUP: CMS EnvelopedData; -ENODATA: the file ends early (or a
 * length points past its end); -EPROTO: anything else malformed or not
 * AuthEnvelopedData; -EMSGSIZE: header parts over the cap; -ENOMEM.
 */
int art_ber_parse(struct art_rd *r, struct art_cms_hdr *h);
/* DER of ContentInfo { authEnvelopedData, [0] { body } }: the structure
 * without encryptedContent, small enough for d2i_CMS_ContentInfo. */
int art_ber_skeleton(const struct art_cms_hdr *h, struct dbuf *sk);

/* ---- content decryption (art_gcm.c) ---- */
struct art_gcm;

/*
 * Finds the RecipientInfo for pkey (matching cert when not NULL) in cms (the
 * skeleton of h), lets OpenSSL unwrap the content-encryption key into an
 * AES-256-GCM context with the nonce, checks the GCM parameters and the tag
 * length against h. The key stays inside OpenSSL's context (wiped on free).
 * -ENOENT: no RecipientInfo for this certificate/key type; -ENOKEY: the key
 * does not unwrap it (wrong key); -ENOTSUP: not AES-256-GCM;
 * -EPROTO: bad GCM parameters or mac. msg gets one sentence naming `name`.
 */
int art_gcm_open(CMS_ContentInfo *cms, EVP_PKEY *pkey, X509 *cert, const struct art_cms_hdr *h,
		 const char *name, struct art_gcm **out, char *msg, size_t msglen);
/*
 * Pass 2: decrypts the encryptedContent of h (read through r) into s, then
 * checks the tag. -EBADMSG: tag mismatch (content, nonce or tag modified);
 * reader / sink errors as they come. The caller must discard the output on
 * any error.
 */
int art_gcm_stream(struct art_gcm *g, struct art_rd *r, const struct art_cms_hdr *h,
		   struct art_sink *s);
void art_gcm_free(struct art_gcm *g);

#endif
