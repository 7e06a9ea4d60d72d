/*
 * art.h - the pod-level checkpoint artifact: certificate checks, the bundle
 * writer (tar via libarchive, optionally CMS-encrypted, streaming) and the
 * matching decryption. Knows nothing of Kubernetes.
 *
 * Errors: 0 or a negative errno-style code; where a human needs to know what
 * to fix, a one-sentence message is written into a caller's buffer.
 * Ownership: _new/_open return heap objects freed by the matching _free /
 * _abort / _commit; every _free accepts NULL.
 * Secrets: only public certificates pass through here on the write side; the
 * private key is read only by art_decrypt (a user's tool), and wiped after use.
 */
#ifndef PCP_ART_H
#define PCP_ART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ART_SHA256_HEX 65 /* 64 hex digits + NUL */

/* ---------------------------------------------------------------- certificate */

/* Why a certificate is refused (maps to status reasons). */
enum art_cert_error {
	ART_CERT_OK = 0,
	ART_CERT_GARBAGE,         /* not PEM, or PEM of something that is not a certificate */
	ART_CERT_UNSUPPORTED_KEY, /* Ed25519, DSA, an EC curve other than P-256/P-384, RSA < 2048 */
	ART_CERT_EXPIRED,         /* notAfter in the past */
	ART_CERT_NOT_YET_VALID,   /* notBefore in the future */
};

struct art_cert;

/*
 * Parses the first certificate of a PEM text (tls.crt; further chain
 * certificates are ignored) and checks it can be a recipient. On refusal
 * returns -EINVAL, sets *why and writes one human sentence into msg.
 * allow_expired skips the validity-period check. `now` is epoch seconds.
 */
int art_cert_parse(const char *pem, size_t len, bool allow_expired, time_t now,
		   struct art_cert **out, enum art_cert_error *why, char *msg, size_t msglen);
void art_cert_free(struct art_cert *cert);
/* Lowercase hex SHA-256 of the DER certificate (borrowed, 64 chars). */
const char *art_cert_fingerprint(const struct art_cert *cert);
/* "RSA-3072", "EC-P256", ... (borrowed). */
const char *art_cert_key_desc(const struct art_cert *cert);

/* ---------------------------------------------------------------- writer */

struct art_writer;

struct art_result {
	char path[4096];                 /* final path of the stored artifact */
	uint64_t size_bytes;             /* size of the stored file */
	char sha256[ART_SHA256_HEX];     /* of the stored file (ciphertext when encrypted) */
	bool encrypted;
	char recipient_fingerprint[ART_SHA256_HEX]; /* "" when not encrypted */
};

/*
 * Opens a new artifact at final_path (its directory must exist, 0700). Data
 * goes to a hidden temporary file (0600) next to it; nothing appears under
 * final_path until art_writer_commit. recipient NULL: plain tar; else the
 * tar is encrypted as CMS AuthEnvelopedData (AES-256-GCM) to the certificate
 * (RSA-OAEP-SHA256 key transport, or ECDH key agreement), streamed, DER.
 * recipient is borrowed for the writer's life.
 */
int art_writer_open(const char *final_path, const struct art_cert *recipient,
		    struct art_writer **out, char *msg, size_t msglen);
/*
 * Appends the file at src_path as tar entry `entry_name` (mode 0600), copying
 * it unchanged in bounded chunks; returns the SHA-256 (hex) and size of its
 * content. A file that shrinks or fails mid-read fails the call (-EIO).
 */
int art_writer_add_file(struct art_writer *w, const char *entry_name, const char *src_path,
			char sha256_hex[ART_SHA256_HEX], uint64_t *size, char *msg, size_t msglen);
/* Appends an in-memory entry (e.g. manifest.json). */
int art_writer_add_bytes(struct art_writer *w, const char *entry_name, const void *data,
			 size_t len, char *msg, size_t msglen);
/* Bytes written to the temporary file so far (for progress). */
uint64_t art_writer_bytes_out(const struct art_writer *w);
/*
 * Finishes the tar and the CMS structure, fsyncs, renames to final_path,
 * fsyncs the directory, and fills res. Frees w in every case; on failure the
 * temporary file is removed and nothing exists at final_path.
 */
int art_writer_commit(struct art_writer *w, struct art_result *res, char *msg, size_t msglen);
/* Discards everything written (removes the temporary file) and frees w. NULL ok. */
void art_writer_abort(struct art_writer *w);
/*
 * Removes the temporary files that writers for final_path left behind when
 * their process died before commit or abort (after a restart). Never touches
 * final_path itself. *removed (may be NULL) counts the files removed.
 */
int art_writer_discard_stale(const char *final_path, unsigned *removed);

/* ---------------------------------------------------------------- reading */

/*
 * Checks that the file at path is a complete, non-empty tar archive (as the
 * kubelet's checkpoint archives are): -EBADMSG with the reason in msg when it
 * is cut short or garbled, -EIO when it cannot be opened.
 */
int art_tar_check(const char *path, uint64_t *entries, char *msg, size_t msglen);

/* SHA-256 (hex) and size of a file, streaming. */
int art_sha256_file(const char *path, char sha256_hex[ART_SHA256_HEX], uint64_t *size);

/*
 * Decrypts a CMS artifact (DER) with the PEM private key at key_path and the
 * certificate at cert_path, streaming to out_path (0600, atomically). The
 * same result as `openssl cms -decrypt -binary -inform DER`, in constant
 * memory. cert_path may be NULL (then every RecipientInfo of the key's type
 * is tried). The plaintext is written to a hidden temp file next to out_path
 * and renamed only after the GCM tag verified; every failure leaves no file.
 * Errors (each with its own sentence in msg): -ENODATA truncated, -EPROTO
 * malformed, -ENOTSUP EnvelopedData / authAttrs / not AES-256-GCM, -ENOENT
 * not encrypted to this certificate/key, -EINVAL key and certificate do not
 * match, -ENOKEY wrong key, -EBADMSG tag mismatch (ciphertext, nonce or tag
 * modified), other negative errno for I/O.
 */
int art_decrypt(const char *in_path, const char *key_path, const char *cert_path,
		const char *out_path, char *msg, size_t msglen);

#endif
