/* libFuzzer driver: certificate input (a Secret's tls.crt). Whatever the
 * bytes, art_cert_parse either accepts with a 64-hex fingerprint or refuses
 * with a reason and a sentence. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "art.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct art_cert *cert = NULL;
	enum art_cert_error why = ART_CERT_OK;
	char msg[256] = "";
	int rc;

	rc = art_cert_parse((const char *)data, size, (size & 1) != 0, 1800000000, &cert, &why, msg,
			    sizeof(msg));
	if (rc == 0) {
		if (!cert || strlen(art_cert_fingerprint(cert)) != 64 || !art_cert_key_desc(cert))
			__builtin_trap();
	} else if (cert || why == ART_CERT_OK || msg[0] == '\0') {
		__builtin_trap();
	}
	art_cert_free(cert);
	return 0;
}
