/*
 * ch_client.c - the controller's side of the channel: one blocking call,
 * one private lws context, one connection.
 *
 * Order of events on the wire, and where each guard sits:
 *   TCP connect -> TLS handshake: the server's leaf certificate is pinned in
 *   LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION (a mismatch aborts
 *   the handshake) -> HTTP upgrade request: before the Authorization header
 *   is added the peer certificate is checked once more
 *   (LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER) -> 101 -> job -> states.
 * The token therefore never leaves the process unless the pin matched.
 *
 * The deadline is ours, not lws's: the loop wakes at least every 20 ms
 * (a sul timer) and gives up after connect_timeout_ms without an upgrade,
 * and after connect_timeout_ms + wait_ms overall.
 */
#include "ch.h"
#include "ch_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "dbuf.h"
#include "log.h"

#define CH_PROTOCOL_NAME "pcp.checkpointing.dev.v1"
#define CH_CLI_TICK_US (20 * LWS_US_PER_MS)
#define CH_MAX_TOKEN 16000u
#define CH_CLI_ATTEMPTS 3

struct ch_call_ctx {
	const struct ch_call_opts *opts;
	const char *uid;
	char want_fp[65];
	char got_fp[65];
	char host[256];
	int port;

	unsigned char *out; /* LWS_PRE + len */
	size_t len;

	struct lws_context *ctx;
	SSL_CTX *ssl_ctx;
	lws_sorted_usec_list_t tick;

	bool pin_ok;
	bool pin_mismatch;
	bool established;
	bool sent;
	bool have_state;
	bool done;
	bool tls_unverified; /* TLS failed before the pin was checked */
	int close_code;
	int64_t first_ms;
	struct dbuf rx;
	struct ch_state last;
	int rc;
	char err[320];
};

__attribute__((format(printf, 3, 4))) static void call_fail(struct ch_call_ctx *c, int rc,
							     const char *fmt, ...)
{
	va_list ap;

	if (c->done)
		return;
	c->done = true;
	c->rc = rc;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
	struct ch_call_ctx *c = lws_container_of(sul, struct ch_call_ctx, tick);

	lws_sul_schedule(c->ctx, 0, &c->tick, tick_cb, CH_CLI_TICK_US);
}

/* Compares a certificate with the pin; records what was seen. */
static bool pin_matches(struct ch_call_ctx *c, X509 *cert)
{
	if (!cert || ch_x509_fingerprint(cert, c->got_fp) != 0)
		return false;
	return CRYPTO_memcmp(c->got_fp, c->want_fp, 64) == 0;
}

static int verify_server_cert(struct ch_call_ctx *c, X509_STORE_CTX *xctx)
{
	/* Only the leaf is pinned; the rest of any chain is irrelevant. */
	if (X509_STORE_CTX_get_error_depth(xctx) != 0) {
		X509_STORE_CTX_set_error(xctx, X509_V_OK);
		return 0;
	}
	if (!pin_matches(c, X509_STORE_CTX_get_current_cert(xctx))) {
		LOG_DEBUG("msg=\"channel pin mismatch during TLS handshake\" endpoint=%s",
			  c->opts->endpoint);
		c->pin_mismatch = true;
		c->pin_ok = false;
		X509_STORE_CTX_set_error(xctx, X509_V_ERR_CERT_REJECTED);
		return 1;
	}
	c->pin_ok = true;
	LOG_DEBUG("msg=\"channel pin verified during TLS handshake\" endpoint=%s", c->opts->endpoint);
	X509_STORE_CTX_set_error(xctx, X509_V_OK);
	return 0;
}

/* OpenSSL verify callback of our own SSL_CTX (1 = accept). */
static int ssl_verify_cb(int preverify_ok, X509_STORE_CTX *xctx)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	int idx = ch_lws_global_init();
	struct ch_call_ctx *c = ssl && idx >= 0 ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), idx)
						 : NULL;

	(void)preverify_ok;
	if (!c)
		return 0;
	return verify_server_cert(c, xctx) == 0 ? 1 : 0;
}

/* Second guard, right before the token would be written. */
static bool peer_is_pinned(struct ch_call_ctx *c, struct lws *wsi)
{
	SSL *ssl = lws_get_ssl(wsi);

	if (!ssl || !c->pin_ok || c->pin_mismatch)
		return false;
	if (!pin_matches(c, SSL_get0_peer_certificate(ssl))) {
		c->pin_mismatch = true;
		return false;
	}
	return true;
}

