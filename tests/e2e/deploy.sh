#!/usr/bin/env bash
# Deploys the operator onto the running test cluster as local processes with
# real identities, the way the DaemonSet and Deployment would run them:
#   - config/default/namespace.yaml and config/rbac (the same files a real install uses),
#   - config/policies (the ValidatingAdmissionPolicies of the trust boundaries),
#   - a Pod object per daemon (helpers: spec.nodeName = their node) and a
#     ServiceAccount token from the TokenRequest API bound to it, laid out like a
#     projected token volume (token, ca.crt, namespace) and found through
#     KUBERNETES_SERVICE_HOST/PORT, so the daemons use their in-cluster config;
#     the controller also gets its channel token (audience channel.checkpointing.dev),
#   - the controller, and one node helper per node bound to that node's address,
#     talking to that node's kubelet stand-in, artifacts under that node's root.
#
#   deploy.sh deploy | undeploy | status
# Environment: PCP_BIN_DIR (default <repo>/build), PCP_DEPLOY_NODES (default all
# nodes), PCP_CONTROLLER_ARGS / PCP_HELPER_ARGS (extra flags).
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$E2E_DIR/../.." && pwd)"
WORK="${PCP_CLUSTER_DIR:-${PCP_CACHE:-$HOME/.cache/podcheckpoint}/cluster}"
STATE="$WORK/cluster.json"
DEPLOY="$WORK/deploy"
BIN_DIR="${PCP_BIN_DIR:-$ROOT/build}"
NS=podcheckpoint-system

die() { echo "deploy: $*" >&2; exit 1; }
[ -f "$STATE" ] || die "no cluster state at $STATE: run tests/e2e/cluster up first"
js() { jq -r "$1" "$STATE"; }
KUBECTL="$(js .binDir)/kubectl"
export KUBECONFIG="$(js .adminKubeconfig)"
k() { "$KUBECTL" "$@"; }

stop_pidfile() { # pidfile [signal]
	local f=$1 sig=${2:-TERM} pid i
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	# Only a daemon of ours: after a reboot or a killed session the pid may
	# belong to somebody else by now.
	if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q podcheckpoint-; then
		kill -"$sig" "$pid" 2>/dev/null || true
		for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$f"
}

