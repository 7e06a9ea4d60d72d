#!/usr/bin/env bash
# The operator as a user installs it, on the test cluster's real node real-1:
#   - the image from the repo's Dockerfile, built with the local Docker engine
#     (DOCKER_BUILDKIT=0; base from scripts/make-base-image.sh), saved and
#     imported into real-1's containerd as podcheckpoint:e2e;
#   - config/default (or config/overlays/kubelet-serving-ca when real-1's kubelet
#     has serverTLSBootstrap) through the test overlay tests/e2e/overlay/, which
#     changes only what this cluster differs in (see overlay/common);
#   - waits until the DaemonSet's pod on real-1 and the controller are Ready and
#     the helper published its Lease.
#
#   install.sh install | uninstall
# uninstall removes the Deployment and the DaemonSet (and waits for their pods);
# namespace, CRD and RBAC stay, the rest of the cluster uses them.
set -euo pipefail
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$E2E_DIR/../.." && pwd)"
WORK="${PCP_CLUSTER_DIR:-${PCP_CACHE:-$HOME/.cache/podcheckpoint}/cluster}"
STATE="$WORK/cluster.json"
NS=podcheckpoint-system
IMAGE=podcheckpoint:e2e

die() { echo "install: $*" >&2; exit 1; }
[ -f "$STATE" ] || die "no cluster state at $STATE: run tests/e2e/cluster up first"
js() { jq -r "$1" "$STATE"; }
KUBECTL="$(js .binDir)/kubectl"
export KUBECONFIG="$(js .adminKubeconfig)"
k() { "$KUBECTL" "$@"; }
NODE=$(js '.realNodes[0].name // empty')
[ -n "$NODE" ] || die "the cluster has no real node (PCP_E2E_NO_REAL_NODE=1?): install needs real-1"

overlay() {
	case "$(js '.realNodes[0].real.servingCert')" in
	bootstrap) echo "$E2E_DIR/overlay/bootstrap" ;;
	*) echo "$E2E_DIR/overlay/self-signed" ;;
	esac
}

manifests() {
	k kustomize "$(overlay)" | sed "s/@APISERVER_PORT@/$(js .apiServer.port)/g"
}

install() {
	local t0 t1 tar
	t0=$SECONDS
	"$ROOT/scripts/make-base-image.sh" >&2
	t1=$SECONDS
	(cd "$ROOT" && DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" . >/dev/null) || die "docker build failed"
	echo "install: image $IMAGE built in $((SECONDS - t1))s, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}')" >&2
	mkdir -p "$WORK/install"
	tar="$WORK/install/podcheckpoint-e2e.tar"
	docker save -o "$tar" "$IMAGE"
	"$(js .harnessBin)" import-image "$NODE" "$tar"
	echo "install: applying $(overlay) (base: $(sed -n 's|^  - \.\./\.\./\.\./\.\./||p' "$(overlay)/kustomization.yaml"))" >&2
	manifests | k apply -f - >/dev/null
	if ! k -n "$NS" rollout status daemonset/podcheckpoint-node-helper --timeout=120s >&2 ||
		! k -n "$NS" rollout status deployment/podcheckpoint-controller --timeout=120s >&2; then
		k -n "$NS" get pods -o wide >&2 || true
		k -n "$NS" describe pods >&2 | tail -n 40 || true
		for p in $(k -n "$NS" get pods -o name); do k -n "$NS" logs "$p" --tail=20 >&2 || true; done
		die "the operator did not become Ready on $NODE"
	fi
	local deadline=$((SECONDS + 60))
	until k -n "$NS" get lease "pcp-helper-$NODE" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || die "the node helper on $NODE published no Lease within 60s"
		sleep 0.5
	done
	k -n "$NS" get pods -o wide >&2
	echo "install: installed on $NODE in $((SECONDS - t0))s"
}

uninstall() {
	k -n "$NS" delete deployment/podcheckpoint-controller daemonset/podcheckpoint-node-helper \
		--ignore-not-found --wait=true --timeout=90s >/dev/null
	k -n "$NS" wait --for=delete pod -l app.kubernetes.io/name=podcheckpoint --timeout=90s >/dev/null 2>&1 || true
	echo "uninstalled"
}

case "${1:-}" in
install) install ;;
uninstall) uninstall ;;
manifests) manifests ;;
*) die "usage: install.sh install|uninstall|manifests" ;;
esac
