#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the demo need.
# Safe to run again: it does nothing when everything is already there.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang llvm libclang-rt-14-dev
  libcurl4-openssl-dev libjson-c-dev libwebsockets-dev libssl-dev libyaml-dev
  libarchive-dev libcmocka-dev
  openssl ca-certificates curl jq tar git iproute2 procps
  prometheus   # the e2e tests scrape both daemons with it; promtool checks their pages
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
echo "setup: all packages present"
