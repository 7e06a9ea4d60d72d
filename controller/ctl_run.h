/*
 * ctl_run.h - the daemon: wiring of config, informers, queue, workers and
 * leader election. Threads:
 *   - main thread: leader election loop (or a wait loop without it);
 *   - 2 informer threads per watched namespace (PodCheckpoints, Pods), owned
 *     by lib/kc, which only enqueue keys;
 *   - --workers worker threads, running only while this instance leads, each
 *     with its own kc_client, taking keys from the queue.
 */
#ifndef PCP_CTL_RUN_H
#define PCP_CTL_RUN_H

#include <signal.h>

#include "ctl_options.h"

/* Installs SIGTERM/SIGINT handlers that set *stop (and ignores SIGPIPE). */
void ctl_install_signals(volatile sig_atomic_t *stop);
/* Runs until *stop. 0 on a clean stop; negative when start-up failed. */
int ctl_run(const struct ctl_options *opts, volatile sig_atomic_t *stop);

#endif
