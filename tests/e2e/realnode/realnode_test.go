// Package realnode runs the operator as a user installs it — the image built
// from the Dockerfile and config/default (tests/e2e/cluster install) — on the
// test cluster's real node real-1 (kubelet + containerd + runc), and checkpoints
// a real container through the real kubelet.
//
// Where CRIU works (`criu check` passes: CRIU >= 4.1 on kernels >= 6.13) the
// checkpoint must succeed, encrypted, and decrypt to the kubelet's archive that
// checkpointctl reads. Where it does not (Debian's CRIU 3.17.1 on this kernel),
// the runtime fails the checkpoint, and the operator must say so exactly:
// Failed, KubeletError, the runtime's message, no plaintext left, helper healthy.
// The test prints which of the two it ran.
package realnode

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"podcheckpoint.dev/e2e/e2eutil"
	"podcheckpoint.dev/e2e/internal/cluster"
)

var pcpGVR = schema.GroupVersionResource{Group: "checkpointing.dev", Version: "v1alpha1", Resource: "podcheckpoints"}

const operatorNS = "podcheckpoint-system"

var (
	env  *e2eutil.Env
	node cluster.Node
)

func run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(e2eutil.E2EDir(), name), args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func TestMain(m *testing.M) {
	var err error
	if env, err = e2eutil.EnsureUp(); err != nil {
		fmt.Fprintf(os.Stderr, "realnode e2e: %v\n", err)
		os.Exit(1)
	}
	code := func() int {
		if len(env.State.RealNodes) == 0 {
			// never silently: the cluster was brought up without it on purpose
			fmt.Printf("realnode e2e: NOT RUN: the cluster has no real node (%s)\n", env.State.WithoutRealNodeReason)
			return 0
		}
		node = env.State.RealNodes[0]
		// The operator as local processes (cluster deploy) would be a second
		// controller and a second helper for real-1: stop them first.
		if pids, _ := filepath.Glob(filepath.Join(env.State.WorkDir, "deploy", "*", "pid")); len(pids) > 0 {
			fmt.Println("realnode e2e: stopping the locally deployed operator (cluster undeploy) for the installed one")
			if err := run("cluster", "undeploy"); err != nil {
				fmt.Fprintf(os.Stderr, "realnode e2e: undeploy: %v\n", err)
				return 1
			}
		}
		t0 := time.Now()
		if err := run("cluster", "install"); err != nil {
			fmt.Fprintf(os.Stderr, "realnode e2e: cluster install failed: %v\n", err)
			return 1
		}
		fmt.Printf("realnode e2e: installed in %.1fs\n", time.Since(t0).Seconds())
		code := m.Run()
		printRSS()
		if os.Getenv("PCP_E2E_KEEP") != "1" {
			if err := run("cluster", "uninstall"); err != nil {
				fmt.Fprintf(os.Stderr, "realnode e2e: uninstall: %v\n", err)
				code = 1
			}
		}
		return code
	}()
	if env.StartedByUs && os.Getenv("PCP_E2E_KEEP") != "1" {
		_ = e2eutil.Down()
	}
	os.Exit(code)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// operatorPods returns the helper pod on real-1 and the controller pod.
func operatorPods(t *testing.T) (helper, controller corev1.Pod) {
	t.Helper()
	list, err := env.Client.CoreV1().Pods(operatorNS).List(ctxT(t, 10*time.Second), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=podcheckpoint"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		switch p.Labels["app.kubernetes.io/component"] {
		case "node-helper":
			if p.Spec.NodeName == node.Name {
				helper = p
			}
		case "controller":
			controller = p
		}
	}
	if helper.Name == "" || controller.Name == "" {
		t.Fatalf("operator pods missing: helper %q controller %q", helper.Name, controller.Name)
	}
	return helper, controller
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func restarts(p corev1.Pod) int32 {
	var n int32
	for _, c := range p.Status.ContainerStatuses {
		n += c.RestartCount
	}
	return n
}

// The installed pods run as the manifests say: the helper as UID 0 with no
// capability at all, read-only root, only kubelet.crt from the node's pki.
func TestInstalledAsShipped(t *testing.T) {
	helper, controller := operatorPods(t)
	if !podReady(helper) || !podReady(controller) {
		t.Fatalf("not Ready: helper %v controller %v", podReady(helper), podReady(controller))
	}
	for _, v := range helper.Spec.Volumes {
		if v.HostPath != nil && (v.HostPath.Path == "/var/lib/kubelet/pki" || v.HostPath.Path == "/var/lib/kubelet") {
			t.Errorf("helper mounts %s: the node's credentials are in reach", v.HostPath.Path)
		}
	}
	// the process' effective capabilities, as the kernel has them
	pid := containerPid(t, helper)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && (f[0] == "CapEff:" || f[0] == "CapPrm:" || f[0] == "CapBnd:") && f[1] != "0000000000000000" {
			t.Errorf("helper %s %s, want none", f[0], f[1])
		}
		if len(f) >= 2 && f[0] == "Uid:" && f[1] != "0" {
			t.Errorf("helper runs as UID %s, want 0 (the kubelet's archives are 0600 root)", f[1])
		}
	}
	t.Logf("helper pid %d: UID 0, CapEff/CapPrm/CapBnd 0", pid)
}

