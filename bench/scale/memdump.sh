#!/usr/bin/env bash
# bench/scale/memdump.sh - where a process's resident memory is, for --mem-hook:
#   bench/scale/run.sh 10000 50 --which=ours --mem-hook="$PWD/bench/scale/memdump.sh"
# Prints /proc/$PCP_PID/smaps summed by mapping (heap, anonymous, stacks, each
# library: Rss and Private_Dirty in KiB) and, if gdb is installed, glibc's own
# accounting (malloc_info: in use vs free per arena). Copies of both go to
# ${PCP_MEMDUMP_DIR:-/tmp/pcp-memdump}/<phase>-<when>.*. A diagnosis, not a test.
set -uo pipefail
pid="${PCP_PID:?}"
dir="${PCP_MEMDUMP_DIR:-/tmp/pcp-memdump}"
tag="${PCP_PHASE:-p}-${PCP_WHEN:-now}"
mkdir -p "$dir"
cp "/proc/$pid/smaps" "$dir/$tag.smaps" 2>/dev/null || exit 0
echo "memdump: $tag: pid $pid, $(grep -E '^(VmRSS|VmHWM|Threads)' "/proc/$pid/status" | tr -s ' \t' ' ' | paste -sd ' ')"
awk '
/^[0-9a-f]+-[0-9a-f]+ / {
	name = ($6 == "") ? "[anon]" : $6
	for (i = 7; i <= NF; i++) name = name " " $i
	sub(/.*\//, "", name); sub(/\.so.*/, ".so", name)
	next
}
/^Rss:/ { rss[name] += $2; trss += $2 }
/^Private_Dirty:/ { pd[name] += $2; tpd += $2 }
END {
	printf "memdump:   %-28s %8s %8s\n", "mapping", "Rss", "PrivDirty"
	for (n in rss) if (rss[n] >= 64) printf "memdump:   %-28s %8d %8d\n", n, rss[n], pd[n] | "sort -k3 -n -r"
	close("sort -k3 -n -r")
	printf "memdump:   %-28s %8d %8d\n", "TOTAL (KiB)", trss, tpd
}' "$dir/$tag.smaps"
if command -v gdb >/dev/null; then
	out="$dir/$tag.malloc.xml"
	rm -f "$out"
	timeout 60 gdb -p "$pid" -batch -nx \
		-ex "set \$f = (void *)fopen(\"$out\", \"w\")" \
		-ex 'call (int)malloc_info(0, $f)' -ex 'call (int)fclose($f)' >/dev/null 2>&1
	if [[ -s $out ]]; then
		# The totals: <total type="fast|rest|mmap"> and <system type="current">, <aspace>
		grep -E '<(total|system|aspace)' "$out" | tail -n 6 | sed 's/^/memdump:   malloc /'
		grep -c '<heap nr=' "$out" | sed 's/^/memdump:   malloc arenas: /'
	fi
fi
