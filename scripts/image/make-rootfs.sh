#!/bin/sh
# make-rootfs.sh OUT BIN... : a root filesystem for the runtime stage of the image
# (Dockerfile): the binaries, exactly the shared libraries they load (ldd, with
# the dynamic loader), CA certificates, and passwd/group lines for root and
# 65532. No shell, no package manager. Runs in the build stage.
set -eu
out=$1; shift
mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/tmp"
chmod 1777 "$out/tmp"
for b in "$@"; do cp "$b" "$out/usr/local/bin/"; done
# every library, by the path the loader finds it at (symlinks resolved: -L)
for b in "$@"; do ldd "$b"; done | awk '/=>/ { print $3 } /^\t\// { print $1 }' | sort -u |
while read -r lib; do
	[ -e "$lib" ] || continue
	cp -L --parents "$lib" "$out/"
done
# ICU's data table (31 MB) is replaced by an empty one: see icudata-stub.c
icudata=$(find "$out" -name 'libicudata.so.*' | head -n1)
if [ -n "$icudata" ]; then
	major=$(basename "$icudata" | sed 's/^libicudata\.so\.\([0-9]*\).*/\1/')
	cc -O2 -shared -fPIC -DICU_MAJOR="$major" -Wl,-soname,"libicudata.so.$major" \
		-o "$icudata" "$(dirname "$0")/icudata-stub.c"
fi
strip --strip-unneeded "$out"/usr/local/bin/* 2>/dev/null || true
find "$out" -name '*.so*' -type f -exec strip --strip-unneeded {} + 2>/dev/null || true
cp /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/"
printf 'root:x:0:0:root:/:/nonexistent\nnonroot:x:65532:65532:nonroot:/nonexistent:/nonexistent\n' >"$out/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$out/etc/group"
printf 'hosts: files dns\n' >"$out/etc/nsswitch.conf"
echo "rootfs: $(du -sh "$out" | cut -f1) in $out"
