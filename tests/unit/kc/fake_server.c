#include "fake_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FS_MAX_CONN 64
#define FS_MAX_REQ 256
#define FS_MAX_HDR (64 * 1024)
#define FS_MAX_BODY (4 * 1024 * 1024)

struct fs_conn {
	struct fake_server *s;
	int fd;
	pthread_t th;
	bool used;
	atomic_bool done; /* conn_main returned: the slot can be joined and reused */
};

struct fake_server {
	int lfd;
	int port;
	fs_handler h;
	void *arg;
	pthread_t th;
	atomic_bool stop;
	pthread_mutex_t lock;
	struct fs_conn conns[FS_MAX_CONN];
	struct fs_req reqs[FS_MAX_REQ];
	int nreq;
	int nconn;
};

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int fs_reply(int fd, int status, const char *ctype, const char *body, size_t len)
{
	char hdr[512];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", status,
			 ctype ? ctype : "application/json", len);

	if (write_all(fd, hdr, (size_t)n))
		return -1;
	return len ? write_all(fd, body, len) : 0;
}

int fs_reply_json(int fd, int status, const char *json)
{
	return fs_reply(fd, status, "application/json", json, strlen(json));
}

int fs_chunked_begin(int fd, int status)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			 "Transfer-Encoding: chunked\r\n\r\n",
			 status);

	return write_all(fd, hdr, (size_t)n);
}

int fs_chunk(int fd, const char *data, size_t len)
{
	char hdr[32];
	int n = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);

	if (len == 0)
		return 0;
	if (write_all(fd, hdr, (size_t)n) || write_all(fd, data, len) || write_all(fd, "\r\n", 2))
		return -1;
	return 0;
}

int fs_chunked_end(int fd)
{
	return write_all(fd, "0\r\n\r\n", 5);
}

void fs_hang(struct fake_server *s, long ms)
{
	for (long t = 0; t < ms && !atomic_load(&s->stop); t += 20)
		sleep_ms(20);
}

bool fs_stopping(struct fake_server *s)
{
	return atomic_load(&s->stop);
}

static void hdr_value(const char *hdrs, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = hdrs;

	out[0] = '\0';
	while ((p = strstr(p, "\r\n"))) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *e;

			while (*v == ' ')
				v++;
			e = strstr(v, "\r\n");
			if (!e)
				return;
			snprintf(out, cap, "%.*s", (int)(e - v), v);
			return;
		}
	}
}

static void record(struct fake_server *s, const struct fs_req *r)
{
	pthread_mutex_lock(&s->lock);
	if (s->nreq < FS_MAX_REQ) {
		struct fs_req *d = &s->reqs[s->nreq];

		*d = *r;
		d->body = malloc(r->body_len + 1);
		if (d->body) {
			memcpy(d->body, r->body, r->body_len);
			d->body[r->body_len] = '\0';
		}
		s->nreq++;
	}
	pthread_mutex_unlock(&s->lock);
}

