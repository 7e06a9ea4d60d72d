#!/usr/bin/env bash
# Builds the test-cluster binaries into ${PCP_CACHE:-$HOME/.cache/podcheckpoint}/bin.
#
#   build.sh deps      kube-apiserver, kubectl, etcd (this module) and kwok
#   build.sh harness   the harness program (supervisor, kubelet stand-in, CLI)
#   build.sh all       both (default)
#
# Each set goes to a directory keyed by a hash of its inputs, so it is rebuilt only
# when go.mod/go.sum (deps) or the harness sources change. The last line printed on
# stdout is the directory holding the binaries of the requested set.
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${PCP_CACHE:-$HOME/.cache/podcheckpoint}"
K8S_VERSION="v1.36.3"
KWOK_VERSION="v0.7.0"
what="${1:-all}"

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:--mod=mod}"
export GOTOOLCHAIN=local
# keep the Go build cache outside the repo as well (default ~/.cache/go-build)

mkdir -p "$CACHE/bin" "$CACHE/logs"

hash_files() { cat "$@" | sha256sum | cut -c1-16; }

# Serialise concurrent builds (e.g. two `up` at once).
exec 9>"$CACHE/bin/.build.lock"
flock -w 7200 9 || { echo "build: could not get the build lock" >&2; exit 1; }

deps_dir() {
	echo "$CACHE/bin/deps-$( (printf '%s %s\n' "$K8S_VERSION" "$KWOK_VERSION"; cat "$E2E_DIR/go.mod" "$E2E_DIR/go.sum") | sha256sum | cut -c1-16)"
}

harness_dir() {
	local files
	files=$(cd "$E2E_DIR" && find cmd internal -name '*.go' ! -name '*_test.go' -print | LC_ALL=C sort)
	echo "$CACHE/bin/harness-$( (cd "$E2E_DIR" && cat go.mod go.sum $files) | sha256sum | cut -c1-16)"
}

build_deps() {
	local out tmp t0 minor ldflags
	out="$(deps_dir)"
	if [[ -x "$out/kube-apiserver" && -x "$out/kubectl" && -x "$out/etcd" && -x "$out/kwok" ]]; then
		echo "$out"; return 0
	fi
	t0=$(date +%s)
	tmp="$out.tmp.$$"
	rm -rf "$tmp"; mkdir -p "$tmp"
	minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
	ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
	echo "build: kube-apiserver, kubectl, etcd $K8S_VERSION into $out (first build takes a while)" >&2
	(cd "$E2E_DIR" && go build -trimpath -ldflags "$ldflags" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver) >&2
	(cd "$E2E_DIR" && go build -trimpath -ldflags "$ldflags" -o "$tmp/kubectl" k8s.io/kubernetes/cmd/kubectl) >&2
	(cd "$E2E_DIR" && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3) >&2
	echo "build: kwok $KWOK_VERSION" >&2
	# kwok is its own module (other k8s versions), so it is installed from the proxy,
	# outside this module, straight into the cache directory.
	(cd "$tmp" && GOFLAGS= GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION") >&2
	rm -rf "$out"; mv "$tmp" "$out"
	echo "build: deps done in $(( $(date +%s) - t0 ))s" >&2
	echo "$out"
}

build_harness() {
	local out tmp
	out="$(harness_dir)"
	if [[ -x "$out/pcp-e2e" ]]; then echo "$out"; return 0; fi
	tmp="$out.tmp.$$"
	rm -rf "$tmp"; mkdir -p "$tmp"
	(cd "$E2E_DIR" && go build -trimpath -o "$tmp/pcp-e2e" ./cmd/pcp-e2e) >&2
	rm -rf "$out"; mv "$tmp" "$out"
	echo "$out"
}

case "$what" in
deps) build_deps ;;
harness) build_harness ;;
all) build_deps >/dev/null; build_harness ;;
*) echo "usage: build.sh [deps|harness|all]" >&2; exit 2 ;;
esac
