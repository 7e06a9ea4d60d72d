/*
 * kc_base64.c - base64 decoding (kubeconfig *-data fields, Secret data).
 */
#include <errno.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#include "kc.h"

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int kc_base64_decode(const char *in, size_t len, char **out, size_t *out_len)
{
	size_t cap = len / 4 * 3 + 4, n = 0, pad = 0;
	char *buf = malloc(cap);
	unsigned acc = 0;
	int bits = 0, rc = 0;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)in[i], v;

		if (c == '\n' || c == '\r' || c == ' ' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		v = b64val(c);
		if (v < 0 || pad) {
			rc = -EINVAL;
			goto out;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (char)((acc >> bits) & 0xffu);
		}
	}
	if (pad > 2 || bits >= 6) {
		rc = -EINVAL;
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	buf = NULL;
out:
	if (buf) {
		OPENSSL_cleanse(buf, cap);
		free(buf);
	}
	return rc;
}
