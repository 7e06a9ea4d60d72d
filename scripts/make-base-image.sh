#!/usr/bin/env bash
# Builds the Docker base image podcheckpoint-base:bookworm from Debian's
# packages (no registry needed): debootstrap a minimal bookworm, docker import.
#
# The mirror is the machine's own: the first Debian URI of /etc/apt/sources.list
# or /etc/apt/sources.list.d/*.{list,sources} (override: PCP_DEBIAN_MIRROR), so it
# works wherever apt works.
set -euo pipefail
IMAGE=${1:-podcheckpoint-base:bookworm}
SUITE=${PCP_DEBIAN_SUITE:-bookworm}
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE exists"; exit 0
fi

# First "deb" URI whose suite list has $SUITE (not -security/-updates), from
# one-line (.list) or deb822 (.sources) files.
apt_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk -v s="$SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i+1) == s) { print $i; exit } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    # paragraphs: Types/URIs/Suites; print the URI of one with deb and $SUITE
    awk -v s="$SUITE" 'BEGIN { RS = ""; FS = "\n" }
      { t = u = ""; ok = 0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/ && $i ~ /[ \t]deb([ \t]|$)/) t = 1
          if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); u = a[2] }
          if ($i ~ /^Suites:/) { n = split($i, b, /[ \t]+/); for (j = 2; j <= n; j++) if (b[j] == s) ok = 1 }
        }
        if (t && ok && u != "") { print u; exit } }' "$f"
  done
}
MIRROR=${PCP_DEBIAN_MIRROR:-$(apt_mirror | head -n1)}
[ -n "$MIRROR" ] || { echo "make-base-image: no Debian $SUITE mirror in /etc/apt/sources.list*; set PCP_DEBIAN_MIRROR" >&2; exit 1; }
echo "make-base-image: debootstrap $SUITE from $MIRROR"

command -v debootstrap >/dev/null || { apt-get update -qq; apt-get install -y -qq --no-install-recommends debootstrap; }
root=$(mktemp -d /var/tmp/pcp-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR"
tar -C "$root" -c . | docker import - "$IMAGE"
echo "built $IMAGE"
