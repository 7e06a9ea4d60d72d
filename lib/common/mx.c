/*
 * mx.c - the metrics registry and its text exposition (see mx.h).
 */
#include "mx.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mx_series {
	char lv[MX_MAX_LABELS][MX_LABEL_MAX];
	double value;                       /* counter, gauge */
	uint64_t buckets[MX_MAX_BUCKETS + 1]; /* histogram: per bucket (not cumulative); last is +Inf */
	double sum;
	uint64_t count;
};

struct mx_family {
	char name[128];
	char help[256];
	enum mx_type type;
	size_t nlabels;
	char labels[MX_MAX_LABELS][MX_LABEL_MAX];
	double bounds[MX_MAX_BUCKETS];
	size_t nbounds;
	double (*fn)(void *arg);
	void *fn_arg;
	pthread_mutex_t lock;
	size_t nseries, cap;
	struct mx_series *series; /* grown (doubling) as label sets first appear, up to MX_MAX_SERIES */
	struct mx_series *over;   /* the overflow series, allocated at the first overflow */
};

static pthread_mutex_t mx_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mx_family *mx_families[MX_MAX_FAMILIES];
static _Atomic size_t mx_nfamilies;
static _Atomic unsigned long mx_errors;

const double mx_buckets_checkpoint_seconds[] = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60,
						 120, 300, 600, 1200, 1800, 3600 };
const size_t mx_nbuckets_checkpoint_seconds =
	sizeof(mx_buckets_checkpoint_seconds) / sizeof(mx_buckets_checkpoint_seconds[0]);
const double mx_buckets_request_seconds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
					      1, 2.5, 5, 10, 30, 60 };
const size_t mx_nbuckets_request_seconds =
	sizeof(mx_buckets_request_seconds) / sizeof(mx_buckets_request_seconds[0]);
#define MIB (1024.0 * 1024.0)
const double mx_buckets_bytes[] = { MIB, 4 * MIB, 16 * MIB, 64 * MIB, 256 * MIB, 1024 * MIB,
				    4096 * MIB, 16384 * MIB, 65536 * MIB };
const size_t mx_nbuckets_bytes = sizeof(mx_buckets_bytes) / sizeof(mx_buckets_bytes[0]);

double mx_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool mx_name_ok(const char *s, bool colon)
{
	if (!s || !s[0])
		return false;
	for (size_t i = 0; s[i]; i++) {
		char ch = s[i];
		bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
			     (colon && ch == ':');

		if (!alpha && !(i > 0 && ch >= '0' && ch <= '9'))
			return false;
	}
	return true;
}

/* Caller holds mx_reg_lock. */
static struct mx_family *mx_find(const char *name)
{
	size_t n = atomic_load(&mx_nfamilies);

	for (size_t i = 0; i < n; i++)
		if (strcmp(mx_families[i]->name, name) == 0)
			return mx_families[i];
	return NULL;
}

static int mx_split_labels(struct mx_family *f, const char *labels)
{
	const char *p = labels;

	f->nlabels = 0;
	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (f->nlabels == MX_MAX_LABELS || n == 0 || n >= MX_LABEL_MAX)
			return -EINVAL;
		memcpy(f->labels[f->nlabels], p, n);
		f->labels[f->nlabels][n] = '\0';
		if (!mx_name_ok(f->labels[f->nlabels], false) || strcmp(f->labels[f->nlabels], "le") == 0)
			return -EINVAL;
		f->nlabels++;
		p = comma ? comma + 1 : p + n;
	}
	return 0;
}

