/*
 * ch_proto.c - the channel's JSON messages (json-c).
 *
 * Encoding never truncates: every field is a fixed buffer in the struct and
 * is written as is. Decoding is strict: a string that does not fit its
 * buffer, a wrong JSON type or a missing required field is an error with a
 * sentence, never a silent truncation. Unknown fields are ignored so that a
 * newer peer can add optional fields without a version bump.
 *
 * Wire format (camelCase keys, like the Kubernetes objects they come from):
 *   {"v":2,"type":"job","op":"checkpoint"|"delete-artifact"|"cancel",
 *    "uid":"...","namespace":"...","name":"...","certPem":"..."}
 *   {"v":2,"type":"state","uid":"...","state":"queued","reason":"",
 *    "message":"...","bytes":0,"container":"..."}
 * A job carries identity only (and the recipient certificate): the helper
 * reads everything else from the PodCheckpoint and the pod.
 */
#include "ch.h"
#include "ch_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define CH_JSON_DEPTH 8

static const char *const state_names[] = {
	[CH_ACCEPTED] = "accepted", [CH_RUNNING] = "running", [CH_SUCCEEDED] = "succeeded",
	[CH_FAILED] = "failed",     [CH_REFUSED] = "refused",     [CH_QUEUED] = "queued",
	[CH_BUSY] = "busy",
};

static const char *const op_names[] = {
	[CH_OP_CHECKPOINT] = "checkpoint",
	[CH_OP_DELETE_ARTIFACT] = "delete-artifact",
	[CH_OP_CANCEL] = "cancel",
};

void ch_job_cleanup(struct ch_job *job)
{
	if (!job)
		return;
	free(job->cert_pem);
	job->cert_pem = NULL;
}

const char *ch_state_name(enum ch_state_kind s)
{
	if ((unsigned)s < sizeof(state_names) / sizeof(state_names[0]))
		return state_names[s];
	return "unknown";
}

