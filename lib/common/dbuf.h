/*
 * dbuf.h - a growable byte buffer with a hard cap.
 *
 * Every network read lands in one of these: growth past `max` fails with
 * -EMSGSIZE instead of eating memory. The buffer is always NUL-terminated
 * (the NUL is not counted in len). Embedded: dbuf_init/dbuf_cleanup.
 */
#ifndef PCP_DBUF_H
#define PCP_DBUF_H

#include <stddef.h>

struct dbuf {
	char *data; /* owned; NULL until the first append */
	size_t len;
	size_t cap;
	size_t max; /* refuse to hold more than this many bytes */
};

void dbuf_init(struct dbuf *b, size_t max);
/* Frees the memory; the buffer can be reused after dbuf_init. NULL is fine. */
void dbuf_cleanup(struct dbuf *b);
/* Empties the buffer, keeping its memory. */
void dbuf_reset(struct dbuf *b);
/* 0, -ENOMEM, or -EMSGSIZE when len + n would exceed max. */
int dbuf_add(struct dbuf *b, const void *p, size_t n);
int dbuf_adds(struct dbuf *b, const char *s);
int dbuf_printf(struct dbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (n <= len). */
void dbuf_consume(struct dbuf *b, size_t n);
/* Hands the data to the caller (free() it) and resets the buffer. */
char *dbuf_steal(struct dbuf *b, size_t *len);

#endif
