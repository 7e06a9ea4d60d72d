/*
 * ch_testsrv.h - the channel tests' shared scaffolding: a real ch_server on
 * 127.0.0.1 in its own thread, and raw TCP clients from other loopback
 * addresses (other peers). Prefix cts_. Failures are cmocka assertions.
 */
#ifndef PCP_CH_TESTSRV_H
#define PCP_CH_TESTSRV_H

#include <pthread.h>
#include <signal.h>

#include "ch.h"

/* Embedded in each test's own server struct (cts_start/cts_stop). */
struct cts {
	struct ch_server *srv;
	pthread_t th;
	volatile sig_atomic_t stop;
	int run_rc;
	char *cert, *key; /* owned: freed by cts_stop */
	char fp[65];
	int port;
	char endpoint[64];
};

/*
 * Starts a server on 127.0.0.1:port (0: any) with opts' ops and limits (its
 * address, port and certificate are set here), serving like's certificate
 * (NULL: a new self-signed one). A port just freed is retried for 5 s.
 */
void cts_start(struct cts *c, const struct ch_server_opts *opts, int port, const struct cts *like);
/* Stops the thread (asserting *stop was honoured within 1.5 s) and frees the server. */
void cts_stop(struct cts *c);
/* A TCP connection to port from source address src; -1 when refused. */
int cts_raw_connect(int port, const char *src);
/* ms until the server closed fd, or -1 if it is still open after wait_ms. */
long cts_closed_within(int fd, long wait_ms);
/* For main(): SIGPIPE ignored; lws and our logs quiet unless PCP_TEST_VERBOSE is set. */
void cts_test_setup(void);

#endif
