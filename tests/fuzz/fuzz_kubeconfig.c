/* libFuzzer driver: kubeconfig YAML -> kc_config (kc_config_parse_kubeconfig). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kc.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kc_config *cfg = NULL;
	char err[512], tok[256];
	int rc;

	log_threshold = LOG_LVL_ERROR;
	/* Relative credential paths resolve under a directory that does not exist. */
	rc = kc_config_parse_kubeconfig("/nonexistent-fuzz/kubeconfig", (const char *)data, size,
					NULL, &cfg, err, sizeof(err));
	if (rc == 0) {
		if (!kc_config_server(cfg) || strncmp(kc_config_server(cfg), "http", 4) != 0)
			__builtin_trap();
		(void)kc_config_namespace(cfg);
		(void)kc_config_token(cfg, tok, sizeof(tok));
	} else {
		/* every failure explains itself with file:line */
		if (strncmp(err, "/nonexistent-fuzz/kubeconfig:", 29) != 0)
			__builtin_trap();
		if (cfg)
			__builtin_trap();
	}
	kc_config_free(cfg);
	return 0;
}
