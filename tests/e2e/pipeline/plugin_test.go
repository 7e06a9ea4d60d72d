package pipeline

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// runPlugin runs the kubectl plugin (tools/kubectl-checkpoint) against the
// test cluster and returns its combined output and exit status.
func runPlugin(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir(), "tools", "kubectl-checkpoint"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG=/nonexistent") // --kubeconfig must win
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exitErr):
		return string(out), exitErr.ExitCode()
	default:
		t.Fatalf("kubectl-checkpoint %v: %v", args, err)
		return "", -1
	}
}

// The plugin end to end: create --wait with encryption, list, wait, decrypt
// (same bytes as openssl), a missing pod (exit 1, PodNotFound) and a bad flag
// (exit 2).
func TestPluginCheckpoint(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	kc := state.AdminKubeconfig
	newPod(t, ns, "web", "node-1", nil, "app", "sidecar")
	r := makeRecipient(t, "rsa")
	tlsSecret(t, ns, "recipient", r)

	out, code := runPlugin(t, "create", "web", "-n", ns, "--encrypt-to", "recipient", "--wait=90s", "--kubeconfig", kc)
	if code != 0 {
		t.Fatalf("create --wait: exit %d:\n%s", code, out)
	}
	m := regexp.MustCompile(`podcheckpoint\.checkpointing\.dev/(web-\d{8}-\d{6}) created`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("create output does not name the created PodCheckpoint:\n%s", out)
	}
	name := m[1]
	u, err := pcpAPI.Namespace(ns).Get(ctxT(t, 10*time.Second), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	if phaseOf(u) != "Succeeded" {
		t.Fatalf("plugin exited 0 but phase is %q", phaseOf(u))
	}
	if enc, _, _ := unstructured.NestedBool(u.Object, "spec", "encrypt"); !enc {
		t.Errorf("spec.encrypt is not true")
	}
	if sec, _, _ := unstructured.NestedString(u.Object, "spec", "encryptionSecret"); sec != "recipient" {
		t.Errorf("spec.encryptionSecret %q", sec)
	}
	path, _, _ := unstructured.NestedString(u.Object, "status", "artifact", "path")
	sum, _, _ := unstructured.NestedString(u.Object, "status", "artifact", "sha256")
	if path == "" || !strings.Contains(out, "artifact:   "+path+"\n") {
		t.Errorf("create output does not name the artifact path %q:\n%s", path, out)
	}
	for _, want := range []string{"node:       node-1", "sha256:     " + sum, r.Fingerprint} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q:\n%s", want, out)
		}
	}
	data := checkArtifactFile(t, u, true, r.Fingerprint)

	// list: one aligned row, Succeeded, encrypted.
	out, code = runPlugin(t, "list", "-n", ns, "--kubeconfig", kc)
	if code != 0 {
		t.Fatalf("list: exit %d:\n%s", code, out)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME ") {
		t.Fatalf("list output:\n%s", out)
	}
	if f := strings.Fields(lines[1]); len(f) != 6 || f[0] != name || f[1] != "web" || f[2] != "node-1" ||
		f[3] != "Succeeded" || f[4] != "true" {
		t.Errorf("list row %q, want %s web node-1 Succeeded true AGE", lines[1], name)
	}
	if strings.Index(lines[0], "PHASE") != strings.Index(lines[1], "Succeeded") {
		t.Errorf("list columns not aligned:\n%s", out)
	}

	// wait on a finished one returns at once with the same summary.
	out, code = runPlugin(t, "wait", name, "-n", ns, "--timeout", "10s", "--kubeconfig", kc)
	if code != 0 || !strings.Contains(out, path) {
		t.Errorf("wait: exit %d:\n%s", code, out)
	}

	// decrypt gives the bytes openssl cms gives.
	plain := opensslDecrypt(t, data, r)
	dst := filepath.Join(t.TempDir(), "plain.tar")
	out, code = runPlugin(t, "decrypt", path, "--key", r.KeyPath, "--cert", r.CertPath, "-o", dst)
	if code != 0 {
		t.Fatalf("decrypt: exit %d:\n%s", code, out)
	}
	ours, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, plain) {
		t.Errorf("plugin decrypt output (%d bytes) differs from openssl cms (%d bytes)", len(ours), len(plain))
	}

	// A missing pod: Failed with PodNotFound, exit 1.
	out, code = runPlugin(t, "create", "nope", "-n", ns, "--name", "missing", "--wait=60s", "--kubeconfig", kc)
	if code != 1 || !strings.Contains(out, "PodNotFound") || !strings.Contains(out, "podcheckpoint.checkpointing.dev/missing created") {
		t.Errorf("create for a missing pod: exit %d, want 1 and PodNotFound:\n%s", code, out)
	}
	out, code = runPlugin(t, "list", "-A", "--kubeconfig", kc)
	if code != 0 || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(ns)+`\s+missing\s+nope\s+<none>\s+Failed\s+false\s+\S+\s+PodNotFound$`).MatchString(out) {
		t.Errorf("list -A: exit %d, no Failed row with PodNotFound for %s/missing:\n%s", code, ns, out)
	}

	// Bad flags: exit 2 with a one-line error, nothing created.
	out, code = runPlugin(t, "create", "web", "-n", ns, "--bogus", "--kubeconfig", kc)
	if code != 2 || !strings.Contains(out, "unknown flag: --bogus") {
		t.Errorf("bad flag: exit %d, want 2:\n%s", code, out)
	}
	out, code = runPlugin(t, "create", "web", "-n", ns, "--deletion-policy", "Keep", "--kubeconfig", kc)
	if code != 2 {
		t.Errorf("bad --deletion-policy: exit %d, want 2:\n%s", code, out)
	}
	// An API error carries the API server's message, exit 1.
	out, code = runPlugin(t, "create", "web", "-n", ns, "--name", "missing", "--kubeconfig", kc)
	if code != 1 || !strings.Contains(out, "already exists") {
		t.Errorf("duplicate name: exit %d, want 1 and the API server's message:\n%s", code, out)
	}
	list, err := pcpAPI.Namespace(ns).List(ctxT(t, 10*time.Second), metav1.ListOptions{})
	if err != nil || len(list.Items) != 2 {
		t.Errorf("want exactly 2 PodCheckpoints in %s after the bad invocations (err %v)", ns, err)
	}
}
