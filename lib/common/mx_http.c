/*
 * mx_http.c - the /metrics, /healthz, /readyz server (see mx_http.h).
 */
#include "mx_http.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dbuf.h"
#include "log.h"
#include "mx.h"

#define MX_HTTP_MAX_BODY (8u * 1024u * 1024u)

struct mx_conn {
	int fd; /* -1: free slot */
	char req[MX_HTTP_MAX_REQ + 1];
	size_t len;
	bool writing;
	struct dbuf out;
	size_t off;
	long long deadline_ms;
};

struct mx_http {
	struct mx_http_opts opts;
	int lfd;
	int wake[2];
	int port;
	atomic_bool stop;
	pthread_t th;
	bool started;
	struct mx_conn conns[MX_HTTP_MAX_CONN];
};

static long long mx_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mx_http_parse_addr(const char *addr, char *host, size_t hcap, int *port, char *err,
		       size_t errlen)
{
	const char *colon, *h = addr, *hend;
	char *end = NULL;
	long p;

	if (!addr || !addr[0])
		goto bad;
	if (addr[0] == '[') {
		hend = strchr(addr, ']');
		if (!hend || hend[1] != ':')
			goto bad;
		h = addr + 1;
		colon = hend + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			goto bad;
		hend = colon;
	}
	if ((size_t)(hend - h) >= hcap)
		goto bad;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
		goto bad;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	*port = (int)p;
	return 0;
bad:
	if (err && errlen)
		snprintf(err, errlen, "metrics address \"%s\" is not HOST:PORT, :PORT or [V6]:PORT",
			 addr ? addr : "");
	return -EINVAL;
}

static void mx_conn_close(struct mx_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
	c->off = 0;
	c->writing = false;
	dbuf_cleanup(&c->out);
}

static void mx_respond(struct mx_conn *c, int code, const char *ctype, const char *body,
		       size_t blen, bool head)
{
	const char *text = code == 200   ? "OK"
			   : code == 404 ? "Not Found"
			   : code == 405 ? "Method Not Allowed"
			   : code == 431 ? "Request Header Fields Too Large"
			   : code == 400 ? "Bad Request"
					 : code == 503 ? "Service Unavailable" : "Internal Server Error";
	int rc;

	dbuf_init(&c->out, MX_HTTP_MAX_BODY + 1024);
	rc = dbuf_printf(&c->out,
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
			 code, text, ctype, blen);
	if (!rc && !head && blen)
		rc = dbuf_add(&c->out, body, blen);
	if (rc) {
		dbuf_reset(&c->out);
		(void)dbuf_adds(&c->out, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	}
	c->writing = true;
	c->off = 0;
	c->deadline_ms = mx_ms() + MX_HTTP_WRITE_MS;
}

static void mx_check(struct mx_http *h, struct mx_conn *c, bool ready, bool head)
{
	char why[512] = "", body[600];
	int bad;

	if (ready)
		bad = h->opts.ready ? h->opts.ready(h->opts.arg, why, sizeof(why)) : 0;
	else {
		bad = mx_beats_check(why, sizeof(why));
		if (!bad && h->opts.live)
			bad = h->opts.live(h->opts.arg, why, sizeof(why));
	}
	if (bad)
		snprintf(body, sizeof(body), "not %s: %s\n", ready ? "ready" : "healthy",
			 why[0] ? why : "no reason given");
	else
		snprintf(body, sizeof(body), "ok\n");
	mx_respond(c, bad ? 503 : 200, "text/plain; charset=utf-8", body, strlen(body), head);
}

int mx_http_parse_request(const char *req, size_t len, char *method, size_t mcap, char *path,
			  size_t pcap)
{
	const char *sp1, *sp2, *eol;
	size_t n;

	if (!req || !mcap || !pcap)
		return -EINVAL;
	eol = memchr(req, '\n', len);
	if (!eol)
		return -EINVAL;
	len = (size_t)(eol - req); /* the request line only */
	sp1 = memchr(req, ' ', len);
	sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - req)) : NULL;
	if (!sp1 || !sp2 || sp1 == req || (size_t)(sp1 - req) >= mcap || sp2 == sp1 + 1 ||
	    (size_t)(sp2 - sp1 - 1) >= pcap || sp1[1] != '/')
		return -EINVAL;
	memcpy(method, req, (size_t)(sp1 - req));
	method[sp1 - req] = '\0';
	n = (size_t)(sp2 - sp1 - 1);
	memcpy(path, sp1 + 1, n);
	path[n] = '\0';
	path[strcspn(path, "?")] = '\0';
	return 0;
}

/* A complete request head is in c->req: answer it. */
static void mx_handle(struct mx_http *h, struct mx_conn *c)
{
	char method[8], path[256];
	bool head;

	if (mx_http_parse_request(c->req, c->len, method, sizeof(method), path, sizeof(path))) {
		mx_respond(c, 400, "text/plain", "bad request\n", 12, false);
		return;
	}
	head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		mx_respond(c, 405, "text/plain", "only GET and HEAD\n", 18, false);
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		struct dbuf body;

		dbuf_init(&body, MX_HTTP_MAX_BODY);
		if (mx_render(&body) == 0)
			mx_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8",
				   body.data ? body.data : "", body.len, head);
		else
			mx_respond(c, 500, "text/plain", "cannot render metrics\n", 22, head);
		dbuf_cleanup(&body);
	} else if (strcmp(path, "/healthz") == 0 || strcmp(path, "/livez") == 0) {
		mx_check(h, c, false, head);
	} else if (strcmp(path, "/readyz") == 0) {
		mx_check(h, c, true, head);
	} else {
		mx_respond(c, 404, "text/plain", "not found\n", 10, head);
	}
}

