/*
 * art_writer.c - the pod-level bundle: a PAX (restricted) tar written by
 * libarchive through our own callbacks into a hidden temp file, optionally
 * through the streaming CMS encryptor. SHA-256 and size are taken from the
 * bytes that reach the disk. Commit = finish tar, finish CMS, fsync,
 * rename, fsync dir. Any failure removes the temp file.
 *
 * Ownership: the writer owns the temp fd, the libarchive handle, the
 * encryptor and its buffers; the recipient certificate is borrowed.
 * A failed add poisons the writer: commit then fails and leaves nothing,
 * because a bundle missing one of its entries must never look complete.
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

#include <archive.h>
#include <archive_entry.h>

#include "fsutil.h"
#include "log.h"

#define ART_TAR_BLOCK (64 * 1024) /* libarchive hands us writes of this size */

struct art_writer {
	char final_path[PATH_MAX];
	char tmp_path[PATH_MAX];
	int fd;
	struct art_sink sink;
	bool sink_ready;
	BIO *sink_bio;               /* owned, tail of the CMS chain */
	struct art_cms_enc *enc;     /* owned, NULL when plain */
	struct archive *ar;          /* owned */
	const struct art_cert *recipient; /* borrowed */
	unsigned char *buf;          /* ART_CHUNK bytes */
	size_t buf_hw;               /* of buf, the most ever read into it (wiped at free: plaintext) */
	int failed;                  /* sticky negative errno */
	bool discard;                /* abort in progress: drop writes */
};

/* ---- libarchive client callbacks ---- */

static int cb_open(struct archive *a, void *cd)
{
	(void)a;
	(void)cd;
	return ARCHIVE_OK;
}

static la_ssize_t cb_write(struct archive *a, void *cd, const void *buf, size_t len)
{
	struct art_writer *w = cd;
	int rc;

	if (w->discard)
		return (la_ssize_t)len;
	if (w->failed) {
		archive_set_error(a, -w->failed, "artifact writer already failed");
		return -1;
	}
	if (w->enc)
		rc = art_cms_enc_write(w->enc, buf, len);
	else
		rc = art_sink_write(&w->sink, buf, len);
	if (rc) {
		if (w->sink.err)
			rc = w->sink.err;
		w->failed = rc;
		archive_set_error(a, -rc, "writing the artifact failed");
		return -1;
	}
	return (la_ssize_t)len;
}

static int cb_close(struct archive *a, void *cd)
{
	(void)a;
	(void)cd;
	return ARCHIVE_OK; /* the fd is closed by commit/abort */
}

/* ---- helpers ---- */

static void writer_destroy(struct art_writer *w)
{
	if (!w)
		return;
	w->discard = true;
	if (w->ar)
		archive_write_free(w->ar);
	art_cms_enc_free(w->enc);
	BIO_free(w->sink_bio);
	if (w->sink_ready)
		art_sink_cleanup(&w->sink);
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp_path[0])
		(void)unlink(w->tmp_path);
	if (w->buf)
		OPENSSL_cleanse(w->buf, w->buf_hw); /* the archives' plaintext */
	free(w->buf);
	free(w);
}

static int check_entry_name(const char *name)
{
	size_t n;

	if (!name || !*name || name[0] == '/')
		return -EINVAL;
	n = strlen(name);
	if (n >= 1024)
		return -ENAMETOOLONG;
	/* no ".." path component */
	for (const char *p = name; *p;) {
		const char *slash = strchr(p, '/');
		size_t cl = slash ? (size_t)(slash - p) : strlen(p);

		if (cl == 2 && p[0] == '.' && p[1] == '.')
			return -EINVAL;
		p += cl;
		if (*p == '/')
			p++;
	}
	return 0;
}

static int write_header(struct art_writer *w, const char *entry_name, uint64_t size, time_t mtime,
			char *msg, size_t msglen)
{
	struct archive_entry *e = archive_entry_new();
	int rc = 0;

	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, entry_name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0600);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_mtime(e, mtime, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	if (archive_write_header(w->ar, e) != ARCHIVE_OK) {
		rc = w->failed ? w->failed : -EIO;
		art_msg(msg, msglen, "writing the tar header for %s failed: %s", entry_name,
			archive_error_string(w->ar) ? archive_error_string(w->ar) : "unknown error");
	}
	archive_entry_free(e);
	return rc;
}