static int add_auth_header(struct ch_call_ctx *c, struct lws *wsi, unsigned char **p,
			   unsigned char *end)
{
	size_t tl = strlen(c->opts->token);
	size_t n = tl + 7;
	unsigned char *v;
	int rc = -1;

	if (tl == 0 || tl > CH_MAX_TOKEN || n > (size_t)(end - *p)) {
		call_fail(c, -EINVAL, "the bearer token is empty or too long (%zu bytes)", tl);
		return -1;
	}
	v = malloc(n);
	if (!v) {
		call_fail(c, -ENOMEM, "out of memory");
		return -1;
	}
	memcpy(v, "Bearer ", 7);
	memcpy(v + 7, c->opts->token, tl);
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, v, (int)n, p, end) == 0)
		rc = 0;
	else
		call_fail(c, -EINVAL, "the bearer token does not fit the request headers");
	OPENSSL_cleanse(v, n);
	free(v);
	return rc;
}

static void map_connection_error(struct ch_call_ctx *c, struct lws *wsi, const char *in,
				 size_t len)
{
	char why[160];
	unsigned int status = wsi ? lws_http_client_http_response(wsi) : 0;

	snprintf(why, sizeof(why), "%.*s", in ? (int)(len < 150 ? len : 150) : 0,
		 in ? in : "");
	if (c->pin_mismatch) {
		call_fail(c, -EPERM,
			  "the helper at %s presented certificate %s, not the pinned %s",
			  c->opts->endpoint, c->got_fp[0] ? c->got_fp : "(none)", c->want_fp);
	} else if (status == 401 || status == 403) {
		call_fail(c, -EACCES, "the helper at %s refused the credentials (HTTP %u)",
			  c->opts->endpoint, status);
	} else if (status == 429 || status == 503) {
		call_fail(c, -EAGAIN, "the helper at %s is limiting connections (HTTP %u); try again later",
			  c->opts->endpoint, status);
	} else if (status != 0 && status != 101) {
		call_fail(c, -EPROTO, "the helper at %s answered the upgrade with HTTP %u",
			  c->opts->endpoint, status);
	} else if (strstr(why, "refused") || strstr(why, "Unable to connect") ||
		   strstr(why, "connect failed") || strstr(why, "conn fail")) {
		call_fail(c, -ECONNREFUSED, "the helper at %s refused the connection (%s)",
			  c->opts->endpoint, why);
	} else if (strstr(why, "getaddrinfo") || strstr(why, "unreachable") ||
		   strstr(why, "address family")) {
		call_fail(c, -EHOSTUNREACH, "the helper at %s is unreachable (%s)",
			  c->opts->endpoint, why);
	} else if (strstr(why, "timeout") || strstr(why, "timed out")) {
		call_fail(c, -ETIMEDOUT, "the helper at %s did not answer in time (%s)",
			  c->opts->endpoint, why);
	} else if (strstr(why, "ssl") || strstr(why, "tls") || strstr(why, "SSL") ||
		   strstr(why, "TLS")) {
		c->tls_unverified = !c->pin_ok;
		call_fail(c, -EPROTO, "the TLS handshake with the helper at %s failed (%s)",
			  c->opts->endpoint, why);
	} else if (!c->established && !c->pin_ok) {
		call_fail(c, -ECONNREFUSED, "the helper at %s could not be reached (%s)",
			  c->opts->endpoint, why[0] ? why : "connection failed");
	} else {
		call_fail(c, -EPROTO, "the WebSocket handshake with the helper at %s failed (%s)",
			  c->opts->endpoint, why[0] ? why : "unknown error");
	}
}

static void handle_state(struct ch_call_ctx *c)
{
	struct ch_state st;
	char err[256];
	int rc = ch_state_decode(c->rx.data, c->rx.len, &st, err, sizeof(err));

	dbuf_reset(&c->rx);
	if (rc) {
		call_fail(c, -EPROTO, "the helper at %s sent a bad answer: %s", c->opts->endpoint,
			  err);
		return;
	}
	if (c->uid[0] && strcmp(st.uid, c->uid) != 0 && st.state != CH_REFUSED) {
		call_fail(c, -EPROTO, "the helper at %s answered about job %s, not %s",
			  c->opts->endpoint, st.uid, c->uid);
		return;
	}
	c->last = st;
	if (!c->have_state) {
		c->have_state = true;
		c->first_ms = ch_now_ms();
	}
	if (st.state == CH_SUCCEEDED || st.state == CH_FAILED || st.state == CH_REFUSED) {
		c->done = true;
		c->rc = 0;
	}
}

