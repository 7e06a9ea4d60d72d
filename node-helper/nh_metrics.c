/*
 * nh_metrics.c - the node helper's metrics, health and readiness (see
 * nh_metrics.h).
 */
#include "nh_metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kc.h"
#include "log.h"
#include "mx.h"
#include "mx_http.h"

static struct mx_family *nh_mx_results, *nh_mx_duration, *nh_mx_bytes, *nh_mx_queue,
	*nh_mx_inflight, *nh_mx_kubelet_up;
static _Atomic int nh_lease_state; /* 0: never renewed, 1: last renewal ok, 2: last failed */
static int nh_lease_beat = -1;
static _Thread_local double nh_job_t0, nh_job_lap;

struct nh_metrics {
	const struct nh_options *opt;
	struct mx_http *http;
	char kubelet_host[256];
	int kubelet_port;
	atomic_int kubelet_ok; /* -1 unknown, 0 no, 1 yes */
	char kubelet_err[160];
	pthread_mutex_t lock; /* kubelet_err */
	struct mx_ticker *ticker;
};

int nh_metrics_url_hostport(const char *url, char *host, size_t cap, int *port)
{
	const char *p, *end, *colon;
	size_t n;

	if (strncmp(url, "https://", 8) == 0)
		p = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		p = url + 7;
	else
		return -EINVAL;
	end = p + strcspn(p, "/?#");
	*port = 443;
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(end - p));

		if (!rb)
			return -EINVAL;
		n = (size_t)(rb - p - 1);
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
		p++;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		n = (size_t)((colon ? colon : end) - p);
	}
	if (n == 0 || n >= cap)
		return -EINVAL;
	memcpy(host, p, n);
	host[n] = '\0';
	if (colon) {
		char *e = NULL;
		long v = strtol(colon + 1, &e, 10);

		if (e != end || v < 1 || v > 65535)
			return -EINVAL;
		*port = (int)v;
	}
	return 0;
}

/* One TCP connect with a deadline. 0, or negative errno and why. */
static int nh_probe_tcp(const char *host, int port, int timeout_ms, char *why, size_t cap)
{
	struct addrinfo hints, *ai = NULL;
	char ps[8];
	int fd = -1, rc, soerr = 0;
	socklen_t sl = sizeof(soerr);
	struct pollfd p;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(ps, sizeof(ps), "%d", port);
	if (getaddrinfo(host, ps, &hints, &ai) != 0 || !ai) {
		snprintf(why, cap, "cannot resolve the kubelet host %s", host);
		rc = -EHOSTUNREACH;
		goto out;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, cap, "cannot open a socket: %s", strerror(-rc));
		goto out;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
		rc = -errno;
		goto refused;
	}
	p.fd = fd;
	p.events = POLLOUT;
	rc = poll(&p, 1, timeout_ms);
	if (rc == 0) {
		rc = -ETIMEDOUT;
		goto refused;
	}
	if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr) {
		rc = soerr ? -soerr : -EIO;
		goto refused;
	}
	rc = 0;
	goto out;
refused:
	snprintf(why, cap, "the kubelet at %s:%d does not accept connections (%s)", host, port,
		 strerror(-rc));
out:
	if (fd >= 0)
		close(fd);
	if (ai)
		freeaddrinfo(ai);
	return rc;
}

static void nh_metrics_tick(void *arg)
{
	struct nh_metrics *m = arg;
	char why[160] = "";
	int rc = nh_probe_tcp(m->kubelet_host, m->kubelet_port, NH_KUBELET_PROBE_MS, why,
			      sizeof(why));

	pthread_mutex_lock(&m->lock);
	snprintf(m->kubelet_err, sizeof(m->kubelet_err), "%s", why);
	pthread_mutex_unlock(&m->lock);
	if ((rc == 0) != (atomic_load(&m->kubelet_ok) == 1))
		LOG_INFO("msg=\"kubelet reachability changed\" reachable=%s detail=\"%s\"",
			 rc == 0 ? "true" : "false", why);
	atomic_store(&m->kubelet_ok, rc == 0 ? 1 : 0);
	mx_gauge_set(nh_mx_kubelet_up, rc == 0 ? 1 : 0, NULL, 0);
}

static int nh_ready(void *arg, char *why, size_t cap)
{
	struct nh_metrics *m = arg;
	int lease = atomic_load(&nh_lease_state), k = atomic_load(&m->kubelet_ok);

	if (lease == 0) {
		snprintf(why, cap, "the helper's Lease has not been published yet");
		return 1;
	}
	if (lease == 2) {
		snprintf(why, cap, "the last renewal of the helper's Lease failed");
		return 1;
	}
	if (kc_api_check(0, why, cap) != 0)
		return 1;
	if (k != 1) {
		pthread_mutex_lock(&m->lock);
		snprintf(why, cap, "%s", k < 0 ? "the kubelet has not been checked yet" : m->kubelet_err);
		pthread_mutex_unlock(&m->lock);
		return 1;
	}
	return 0;
}

