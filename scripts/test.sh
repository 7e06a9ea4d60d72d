#!/usr/bin/env bash
# The project's whole test suite, from a fresh machine:
#   1. installs what it needs (scripts/setup.sh),
#   2. builds with warnings as errors and runs the unit tests (ctest),
#   3. builds again with ASan + UBSan and runs the unit tests there,
#   4. builds the real test cluster (etcd, kube-apiserver, kube-controller-manager,
#      kube-scheduler, kwok + kubelet stand-ins, and a real node: kubelet + containerd
#      + runc), deploys the operator on it as local processes and runs the end-to-end
#      tests (go test); the realnode tests then install the shipped image and
#      config/default on the real node and checkpoint real containers through it,
#   5. runs the scale regression check (bench/scale/check.sh): our controller and a
#      controller-runtime peer on the same fresh cluster, judged by ratios.
# Exits non-zero when any step or test fails.
#
# Options (environment): PCP_SKIP_E2E=1 skips steps 4 and 5 (says so loudly).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=/usr/local/go/bin:$PATH

step() { printf '\n==== %s\n' "$*"; }

step "setup"
scripts/setup.sh

step "build (warnings are errors) + unit tests"
cmake -S . -B build -DPCP_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j2

step "GitOps health: Argo CD health.lua (gopher-lua) and kstatus on the same PodCheckpoints"
(cd tests/gitops && GOFLAGS="${GOFLAGS:--mod=mod}" go test -count=1 -v ./...)

step "build with ASan + UBSan + unit tests"
cmake -S . -B build-asan -DPCP_WERROR=ON -DPCP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$(nproc)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j2

step "fuzz smoke: every libFuzzer driver, 10 s each (clang, ASan + UBSan)"
CC=clang cmake -S . -B build-fuzz -DPCP_FUZZ=ON -DPCP_TESTS=OFF -DPCP_BENCH=OFF -DPCP_WERROR=ON >/dev/null
# Every libFuzzer driver under tests/fuzz (one list, used for the build and the runs).
FUZZERS=(fuzz_kubeconfig fuzz_watch fuzz_status fuzz_ch_message fuzz_cert fuzz_cms fuzz_mx_http fuzz_jwt)
cmake --build build-fuzz -j"$(nproc)" --target "${FUZZERS[@]}"
for f in "${FUZZERS[@]}"; do
  corpus="build-fuzz/corpus/$f"
  mkdir -p "$corpus" && cp -n tests/fuzz/corpus/"$f"/* "$corpus"/
  if ! build-fuzz/tests/fuzz/"$f" -max_total_time=10 "$corpus" >"build-fuzz/$f.log" 2>&1; then
    tail -n 40 "build-fuzz/$f.log" >&2
    echo "fuzzer $f found a crash (log: build-fuzz/$f.log)" >&2
    exit 1
  fi
  echo "$f: $(grep -E 'DONE' "build-fuzz/$f.log" | tail -n 1)"
done

if [ "${PCP_SKIP_E2E:-0}" = 1 ]; then
  step "e2e SKIPPED because PCP_SKIP_E2E=1"
  exit 0
fi

step "e2e: real kube-apiserver + etcd + controller-manager + scheduler + kwok/stand-ins + real node"
PCP_BIN_DIR="$ROOT/build" tests/e2e/run.sh

# The other kubelet certificate mode: serverTLSBootstrap (serving certificate
# from a CSR, signed by the cluster CA); the operator from
# config/overlays/kubelet-serving-ca, the same checkpoint test on the real node.
if [ "${PCP_E2E_NO_REAL_NODE:-0}" != 1 ]; then
  step "e2e: real node with serverTLSBootstrap (config/overlays/kubelet-serving-ca)"
  PCP_REAL_NODE_SERVING_CERT=bootstrap PCP_BIN_DIR="$ROOT/build" tests/e2e/run.sh ./realnode/...
fi

# Issue #11: the scale regression check, judged by ratios to a controller-runtime peer
# measured in the same run (docs/performance.md "Regression check"), and the bench
# tooling's own unit tests.
step "scale: bench tooling unit tests + regression check (ours vs the controller-runtime peer)"
(cd bench && GOFLAGS="${GOFLAGS:--mod=mod}" go test -count=1 ./...)
PCP_BIN_DIR="$ROOT/build" bench/scale/check.sh
