#!/usr/bin/env bash
# Builds the test cluster, brings it up, runs the e2e Go tests, and always brings
# it down again (trap), exiting with the tests' status.
#
#   tests/e2e/run.sh                       all packages (./...)
#   tests/e2e/run.sh ./clustertest/... ./internal/...   only the cluster's own tests
#
# PCP_E2E_DEPLOY=auto|1|0  deploy the operator (tests/e2e/cluster deploy) before the
#                          tests; auto (default): when the pipeline tests are selected.
# PCP_E2E_TIMEOUT          go test -timeout (default 40m)
# PCP_E2E_KEEP=1           leave the cluster up afterwards (for debugging)
set -uo pipefail
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLUSTER="$E2E_DIR/cluster"
pkgs=("$@")
[[ ${#pkgs[@]} -gt 0 ]] || pkgs=(./...)

deployed=0
cleanup() {
	local rc=$?
	if [[ "${PCP_E2E_KEEP:-0}" == 1 ]]; then
		echo "run.sh: PCP_E2E_KEEP=1, leaving the cluster up" >&2
		return $rc
	fi
	if [[ $rc != 0 && $deployed == 1 ]]; then
		local f
		for f in "${PCP_CLUSTER_DIR:-${PCP_CACHE:-$HOME/.cache/podcheckpoint}/cluster}"/deploy/*/log; do
			echo "---- last lines of $f" >&2
			tail -n 40 "$f" >&2
		done
	fi
	if [[ $deployed == 1 ]]; then
		# Peak memory of each daemon over the whole e2e run.
		local f pid
		for f in "${PCP_CLUSTER_DIR:-${PCP_CACHE:-$HOME/.cache/podcheckpoint}/cluster}"/deploy/*/pid; do
			pid=$(cat "$f" 2>/dev/null) || continue
			[[ -r /proc/$pid/status ]] || continue
			printf 'run.sh: %-16s peak RSS %s\n' "$(basename "$(dirname "$f")")" \
				"$(awk '/^VmHWM/ {print $2 " " $3}' "/proc/$pid/status")" >&2
		done
		"$CLUSTER" undeploy || true
	fi
	"$CLUSTER" down || rc=1
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)
if ! "$CLUSTER" up; then
	echo "run.sh: FAIL: the test cluster did not come up" >&2
	exit 1
fi
echo "run.sh: build + up took $(( $(date +%s) - t0 ))s" >&2

want_deploy="${PCP_E2E_DEPLOY:-auto}"
if [[ "$want_deploy" == auto ]]; then
	want_deploy=0
	for p in "${pkgs[@]}"; do
		case "$p" in ./...|./pipeline*|pipeline*|./security*|security*) want_deploy=1 ;; esac
	done
fi
if [[ "$want_deploy" == 1 ]]; then
	if ! "$CLUSTER" deploy; then
		echo "run.sh: FAIL: deploying the operator failed" >&2
		exit 1
	fi
	deployed=1
fi

cd "$E2E_DIR"
# -p 1: packages one after another; the cluster tests inject node-wide faults
# into the kubelet stand-ins that would hit the pipeline tests' checkpoints.
gotest() { GOFLAGS="${GOFLAGS:--mod=mod}" go test -p 1 -count=1 -v -timeout "${PCP_E2E_TIMEOUT:-40m}" "$@"; }
# The realnode package replaces the locally deployed operator by the installed
# one (cluster install): with ./... it runs last, after every package that
# drives the local one (pipeline, security).
if [[ ${#pkgs[@]} -eq 1 && ${pkgs[0]} == ./... ]]; then
	mapfile -t first < <(GOFLAGS="${GOFLAGS:--mod=mod}" go list ./... | grep -v '/realnode$')
	rc=0
	gotest "${first[@]}" || rc=1
	gotest ./realnode/... || rc=1
	exit $rc
fi
gotest "${pkgs[@]}"