int nh_metrics_start(const struct nh_options *opt, struct nh_metrics **out, char *err,
		     size_t errlen)
{
	struct nh_metrics *m;
	struct mx_http_opts ho;
	int rc;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->opt = opt;
	atomic_store(&m->kubelet_ok, -1);
	pthread_mutex_init(&m->lock, NULL);
	rc = nh_metrics_url_hostport(opt->kubelet_url, m->kubelet_host, sizeof(m->kubelet_host),
				     &m->kubelet_port);
	if (rc) {
		snprintf(err, errlen, "--kubelet-url %s is not an http(s)://HOST[:PORT] URL",
			 opt->kubelet_url);
		goto fail;
	}
	/* The node name in the URL is pinned to --kubelet-address (nh_kubelet.c):
	 * probe where the calls really go, not whatever DNS says of the name. */
	if (opt->kubelet_address[0] && strcasecmp(m->kubelet_host, opt->node_name) == 0)
		snprintf(m->kubelet_host, sizeof(m->kubelet_host), "%s", opt->kubelet_address);
	mx_register_process("node-helper", PCP_VERSION);
	kc_metrics_register();
	nh_mx_results = mx_counter("podcheckpoint_checkpoints_total",
				   "Checkpoints that reached a terminal phase on this node, by result (succeeded, failed) and reason.",
				   "result,reason");
	nh_mx_duration = mx_histogram(
		"podcheckpoint_checkpoint_duration_seconds",
		"Time spent in each phase of a checkpoint job (kubelet, bundle or encrypt, write, total).",
		"phase", mx_buckets_checkpoint_seconds, mx_nbuckets_checkpoint_seconds);
	nh_mx_bytes = mx_histogram("podcheckpoint_artifact_bytes",
				   "Size of each stored checkpoint artifact in bytes.", NULL,
				   mx_buckets_bytes, mx_nbuckets_bytes);
	nh_mx_queue = mx_gauge("podcheckpoint_helper_queue_depth",
			       "Checkpoint jobs waiting for a free runner thread on this node (at most --max-queued-jobs, plus the idle threads' for a moment).", NULL);
	nh_mx_inflight = mx_gauge("podcheckpoint_helper_jobs_in_flight",
				  "Checkpoint jobs the runner threads are working on (at most --max-parallel-jobs).",
				  NULL);
	nh_mx_kubelet_up = mx_gauge("podcheckpoint_kubelet_reachable",
				    "1 when the kubelet accepted a TCP connection at the last check, else 0.",
				    NULL);
	nh_lease_beat = mx_beat_register("lease-heartbeat", 60000L);
	memset(&ho, 0, sizeof(ho));
	ho.addr = opt->metrics_addr;
	ho.ready = nh_ready;
	ho.arg = m;
	rc = mx_http_start(&ho, &m->http, err, errlen);
	if (rc)
		goto fail;
	if (m->http)
		LOG_INFO("msg=\"serving metrics\" addr=%s port=%d", opt->metrics_addr,
			 mx_http_port(m->http));
	rc = mx_ticker_start(nh_metrics_tick, m, NH_KUBELET_PROBE_S, &m->ticker);
	if (rc) {
		snprintf(err, errlen, "cannot start the kubelet probe: %s", strerror(-rc));
		goto fail;
	}
	*out = m;
	return 0;
fail:
	nh_metrics_stop(m);
	return rc;
}

void nh_metrics_stop(struct nh_metrics *m)
{
	if (!m)
		return;
	mx_http_stop(m->http);
	mx_ticker_stop(m->ticker);
	mx_beat_retire(nh_lease_beat);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void nh_metrics_lease(bool renewed)
{
	atomic_store(&nh_lease_state, renewed ? 1 : 2);
	mx_beat(nh_lease_beat);
}

void nh_metrics_queue(size_t depth)
{
	mx_gauge_set(nh_mx_queue, (double)depth, NULL, 0);
}

void nh_metrics_job_begin(void)
{
	nh_job_t0 = nh_job_lap = mx_now();
	mx_gauge_add(nh_mx_inflight, 1, NULL, 0);
}

void nh_metrics_phase(const char *phase)
{
	double now = mx_now();

	if (phase)
		mx_observe(nh_mx_duration, now - nh_job_lap, MX_LV(phase));
	nh_job_lap = now;
}

void nh_metrics_job_result(bool succeeded, const char *reason, uint64_t artifact_bytes)
{
	mx_counter_add(nh_mx_results, 1,
		       MX_LV(succeeded ? "succeeded" : "failed", succeeded ? "" : reason));
	mx_observe(nh_mx_duration, mx_now() - nh_job_t0, MX_LV("total"));
	if (succeeded)
		mx_observe(nh_mx_bytes, (double)artifact_bytes, NULL, 0);
}

void nh_metrics_job_end(void)
{
	mx_gauge_add(nh_mx_inflight, -1, NULL, 0);
}
