/*
 * ch_client.c - ch_call: one call on a one-shot pool (tools and tests).
 *
 * The connection code is the pool's (ch_pool.c, ch_pool_conn.c): a ch_call
 * makes a pool with the given token, sends the job, waits as the pool does,
 * and frees the pool (closing its connection). Daemons keep a pool instead.
 */
#include "ch.h"
#include "ch_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* The token of a one-shot pool: the caller's, as given. */
static int fixed_token(void *arg, char *buf, size_t cap, char *err, size_t errlen)
{
	const char *tok = arg;

	if (snprintf(buf, cap, "%s", tok) >= (int)cap) {
		snprintf(err, errlen, "the bearer token is too long");
		return -EINVAL;
	}
	return 0;
}

int ch_call_raw(const struct ch_call_opts *opts, const char *uid, const char *text, size_t len,
		struct ch_state *last, char *err, size_t errlen)
{
	struct ch_pool_opts po;
	struct ch_pool *pool = NULL;
	int rc;

	memset(last, 0, sizeof(*last));
	if (err && errlen)
		err[0] = '\0';
	if (!opts || !opts->endpoint || !opts->token || !text || opts->connect_timeout_ms <= 0 ||
	    opts->wait_ms < 0) {
		if (err && errlen)
			snprintf(err, errlen, "call options are incomplete");
		return -EINVAL;
	}
	if (opts->token[0] == '\0' || strlen(opts->token) > CH_MAX_TOKEN) {
		if (err && errlen)
			snprintf(err, errlen, "the bearer token is empty or longer than %u bytes",
				 CH_MAX_TOKEN);
		return -EINVAL;
	}
	for (const char *p = opts->token; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			if (err && errlen)
				snprintf(err, errlen, "the bearer token contains control characters");
			return -EINVAL;
		}
	}
	memset(&po, 0, sizeof(po));
	po.token = fixed_token;
	po.token_arg = (void *)(uintptr_t)opts->token;
	po.connect_timeout_ms = opts->connect_timeout_ms;
	po.answer_timeout_ms = opts->connect_timeout_ms;
	rc = ch_pool_new(&po, &pool);
	if (rc) {
		if (err && errlen)
			snprintf(err, errlen, "could not create the client context");
		return rc;
	}
	rc = ch_pool_call_raw(pool, opts->endpoint, opts->fingerprint, uid ? uid : "", "", "", text,
			      len, opts->wait_ms, last, err, errlen);
	ch_pool_free(pool);
	return rc;
}

int ch_call(const struct ch_call_opts *opts, const struct ch_job *job, struct ch_state *last,
	    char *err, size_t errlen)
{
	char *text = NULL;
	size_t len;
	int rc;

	memset(last, 0, sizeof(*last));
	rc = ch_job_text(job, &text, &len, err, errlen);
	if (!rc)
		rc = ch_call_raw(opts, job->uid, text, len, last, err, errlen);
	free(text);
	return rc;
}
