/* libFuzzer driver: the metrics server's request line and --metrics-addr parsers. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mx_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char method[8], path[256], host[64], addr[128], err[160];
	int port;

	if (mx_http_parse_request((const char *)data, size, method, sizeof(method), path,
				  sizeof(path)) == 0) {
		if (strnlen(method, sizeof(method)) == sizeof(method) ||
		    strnlen(path, sizeof(path)) == sizeof(path) || path[0] != '/')
			__builtin_trap();
	}
	if (size < sizeof(addr)) {
		memcpy(addr, data, size);
		addr[size] = '\0';
		if (mx_http_parse_addr(addr, host, sizeof(host), &port, err, sizeof(err)) == 0 &&
		    (port < 0 || port > 65535 || strnlen(host, sizeof(host)) == sizeof(host)))
			__builtin_trap();
	}
	return 0;
}
