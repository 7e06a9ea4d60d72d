#!/usr/bin/env bash
# Builds the libcurl both daemons link: Debian's own curl source, the version
# (and the security patches) of the libcurl4-openssl-dev it would install,
# configured for what the operator uses (HTTP and HTTPS over OpenSSL, proxies,
# the threaded resolver, zlib) and installed as a static library under PREFIX.
#
#   scripts/build-curl.sh PREFIX       (scripts/setup.sh, the Dockerfile)
#
# Why (docs/performance.md, fourth round): Debian's libcurl4 loads 27 more
# libraries (LDAP, Kerberos, SSH, RTMP, GnuTLS, nghttp2, IDN, PSL, brotli,
# zstd) that the operator never calls; loading and initialising them cost
# every process 3.6 MiB of resident memory, a third of the controller's.
# Security updates come as before: from Debian's source package, at the next
# setup or image build (the image froze Debian's libcurl4 at build time too).
#
# Does nothing when PREFIX already holds this version. Needs root (apt) the
# first time: it adds deb-src entries for the machine's own Debian mirror.
set -euo pipefail
PREFIX=${1:?usage: build-curl.sh PREFIX}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

ver=$(apt-cache policy libcurl4-openssl-dev | awk '$1 == "Candidate:" { print $2 }')
[ -n "$ver" ] && [ "$ver" != "(none)" ] || { echo "build-curl: no libcurl4-openssl-dev candidate" >&2; exit 1; }
if [ -f "$PREFIX/lib/libcurl.a" ] && [ "$(cat "$PREFIX/debian-version" 2>/dev/null)" = "$ver" ]; then
  exit 0
fi

# deb-src for every deb entry of the machine's sources (deb822 or one-line).
src=/etc/apt/sources.list.d/pcp-deb-src.sources
if ! apt-get source --print-uris -qq curl="$ver" >/dev/null 2>&1; then
  tmp=$(mktemp)
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] && [ "$f" != "$src" ] || continue
    sed -e 's/^Types:.*/Types: deb-src/' "$f" >>"$tmp"
    echo >>"$tmp"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk '$1 == "deb" { $1 = "deb-src"; print }' "$f" >>"$tmp.list"
  done
  [ -s "$tmp" ] && $SUDO install -m 0644 "$tmp" "$src"
  [ -s "$tmp.list" ] && $SUDO install -m 0644 "$tmp.list" /etc/apt/sources.list.d/pcp-deb-src.list
  rm -f "$tmp" "$tmp.list"
  $SUDO apt-get update -qq
fi
# dpkg-source unpacks and patches; the patches touch configure.ac and
# Makefile.am, so the autotools regenerate the build as Debian's does.
for p in dpkg-dev autoconf automake libtool; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    $SUDO apt-get install -y -qq --no-install-recommends dpkg-dev autoconf automake libtool
done

work=$(mktemp -d /var/tmp/pcp-curl.XXXXXX)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get source -qq -o APT::Sandbox::User=root --only-source curl="$ver" >/dev/null)
dir=$(find "$work" -maxdepth 1 -mindepth 1 -type d -name 'curl-*' | head -n1)
[ -n "$dir" ] || { echo "build-curl: apt-get source curl=$ver gave no source tree" >&2; exit 1; }
echo "build-curl: Debian curl $ver (patches applied by dpkg-source) -> $PREFIX"
cd "$dir"
# The OpenSSL flavour is the tree without the series' last two patches (the
# GnuTLS and NSS flavours), as debian/rules makes it ("quilt pop" twice).
last2=$(grep -v '^#' debian/patches/series | grep -v '^[[:space:]]*$' | tail -n 2 | tr '\n' ' ')
[ "$last2" = "90_gnutls.patch 99_nss.patch " ] ||
  { echo "build-curl: unexpected end of debian/patches/series: $last2" >&2; exit 1; }
patch -s -R -p1 <debian/patches/99_nss.patch
patch -s -R -p1 <debian/patches/90_gnutls.patch
autoreconf -fi >/dev/null 2>&1
./configure -q --prefix="$PREFIX" --disable-shared --enable-static --with-pic \
  --with-openssl --with-zlib --enable-threaded-resolver --enable-ipv6 \
  --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --with-ca-path=/etc/ssl/certs \
  --without-nghttp2 --without-ngtcp2 --without-nghttp3 --without-quiche --without-libidn2 \
  --without-libpsl --without-brotli --without-zstd --without-librtmp --without-libssh2 \
  --without-libssh --without-gssapi --without-libgsasl --disable-ldap --disable-ldaps \
  --disable-ftp --disable-file --disable-dict --disable-telnet --disable-tftp --disable-pop3 \
  --disable-imap --disable-smtp --disable-smb --disable-rtsp --disable-gopher --disable-mqtt \
  --disable-ntlm --disable-ntlm-wb \
  --disable-alt-svc --disable-hsts --disable-cookies --disable-manual \
  --disable-dependency-tracking
make -s -j"$(nproc)" -C lib >/dev/null
make -s -C lib install >/dev/null
make -s -C include install >/dev/null
make -s install-pkgconfigDATA >/dev/null
echo "$ver" >"$PREFIX/debian-version"
[ -f "$PREFIX/lib/libcurl.a" ] || { echo "build-curl: no $PREFIX/lib/libcurl.a after the build" >&2; exit 1; }
echo "build-curl: $PREFIX/lib/libcurl.a ($(PKG_CONFIG_LIBDIR="$PREFIX/lib/pkgconfig" pkg-config --static --libs libcurl))"
