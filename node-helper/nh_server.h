/*
 * nh_server.h - glue between the channel (lib/chan) and the job runner:
 * the on_job and authenticate callbacks and the progress notifier.
 *
 * Threads: precheck and on_job run on the channel's lws thread (authenticate
 * on the channel server's auth worker) and only
 * do quick work (journal lookup, one journal write, enqueue; delete-artifact
 * is one GET of the CR with a short deadline and a couple of file operations;
 * cancel flags the running job). nh_server_notify runs on the worker.
 */
#ifndef PCP_NH_SERVER_H
#define PCP_NH_SERVER_H

#include "ch.h"
#include "kc.h"
#include "nh_auth.h"
#include "nh_job.h"
#include "nh_journal.h"
#include "nh_options.h"

struct nh_server_ctx {
	const struct nh_options *opt;
	struct nh_journal *journal;
	struct nh_runner *runner;
	struct nh_auth *auth;
	struct ch_server *srv; /* set before the runner starts; may be NULL in tests */
	struct kc_client *api; /* lws thread only: delete-artifact reads the CR (short
				* deadline); NULL in tests without an API server */
};

/* ch_server_ops.on_job; arg = struct nh_server_ctx *. */
int nh_server_on_job(void *arg, const struct ch_job *job, struct ch_state *now);
/* ch_server_ops.authenticate; arg = struct nh_server_ctx *. */
/* ch_server_ops.precheck (service thread, never blocks) -> nh_auth_precheck. */
int nh_server_precheck(void *arg, const char *token);
int nh_server_authenticate(void *arg, const char *token);
/* ch_server_ops.expires: the token's "exp" (unverified; it only shortens how
 * long an authenticated connection lives), 0 when it has none. */
int64_t nh_server_token_expiry(void *arg, const char *token);
/* Runner notify callback; arg = struct nh_server_ctx *. */
void nh_server_notify(void *arg, const struct ch_state *st);

/* Checks a job's identity before anything is journaled: 0, or -EINVAL with
 * now set to refused (InvalidJob). Whether the CR is this node's is decided
 * by the runner from the API server, not from the message. */
int nh_job_validate(const struct nh_options *opt, const struct ch_job *job, struct ch_state *now);

#endif
