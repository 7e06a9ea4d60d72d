/*
 * kc_json.c - dotted-path lookups, JSON parsing with a bounded depth, and
 * RFC 3339 time (metav1.Time, metav1.MicroTime).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <json-c/json_tokener.h>
#include <json-c/printbuf.h>
#include <openssl/crypto.h>

#include "kc_internal.h"

#define KC_JSON_DEPTH 128

json_object *kc_json_get(json_object *obj, const char *dotted)
{
	char seg[256];
	const char *p = dotted;

	if (!obj || !dotted)
		return NULL;
	while (obj) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		json_object *next = NULL;

		if (n == 0 || n >= sizeof(seg) || !json_object_is_type(obj, json_type_object))
			return NULL;
		memcpy(seg, p, n);
		seg[n] = '\0';
		if (!json_object_object_get_ex(obj, seg, &next))
			return NULL;
		obj = next;
		if (!dot)
			return obj;
		p = dot + 1;
	}
	return NULL;
}

const char *kc_json_str(json_object *obj, const char *dotted)
{
	json_object *v = kc_json_get(obj, dotted);

	if (!v || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int64_t kc_json_int64(json_object *obj, const char *dotted, int64_t dflt, bool *present)
{
	json_object *v = kc_json_get(obj, dotted);

	if (present)
		*present = false;
	if (!v || !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return dflt;
	if (present)
		*present = true;
	return json_object_get_int64(v);
}

int kc_json_set(json_object *obj, const char *key, json_object *val)
{
	if (!val)
		return -ENOMEM;
	if (json_object_object_add(obj, key, val) != 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

int kc_json_append(json_object *arr, json_object *val)
{
	if (!val)
		return -ENOMEM;
	if (json_object_array_add(arr, val) != 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

int kc_json_set_str(json_object *obj, const char *key, const char *val)
{
	if (!val)
		return 0;
	return kc_json_set(obj, key, json_object_new_string(val));
}

int kc_json_parse(const char *buf, size_t len, json_object **out)
{
	struct json_tokener *tok;
	json_object *obj = NULL;
	int rc = -EBADMSG;
	size_t used;

	*out = NULL;
	if (!buf || len == 0 || len > (size_t)INT32_MAX)
		return -EBADMSG;
	tok = json_tokener_new_ex(KC_JSON_DEPTH);
	if (!tok)
		return -ENOMEM;
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	if (!obj || json_tokener_get_error(tok) != json_tokener_success)
		goto out;
	used = json_tokener_get_parse_end(tok);
	for (; used < len; used++) {
		char ch = buf[used];

		if (ch != ' ' && ch != '\n' && ch != '\r' && ch != '\t')
			goto out;
	}
	*out = obj;
	obj = NULL;
	rc = 0;
out:
	json_object_put(obj);
	/* The tokener's scratch buffer holds the last string it parsed (a
	 * Secret's data, a token in a TokenReview): wipe it before it is freed. */
	if (tok->pb && tok->pb->buf)
		OPENSSL_cleanse(tok->pb->buf, (size_t)tok->pb->size);
	json_tokener_free(tok);
	return rc;
}

int64_t kc_now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000000 + (int64_t)tv.tv_usec;
}

int64_t kc_now_ms(void)
{
	return kc_now_us() / 1000;
}

void kc_time_rfc3339(int64_t epoch_s, char buf[32])
{
	struct tm tm;
	time_t t = (time_t)epoch_s;

	if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, 32, "1970-01-01T00:00:00Z");
}

void kc_time_rfc3339_micro(int64_t epoch_us, char buf[40])
{
	struct tm tm;
	int64_t s = epoch_us / 1000000, us = epoch_us % 1000000;
	time_t t;

	if (us < 0) {
		us += 1000000;
		s--;
	}
	t = (time_t)s;
	if (!gmtime_r(&t, &tm)) {
		snprintf(buf, 40, "1970-01-01T00:00:00.000000Z");
		return;
	}
	if (strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm) == 0 || strlen(buf) > 31) {
		snprintf(buf, 40, "1970-01-01T00:00:00.000000Z");
		return;
	}
	snprintf(buf + strlen(buf), 9, ".%06dZ", (int)us);
}

/* n decimal digits at *p into *v; advances *p. */
static int digits(const char **p, int n, int *v)
{
	int x = 0;

	for (int i = 0; i < n; i++) {
		char ch = (*p)[i];

		if (ch < '0' || ch > '9')
			return -EINVAL;
		x = x * 10 + (ch - '0');
	}
	*p += n;
	*v = x;
	return 0;
}

static int expect(const char **p, const char *set)
{
	if (**p == '\0' || !strchr(set, **p))
		return -EINVAL;
	(*p)++;
	return 0;
}

int kc_time_parse(const char *s, int64_t *epoch_ms)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, ms = 0, oh = 0, om = 0, sign = 0;
	const char *p = s;
	struct tm tm;
	time_t t;

	if (!s || !epoch_ms)
		return -EINVAL;
	if (digits(&p, 4, &y) || expect(&p, "-") || digits(&p, 2, &mo) || expect(&p, "-") ||
	    digits(&p, 2, &d) || expect(&p, "Tt ") || digits(&p, 2, &h) || expect(&p, ":") ||
	    digits(&p, 2, &mi) || expect(&p, ":") || digits(&p, 2, &sec))
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	if (*p == '.') {
		int n = 0;

		p++;
		while (*p >= '0' && *p <= '9') {
			if (n < 3)
				ms = ms * 10 + (*p - '0');
			n++;
			p++;
		}
		if (n == 0 || n > 9)
			return -EINVAL;
		for (int i = n; i < 3; i++)
			ms *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		p++;
		if (digits(&p, 2, &oh) || expect(&p, ":") || digits(&p, 2, &om) || oh > 23 ||
		    om > 59)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (*p != '\0')
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	*epoch_ms = ((int64_t)t - (int64_t)sign * (oh * 3600 + om * 60)) * 1000 + ms;
	return 0;
}
