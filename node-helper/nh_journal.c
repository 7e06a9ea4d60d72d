/*
 * nh_journal.c - job records on disk (one JSON file each) and the in-memory
 * summary table. See nh_journal.h.
 */
#include "nh_journal.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dbuf.h"
#include "fsutil.h"
#include "kc.h"
#include "log.h"
#include "nh_util.h"

#define NH_JOURNAL_MAX_FILE (1024u * 1024u)

static const char *const nh_jstate_names[] = {
	[NH_J_ACCEPTED] = "accepted",
	[NH_J_CHECKPOINTING] = "checkpointing",
	[NH_J_BUNDLING] = "bundling",
	[NH_J_DURABLE] = "durable",
	[NH_J_STATUS_WRITTEN] = "status-written",
	[NH_J_DELETING_POD] = "deleting-pod",
	[NH_J_POD_DELETED] = "pod-deleted",
	[NH_J_DONE] = "done",
	[NH_J_FAILED] = "failed",
};

#define NH_NSTATES (sizeof(nh_jstate_names) / sizeof(nh_jstate_names[0]))

const char *nh_jstate_name(enum nh_jstate s)
{
	return (size_t)s < NH_NSTATES ? nh_jstate_names[s] : "unknown";
}

int nh_jstate_parse(const char *s, enum nh_jstate *out)
{
	for (size_t i = 0; s && i < NH_NSTATES; i++) {
		if (strcmp(s, nh_jstate_names[i]) == 0) {
			*out = (enum nh_jstate)i;
			return 0;
		}
	}
	return -EINVAL;
}

static enum ch_state_kind nh_kind(enum nh_jstate s)
{
	switch (s) {
	case NH_J_ACCEPTED:
		return CH_QUEUED;
	case NH_J_DONE:
		return CH_SUCCEEDED;
	case NH_J_FAILED:
		return CH_FAILED;
	default:
		return CH_RUNNING;
	}
}

void nh_record_to_ch_state(const struct nh_record *r, struct ch_state *st)
{
	memset(st, 0, sizeof(*st));
	nh_strlcpy(st->uid, r->job.uid, sizeof(st->uid));
	st->state = nh_kind(r->state);
	if (r->state == NH_J_FAILED)
		nh_strlcpy(st->reason, r->reason, sizeof(st->reason));
	nh_strlcpy(st->message, r->message, sizeof(st->message));
	st->bytes = r->state >= NH_J_DURABLE && r->state != NH_J_FAILED ? r->artifact.size_bytes
									  : r->bytes;
	nh_strlcpy(st->container, r->container, sizeof(st->container));
}

enum nh_resume nh_resume_decide(const struct nh_record *r)
{
	if (r->job.op == CH_OP_DELETE_ARTIFACT)
		return NH_RESUME_NOTHING;
	switch (r->state) {
	case NH_J_ACCEPTED:
	case NH_J_CHECKPOINTING:
	case NH_J_BUNDLING:
		return NH_RESUME_INTERRUPTED;
	case NH_J_DURABLE:
	case NH_J_STATUS_WRITTEN:
	case NH_J_DELETING_POD:
	case NH_J_POD_DELETED:
		return NH_RESUME_CONTINUE;
	case NH_J_DONE:
	case NH_J_FAILED:
	default:
		return NH_RESUME_NOTHING;
	}
}

/* ---------------------------------------------------------------- JSON */

