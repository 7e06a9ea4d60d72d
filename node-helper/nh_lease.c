/*
 * nh_lease.c - heartbeat thread renewing the helper's Lease.
 */
#include "nh_lease.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kc.h"
#include "log.h"
#include "nh_metrics.h"
#include "nh_util.h"

struct nh_lease {
	struct kc_config *cfg;
	char ns[64];
	char node[254];
	char name[300];
	long duration;
	json_object *annotations;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
};

int nh_lease_name(const char *node, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "pcp-helper-%s", node);
	return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

int nh_lease_annotations(const char *endpoint, const char *fingerprint, const char *node,
			 json_object **out)
{
	json_object *a = json_object_new_object();
	int rc = 0;

	*out = NULL;
	if (!a)
		return -ENOMEM;
	if (kc_json_set_str(a, "checkpointing.dev/endpoint", endpoint) ||
	    kc_json_set_str(a, "checkpointing.dev/cert-sha256", fingerprint) ||
	    kc_json_set_str(a, "checkpointing.dev/node", node)) {
		rc = -ENOMEM;
		json_object_put(a);
		goto out;
	}
	*out = a;
out:
	return rc;
}

/* Adds the component label once; failures are retried at the next beat. */
static int nh_lease_label(struct nh_lease *l, struct kc_client *c)
{
	json_object *patch = NULL, *meta, *labels;
	struct kc_status st;
	char path[512];
	int rc;

	kc_status_clear(&st);
	rc = kc_path(path, sizeof(path), &KC_RES_LEASES, l->ns, l->name, NULL, NULL);
	if (rc)
		goto out;
	patch = json_object_new_object();
	meta = json_object_new_object();
	labels = json_object_new_object();
	if (!patch || !meta || !labels) {
		json_object_put(meta);
		json_object_put(labels);
		rc = -ENOMEM;
		goto out;
	}
	json_object_object_add(patch, "metadata", meta);
	json_object_object_add(meta, "labels", labels);
	kc_json_set_str(labels, "app.kubernetes.io/component", "node-helper");
	kc_json_set_str(labels, "app.kubernetes.io/name", "podcheckpoint");
	rc = kc_merge_patch(c, path, patch, NULL, &st);
	if (rc)
		LOG_WARN("msg=\"lease label failed\" lease=%s/%s http=%ld err=\"%s\"", l->ns, l->name,
			 st.http, st.message);
out:
	json_object_put(patch);
	return rc;
}

static void *nh_lease_main(void *arg)
{
	struct nh_lease *l = arg;
	struct kc_client *c = NULL;
	struct kc_status st;
	bool labeled = false, healthy = false;
	long every_ms = l->duration * 1000 / 3;
	int rc;

	rc = kc_client_new(l->cfg, &c);
	if (rc) {
		LOG_ERROR("msg=\"lease client failed\" err=%d", rc);
		return NULL;
	}
	kc_client_set_timeout(c, every_ms > 1000 ? every_ms : 1000);
	kc_client_set_user_agent(c, "podcheckpoint-node-helper/lease");
	pthread_mutex_lock(&l->lock);
	while (!l->stop) {
		struct timespec until;
		long wait_ms;

		pthread_mutex_unlock(&l->lock);
		kc_status_clear(&st);
		rc = kc_lease_renew(c, l->ns, l->name, l->node, l->duration, l->annotations, &st);
		if (rc) {
			LOG_WARN("msg=\"lease renewal failed\" lease=%s/%s http=%ld err=\"%s\"", l->ns,
				 l->name, st.http, st.message);
			healthy = false;
		} else {
			if (!healthy)
				LOG_INFO("msg=\"lease renewed\" lease=%s/%s duration=%ld", l->ns,
					 l->name, l->duration);
			healthy = true;
			if (!labeled)
				labeled = nh_lease_label(l, c) == 0;
		}
		nh_metrics_lease(rc == 0);
		wait_ms = rc ? 1000 : every_ms;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += wait_ms / 1000;
		until.tv_nsec += (wait_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&l->lock);
		while (!l->stop && pthread_cond_timedwait(&l->cond, &l->lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&l->lock);
	kc_client_free(c);
	return NULL;
}

int nh_lease_start(const struct nh_lease_opts *opts, struct nh_lease **out)
{
	struct nh_lease *l = NULL;
	int rc = 0;

	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	l->cfg = opts->cfg;
	l->duration = opts->duration_seconds;
	if (nh_strlcpy(l->ns, opts->ns, sizeof(l->ns)) ||
	    nh_strlcpy(l->node, opts->node, sizeof(l->node)) ||
	    nh_lease_name(opts->node, l->name, sizeof(l->name))) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	rc = nh_lease_annotations(opts->endpoint, opts->fingerprint, opts->node, &l->annotations);
	if (rc)
		goto out;
	rc = -pthread_create(&l->thread, NULL, nh_lease_main, l);
	if (rc)
		goto out;
	l->started = true;
	*out = l;
	l = NULL;
out:
	nh_lease_stop(l);
	return rc;
}

void nh_lease_stop(struct nh_lease *l)
{
	if (!l)
		return;
	if (l->started) {
		pthread_mutex_lock(&l->lock);
		l->stop = true;
		pthread_cond_signal(&l->cond);
		pthread_mutex_unlock(&l->lock);
		pthread_join(l->thread, NULL);
	}
	json_object_put(l->annotations);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	free(l);
}
