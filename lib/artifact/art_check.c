/*
 * art_check.c - is a file a complete tar archive? And cleaning up after a
 * writer that died before its commit.
 *
 * The kubelet's checkpoint archive is bundled unchanged, so a truncated or
 * garbled one must be caught before it becomes part of an artifact that
 * looks good. libarchive walks the headers and skips over each entry's data
 * (a seek for an uncompressed file, so this costs a few reads, not a copy);
 * an archive that ends early fails the skip or the next header.
 */
#include "art.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int art_tar_check(const char *path, uint64_t *entries, char *msg, size_t msglen)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	uint64_t n = 0;
	int rc = 0, r;

	if (msg && msglen)
		msg[0] = '\0';
	if (!a)
		return -ENOMEM;
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, path, 64 * 1024) != ARCHIVE_OK) {
		int err = archive_errno(a);

		/* A file that opens but is not a tar fails format detection here. */
		rc = (err == ENOENT || err == EACCES || err == EISDIR) ? -EIO : -EBADMSG;
		snprintf(msg, msglen, "%s %s: %s", rc == -EIO ? "cannot open" : "not a tar archive:",
			 path, archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		n++;
		if (archive_read_data_skip(a) != ARCHIVE_OK) {
			snprintf(msg, msglen, "entry %s is cut short: %s", archive_entry_pathname(e),
				 archive_error_string(a));
			rc = -EBADMSG;
			goto out;
		}
	}
	if (r != ARCHIVE_EOF) {
		snprintf(msg, msglen, "not a complete tar archive after %llu entries: %s",
			 (unsigned long long)n, archive_error_string(a));
		rc = -EBADMSG;
		goto out;
	}
	if (n == 0) {
		snprintf(msg, msglen, "an empty archive");
		rc = -EBADMSG;
		goto out;
	}
	if (entries)
		*entries = n;
out:
	archive_read_free(a);
	return rc;
}

int art_writer_discard_stale(const char *final_path, unsigned *removed)
{
	const char *slash = strrchr(final_path, '/');
	const char *base = slash ? slash + 1 : final_path;
	int dirlen = slash ? (int)(slash - final_path + 1) : 0;
	char pattern[PATH_MAX];
	glob_t g;
	unsigned n = 0;
	int rc = 0, r;

	if (removed)
		*removed = 0;
	if (*base == '\0' || strpbrk(base, "*?[\\"))
		return -EINVAL;
	/* The name art_writer_open gives its temporary file. */
	r = snprintf(pattern, sizeof(pattern), "%.*s.%s.tmp-*", dirlen, final_path, base);
	if (r < 0 || (size_t)r >= sizeof(pattern))
		return -ENAMETOOLONG;
	r = glob(pattern, GLOB_NOSORT, NULL, &g);
	if (r == GLOB_NOMATCH)
		return 0;
	if (r != 0)
		return -EIO;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		if (unlink(g.gl_pathv[i]) == 0)
			n++;
		else if (errno != ENOENT && rc == 0)
			rc = -errno;
	}
	globfree(&g);
	if (removed)
		*removed = n;
	return rc;
}