undeploy() {
	local f
	shopt -s nullglob
	for f in "$DEPLOY"/*/pid; do stop_pidfile "$f"; done
	echo "undeployed"
}

# daemon_pod NAME SERVICEACCOUNT [NODE]: the Pod object a daemon's tokens are
# bound to, as the DaemonSet/Deployment pod would be. A token bound to a pod
# with spec.nodeName carries the node-name claim
# (authentication.kubernetes.io/node-name) that config/policies checks; the
# token dies with the pod. kwok marks pods on its nodes Running.
daemon_pod() {
	local name=$1 sa=$2 node=${3:-}
	k -n "$NS" get pod "$name" >/dev/null 2>&1 && return 0
	k apply -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata:
  name: $name
  namespace: $NS
  labels: {app.kubernetes.io/name: podcheckpoint, app.kubernetes.io/component: ${sa#podcheckpoint-}}
spec:
  serviceAccountName: $sa
  ${node:+nodeName: $node}
  automountServiceAccountToken: false
  containers: [{name: daemon, image: podcheckpoint:latest}]
POD
}

# sa_dir NAME SERVICEACCOUNT POD: a projected-token-like directory with a token
# bound to POD (the API token) and, for the controller, channel/token (audience
# channel.checkpointing.dev, the only credential that goes to node helpers).
sa_dir() {
	local d="$DEPLOY/$1/sa"
	mkdir -p "$d"
	chmod 0700 "$DEPLOY/$1" "$d"
	k -n "$NS" create token "$2" --duration=24h --bound-object-kind=Pod --bound-object-name="$3" >"$d/token.new"
	mv "$d/token.new" "$d/token"
	cp "$(js .caFile)" "$d/ca.crt"
	printf '%s' "$NS" >"$d/namespace"
	echo "$d"
}

# channel_token NAME POD: the controller's channel credential (a Deployment
# gets it from a projected volume with expirationSeconds 600, rotated by the
# kubelet; here it is minted for the length of an e2e run).
channel_token() {
	local d="$DEPLOY/$1/channel"
	mkdir -p "$d"
	chmod 0700 "$d"
	k -n "$NS" create token podcheckpoint-controller --audience=channel.checkpointing.dev \
		--duration="${PCP_CHANNEL_TOKEN_DURATION:-2h}" --bound-object-kind=Pod --bound-object-name="$2" >"$d/token.new"
	mv "$d/token.new" "$d/token"
	echo "$d/token"
}

start() { # name logfile args...
	local name=$1; shift
	local dir="$DEPLOY/$name"
	stop_pidfile "$dir/pid"
	# The daemons must not inherit the admin KUBECONFIG: they run as their ServiceAccounts.
	setsid env -u KUBECONFIG "$@" >>"$dir/log" 2>&1 </dev/null &
	echo $! >"$dir/pid"
}

CTL="$BIN_DIR/controller/podcheckpoint-controller"
NH="$BIN_DIR/node-helper/podcheckpoint-node-helper"

start_controller() { # [name] [identity] [metrics port]: a second one makes a leader election
	local name=${1:-controller} id=${2:-podcheckpoint-controller-0} mport=${3:-18080} sa ch
	daemon_pod "$id" podcheckpoint-controller
	sa=$(sa_dir "$name" podcheckpoint-controller "$id")
	ch=$(channel_token "$name" "$id")
	echo "http://127.0.0.1:$mport/metrics" >"$DEPLOY/$name/metrics-url"
	# shellcheck disable=SC2086
	start "$name" env KC_SA_DIR="$sa" KUBERNETES_SERVICE_HOST="$(js .apiServer.host)" \
		KUBERNETES_SERVICE_PORT="$(js .apiServer.port)" \
		POD_NAMESPACE="$NS" POD_NAME="$id" \
		"$CTL" --channel-token-file="$ch" --helper-wait-seconds="${PCP_HELPER_WAIT:-15}" --job-margin-seconds=15 --poll-seconds=2 \
		--metrics-addr="127.0.0.1:$mport" \
		${PCP_CONTROLLER_ARGS:-}
}

start_helper() { # node
	local n=$1 ip root sa
	ip=$(jq -r --arg n "$n" '.nodes[] | select(.name == $n) | .ip' "$STATE")
	root=$(jq -r --arg n "$n" '.nodes[] | select(.name == $n) | .rootDir' "$STATE")
	[ -n "$ip" ] && [ "$ip" != null ] || die "no node $n in $STATE"
	daemon_pod "pcp-helper-$n" podcheckpoint-node-helper "$n"
	sa=$(sa_dir "helper-$n" podcheckpoint-node-helper "pcp-helper-$n")
	echo "http://$ip:10444/metrics" >"$DEPLOY/helper-$n/metrics-url"
	# shellcheck disable=SC2086
	start "helper-$n" env KC_SA_DIR="$sa" KUBERNETES_SERVICE_HOST="$(js .apiServer.host)" \
		KUBERNETES_SERVICE_PORT="$(js .apiServer.port)" \
		POD_NAMESPACE="$NS" NODE_NAME="$n" NODE_IP="$ip" \
		"$NH" --port=10443 --kubelet-ca="$(js .kubeletCAFile)" \
		--kubelet-port="$(jq -r --arg n "$n" '.nodes[] | select(.name == $n) | .kubeletPort' "$STATE")" \
		--artifact-dir="$(dirname "$root")/podcheckpoint/artifacts" \
		--state-dir="$(dirname "$root")/podcheckpoint/state" \
		--kubelet-timeout-margin-seconds=3 --min-free-bytes=67108864 \
		--metrics-addr="$ip:10444" \
		--kubelet-root-dir="$root" --late-archive-grace-seconds="${PCP_LATE_GRACE:-60}" \
		${PCP_HELPER_ARGS:-}
}

# stop NAME [SIGNAL]: stop one daemon (default SIGTERM: a clean shutdown).
stop_one() {
	[ -n "${1:-}" ] || die "stop: which daemon?"
	stop_pidfile "$DEPLOY/$1/pid" "${2:-TERM}"
	echo "stopped $1"
}

# restart controller | controller-2 | helper-<node>: kill one daemon (SIGKILL,
# as a crash would) and start it again; controller-2 is a second controller
# (identity podcheckpoint-controller-1) for the leader election test.
restart() {
	stop_pidfile "$DEPLOY/${1:-none}/pid" KILL
	case "${1:-}" in
	controller) start_controller ;;
	controller-2) start_controller controller-2 podcheckpoint-controller-1 18081 ;;
	helper-*) start_helper "${1#helper-}" ;;
	*) die "restart: controller or helper-<node>" ;;
	esac
	echo "restarted $1 (pid $(cat "$DEPLOY/$1/pid"))"
}

deploy() {
	[ -x "$CTL" ] || die "no controller binary at $CTL (build first: cmake --build build)"
	[ -x "$NH" ] || die "no node helper binary at $NH"
	mkdir -p "$DEPLOY"
	k get namespace "$NS" >/dev/null 2>&1 || k apply -f "$ROOT/config/default/namespace.yaml" >/dev/null
	k apply -k "$ROOT/config/rbac" >/dev/null
	k apply -k "$ROOT/config/policies" >/dev/null

	start_controller
	local nodes n
	nodes="${PCP_DEPLOY_NODES:-$(js '.nodes[].name' | tr '\n' ' ')}"
	for n in $nodes; do start_helper "$n"; done
	echo "$nodes" >"$DEPLOY/nodes"

	# Ready when every helper's Lease is there and every process still runs.
	local deadline=$((SECONDS + 60)) ok
	while :; do
		ok=1
		for n in $nodes; do
			k -n "$NS" get lease "pcp-helper-$n" >/dev/null 2>&1 || ok=0
		done
		for f in "$DEPLOY"/*/pid; do
			kill -0 "$(cat "$f")" 2>/dev/null || die "$(basename "$(dirname "$f")") exited: $(tail -n 5 "$(dirname "$f")/log")"
		done
		[ $ok = 1 ] && break
		[ $SECONDS -lt $deadline ] || die "node helpers did not publish their Leases within 60s (logs under $DEPLOY)"
		sleep 0.5
	done
	echo "deployed: controller + node helpers on $nodes (logs under $DEPLOY)"
}

status() {
	local f
	shopt -s nullglob
	for f in "$DEPLOY"/*/pid; do
		if kill -0 "$(cat "$f")" 2>/dev/null; then s=running; else s=stopped; fi
		printf '%-20s pid %-8s %s  log %s\n' "$(basename "$(dirname "$f")")" "$(cat "$f")" "$s" "$(dirname "$f")/log"
	done
}

case "${1:-}" in
deploy) deploy ;;
restart) restart "${2:-}" ;;
stop) stop_one "${2:-}" "${3:-}" ;;
undeploy) undeploy ;;
status) status ;;
*) die "usage: deploy.sh deploy|undeploy|status|restart NAME|stop NAME [SIGNAL]" ;;
esac
