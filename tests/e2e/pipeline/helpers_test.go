// Package pipeline drives the whole operator end to end through the real API
// server of the test cluster: PodCheckpoints are created with the dynamic
// client, the controller and node helpers (real C binaries, deployed by
// `tests/e2e/cluster deploy`) do the work against the kubelet stand-ins, and
// the tests assert on status, Events, the artifact on disk and the pods.
package pipeline

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

var pcpGVR = schema.GroupVersionResource{Group: "checkpointing.dev", Version: "v1alpha1", Resource: "podcheckpoints"}

const operatorNS = "podcheckpoint-system"

// clusterState is the part of tests/e2e's cluster.json these tests read.
type clusterState struct {
	WorkDir         string `json:"workDir"`
	BinDir          string `json:"binDir"`
	AdminKubeconfig string `json:"adminKubeconfig"`
	Nodes           []struct {
		Name           string `json:"name"`
		IP             string `json:"ip"`
		RootDir        string `json:"rootDir"`
		CheckpointsDir string `json:"checkpointsDir"`
		RequestLog     string `json:"requestLog"`
	} `json:"nodes"`
}

var (
	state  clusterState
	kube   *kubernetes.Clientset
	dyn    dynamic.Interface
	pcpAPI dynamic.NamespaceableResourceInterface
)

func workDir() string {
	if d := os.Getenv("PCP_CLUSTER_DIR"); d != "" {
		return d
	}
	cache := os.Getenv("PCP_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "podcheckpoint")
	}
	return filepath.Join(cache, "cluster")
}

