/*
 * kcp_progress.h - the `kubectl checkpoint create --wait` / `wait` progress
 * line, from what the PodCheckpoint's status says while it runs.
 *
 * Read today: status.phase, status.message (the helper's Running message,
 * "Checkpointing container app (1 of 2) of pod ns/web" while a kubelet call
 * runs), status.nodeName, status.containers[] (finished ones). Also read
 * when present (the helper may publish them): status.progress.container and
 * status.progress.bytes. Nothing in the line comes from anywhere else.
 */
#ifndef PCP_KCP_PROGRESS_H
#define PCP_KCP_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/*
 * One line without a newline, e.g.
 *   "Running on node-1: container app (1 of 2), 12.5 MiB written - Checkpointing container ..."
 * "" when the object has no status yet (then: "waiting for the controller").
 */
void kcp_progress_line(json_object *obj, char *buf, size_t cap);

/* "512 B", "3.0 KiB", "12.5 MiB", "1.2 GiB". */
void kcp_format_bytes(uint64_t n, char *buf, size_t cap);

#endif
