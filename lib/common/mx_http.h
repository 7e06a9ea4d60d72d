/*
 * mx_http.h - a small plain-HTTP server for /metrics, /healthz and /readyz.
 *
 * One thread, poll(2), non-blocking sockets, Connection: close. Robust by
 * construction: at most MX_HTTP_MAX_CONN connections (more are closed at
 * accept), a request head of at most MX_HTTP_MAX_REQ bytes (else 431), a
 * read deadline of MX_HTTP_READ_MS from accept (slow clients are dropped)
 * and a write deadline of MX_HTTP_WRITE_MS. Only GET and HEAD.
 *
 *   /metrics  200, the registry (mx_render), text format 0.0.4
 *   /healthz  200 "ok" when mx_beats_check and opts.live pass, else 503 + why
 *   /readyz   200 "ok" when opts.ready passes, else 503 + why
 *   other     404
 *
 * The callbacks run on the server thread: they must be quick and must not
 * do network I/O (read cached state).
 */
#ifndef PCP_MX_HTTP_H
#define PCP_MX_HTTP_H

#include <stddef.h>

#define MX_HTTP_MAX_CONN 16
#define MX_HTTP_MAX_REQ 4096
#define MX_HTTP_READ_MS 5000
#define MX_HTTP_WRITE_MS 10000

/* 0 when fine, else nonzero and one sentence in why. */
typedef int (*mx_check_fn)(void *arg, char *why, size_t cap);

struct mx_http_opts {
	const char *addr;  /* "HOST:PORT", ":PORT" (all addresses), "[V6]:PORT"; port 0 picks one */
	mx_check_fn ready; /* NULL: always ready */
	mx_check_fn live;  /* NULL: heartbeats only */
	void *arg;         /* borrowed, passed to both */
};

struct mx_http;

/*
 * Splits an address into host ("" for all addresses) and port.
 * 0, or -EINVAL with one sentence in err.
 */
int mx_http_parse_addr(const char *addr, char *host, size_t hcap, int *port, char *err,
		       size_t errlen);

/*
 * The request line of a request head: method and path (query cut off), each
 * NUL-terminated within its buffer. 0, or -EINVAL (no line end, no two
 * spaces, a path not starting with '/', or a field too long).
 */
int mx_http_parse_request(const char *req, size_t len, char *method, size_t mcap, char *path,
			  size_t pcap);

/*
 * Binds, listens and starts the thread. 0, or negative errno and a sentence
 * in err. An addr of "" or "0" means no server: 0 with *out NULL.
 */
int mx_http_start(const struct mx_http_opts *opts, struct mx_http **out, char *err, size_t errlen);
/* The bound port (useful with port 0). */
int mx_http_port(const struct mx_http *h);
/* Stops the thread, closes every socket, frees. NULL is fine. */
void mx_http_stop(struct mx_http *h);

/*
 * A thread calling fn(arg) at once and then every period_s seconds until
 * mx_ticker_stop (which waits for a call in progress and frees). For probes
 * whose result a check callback reads.
 */
struct mx_ticker;
int mx_ticker_start(void (*fn)(void *arg), void *arg, int period_s, struct mx_ticker **out);
void mx_ticker_stop(struct mx_ticker *t);

#endif