func TestMain(m *testing.M) {
	if err := setup(); err != nil {
		fmt.Fprintf(os.Stderr, "pipeline e2e: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := checkLogsHoldNoSecrets(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// checkLogsHoldNoSecrets: after every test ran, no daemon log may contain a
// ServiceAccount token or a private key.
func checkLogsHoldNoSecrets() error {
	deploy := filepath.Join(workDir(), "deploy")
	logs, _ := filepath.Glob(filepath.Join(deploy, "*", "log"))
	tokens, _ := filepath.Glob(filepath.Join(deploy, "*", "sa", "token"))
	channel, _ := filepath.Glob(filepath.Join(deploy, "*", "channel", "token"))
	tokens = append(tokens, channel...)
	if len(logs) == 0 {
		return fmt.Errorf("no daemon logs under %s", deploy)
	}
	var secrets []string
	for _, f := range tokens {
		if b, err := os.ReadFile(f); err == nil && len(b) > 20 {
			tok := strings.TrimSpace(string(b))
			secrets = append(secrets, tok, tok[len(tok)-20:]) // also a token's signature part
		}
	}
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			return err
		}
		text := string(b)
		for _, sec := range secrets {
			if strings.Contains(text, sec) {
				return fmt.Errorf("%s contains a ServiceAccount token", l)
			}
		}
		if strings.Contains(text, "PRIVATE KEY") {
			return fmt.Errorf("%s contains a private key", l)
		}
	}
	fmt.Printf("checked %d daemon logs: no token, no private key\n", len(logs))
	return nil
}

func setup() error {
	raw, err := os.ReadFile(filepath.Join(workDir(), "cluster.json"))
	if err != nil {
		return fmt.Errorf("no test cluster (run tests/e2e/cluster up && tests/e2e/cluster deploy): %w", err)
	}
	if err := json.Unmarshal(raw, &state); err != nil {
		return fmt.Errorf("cluster.json: %w", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", state.AdminKubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 100, 200
	if kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	pcpAPI = dyn.Resource(pcpGVR)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range state.Nodes {
		if _, err := kube.CoordinationV1().Leases(operatorNS).Get(ctx, "pcp-helper-"+n.Name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("node helper of %s has no Lease (run tests/e2e/cluster deploy): %w", n.Name, err)
		}
	}
	return nil
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace creates a fresh namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(fmt.Sprintf("e2e-%s-%d", sanitize(t.Name()), time.Now().UnixNano()%100000))
	if len(name) > 60 {
		name = name[len(name)-60:]
		name = "e" + strings.TrimLeft(name, "-")
	}
	_, err := kube.CoreV1().Namespaces().Create(ctxT(t, 10*time.Second),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteRune('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

// newPod creates a pod bound to node (kwok makes it Running) and waits until
// it runs, unless node is "" (then it stays Pending: no scheduler runs).
func newPod(t *testing.T, ns, name, node string, annotations map[string]string, containers ...string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec:       corev1.PodSpec{NodeName: node},
	}
	if node == "" {
		// no node: stays Pending, also with kube-scheduler running (no node has this label)
		pod.Spec.NodeSelector = map[string]string{"podcheckpoint.test/no-such-node": "true"}
	}
	for _, c := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
			Name: c, Image: "registry.k8s.io/busybox",
			Command: []string{"sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 1; done"},
		})
	}
	created, err := kube.CoreV1().Pods(ns).Create(ctxT(t, 10*time.Second), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	if node == "" {
		return created
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		p, err := kube.CoreV1().Pods(ns).Get(ctxT(t, 10*time.Second), name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			return p
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s did not become Running on %s within 60s", ns, name, node)
	return nil
}

// newPCP creates a PodCheckpoint with the given spec.
func newPCP(t *testing.T, ns, name string, spec map[string]any) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "checkpointing.dev/v1alpha1",
		"kind":       "PodCheckpoint",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec":       spec,
	}}
	created, err := pcpAPI.Namespace(ns).Create(ctxT(t, 10*time.Second), obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create PodCheckpoint %s/%s: %v", ns, name, err)
	}
	return created
}

func phaseOf(u *unstructured.Unstructured) string {
	p, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	return p
}

// waitPhase waits until the PodCheckpoint is Succeeded or Failed.
func waitDone(t *testing.T, ns, name string, timeout time.Duration) *unstructured.Unstructured {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *unstructured.Unstructured
	for time.Now().Before(deadline) {
		u, err := pcpAPI.Namespace(ns).Get(ctxT(t, 10*time.Second), name, metav1.GetOptions{})
		if err == nil {
			last = u
			if p := phaseOf(u); p == "Succeeded" || p == "Failed" {
				return u
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	st := "<none>"
	if last != nil {
		b, _ := json.Marshal(last.Object["status"])
		st = string(b)
	}
	t.Fatalf("PodCheckpoint %s/%s did not finish within %v; status: %s", ns, name, timeout, st)
	return nil
}

type cond struct{ Status, Reason, Message string }

func condition(u *unstructured.Unstructured, typ string) (cond, bool) {
	list, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range list {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			s, _ := m["status"].(string)
			r, _ := m["reason"].(string)
			msg, _ := m["message"].(string)
			return cond{s, r, msg}, true
		}
	}
	return cond{}, false
}

// expectFailed asserts a terminal failure with the given reason, a message, and
// a Warning Event with that reason on the PodCheckpoint.
func expectFailed(t *testing.T, u *unstructured.Unstructured, reason string) {
	t.Helper()
	ns, name := u.GetNamespace(), u.GetName()
	if p := phaseOf(u); p != "Failed" {
		b, _ := json.Marshal(u.Object["status"])
		t.Fatalf("%s: phase %q, want Failed (%s); status %s", name, p, reason, b)
	}
	ready, ok := condition(u, "Ready")
	if !ok || ready.Status != "False" || ready.Reason != "CheckpointFailed" {
		t.Errorf("%s: Ready condition %+v, want False/CheckpointFailed", name, ready)
	}
	stalled, ok := condition(u, "Stalled")
	if !ok || stalled.Status != "True" || stalled.Reason != reason {
		t.Errorf("%s: Stalled condition %+v, want True/%s", name, stalled, reason)
	}
	msg, _, _ := unstructured.NestedString(u.Object, "status", "message")
	if len(msg) < 10 {
		t.Errorf("%s: status.message %q is not a human sentence", name, msg)
	}
	if og, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration"); og != u.GetGeneration() {
		t.Errorf("%s: observedGeneration %d, want %d", name, og, u.GetGeneration())
	}
	waitEvent(t, ns, name, "Warning", reason)
	if _, found, _ := unstructured.NestedMap(u.Object, "status", "artifact"); found && reason != "PodDeleteFailed" {
		t.Errorf("%s: failed checkpoint records an artifact", name)
	}
}

// waitEvent waits for an events.k8s.io/v1 Event about the PodCheckpoint.
func waitEvent(t *testing.T, ns, name, typ, reason string) {
	t.Helper()
	waitEventOn(t, ns, "PodCheckpoint", name, typ, reason)
}

// waitEventOn waits for an events.k8s.io/v1 Event about the object kind/name.
func waitEventOn(t *testing.T, ns, kind, name, typ, reason string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		evs, err := kube.EventsV1().Events(ns).List(ctxT(t, 10*time.Second), metav1.ListOptions{})
		if err == nil {
			for _, e := range evs.Items {
				if e.Regarding.Name == name && e.Regarding.Kind == kind && e.Type == typ && e.Reason == reason {
					if e.Note == "" {
						t.Errorf("event %s/%s for %s has no note", typ, reason, name)
					}
					return
				}
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Errorf("no %s Event with reason %s about %s %s/%s", typ, reason, kind, ns, name)
}

// ---------------------------------------------------------------- certificates

type recipient struct {
	CertPEM, KeyPEM   []byte
	CertPath, KeyPath string
	Fingerprint       string
}

func makeRecipient(t *testing.T, kind string) recipient {
	t.Helper()
	var pub, priv any
	switch kind {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		pub, priv = &k.PublicKey, k
	case "p256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub, priv = &k.PublicKey, k
	case "expired": // RSA, but its validity ended yesterday
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		pub, priv = &k.PublicKey, k
	case "ed25519":
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub, priv = p, k
	default:
		t.Fatalf("unknown key kind %s", kind)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "checkpoint-recipient-" + kind},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement | x509.KeyUsageDigitalSignature,
	}
	if kind == "expired" {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := recipient{
		CertPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		CertPath: filepath.Join(dir, "tls.crt"),
		KeyPath:  filepath.Join(dir, "tls.key"),
	}
	sum := sha256.Sum256(der)
	r.Fingerprint = hex.EncodeToString(sum[:])
	if err := os.WriteFile(r.CertPath, r.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.KeyPath, r.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

func newSecret(t *testing.T, ns, name string, typ corev1.SecretType, data map[string][]byte) {
	t.Helper()
	_, err := kube.CoreV1().Secrets(ns).Create(ctxT(t, 10*time.Second), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Type: typ, Data: data,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create secret %s/%s: %v", ns, name, err)
	}
}

func tlsSecret(t *testing.T, ns, name string, r recipient) {
	newSecret(t, ns, name, corev1.SecretTypeTLS, map[string][]byte{"tls.crt": r.CertPEM, "tls.key": r.KeyPEM})
}

// ---------------------------------------------------------------- artifacts

type tarEntry struct {
	Name string
	Data []byte
	Mode int64
}

func readTar(t *testing.T, data []byte) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("artifact is not a well-formed tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("tar entry %s: %v", h.Name, err)
		}
		out = append(out, tarEntry{h.Name, b, h.Mode})
	}
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkArtifactFile checks the stored file against status.artifact and returns its bytes.
func checkArtifactFile(t *testing.T, u *unstructured.Unstructured, encrypted bool, fingerprint string) []byte {
	t.Helper()
	art, found, _ := unstructured.NestedMap(u.Object, "status", "artifact")
	if !found {
		t.Fatalf("no status.artifact")
	}
	path, _ := art["path"].(string)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("artifact %s: %v", path, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("artifact mode %o, want 0600", st.Mode().Perm())
	}
	if dst, _ := os.Stat(filepath.Dir(path)); dst.Mode().Perm() != 0o700 {
		t.Errorf("artifact directory mode %o, want 0700", dst.Mode().Perm())
	}
	if sz, _, _ := unstructured.NestedInt64(u.Object, "status", "artifact", "sizeBytes"); sz != int64(len(data)) {
		t.Errorf("status sizeBytes %d, file has %d bytes", sz, len(data))
	}
	if sum, _ := art["sha256"].(string); sum != sha256hex(data) {
		t.Errorf("status sha256 %s, file has %s", sum, sha256hex(data))
	}
	if enc, _ := art["encrypted"].(bool); enc != encrypted {
		t.Errorf("status encrypted %v, want %v", enc, encrypted)
	}
	if fp, _ := art["recipientFingerprint"].(string); encrypted && fp != fingerprint {
		t.Errorf("recipientFingerprint %q, want %q", fp, fingerprint)
	}
	loc, _, _ := unstructured.NestedString(u.Object, "status", "checkpointLocation", "nodeLocal", "path")
	if loc != path {
		t.Errorf("checkpointLocation path %q, artifact path %q", loc, path)
	}
	return data
}

func opensslDecrypt(t *testing.T, data []byte, r recipient) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "artifact.cms"), filepath.Join(dir, "plain.tar")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("openssl", "cms", "-decrypt", "-binary", "-inform", "DER",
		"-in", in, "-inkey", r.KeyPath, "-recip", r.CertPath, "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl cms -decrypt: %v: %s", err, b)
	}
	plain, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

func binDir() string {
	if d := os.Getenv("PCP_BIN_DIR"); d != "" {
		return d
	}
	wd, _ := os.Getwd() // tests/e2e/pipeline
	return filepath.Join(wd, "..", "..", "..", "build")
}

func toolDecrypt(t *testing.T, data []byte, r recipient) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "artifact.cms"), filepath.Join(dir, "plain.tar")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir(), "tools", "podcheckpoint-decrypt"), in,
		"--key", r.KeyPath, "--cert", r.CertPath, "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("podcheckpoint-decrypt: %v: %s", err, b)
	}
	plain, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

// standinArchives returns, by archive base name, the SHA-256 the kubelet
// stand-in recorded for every archive it wrote (from its request log).
func standinArchives(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range state.Nodes {
		raw, err := os.ReadFile(n.RequestLog)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue
			}
			p, _ := rec["archive"].(string)
			s, _ := rec["sha256"].(string)
			if p != "" && s != "" {
				out[filepath.Base(p)] = s
			}
		}
	}
	return out
}