static int client_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		     size_t len)
{
	struct lws_context *lctx = wsi ? lws_get_context(wsi) : NULL;
	struct ch_call_ctx *c = lctx ? lws_context_user(lctx) : NULL;
	int n;

	(void)user;
	if (!c)
		return reason == LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION ? 1 : 0;
	switch (reason) {
	case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
		return verify_server_cert(c, (X509_STORE_CTX *)user);

	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
		unsigned char **p = (unsigned char **)in, *end;

		if (!peer_is_pinned(c, wsi)) {
			c->pin_mismatch = true;
			call_fail(c, -EPERM,
				  "the helper at %s presented certificate %s, not the pinned %s",
				  c->opts->endpoint, c->got_fp[0] ? c->got_fp : "(unverified)",
				  c->want_fp);
			return -1;
		}
		end = *p + len;
		return add_auth_header(c, wsi, p, end);
	}

	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		map_connection_error(c, wsi, in, len);
		return 0;

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->established = true;
		lws_callback_on_writable(wsi);
		return 0;

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (c->sent || c->done)
			return 0;
		c->sent = true;
		n = lws_write(wsi, c->out + LWS_PRE, c->len, LWS_WRITE_TEXT);
		if (n < 0 || (size_t)n < c->len) {
			call_fail(c, -EPROTO, "sending the job to %s failed", c->opts->endpoint);
			return -1;
		}
		return 0;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (c->done)
			return 0;
		if (dbuf_add(&c->rx, in, len) != 0) {
			call_fail(c, -EPROTO, "the helper at %s sent a message over %u bytes",
				  c->opts->endpoint, CH_MAX_MESSAGE);
			return -1;
		}
		if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0)
			handle_state(c);
		return 0;

	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (in && len >= 2) {
			const unsigned char *b = in;

			c->close_code = (b[0] << 8) | b[1];
		}
		return 0;

	case LWS_CALLBACK_CLIENT_CLOSED:
		if (c->done)
			return 0;
		if (c->have_state) {
			c->done = true;
			c->rc = 0;
		} else if (c->close_code == LWS_CLOSE_STATUS_POLICY_VIOLATION) {
			call_fail(c, -EACCES, "the helper at %s refused the credentials (closed 1008)",
				  c->opts->endpoint);
		} else if (c->close_code == LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE) {
			call_fail(c, -EMSGSIZE, "the helper at %s refused the job as too large",
				  c->opts->endpoint);
		} else {
			call_fail(c, -EPROTO,
				  "the helper at %s closed the connection without answering (code %d)",
				  c->opts->endpoint, c->close_code);
		}
		return 0;

	default:
		return 0;
	}
}

static int parse_endpoint(struct ch_call_ctx *c, char *path, size_t pathlen, char *err,
			  size_t errlen)
{
	char buf[512];
	const char *prot = NULL, *ads = NULL, *p = NULL;
	int port = 0;

	if (snprintf(buf, sizeof(buf), "%s", c->opts->endpoint) >= (int)sizeof(buf))
		goto bad;
	if (lws_parse_uri(buf, &prot, &ads, &port, &p) != 0 || !prot || strcmp(prot, "wss") != 0 ||
	    !ads || !*ads || port <= 0 || port > 65535)
		goto bad;
	if (snprintf(c->host, sizeof(c->host), "%s", ads) >= (int)sizeof(c->host))
		goto bad;
	c->port = port;
	if (snprintf(path, pathlen, "/%s", p ? p : "") >= (int)pathlen)
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "endpoint '%.200s' is not a wss://host:port URL",
		 c->opts->endpoint);
	return -EINVAL;
}

/*
 * One connection attempt in a fresh lws context; the outcome is in c->rc,
 * c->err, c->last. The context is gone when this returns.
 */
