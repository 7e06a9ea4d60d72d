#!/usr/bin/env bash
# bench/scale/check.sh - the scale regression check for CI: a small run of the
# scale benchmark (ours, then the controller-runtime peer at the same client
# limit, 200/400) judged by ratios to the peer, not by absolute times, with a
# generous margin. Prints "check: 1 passed, 0 failed" or exits 1.
#
#   bench/scale/check.sh          (env: PCP_CHECK_N=300, PCP_CHECK_NODES=4,
#                                  PCP_CHECK_MIN_CR_RATIO, PCP_CHECK_MAX_HWM_RATIO)
#
# The limits sit at about half (CR/s) and twice (VmHWM) of what this round's
# controller measured against the peer (docs/performance.md "Regression check"),
# so they catch a real regression (e.g. json-c trees back in the cache, or a
# blocking dispatch), not a busy machine.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$HERE/run.sh" "${PCP_CHECK_N:-300}" "${PCP_CHECK_NODES:-4}" \
	--which=ours,peerfast --idle=0 --timeout=5m \
	--min-cr-ratio="${PCP_CHECK_MIN_CR_RATIO:-0.15}" \
	--max-hwm-ratio="${PCP_CHECK_MAX_HWM_RATIO:-0.6}"
