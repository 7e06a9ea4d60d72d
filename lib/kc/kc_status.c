/*
 * kc_status.c - the API server's Status object and the mapping from HTTP
 * answers to negative errno codes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kc_internal.h"

void kc_status_clear(struct kc_status *st)
{
	if (!st)
		return;
	st->http = 0;
	st->reason[0] = '\0';
	st->message[0] = '\0';
}

/* Copies at most cap-1 bytes of s, replacing control characters by spaces
 * (keeps a message on one log line) and trimming trailing blanks. */
static void copy_clean(char *dst, size_t cap, const char *s, size_t n)
{
	size_t j = 0;

	for (size_t i = 0; i < n && j + 1 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\0')
			break;
		dst[j++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	while (j > 0 && dst[j - 1] == ' ')
		j--;
	dst[j] = '\0';
}

/* The reason client-go infers when the body is not a Status. */
static const char *default_reason(long http)
{
	switch (http) {
	case 400: return "BadRequest";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "NotFound";
	case 405: return "MethodNotAllowed";
	case 406: return "NotAcceptable";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "RequestEntityTooLarge";
	case 415: return "UnsupportedMediaType";
	case 422: return "Invalid";
	case 429: return "TooManyRequests";
	case 500: return "InternalError";
	case 503: return "ServiceUnavailable";
	case 504: return "Timeout";
	default: return "";
	}
}

/* "field: message; field: message" from details.causes when message is empty. */
static void causes_message(struct kc_status *st, json_object *status)
{
	json_object *causes = kc_json_get(status, "details.causes");
	size_t used = 0;

	if (!causes || !json_object_is_type(causes, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(causes); i++) {
		json_object *c = json_object_array_get_idx(causes, i);
		const char *field = kc_json_str(c, "field");
		const char *msg = kc_json_str(c, "message");
		int n;

		if (used + 1 >= sizeof(st->message))
			break;
		n = snprintf(st->message + used, sizeof(st->message) - used, "%s%s%s%s",
			     used ? "; " : "", field ? field : "", field ? ": " : "",
			     msg ? msg : "");
		if (n < 0)
			break;
		used += (size_t)n;
		if (used >= sizeof(st->message))
			used = sizeof(st->message) - 1;
	}
	copy_clean(st->message, sizeof(st->message), st->message, strlen(st->message));
}

void kc_status_from_response(struct kc_status *st, long http, const char *body, size_t len)
{
	json_object *obj = NULL;
	const char *kind, *s;

	if (!st)
		return;
	kc_status_clear(st);
	st->http = http;
	if (body && len && kc_json_parse(body, len, &obj) == 0 &&
	    json_object_is_type(obj, json_type_object) && (kind = kc_json_str(obj, "kind")) &&
	    strcmp(kind, "Status") == 0) {
		s = kc_json_str(obj, "reason");
		if (s)
			copy_clean(st->reason, sizeof(st->reason), s, strlen(s));
		s = kc_json_str(obj, "message");
		if (s)
			copy_clean(st->message, sizeof(st->message), s, strlen(s));
		if (!st->message[0])
			causes_message(st, obj);
		if (http == 0) {
			json_object *code = kc_json_get(obj, "code");

			if (code && json_object_is_type(code, json_type_int))
				st->http = (long)json_object_get_int64(code);
		}
	} else if (body && len && (http < 200 || http > 299)) {
		copy_clean(st->message, sizeof(st->message), body, len);
	}
	if (!st->reason[0] && (st->http < 200 || st->http > 299))
		snprintf(st->reason, sizeof(st->reason), "%s", default_reason(st->http));
	json_object_put(obj);
}

void kc_status_set_transport(struct kc_status *st, const char *msg)
{
	if (!st)
		return;
	kc_status_clear(st);
	copy_clean(st->message, sizeof(st->message), msg ? msg : "", msg ? strlen(msg) : 0);
}

bool kc_is_not_found(const struct kc_status *st)
{
	return st && st->http == 404;
}

bool kc_is_already_exists(const struct kc_status *st)
{
	return st && st->http == 409 && strcmp(st->reason, "AlreadyExists") == 0;
}

bool kc_is_conflict(const struct kc_status *st)
{
	return st && st->http == 409 && strcmp(st->reason, "AlreadyExists") != 0;
}

bool kc_is_gone(const struct kc_status *st)
{
	return st && (st->http == 410 || strcmp(st->reason, "Expired") == 0 ||
		      strcmp(st->reason, "Gone") == 0);
}

bool kc_is_forbidden(const struct kc_status *st)
{
	return st && st->http == 403;
}

bool kc_is_invalid(const struct kc_status *st)
{
	return st && (st->http == 422 || strcmp(st->reason, "Invalid") == 0);
}

int kc_status_to_errno(const struct kc_status *st)
{
	if (!st || st->http == 0)
		return -EIO;
	if (st->http >= 200 && st->http <= 299)
		return 0;
	switch (st->http) {
	case 404:
		return -ENOENT;
	case 409:
		return kc_is_already_exists(st) ? -EEXIST : -EAGAIN;
	case 410:
		return -ESTALE;
	case 401:
	case 403:
		return -EACCES;
	case 400:
	case 422:
		return -EINVAL;
	default:
		return -EIO;
	}
}
