/*
 * podcheckpoint-decrypt - decrypt a PodCheckpoint artifact (CMS
 * AuthEnvelopedData, AES-256-GCM) with the tls.key/tls.crt of the Secret it
 * was encrypted to. Streams: memory use does not grow with the artifact.
 * Output is written atomically (0600) and only if authentication succeeds.
 *
 *   podcheckpoint-decrypt ARTIFACT --key tls.key [--cert tls.crt] -o out.tar
 *
 * The same result as:
 *   openssl cms -decrypt -binary -inform DER -in ARTIFACT -inkey tls.key \
 *       -recip tls.crt -out out.tar
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "art.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: podcheckpoint-decrypt ARTIFACT --key tls.key [--cert tls.crt] -o OUT.tar\n"
		   "  Decrypts a PodCheckpoint artifact; OUT appears only if the key is right\n"
		   "  and the artifact is intact. Also: sha256 ARTIFACT prints its SHA-256.\n");
}

int main(int argc, char **argv)
{
	const char *in = NULL, *key = NULL, *cert = NULL, *out = NULL;
	char msg[1024] = "";
	int rc;

	if (argc == 3 && strcmp(argv[1], "sha256") == 0) {
		char hex[ART_SHA256_HEX];
		uint64_t size = 0;

		rc = art_sha256_file(argv[2], hex, &size);
		if (rc) {
			fprintf(stderr, "podcheckpoint-decrypt: %s: %s\n", argv[2], strerror(-rc));
			return 1;
		}
		printf("%s  %s  %llu\n", hex, argv[2], (unsigned long long)size);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if ((strcmp(a, "--key") == 0 || strcmp(a, "-k") == 0) && i + 1 < argc) {
			key = argv[++i];
		} else if ((strcmp(a, "--cert") == 0 || strcmp(a, "-c") == 0) && i + 1 < argc) {
			cert = argv[++i];
		} else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && i + 1 < argc) {
			out = argv[++i];
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "podcheckpoint-decrypt: unknown option %s\n", a);
			usage(stderr);
			return 2;
		} else if (!in) {
			in = a;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!in || !key || !out) {
		usage(stderr);
		return 2;
	}
	rc = art_decrypt(in, key, cert, out, msg, sizeof(msg));
	if (rc) {
		fprintf(stderr, "podcheckpoint-decrypt: %s\n", msg[0] ? msg : strerror(-rc));
		return 1;
	}
	return 0;
}