static int call_attempt(struct ch_call_ctx *c, const struct lws_protocols *protocols,
			const char *path, int64_t hs_deadline, int64_t deadline)
{
	const struct ch_call_opts *opts = c->opts;
	struct lws_context_creation_info info;
	struct lws_client_connect_info cc;
	long secs = (opts->connect_timeout_ms + opts->wait_ms) / 1000 + 5;
	bool in_hs = false;

	c->pin_ok = c->pin_mismatch = c->established = c->sent = false;
	c->have_state = c->done = c->tls_unverified = false;
	c->close_code = 0;
	c->rc = 0;
	c->err[0] = '\0';
	c->got_fp[0] = '\0';
	dbuf_reset(&c->rx);

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	/* lws 4.1 only honours provided_client_ssl_ctx with this option */
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.provided_client_ssl_ctx = c->ssl_ctx;
	info.user = c;
	info.gid = -1;
	info.uid = -1;
	info.pt_serv_buf_size = 32768;
	info.fd_limit_per_thread = 16;
	info.timeout_secs = (unsigned int)(secs > 3600 ? 3600 : secs);
	info.connect_timeout_secs = info.timeout_secs;
	c->ctx = ch_lws_create_context(&info, hs_deadline);
	if (!c->ctx) {
		if (ch_now_ms() >= hs_deadline)
			call_fail(c, -ETIMEDOUT, "no TLS context for %s within %ld ms (busy)",
				  opts->endpoint, opts->connect_timeout_ms);
		else
			call_fail(c, -ENOMEM, "could not create the client context");
		return c->rc;
	}
	lws_sul_schedule(c->ctx, 0, &c->tick, tick_cb, CH_CLI_TICK_US);

	memset(&cc, 0, sizeof(cc));
	cc.context = c->ctx;
	cc.address = c->host;
	cc.port = c->port;
	cc.ssl_connection = LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED |
			    LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK | LCCSCF_ALLOW_EXPIRED;
	cc.path = path;
	cc.host = c->host;
	cc.origin = c->host;
	cc.protocol = CH_PROTOCOL_NAME;
	cc.alpn = "http/1.1";
	ch_lws_handshake_begin();
	in_hs = true;
	if (!lws_client_connect_via_info(&cc) && !c->done)
		call_fail(c, -ECONNREFUSED, "could not start a connection to %s", opts->endpoint);

	while (!c->done) {
		int64_t now = ch_now_ms();

		if (!c->established && now >= hs_deadline) {
			call_fail(c, -ETIMEDOUT,
				  "no TLS and WebSocket handshake with the helper at %s within %ld ms",
				  opts->endpoint, opts->connect_timeout_ms);
			break;
		}
		if (c->have_state && now >= c->first_ms + opts->wait_ms) {
			c->done = true;
			c->rc = 0;
			break;
		}
		if (now >= deadline) {
			if (c->have_state) {
				c->done = true;
				c->rc = 0;
			} else {
				call_fail(c, -ETIMEDOUT, "the helper at %s did not answer within %ld ms",
					  opts->endpoint, opts->connect_timeout_ms + opts->wait_ms);
			}
			break;
		}
		if (lws_service(c->ctx, 0) < 0) {
			call_fail(c, -EIO, "the client loop failed");
			break;
		}
		if (in_hs && (c->pin_ok || c->pin_mismatch || c->established)) {
			ch_lws_handshake_end();
			in_hs = false;
		}
	}
	if (in_hs)
		ch_lws_handshake_end();
	c->done = true; /* nothing during teardown changes the outcome */
	lws_sul_cancel(&c->tick);
	lws_context_destroy(c->ctx);
	c->ctx = NULL;
	return c->rc;
}

int ch_call_raw(const struct ch_call_opts *opts, const char *uid, const char *text, size_t len,
		struct ch_state *last, char *err, size_t errlen)
{
	static const struct lws_protocols protocols[] = {
		{ CH_PROTOCOL_NAME, client_cb, 0, 16384, 0, NULL, 0 },
		{ NULL, NULL, 0, 0, 0, NULL, 0 },
	};
	struct ch_call_ctx c;
	char path[256];
	int64_t start, hs_deadline, deadline;
	int rc, idx;

