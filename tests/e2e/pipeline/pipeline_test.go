package pipeline

import (
	"bytes"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const done = 90 * time.Second

// A two-container pod, no encryption: Succeeded, the artifact matches its
// recorded size and hash and holds the kubelet's archives byte for byte.
func TestCheckpointPlain(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	pod := newPod(t, ns, "web", "node-1", nil, "app", "sidecar")
	newPCP(t, ns, "plain", map[string]any{"podName": "web"})
	u := waitDone(t, ns, "plain", done)
	if phaseOf(u) != "Succeeded" {
		t.Fatalf("phase %s: %v", phaseOf(u), u.Object["status"])
	}
	ready, _ := condition(u, "Ready")
	if ready.Status != "True" || ready.Reason != "CheckpointCompleted" {
		t.Errorf("Ready %+v, want True/CheckpointCompleted", ready)
	}
	if node, _, _ := unstructured.NestedString(u.Object, "status", "nodeName"); node != "node-1" {
		t.Errorf("status.nodeName %q", node)
	}
	if uid, _, _ := unstructured.NestedString(u.Object, "status", "podUID"); uid != string(pod.UID) {
		t.Errorf("status.podUID %q, want %s", uid, pod.UID)
	}
	for _, f := range []string{"startTime", "completionTime"} {
		if s, _, _ := unstructured.NestedString(u.Object, "status", f); s == "" {
			t.Errorf("status.%s is empty", f)
		}
	}
	cs, _, _ := unstructured.NestedSlice(u.Object, "status", "containers")
	if len(cs) != 2 {
		t.Errorf("status.containers has %d entries, want 2", len(cs))
	}
	data := checkArtifactFile(t, u, false, "")
	checkBundle(t, data, ns, "web", string(pod.UID), []string{"app", "sidecar"})
	waitEvent(t, ns, "plain", "Normal", "CheckpointCompleted")
	// the pod's own Events say so too (kubectl describe pod)
	waitEventOn(t, ns, "Pod", "web", "Normal", "Checkpointed")
	// leaveRunning defaults to true: the pod is still there.
	if _, err := kube.CoreV1().Pods(ns).Get(ctxT(t, 10*time.Second), "web", metav1.GetOptions{}); err != nil {
		t.Errorf("pod gone although leaveRunning defaults to true: %v", err)
	}
}

// Encrypted to RSA and to P-256 certificates: openssl cms -decrypt restores
// the tar byte for byte.
func TestCheckpointEncrypted(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"rsa", "p256"} {
		kind := kind
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			pod := newPod(t, ns, "db", "node-2", nil, "main", "exporter")
			r := makeRecipient(t, kind)
			tlsSecret(t, ns, "recipient", r)
			newPCP(t, ns, "enc", map[string]any{"podName": "db", "encrypt": true, "encryptionSecret": "recipient"})
			u := waitDone(t, ns, "enc", done)
			if phaseOf(u) != "Succeeded" {
				t.Fatalf("phase %s: %v", phaseOf(u), u.Object["status"])
			}
			data := checkArtifactFile(t, u, true, r.Fingerprint)
			if len(data) > 2 && data[0] != 0x30 {
				t.Errorf("encrypted artifact does not start with a DER SEQUENCE")
			}
			if strings.Contains(string(data), "config.dump") {
				t.Errorf("encrypted artifact contains plaintext tar names")
			}
			plain := opensslDecrypt(t, data, r)
			checkBundle(t, plain, ns, "db", string(pod.UID), []string{"main", "exporter"})
			// The project's own decrypt command gives the same bytes.
			if ours := toolDecrypt(t, data, r); !bytes.Equal(ours, plain) {
				t.Errorf("podcheckpoint-decrypt output (%d bytes) differs from openssl cms (%d bytes)", len(ours), len(plain))
			}
		})
	}
}

