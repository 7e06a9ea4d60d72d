/*
 * nh_util.h - small helpers shared by the node helper's files: JSON field
 * access, time stamps, path safety, bounded string copies.
 */
#ifndef PCP_NH_UTIL_H
#define PCP_NH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "kc.h"

/*
 * In a function with `int rc` and an `out:` label: adds a new value (taken;
 * NULL means out of memory) to an object / array, or sets rc and goes to out.
 */
#define NH_ADD(obj, key, val) KC_JSON_ADD(obj, key, val)
#define NH_ADDA(arr, val) KC_JSON_ADDA(arr, val)

/* JSON lookups by dotted path and RFC 3339 time: kc_json_get, kc_json_str,
 * kc_json_int64, kc_time_rfc3339 (kc.h). */

/* Copies the string field `key` of obj into buf: 0, -ENOENT (absent/not a
 * string, buf set to "") or -ENAMETOOLONG. */
int nh_json_copy(json_object *obj, const char *key, char *buf, size_t cap);
/* Bounded copy; returns -ENAMETOOLONG when truncated (dst still terminated). */
/* Bounded copy; src NULL copies "". 0, or -ENAMETOOLONG (truncated). */
int nh_strlcpy(char *dst, const char *src, size_t cap);

/* RFC 3339 UTC "2026-11-28T18:00:00Z" for now (kc_time_rfc3339). */
void nh_time_now(char buf[32]);
/* Monotonic milliseconds. */
int64_t nh_mono_ms(void);

/*
 * True when `path` is an absolute path strictly below directory `dir`
 * (which has no trailing slash), with no "." or ".." segments and no empty
 * segments. Purely textual; callers that act on the file also check the
 * real path of its parent (nh_path_real_under).
 */
bool nh_path_under(const char *dir, const char *path);
/* True when realpath(dirname(path)) is realpath(dir) or below it. */
bool nh_path_real_under(const char *dir, const char *path);
/* Pointer to the last segment of a path (borrowed). */
const char *nh_basename(const char *path);

/* A safe single path segment: [A-Za-z0-9._-], not "." or "..", 1..253 chars. */
bool nh_safe_segment(const char *s);

/* Copies one line of text into buf: stops at the first newline, replaces
 * control characters by spaces, trims spaces; a line too long keeps its
 * first third and its end around "..." (the end of a runtime's error names
 * the log with the cause). */
void nh_one_line(const char *text, size_t len, char *buf, size_t cap);

#endif
