#!/usr/bin/env bash
# The main job, on a fresh machine: set up, build, start the built-in test
# cluster (real etcd + kube-apiserver, kwok nodes, kubelet stand-ins), deploy
# the operator, checkpoint a running pod with encryption, show the result,
# decrypt the artifact and list what is inside. The cluster stays up.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=/usr/local/go/bin:$PATH

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "Installing packages and building (first run takes a while)"
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

say "Starting the test cluster"
KCFG=$(tests/e2e/cluster up | tail -n 1)
export "$KCFG"
k() { tests/e2e/cluster kubectl "$@"; }
k get nodes -o wide

say "Deploying the operator (controller + one node helper per node)"
PCP_BIN_DIR="$ROOT/build" tests/e2e/cluster deploy
k -n podcheckpoint-system get leases

say "Creating the counter pod (one container printing an increasing number)"
k apply -f - <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: counter
  namespace: default
spec:
  nodeName: node-1
  containers:
    - name: counter
      image: registry.k8s.io/busybox
      command: ["sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 1; done"]
YAML
k wait --for=condition=Ready pod/counter --timeout=60s

say "Creating the recipient: a kubernetes.io/tls Secret (the operator reads only tls.crt)"
work=$(mktemp -d /tmp/pcp-demo.XXXXXX)
openssl req -x509 -newkey rsa:3072 -sha256 -days 30 -nodes -subj "/CN=checkpoint-recipient" \
  -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
k delete secret checkpoint-recipient --ignore-not-found >/dev/null
k create secret tls checkpoint-recipient --cert="$work/tls.crt" --key="$work/tls.key"

say "Applying a PodCheckpoint with encrypt: true, leaveRunning: true"
k delete podcheckpoints.checkpointing.dev counter-checkpoint --ignore-not-found >/dev/null
k apply -f config/samples/podcheckpoint.yaml
k get pcp -w --request-timeout=60s &
watcher=$!
k wait --for=condition=Ready pcp/counter-checkpoint --timeout=120s
kill "$watcher" 2>/dev/null || true
wait "$watcher" 2>/dev/null || true

say "The result"
k get pcp -o wide
k get pcp counter-checkpoint -o jsonpath='{.status}' | jq .
art=$(k get pcp counter-checkpoint -o jsonpath='{.status.artifact.path}')
sha=$(k get pcp counter-checkpoint -o jsonpath='{.status.artifact.sha256}')
ls -l "$art"
echo "$sha  $art" | sha256sum -c -

say "Decrypting with openssl cms (tls.key never left this machine's demo folder)"
openssl cms -decrypt -binary -inform DER -in "$art" -inkey "$work/tls.key" -recip "$work/tls.crt" \
  -out "$work/checkpoint.tar"
tar -tvf "$work/checkpoint.tar"
tar -xOf "$work/checkpoint.tar" manifest.json | jq '{pod, node, containers}'
k get pod counter

cat <<EOT

The cluster is still up. Explore it:
  export $KCFG
  tests/e2e/cluster kubectl get pcp -o wide
  tests/e2e/cluster status
Decrypted checkpoint: $work/checkpoint.tar   (key: $work/tls.key)
Stop everything:
  tests/e2e/cluster down
EOT