// leaveRunning: false deletes the pod once, after the artifact is durable.
func TestLeaveRunningFalse(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	newPod(t, ns, "batch", "node-1", nil, "worker")
	newPCP(t, ns, "final", map[string]any{"podName": "batch", "leaveRunning": false})
	u := waitDone(t, ns, "final", done)
	if phaseOf(u) != "Succeeded" {
		t.Fatalf("phase %s: %v", phaseOf(u), u.Object["status"])
	}
	if deleted, _, _ := unstructured.NestedBool(u.Object, "status", "podDeleted"); !deleted {
		// podDeleted may land in a later status write than Succeeded.
		deadline := time.Now().Add(15 * time.Second)
		for !deleted && time.Now().Before(deadline) {
			time.Sleep(300 * time.Millisecond)
			u, _ = pcpAPI.Namespace(ns).Get(ctxT(t, 10*time.Second), "final", metav1.GetOptions{})
			deleted, _, _ = unstructured.NestedBool(u.Object, "status", "podDeleted")
		}
		if !deleted {
			t.Errorf("status.podDeleted is not true")
		}
	}
	if !podGone(t, ns, "batch", 15*time.Second) {
		t.Errorf("pod batch still exists although leaveRunning is false")
	}
	waitEventOn(t, ns, "Pod", "batch", "Normal", "Checkpointed")
	waitEventOn(t, ns, "Pod", "batch", "Normal", "DeletedAfterCheckpoint")
	checkArtifactFile(t, u, false, "")
}

// Every reason that bad input can provoke, decided before any checkpoint.
func TestValidationFailures(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	running := newPod(t, ns, "running", "node-1", nil, "app")
	newPod(t, ns, "pending", "", nil, "app") // no node: stays Pending

	rsaR := makeRecipient(t, "rsa")
	edR := makeRecipient(t, "ed25519")
	newSecret(t, ns, "opaque", corev1.SecretTypeOpaque, map[string][]byte{"tls.crt": rsaR.CertPEM})
	newSecret(t, ns, "garbage", corev1.SecretTypeTLS, map[string][]byte{
		"tls.crt": []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"),
		"tls.key": []byte("junk")})
	tlsSecret(t, ns, "ed25519", edR)
	tlsSecret(t, ns, "expired", makeRecipient(t, "expired"))

	cases := []struct {
		name, reason string
		spec         map[string]any
	}{
		{"missing-pod", "PodNotFound", map[string]any{"podName": "nope"}},
		{"pending-pod", "PodNotRunning", map[string]any{"podName": "pending"}},
		{"replaced-pod", "SourcePodReplaced", map[string]any{"podName": "running", "podUID": "00000000-0000-0000-0000-000000000000"}},
		{"missing-container", "ContainerNotFound", map[string]any{"podName": "running", "containers": []any{"app", "ghost"}}},
		{"missing-secret", "SecretNotFound", map[string]any{"podName": "running", "encrypt": true, "encryptionSecret": "absent"}},
		{"wrong-type", "SecretWrongType", map[string]any{"podName": "running", "encrypt": true, "encryptionSecret": "opaque"}},
		{"garbage-cert", "InvalidCertificate", map[string]any{"podName": "running", "encrypt": true, "encryptionSecret": "garbage"}},
		{"ed25519-cert", "InvalidCertificate", map[string]any{"podName": "running", "encrypt": true, "encryptionSecret": "ed25519"}},
		{"expired-cert", "InvalidCertificate", map[string]any{"podName": "running", "encrypt": true, "encryptionSecret": "expired"}},
	}
	for _, c := range cases {
		newPCP(t, ns, c.name, c.spec)
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			u := waitDone(t, ns, c.name, 30*time.Second)
			expectFailed(t, u, c.reason)
			if _, found, _ := unstructured.NestedString(u.Object, "status", "startTime"); found {
				t.Errorf("a rejected PodCheckpoint was dispatched (startTime set)")
			}
		})
	}
	// Nothing was checkpointed for the running pod.
	for name := range standinArchives(t) {
		if strings.HasPrefix(name, "checkpoint-running_"+ns+"-") {
			t.Errorf("the kubelet was asked to checkpoint %s although every request was invalid", name)
		}
	}
	if ed, ok := condition(waitDone(t, ns, "ed25519-cert", time.Second), "Stalled"); ok && !strings.Contains(strings.ToLower(ed.Message), "ed25519") {
		t.Errorf("Ed25519 refusal does not name the key type: %q", ed.Message)
	}
	if ex, ok := condition(waitDone(t, ns, "expired-cert", time.Second), "Stalled"); ok && !strings.Contains(strings.ToLower(ex.Message), "expired") {
		t.Errorf("expired-certificate refusal does not say so: %q", ex.Message)
	}
	_ = running
}

