/*
 * ch_internal.h - private helpers shared by the channel's source files and
 * its unit tests. Not part of the public contract.
 */
#ifndef PCP_CH_INTERNAL_H
#define PCP_CH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "ch.h"

/* SHA-256 of the certificate's DER, lowercase hex. 0 or -EINVAL. */
int ch_x509_fingerprint(X509 *cert, char hex[65]);
/* Accepts upper/lower case hex with optional ':' separators; out is 64 lowercase hex. */
int ch_fingerprint_normalize(const char *in, char out[65]);

/* Installs the lws log routing once (default LLL_ERR | LLL_WARN). */
void ch_lws_log_init(void);

/*
 * One-time setup: lws log routing, OpenSSL init, and the SSL_CTX ex_data
 * index the client keeps its call state under. Returns that index or -1.
 */
int ch_lws_global_init(void);

struct lws_context;
struct lws_context_creation_info;
/*
 * libwebsockets 4.1 re-allocates its global OpenSSL ex_data index (a plain
 * static int) in every context created with
 * LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT; a client handshake in flight in
 * another context then cannot find its wsi and fails. So context creation
 * takes a process-wide rwlock for writing, and each client holds it for
 * reading from connect until its certificate was checked.
 * deadline_ms: monotonic ms to give up waiting (NULL result), 0 = no limit.
 */
struct lws_context *ch_lws_create_context(const struct lws_context_creation_info *info,
					  int64_t deadline_ms);
void ch_lws_handshake_begin(void);
void ch_lws_handshake_end(void);

/* Monotonic milliseconds. */
int64_t ch_now_ms(void);

/*
 * A job as it goes on the wire: ch_job_encode plus the size check. 0 with a
 * new text in *out (free() it) and its length in *len, or -EINVAL (no job, or
 * an unknown op), -ENOMEM, -EMSGSIZE (over CH_MAX_MESSAGE), with a sentence
 * in err (when given).
 */
int ch_job_text(const struct ch_job *job, char **out, size_t *len, char *err, size_t errlen);

/*
 * ch_call with an already encoded message (any bytes, any size): the test
 * suite uses it to send what ch_job_encode would never produce. `uid` is the
 * job's uid, for matching answers ("" accepts any).
 */
int ch_call_raw(const struct ch_call_opts *opts, const char *uid, const char *text, size_t len,
		struct ch_state *last, char *err, size_t errlen);

/* ch_pool_call with an already encoded message (ns/name: for pushed states). */
struct ch_pool;
int ch_pool_call_raw(struct ch_pool *p, const char *endpoint, const char *fingerprint,
		     const char *uid, const char *ns, const char *name, const char *text,
		     size_t len, long wait_ms, struct ch_state *st, char *err, size_t errlen);

#endif
