/* libFuzzer driver: watch stream splitter. The first byte picks the chunk
 * size so events are cut at varying boundaries; errors reset and go on. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_event(void *arg, enum kc_event_type type, json_object *obj)
{
	size_t *n = arg;

	if ((unsigned)type > KC_ERROR || !obj)
		__builtin_trap();
	(void)kc_json_str(obj, "metadata.name");
	(void)kc_json_rv(obj);
	(*n)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kc_watch_parser *p = NULL;
	size_t chunk, events = 0;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] + 1;
	data++;
	size--;
	if (kc_watch_parser_new(512, &p))
		return 0;
	for (size_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		int rc = kc_watch_parser_feed(p, (const char *)data + off, n, on_event, &events);

		if (rc != 0 && rc != -EMSGSIZE && rc != -EBADMSG)
			__builtin_trap();
		if (rc)
			kc_watch_parser_reset(p);
	}
	kc_watch_parser_free(p);
	return 0;
}