// containerPid: the host pid of a pod's first container (crictl inspect).
func containerPid(t *testing.T, p corev1.Pod) int {
	t.Helper()
	if len(p.Status.ContainerStatuses) == 0 {
		t.Fatalf("%s: no container status", p.Name)
	}
	id := strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://")
	out, err := exec.Command(filepath.Join(env.State.NodeBinDir, "crictl"), "--runtime-endpoint", "unix://"+node.Real.ContainerdSocket,
		"inspect", "-o", "go-template", "--template", "{{.info.pid}}", id).Output() // stderr: config warnings
	if err != nil {
		t.Fatalf("crictl inspect %s: %v: %s", id, err, out)
	}
	var pid int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "%d", &pid); err != nil {
		t.Fatalf("crictl inspect pid %q: %v", out, err)
	}
	return pid
}

func counterPod(t *testing.T, ns string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "counter", Namespace: ns},
		Spec: corev1.PodSpec{
			NodeName:                      node.Name,
			TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{
				Name: "counter", Image: cluster.CounterImage, ImagePullPolicy: corev1.PullNever,
			}},
		},
	}
	if _, err := env.Client.CoreV1().Pods(ns).Create(ctxT(t, 10*time.Second), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := env.WaitPodRunning(ctxT(t, 90*time.Second), ns, "counter", 90*time.Second)
	if err != nil {
		t.Fatalf("counter pod on %s: %v", node.Name, err)
	}
	return got
}

type recipient struct{ certPEM, keyPEM []byte }

