/*
 * nh_sweep.h - removes the kubelet archives of calls the helper gave up on.
 *
 * A real kubelet does not stop its runtime when the client goes away: after a
 * timeout, a cancel or a shutdown, containerd still writes the complete
 * plaintext archive seconds later. The kubelet names it at request time,
 * checkpoint-<pod>_<ns>-<container>-<RFC 3339 time>.tar, under
 * <kubelet root>/checkpoints. Each given-up call adds an entry {prefix,
 * window of name times, until}; a thread removes matching files every
 * second until the entry expires (the grace period). Entries are kept in
 * <state-dir>/sweeps.json (replaced atomically) so a restart continues.
 *
 * Threads: add/tick/count lock one mutex; the sweeper thread calls tick.
 * Ownership: nh_sweep_open returns an object freed by nh_sweep_free (which
 * stops the thread).
 */
#ifndef PCP_NH_SWEEP_H
#define PCP_NH_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#define NH_SWEEP_MAX 256 /* entries kept; the oldest is dropped beyond that */

struct nh_sweep;

/* checkpoints_dir: where the helper sees the kubelet's archives. */
int nh_sweep_open(const char *state_dir, const char *checkpoints_dir, long grace_seconds,
		  struct nh_sweep **out);
void nh_sweep_free(struct nh_sweep *s);
/* Starts the thread (one tick per second). */
int nh_sweep_start(struct nh_sweep *s);

/* Watches for checkpoint-<pod>_<ns>-<ctr>-<t>.tar with from_s <= t <= to_s
 * (epoch seconds) until now + grace. Persisted before it returns. */
int nh_sweep_add(struct nh_sweep *s, const char *uid, const char *ns, const char *pod,
		 const char *container, int64_t from_s, int64_t to_s);
/* One pass at now_s: removes matches, drops expired entries. Files removed. */
int nh_sweep_tick(struct nh_sweep *s, int64_t now_s);
size_t nh_sweep_count(struct nh_sweep *s);

/* The name time of a kubelet archive name with `prefix`: 0, or -EINVAL. */
int nh_sweep_name_time(const char *name, const char *prefix, int64_t *epoch_s);

#endif
