/*
 * nh_jtext.c - a journal record's file text, written directly: the same
 * JSON document nh_record_to_json builds as a json-c tree (same keys, same
 * values, same order), without the tree. A job writes its record at every
 * step (9 times for a one-container job), and building and printing the
 * tree was a fifth of the helper's CPU per job (bench_helper). Reading
 * stays json-c (nh_record_from_json); test_nh_journal checks both texts
 * parse to equal objects.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "dbuf.h"
#include "nh_journal.h"

/* "key": with its leading comma unless first; *rc keeps the first error. */
static void jt_key(struct dbuf *b, int *rc, const char *key, bool first)
{
	if (*rc)
		return;
	if (!first && (*rc = dbuf_add(b, ",", 1)) != 0)
		return;
	if ((*rc = dbuf_add(b, "\"", 1)) == 0 && (*rc = dbuf_adds(b, key)) == 0)
		*rc = dbuf_add(b, "\":", 2);
}

/* A JSON string as json-c prints it with JSON_C_TO_STRING_NOSLASHESCAPE:
 * '"' and '\\' escaped, \b \f \n \r \t, other bytes below 0x20 as \u00XX,
 * everything else (UTF-8 included) as is. */
static void jt_str(struct dbuf *b, int *rc, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;

	if (*rc || (*rc = dbuf_add(b, "\"", 1)) != 0)
		return;
	for (const char *p = s;; p++) {
		unsigned char c = (unsigned char)*p;
		char esc[6];
		size_t n = 0;

		if (c != 0 && c >= 0x20 && c != '"' && c != '\\')
			continue;
		if (p > run && (*rc = dbuf_add(b, run, (size_t)(p - run))) != 0)
			return;
		if (c == 0)
			break;
		esc[n++] = '\\';
		switch (c) {
		case '"': esc[n++] = '"'; break;
		case '\\': esc[n++] = '\\'; break;
		case '\b': esc[n++] = 'b'; break;
		case '\f': esc[n++] = 'f'; break;
		case '\n': esc[n++] = 'n'; break;
		case '\r': esc[n++] = 'r'; break;
		case '\t': esc[n++] = 't'; break;
		default:
			esc[n++] = 'u';
			esc[n++] = '0';
			esc[n++] = '0';
			esc[n++] = hex[c >> 4];
			esc[n++] = hex[c & 0x0f];
			break;
		}
		if ((*rc = dbuf_add(b, esc, n)) != 0)
			return;
		run = p + 1;
	}
	*rc = dbuf_add(b, "\"", 1);
}

static void jt_kstr(struct dbuf *b, int *rc, const char *key, const char *v)
{
	jt_key(b, rc, key, false);
	jt_str(b, rc, v);
}

static void jt_kint(struct dbuf *b, int *rc, const char *key, int64_t v)
{
	jt_key(b, rc, key, false);
	if (!*rc)
		*rc = dbuf_printf(b, "%" PRId64, v);
}

static void jt_kbool(struct dbuf *b, int *rc, const char *key, bool v)
{
	jt_key(b, rc, key, false);
	if (!*rc)
		*rc = dbuf_adds(b, v ? "true" : "false");
}

static void jt_raw(struct dbuf *b, int *rc, const char *s)
{
	if (!*rc)
		*rc = dbuf_adds(b, s);
}

int nh_record_to_text(const struct nh_record *r, struct dbuf *b)
{
	int rc = 0;

	jt_raw(b, &rc, "{");
	jt_key(b, &rc, "version", true);
	jt_raw(b, &rc, "1");
	jt_kstr(b, &rc, "uid", r->job.uid);
	jt_kstr(b, &rc, "op", r->job.op == CH_OP_DELETE_ARTIFACT ? "delete-artifact" : "checkpoint");
	jt_kstr(b, &rc, "namespace", r->job.ns);
	jt_kstr(b, &rc, "name", r->job.name);
	jt_kstr(b, &rc, "pod", r->job.pod);
	jt_kstr(b, &rc, "podUID", r->job.pod_uid);
	jt_kstr(b, &rc, "node", r->job.node);
	jt_key(b, &rc, "containers", false);
	jt_raw(b, &rc, "[");
	for (size_t i = 0; i < r->job.ncontainers && i < CH_MAX_CONTAINERS; i++) {
		if (i)
			jt_raw(b, &rc, ",");
		jt_str(b, &rc, r->job.containers[i]);
	}
	jt_raw(b, &rc, "]");
	jt_kint(b, &rc, "timeoutSeconds", r->job.timeout_seconds);
	jt_kbool(b, &rc, "leaveRunning", r->job.leave_running);
	jt_kbool(b, &rc, "encrypt", r->job.encrypt);
	jt_kstr(b, &rc, "secretName", r->job.secret_name);
	jt_kstr(b, &rc, "state", nh_jstate_name(r->state));
	jt_kstr(b, &rc, "reason", r->reason);
	jt_kstr(b, &rc, "message", r->message);
	jt_kstr(b, &rc, "livePodUID", r->pod_uid);
	jt_kstr(b, &rc, "acceptedTime", r->accepted_time);
	jt_kstr(b, &rc, "completionTime", r->completion_time);
	jt_kbool(b, &rc, "podDeleted", r->pod_deleted);
	jt_kstr(b, &rc, "startTime", r->start_time);
	jt_kint(b, &rc, "kubeletStarted", r->kubelet_started);
	jt_kstr(b, &rc, "container", r->container);
	jt_kbool(b, &rc, "finalWritten", r->final_written);
	jt_key(b, &rc, "results", false);
	jt_raw(b, &rc, "[");
	for (size_t i = 0; i < r->nresults && i < CH_MAX_CONTAINERS; i++) {
		const struct nh_cresult *c = &r->results[i];

		jt_raw(b, &rc, i ? ",{" : "{");
		jt_key(b, &rc, "name", true);
		jt_str(b, &rc, c->name);
		jt_kstr(b, &rc, "archive", c->archive);
		jt_kstr(b, &rc, "checkpointTime", c->checkpoint_time);
		jt_kstr(b, &rc, "sha256", c->sha256);
		jt_kint(b, &rc, "sizeBytes", (int64_t)c->size_bytes);
		jt_raw(b, &rc, "}");
	}
	jt_raw(b, &rc, "]");
	jt_key(b, &rc, "artifact", false);
	jt_raw(b, &rc, "{");
	jt_key(b, &rc, "path", true);
	jt_str(b, &rc, r->artifact.path);
	jt_kint(b, &rc, "sizeBytes", (int64_t)r->artifact.size_bytes);
	jt_kstr(b, &rc, "sha256", r->artifact.sha256);
	jt_kbool(b, &rc, "encrypted", r->artifact.encrypted);
	jt_kstr(b, &rc, "recipientFingerprint", r->artifact.recipient_fingerprint);
	jt_raw(b, &rc, "}}");
	return rc;
}
