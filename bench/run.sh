#!/bin/sh
# bench/run.sh - artifact throughput / memory benchmark against standard tools.
#
# Builds bench_artifact (Release) into $BUILD, generates COUNT inputs of
# SIZE_MIB MiB (default 2 x 512 MiB = 1 GiB) in $WORK and measures, in one
# run on the same disk, wall time / MB/s / peak RSS of:
#   ours-plain    our tar bundle (libarchive) + SHA-256 + fsync + rename
#   ours-rsa      the same, CMS AuthEnvelopedData AES-256-GCM to RSA-3072 (OAEP)
#   ours-p256     the same, to an EC P-256 certificate (ECDH)
#   ours-decrypt  our streaming decryption of ours-p256
#   peer-cp       cp of the inputs + sync (the floor: just copying bytes)
#   peer-tar      tar -cf + sync + sha256sum (what ours-plain replaces)
#   peer-cms-rsa  tar -cf - | openssl cms -encrypt -aes-256-gcm -stream (OAEP) + sync + sha256sum
#   peer-cms-p256 the same to the P-256 certificate
#   peer-decrypt  openssl cms -decrypt of ours-p256 (loads it whole into memory)
# Usage: bench/run.sh            (env: SIZE_MIB, COUNT, WORK, BUILD, KEEP=1)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
SIZE_MIB=${SIZE_MIB:-512}
COUNT=${COUNT:-2}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/pcp-bench.XXXXXX")}
OUT=$WORK/results.txt

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPCP_TESTS=OFF -DPCP_BENCH=ON >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target bench_artifact >/dev/null
B=$BUILD/bench/bench_artifact

cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT

mkdir -p "$WORK/in" "$WORK/out"
chmod 700 "$WORK/out"
openssl req -x509 -newkey rsa:3072 -nodes -keyout "$WORK/rsa.key" -out "$WORK/rsa.crt" \
	-days 2 -subj /CN=bench-rsa >/dev/null 2>&1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/p256.key" \
	-out "$WORK/p256.crt" -days 2 -subj /CN=bench-p256 >/dev/null 2>&1
"$B" gen "$WORK/in" "$SIZE_MIB" "$COUNT"
sync # the inputs' own writeback must not be billed to the first contender
BYTES=$((SIZE_MIB * COUNT * 1048576))
FILES=$(cd "$WORK/in" && ls in-*.img | tr '\n' ' ')
: >"$OUT"

clean_out() { rm -f "$WORK"/out/*; sync; }

# Each measurement runs in its own process (fresh peak RSS). Inputs stay in
# the page cache for every contender alike; every contender fsyncs its output.
"$B" bundle ours-plain "$WORK/out/a.tar" "$WORK/in" >>"$OUT"; clean_out
"$B" run peer-cp "$BYTES" "cp $WORK/in/in-*.img $WORK/out/ && sync $WORK/out/*" >>"$OUT"; clean_out
"$B" run peer-tar "$BYTES" "tar -cf $WORK/out/a.tar -C $WORK/in $FILES && sync $WORK/out/a.tar && sha256sum $WORK/out/a.tar >/dev/null" >>"$OUT"; clean_out
"$B" bundle ours-rsa "$WORK/out/a.cms" "$WORK/in" "$WORK/rsa.crt" >>"$OUT"; clean_out
"$B" run peer-cms-rsa "$BYTES" "tar -cf - -C $WORK/in $FILES | openssl cms -encrypt -aes-256-gcm -binary -outform DER -stream -recip $WORK/rsa.crt -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 -keyopt rsa_mgf1_md:sha256 -out $WORK/out/a.cms && sync $WORK/out/a.cms && sha256sum $WORK/out/a.cms >/dev/null" >>"$OUT"; clean_out
"$B" run peer-cms-p256 "$BYTES" "tar -cf - -C $WORK/in $FILES | openssl cms -encrypt -aes-256-gcm -binary -outform DER -stream -recip $WORK/p256.crt -out $WORK/out/a.cms && sync $WORK/out/a.cms && sha256sum $WORK/out/a.cms >/dev/null" >>"$OUT"; clean_out
"$B" bundle ours-p256 "$WORK/out/a.cms" "$WORK/in" "$WORK/p256.crt" >>"$OUT"
"$B" decrypt ours-decrypt "$WORK/out/a.cms" "$WORK/p256.key" "$WORK/p256.crt" "$WORK/out/ours.tar" >>"$OUT"
rm -f "$WORK/out/ours.tar"
"$B" run peer-decrypt "$BYTES" "openssl cms -decrypt -binary -inform DER -in $WORK/out/a.cms -inkey $WORK/p256.key -recip $WORK/p256.crt -out $WORK/out/peer.tar && sync $WORK/out/peer.tar" >>"$OUT"
clean_out

echo "input: $COUNT x $SIZE_MIB MiB = $BYTES bytes; $(nproc) cores; $(openssl version)"
awk '
function f(k,   i, kv) { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } }
/^RESULT/ { n = f("name"); name[++c] = n; mbs[n] = f("bytes") / 1e6 / f("seconds");
	    sec[n] = f("seconds"); rss[n] = f("maxrss_kib") / 1024 }
END {
	printf "%-14s %9s %9s %12s\n", "run", "seconds", "MB/s", "peakRSS MiB"
	for (i = 1; i <= c; i++) printf "%-14s %9.2f %9.1f %12.1f\n", name[i], sec[name[i]], mbs[name[i]], rss[name[i]]
	print ""
	printf "%-30s %8s\n", "ratio (throughput ours/peer)", "x"
	printf "%-30s %8.2f\n", "ours-plain / peer-tar", mbs["ours-plain"] / mbs["peer-tar"]
	printf "%-30s %8.2f\n", "ours-plain / peer-cp", mbs["ours-plain"] / mbs["peer-cp"]
	printf "%-30s %8.2f\n", "ours-rsa / peer-cms-rsa", mbs["ours-rsa"] / mbs["peer-cms-rsa"]
	printf "%-30s %8.2f\n", "ours-p256 / peer-cms-p256", mbs["ours-p256"] / mbs["peer-cms-p256"]
	printf "%-30s %8.2f\n", "ours-p256 / peer-cp", mbs["ours-p256"] / mbs["peer-cp"]
	printf "%-30s %8.2f\n", "ours-decrypt / peer-decrypt", mbs["ours-decrypt"] / mbs["peer-decrypt"]
	printf "%-30s %8.3f\n", "peak RSS ours-p256/peer-cms-p256", rss["ours-p256"] / rss["peer-cms-p256"]
	printf "%-30s %8.3f\n", "peak RSS ours-dec/peer-decrypt", rss["ours-decrypt"] / rss["peer-decrypt"]
}' "$OUT"
