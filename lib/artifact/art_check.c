/*
 * art_check.c - is a file a complete tar archive?
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
#include <stdio.h>

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
