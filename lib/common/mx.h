/*
 * mx.h - the process's metrics registry, heartbeats, and Prometheus text
 * exposition (format 0.0.4). See docs/metrics.md.
 *
 * One registry per process (global): families are registered once (a second
 * registration of the same name returns the first family, so a library may
 * register its own on first use) and live until exit; callers keep the
 * returned pointer, borrowed, never freed. Every function is thread-safe.
 *
 * Cost: an update locks only its own family's mutex, finds its series among
 * at most MX_MAX_SERIES by comparing label values, and adds. No allocation
 * after a series' first use; a family holds room for the series it has seen
 * (doubling), not for MX_MAX_SERIES. Cardinality is bounded: past MX_MAX_SERIES
 * distinct label sets, updates land in one overflow series whose label values
 * are all "other". Label values are cut at MX_LABEL_MAX - 1 bytes.
 *
 * Label values are passed as an array and its length; MX_LV("a", "b") writes
 * both: mx_counter_add(f, 1, MX_LV("succeeded", "")). A family without labels
 * takes NULL, 0. An update whose count differs from the family's labels is
 * ignored (and counted in podcheckpoint_metrics_errors_total).
 */
#ifndef PCP_MX_H
#define PCP_MX_H

#include <stddef.h>
#include <stdint.h>

#include "dbuf.h"

#define MX_MAX_FAMILIES 64
#define MX_MAX_LABELS 3
#define MX_MAX_SERIES 64
#define MX_MAX_BUCKETS 24
#define MX_LABEL_MAX 64

#define MX_LV(...)                                  \
	((const char *const[]){ __VA_ARGS__ }),     \
		(sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *))

enum mx_type { MX_COUNTER, MX_GAUGE, MX_HISTOGRAM };

struct mx_family;

/*
 * Registers a family. name: [a-zA-Z_:][a-zA-Z0-9_:]*; help: one line;
 * labels: comma-separated label names ("result,reason") or NULL. Returns the
 * family, or NULL on a bad name, too many labels or families, or no memory
 * (updates on NULL are no-ops, so instrumentation never fails a caller).
 */
struct mx_family *mx_counter(const char *name, const char *help, const char *labels);
struct mx_family *mx_gauge(const char *name, const char *help, const char *labels);
/* bounds: strictly increasing upper bounds, at most MX_MAX_BUCKETS (+Inf is added). */
struct mx_family *mx_histogram(const char *name, const char *help, const char *labels,
			       const double *bounds, size_t nbounds);
/*
 * A family without labels whose value is read at scrape time from fn(arg)
 * (called from the scraping thread: fn must be thread-safe and quick).
 * type is MX_COUNTER or MX_GAUGE.
 */
struct mx_family *mx_func(enum mx_type type, const char *name, const char *help,
			  double (*fn)(void *arg), void *arg);

void mx_counter_add(struct mx_family *f, double v, const char *const *lv, size_t nlv);
void mx_gauge_set(struct mx_family *f, double v, const char *const *lv, size_t nlv);
void mx_gauge_add(struct mx_family *f, double v, const char *const *lv, size_t nlv);
void mx_observe(struct mx_family *f, double v, const char *const *lv, size_t nlv);

/* The current value of a counter or gauge series (0 when absent); for tests. */
double mx_value(struct mx_family *f, const char *const *lv, size_t nlv);
/* Observations so far in a histogram series; for tests. */
uint64_t mx_hist_count(struct mx_family *f, const char *const *lv, size_t nlv);

/* Bytes the family holds (its struct and series); for tests. */
size_t mx_family_bytes(struct mx_family *f);

/* Appends every family in registration order. 0, -ENOMEM or -EMSGSIZE. */
int mx_render(struct dbuf *out);

/* Common bucket sets (seconds: 0.1 s .. 1 h; bytes: 1 MiB .. 64 GiB). */
extern const double mx_buckets_checkpoint_seconds[];
extern const size_t mx_nbuckets_checkpoint_seconds;
extern const double mx_buckets_request_seconds[];
extern const size_t mx_nbuckets_request_seconds;
extern const double mx_buckets_bytes[];
extern const size_t mx_nbuckets_bytes;

/* Monotonic clock in seconds, for durations. */
double mx_now(void);

/*
 * process_* metrics from /proc/self (resident and virtual memory, CPU
 * seconds, start time, open and max fds) and
 * podcheckpoint_build_info{component,version} 1. Call once at start.
 */
void mx_register_process(const char *component, const char *version);

/*
 * Heartbeats for /healthz: a loop that must stay alive registers a beat with
 * the longest silence it may keep, then calls mx_beat in every turn.
 * mx_beat_register returns an id >= 0 or -ENOSPC (at most 16 beats).
 */
int mx_beat_register(const char *name, long max_silence_ms);
void mx_beat(int id);
/* Marks a loop as ended on purpose (no longer checked). */
void mx_beat_retire(int id);
/* 0 when every live beat is fresh, else -ETIMEDOUT and one sentence in why. */
int mx_beats_check(char *why, size_t cap);

#endif
