/* libFuzzer driver: the bearer-token pre-filter (node-helper/nh_jwt.c), which
 * reads attacker bytes before any TokenReview. Whatever the bytes, it accepts
 * only a token with our issuer, audience and a future exp, or refuses with a
 * reason; it never crashes or reads past the token. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nh_jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *tok = malloc(size + 1);
	char why[128] = "", iss[256];
	int64_t exp = 0;
	int rc;

	if (!tok)
		return 0;
	memcpy(tok, data, size);
	tok[size] = '\0';
	rc = nh_jwt_precheck(tok, "https://127.0.0.1:6443/", "channel.checkpointing.dev", 1800000000,
			     &exp, why, sizeof(why));
	if ((rc == 0 && exp <= 1800000000) || (rc != 0 && why[0] == '\0'))
		__builtin_trap();
	(void)nh_jwt_issuer(tok, iss, sizeof(iss));
	free(tok);
	return 0;
}
