#include "nh_util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kc.h"

int nh_strlcpy(char *dst, const char *src, size_t cap)
{
	size_t n;

	if (!cap)
		return -ENAMETOOLONG;
	if (!src)
		src = ""; /* an absent JSON field copies as "" */
	n = strlen(src);
	if (n >= cap) {
		memcpy(dst, src, cap - 1);
		dst[cap - 1] = '\0';
		return -ENAMETOOLONG;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

int nh_json_copy(json_object *obj, const char *key, char *buf, size_t cap)
{
	const char *s = kc_json_str(obj, key);

	if (cap)
		buf[0] = '\0';
	if (!s)
		return -ENOENT;
	return nh_strlcpy(buf, s, cap);
}

void nh_time_now(char buf[32])
{
	kc_time_rfc3339((int64_t)time(NULL), buf);
}

int64_t nh_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool nh_path_under(const char *dir, const char *path)
{
	size_t dl = strlen(dir);
	const char *p;

	if (!dl || dir[0] != '/' || path[0] != '/')
		return false;
	if (dl == 1)
		dl = 0; /* dir "/" */
	if (strncmp(path, dir, dl) != 0 || path[dl] != '/')
		return false;
	p = path + dl + 1;
	if (!*p)
		return false;
	/* every segment: non-empty, not "." or ".." */
	while (*p) {
		const char *s = strchr(p, '/');
		size_t n = s ? (size_t)(s - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!s)
			break;
		p = s + 1;
		if (!*p)
			return false; /* trailing slash: not a file */
	}
	return true;
}

bool nh_path_real_under(const char *dir, const char *path)
{
	char parent[PATH_MAX], rdir[PATH_MAX], rparent[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n, rl;

	if (!slash || (size_t)(slash - path) >= sizeof(parent))
		return false;
	n = (size_t)(slash - path);
	memcpy(parent, path, n);
	parent[n] = '\0';
	if (!n)
		return false;
	if (!realpath(dir, rdir) || !realpath(parent, rparent))
		return false;
	rl = strlen(rdir);
	if (strcmp(rdir, "/") == 0)
		return true;
	return strncmp(rparent, rdir, rl) == 0 && (rparent[rl] == '\0' || rparent[rl] == '/');
}

const char *nh_basename(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

bool nh_safe_segment(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return false;
	}
	return true;
}

static char nh_printable(char c)
{
	unsigned char u = (unsigned char)c;

	return (u < 0x20 || u == 0x7f) ? ' ' : c;
}

void nh_one_line(const char *text, size_t len, char *buf, size_t cap)
{
	size_t b = 0, e, o = 0;

	if (!cap)
		return;
	buf[0] = '\0';
	if (!text)
		return;
	while (b < len && (text[b] == ' ' || text[b] == '\t' || text[b] == '\r' || text[b] == '\n'))
		b++;
	for (e = b; e < len && text[e] && text[e] != '\n'; e++)
		;
	while (e > b && (text[e - 1] == ' ' || text[e - 1] == '\t' || text[e - 1] == '\r'))
		e--;
	if (e - b < cap) {
		for (size_t i = b; i < e; i++)
			buf[o++] = nh_printable(text[i]);
	} else if (cap > 4) {
		/* Too long: keep the start and the end, where runtimes name the log
		 * file with the real cause (CRIU's dump log), and drop the middle. */
		size_t head = (cap - 4) / 3, tail = cap - 4 - head;

		for (size_t i = 0; i < head; i++)
			buf[o++] = nh_printable(text[b + i]);
		memcpy(buf + o, "...", 3);
		o += 3;
		for (size_t i = e - tail; i < e; i++)
			buf[o++] = nh_printable(text[i]);
	}
	buf[o] = '\0';
}
