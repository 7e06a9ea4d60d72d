/*
 * kc_metrics.c - what the client tells /metrics and /readyz: API requests by
 * verb and code, their latency, watch restarts and relists, and when the API
 * server last answered (see kc.h, kc_api_check).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kc_internal.h"
#include "mx.h"

static struct mx_family *kc_mx_requests, *kc_mx_latency, *kc_mx_restarts, *kc_mx_relists;
static pthread_once_t kc_mx_once = PTHREAD_ONCE_INIT;
static _Atomic long long kc_last_ok_ms, kc_last_fail_ms;
static char kc_last_err[200];
static pthread_mutex_t kc_err_lock = PTHREAD_MUTEX_INITIALIZER;

static long long kc_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void kc_mx_init(void)
{
	kc_mx_requests = mx_counter("podcheckpoint_api_requests_total",
				    "Requests to the Kubernetes API server by verb and HTTP code (code \"error\": no answer).",
				    "verb,code");
	kc_mx_latency = mx_histogram("podcheckpoint_api_request_duration_seconds",
				     "Latency of Kubernetes API requests (watches excluded) by verb.", "verb",
				     mx_buckets_request_seconds, mx_nbuckets_request_seconds);
	kc_mx_restarts = mx_counter("podcheckpoint_watch_restarts_total",
				    "Watches that ended and were started again, by resource.", "resource");
	kc_mx_relists = mx_counter("podcheckpoint_relists_total",
				   "Full lists of a watched resource (start, 410 Gone, resync, recovery), by resource.",
				   "resource");
}

void kc_metrics_register(void)
{
	pthread_once(&kc_mx_once, kc_mx_init);
}

void kc_metrics_request(const char *verb, long http, bool answered, double seconds,
			const char *transport_error)
{
	char code[16];
	bool stream = strcmp(verb, "WATCH") == 0;

	kc_metrics_register();
	if (answered)
		snprintf(code, sizeof(code), "%ld", http);
	else
		snprintf(code, sizeof(code), "error");
	mx_counter_add(kc_mx_requests, 1, MX_LV(verb, code));
	if (!stream && answered)
		mx_observe(kc_mx_latency, seconds, MX_LV(verb));
	/* A 503 from the API server is as good as no answer for readiness. */
	if (answered && http != 503) {
		atomic_store(&kc_last_ok_ms, kc_mono_ms());
	} else {
		pthread_mutex_lock(&kc_err_lock);
		snprintf(kc_last_err, sizeof(kc_last_err), "%s",
			 transport_error && transport_error[0] ? transport_error : "HTTP 503");
		pthread_mutex_unlock(&kc_err_lock);
		atomic_store(&kc_last_fail_ms, kc_mono_ms());
	}
}

void kc_metrics_watch_restart(const char *resource)
{
	kc_metrics_register();
	mx_counter_add(kc_mx_restarts, 1, MX_LV(resource));
}

void kc_metrics_relist(const char *resource)
{
	kc_metrics_register();
	mx_counter_add(kc_mx_relists, 1, MX_LV(resource));
}

int kc_api_check(long max_age_ms, char *why, size_t cap)
{
	long long ok = atomic_load(&kc_last_ok_ms), fail = atomic_load(&kc_last_fail_ms);
	long long now = kc_mono_ms();

	if (ok == 0 && fail == 0) {
		snprintf(why, cap, "no request to the API server has been made yet");
		return -EAGAIN;
	}
	if (fail > ok) {
		pthread_mutex_lock(&kc_err_lock);
		snprintf(why, cap, "the last request to the API server got no answer (%s)", kc_last_err);
		pthread_mutex_unlock(&kc_err_lock);
		return -EHOSTUNREACH;
	}
	if (max_age_ms > 0 && now - ok > max_age_ms) {
		snprintf(why, cap, "the API server has not answered for %lld ms", now - ok);
		return -ETIMEDOUT;
	}
	return 0;
}
