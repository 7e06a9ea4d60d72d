/*
 * ch_lws.c - libwebsockets glue shared by server and client: log routing
 * and a monotonic clock.
 */
#include "ch.h"
#include "ch_internal.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>

#include "log.h"

static pthread_mutex_t lws_log_lock = PTHREAD_MUTEX_INITIALIZER;
static bool lws_log_configured;

static void lws_log_emit(int level, const char *line)
{
	char text[512];
	size_t n = 0;

	/* One logfmt line: no quotes or newlines from lws inside our value. */
	for (const char *p = line; *p && n + 1 < sizeof(text); p++) {
		char c = *p;

		if (c == '\n' || c == '\r') {
			if (p[1] == '\0')
				break;
			c = ' ';
		} else if (c == '"' || c == '\\') {
			c = '\'';
		}
		text[n++] = c;
	}
	text[n] = '\0';
	if (level & LLL_ERR)
		LOG_ERROR("msg=\"lws\" text=\"%s\"", text);
	else
		LOG_WARN("msg=\"lws\" text=\"%s\"", text);
}

void ch_set_lws_log_levels(int lws_levels)
{
	pthread_mutex_lock(&lws_log_lock);
	lws_set_log_level(lws_levels, lws_log_emit);
	lws_log_configured = true;
	pthread_mutex_unlock(&lws_log_lock);
}

void ch_lws_log_init(void)
{
	pthread_mutex_lock(&lws_log_lock);
	if (!lws_log_configured) {
		lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
		lws_log_configured = true;
	}
	pthread_mutex_unlock(&lws_log_lock);
}

static pthread_rwlock_t create_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int ssl_ctx_index = -1;

static void global_init_once(void)
{
	struct lws_context_creation_info info;
	struct lws_context *ctx;

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.gid = -1;
	info.uid = -1;
	info.fd_limit_per_thread = 8;
	pthread_rwlock_wrlock(&create_lock);
	ctx = lws_create_context(&info);
	pthread_rwlock_unlock(&create_lock);
	if (ctx)
		lws_context_destroy(ctx);
	else
		LOG_ERROR("msg=\"lws global TLS init failed\"");
	ssl_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

int ch_lws_global_init(void)
{
	ch_lws_log_init();
	pthread_once(&global_once, global_init_once);
	return ssl_ctx_index;
}

struct lws_context *ch_lws_create_context(const struct lws_context_creation_info *info,
					  int64_t deadline_ms)
{
	struct lws_context *ctx;

	if (deadline_ms > 0) {
		struct timespec ts;

		ts.tv_sec = (time_t)(deadline_ms / 1000);
		ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
		if (pthread_rwlock_clockwrlock(&create_lock, CLOCK_MONOTONIC, &ts) != 0)
			return NULL;
	} else {
		pthread_rwlock_wrlock(&create_lock);
	}
	ctx = lws_create_context(info);
	pthread_rwlock_unlock(&create_lock);
	return ctx;
}

void ch_lws_handshake_begin(void)
{
	pthread_rwlock_rdlock(&create_lock);
}

void ch_lws_handshake_end(void)
{
	pthread_rwlock_unlock(&create_lock);
}

int64_t ch_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
