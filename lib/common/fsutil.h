/*
 * fsutil.h - durable file operations.
 *
 * Durability recipe used throughout: write to a temporary name in the same
 * directory, fsync the file, rename over the final name, fsync the directory.
 * Files are created 0600 and directories 0700 unless a caller asks otherwise.
 * All functions return 0 or a negative errno.
 */
#ifndef PCP_FSUTIL_H
#define PCP_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* mkdir -p with `mode` for every directory it creates. */
int fsu_mkdir_p(const char *path, mode_t mode);
/* fsync the directory at `dir`. */
int fsu_fsync_dir(const char *dir);
/* fsync the directory that holds `path`. */
int fsu_fsync_parent(const char *path);
/* Atomically replaces `path` with `len` bytes of `data` (mode 0600). */
int fsu_write_atomic(const char *path, const void *data, size_t len);
/* Reads a whole small file (at most `max` bytes) into a new NUL-terminated
 * buffer that the caller frees. -EFBIG when larger. */
int fsu_read_file(const char *path, size_t max, char **out, size_t *len);
/* Free bytes available to an unprivileged writer on the filesystem of `path`. */
int fsu_free_bytes(const char *path, uint64_t *out);

#endif