static void mx_on_readable(struct mx_http *h, struct mx_conn *c)
{
	ssize_t n = read(c->fd, c->req + c->len, MX_HTTP_MAX_REQ - c->len);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		mx_conn_close(c);
		return;
	}
	c->len += (size_t)n;
	c->req[c->len] = '\0';
	if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n"))
		mx_handle(h, c);
	else if (c->len == MX_HTTP_MAX_REQ)
		mx_respond(c, 431, "text/plain", "request too large\n", 18, false);
}

static void mx_on_writable(struct mx_conn *c)
{
	ssize_t n = send(c->fd, c->out.data + c->off, c->out.len - c->off, MSG_NOSIGNAL);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		mx_conn_close(c);
		return;
	}
	c->off += (size_t)n;
	if (c->off == c->out.len) {
		shutdown(c->fd, SHUT_WR);
		mx_conn_close(c);
	}
}

static void mx_accept(struct mx_http *h)
{
	int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	for (size_t i = 0; i < MX_HTTP_MAX_CONN; i++) {
		struct mx_conn *c = &h->conns[i];

		if (c->fd < 0) {
			c->fd = fd;
			c->len = 0;
			c->writing = false;
			c->deadline_ms = mx_ms() + MX_HTTP_READ_MS;
			return;
		}
	}
	close(fd); /* connection cap */
}

static void *mx_http_main(void *arg)
{
	struct mx_http *h = arg;
	struct pollfd pfd[MX_HTTP_MAX_CONN + 2];
	size_t idx[MX_HTTP_MAX_CONN + 2];

	while (!atomic_load(&h->stop)) {
		long long now = mx_ms(), next = now + 1000;
		nfds_t n = 0;
		int rc;

		pfd[n].fd = h->wake[0];
		pfd[n++].events = POLLIN;
		pfd[n].fd = h->lfd;
		pfd[n++].events = POLLIN;
		for (size_t i = 0; i < MX_HTTP_MAX_CONN; i++) {
			struct mx_conn *c = &h->conns[i];

			if (c->fd < 0)
				continue;
			if (now >= c->deadline_ms) {
				mx_conn_close(c); /* slow client */
				continue;
			}
			if (c->deadline_ms < next)
				next = c->deadline_ms;
			idx[n] = i;
			pfd[n].fd = c->fd;
			pfd[n++].events = c->writing ? POLLOUT : POLLIN;
		}
		rc = poll(pfd, n, (int)(next - now));
		if (rc <= 0)
			continue;
		if (pfd[0].revents) {
			char b[16];

			while (read(h->wake[0], b, sizeof(b)) > 0)
				;
		}
		for (nfds_t k = 2; k < n; k++) {
			struct mx_conn *c = &h->conns[idx[k]];

			if (!pfd[k].revents || c->fd != pfd[k].fd)
				continue;
			if (pfd[k].revents & (POLLERR | POLLNVAL))
				mx_conn_close(c);
			else if (c->writing)
				mx_on_writable(c);
			else
				mx_on_readable(h, c);
		}
		if (pfd[1].revents & POLLIN)
			mx_accept(h);
	}
	return NULL;
}

int mx_http_start(const struct mx_http_opts *opts, struct mx_http **out, char *err, size_t errlen)
{
	struct addrinfo hints, *ai = NULL;
	struct mx_http *h = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], port[8];
	int p = 0, one = 1, rc;

	*out = NULL;
	if (!opts->addr || !opts->addr[0] || strcmp(opts->addr, "0") == 0)
		return 0;
	rc = mx_http_parse_addr(opts->addr, host, sizeof(host), &p, err, errlen);
	if (rc)
		return rc;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->opts = *opts;
	h->lfd = -1;
	h->wake[0] = h->wake[1] = -1;
	for (size_t i = 0; i < MX_HTTP_MAX_CONN; i++)
		h->conns[i].fd = -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", p);
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if (rc || !ai) {
		snprintf(err, errlen, "metrics address %s: host must be a numeric IP address",
			 opts->addr);
		rc = -EINVAL;
		goto out;
	}
	h->lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->lfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open a socket for %s: %s", opts->addr, strerror(-rc));
		goto out;
	}
	setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(h->lfd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(h->lfd, 16) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot listen on %s: %s", opts->addr, strerror(-rc));
		goto out;
	}
	if (getsockname(h->lfd, (struct sockaddr *)&ss, &sl) == 0)
		h->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
						   : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (pipe2(h->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot make a pipe: %s", strerror(-rc));
		goto out;
	}
	rc = -pthread_create(&h->th, NULL, mx_http_main, h);
	if (rc) {
		snprintf(err, errlen, "cannot start the metrics thread: %s", strerror(-rc));
		goto out;
	}
	h->started = true;
	*out = h;
	h = NULL;
out:
	if (ai)
		freeaddrinfo(ai);
	mx_http_stop(h);
	return rc;
}

int mx_http_port(const struct mx_http *h)
{
	return h ? h->port : 0;
}

void mx_http_stop(struct mx_http *h)
{
	if (!h)
		return;
	if (h->started) {
		atomic_store(&h->stop, true);
		if (write(h->wake[1], "x", 1) < 0)
			LOG_DEBUG("msg=\"metrics server wake-up failed\" errno=%d", errno);
		pthread_join(h->th, NULL);
	}
	for (size_t i = 0; i < MX_HTTP_MAX_CONN; i++)
		mx_conn_close(&h->conns[i]);
	if (h->lfd >= 0)
		close(h->lfd);
	if (h->wake[0] >= 0)
		close(h->wake[0]);
	if (h->wake[1] >= 0)
		close(h->wake[1]);
	free(h);
}