// checkBundle checks a plaintext pod-level tar: every kubelet archive the
// stand-in wrote for this pod, byte for byte, and manifest.json describing them.
func checkBundle(t *testing.T, plain []byte, ns, pod string, podUID string, containers []string) {
	t.Helper()
	entries := readTar(t, plain)
	byName := map[string]tarEntry{}
	for _, e := range entries {
		byName[e.Name] = e
	}
	mf, ok := byName["manifest.json"]
	if !ok {
		t.Fatalf("artifact has no manifest.json; entries: %v", names(entries))
	}
	var manifest struct {
		Pod        struct{ Namespace, Name, UID string } `json:"pod"`
		Node       string                                `json:"node"`
		Containers []struct {
			Name, Archive, Sha256 string
			SizeBytes             int64 `json:"sizeBytes"`
		} `json:"containers"`
	}
	if err := json.Unmarshal(mf.Data, &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if manifest.Pod.Namespace != ns || manifest.Pod.Name != pod || manifest.Pod.UID != podUID {
		t.Errorf("manifest pod %+v, want %s/%s %s", manifest.Pod, ns, pod, podUID)
	}
	if len(manifest.Containers) != len(containers) {
		t.Fatalf("manifest has %d containers, want %d", len(manifest.Containers), len(containers))
	}
	recorded := standinArchives(t)
	for i, c := range manifest.Containers {
		if c.Name != containers[i] {
			t.Errorf("manifest container %d is %s, want %s", i, c.Name, containers[i])
		}
		e, ok := byName[c.Archive]
		if !ok {
			t.Errorf("manifest names archive %s, not in the tar (%v)", c.Archive, names(entries))
			continue
		}
		if !strings.HasPrefix(c.Archive, fmt.Sprintf("checkpoint-%s_%s-%s-", pod, ns, c.Name)) {
			t.Errorf("archive name %s does not follow the kubelet's naming", c.Archive)
		}
		if got := sha256hex(e.Data); got != c.Sha256 || int64(len(e.Data)) != c.SizeBytes {
			t.Errorf("archive %s: sha256 %s size %d, manifest says %s %d", c.Archive, got, len(e.Data), c.Sha256, c.SizeBytes)
		}
		if want, ok := recorded[c.Archive]; !ok || want != c.Sha256 {
			t.Errorf("archive %s: sha256 %s, the kubelet stand-in wrote %q", c.Archive, c.Sha256, want)
		}
		inner := readTar(t, e.Data)
		var got []string
		for _, ie := range inner {
			got = append(got, ie.Name)
		}
		for _, want := range []string{"config.dump", "spec.dump", "rootfs-diff.tar"} {
			if !contains(got, want) {
				t.Errorf("kubelet archive %s lacks %s (%v)", c.Archive, want, got)
			}
		}
		// The plaintext kubelet archive must be gone from the node.
		for _, n := range state.Nodes {
			if _, err := os.Stat(filepath.Join(n.CheckpointsDir, c.Archive)); err == nil {
				t.Errorf("plaintext kubelet archive %s left on %s", c.Archive, n.Name)
			}
		}
	}
}

func names(es []tarEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s || strings.TrimSuffix(x, "/") == s {
			return true
		}
	}
	return false
}

func podGone(t *testing.T, ns, name string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		_, err := kube.CoreV1().Pods(ns).Get(ctxT(t, 10*time.Second), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true
		}
		time.Sleep(250 * time.Millisecond)
	}
	return false
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(state.BinDir, "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+state.AdminKubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %v: %v\n%s", args, err, out)
	}
	return string(out)
}
