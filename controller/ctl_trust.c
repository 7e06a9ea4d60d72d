/*
 * ctl_trust.c - the channel token file and the helper endpoint check.
 */
#include "ctl_trust.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "kc.h"

int ctl_channel_token(const char *path, char *buf, size_t cap, char *err, size_t errlen)
{
	size_t len = 0;
	int fd = -1, rc = 0;

	if (!buf || cap < 2) {
		snprintf(err, errlen, "no room for the channel token");
		return -EINVAL;
	}
	buf[0] = '\0';
	if (!path || !*path) {
		snprintf(err, errlen, "no --channel-token-file: the controller never sends its API token to a node helper");
		return -ENOENT;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open the channel token file %s: %s", path, strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			char extra;

			n = read(fd, &extra, 1);
			if (n > 0) {
				rc = -EFBIG;
				snprintf(err, errlen, "the channel token file %s is larger than %zu bytes", path,
					 cap - 1);
				goto out;
			}
			break;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot read the channel token file %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
			   buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	if (len == 0) {
		rc = -EINVAL;
		snprintf(err, errlen, "the channel token file %s is empty", path);
		goto out;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)buf[i];

		if (ch < 0x21 || ch > 0x7e) {
			rc = -EINVAL;
			snprintf(err, errlen, "the channel token file %s holds characters a token cannot have", path);
			goto out;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		OPENSSL_cleanse(buf, cap);
	return rc;
}

/* The host part of "wss://host:port" ("[v6]" unbracketed) into host. 0 or -EINVAL. */
static int endpoint_host(const char *endpoint, char *host, size_t cap)
{
	const char *p, *e;
	size_t n;

	if (!endpoint || strncmp(endpoint, "wss://", 6) != 0)
		return -EINVAL;
	p = endpoint + 6;
	if (*p == '[') {
		p++;
		e = strchr(p, ']');
	} else {
		e = strrchr(p, ':');
	}
	if (!e || e == p)
		return -EINVAL;
	n = (size_t)(e - p);
	if (n >= cap)
		return -EINVAL;
	memcpy(host, p, n);
	host[n] = '\0';
	return 0;
}

bool ctl_endpoint_on_node(const char *endpoint, json_object *node, char *why, size_t whylen)
{
	json_object *addrs = node ? kc_json_get(node, "status.addresses") : NULL;
	const char *name = node ? kc_json_str(node, "metadata.name") : NULL;
	char host[256];
	size_t n;

	if (endpoint_host(endpoint, host, sizeof(host)) != 0) {
		snprintf(why, whylen, "the helper endpoint %.200s is not wss://host:port",
			 endpoint ? endpoint : "");
		return false;
	}
	n = addrs && json_object_is_type(addrs, json_type_array) ? json_object_array_length(addrs) : 0;
	if (n == 0) {
		snprintf(why, whylen, "node lists no addresses");
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		const char *a = kc_json_str(json_object_array_get_idx(addrs, i), "address");

		if (a && strcmp(a, host) == 0) {
			snprintf(why, whylen, "ok");
			return true;
		}
	}
	snprintf(why, whylen, "the helper Lease's endpoint host %.64s is not an address of node %.200s",
		 host, name ? name : "(unknown)");
	return false;
}
