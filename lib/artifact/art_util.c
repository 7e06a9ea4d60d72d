/*
 * art_util.c - small helpers shared by the artifact files: messages, hex,
 * the hashing disk sink (plain struct and as an OpenSSL BIO), temp files.
 */
#include "art_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

void art_msg(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (!msg || msglen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
}

void art_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

int art_sink_init(struct art_sink *s, int fd)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->buf = malloc(ART_CHUNK);
	s->md = EVP_MD_CTX_new();
	if (!s->md || !s->buf) {
		art_sink_cleanup(s);
		return -ENOMEM;
	}
	if (EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
		art_sink_cleanup(s);
		return -EIO;
	}
	return 0;
}

int art_sink_init_nohash(struct art_sink *s, int fd)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->buf = malloc(ART_CHUNK);
	return s->buf ? 0 : -ENOMEM;
}

void art_sink_cleanup(struct art_sink *s)
{
	if (!s)
		return;
	EVP_MD_CTX_free(s->md);
	s->md = NULL;
	if (s->buf) /* may hold decrypted plaintext; past hwm it was never written */
		OPENSSL_cleanse(s->buf, s->hwm);
	free(s->buf);
	s->buf = NULL;
}

/*
 * Write-behind: every ART_WB_WINDOW bytes start writeback of the new window
 * and wait for the previous one, then drop it from the page cache. The final
 * fsync then has little left to do (disk work overlaps the CPU work), dirty
 * memory stays bounded, and a multi-GiB checkpoint does not evict the node's
 * page cache. Errors here are not fatal: fsync at commit is the real check.
 */
#define ART_WB_WINDOW (8u << 20)

static void sink_writeback(struct art_sink *s)
{
	while (s->disk - s->flushed >= ART_WB_WINDOW) {
		off_t start = (off_t)s->flushed;

		(void)sync_file_range(s->fd, start, ART_WB_WINDOW, SYNC_FILE_RANGE_WRITE);
		if (s->flushed >= ART_WB_WINDOW) {
			off_t prev = start - (off_t)ART_WB_WINDOW;

			(void)sync_file_range(s->fd, prev, ART_WB_WINDOW,
					      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
						      SYNC_FILE_RANGE_WAIT_AFTER);
			(void)posix_fadvise(s->fd, prev, ART_WB_WINDOW, POSIX_FADV_DONTNEED);
		}
		s->flushed += ART_WB_WINDOW;
	}
}

static int sink_write_fd(struct art_sink *s, const unsigned char *c, size_t n)
{
	while (n > 0) {
		ssize_t w = write(s->fd, c, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			s->err = -errno;
			return s->err;
		}
		if (w == 0) {
			s->err = -EIO;
			return s->err;
		}
		c += w;
		n -= (size_t)w;
		s->disk += (uint64_t)w;
	}
	sink_writeback(s);
	return 0;
}

int art_sink_flush(struct art_sink *s)
{
	int rc;

	if (s->err)
		return s->err;
	rc = sink_write_fd(s, s->buf, s->blen);
	s->blen = 0;
	return rc;
}

int art_sink_write(struct art_sink *s, const void *p, size_t n)
{
	const unsigned char *c = p;

	if (s->err)
		return s->err;
	if (n > 0 && s->md && EVP_DigestUpdate(s->md, p, n) != 1) {
		s->err = -EIO;
		return s->err;
	}
	s->bytes += n;
	while (n > 0) {
		size_t k;

		if (s->blen == 0 && n >= ART_CHUNK)
			return sink_write_fd(s, c, n); /* large write: no copy */
		k = ART_CHUNK - s->blen;
		if (k > n)
			k = n;
		memcpy(s->buf + s->blen, c, k);
		s->blen += k;
		if (s->blen > s->hwm)
			s->hwm = s->blen;
		c += k;
		n -= k;
		if (s->blen == ART_CHUNK && art_sink_flush(s) != 0)
			return s->err;
	}
	return 0;
}

int art_sink_final(struct art_sink *s, char hex[ART_SHA256_HEX])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;

	if (s->err)
		return s->err;
	if (!s->md || EVP_DigestFinal_ex(s->md, d, &dl) != 1 || dl != 32)
		return -EIO;
	art_hex(d, dl, hex);
	return 0;
}

/* ---- the sink as a BIO: the tail of the CMS BIO chain ---- */

static int sink_bio_write(BIO *b, const char *p, int n)
{
	struct art_sink *s = BIO_get_data(b);

	if (n <= 0)
		return 0;
	if (art_sink_write(s, p, (size_t)n) != 0)
		return -1;
	return n;
}

static long sink_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int sink_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *sink_method;
static pthread_once_t sink_once = PTHREAD_ONCE_INIT;

/* Built once per process (thread-safe) and kept: OpenSSL BIO methods are
 * immutable after setup and shared by every BIO that uses them. */
static void sink_method_setup(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pcp-art-sink");

	if (!m)
		return;
	if (BIO_meth_set_write(m, sink_bio_write) != 1 || BIO_meth_set_ctrl(m, sink_bio_ctrl) != 1 ||
	    BIO_meth_set_create(m, sink_bio_create) != 1) {
		BIO_meth_free(m);
		return;
	}
	sink_method = m;
}

BIO *art_sink_bio_new(struct art_sink *s)
{
	BIO *b;

	if (pthread_once(&sink_once, sink_method_setup) != 0 || !sink_method)
		return NULL;
	b = BIO_new(sink_method);
	if (!b)
		return NULL;
	BIO_set_data(b, s);
	return b;
}

int art_tmpfile(const char *final_path, char *tmp, size_t tmplen)
{
	const char *slash = strrchr(final_path, '/');
	const char *base = slash ? slash + 1 : final_path;
	int dirlen = slash ? (int)(slash - final_path + 1) : 0;

	if (*base == '\0')
		return -EINVAL;
	for (int attempt = 0; attempt < 16; attempt++) {
		unsigned char r[8];
		char rh[17];
		int n, fd;

		if (RAND_bytes(r, sizeof(r)) != 1)
			return -EIO;
		art_hex(r, sizeof(r), rh);
		n = snprintf(tmp, tmplen, "%.*s.%s.tmp-%s", dirlen, final_path, base, rh);
		if (n < 0 || (size_t)n >= tmplen)
			return -ENAMETOOLONG;
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}
