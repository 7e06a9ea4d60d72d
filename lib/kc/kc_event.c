/*
 * kc_event.c - events.k8s.io/v1 Events about an object.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kc_internal.h"
#include "log.h"

#define KC_EVENT_NOTE_MAX 1024
#define KC_NAME_MAX 253

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static void utf8_truncate(char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	s[n] = '\0';
}

int kc_event_emit(struct kc_client *c, const struct kc_event_source *src, json_object *regarding,
		  const char *type, const char *reason, const char *action, struct kc_status *st,
		  const char *fmt, ...)
{
	json_object *ev = NULL, *meta = NULL, *ref = NULL, *resp = NULL;
	const char *rname, *rns;
	char note[KC_EVENT_NOTE_MAX * 2], name[KC_NAME_MAX + 64], base[KC_NAME_MAX + 1];
	char when[40], path[1024];
	int64_t now = kc_now_us();
	va_list ap;
	int rc = -EINVAL;

	kc_status_clear(st);
	if (!c || !src || !src->controller || !src->instance || !regarding || !type || !reason ||
	    !action || !fmt)
		goto out;
	rname = kc_json_str(regarding, "metadata.name");
	rns = kc_json_str(regarding, "metadata.namespace");
	if (!rname || !rname[0])
		goto out;
	if (!rns || !rns[0])
		rns = "default"; /* cluster-scoped objects: events go to "default" */

	va_start(ap, fmt);
	vsnprintf(note, sizeof(note), fmt, ap);
	va_end(ap);
	utf8_truncate(note, KC_EVENT_NOTE_MAX);

	/* "<regarding-name>.<hex ns time>", as client-go names them. */
	snprintf(base, sizeof(base), "%s", rname);
	base[KC_NAME_MAX - 17] = '\0';
	snprintf(name, sizeof(name), "%s.%llx", base, (unsigned long long)now * 1000ull);
	kc_time_rfc3339_micro(now, when);

	rc = -ENOMEM;
	ev = json_object_new_object();
	meta = json_object_new_object();
	ref = json_object_new_object();
	if (!ev || !meta || !ref)
		goto out;
	if (kc_json_set_str(meta, "name", name) || kc_json_set_str(meta, "namespace", rns))
		goto out;
	if (kc_json_set_str(ref, "apiVersion", kc_json_str(regarding, "apiVersion")) ||
	    kc_json_set_str(ref, "kind", kc_json_str(regarding, "kind")) ||
	    kc_json_set_str(ref, "namespace", kc_json_str(regarding, "metadata.namespace")) ||
	    kc_json_set_str(ref, "name", rname) || kc_json_set_str(ref, "uid", kc_json_str(regarding, "metadata.uid")) ||
	    kc_json_set_str(ref, "resourceVersion", kc_json_str(regarding, "metadata.resourceVersion")))
		goto out;
	if (kc_json_set_str(ev, "apiVersion", "events.k8s.io/v1") || kc_json_set_str(ev, "kind", "Event"))
		goto out;
	if (json_object_object_add(ev, "metadata", meta))
		goto out;
	meta = NULL;
	if (kc_json_set_str(ev, "eventTime", when) || kc_json_set_str(ev, "reportingController", src->controller) ||
	    kc_json_set_str(ev, "reportingInstance", src->instance) || kc_json_set_str(ev, "action", action) ||
	    kc_json_set_str(ev, "reason", reason) || kc_json_set_str(ev, "type", type) ||
	    kc_json_set_str(ev, "note", note))
		goto out;
	if (json_object_object_add(ev, "regarding", ref))
		goto out;
	ref = NULL;
	rc = kc_path(path, sizeof(path), &KC_RES_EVENTS, rns, NULL, NULL, NULL);
	if (rc)
		goto out;
	rc = kc_create(c, path, ev, NULL, st); /* the Event as created is not needed: not parsed */
	if (rc)
		LOG_WARN("msg=\"event not recorded\" ns=%s name=%s reason=%s err=%d", rns, rname,
			 reason, rc);
out:
	json_object_put(resp);
	json_object_put(ref);
	json_object_put(meta);
	json_object_put(ev);
	return rc;
}
