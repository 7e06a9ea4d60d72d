/*
 * ch_testpool.h - the pool tests' shared scaffolding (test_ch_pool*.c): a
 * channel server whose callbacks count reviews and jobs (struct psrv), the
 * pool's callbacks recording pushed states (struct pctl), and jobs and calls.
 * The names (psrv_*, pool_new, pcall, ...) are those of the tests they came from.
 */
#ifndef PCP_CH_TESTPOOL_H
#define PCP_CH_TESTPOOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "ch.h"
#include "ch_testsrv.h"

#define TOKEN1 "pool-token-one.x.y"
#define TOKEN2 "pool-token-two.x.y"
#define CERT "-----BEGIN CERTIFICATE-----\nrecipient\n-----END CERTIFICATE-----\n"

struct psrv {
	struct cts s;
	atomic_int auth_calls;
	atomic_int job_calls;
	atomic_int jobs_with_cert; /* checkpoint jobs that carried CERT */
	atomic_int review_ms;
	atomic_int exp_in_s; /* ops.expires: the token expires this many seconds from now (0: unknown) */
	pthread_mutex_t mu;
	char got_token[64];
};

/* A server on `port` (0: any) with the certificate of `like` (NULL: a new one). */
struct psrv *psrv_start(int port, const struct psrv *like, int idle_s, int reauth_s);
void psrv_stop(struct psrv *s);

struct pctl {
	pthread_mutex_t mu;
	char token[64];
	int updates;
	char last_ns[64], last_name[64], last_uid[64];
	enum ch_state_kind last_state;
	char last_msg[512];
	int foreign;
};

struct ch_pool *pool_new(struct pctl *c, const char *token, long connect_ms, long ping_ms);
/* The same with opts.idle_ms (0: the default). */
struct ch_pool *pool_new_idle(struct pctl *c, const char *token, long connect_ms, long ping_ms,
			      long idle_ms);
void set_token(struct pctl *c, const char *token);
void make_job(struct ch_job *j, const char *uid);
int pcall(struct ch_pool *p, const struct psrv *s, const char *uid, struct ch_state *st, char *err,
	  size_t errlen);
/* Waits (bounded) until *v reaches want; its value. */
int wait_atomic(atomic_int *v, int want, long ms);
/* Calls until one succeeds (the pool re-connects in the background), within ms. */
int call_until_ok(struct ch_pool *p, const struct psrv *s, long ms, int *failures);

#endif
