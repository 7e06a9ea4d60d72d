/*
 * mx_tick.c - a thread that runs one function periodically until stopped
 * (see mx_http.h): the probes behind /readyz and gauges that need a request.
 */
#include "mx_http.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct mx_ticker {
	void (*fn)(void *arg);
	void *arg;
	int period_s;
	bool stop; /* under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t th;
};

static void *mx_ticker_main(void *p)
{
	struct mx_ticker *t = p;

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		struct timespec until;

		pthread_mutex_unlock(&t->lock);
		t->fn(t->arg);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += t->period_s;
		pthread_mutex_lock(&t->lock);
		while (!t->stop && pthread_cond_timedwait(&t->cond, &t->lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int mx_ticker_start(void (*fn)(void *arg), void *arg, int period_s, struct mx_ticker **out)
{
	struct mx_ticker *t;
	int rc;

	*out = NULL;
	if (!fn || period_s < 1)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->fn = fn;
	t->arg = arg;
	t->period_s = period_s;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	rc = -pthread_create(&t->th, NULL, mx_ticker_main, t);
	if (rc) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void mx_ticker_stop(struct mx_ticker *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->th, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
