/*
 * kc_config_int.h - the inside of struct kc_config, shared by kc_config.c
 * (the object, tokens, TLS, in-cluster) and kc_kubeconfig.c (the kubeconfig
 * parser). Private to lib/kc.
 *
 * Ownership: a kc_config owns every string and blob in it (freed, and the
 * secret ones wiped, by kc_config_free); a kc_blob owns its data.
 * Locking: `lock` guards the token fields and the client count; the other
 * fields are set while the config is built (by one thread, before it is
 * shared) and read-only afterwards (the rate limit: while no client exists).
 */
#ifndef PCP_KC_CONFIG_INT_H
#define PCP_KC_CONFIG_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "kc.h"

struct kc_blob {
	unsigned char *data;
	size_t len;
};

struct kc_config {
	char *server;
	char *ns;
	struct kc_blob ca, cert, key;
	bool insecure;

	pthread_mutex_t lock; /* guards everything below */
	char *token;          /* static token, or the cached content of token_file */
	char *token_file;
	struct timespec token_mtime;
	off_t token_size;
	ino_t token_ino;
	int64_t token_read_ms;

	size_t clients; /* kc_client objects made from this config and not freed */

	struct kc_ratelimit *rl; /* owned; NULL: no client-side limit; set only while
				  * clients == 0 (kc_config_set_rate_limit) */
};

/* An empty config (lock initialised): 0 or -ENOMEM. */
int kc_config_new_empty(struct kc_config **out);
/* Wipes and frees b's data; b may be empty. */
void kc_config_blob_free(struct kc_blob *b);
/* snprintf into err (NULL or errlen 0: nothing). */
void kc_config_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* fsu_read_file for regular files only: *out is the caller's to free. */
int kc_config_read_regular(const char *path, size_t max, char **out, size_t *len);
/* A whole credential file (<= KC_MAX_CONFIG_FILE) into out (the caller frees it). */
int kc_config_read_blob(const char *path, struct kc_blob *out);
/* dir + "/" + p unless p is absolute: 0 or -ENAMETOOLONG. */
int kc_config_join_path(const char *dir, const char *p, char *buf, size_t cap);
/* Re-reads cfg->token_file if it changed; with cfg->lock held, or before
 * the config is shared. */
int kc_config_token_refresh_locked(struct kc_config *cfg);

#endif