int nh_record_to_json(const struct nh_record *r, json_object **out)
{
	json_object *o = json_object_new_object(), *arr = NULL, *art = NULL;
	int rc = 0;

	*out = NULL;
	if (!o)
		return -ENOMEM;
	NH_ADD(o, "version", json_object_new_int(1));
	NH_ADD(o, "uid", json_object_new_string(r->job.uid));
	NH_ADD(o, "op", json_object_new_string(r->job.op == CH_OP_DELETE_ARTIFACT ? "delete-artifact"
									      : "checkpoint"));
	NH_ADD(o, "namespace", json_object_new_string(r->job.ns));
	NH_ADD(o, "name", json_object_new_string(r->job.name));
	NH_ADD(o, "pod", json_object_new_string(r->job.pod));
	NH_ADD(o, "podUID", json_object_new_string(r->job.pod_uid));
	NH_ADD(o, "node", json_object_new_string(r->job.node));
	arr = json_object_new_array();
	if (!arr) {
		rc = -ENOMEM;
		goto out;
	}
	NH_ADD(o, "containers", arr);
	for (size_t i = 0; i < r->job.ncontainers && i < CH_MAX_CONTAINERS; i++)
		NH_ADDA(arr, json_object_new_string(r->job.containers[i]));
	NH_ADD(o, "timeoutSeconds", json_object_new_int(r->job.timeout_seconds));
	NH_ADD(o, "leaveRunning", json_object_new_boolean(r->job.leave_running));
	NH_ADD(o, "encrypt", json_object_new_boolean(r->job.encrypt));
	NH_ADD(o, "secretName", json_object_new_string(r->job.secret_name));
	NH_ADD(o, "state", json_object_new_string(nh_jstate_name(r->state)));
	NH_ADD(o, "reason", json_object_new_string(r->reason));
	NH_ADD(o, "message", json_object_new_string(r->message));
	NH_ADD(o, "livePodUID", json_object_new_string(r->pod_uid));
	NH_ADD(o, "acceptedTime", json_object_new_string(r->accepted_time));
	NH_ADD(o, "completionTime", json_object_new_string(r->completion_time));
	NH_ADD(o, "podDeleted", json_object_new_boolean(r->pod_deleted));
	NH_ADD(o, "startTime", json_object_new_string(r->start_time));
	NH_ADD(o, "kubeletStarted", json_object_new_int64(r->kubelet_started));
	NH_ADD(o, "container", json_object_new_string(r->container));
	arr = json_object_new_array();
	if (!arr) {
		rc = -ENOMEM;
		goto out;
	}
	NH_ADD(o, "results", arr);
	for (size_t i = 0; i < r->nresults && i < CH_MAX_CONTAINERS; i++) {
		const struct nh_cresult *c = &r->results[i];
		json_object *e = json_object_new_object();
		NH_ADDA(arr, e);
		NH_ADD(e, "name", json_object_new_string(c->name));
		NH_ADD(e, "archive", json_object_new_string(c->archive));
		NH_ADD(e, "checkpointTime", json_object_new_string(c->checkpoint_time));
		NH_ADD(e, "sha256", json_object_new_string(c->sha256));
		NH_ADD(e, "sizeBytes", json_object_new_int64((int64_t)c->size_bytes));
	}
	art = json_object_new_object();
	NH_ADD(o, "artifact", art);
	NH_ADD(art, "path", json_object_new_string(r->artifact.path));
	NH_ADD(art, "sizeBytes", json_object_new_int64((int64_t)r->artifact.size_bytes));
	NH_ADD(art, "sha256", json_object_new_string(r->artifact.sha256));
	NH_ADD(art, "encrypted", json_object_new_boolean(r->artifact.encrypted));
	NH_ADD(art, "recipientFingerprint", json_object_new_string(r->artifact.recipient_fingerprint));
	*out = o;
	o = NULL;
out:
	json_object_put(o);
	return rc;
}

static int nh_get_bool(json_object *o, const char *key, bool *out)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
		return -ENOENT;
	*out = json_object_get_boolean(v);
	return 0;
}

#define COPY(obj, key, field)                                                          \
	do {                                                                           \
		if (nh_json_copy((obj), (key), (field), sizeof(field)) != 0) {          \
			snprintf(err, errlen, "field %s is missing or too long", (key)); \
			rc = -EBADMSG;                                                 \
			goto out;                                                      \
		}                                                                      \
	} while (0)

