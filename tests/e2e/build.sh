#!/usr/bin/env bash
# Builds the test-cluster binaries into ${PCP_CACHE:-$HOME/.cache/podcheckpoint}/bin.
#
#   build.sh deps      kube-apiserver, kubectl, kube-controller-manager, kube-scheduler,
#                      kubelet, etcd (this module) and kwok
#   build.sh node      the real node's runtime: containerd, containerd-shim-runc-v2, ctr,
#                      runc (cgo + libseccomp), crictl, checkpointctl (each its own module)
#   build.sh images    the real node's pod sandbox and counter images (docker save archives)
#   build.sh harness   the harness program (supervisor, kubelet stand-in, CLI)
#   build.sh all       all three (default)
#
# Each set goes to a directory keyed by a hash of its inputs, so it is rebuilt only
# when go.mod/go.sum (deps), the pinned versions (node) or the harness sources
# change. The last line printed on stdout is the directory holding the binaries of
# the requested set.
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${PCP_CACHE:-$HOME/.cache/podcheckpoint}"
K8S_VERSION="v1.36.3"
KWOK_VERSION="v0.7.0"
CONTAINERD_VERSION="v2.4.2"
RUNC_VERSION="v1.4.0"
CRICTL_VERSION="v1.37.0"
# v1.5.0 does not install: its go-criu/v8 v8.1.0 is refused by the module proxy
CHECKPOINTCTL_VERSION="v1.4.0"
DEPS_BINS=(kube-apiserver kubectl kube-controller-manager kube-scheduler kubelet etcd kwok)
NODE_BINS=(containerd containerd-shim-runc-v2 ctr runc crictl checkpointctl)
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
	if all_there "$out" "${DEPS_BINS[@]}"; then echo "$out"; return 0; fi
	t0=$(date +%s)
	tmp="$out.tmp.$$"
	rm -rf "$tmp"; mkdir -p "$tmp"
	minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
	ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
	echo "build: kube-apiserver, kubectl, kube-controller-manager, kube-scheduler, kubelet, etcd $K8S_VERSION into $out (first build takes a while)" >&2
	local c t1
	for c in kube-apiserver kubectl kube-controller-manager kube-scheduler kubelet; do
		t1=$(date +%s)
		(cd "$E2E_DIR" && go build -trimpath -ldflags "$ldflags" -o "$tmp/$c" "k8s.io/kubernetes/cmd/$c") >&2
		echo "build: $c in $(( $(date +%s) - t1 ))s" >&2
	done
	(cd "$E2E_DIR" && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3) >&2
	echo "build: kwok $KWOK_VERSION" >&2
	# kwok is its own module (other k8s versions), so it is installed from the proxy,
	# outside this module, straight into the cache directory.
	(cd "$tmp" && GOFLAGS= GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION") >&2
	rm -rf "$out"; mv "$tmp" "$out"
	echo "build: deps done in $(( $(date +%s) - t0 ))s" >&2
	echo "$out"
}

all_there() { # dir bin...
	local d=$1 b; shift
	for b in "$@"; do [[ -x "$d/$b" ]] || return 1; done
}

node_dir() {
	echo "$CACHE/bin/node-$(printf '%s %s %s %s %s\n' "$CONTAINERD_VERSION" "$RUNC_VERSION" "$CRICTL_VERSION" "$CHECKPOINTCTL_VERSION" "$(go env GOVERSION)" | sha256sum | cut -c1-16)"
}

# The real node's container runtime, each from its own module at a pinned version.
build_node() {
	local out tmp t0
	out="$(node_dir)"
	if all_there "$out" "${NODE_BINS[@]}"; then echo "$out"; return 0; fi
	t0=$(date +%s)
	tmp="$out.tmp.$$"
	rm -rf "$tmp"; mkdir -p "$tmp"
	echo "build: containerd $CONTAINERD_VERSION, runc $RUNC_VERSION, crictl $CRICTL_VERSION, checkpointctl $CHECKPOINTCTL_VERSION into $out" >&2
	(cd "$tmp" && GOFLAGS= GOBIN="$tmp" go install -trimpath -ldflags "-s -w" \
		"github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION" \
		"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
		"github.com/containerd/containerd/v2/cmd/ctr@$CONTAINERD_VERSION") >&2
	# runc needs cgo for libseccomp (Debian libseccomp-dev, scripts/setup.sh)
	(cd "$tmp" && GOFLAGS= GOBIN="$tmp" CGO_ENABLED=1 go install -trimpath -tags seccomp -ldflags "-s -w" \
		"github.com/opencontainers/runc@$RUNC_VERSION") >&2
	(cd "$tmp" && GOFLAGS= GOBIN="$tmp" go install -trimpath -ldflags "-s -w" \
		"sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION") >&2
	(cd "$tmp" && GOFLAGS= GOBIN="$tmp" go install -trimpath -ldflags "-s -w" \
		"github.com/checkpoint-restore/checkpointctl@$CHECKPOINTCTL_VERSION") >&2
	rm -rf "$out"; mv "$tmp" "$out"
	echo "build: node runtime done in $(( $(date +%s) - t0 ))s" >&2
	echo "$out"
}

# The real node's images, made without a registry: a busybox-static root
# filesystem -> docker import -> docker save (imported by `up` with ctr).
#   pause.tar    podcheckpoint.test/pause:latest    the pod sandbox (sleep infinity)
#   counter.tar  podcheckpoint.test/counter:latest  prints 0, 1, 2, ... one a second
images_dir() {
	local bb
	bb=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo none)
	echo "$CACHE/bin/images-$( (echo "$bb"; sed -n '/^build_images()/,/^}/p' "${BASH_SOURCE[0]}") | sha256sum | cut -c1-16)"
}

build_images() {
	local out tmp root
	out="$(images_dir)"
	if [[ -f "$out/pause.tar" && -f "$out/counter.tar" ]]; then echo "$out"; return 0; fi
	[[ -x /bin/busybox ]] || { echo "build: no /bin/busybox (apt-get install busybox-static: scripts/setup.sh)" >&2; return 1; }
	command -v docker >/dev/null || { echo "build: no docker (the real node's images are made with docker import/save)" >&2; return 1; }
	tmp="$out.tmp.$$"
	rm -rf "$tmp"; mkdir -p "$tmp/rootfs/bin" "$tmp/rootfs/tmp" "$tmp/rootfs/etc"
	root="$tmp/rootfs"
	cp /bin/busybox "$root/bin/busybox"
	for a in sh sleep echo cat ls date; do ln -s busybox "$root/bin/$a"; done
	printf 'root:x:0:0:root:/:/bin/sh\n' >"$root/etc/passwd"
	tar -C "$root" -c . | docker import --change 'ENTRYPOINT ["/bin/sleep", "infinity"]' - podcheckpoint.test/pause:latest >&2
	tar -C "$root" -c . | docker import \
		--change 'ENTRYPOINT ["/bin/sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 1; done"]' \
		- podcheckpoint.test/counter:latest >&2
	docker save -o "$tmp/pause.tar" podcheckpoint.test/pause:latest
	docker save -o "$tmp/counter.tar" podcheckpoint.test/counter:latest
	rm -rf "$root"
	rm -rf "$out"; mv "$tmp" "$out"
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
node) build_node ;;
images) build_images ;;
harness) build_harness ;;
all) build_deps >/dev/null; build_node >/dev/null; build_images >/dev/null; build_harness ;;
*) echo "usage: build.sh [deps|node|images|harness|all]" >&2; exit 2 ;;
esac
