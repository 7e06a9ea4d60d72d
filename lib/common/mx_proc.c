/*
 * mx_proc.c - process_* metrics from /proc/self, build info, and the
 * heartbeats behind /healthz (see mx.h).
 */
#include "mx.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Field n (1-based, as in proc(5)) of /proc/self/stat; 0 when unreadable. */
static double mx_stat_field(int n)
{
	char buf[1024], *p;
	size_t len;
	FILE *f = fopen("/proc/self/stat", "re");
	double v = 0;
	int field = 3;

	if (!f)
		return 0;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	p = strrchr(buf, ')'); /* comm may hold spaces */
	if (!p)
		return 0;
	p++;
	while (*p == ' ')
		p++;
	/* p is at field 3 (state) now */
	while (*p && field < n) {
		while (*p && *p != ' ')
			p++;
		while (*p == ' ')
			p++;
		field++;
	}
	if (*p)
		v = strtod(p, NULL);
	return v;
}

static double mx_rss(void *arg)
{
	(void)arg;
	return mx_stat_field(24) * (double)sysconf(_SC_PAGESIZE);
}

static double mx_vsize(void *arg)
{
	(void)arg;
	return mx_stat_field(23);
}

static double mx_cpu(void *arg)
{
	(void)arg;
	return (mx_stat_field(14) + mx_stat_field(15)) / (double)sysconf(_SC_CLK_TCK);
}

static double mx_start_time(void *arg)
{
	static double start; /* boot time + starttime, computed once */
	FILE *f;
	char line[256];
	double btime = 0;

	(void)arg;
	if (start > 0)
		return start;
	f = fopen("/proc/stat", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "btime ", 6) == 0)
			btime = strtod(line + 6, NULL);
	fclose(f);
	start = btime + mx_stat_field(22) / (double)sysconf(_SC_CLK_TCK);
	return start;
}

static double mx_open_fds(void *arg)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	double n = 0;

	(void)arg;
	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory stream's own fd */
}

static double mx_max_fds(void *arg)
{
	struct rlimit rl;

	(void)arg;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	return (double)rl.rlim_cur;
}

void mx_register_process(const char *component, const char *version)
{
	struct mx_family *bi;

	mx_func(MX_COUNTER, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
		mx_cpu, NULL);
	mx_func(MX_GAUGE, "process_resident_memory_bytes", "Resident memory size in bytes.", mx_rss,
		NULL);
	mx_func(MX_GAUGE, "process_virtual_memory_bytes", "Virtual memory size in bytes.", mx_vsize,
		NULL);
	mx_func(MX_GAUGE, "process_start_time_seconds",
		"Start time of the process since unix epoch in seconds.", mx_start_time, NULL);
	mx_func(MX_GAUGE, "process_open_fds", "Number of open file descriptors.", mx_open_fds, NULL);
	mx_func(MX_GAUGE, "process_max_fds", "Maximum number of open file descriptors.", mx_max_fds,
		NULL);
	(void)mx_start_time(NULL);
	bi = mx_gauge("podcheckpoint_build_info",
		      "Always 1; the labels tell which component and version this is.",
		      "component,version");
	mx_gauge_set(bi, 1, MX_LV(component, version));
}

/* ------------------------------------------------------------ heartbeats */

#define MX_MAX_BEATS 16

struct mx_beat_slot {
	char name[48];
	long max_ms;
	_Atomic long long last_ms; /* 0: retired */
};

static struct mx_beat_slot mx_beats[MX_MAX_BEATS];
static _Atomic int mx_nbeats;

static long long mx_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mx_beat_register(const char *name, long max_silence_ms)
{
	int id = atomic_fetch_add(&mx_nbeats, 1);

	if (id >= MX_MAX_BEATS) {
		atomic_fetch_sub(&mx_nbeats, 1);
		return -ENOSPC;
	}
	snprintf(mx_beats[id].name, sizeof(mx_beats[id].name), "%s", name ? name : "loop");
	mx_beats[id].max_ms = max_silence_ms;
	atomic_store(&mx_beats[id].last_ms, mx_mono_ms());
	return id;
}

void mx_beat(int id)
{
	if (id >= 0 && id < MX_MAX_BEATS)
		atomic_store(&mx_beats[id].last_ms, mx_mono_ms());
}

void mx_beat_retire(int id)
{
	if (id >= 0 && id < MX_MAX_BEATS)
		atomic_store(&mx_beats[id].last_ms, 0);
}

int mx_beats_check(char *why, size_t cap)
{
	int n = atomic_load(&mx_nbeats);
	long long now = mx_mono_ms();

	if (n > MX_MAX_BEATS)
		n = MX_MAX_BEATS;
	for (int i = 0; i < n; i++) {
		long long last = atomic_load(&mx_beats[i].last_ms);

		if (last && now - last > mx_beats[i].max_ms) {
			if (why && cap)
				snprintf(why, cap, "the %s loop has not run for %lld ms (limit %ld ms)",
					 mx_beats[i].name, now - last, mx_beats[i].max_ms);
			return -ETIMEDOUT;
		}
	}
	return 0;
}
