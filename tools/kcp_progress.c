/*
 * kcp_progress.c - the wait progress line (see kcp_progress.h).
 */
#include "kcp_progress.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "kc.h"

void kcp_format_bytes(uint64_t n, char *buf, size_t cap)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;

	if (n < 1024) {
		snprintf(buf, cap, "%llu B", (unsigned long long)n);
		return;
	}
	v /= 1024.0;
	while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, cap, "%.1f %s", v, units[u]);
}

/* "container X (i of n)" from the helper's message, if it has that shape. */
static bool kcp_container_from_message(const char *msg, char *buf, size_t cap)
{
	const char *p = msg ? strstr(msg, "container ") : NULL;
	const char *end;

	if (!p)
		return false;
	p += strlen("container ");
	end = strstr(p, " of pod");
	if (!end || end == p)
		return false;
	snprintf(buf, cap, "%.*s", (int)(end - p), p);
	return true;
}

/* Appends to buf (always NUL-terminated, cut at cap). */
static void kcp_append(char *buf, size_t cap, const char *a, const char *b)
{
	size_t n = strlen(buf);

	if (n + 1 < cap)
		snprintf(buf + n, cap - n, "%s%s", a, b);
}

void kcp_progress_line(json_object *obj, char *buf, size_t cap)
{
	const char *phase = kc_json_str(obj, "status.phase");
	const char *msg = kc_json_str(obj, "status.message");
	const char *node = kc_json_str(obj, "status.nodeName");
	const char *ctr = kc_json_str(obj, "status.progress.container");
	json_object *done = kc_json_get(obj, "status.containers");
	bool has_bytes = false;
	int64_t bytes = kc_json_int64(obj, "status.progress.bytes", 0, &has_bytes);
	bool has_total = false;
	int64_t total = kc_json_int64(obj, "status.progress.containersTotal", 0, &has_total);
	int64_t ndone = kc_json_int64(obj, "status.progress.containersDone", 0, NULL);
	char part[160];
	const char *sep = ": ";

	if (!cap)
		return;
	buf[0] = '\0';
	if (!phase || !phase[0]) {
		snprintf(buf, cap, "waiting for the controller");
		return;
	}
	kcp_append(buf, cap, "", phase);
	if (node && node[0])
		kcp_append(buf, cap, " on ", node);
	if ((ctr && ctr[0]) || kcp_container_from_message(msg, part, sizeof(part))) {
		kcp_append(buf, cap, sep, "container ");
		kcp_append(buf, cap, "", ctr && ctr[0] ? ctr : part);
		sep = ", ";
	}
	if (has_total && total > 0) {
		/* the helper's own count while Running (status.progress) */
		snprintf(part, sizeof(part), "%lld of %lld container%s done", (long long)ndone,
			 (long long)total, total == 1 ? "" : "s");
		kcp_append(buf, cap, sep, part);
		sep = ", ";
	} else if (done && json_object_is_type(done, json_type_array) &&
		   json_object_array_length(done)) {
		size_t k = json_object_array_length(done);

		snprintf(part, sizeof(part), "%zu container%s done", k, k == 1 ? "" : "s");
		kcp_append(buf, cap, sep, part);
		sep = ", ";
	}
	if (has_bytes && bytes > 0) {
		char b[24];

		kcp_format_bytes((uint64_t)bytes, b, sizeof(b));
		snprintf(part, sizeof(part), "%s written", b);
		kcp_append(buf, cap, sep, part);
	}
	if (msg && msg[0])
		kcp_append(buf, cap, " - ", msg);
}
