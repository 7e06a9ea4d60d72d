#!/usr/bin/env bash
# bench/scale/run.sh - the scale benchmark (not a timed test; see docs/performance.md).
#
#   bench/scale/run.sh [N [NODES [scale flags...]]]     default 1000 CRs over 10 nodes
#
# Takes the e2e lock (/tmp/pcp-e2e.lock; PCP_BENCH_LOCKED=1 when the caller holds
# it), brings a fresh test cluster up with NODES kwok nodes (PCP_NODES), deploys
# the operator from $PCP_BIN_DIR (default <repo>/build), runs bench/scale (ours,
# then the controller-runtime peer with our controller stopped) and always brings
# the cluster down again. Results: stdout, and JSON in $PCP_BENCH_OUT (default
# <cache>/bench/scale-N-NODES-<time>.json).
# Flags after NODES go to the scale program (e.g. --rate=100 --idle=60s
# --peer-qps=200 --peer-burst=400 --which=ours,peer --timeout=12m); see
# `scale -h`.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CLUSTER="$ROOT/tests/e2e/cluster"
CACHE="${PCP_CACHE:-$HOME/.cache/podcheckpoint}"
N="${1:-1000}"
NODES="${2:-10}"
shift $(( $# > 2 ? 2 : $# ))
export PATH="/usr/local/go/bin:$PATH" GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:--mod=mod}"
export PCP_BIN_DIR="${PCP_BIN_DIR:-$ROOT/build}"
# The benchmark binds its pods to the kwok nodes only: no real node to build or start.
export PCP_E2E_NO_REAL_NODE="${PCP_E2E_NO_REAL_NODE:-1}"

if [[ "${PCP_BENCH_LOCKED:-0}" != 1 ]]; then
	exec 8>/tmp/pcp-e2e.lock
	echo "run.sh: waiting for /tmp/pcp-e2e.lock" >&2
	flock 8
fi

# The bench binaries, cached by a hash of their sources.
src_hash=$(cd "$ROOT/bench" && cat go.mod go.sum scale/*.go peer/*.go | sha256sum | cut -c1-16)
BIN="$CACHE/bin/bench-$src_hash"
if [[ ! -x "$BIN/scale" || ! -x "$BIN/peer" ]]; then
	mkdir -p "$BIN.tmp.$$"
	(cd "$ROOT/bench" && go build -trimpath -o "$BIN.tmp.$$/scale" ./scale && go build -trimpath -o "$BIN.tmp.$$/peer" ./peer)
	rm -rf "$BIN"; mv "$BIN.tmp.$$" "$BIN"
fi

mkdir -p "$CACHE/bench"
OUT="${PCP_BENCH_OUT:-$CACHE/bench/scale-$N-$NODES-$(date +%Y%m%d-%H%M%S).json}"
cleanup() {
	local rc=$?
	"$CLUSTER" undeploy >/dev/null 2>&1 || true
	"$CLUSTER" down >&2 || rc=1
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$CLUSTER" down >&2 || true # a fresh cluster: empty etcd, exactly NODES nodes
PCP_NODES="$NODES" "$CLUSTER" up >&2
"$CLUSTER" deploy >&2
# In the background and waited for, so that a TERM/INT (e.g. from timeout)
# reaches the program at once and the cluster still comes down.
"$BIN/scale" --n="$N" --deploy-sh="$ROOT/tests/e2e/deploy.sh" --peer-bin="$BIN/peer" --out="$OUT" "$@" &
spid=$!
trap 'kill -TERM "$spid" 2>/dev/null; wait "$spid"; exit 130' INT TERM
wait "$spid"
echo "run.sh: results in $OUT" >&2
