/*
 * fake_server.h - a tiny HTTP/1.1 server on 127.0.0.1 for the kc tests: one
 * thread per connection, keep-alive, records every request, answers through
 * a handler the test supplies.
 */
#ifndef KC_FAKE_SERVER_H
#define KC_FAKE_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct fs_req {
	char method[16];
	char target[4096]; /* path?query */
	char content_type[128];
	char auth[1024];
	char *body; /* NUL-terminated */
	size_t body_len;
};

struct fake_server;

/* Returns 0 to keep the connection open, -1 to close it. */
typedef int (*fs_handler)(struct fake_server *s, int fd, const struct fs_req *req, void *arg);

int fs_start(fs_handler h, void *arg, struct fake_server **out);
void fs_stop(struct fake_server *s);
int fs_port(struct fake_server *s);
bool fs_stopping(struct fake_server *s);
/* Number of requests received so far; copy of request i (free body with fs_req_free). */
int fs_count(struct fake_server *s);
/* Connections accepted so far; of those, the ones still open (the client
 * has not closed them). */
int fs_conns(struct fake_server *s);
int fs_open_conns(struct fake_server *s);
int fs_get(struct fake_server *s, int i, struct fs_req *out);
void fs_req_free(struct fs_req *r);
/* Waits until at least n requests arrived (or ms passed); true when reached. */
bool fs_wait_count(struct fake_server *s, int n, long ms);

/* Response helpers. */
int fs_reply(int fd, int status, const char *ctype, const char *body, size_t len);
int fs_reply_json(int fd, int status, const char *json);
int fs_chunked_begin(int fd, int status);
int fs_chunk(int fd, const char *data, size_t len);
int fs_chunked_end(int fd);
/* Sleeps until the server stops or ms passes. */
void fs_hang(struct fake_server *s, long ms);

/* Writes a kubeconfig pointing at the server into dir/kubeconfig; user
 * section given as YAML lines (indented 4). Returns the path in buf. */
int fs_kubeconfig(struct fake_server *s, const char *dir, const char *user_yaml, char *buf,
		  size_t cap);

#endif
