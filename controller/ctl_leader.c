/*
 * ctl_leader.c - leader election loop (see ctl_leader.h).
 */
#include "ctl_leader.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "ctl_metrics.h"
#include "log.h"

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps up to ms, waking early when *stop is set. */
static void nap(long ms, volatile sig_atomic_t *stop)
{
	while (ms > 0 && !*stop) {
		long step = ms < 100 ? ms : 100;
		struct timespec ts = { 0, step * 1000000L };

		nanosleep(&ts, NULL);
		ms -= step;
	}
}

int ctl_leader_run(const struct ctl_leader_opts *lo, volatile sig_atomic_t *stop)
{
	struct kc_client *c = NULL;
	bool leading = false;
	int64_t last_renew = 0;
	int rc;

	rc = kc_client_new(lo->cfg, &c);
	if (rc)
		return rc;
	kc_client_set_timeout(c, 5000);
	kc_client_set_user_agent(c, "podcheckpoint-controller/leader");
	LOG_INFO("msg=\"leader election started\" lease=%s/%s identity=%s", lo->ns,
		 CTL_LEADER_LEASE_NAME, lo->identity);
	while (!*stop) {
		struct kc_status st;
		bool leader = false;

		kc_status_clear(&st);
		rc = kc_lease_try_acquire(c, lo->ns, CTL_LEADER_LEASE_NAME, lo->identity,
					  CTL_LEADER_DURATION_S, &leader, &st);
		if (rc == 0 && leader) {
			last_renew = mono_ms();
			if (!leading) {
				LOG_INFO("msg=\"became leader\" lease=%s/%s identity=%s", lo->ns,
					 CTL_LEADER_LEASE_NAME, lo->identity);
				leading = true;
				lo->on_start(lo->arg);
			}
		} else if (leading &&
			   (rc == 0 || mono_ms() - last_renew >= CTL_LEADER_RENEW_DEADLINE_MS)) {
			LOG_WARN("msg=\"lost leadership, stopping work\" lease=%s/%s identity=%s rc=%d error=\"%s\"",
				 lo->ns, CTL_LEADER_LEASE_NAME, lo->identity, rc, st.message);
			leading = false;
			lo->on_stop(lo->arg);
		} else if (rc) {
			LOG_WARN("msg=\"leader lease not renewed\" lease=%s/%s http=%ld error=\"%s\"",
				 lo->ns, CTL_LEADER_LEASE_NAME, st.http, st.message);
		}
		ctl_metrics_set_leading(lo->metrics, leading);
		ctl_metrics_beat(lo->metrics);
		nap(CTL_LEADER_RETRY_MS, stop);
	}
	if (leading) {
		struct kc_status st;

		lo->on_stop(lo->arg);
		/* Hand over at once rather than after the lease expires. */
		rc = kc_lease_release(c, lo->ns, CTL_LEADER_LEASE_NAME, lo->identity, &st);
		if (rc == 0)
			LOG_INFO("msg=\"released leadership\" lease=%s/%s identity=%s", lo->ns,
				 CTL_LEADER_LEASE_NAME, lo->identity);
		else
			LOG_WARN("msg=\"could not release the leader lease\" lease=%s/%s rc=%d http=%ld error=\"%s\"",
				 lo->ns, CTL_LEADER_LEASE_NAME, rc, st.http, st.message);
	}
	kc_client_free(c);
	return 0;
}