func newRecipient(t *testing.T) recipient {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "checkpoint-recipient"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(k)
	return recipient{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
}

func waitDone(t *testing.T, ns, name string, d time.Duration) *unstructured.Unstructured {
	t.Helper()
	deadline := time.Now().Add(d)
	var last *unstructured.Unstructured
	for time.Now().Before(deadline) {
		u, err := env.Dynamic.Resource(pcpGVR).Namespace(ns).Get(ctxT(t, 10*time.Second), name, metav1.GetOptions{})
		if err == nil {
			last = u
			if p, _, _ := unstructured.NestedString(u.Object, "status", "phase"); p == "Succeeded" || p == "Failed" {
				return u
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	b, _ := json.Marshal(last)
	t.Fatalf("PodCheckpoint %s/%s not done within %v: %s", ns, name, d, b)
	return nil
}

// checkpointFiles lists the kubelet's checkpoint archives on real-1.
func checkpointFiles(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(node.CheckpointsDir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// A checkpoint of a real container through the real kubelet, by the installed
// operator: success where CRIU works, the runtime's failure where it does not.
func TestCheckpointThroughRealKubelet(t *testing.T) {
	ns, err := env.CreateNamespace(ctxT(t, 10*time.Second), "realnode")
	if err != nil {
		t.Fatal(err)
	}
	pod := counterPod(t, ns)
	r := newRecipient(t)
	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctxT(t, 10*time.Second), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "recipient"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": r.certPEM, "tls.key": r.keyPEM},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	helperBefore, _ := operatorPods(t)
	before := checkpointFiles(t)
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "checkpointing.dev/v1alpha1", "kind": "PodCheckpoint",
		"metadata": map[string]any{"name": "cp", "namespace": ns},
		"spec": map[string]any{"podName": "counter", "leaveRunning": true, "encrypt": true,
			"encryptionSecret": "recipient", "timeoutSeconds": int64(120)},
	}}
	t0 := time.Now()
	if _, err := env.Dynamic.Resource(pcpGVR).Namespace(ns).Create(ctxT(t, 10*time.Second), obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	u := waitDone(t, ns, "cp", 200*time.Second)
	took := time.Since(t0)
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	msg, _, _ := unstructured.NestedString(u.Object, "status", "message")
	t.Logf("PodCheckpoint %s/cp: %s after %.1fs: %s", ns, phase, took.Seconds(), msg)

	if node.Real.CRIUCheckOK {
		fmt.Printf("realnode e2e: RAN the success path: %s\n", node.Real.CRIU)
		checkSucceeded(t, u, r, pod)
	} else {
		fmt.Printf("realnode e2e: RAN the CRIU-failure path (%s): the runtime cannot checkpoint on this machine\n", node.Real.CRIU)
		checkRuntimeFailure(t, u, ns)
	}

	// no plaintext kubelet archive left behind, either way
	after := checkpointFiles(t)
	if len(after) > len(before) {
		t.Errorf("kubelet archives left in %s: before %v, after %v", node.CheckpointsDir, before, after)
	}
	// the helper is healthy: same pod, Ready, no restart, Lease renewed
	helperAfter, _ := operatorPods(t)
	if helperAfter.UID != helperBefore.UID || restarts(helperAfter) != restarts(helperBefore) || !podReady(helperAfter) {
		t.Errorf("node helper not healthy after the checkpoint: pod %s→%s restarts %d→%d ready %v",
			helperBefore.Name, helperAfter.Name, restarts(helperBefore), restarts(helperAfter), podReady(helperAfter))
	}
	lease, err := env.Client.CoordinationV1().Leases(operatorNS).Get(ctxT(t, 10*time.Second), "pcp-helper-"+node.Name, metav1.GetOptions{})
	if err != nil || lease.Spec.RenewTime == nil || time.Since(lease.Spec.RenewTime.Time) > 20*time.Second {
		t.Errorf("helper Lease not renewed: %v %+v", err, lease)
	}
	// the workload keeps running (leaveRunning)
	p, err := env.Client.CoreV1().Pods(ns).Get(ctxT(t, 10*time.Second), "counter", metav1.GetOptions{})
	if err != nil || p.Status.Phase != corev1.PodRunning || restarts(*p) != 0 {
		t.Errorf("counter pod after the checkpoint: %v phase %s", err, p.Status.Phase)
	}
}

// checkRuntimeFailure: the kubelet answered 500 with the runtime's error; the
// operator reports exactly that.
func checkRuntimeFailure(t *testing.T, u *unstructured.Unstructured, ns string) {
	t.Helper()
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	msg, _, _ := unstructured.NestedString(u.Object, "status", "message")
	if phase != "Failed" {
		t.Fatalf("phase %s, want Failed (CRIU cannot dump here): %s", phase, msg)
	}
	var stalled map[string]any
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == "Stalled" {
			stalled = m
		}
	}
	if stalled == nil || stalled["status"] != "True" || stalled["reason"] != "KubeletError" {
		t.Errorf("Stalled condition %v, want True/KubeletError", stalled)
	}
	// nh_kubelet_map's sentence around the kubelet's own 500 text
	want := fmt.Sprintf("the kubelet could not checkpoint container counter: checkpointing of %s/counter/counter failed (", ns)
	if !strings.Contains(msg, want) {
		t.Errorf("status.message %q\nwant it to contain %q", msg, want)
	}
	// the end of the runtime's error survives: CRIU's dump log names the cause
	if !strings.Contains(msg, "dump.log") {
		t.Errorf("status.message %q lost the path of CRIU's dump log", msg)
	}
	// the runtime's (containerd/CRIU) own words, not a transport or TLS error
	if !strings.Contains(msg, "rpc error") || strings.Contains(msg, "certificate") || strings.Contains(msg, "cannot reach") {
		t.Errorf("status.message %q does not carry the runtime's error", msg)
	}
	if _, found, _ := unstructured.NestedMap(u.Object, "status", "artifact"); found {
		t.Errorf("a failed checkpoint records an artifact")
	}
}

func checkSucceeded(t *testing.T, u *unstructured.Unstructured, r recipient, pod *corev1.Pod) {
	t.Helper()
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	if phase != "Succeeded" {
		b, _ := json.Marshal(u.Object["status"])
		t.Fatalf("phase %s, want Succeeded (criu check passes): %s", phase, b)
	}
	path, _, _ := unstructured.NestedString(u.Object, "status", "artifact", "path")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("artifact: %v", err)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "a.cms"), filepath.Join(dir, "plain.tar")
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	_ = os.WriteFile(in, data, 0o600)
	_ = os.WriteFile(crt, r.certPEM, 0o600)
	_ = os.WriteFile(key, r.keyPEM, 0o600)
	if b, err := exec.Command("openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", in,
		"-inkey", key, "-recip", crt, "-out", out).CombinedOutput(); err != nil {
		t.Fatalf("openssl cms -decrypt: %v: %s", err, b)
	}
	plain, _ := os.ReadFile(out)
	tr := tar.NewReader(bytes.NewReader(plain))
	var inner string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if strings.HasSuffix(h.Name, ".tar") && strings.Contains(h.Name, "counter") {
			inner = filepath.Join(dir, filepath.Base(h.Name))
			f, _ := os.Create(inner)
			_, _ = io.Copy(f, tr)
			f.Close()
		}
	}
	if inner == "" {
		t.Fatalf("no kubelet archive for container counter in the bundle")
	}
	b, err := exec.Command(filepath.Join(env.State.NodeBinDir, "checkpointctl"), "show", inner).CombinedOutput()
	if err != nil {
		t.Fatalf("checkpointctl show: %v: %s", err, b)
	}
	if !strings.Contains(string(b), "counter") {
		t.Errorf("checkpointctl show does not name the container: %s", b)
	}
	t.Logf("checkpointctl show:\n%s", b)
	_ = pod
}

// printRSS: the resident memory of the installed pods (for the manifests' figures).
func printRSS() {
	list, err := env.Client.CoreV1().Pods(operatorNS).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=podcheckpoint"})
	if err != nil {
		return
	}
	for _, p := range list.Items {
		if len(p.Status.ContainerStatuses) == 0 {
			continue
		}
		id := strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://")
		out, err := exec.Command(filepath.Join(env.State.NodeBinDir, "crictl"), "--runtime-endpoint", "unix://"+node.Real.ContainerdSocket,
			"inspect", "-o", "go-template", "--template", "{{.info.pid}}", id).Output()
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + strings.TrimSpace(string(out)) + "/status")
		if err != nil {
			continue
		}
		var rss, hwm string
		for _, l := range strings.Split(string(st), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				rss = strings.TrimSpace(l[6:])
			}
			if strings.HasPrefix(l, "VmHWM:") {
				hwm = strings.TrimSpace(l[6:])
			}
		}
		fmt.Printf("realnode e2e: %-45s RSS %s, peak %s\n", p.Name, rss, hwm)
	}
}