int nh_record_from_json(json_object *o, struct nh_record *r, char *err, size_t errlen)
{
	json_object *arr = NULL, *art = NULL;
	int rc = 0;
	const char *s;

	memset(r, 0, sizeof(*r));
	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "not a JSON object");
		return -EBADMSG;
	}
	if (kc_json_int64(o, "version", 0, NULL) != 1) {
		snprintf(err, errlen, "unknown journal version");
		return -EBADMSG;
	}
	COPY(o, "uid", r->job.uid);
	s = kc_json_str(o, "op");
	if (s && strcmp(s, "delete-artifact") == 0)
		r->job.op = CH_OP_DELETE_ARTIFACT;
	else if (s && strcmp(s, "checkpoint") == 0)
		r->job.op = CH_OP_CHECKPOINT;
	else {
		snprintf(err, errlen, "field op is missing or unknown");
		rc = -EBADMSG;
		goto out;
	}
	COPY(o, "namespace", r->job.ns);
	COPY(o, "name", r->job.name);
	COPY(o, "pod", r->job.pod);
	COPY(o, "podUID", r->job.pod_uid);
	COPY(o, "node", r->job.node);
	if (!json_object_object_get_ex(o, "containers", &arr) ||
	    !json_object_is_type(arr, json_type_array) ||
	    json_object_array_length(arr) > CH_MAX_CONTAINERS) {
		snprintf(err, errlen, "field containers is missing or too long");
		rc = -EBADMSG;
		goto out;
	}
	r->job.ncontainers = json_object_array_length(arr);
	for (size_t i = 0; i < r->job.ncontainers; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(e, json_type_string) ||
		    nh_strlcpy(r->job.containers[i], json_object_get_string(e),
			       sizeof(r->job.containers[i])) != 0) {
			snprintf(err, errlen, "containers[%zu] is not a valid name", i);
			rc = -EBADMSG;
			goto out;
		}
	}
	r->job.timeout_seconds = (int)kc_json_int64(o, "timeoutSeconds", 0, NULL);
	if (nh_get_bool(o, "leaveRunning", &r->job.leave_running) ||
	    nh_get_bool(o, "encrypt", &r->job.encrypt) ||
	    nh_get_bool(o, "podDeleted", &r->pod_deleted)) {
		snprintf(err, errlen, "a boolean field is missing");
		rc = -EBADMSG;
		goto out;
	}
	COPY(o, "secretName", r->job.secret_name);
	if (nh_jstate_parse(kc_json_str(o, "state"), &r->state) != 0) {
		snprintf(err, errlen, "field state is missing or unknown");
		rc = -EBADMSG;
		goto out;
	}
	COPY(o, "reason", r->reason);
	COPY(o, "message", r->message);
	COPY(o, "livePodUID", r->pod_uid);
	COPY(o, "acceptedTime", r->accepted_time);
	COPY(o, "completionTime", r->completion_time);
	COPY(o, "startTime", r->start_time);
	r->kubelet_started = kc_json_int64(o, "kubeletStarted", 0, NULL);
	COPY(o, "container", r->container);
	if (!json_object_object_get_ex(o, "results", &arr) ||
	    !json_object_is_type(arr, json_type_array) ||
	    json_object_array_length(arr) > CH_MAX_CONTAINERS) {
		snprintf(err, errlen, "field results is missing or too long");
		rc = -EBADMSG;
		goto out;
	}
	r->nresults = json_object_array_length(arr);
	for (size_t i = 0; i < r->nresults; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		struct nh_cresult *c = &r->results[i];
		COPY(e, "name", c->name);
		COPY(e, "archive", c->archive);
		COPY(e, "checkpointTime", c->checkpoint_time);
		COPY(e, "sha256", c->sha256);
		c->size_bytes = (uint64_t)kc_json_int64(e, "sizeBytes", 0, NULL);
	}
	if (!json_object_object_get_ex(o, "artifact", &art) ||
	    !json_object_is_type(art, json_type_object)) {
		snprintf(err, errlen, "field artifact is missing");
		rc = -EBADMSG;
		goto out;
	}
	COPY(art, "path", r->artifact.path);
	COPY(art, "sha256", r->artifact.sha256);
	COPY(art, "recipientFingerprint", r->artifact.recipient_fingerprint);
	r->artifact.size_bytes = (uint64_t)kc_json_int64(art, "sizeBytes", 0, NULL);
	if (nh_get_bool(art, "encrypted", &r->artifact.encrypted)) {
		snprintf(err, errlen, "field artifact.encrypted is missing");
		rc = -EBADMSG;
		goto out;
	}
out:
	return rc;
}

/* ---------------------------------------------------------------- table */

struct nh_jentry {
	char uid[64];
	enum nh_jstate state;
	int64_t done_ms; /* completionTime of a done/failed record, 0 unknown */
	struct ch_state st;
	bool queued;
};

struct nh_journal {
	char dir[4096]; /* <state-dir>/jobs */
	pthread_mutex_t lock;
	struct nh_jentry *v;
	size_t n, cap;
	nh_journal_fault_fn fault;
	void *fault_arg;
};

void nh_journal_set_fault(struct nh_journal *j, nh_journal_fault_fn fn, void *arg)
{
	j->fault = fn;
	j->fault_arg = arg;
}

int nh_journal_path(const char *state_dir, const char *uid, char *buf, size_t cap)
{
	int n;

	if (!nh_safe_segment(uid))
		return -EINVAL;
	n = snprintf(buf, cap, "%s/jobs/%s.json", state_dir, uid);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return 0;
}

static int nh_file_path(const struct nh_journal *j, const char *uid, char *buf, size_t cap)
{
	int n;

	if (!nh_safe_segment(uid))
		return -EINVAL;
	n = snprintf(buf, cap, "%s/%s.json", j->dir, uid);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return 0;
}

