/*
 * nh_sweep.c - the late-archive sweeper (see nh_sweep.h).
 */
#include "nh_sweep.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fsutil.h"
#include "kc.h"
#include "log.h"
#include "nh_util.h"

#define NH_SWEEP_FILE_MAX (1u << 20)

struct nh_sweep_entry {
	char uid[64];
	char prefix[600]; /* checkpoint-<pod>_<ns>-<ctr>- */
	int64_t from_s, to_s, until_s;
};

struct nh_sweep {
	char path[4096]; /* sweeps.json */
	char dir[4096];  /* the kubelet's checkpoints directory */
	long grace_s;
	pthread_mutex_t lock;
	struct nh_sweep_entry e[NH_SWEEP_MAX];
	size_t n;
	pthread_t thread;
	bool started;
	volatile sig_atomic_t stop;
};

int nh_sweep_name_time(const char *name, const char *prefix, int64_t *epoch_s)
{
	size_t pl = strlen(prefix), nl = strlen(name);
	char t[64];
	int64_t ms;

	if (nl <= pl + 4 || strncmp(name, prefix, pl) != 0 || strcmp(name + nl - 4, ".tar") != 0)
		return -EINVAL;
	if (nl - pl - 4 >= sizeof(t))
		return -EINVAL;
	memcpy(t, name + pl, nl - pl - 4);
	t[nl - pl - 4] = '\0';
	if (kc_time_parse(t, &ms) != 0)
		return -EINVAL;
	*epoch_s = ms / 1000;
	return 0;
}

/* Caller holds the lock. */
static int nh_sweep_save(struct nh_sweep *s)
{
	json_object *arr = json_object_new_array();
	const char *text;
	int rc = 0;

	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++) {
		json_object *o = json_object_new_object();

		NH_ADDA(arr, o);
		NH_ADD(o, "uid", json_object_new_string(s->e[i].uid));
		NH_ADD(o, "prefix", json_object_new_string(s->e[i].prefix));
		NH_ADD(o, "from", json_object_new_int64(s->e[i].from_s));
		NH_ADD(o, "to", json_object_new_int64(s->e[i].to_s));
		NH_ADD(o, "until", json_object_new_int64(s->e[i].until_s));
	}
	text = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN);
	rc = text ? fsu_write_atomic(s->path, text, strlen(text)) : -ENOMEM;
out:
	json_object_put(arr);
	return rc;
}

static void nh_sweep_load(struct nh_sweep *s)
{
	char *text = NULL;
	size_t len = 0;
	json_object *arr;

	if (fsu_read_file(s->path, NH_SWEEP_FILE_MAX, &text, &len) != 0)
		return;
	arr = json_tokener_parse(text);
	free(text);
	if (!arr || !json_object_is_type(arr, json_type_array)) {
		LOG_WARN("msg=\"sweep list unreadable; starting empty\" path=%s", s->path);
		json_object_put(arr);
		return;
	}
	for (size_t i = 0; i < json_object_array_length(arr) && s->n < NH_SWEEP_MAX; i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		struct nh_sweep_entry *e = &s->e[s->n];
		const char *uid = kc_json_str(o, "uid"), *prefix = kc_json_str(o, "prefix");

		if (!uid || !prefix || nh_strlcpy(e->uid, uid, sizeof(e->uid)) ||
		    nh_strlcpy(e->prefix, prefix, sizeof(e->prefix)) || strchr(prefix, '/'))
			continue;
		e->from_s = kc_json_int64(o, "from", 0, NULL);
		e->to_s = kc_json_int64(o, "to", 0, NULL);
		e->until_s = kc_json_int64(o, "until", 0, NULL);
		s->n++;
	}
	json_object_put(arr);
}

int nh_sweep_open(const char *state_dir, const char *checkpoints_dir, long grace_seconds,
		  struct nh_sweep **out)
{
	struct nh_sweep *s = calloc(1, sizeof(*s));
	int n1, n2;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	n1 = snprintf(s->path, sizeof(s->path), "%s/sweeps.json", state_dir);
	n2 = snprintf(s->dir, sizeof(s->dir), "%s", checkpoints_dir);
	if (n1 < 0 || (size_t)n1 >= sizeof(s->path) || n2 < 0 || (size_t)n2 >= sizeof(s->dir)) {
		free(s);
		return -ENAMETOOLONG;
	}
	s->grace_s = grace_seconds;
	pthread_mutex_init(&s->lock, NULL);
	nh_sweep_load(s);
	*out = s;
	return 0;
}

