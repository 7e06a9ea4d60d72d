#!/bin/sh
# Manual smoke run of podcheckpoint-controller against a fake API server and a
# fake node helper (real lib/kc and lib/chan on the wire). Not part of ctest.
#   tests/unit/controller/smoke/run.sh BUILD_DIR
# Expect in $OUT/ctl.out: initial-pending + add-finalizer, dispatch, helper-failed
# (KubeletError), delete-artifact, removed finalizer.
set -eu
B=$(cd "$1" && pwd); S=$(cd "$(dirname "$0")" && pwd); R=$(cd "$S/../../../.." && pwd)
OUT=$(mktemp -d); export OUT
API_PORT=$((20000 + $$ % 20000)); HELPER_PORT=$((API_PORT + 1)); export HELPER_PORT
cc -std=c11 -D_GNU_SOURCE -I "$R/lib/chan" -I "$R/lib/common" "$S/fake_helper.c" \
  "$B/lib/chan/libpcp_chan.a" "$B/lib/common/libpcp_common.a" \
  $(pkg-config --libs libwebsockets json-c openssl) -lpthread -o "$OUT/helper"
"$OUT/helper" > "$OUT/fp.txt" 2> "$OUT/helper.err" & HP=$!
sleep 1
FP=$(head -1 "$OUT/fp.txt") DELETE_AFTER=7 python3 "$S/fake_apiserver.py" "$API_PORT" > "$OUT/fake.out" 2>&1 & AP=$!
sleep 1
cat > "$OUT/kubeconfig" <<K
apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "http://127.0.0.1:$API_PORT"}}]
users: [{name: u, user: {token: faketoken}}]
contexts: [{name: c, context: {cluster: fake, user: u, namespace: default}}]
current-context: c
K
timeout 12 "$B/controller/podcheckpoint-controller" --kubeconfig "$OUT/kubeconfig" \
  --no-leader-elect --helper-wait-seconds=4 --poll-seconds=1 > "$OUT/ctl.out" 2>&1 || true
kill $AP $HP 2>/dev/null || true
grep -o 'decision=[a-z-]*\|msg="[a-z -]*finalizer"\|msg="delete-artifact"' "$OUT/ctl.out"
echo "logs in $OUT"