static int write_data(struct art_writer *w, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		la_ssize_t k = archive_write_data(w->ar, c, n);

		if (k <= 0)
			return w->failed ? w->failed : -EIO;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

/* ---- public ---- */

int art_writer_open(const char *final_path, const struct art_cert *recipient,
		    struct art_writer **out, char *msg, size_t msglen)
{
	struct art_writer *w = NULL;
	char dir[PATH_MAX];
	struct stat st;
	const char *slash;
	int rc, n;

	if (out)
		*out = NULL;
	if (!final_path || !out || !*final_path) {
		rc = -EINVAL;
		goto out;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		rc = -ENOMEM;
		goto out;
	}
	w->fd = -1;
	w->recipient = recipient;
	n = snprintf(w->final_path, sizeof(w->final_path), "%s", final_path);
	if (n < 0 || (size_t)n >= sizeof(w->final_path)) {
		rc = -ENAMETOOLONG;
		art_msg(msg, msglen, "the artifact path is too long");
		goto out;
	}
	slash = strrchr(final_path, '/');
	n = snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - final_path) : 1,
		     slash ? final_path : ".");
	if (slash == final_path)
		n = snprintf(dir, sizeof(dir), "/");
	if (n < 0 || (size_t)n >= sizeof(dir)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		rc = -ENOENT;
		art_msg(msg, msglen, "the artifact directory %s does not exist", dir);
		goto out;
	}
	if (st.st_mode & 077)
		LOG_WARN("msg=\"artifact directory is accessible to group/other\" dir=%s mode=%04o",
			 dir, (unsigned)(st.st_mode & 07777));
	w->buf = malloc(ART_CHUNK);
	if (!w->buf) {
		rc = -ENOMEM;
		goto out;
	}
	rc = art_tmpfile(final_path, w->tmp_path, sizeof(w->tmp_path));
	if (rc < 0) {
		w->tmp_path[0] = '\0';
		art_msg(msg, msglen, "creating the temporary artifact file in %s failed: %s", dir,
			strerror(-rc));
		goto out;
	}
	w->fd = rc;
	rc = art_sink_init(&w->sink, w->fd);
	if (rc)
		goto out;
	w->sink_ready = true;
	if (recipient) {
		w->sink_bio = art_sink_bio_new(&w->sink);
		if (!w->sink_bio) {
			rc = -ENOMEM;
			goto out;
		}
		rc = art_cms_enc_new(art_cert_x509(recipient), w->sink_bio, &w->enc, msg, msglen);
		if (rc)
			goto out;
	}
	w->ar = archive_write_new();
	if (!w->ar) {
		rc = -ENOMEM;
		goto out;
	}
	if (archive_write_set_format_pax_restricted(w->ar) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(w->ar, ART_TAR_BLOCK) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(w->ar, 1) != ARCHIVE_OK ||
	    archive_write_open(w->ar, w, cb_open, cb_write, cb_close) != ARCHIVE_OK) {
		rc = w->failed ? w->failed : -EIO;
		art_msg(msg, msglen, "starting the tar stream failed: %s",
			archive_error_string(w->ar) ? archive_error_string(w->ar) : "unknown error");
		goto out;
	}
	*out = w;
	w = NULL;
	rc = 0;
out:
	writer_destroy(w);
	return rc;
}

int art_writer_add_file(struct art_writer *w, const char *entry_name, const char *src_path,
			char sha256_hex[ART_SHA256_HEX], uint64_t *size, char *msg, size_t msglen)
{
	EVP_MD_CTX *md = NULL;
	struct stat st;
	uint64_t left, total;
	int fd = -1, rc;

	if (!w || !src_path) {
		rc = -EINVAL;
		goto out;
	}
	if (w->failed) {
		rc = w->failed;
		art_msg(msg, msglen, "the artifact writer already failed");
		goto out;
	}
	rc = check_entry_name(entry_name);
	if (rc) {
		art_msg(msg, msglen, "invalid tar entry name");
		goto fail;
	}
	fd = open(src_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		art_msg(msg, msglen, "cannot open %s: %s", src_path, strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		art_msg(msg, msglen, "%s is not a regular file", src_path);
		goto fail;
	}
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = -ENOMEM;
		goto fail;
	}
	total = (uint64_t)st.st_size;
	rc = write_header(w, entry_name, total, st.st_mtime, msg, msglen);
	if (rc)
		goto fail;
	left = total;
	while (left > 0) {
		size_t want = left < ART_CHUNK ? (size_t)left : ART_CHUNK;
		ssize_t r = read(fd, w->buf, want);

		if (r > 0 && (size_t)r > w->buf_hw)
			w->buf_hw = (size_t)r;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = -EIO;
			art_msg(msg, msglen, "%s %s while being copied into the artifact", src_path,
				r == 0 ? "shrank" : "failed to read");
			goto fail;
		}
		if (EVP_DigestUpdate(md, w->buf, (size_t)r) != 1) {
			rc = -EIO;
			goto fail;
		}
		rc = write_data(w, w->buf, (size_t)r);
		if (rc) {
			art_msg(msg, msglen, "writing %s into the artifact failed: %s", entry_name,
				strerror(-rc));
			goto fail;
		}
		left -= (uint64_t)r;
	}
	if (sha256_hex) {
		unsigned char d[EVP_MAX_MD_SIZE];
		unsigned int dl = 0;

		if (EVP_DigestFinal_ex(md, d, &dl) != 1) {
			rc = -EIO;
			goto fail;
		}
		art_hex(d, dl, sha256_hex);
	}
	if (size)
		*size = total;
	rc = 0;
	goto out;
