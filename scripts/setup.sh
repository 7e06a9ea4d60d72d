#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the demo need.
# Safe to run again: it does nothing when everything is already there.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang llvm libclang-rt-14-dev
  libcurl4-openssl-dev libjson-c-dev libwebsockets-dev libssl-dev libyaml-dev
  libarchive-dev libcmocka-dev
  # scripts/build-curl.sh: Debian's curl source, unpacked, patched and rebuilt
  dpkg-dev autoconf automake libtool zlib1g-dev
  openssl ca-certificates curl jq tar git iproute2 procps
  prometheus   # the e2e tests scrape both daemons with it; promtool checks their pages
  # the test cluster's real node (tests/e2e: kubelet + containerd + runc):
  # runc links libseccomp; CNI plugins from Debian; busybox for the images;
  # iptables for the kubelet and the bridge plugin; criu so the runtime has one
  # (Debian's 3.17.1 fails `criu check` on kernels >= 6.13: see docs/test-cluster.md)
  libseccomp-dev containernetworking-plugins busybox-static iptables criu
  # scripts/make-base-image.sh (the image's base without a registry)
  debootstrap
)

# The crypto stack every machine must test on: the version a fresh machine
# installs today (Debian security updates), not whatever an older image has.
# OpenSSL's behaviour changes within 3.0.x (e.g. CMS_decrypt since 3.0.20).
SECURITY_PKGS=(openssl libssl3 libssl-dev)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
updated=0
apt_update() {
  if [ "$updated" = 0 ]; then
    $SUDO apt-get update -qq
    updated=1
  fi
}

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  apt_update
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Package lists older than a day may not know the latest security update.
lists_stamp=/var/lib/apt/lists
if [ -z "$(find "$lists_stamp" -maxdepth 0 -mmin -1440 2>/dev/null)" ]; then
  apt_update
fi
outdated=()
# one apt-cache call for all: "pkg:" lines, then "  Candidate: version"
while read -r p cand; do
  inst=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
  if [ -n "$inst" ] && [ "$cand" != "(none)" ] && dpkg --compare-versions "$inst" lt "$cand"; then
    outdated+=("$p")
    echo "setup: $p $inst is older than the candidate $cand; upgrading"
  fi
done < <(apt-cache policy "${SECURITY_PKGS[@]}" 2>/dev/null |
  awk '/^[^ ]/ { sub(":$", "", $1); p = $1 } $1 == "Candidate:" { print p, $2 }')
if ((${#outdated[@]})); then
  $SUDO apt-get install -y -qq --only-upgrade --no-install-recommends "${outdated[@]}"
fi

command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || {
  echo "setup: Go is needed for the test cluster (tests/e2e); install Go >= 1.26 to /usr/local/go" >&2
  exit 1
}
command -v docker >/dev/null || {
  echo "setup: a Docker engine is needed for the operator's image (tests/e2e/cluster install)" >&2
  exit 1
}
# The libcurl the daemons link (CMake's PCP_CURL_PREFIX default): rebuilt when
# Debian's libcurl4-openssl-dev candidate (a security update) changes.
"$(dirname "$0")/build-curl.sh" "$HOME/.cache/podcheckpoint/curl"
echo "setup: all packages present; $(openssl version); libcurl $(cat "$HOME/.cache/podcheckpoint/curl/debian-version") (static, scripts/build-curl.sh)"