// Faults of the kubelet and of the node: 500, hang, no helper.
func TestRuntimeFailures(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	newPod(t, ns, "broken", "node-1", map[string]string{"checkpoint.stand-in/fail": "500"}, "app")
	newPod(t, ns, "stuck", "node-2", map[string]string{"checkpoint.stand-in/hang": "true"}, "app")
	newPCP(t, ns, "kubelet-500", map[string]any{"podName": "broken"})
	newPCP(t, ns, "kubelet-hang", map[string]any{"podName": "stuck", "timeoutSeconds": 2})
	newPod(t, ns, "cut", "node-1", map[string]string{"checkpoint.stand-in/truncate": "true"}, "app")
	newPCP(t, ns, "kubelet-truncated", map[string]any{"podName": "cut"})

	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		u := waitDone(t, ns, "kubelet-truncated", done)
		expectFailed(t, u, "KubeletError")
		if msg, _, _ := unstructured.NestedString(u.Object, "status", "message"); !strings.Contains(msg, "damaged") {
			t.Errorf("truncated archive message: %q", msg)
		}
		// The damaged plaintext archive is not left on the node.
		for _, n := range state.Nodes {
			left, _ := filepath.Glob(filepath.Join(n.CheckpointsDir, "checkpoint-cut_"+ns+"-*"))
			if len(left) > 0 {
				t.Errorf("plaintext kubelet archives left after a failure: %v", left)
			}
		}
	}()
	go func() {
		defer wg.Done()
		u := waitDone(t, ns, "kubelet-500", done)
		expectFailed(t, u, "KubeletError")
		if msg, _, _ := unstructured.NestedString(u.Object, "status", "message"); !strings.Contains(msg, "CRIU") {
			t.Errorf("KubeletError message does not carry the runtime's answer: %q", msg)
		}
	}()
	go func() {
		defer wg.Done()
		u := waitDone(t, ns, "kubelet-hang", done)
		expectFailed(t, u, "Timeout")
	}()
	wg.Wait()
}

// A pod on a node without a node helper: NodeHelperUnavailable after a bounded wait.
func TestNoNodeHelper(t *testing.T) {
	t.Parallel()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "node-nohelper",
			Labels:      map[string]string{"kubernetes.io/hostname": "node-nohelper"},
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
		},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.99"}}},
	}
	if _, err := kube.CoreV1().Nodes().Create(ctxT(t, 10*time.Second), node, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("create node: %v", err)
	}
	ns := newNamespace(t)
	newPod(t, ns, "orphan", "node-nohelper", nil, "app")
	newPCP(t, ns, "no-helper", map[string]any{"podName": "orphan"})
	u := waitDone(t, ns, "no-helper", done)
	expectFailed(t, u, "NodeHelperUnavailable")
}

// kubectl shows the printer columns and kubectl wait returns on success.
func TestKubectlColumnsAndWait(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	newPod(t, ns, "counter", "node-2", nil, "counter")
	newPCP(t, ns, "cli", map[string]any{"podName": "counter"})
	kubectl(t, "-n", ns, "wait", "--for=condition=Ready", "pcp/cli", "--timeout=90s")
	out := kubectl(t, "-n", ns, "get", "pcp", "-o", "wide")
	header := strings.Fields(strings.SplitN(out, "\n", 2)[0])
	want := []string{"NAME", "POD", "NODE", "PHASE", "ENCRYPTED", "AGE", "ARTIFACT", "MESSAGE"}
	if strings.Join(header, " ") != strings.Join(want, " ") {
		t.Errorf("kubectl get pcp -o wide header %v, want %v", header, want)
	}
	row := strings.Fields(strings.SplitN(out, "\n", 3)[1])
	if len(row) < 7 || row[0] != "cli" || row[1] != "counter" || row[2] != "node-2" || row[3] != "Succeeded" || row[4] != "false" || !strings.HasPrefix(row[6], "/") {
		t.Errorf("kubectl get pcp row %v", row)
	}
}

// Two PodCheckpoints for the same pod at once are serialised: both succeed,
// with two distinct artifacts.
func TestTwoCheckpointsSamePod(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	newPod(t, ns, "twice", "node-1", nil, "app")
	newPCP(t, ns, "first", map[string]any{"podName": "twice"})
	newPCP(t, ns, "second", map[string]any{"podName": "twice"})
	a := waitDone(t, ns, "first", done)
	b := waitDone(t, ns, "second", done)
	if phaseOf(a) != "Succeeded" || phaseOf(b) != "Succeeded" {
		t.Fatalf("phases %s, %s; statuses %v / %v", phaseOf(a), phaseOf(b), a.Object["status"], b.Object["status"])
	}
	pa, _, _ := unstructured.NestedString(a.Object, "status", "artifact", "path")
	pb, _, _ := unstructured.NestedString(b.Object, "status", "artifact", "path")
	if pa == pb {
		t.Errorf("both checkpoints wrote %s", pa)
	}
}