static struct mx_family *mx_register(enum mx_type type, const char *name, const char *help,
				     const char *labels, const double *bounds, size_t nbounds,
				     double (*fn)(void *), void *arg)
{
	struct mx_family *f = NULL, *have;

	if (!mx_name_ok(name, true) || strlen(name) >= sizeof(f->name) || nbounds > MX_MAX_BUCKETS)
		return NULL;
	for (size_t i = 1; i < nbounds; i++)
		if (!(bounds[i] > bounds[i - 1]))
			return NULL;
	pthread_mutex_lock(&mx_reg_lock);
	have = mx_find(name);
	if (have) {
		f = have->type == type ? have : NULL;
		goto out;
	}
	if (atomic_load(&mx_nfamilies) == MX_MAX_FAMILIES)
		goto out;
	f = calloc(1, sizeof(*f));
	if (!f)
		goto out;
	snprintf(f->name, sizeof(f->name), "%s", name);
	snprintf(f->help, sizeof(f->help), "%s", help ? help : "");
	f->type = type;
	f->fn = fn;
	f->fn_arg = arg;
	if (nbounds)
		memcpy(f->bounds, bounds, nbounds * sizeof(*bounds));
	f->nbounds = nbounds;
	if (mx_split_labels(f, labels) != 0 || pthread_mutex_init(&f->lock, NULL) != 0) {
		free(f);
		f = NULL;
		goto out;
	}
	mx_families[atomic_load(&mx_nfamilies)] = f;
	atomic_fetch_add(&mx_nfamilies, 1);
out:
	pthread_mutex_unlock(&mx_reg_lock);
	return f;
}

struct mx_family *mx_counter(const char *name, const char *help, const char *labels)
{
	return mx_register(MX_COUNTER, name, help, labels, NULL, 0, NULL, NULL);
}

struct mx_family *mx_gauge(const char *name, const char *help, const char *labels)
{
	return mx_register(MX_GAUGE, name, help, labels, NULL, 0, NULL, NULL);
}

struct mx_family *mx_histogram(const char *name, const char *help, const char *labels,
			       const double *bounds, size_t nbounds)
{
	if (!bounds || nbounds == 0)
		return NULL;
	return mx_register(MX_HISTOGRAM, name, help, labels, bounds, nbounds, NULL, NULL);
}

struct mx_family *mx_func(enum mx_type type, const char *name, const char *help,
			  double (*fn)(void *arg), void *arg)
{
	if (!fn || type == MX_HISTOGRAM)
		return NULL;
	return mx_register(type, name, help, NULL, NULL, 0, fn, arg);
}