int nh_sweep_add(struct nh_sweep *s, const char *uid, const char *ns, const char *pod,
		 const char *container, int64_t from_s, int64_t to_s)
{
	struct nh_sweep_entry *e;
	int rc, n;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	if (s->n == NH_SWEEP_MAX) { /* bounded: the oldest entry goes */
		memmove(&s->e[0], &s->e[1], (NH_SWEEP_MAX - 1) * sizeof(s->e[0]));
		s->n--;
	}
	e = &s->e[s->n];
	memset(e, 0, sizeof(*e));
	nh_strlcpy(e->uid, uid, sizeof(e->uid));
	n = snprintf(e->prefix, sizeof(e->prefix), "checkpoint-%s_%s-%s-", pod, ns, container);
	if (n < 0 || (size_t)n >= sizeof(e->prefix) || strchr(e->prefix, '/')) {
		rc = -EINVAL;
		goto out;
	}
	e->from_s = from_s;
	e->to_s = to_s;
	e->until_s = (int64_t)time(NULL) + s->grace_s;
	s->n++;
	rc = nh_sweep_save(s);
	LOG_INFO("msg=\"watching for a late kubelet archive\" pcp_uid=%s dir=%s prefix=%s from=%lld to=%lld grace_s=%ld rc=%d",
		 uid, s->dir, e->prefix, (long long)from_s, (long long)to_s, s->grace_s, rc);
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int nh_sweep_tick(struct nh_sweep *s, int64_t now_s)
{
	DIR *d = NULL;
	struct dirent *de;
	size_t kept = 0, before;
	int removed = 0;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	if (s->n == 0)
		goto out;
	d = opendir(s->dir);
	while (d && (de = readdir(d)) != NULL) {
		for (size_t i = 0; i < s->n; i++) {
			int64_t t;
			char path[4096 + 256];
			int n;

			if (nh_sweep_name_time(de->d_name, s->e[i].prefix, &t) != 0 ||
			    t < s->e[i].from_s || t > s->e[i].to_s)
				continue;
			n = snprintf(path, sizeof(path), "%s/%s", s->dir, de->d_name);
			if (n < 0 || (size_t)n >= sizeof(path))
				continue;
			if (unlink(path) == 0) {
				removed++;
				LOG_WARN("msg=\"removed a kubelet archive written after the node helper gave up\" pcp_uid=%s path=%s",
					 s->e[i].uid, path);
			} else if (errno != ENOENT) {
				LOG_ERROR("msg=\"cannot remove a late kubelet archive\" pcp_uid=%s path=%s errno=%d",
					  s->e[i].uid, path, errno);
			}
			break;
		}
	}
	if (d)
		closedir(d);
	before = s->n;
	for (size_t i = 0; i < s->n; i++)
		if (s->e[i].until_s > now_s)
			s->e[kept++] = s->e[i];
	s->n = kept;
	if (kept != before)
		nh_sweep_save(s);
out:
	pthread_mutex_unlock(&s->lock);
	return removed;
}

size_t nh_sweep_count(struct nh_sweep *s)
{
	size_t n;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	n = s->n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void *nh_sweep_main(void *arg)
{
	struct nh_sweep *s = arg;

	while (!s->stop) {
		struct timespec ts = { 0, 250 * 1000000L };

		for (int i = 0; i < 4 && !s->stop; i++)
			nanosleep(&ts, NULL);
		nh_sweep_tick(s, (int64_t)time(NULL));
	}
	return NULL;
}

int nh_sweep_start(struct nh_sweep *s)
{
	int rc = -pthread_create(&s->thread, NULL, nh_sweep_main, s);

	if (rc == 0)
		s->started = true;
	return rc;
}

void nh_sweep_free(struct nh_sweep *s)
{
	if (!s)
		return;
	s->stop = 1;
	if (s->started)
		pthread_join(s->thread, NULL);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