/* Caller holds the lock. */
static struct nh_jentry *nh_find(struct nh_journal *j, const char *uid)
{
	for (size_t i = 0; i < j->n; i++)
		if (strcmp(j->v[i].uid, uid) == 0)
			return &j->v[i];
	return NULL;
}

/* Caller holds the lock. */
static int nh_upsert(struct nh_journal *j, const struct nh_record *r)
{
	struct nh_jentry *e = nh_find(j, r->job.uid);

	if (!e) {
		if (j->n == j->cap) {
			size_t ncap = j->cap ? j->cap * 2 : 16;
			struct nh_jentry *nv = realloc(j->v, ncap * sizeof(*nv));
			if (!nv)
				return -ENOMEM;
			j->v = nv;
			j->cap = ncap;
		}
		e = &j->v[j->n++];
		memset(e, 0, sizeof(*e));
		nh_strlcpy(e->uid, r->job.uid, sizeof(e->uid));
	}
	e->state = r->state;
	e->done_ms = 0;
	if ((r->state == NH_J_DONE || r->state == NH_J_FAILED) && r->completion_time[0] &&
	    kc_time_parse(r->completion_time, &e->done_ms) != 0)
		e->done_ms = 0;
	nh_record_to_ch_state(r, &e->st);
	return 0;
}

static int nh_load_file(struct nh_journal *j, const char *path, struct nh_record *r)
{
	char *text = NULL, err[160];
	json_object *obj = NULL;
	int rc;

	rc = fsu_read_file(path, NH_JOURNAL_MAX_FILE, &text, NULL);
	if (rc)
		goto out;
	obj = json_tokener_parse(text);
	if (!obj) {
		rc = -EBADMSG;
		goto out;
	}
	rc = nh_record_from_json(obj, r, err, sizeof(err));
	if (rc) {
		LOG_WARN("msg=\"journal record unreadable\" path=%s err=\"%s\"", path, err);
		goto out;
	}
out:
	(void)j;
	json_object_put(obj);
	free(text);
	return rc;
}

int nh_journal_open(const char *state_dir, struct nh_journal **out)
{
	struct nh_journal *j = NULL;
	struct nh_record *r = NULL;
	DIR *d = NULL;
	struct dirent *de;
	int rc = 0, n;

	*out = NULL;
	j = calloc(1, sizeof(*j));
	r = malloc(sizeof(*r));
	if (!j || !r) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_init(&j->lock, NULL);
	n = snprintf(j->dir, sizeof(j->dir), "%s/jobs", state_dir);
	if (n < 0 || (size_t)n >= sizeof(j->dir)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	rc = fsu_mkdir_p(j->dir, 0700);
	if (rc)
		goto out;
	d = opendir(j->dir);
	if (!d) {
		rc = -errno;
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		char path[4096 + 300], bad[4096 + 310];
		size_t len = strlen(de->d_name);
		if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		n = snprintf(path, sizeof(path), "%s/%s", j->dir, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path))
			continue;
		if (nh_load_file(j, path, r) != 0 ||
		    strncmp(de->d_name, r->job.uid, len - 5) != 0 || strlen(r->job.uid) != len - 5) {
			snprintf(bad, sizeof(bad), "%s.bad", path);
			LOG_WARN("msg=\"journal record skipped\" path=%s moved_to=%s", path, bad);
			rename(path, bad);
			continue;
		}
		rc = nh_upsert(j, r);
		if (rc)
			goto out;
	}
	LOG_INFO("msg=\"journal loaded\" dir=%s jobs=%zu", j->dir, j->n);
	*out = j;
	j = NULL;
out:
	if (d)
		closedir(d);
	free(r);
	nh_journal_free(j);
	return rc;
}

void nh_journal_free(struct nh_journal *j)
{
	if (!j)
		return;
	pthread_mutex_destroy(&j->lock);
	free(j->v);
	free(j);
}

int nh_journal_save(struct nh_journal *j, const struct nh_record *r)
{
	char path[4096 + 80];
	struct dbuf text;
	int rc;

	dbuf_init(&text, NH_JOURNAL_MAX_FILE);
	rc = nh_file_path(j, r->job.uid, path, sizeof(path));
	if (rc)
		goto out;
	if (j->fault) {
		rc = j->fault(j->fault_arg, r);
		if (rc)
			goto out;
	}
	rc = nh_record_to_text(r, &text); /* the JSON of nh_record_to_json, without the tree */
	if (rc)
		goto out;
	rc = fsu_write_atomic(path, text.data, text.len);
	if (rc) {
		LOG_ERROR("msg=\"journal write failed\" pcp=%s/%s uid=%s state=%s err=%d",
			  r->job.ns, r->job.name, r->job.uid, nh_jstate_name(r->state), rc);
		goto out;
	}
	pthread_mutex_lock(&j->lock);
	rc = nh_upsert(j, r);
	pthread_mutex_unlock(&j->lock);
out:
	dbuf_cleanup(&text);
	return rc;
}