static void *conn_main(void *arg)
{
	struct fs_conn *c = arg;
	struct fake_server *s = c->s;
	char *buf = malloc(FS_MAX_HDR + FS_MAX_BODY + 1);
	size_t len = 0;

	if (!buf)
		goto out;
	for (;;) {
		struct fs_req req;
		char *end, cl[32];
		size_t hlen, blen;
		char *endp;

		memset(&req, 0, sizeof(req));
		buf[len] = '\0';
		while (!(end = strstr(buf, "\r\n\r\n"))) {
			ssize_t r;

			if (len >= FS_MAX_HDR)
				goto out;
			r = recv(c->fd, buf + len, FS_MAX_HDR - len, 0);
			if (r <= 0)
				goto out;
			len += (size_t)r;
			buf[len] = '\0';
		}
		hlen = (size_t)(end - buf) + 4;
		end[2] = '\0'; /* keep the last header's \r\n for hdr_value */
		if (sscanf(buf, "%15s %4095s", req.method, req.target) != 2)
			goto out;
		hdr_value(buf, "Content-Type", req.content_type, sizeof(req.content_type));
		hdr_value(buf, "Authorization", req.auth, sizeof(req.auth));
		hdr_value(buf, "Content-Length", cl, sizeof(cl));
		blen = cl[0] ? (size_t)strtoul(cl, &endp, 10) : 0;
		if (blen > FS_MAX_BODY)
			goto out;
		while (len < hlen + blen) {
			ssize_t r = recv(c->fd, buf + len, hlen + blen - len, 0);

			if (r <= 0)
				goto out;
			len += (size_t)r;
		}
		req.body = buf + hlen;
		req.body_len = blen;
		{
			char save = req.body[blen];

			req.body[blen] = '\0';
			record(s, &req);
			req.body[blen] = save;
		}
		if (s->h(s, c->fd, &req, s->arg))
			goto out;
		memmove(buf, buf + hlen + blen, len - hlen - blen);
		len -= hlen + blen;
	}
out:
	free(buf);
	shutdown(c->fd, SHUT_RDWR);
	atomic_store(&c->done, true);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct fake_server *s = arg;

	while (!atomic_load(&s->stop)) {
		struct pollfd pfd = { .fd = s->lfd, .events = POLLIN };
		int fd;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&s->lock);
		for (int i = 0; i < FS_MAX_CONN; i++) {
			if (s->conns[i].used && atomic_load(&s->conns[i].done)) {
				/* a closed connection's slot (many short connections: bench_helper) */
				pthread_join(s->conns[i].th, NULL);
				close(s->conns[i].fd);
				s->conns[i].used = false;
			}
			if (!s->conns[i].used) {
				s->conns[i].used = true;
				atomic_store(&s->conns[i].done, false);
				s->nconn++;
				s->conns[i].fd = fd;
				s->conns[i].s = s;
				pthread_create(&s->conns[i].th, NULL, conn_main, &s->conns[i]);
				fd = -1;
				break;
			}
		}
		pthread_mutex_unlock(&s->lock);
		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

int fs_start(fs_handler h, void *arg, struct fake_server **out)
{
	struct fake_server *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int one = 1;

	if (!s)
		return -ENOMEM;
	s->h = h;
	s->arg = arg;
	pthread_mutex_init(&s->lock, NULL);
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(s->lfd, 16) ||
	    getsockname(s->lfd, (struct sockaddr *)&sa, &sl)) {
		close(s->lfd);
		free(s);
		return -errno;
	}
	s->port = ntohs(sa.sin_port);
	pthread_create(&s->th, NULL, accept_main, s);
	*out = s;
	return 0;
}

void fs_stop(struct fake_server *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
	for (int i = 0; i < FS_MAX_CONN; i++) {
		if (s->conns[i].used) {
			shutdown(s->conns[i].fd, SHUT_RDWR);
			pthread_join(s->conns[i].th, NULL);
			close(s->conns[i].fd);
		}
	}
	close(s->lfd);
	for (int i = 0; i < s->nreq; i++)
		free(s->reqs[i].body);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int fs_port(struct fake_server *s)
{
	return s->port;
}

int fs_count(struct fake_server *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->nreq;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int fs_open_conns(struct fake_server *s)
{
	int n = 0;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < FS_MAX_CONN; i++)
		n += s->conns[i].used && !atomic_load(&s->conns[i].done);
	pthread_mutex_unlock(&s->lock);
	return n;
}

int fs_get(struct fake_server *s, int i, struct fs_req *out)
{
	int rc = -1;

	pthread_mutex_lock(&s->lock);
	if (i >= 0 && i < s->nreq) {
		*out = s->reqs[i];
		out->body = strdup(s->reqs[i].body ? s->reqs[i].body : "");
		rc = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void fs_req_free(struct fs_req *r)
{
	free(r->body);
	r->body = NULL;
}

bool fs_wait_count(struct fake_server *s, int n, long ms)
{
	for (long t = 0; t < ms; t += 10) {
		if (fs_count(s) >= n)
			return true;
		sleep_ms(10);
	}
	return fs_count(s) >= n;
}

int fs_kubeconfig(struct fake_server *s, const char *dir, const char *user_yaml, char *buf,
		  size_t cap)
{
	FILE *f;

	snprintf(buf, cap, "%s/kubeconfig", dir);
	f = fopen(buf, "w");
	if (!f)
		return -1;
	fprintf(f,
		"apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
		"    server: http://127.0.0.1:%d/\ncontexts:\n- name: x\n  context:\n"
		"    cluster: c\n    user: u\n    namespace: ns1\ncurrent-context: x\n"
		"users:\n- name: u\n  user:\n%s",
		s->port, user_yaml);
	fclose(f);
	return 0;
}

int fs_conns(struct fake_server *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->nconn;
	pthread_mutex_unlock(&s->lock);
	return n;
}
