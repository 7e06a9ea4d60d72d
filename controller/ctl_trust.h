/*
 * ctl_trust.h - what the controller presents on the channel and which helper
 * endpoints it trusts.
 *
 * The channel credential is not the controller's API token: it is a
 * ServiceAccount token with audience CH_AUDIENCE (ch.h) (a projected token,
 * rotated by the kubelet), read from --channel-token-file on every call, so a
 * rotation is picked up at once. A helper (or anyone who got hold of the
 * token) cannot use it against the API server: the API server refuses a token
 * whose audience is not its own.
 *
 * A helper Lease's endpoint is trusted only when its host is an address of
 * that node (status.addresses), when the node lists any: a Lease rewritten to
 * point elsewhere is refused before any connection is made.
 */
#ifndef PCP_CTL_TRUST_H
#define PCP_CTL_TRUST_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#define CTL_CHANNEL_TOKEN_MAX 16384u

/*
 * Reads the channel token into buf (NUL-terminated, trailing whitespace
 * removed). 0, or -ENOENT/-EACCES/-EFBIG/-EINVAL (empty, control
 * characters) with a sentence in err; buf is wiped on error. The caller
 * wipes buf after use. The token is never logged.
 */
int ctl_channel_token(const char *path, char *buf, size_t cap, char *err, size_t errlen);

/*
 * Pure: may the controller connect to `endpoint` ("wss://host:port") for the
 * helper of `node` (a Node object, borrowed; NULL = could not be read)?
 * true when the node lists no addresses (nothing to compare with) or the
 * endpoint's host equals one of them. false with a sentence in why.
 */
bool ctl_endpoint_on_node(const char *endpoint, json_object *node, char *why, size_t whylen);

#endif
