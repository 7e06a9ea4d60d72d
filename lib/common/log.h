/*
 * log.h - one level-checked, printf-checked logging macro.
 *
 * Each call writes exactly one line to stderr in logfmt:
 *   ts=2026-11-28T18:00:00.123Z level=info comp=controller msg="..." key=value ...
 * The message and its key=value pairs come from the caller's format string, so
 * the compiler checks them. The level is tested before any argument is
 * evaluated. Never pass a token, a private key or a Secret's data.
 */
#ifndef PCP_LOG_H
#define PCP_LOG_H

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

/* Current threshold; lines above it are skipped. Default LOG_LVL_INFO. */
extern enum log_level log_threshold;

/* Sets the component name printed as comp= (a static string, borrowed). */
void log_set_component(const char *comp);

/* Parses "error", "warn", "info", "debug"; returns 0 or -EINVAL. */
int log_set_level_name(const char *name);

void log_emit(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define LOG(lvl, ...)                                   \
	do {                                            \
		if ((lvl) <= log_threshold)             \
			log_emit((lvl), __VA_ARGS__);   \
	} while (0)

#define LOG_ERROR(...) LOG(LOG_LVL_ERROR, __VA_ARGS__)
#define LOG_WARN(...) LOG(LOG_LVL_WARN, __VA_ARGS__)
#define LOG_INFO(...) LOG(LOG_LVL_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) LOG(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
