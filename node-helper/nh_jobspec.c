/*
 * nh_jobspec.c - what a checkpoint job is, read from the CR and the pod it
 * names (pure: JSON in, struct nh_jobspec out; see nh_job.h): the pod,
 * containers, leaveRunning, encrypt and timeoutSeconds from the CR; the
 * containers selected and checked to be running (native sidecars included)
 * from the pod. The channel message never decides any of it.
 */
#include "nh_job.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "kc.h"
#include "nh_util.h"

/* ---------------------------------------------------------------- pure parts */

int nh_spec_from_cr(json_object *cr, const char *node, struct nh_jobspec *spec)
{
	json_object *v;
	bool present = false;
	int64_t t;

	if (nh_strlcpy(spec->pod, kc_json_str(cr, "spec.podName"), sizeof(spec->pod)) ||
	    !spec->pod[0] ||
	    nh_strlcpy(spec->pod_uid, kc_json_str(cr, "status.podUID"), sizeof(spec->pod_uid)) ||
	    !spec->pod_uid[0] || nh_strlcpy(spec->node, node, sizeof(spec->node)))
		return -EINVAL;
	spec->ncontainers = 0;
	v = kc_json_get(cr, "spec.containers");
	if (v && json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v);

		if (n > CH_MAX_CONTAINERS)
			return -E2BIG;
		for (size_t i = 0; i < n; i++) {
			const char *c = json_object_get_string(json_object_array_get_idx(v, i));

			if (!c || !*c || nh_strlcpy(spec->containers[spec->ncontainers], c,
						    sizeof(spec->containers[0])))
				return -EINVAL;
			spec->ncontainers++;
		}
	}
	t = kc_json_int64(cr, "spec.timeoutSeconds", 300, &present);
	spec->timeout_seconds = t >= 1 && t <= 3600 ? (int)t : 300;
	v = kc_json_get(cr, "spec.leaveRunning");
	spec->leave_running = !v || json_object_get_boolean(v);
	v = kc_json_get(cr, "spec.encrypt");
	spec->encrypt = v && json_object_get_boolean(v);
	nh_strlcpy(spec->secret_name, kc_json_str(cr, "spec.encryptionSecret"),
		   sizeof(spec->secret_name));
	return 0;
}

/* The entry of `name` in a pod status list, or NULL. */
static json_object *nh_find_named(json_object *list, const char *name)
{
	size_t n = list && json_object_is_type(list, json_type_array) ? json_object_array_length(list)
								       : 0;

	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(list, i);
		const char *s = kc_json_str(e, "name");

		if (s && strcmp(s, name) == 0)
			return e;
	}
	return NULL;
}

static bool nh_is_sidecar(json_object *init_container)
{
	const char *p = kc_json_str(init_container, "restartPolicy");
	return p && strcmp(p, "Always") == 0;
}

static bool nh_running(json_object *statuses, const char *name)
{
	json_object *e = nh_find_named(statuses, name);
	return e && kc_json_get(e, "state.running") != NULL;
}

int nh_select_containers(json_object *pod, struct nh_jobspec *spec, char *reason, size_t rcap,
			 char *msg, size_t mcap)
{
	json_object *ctrs = kc_json_get(pod, "spec.containers");
	json_object *inits = kc_json_get(pod, "spec.initContainers");
	json_object *cst = kc_json_get(pod, "status.containerStatuses");
	json_object *ist = kc_json_get(pod, "status.initContainerStatuses");
	size_t nc = ctrs && json_object_is_type(ctrs, json_type_array) ? json_object_array_length(ctrs) : 0;
	size_t ni = inits && json_object_is_type(inits, json_type_array) ? json_object_array_length(inits)
									  : 0;

	reason[0] = msg[0] = '\0';
	if (spec->ncontainers == 0) {
		/* All regular containers, then the native sidecars that run. */
		for (size_t i = 0; i < nc && spec->ncontainers < CH_MAX_CONTAINERS; i++) {
			const char *name = kc_json_str(json_object_array_get_idx(ctrs, i), "name");
			if (name && nh_strlcpy(spec->containers[spec->ncontainers], name,
					       sizeof(spec->containers[0])) == 0)
				spec->ncontainers++;
		}
		for (size_t i = 0; i < ni && spec->ncontainers < CH_MAX_CONTAINERS; i++) {
			json_object *c = json_object_array_get_idx(inits, i);
			const char *name = kc_json_str(c, "name");
			if (name && nh_is_sidecar(c) && nh_running(ist, name) &&
			    nh_strlcpy(spec->containers[spec->ncontainers], name,
				       sizeof(spec->containers[0])) == 0)
				spec->ncontainers++;
		}
	}
	if (spec->ncontainers == 0) {
		snprintf(reason, rcap, "ContainerNotFound");
		snprintf(msg, mcap, "pod %s/%s has no containers to checkpoint", spec->ns, spec->pod);
		return -ENOENT;
	}
	/* Every selected container must run before any is frozen. */
	for (size_t i = 0; i < spec->ncontainers; i++) {
		const char *name = spec->containers[i];
		json_object *ic = nh_find_named(inits, name);
		bool regular = nh_find_named(ctrs, name) != NULL;

		if (!regular && !(ic && nh_is_sidecar(ic))) {
			snprintf(reason, rcap, "ContainerNotFound");
			snprintf(msg, mcap,
				 "container %s is neither a container nor a native sidecar of pod %s/%s",
				 name, spec->ns, spec->pod);
			return -ENOENT;
		}
		if (!nh_running(regular ? cst : ist, name)) {
			snprintf(reason, rcap, "ContainerNotRunning");
			snprintf(msg, mcap,
				 "container %s of pod %s/%s is not running; no container was checkpointed",
				 name, spec->ns, spec->pod);
			return -ESRCH;
		}
	}
	return 0;
}
