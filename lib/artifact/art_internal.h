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
#include <stddef.h>
#include <stdint.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "art.h"

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
	int err;            /* first write error (negative errno), sticky */
};

int art_sink_init(struct art_sink *s, int fd);
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

#endif
