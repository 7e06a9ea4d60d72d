#!/usr/bin/env bash
# Builds the Docker base image podcheckpoint-base:bookworm from Debian's
# packages (no registry needed): debootstrap a minimal bookworm, docker import.
set -euo pipefail
IMAGE=${1:-podcheckpoint-base:bookworm}
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE exists"; exit 0
fi
command -v debootstrap >/dev/null || { apt-get update -qq; apt-get install -y -qq --no-install-recommends debootstrap; }
root=$(mktemp -d /var/tmp/pcp-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian
tar -C "$root" -c . | docker import - "$IMAGE"
echo "built $IMAGE"
