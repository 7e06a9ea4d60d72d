/*
 * kc_watch.c - splits a watch stream into events.
 *
 * The API server sends one JSON object per line ({"type":..,"object":..}\n),
 * in chunks that cut lines anywhere. Each byte is scanned for '\n' once
 * (memchr over the new chunk only, never over the kept partial line) and
 * copied at most once (only when a line spans chunks; a line complete within
 * a chunk is parsed in place). The kept partial line is capped at max_line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dbuf.h"
#include "kc_internal.h"

struct kc_watch_parser {
	size_t max_line;
	struct dbuf line; /* partial line carried across chunks */
	struct json_tokener *tok;
};

int kc_watch_parser_new(size_t max_line, struct kc_watch_parser **out)
{
	struct kc_watch_parser *p;

	if (!out)
		return -EINVAL;
	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->max_line = max_line ? max_line : KC_MAX_WATCH_LINE;
	if (p->max_line > (size_t)INT32_MAX)
		p->max_line = (size_t)INT32_MAX;
	dbuf_init(&p->line, p->max_line);
	p->tok = json_tokener_new_ex(128);
	if (!p->tok) {
		free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

void kc_watch_parser_free(struct kc_watch_parser *p)
{
	if (!p)
		return;
	dbuf_cleanup(&p->line);
	json_tokener_free(p->tok);
	free(p);
}

void kc_watch_parser_reset(struct kc_watch_parser *p)
{
	if (!p)
		return;
	dbuf_reset(&p->line);
	json_tokener_reset(p->tok);
}

static int event_type(const char *s, enum kc_event_type *t)
{
	static const struct {
		const char *name;
		enum kc_event_type type;
	} map[] = { { "ADDED", KC_ADDED },       { "MODIFIED", KC_MODIFIED },
		    { "DELETED", KC_DELETED },   { "BOOKMARK", KC_BOOKMARK },
		    { "ERROR", KC_ERROR } };

	for (size_t i = 0; s && i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(s, map[i].name) == 0) {
			*t = map[i].type;
			return 0;
		}
	}
	return -EBADMSG;
}

/* One complete line (without its '\n'). */
static int handle_line(struct kc_watch_parser *p, const char *s, size_t n,
		       int (*fn)(void *arg, enum kc_event_type type, json_object *obj), void *arg)
{
	json_object *ev = NULL, *obj = NULL;
	enum kc_event_type type;
	size_t end;
	int rc = -EBADMSG;

	while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0)
		return 0; /* blank line: nothing */
	if (n > p->max_line)
		return -EMSGSIZE;
	json_tokener_reset(p->tok);
	ev = json_tokener_parse_ex(p->tok, s, (int)n);
	if (!ev || json_tokener_get_error(p->tok) != json_tokener_success)
		goto out;
	for (end = json_tokener_get_parse_end(p->tok); end < n; end++)
		if (s[end] != ' ' && s[end] != '\t')
			goto out;
	if (!json_object_is_type(ev, json_type_object) ||
	    event_type(kc_json_str(ev, "type"), &type) ||
	    !json_object_object_get_ex(ev, "object", &obj) ||
	    !json_object_is_type(obj, json_type_object))
		goto out;
	rc = fn ? fn(arg, type, obj) : 0;
out:
	json_object_put(ev);
	return rc;
}

int kc_watch_parser_feed(struct kc_watch_parser *p, const char *chunk, size_t len,
			 int (*fn)(void *arg, enum kc_event_type type, json_object *obj),
			 void *arg)
{
	size_t off = 0;
	int rc = 0;

	if (!p || (!chunk && len))
		return -EINVAL;
	while (off < len) {
		const char *start = chunk + off;
		const char *nl = memchr(start, '\n', len - off);
		size_t n = nl ? (size_t)(nl - start) : len - off;

		if (p->line.len + n > p->max_line) {
			rc = -EMSGSIZE;
			goto out;
		}
		if (!nl) {
			rc = dbuf_add(&p->line, start, n);
			goto out;
		}
		if (p->line.len == 0) {
			rc = handle_line(p, start, n, fn, arg);
		} else {
			rc = dbuf_add(&p->line, start, n);
			if (!rc)
				rc = handle_line(p, p->line.data, p->line.len, fn, arg);
			dbuf_reset(&p->line);
		}
		if (rc)
			goto out;
		off += n + 1;
	}
out:
	return rc;
}
