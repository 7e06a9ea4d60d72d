#!/bin/sh
# bench/helper.sh - the node helper's CPU per checkpoint job (bench_helper).
#
# Runs bench_helper (from $BUILD, default build/) three times:
#   1. JOBS_TIME (default 600) jobs, ours then peer: CPU seconds per job
#      (getrusage: user + sys, the in-process fake servers included);
#   2. under callgrind, JOBS_CG (default 60) jobs of ours, 3. the same of
#      peer: instructions per job of the helper's side alone - the runner's
#      slot threads (nh_worker) + the channel thread's submit
#      (nh_runner_submit) against the peer's loop (bh_peer_run), both
#      without the fake servers' threads - and the top inclusive costs of
#      the helper's run. The first (recorded) job is in both counts.
# Instruction counts are repeatable under load (the same binary and input
# give the same count); the CPU times are not.
# Usage: bench/helper.sh    (env: BUILD, JOBS_TIME, JOBS_CG, OUT=dir, default /tmp/bench-helper)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
JOBS_TIME=${JOBS_TIME:-600}
JOBS_CG=${JOBS_CG:-60}
OUT=${OUT:-/tmp/bench-helper}
BIN="$BUILD/bench/bench_helper"
mkdir -p "$OUT"
[ -x "$BIN" ] || { echo "helper.sh: build $BIN first (cmake --build $BUILD --target bench_helper)" >&2; exit 2; }

"$BIN" "$JOBS_TIME" both 2>"$OUT/time.log" | grep '^RESULT'

# inclusive Ir of function $2 (file.c:name) in callgrind output $1
incl() {
	callgrind_annotate --inclusive=yes --auto=no "$1" 2>/dev/null |
		awk -v f="$2" 'index($0, f " [") && !n { gsub(",", "", $1); n = $1 } END { printf "%d\n", n }'
}
for phase in ours peer; do
	valgrind --tool=callgrind --callgrind-out-file="$OUT/$phase.cg" "$BIN" "$JOBS_CG" "$phase" \
		>"$OUT/$phase.txt" 2>"$OUT/$phase.log"
done
jobs=$((JOBS_CG + 1))
ours=$(( $(incl "$OUT/ours.cg" nh_job.c:nh_worker) + $(incl "$OUT/ours.cg" nh_job.c:nh_runner_submit) ))
peer=$(incl "$OUT/peer.cg" bench_helper.c:bh_peer_run.constprop.0)
[ "$peer" -gt 0 ] || peer=$(incl "$OUT/peer.cg" bench_helper.c:bh_peer_run)
echo "CALLGRIND jobs=$jobs ours_ir_per_job=$((ours / jobs)) peer_ir_per_job=$((peer / JOBS_CG))" \
	"ours/peer=$(echo "$ours $jobs $peer $JOBS_CG" | awk '{ printf "%.2f", ($1 / $2) / ($3 / $4) }')"
echo "top inclusive costs of the helper's run (Ir, all $jobs jobs):"
callgrind_annotate --inclusive=yes --auto=no "$OUT/ours.cg" 2>/dev/null |
	grep -E '^ *[0-9,]+ .* /[^ ]*/(node-helper|lib)/[a-z_/]+\.c:' | head -25 |
	sed 's/ \[.*//; s|/[^ ]*/\(node-helper\|lib\)/|\1/|'