	memset(&c, 0, sizeof(c));
	memset(last, 0, sizeof(*last));
	if (err && errlen)
		err[0] = '\0';
	dbuf_init(&c.rx, CH_MAX_MESSAGE);
	c.opts = opts;
	c.uid = uid ? uid : "";
	if (!opts || !opts->endpoint || !opts->token || !text || opts->connect_timeout_ms <= 0 ||
	    opts->wait_ms < 0) {
		snprintf(c.err, sizeof(c.err), "call options are incomplete");
		rc = -EINVAL;
		goto out;
	}
	if (ch_fingerprint_normalize(opts->fingerprint, c.want_fp) != 0) {
		snprintf(c.err, sizeof(c.err), "the pinned fingerprint is not 64 hex digits");
		rc = -EINVAL;
		goto out;
	}
	for (const char *p = opts->token; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			snprintf(c.err, sizeof(c.err), "the bearer token contains control characters");
			rc = -EINVAL;
			goto out;
		}
	}
	if (opts->token[0] == '\0' || strlen(opts->token) > CH_MAX_TOKEN) {
		snprintf(c.err, sizeof(c.err), "the bearer token is empty or longer than %u bytes",
			 CH_MAX_TOKEN);
		rc = -EINVAL;
		goto out;
	}
	rc = parse_endpoint(&c, path, sizeof(path), c.err, sizeof(c.err));
	if (rc)
		goto out;
	c.out = malloc(LWS_PRE + len);
	if (!c.out) {
		rc = -ENOMEM;
		snprintf(c.err, sizeof(c.err), "out of memory");
		goto out;
	}
	memcpy(c.out + LWS_PRE, text, len);
	c.len = len;
	idx = ch_lws_global_init();
	c.ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (idx < 0 || !c.ssl_ctx ||
	    SSL_CTX_set_min_proto_version(c.ssl_ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_ex_data(c.ssl_ctx, idx, &c) != 1) {
		rc = -ENOMEM;
		snprintf(c.err, sizeof(c.err), "could not create the TLS client context");
		goto out;
	}
	/* No CA store: the only trust is the pinned leaf. */
	SSL_CTX_set_verify(c.ssl_ctx, SSL_VERIFY_PEER, ssl_verify_cb);

	start = ch_now_ms();
	hs_deadline = start + opts->connect_timeout_ms;
	deadline = hs_deadline + opts->wait_ms;
	for (int attempt = 1;; attempt++) {
		rc = call_attempt(&c, protocols, path, hs_deadline, deadline);
		/*
		 * lws 4.1 loses track of a handshake when another thread creates
		 * a context at the wrong moment (see ch_lws_create_context): the
		 * TLS handshake then fails before our pin check ever ran. That
		 * failure says nothing about the helper, so try again.
		 */
		if (rc == 0 || !c.tls_unverified || attempt >= CH_CLI_ATTEMPTS ||
		    ch_now_ms() >= hs_deadline)
			break;
		LOG_DEBUG("msg=\"channel TLS handshake lost, retrying\" endpoint=%s attempt=%d",
			  opts->endpoint, attempt);
	}
	if (c.have_state)
		*last = c.last;
out:
	SSL_CTX_free(c.ssl_ctx);
	if (rc && err && errlen)
		snprintf(err, errlen, "%s", c.err[0] ? c.err : "the call failed");
	if (rc)
		LOG_DEBUG("msg=\"channel call failed\" endpoint=%s uid=%s error=\"%s\"",
			  opts && opts->endpoint ? opts->endpoint : "", c.uid, c.err);
	free(c.out);
	dbuf_cleanup(&c.rx);
	return rc;
}

int ch_call(const struct ch_call_opts *opts, const struct ch_job *job, struct ch_state *last,
	    char *err, size_t errlen)
{
	char *text = NULL;
	size_t len;
	int rc;

	memset(last, 0, sizeof(*last));
	if (err && errlen)
		err[0] = '\0';
	rc = ch_job_encode(job, &text);
	if (rc) {
		if (err && errlen)
			snprintf(err, errlen, "the job could not be encoded");
		goto out;
	}
	len = strlen(text);
	if (len > CH_MAX_MESSAGE) {
		if (err && errlen)
			snprintf(err, errlen, "the job is %zu bytes, more than the %u allowed", len,
				 CH_MAX_MESSAGE);
		rc = -EMSGSIZE;
		goto out;
	}
	rc = ch_call_raw(opts, job->uid, text, len, last, err, errlen);
out:
	free(text);
	return rc;
}
