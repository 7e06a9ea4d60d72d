/*
 * kc_path.c - the well-known resources, API paths, percent-escaping and
 * query strings.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kc_internal.h"

const struct kc_resource KC_RES_PODS = { "", "v1", "pods", "Pod", true };
const struct kc_resource KC_RES_SECRETS = { "", "v1", "secrets", "Secret", true };
const struct kc_resource KC_RES_NODES = { "", "v1", "nodes", "Node", false };
const struct kc_resource KC_RES_EVENTS = { "events.k8s.io", "v1", "events", "Event", true };
const struct kc_resource KC_RES_LEASES = { "coordination.k8s.io", "v1", "leases", "Lease", true };
const struct kc_resource KC_RES_TOKENREVIEWS = { "authentication.k8s.io", "v1", "tokenreviews",
						 "TokenReview", false };
const struct kc_resource KC_RES_PODCHECKPOINTS = { "checkpointing.dev", "v1alpha1",
						   "podcheckpoints", "PodCheckpoint", true };

static bool unreserved(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

int kc_escape(char *buf, size_t cap, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t j = 0;

	if (!buf || cap == 0)
		return -ENAMETOOLONG;
	buf[0] = '\0';
	if (!s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (unreserved(ch)) {
			if (j + 1 >= cap)
				goto toolong;
			buf[j++] = (char)ch;
		} else {
			if (j + 3 >= cap)
				goto toolong;
			buf[j++] = '%';
			buf[j++] = hex[ch >> 4];
			buf[j++] = hex[ch & 15];
		}
	}
	buf[j] = '\0';
	return 0;
toolong:
	buf[0] = '\0';
	return -ENAMETOOLONG;
}

/* Appends a literal string at buf[*len]. */
static int put(char *buf, size_t cap, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (*len + n >= cap)
		return -ENAMETOOLONG;
	memcpy(buf + *len, s, n + 1);
	*len += n;
	return 0;
}

/* Appends "/" + escaped segment; an empty segment is refused ("//" or "/." would
 * change the meaning of the path). */
static int put_seg(char *buf, size_t cap, size_t *len, const char *seg)
{
	int rc;

	if (!seg[0] || strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0)
		return -EINVAL;
	rc = put(buf, cap, len, "/");
	if (rc)
		return rc;
	if (*len >= cap)
		return -ENAMETOOLONG;
	rc = kc_escape(buf + *len, cap - *len, seg);
	if (rc)
		return rc;
	*len += strlen(buf + *len);
	return 0;
}

int kc_path(char *buf, size_t cap, const struct kc_resource *res, const char *ns,
	    const char *name, const char *sub, const char *query)
{
	size_t len = 0;
	int rc = -EINVAL;

	if (!buf || cap == 0)
		return -ENAMETOOLONG;
	buf[0] = '\0';
	if (!res || !res->version || !res->plural)
		goto out;
	if (sub && sub[0] && !(name && name[0]))
		goto out;
	if (!res->group || !res->group[0]) {
		rc = put(buf, cap, &len, "/api");
	} else {
		rc = put(buf, cap, &len, "/apis");
		if (!rc)
			rc = put_seg(buf, cap, &len, res->group);
	}
	if (!rc)
		rc = put_seg(buf, cap, &len, res->version);
	if (!rc && res->namespaced && ns && ns[0]) {
		rc = put(buf, cap, &len, "/namespaces");
		if (!rc)
			rc = put_seg(buf, cap, &len, ns);
	}
	if (!rc)
		rc = put_seg(buf, cap, &len, res->plural);
	if (!rc && name && name[0])
		rc = put_seg(buf, cap, &len, name);
	if (!rc && sub && sub[0])
		rc = put_seg(buf, cap, &len, sub);
	if (!rc && query && query[0]) {
		rc = put(buf, cap, &len, "?");
		if (!rc)
			rc = put(buf, cap, &len, query);
	}
out:
	if (rc)
		buf[0] = '\0';
	return rc;
}

int kc_query_add(char *buf, size_t cap, const char *key, const char *value)
{
	size_t len, start;
	int rc;

	if (!buf || cap == 0)
		return -ENAMETOOLONG;
	if (!key || !key[0] || !value)
		return -EINVAL;
	len = strnlen(buf, cap);
	if (len >= cap)
		return -ENAMETOOLONG;
	start = len;
	rc = put(buf, cap, &len, len ? "&" : "");
	if (!rc)
		rc = kc_escape(buf + len, cap - len, key);
	if (!rc) {
		len += strlen(buf + len);
		rc = put(buf, cap, &len, "=");
	}
	if (!rc && len >= cap)
		rc = -ENAMETOOLONG;
	if (!rc)
		rc = kc_escape(buf + len, cap - len, value);
	if (rc)
		buf[start] = '\0';
	return rc;
}