/* Room for one more series (caller holds f->lock). 0 or -ENOMEM. */
static int mx_series_grow(struct mx_family *f)
{
	size_t cap = f->cap ? f->cap * 2 : 1;
	struct mx_series *n;

	if (cap > MX_MAX_SERIES)
		cap = MX_MAX_SERIES;
	n = realloc(f->series, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	f->series = n;
	f->cap = cap;
	return 0;
}

/*
 * Caller holds f->lock. NULL when the label count is wrong, the family is
 * read by a function, or a new series finds no memory (counted as errors).
 */
static struct mx_series *mx_series_get(struct mx_family *f, const char *const *lv, size_t nlv)
{
	char cut[MX_MAX_LABELS][MX_LABEL_MAX];
	struct mx_series *s;

	if (nlv != f->nlabels || f->fn) {
		atomic_fetch_add(&mx_errors, 1);
		return NULL;
	}
	for (size_t j = 0; j < nlv; j++)
		snprintf(cut[j], sizeof(cut[j]), "%s", lv[j] ? lv[j] : "");
	for (size_t i = 0; i < f->nseries; i++) {
		size_t j = 0;

		while (j < nlv && strcmp(f->series[i].lv[j], cut[j]) == 0)
			j++;
		if (j == nlv)
			return &f->series[i];
	}
	if (f->nseries < MX_MAX_SERIES) {
		if (f->nseries == f->cap && mx_series_grow(f) != 0) {
			atomic_fetch_add(&mx_errors, 1);
			return NULL;
		}
		s = &f->series[f->nseries++];
		memset(s, 0, sizeof(*s));
		memcpy(s->lv, cut, sizeof(cut));
		return s;
	}
	if (!f->over) { /* overflow: all label values "other" */
		f->over = calloc(1, sizeof(*f->over));
		if (!f->over) {
			atomic_fetch_add(&mx_errors, 1);
			return NULL;
		}
		for (size_t j = 0; j < nlv; j++)
			snprintf(f->over->lv[j], sizeof(f->over->lv[j]), "other");
	}
	return f->over;
}

static void mx_update(struct mx_family *f, enum mx_type want, int op, double v,
		      const char *const *lv, size_t nlv)
{
	struct mx_series *s;

	if (!f)
		return;
	if (f->type != want || f->fn || isnan(v) || (want == MX_COUNTER && v < 0)) {
		atomic_fetch_add(&mx_errors, 1);
		return;
	}
	pthread_mutex_lock(&f->lock);
	s = mx_series_get(f, lv, nlv);
	if (!s)
		goto out;
	if (want == MX_HISTOGRAM) {
		size_t b = 0;

		while (b < f->nbounds && v > f->bounds[b])
			b++;
		s->buckets[b]++;
		s->sum += v;
		s->count++;
	} else if (op == 1) {
		s->value = v;
	} else {
		s->value += v;
	}
out:
	pthread_mutex_unlock(&f->lock);
}

void mx_counter_add(struct mx_family *f, double v, const char *const *lv, size_t nlv)
{
	mx_update(f, MX_COUNTER, 0, v, lv, nlv);
}

void mx_gauge_set(struct mx_family *f, double v, const char *const *lv, size_t nlv)
{
	mx_update(f, MX_GAUGE, 1, v, lv, nlv);
}

void mx_gauge_add(struct mx_family *f, double v, const char *const *lv, size_t nlv)
{
	mx_update(f, MX_GAUGE, 0, v, lv, nlv);
}

void mx_observe(struct mx_family *f, double v, const char *const *lv, size_t nlv)
{
	mx_update(f, MX_HISTOGRAM, 0, v, lv, nlv);
}

double mx_value(struct mx_family *f, const char *const *lv, size_t nlv)
{
	struct mx_series *s;
	double v = 0;

	if (!f)
		return 0;
	if (f->fn)
		return f->fn(f->fn_arg);
	pthread_mutex_lock(&f->lock);
	s = mx_series_get(f, lv, nlv);
	if (s)
		v = s->value;
	pthread_mutex_unlock(&f->lock);
	return v;
}

uint64_t mx_hist_count(struct mx_family *f, const char *const *lv, size_t nlv)
{
	struct mx_series *s;
	uint64_t n = 0;

	if (!f || f->type != MX_HISTOGRAM)
		return 0;
	pthread_mutex_lock(&f->lock);
	s = mx_series_get(f, lv, nlv);
	if (s)
		n = s->count;
	pthread_mutex_unlock(&f->lock);
	return n;
}

size_t mx_family_bytes(struct mx_family *f)
{
	size_t n;

	if (!f)
		return 0;
	pthread_mutex_lock(&f->lock);
	n = sizeof(*f) + f->cap * sizeof(*f->series) + (f->over ? sizeof(*f->over) : 0);
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* ------------------------------------------------------------ exposition */

/* A float the way Prometheus writes one: shortest form that reads back, +Inf, NaN. */
static void mx_fmt_float(char *buf, size_t cap, double v)
{
	if (isnan(v)) {
		snprintf(buf, cap, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (int prec = 6; prec <= 17; prec++) {
		snprintf(buf, cap, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/* Escapes \ and newline (HELP), and " too (label values). */
static int mx_escape(struct dbuf *out, const char *s, bool quote)
{
	int rc = 0;

	for (; *s && !rc; s++) {
		if (*s == '\\')
			rc = dbuf_adds(out, "\\\\");
		else if (*s == '\n')
			rc = dbuf_adds(out, "\\n");
		else if (quote && *s == '"')
			rc = dbuf_adds(out, "\\\"");
		else
			rc = dbuf_add(out, s, 1);
	}
	return rc;
}

/* {a="x",b="y"[,le="..."]} or nothing. */
static int mx_labels(struct dbuf *out, const struct mx_family *f, const struct mx_series *s,
		     const char *le)
{
	int rc = 0;

	if (f->nlabels == 0 && !le)
		return 0;
	rc = dbuf_adds(out, "{");
	for (size_t j = 0; j < f->nlabels && !rc; j++) {
		rc = dbuf_printf(out, "%s%s=\"", j ? "," : "", f->labels[j]);
		if (!rc)
			rc = mx_escape(out, s->lv[j], true);
		if (!rc)
			rc = dbuf_adds(out, "\"");
	}
	if (!rc && le)
		rc = dbuf_printf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
	if (!rc)
		rc = dbuf_adds(out, "}");
	return rc;
}

static int mx_render_series(struct dbuf *out, const struct mx_family *f, const struct mx_series *s)
{
	char num[40], le[40];
	uint64_t cum = 0;
	int rc;

	if (f->type != MX_HISTOGRAM) {
		mx_fmt_float(num, sizeof(num), s->value);
		rc = dbuf_adds(out, f->name);
		if (!rc)
			rc = mx_labels(out, f, s, NULL);
		return rc ? rc : dbuf_printf(out, " %s\n", num);
	}
	for (size_t b = 0; b <= f->nbounds; b++) {
		cum += s->buckets[b];
		if (b < f->nbounds)
			mx_fmt_float(le, sizeof(le), f->bounds[b]);
		else
			snprintf(le, sizeof(le), "+Inf");
		rc = dbuf_printf(out, "%s_bucket", f->name);
		if (!rc)
			rc = mx_labels(out, f, s, le);
		if (!rc)
			rc = dbuf_printf(out, " %llu\n", (unsigned long long)cum);
		if (rc)
			return rc;
	}
	mx_fmt_float(num, sizeof(num), s->sum);
	rc = dbuf_printf(out, "%s_sum", f->name);
	if (!rc)
		rc = mx_labels(out, f, s, NULL);
	if (!rc)
		rc = dbuf_printf(out, " %s\n%s_count", num, f->name);
	if (!rc)
		rc = mx_labels(out, f, s, NULL);
	if (!rc)
		rc = dbuf_printf(out, " %llu\n", (unsigned long long)s->count);
	return rc;
}

static int mx_render_family(struct dbuf *out, struct mx_family *f)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };
	struct mx_series *copy = NULL;
	size_t n;
	int rc;

	rc = dbuf_printf(out, "# HELP %s ", f->name);
	if (!rc)
		rc = mx_escape(out, f->help, false);
	if (!rc)
		rc = dbuf_printf(out, "\n# TYPE %s %s\n", f->name, types[f->type]);
	if (rc)
		return rc;
	if (f->fn) {
		struct mx_series one;

		memset(&one, 0, sizeof(one));
		one.value = f->fn(f->fn_arg);
		return mx_render_series(out, f, &one);
	}
	/* Copy under the lock, format without it: an update never waits on a scrape's output. */
	pthread_mutex_lock(&f->lock);
	n = f->nseries;
	copy = malloc((n + 1) * sizeof(*copy));
	if (copy) {
		if (n)
			memcpy(copy, f->series, n * sizeof(*copy));
		if (f->over)
			copy[n++] = *f->over;
	}
	pthread_mutex_unlock(&f->lock);
	if (!copy)
		return -ENOMEM;
	if (n == 0 && f->nlabels == 0) {
		/* A family without labels always shows its one series, at zero. */
		memset(copy, 0, sizeof(*copy));
		n = 1;
	}
	for (size_t i = 0; i < n && !rc; i++)
		rc = mx_render_series(out, f, &copy[i]);
	free(copy);
	return rc;
}

static struct mx_family *mx_errs;
static pthread_once_t mx_errs_once = PTHREAD_ONCE_INIT;

static void mx_errs_init(void)
{
	mx_errs = mx_counter("podcheckpoint_metrics_errors_total",
			     "Metric updates that were ignored (wrong label count or type, NaN, negative counter increment).",
			     NULL);
}

int mx_render(struct dbuf *out)
{
	struct mx_family *errs;
	size_t n;
	int rc = 0;

	pthread_once(&mx_errs_once, mx_errs_init);
	errs = mx_errs;
	if (errs) {
		struct mx_series *s;

		pthread_mutex_lock(&errs->lock);
		s = mx_series_get(errs, NULL, 0);
		if (s)
			s->value = (double)atomic_load(&mx_errors);
		pthread_mutex_unlock(&errs->lock);
	}
	n = atomic_load(&mx_nfamilies);
	for (size_t i = 0; i < n && !rc; i++)
		rc = mx_render_family(out, mx_families[i]);
	return rc;
}
