/*
 * art_hash.c - streaming SHA-256 of a file (bounded buffer).
 */
#include "art_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int art_sha256_file(const char *path, char sha256_hex[ART_SHA256_HEX], uint64_t *size)
{
	EVP_MD_CTX *md = NULL;
	unsigned char *buf = NULL;
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;
	uint64_t total = 0;
	int fd = -1, rc;

	if (!path || !sha256_hex) {
		rc = -EINVAL;
		goto out;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	buf = malloc(ART_CHUNK);
	md = EVP_MD_CTX_new();
	if (!buf || !md) {
		rc = -ENOMEM;
		goto out;
	}
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = -EIO;
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf, ART_CHUNK);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		if (EVP_DigestUpdate(md, buf, (size_t)r) != 1) {
			rc = -EIO;
			goto out;
		}
		total += (uint64_t)r;
	}
	if (EVP_DigestFinal_ex(md, d, &dl) != 1) {
		rc = -EIO;
		goto out;
	}
	art_hex(d, dl, sha256_hex);
	if (size)
		*size = total;
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}