fail:
	if (w && !w->failed)
		w->failed = rc ? rc : -EIO;
out:
	EVP_MD_CTX_free(md);
	if (fd >= 0)
		close(fd);
	return rc;
}

int art_writer_add_bytes(struct art_writer *w, const char *entry_name, const void *data,
			 size_t len, char *msg, size_t msglen)
{
	int rc;

	if (!w || (!data && len > 0))
		return -EINVAL;
	if (w->failed) {
		art_msg(msg, msglen, "the artifact writer already failed");
		return w->failed;
	}
	rc = check_entry_name(entry_name);
	if (rc) {
		art_msg(msg, msglen, "invalid tar entry name");
		goto out;
	}
	rc = write_header(w, entry_name, len, time(NULL), msg, msglen);
	if (rc)
		goto out;
	rc = write_data(w, data, len);
	if (rc)
		art_msg(msg, msglen, "writing %s into the artifact failed: %s", entry_name,
			strerror(-rc));
out:
	if (rc && !w->failed)
		w->failed = rc;
	return rc;
}

uint64_t art_writer_bytes_out(const struct art_writer *w)
{
	return w ? w->sink.bytes : 0;
}

int art_writer_commit(struct art_writer *w, struct art_result *res, char *msg, size_t msglen)
{
	struct stat st;
	int rc, n;

	if (!w) {
		rc = -EINVAL;
		goto out;
	}
	if (w->failed) {
		rc = w->failed;
		art_msg(msg, msglen, "the artifact was not stored because an earlier step failed");
		goto out;
	}
	if (archive_write_close(w->ar) != ARCHIVE_OK) {
		rc = w->failed ? w->failed : -EIO;
		art_msg(msg, msglen, "finishing the tar stream failed: %s",
			archive_error_string(w->ar) ? archive_error_string(w->ar) : "unknown error");
		goto out;
	}
	if (w->enc) {
		rc = art_cms_enc_finish(w->enc, msg, msglen);
		if (rc) {
			if (w->sink.err)
				rc = w->sink.err;
			goto out;
		}
	}
	rc = art_sink_flush(&w->sink);
	if (rc) {
		art_msg(msg, msglen, "writing the artifact failed: %s", strerror(-rc));
		goto out;
	}
	if (fsync(w->fd) != 0 || fstat(w->fd, &st) != 0) {
		rc = -errno;
		art_msg(msg, msglen, "flushing the artifact to disk failed: %s", strerror(errno));
		goto out;
	}
	if ((uint64_t)st.st_size != w->sink.bytes) {
		rc = -EIO;
		art_msg(msg, msglen, "the artifact file has an unexpected size");
		goto out;
	}
	if (res) {
		memset(res, 0, sizeof(*res));
		rc = art_sink_final(&w->sink, res->sha256);
		if (rc)
			goto out;
		res->size_bytes = w->sink.bytes;
		res->encrypted = w->enc != NULL;
		if (w->recipient)
			(void)snprintf(res->recipient_fingerprint, sizeof(res->recipient_fingerprint),
				       "%s", art_cert_fingerprint(w->recipient));
		n = snprintf(res->path, sizeof(res->path), "%s", w->final_path);
		if (n < 0 || (size_t)n >= sizeof(res->path)) {
			rc = -ENAMETOOLONG;
			goto out;
		}
	}
	rc = close(w->fd) == 0 ? 0 : -errno;
	w->fd = -1;
	if (rc) {
		art_msg(msg, msglen, "closing the artifact failed: %s", strerror(-rc));
		goto out;
	}
	if (rename(w->tmp_path, w->final_path) != 0) {
		rc = -errno;
		art_msg(msg, msglen, "renaming the artifact into place failed: %s", strerror(errno));
		goto out;
	}
	w->tmp_path[0] = '\0'; /* now owned by final_path: do not unlink */
	rc = fsu_fsync_parent(w->final_path);
	if (rc) {
		/* The file is complete but its name may not survive a crash;
		 * remove it so the caller's retry starts clean. */
		(void)unlink(w->final_path);
		art_msg(msg, msglen, "flushing the artifact directory failed: %s", strerror(-rc));
		goto out;
	}
	if (msg && msglen)
		msg[0] = '\0';
	LOG_DEBUG("msg=\"artifact stored\" path=%s size=%llu encrypted=%d", w->final_path,
		  (unsigned long long)w->sink.bytes, w->enc != NULL);
out:
	if (rc && res)
		memset(res, 0, sizeof(*res));
	writer_destroy(w);
	return rc;
}

void art_writer_abort(struct art_writer *w)
{
	writer_destroy(w);
}