int ch_state_parse_name(const char *s, enum ch_state_kind *out)
{
	for (size_t i = 0; s && i < sizeof(state_names) / sizeof(state_names[0]); i++) {
		if (strcmp(s, state_names[i]) == 0) {
			*out = (enum ch_state_kind)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* ------------------------------------------------------------------ encode */

/* Adds `key` = string of at most `max` bytes (a fixed struct buffer). */
static int put_str(struct json_object *o, const char *key, const char *s, size_t max)
{
	struct json_object *v = json_object_new_string_len(s, (int)strnlen(s, max));

	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int put_obj(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int to_text(struct json_object *o, char **out)
{
	const char *s = json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	if (!s)
		return -ENOMEM;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

#define PUT_STR(o, key, field)                                         \
	do {                                                           \
		rc = put_str((o), (key), (field), sizeof(field));      \
		if (rc)                                                \
			goto out;                                      \
	} while (0)

#define PUT_OBJ(o, key, v)                                             \
	do {                                                           \
		rc = put_obj((o), (key), (v));                         \
		if (rc)                                                \
			goto out;                                      \
	} while (0)

/* A new message object {"v": CH_PROTO_VERSION, "type": type} into *out. */
static int new_envelope(const char *type, struct json_object **out)
{
	struct json_object *o = json_object_new_object();
	int rc;

	*out = NULL;
	if (!o)
		return -ENOMEM;
	rc = put_obj(o, "v", json_object_new_int(CH_PROTO_VERSION));
	if (!rc)
		rc = put_obj(o, "type", json_object_new_string(type));
	if (rc) {
		json_object_put(o);
		return rc;
	}
	*out = o;
	return 0;
}

int ch_job_encode(const struct ch_job *job, char **out)
{
	struct json_object *o = NULL;
	int rc = -ENOMEM;

	*out = NULL;
	if ((unsigned)job->op >= sizeof(op_names) / sizeof(op_names[0])) {
		rc = -EINVAL;
		goto out;
	}
	rc = new_envelope("job", &o);
	if (rc)
		goto out;
	PUT_OBJ(o, "op", json_object_new_string(op_names[job->op]));
	PUT_STR(o, "uid", job->uid);
	PUT_STR(o, "namespace", job->ns);
	PUT_STR(o, "name", job->name);
	if (job->cert_pem && job->op == CH_OP_CHECKPOINT)
		PUT_OBJ(o, "certPem", json_object_new_string(job->cert_pem));
	rc = to_text(o, out);
out:
	json_object_put(o);
	return rc;
}

int ch_job_text(const struct ch_job *job, char **out, size_t *len, char *err, size_t errlen)
{
	int rc;

	*out = NULL;
	*len = 0;
	if (!job) {
		if (err && errlen)
			snprintf(err, errlen, "no job");
		return -EINVAL;
	}
	rc = ch_job_encode(job, out);
	if (rc) {
		if (err && errlen)
			snprintf(err, errlen, "the job could not be encoded");
		return rc;
	}
	*len = strlen(*out);
	if (*len > CH_MAX_MESSAGE) {
		if (err && errlen)
			snprintf(err, errlen, "the job is %zu bytes, more than the %u allowed", *len,
				 CH_MAX_MESSAGE);
		free(*out);
		*out = NULL;
		*len = 0;
		return -EMSGSIZE;
	}
	return 0;
}

int ch_state_encode(const struct ch_state *st, char **out)
{
	struct json_object *o = NULL;
	int rc = -ENOMEM;

	*out = NULL;
	if ((unsigned)st->state >= sizeof(state_names) / sizeof(state_names[0])) {
		rc = -EINVAL;
		goto out;
	}
	rc = new_envelope("state", &o);
	if (rc)
		goto out;
	PUT_STR(o, "uid", st->uid);
	PUT_OBJ(o, "state", json_object_new_string(state_names[st->state]));
	PUT_STR(o, "reason", st->reason);
	PUT_STR(o, "message", st->message);
	PUT_OBJ(o, "bytes", json_object_new_int64(st->bytes > (uint64_t)INT64_MAX ? INT64_MAX
										: (int64_t)st->bytes));
	PUT_STR(o, "container", st->container);
	rc = to_text(o, out);
out:
	json_object_put(o);
	return rc;
}

/* ------------------------------------------------------------------ decode */

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errlen,
							  const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Parses exactly `len` bytes of JSON text into an object, checks "v" and
 * "type". On success *root is owned by the caller.
 */
static int parse_envelope(const char *text, size_t len, const char *want_type,
			  struct json_object **root, char *err, size_t errlen)
{
	struct json_tokener *tok = NULL;
	struct json_object *o = NULL, *v;
	enum json_tokener_error jerr;
	size_t end;
	int rc;

	*root = NULL;
	if (len > CH_MAX_MESSAGE) {
		seterr(err, errlen, "message of %zu bytes exceeds the %u byte limit", len,
		       CH_MAX_MESSAGE);
		rc = -EMSGSIZE;
		goto out;
	}
	if (!text || len == 0) {
		seterr(err, errlen, "message is empty");
		rc = -EBADMSG;
		goto out;
	}
	tok = json_tokener_new_ex(CH_JSON_DEPTH);
	if (!tok) {
		rc = -ENOMEM;
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!o || jerr != json_tokener_success) {
		seterr(err, errlen, "message is not valid JSON: %s",
		       jerr == json_tokener_continue ? "unexpected end of input"
						     : json_tokener_error_desc(jerr));
		rc = -EBADMSG;
		goto out;
	}
	end = json_tokener_get_parse_end(tok);
	for (; end < len; end++) {
		char c = text[end];

		if (c != ' ' && c != '\n' && c != '\r' && c != '\t' && c != '\0') {
			seterr(err, errlen, "message has trailing data after the JSON object");
			rc = -EBADMSG;
			goto out;
		}
	}
	if (!json_object_is_type(o, json_type_object)) {
		seterr(err, errlen, "message is not a JSON object");
		rc = -EBADMSG;
		goto out;
	}
	if (!json_object_object_get_ex(o, "v", &v) || !json_object_is_type(v, json_type_int)) {
		seterr(err, errlen, "message has no integer protocol version \"v\"");
		rc = -EPROTO;
		goto out;
	}
	if (json_object_get_int64(v) != CH_PROTO_VERSION) {
		seterr(err, errlen, "protocol version %lld is not supported (want %d)",
		       (long long)json_object_get_int64(v), CH_PROTO_VERSION);
		rc = -EPROTO;
		goto out;
	}
	if (!json_object_object_get_ex(o, "type", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		seterr(err, errlen, "message has no string \"type\"");
		rc = -EPROTO;
		goto out;
	}
	if (strcmp(json_object_get_string(v), want_type) != 0) {
		seterr(err, errlen, "message type \"%.32s\" is not the expected \"%s\"",
		       json_object_get_string(v), want_type);
		rc = -EPROTO;
		goto out;
	}
	*root = o;
	o = NULL;
	rc = 0;
out:
	json_object_put(o);
	if (tok)
		json_tokener_free(tok);
	return rc;
}

/*
 * Copies string field `key` into buf[size]. Absent: "" unless required.
 * Present but not a string, containing NUL, or too long for buf: error.
 */
static int get_str(struct json_object *o, const char *key, char *buf, size_t size,
		   bool required, char *err, size_t errlen)
{
	struct json_object *v;
	const char *s;
	size_t n;

	buf[0] = '\0';
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
		if (!required)
			return 0;
		seterr(err, errlen, "field \"%s\" is missing", key);
		return -EBADMSG;
	}
	if (!json_object_is_type(v, json_type_string)) {
		seterr(err, errlen, "field \"%s\" is not a string", key);
		return -EBADMSG;
	}
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (strlen(s) != n) {
		seterr(err, errlen, "field \"%s\" contains a NUL character", key);
		return -EBADMSG;
	}
	if (n >= size) {
		seterr(err, errlen, "field \"%s\" is %zu bytes long, more than the %zu allowed",
		       key, n, size - 1);
		return -EBADMSG;
	}
	if (required && n == 0) {
		seterr(err, errlen, "field \"%s\" is empty", key);
		return -EBADMSG;
	}
	memcpy(buf, s, n + 1);
	return 0;
}

static int get_int64(struct json_object *o, const char *key, int64_t min, int64_t max,
		     int64_t *out, char *err, size_t errlen)
{
	struct json_object *v;
	int64_t x;

	*out = 0;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_int)) {
		seterr(err, errlen, "field \"%s\" is not an integer", key);
		return -EBADMSG;
	}
	errno = 0;
	x = json_object_get_int64(v);
	if (errno != 0 || x < min || x > max) {
		seterr(err, errlen, "field \"%s\" is out of range", key);
		return -EBADMSG;
	}
	*out = x;
	return 0;
}

#define GET_STR(key, field, required)                                              \
	do {                                                                       \
		rc = get_str(o, (key), (field), sizeof(field), (required), err, errlen); \
		if (rc)                                                            \
			goto out;                                                  \
	} while (0)

int ch_job_decode(const char *text, size_t len, struct ch_job *job, char *err, size_t errlen)
{
	struct json_object *o = NULL, *v;
	const char *s;
	size_t n, i;
	int rc;

	memset(job, 0, sizeof(*job));
	if (err && errlen)
		err[0] = '\0';
	rc = parse_envelope(text, len, "job", &o, err, errlen);
	if (rc)
		goto out;
	if (!json_object_object_get_ex(o, "op", &v) || !json_object_is_type(v, json_type_string)) {
		seterr(err, errlen, "job has no string \"op\"");
		rc = -EPROTO;
		goto out;
	}
	s = json_object_get_string(v);
	for (i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (strcmp(s, op_names[i]) == 0)
			break;
	if (i == sizeof(op_names) / sizeof(op_names[0])) {
		seterr(err, errlen, "job op \"%.32s\" is not supported", s);
		rc = -EPROTO;
		goto out;
	}
	job->op = (enum ch_op)i;
	GET_STR("uid", job->uid, true);
	GET_STR("namespace", job->ns, true);
	GET_STR("name", job->name, true);
	if (json_object_object_get_ex(o, "certPem", &v) && !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_string)) {
			seterr(err, errlen, "field \"certPem\" is not a string");
			rc = -EBADMSG;
			goto out;
		}
		s = json_object_get_string(v);
		n = (size_t)json_object_get_string_len(v);
		if (n > CH_MAX_CERT_PEM || strlen(s) != n) {
			seterr(err, errlen,
			       "field \"certPem\" is longer than %u bytes or has a NUL",
			       CH_MAX_CERT_PEM);
			rc = -EBADMSG;
			goto out;
		}
		if (n > 0 && job->op == CH_OP_CHECKPOINT) {
			job->cert_pem = strdup(s);
			if (!job->cert_pem) {
				rc = -ENOMEM;
				goto out;
			}
		}
	}
	rc = 0;
out:
	json_object_put(o);
	if (rc) {
		ch_job_cleanup(job);
		memset(job, 0, sizeof(*job));
	}
	return rc;
}

int ch_state_decode(const char *text, size_t len, struct ch_state *st, char *err, size_t errlen)
{
	struct json_object *o = NULL, *v;
	int64_t x;
	int rc;

	memset(st, 0, sizeof(*st));
	if (err && errlen)
		err[0] = '\0';
	rc = parse_envelope(text, len, "state", &o, err, errlen);
	if (rc)
		goto out;
	GET_STR("uid", st->uid, true);
	if (!json_object_object_get_ex(o, "state", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		seterr(err, errlen, "field \"state\" is missing or not a string");
		rc = -EBADMSG;
		goto out;
	}
	if (ch_state_parse_name(json_object_get_string(v), &st->state) != 0) {
		seterr(err, errlen, "state \"%.32s\" is not known", json_object_get_string(v));
		rc = -EBADMSG;
		goto out;
	}
	GET_STR("reason", st->reason, false);
	GET_STR("message", st->message, false);
	GET_STR("container", st->container, false);
	rc = get_int64(o, "bytes", 0, INT64_MAX, &x, err, errlen);
	if (rc)
		goto out;
	st->bytes = (uint64_t)x;
out:
	json_object_put(o);
	if (rc)
		memset(st, 0, sizeof(*st));
	return rc;
}
