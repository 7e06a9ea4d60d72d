/* libFuzzer driver: API server answers (Status bodies) and RFC 3339 times. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kc_status st;
	char *s;
	int64_t ms;
	long http;

	if (size < 2)
		return 0;
	http = 100 + (long)(data[0] % 5) * 100 + (long)(data[1] % 30);
	kc_status_from_response(&st, http, (const char *)data + 2, size - 2);
	if (strnlen(st.reason, sizeof(st.reason)) == sizeof(st.reason) ||
	    strnlen(st.message, sizeof(st.message)) == sizeof(st.message))
		__builtin_trap();
	(void)kc_status_to_errno(&st);
	s = malloc(size - 1);
	if (!s)
		return 0;
	memcpy(s, data + 2, size - 2);
	s[size - 2] = '\0';
	(void)kc_time_parse(s, &ms);
	free(s);
	return 0;
}
