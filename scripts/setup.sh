#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the demo need.
# Safe to run again: it does nothing when everything is already there.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang llvm libclang-rt-14-dev
  libcurl4-openssl-dev libjson-c-dev libwebsockets-dev libssl-dev libyaml-dev
  libarchive-dev libcmocka-dev
  openssl ca-certificates curl jq tar git iproute2 procps
  # the test cluster's real node (tests/e2e: kubelet + containerd + runc):
  # runc links libseccomp; CNI plugins from Debian; busybox for the images;
  # iptables for the kubelet and the bridge plugin; criu so the runtime has one
  # (Debian's 3.17.1 fails `criu check` on kernels >= 6.13: see docs/test-cluster.md)
  libseccomp-dev containernetworking-plugins busybox-static iptables criu
  # scripts/make-base-image.sh (the image's base without a registry)
  debootstrap
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || {
  echo "setup: Go is needed for the test cluster (tests/e2e); install Go >= 1.26 to /usr/local/go" >&2
  exit 1
}
command -v docker >/dev/null || {
  echo "setup: a Docker engine is needed for the operator's image (tests/e2e/cluster install)" >&2
  exit 1
}
echo "setup: all packages present"