int nh_journal_get(struct nh_journal *j, const char *uid, struct nh_record *r)
{
	char path[4096 + 80];
	int rc;

	rc = nh_file_path(j, uid, path, sizeof(path));
	if (rc)
		return rc == -EINVAL ? -ENOENT : rc;
	return nh_load_file(j, path, r);
}

int nh_journal_state(struct nh_journal *j, const char *uid, struct ch_state *st,
		     enum nh_jstate *js)
{
	struct nh_jentry *e;
	int rc = -ENOENT;

	pthread_mutex_lock(&j->lock);
	e = nh_find(j, uid);
	if (e) {
		if (st)
			*st = e->st;
		if (js)
			*js = e->state;
		rc = 0;
	}
	pthread_mutex_unlock(&j->lock);
	return rc;
}

int nh_journal_remove(struct nh_journal *j, const char *uid)
{
	char path[4096 + 80];
	struct nh_jentry *e;
	int rc;

	rc = nh_file_path(j, uid, path, sizeof(path));
	if (rc)
		return rc == -EINVAL ? -ENOENT : rc;
	if (unlink(path) != 0)
		rc = -errno;
	else
		fsu_fsync_dir(j->dir);
	pthread_mutex_lock(&j->lock);
	e = nh_find(j, uid);
	if (e) {
		*e = j->v[--j->n];
		rc = 0;
	}
	pthread_mutex_unlock(&j->lock);
	return rc;
}

void nh_journal_progress(struct nh_journal *j, const char *uid, uint64_t bytes,
			 const char *container)
{
	struct nh_jentry *e;

	pthread_mutex_lock(&j->lock);
	e = nh_find(j, uid);
	if (e) {
		e->st.bytes = bytes;
		nh_strlcpy(e->st.container, container ? container : "", sizeof(e->st.container));
	}
	pthread_mutex_unlock(&j->lock);
}

int nh_journal_set_queued(struct nh_journal *j, const char *uid, bool queued)
{
	struct nh_jentry *e;
	int rc = -ENOENT;

	pthread_mutex_lock(&j->lock);
	e = nh_find(j, uid);
	if (e) {
		e->queued = queued;
		rc = 0;
	}
	pthread_mutex_unlock(&j->lock);
	return rc;
}

bool nh_journal_is_queued(struct nh_journal *j, const char *uid)
{
	struct nh_jentry *e;
	bool q = false;

	pthread_mutex_lock(&j->lock);
	e = nh_find(j, uid);
	if (e)
		q = e->queued;
	pthread_mutex_unlock(&j->lock);
	return q;
}

size_t nh_journal_count(struct nh_journal *j)
{
	size_t n;

	pthread_mutex_lock(&j->lock);
	n = j->n;
	pthread_mutex_unlock(&j->lock);
	return n;
}

int nh_journal_uids(struct nh_journal *j, char (**uids)[64], size_t *n)
{
	char(*v)[64];
	int rc = 0;

	pthread_mutex_lock(&j->lock);
	v = calloc(j->n ? j->n : 1, sizeof(*v));
	if (!v) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < j->n; i++)
		memcpy(v[i], j->v[i].uid, sizeof(v[i]));
	*uids = v;
	*n = j->n;
out:
	pthread_mutex_unlock(&j->lock);
	return rc;
}

size_t nh_journal_prune(struct nh_journal *j, long keep_seconds)
{
	int64_t cutoff = kc_now_ms() - (int64_t)keep_seconds * 1000;
	size_t removed = 0, i = 0;

	if (keep_seconds <= 0)
		return 0;
	pthread_mutex_lock(&j->lock);
	while (i < j->n) {
		struct nh_jentry *e = &j->v[i];
		char path[4096 + 80];

		if ((e->state != NH_J_DONE && e->state != NH_J_FAILED) || e->queued ||
		    e->done_ms <= 0 || e->done_ms > cutoff ||
		    nh_file_path(j, e->uid, path, sizeof(path)) != 0) {
			i++;
			continue;
		}
		if (unlink(path) != 0 && errno != ENOENT) {
			i++;
			continue;
		}
		LOG_INFO("msg=\"journal record pruned\" uid=%s", e->uid);
		j->v[i] = j->v[--j->n];
		removed++;
	}
	pthread_mutex_unlock(&j->lock);
	return removed;
}
