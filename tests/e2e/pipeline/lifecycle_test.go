package pipeline

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// kubeletRecord is one line of a kubelet stand-in's request log.
type kubeletRecord struct {
	Method  string `json:"method"` // "LATE": an archive written after the client gave up
	Path    string `json:"path"`
	Status  int    `json:"status"` // 0: never answered (hang, client gone)
	Archive string `json:"archive"`
}

// kubeletLog returns the checkpoint requests the stand-ins saw for ns/pod.
func kubeletLog(t *testing.T, ns, pod string) []kubeletRecord {
	t.Helper()
	var out []kubeletRecord
	for _, node := range state.Nodes {
		raw, err := os.ReadFile(node.RequestLog)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n") {
			var rec kubeletRecord
			if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Path, "/checkpoint/"+ns+"/"+pod+"/") {
				out = append(out, rec)
			}
		}
	}
	return out
}

// kubeletRequests counts the checkpoint requests answered with 200 for ns/pod.
func kubeletRequests(t *testing.T, ns, pod string) int {
	n := 0
	for _, r := range kubeletLog(t, ns, pod) {
		if r.Status == 200 {
			n++
		}
	}
	return n
}

func nodeCheckpointsDir(node string) string {
	for _, n := range state.Nodes {
		if n.Name == node {
			return n.CheckpointsDir
		}
	}
	return ""
}

func artifactPath(u *unstructured.Unstructured) string {
	p, _, _ := unstructured.NestedString(u.Object, "status", "artifact", "path")
	return p
}

func waitGone(t *testing.T, ns, name string, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		_, err := pcpAPI.Namespace(ns).Get(ctxT(t, 10*time.Second), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true
		}
		time.Sleep(250 * time.Millisecond)
	}
	return false
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// deletionPolicy: Delete removes the artifact with the PodCheckpoint (through
// a finalizer); Retain keeps it.
func TestDeletionPolicy(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	newPod(t, ns, "app", "node-2", nil, "app")
	newPCP(t, ns, "delete", map[string]any{"podName": "app", "deletionPolicy": "Delete"})
	newPCP(t, ns, "retain", map[string]any{"podName": "app"})
	del := waitDone(t, ns, "delete", done)
	ret := waitDone(t, ns, "retain", done)
	if phaseOf(del) != "Succeeded" || phaseOf(ret) != "Succeeded" {
		t.Fatalf("phases %s, %s", phaseOf(del), phaseOf(ret))
	}
	found := false
	for _, f := range del.GetFinalizers() {
		found = found || f == "checkpointing.dev/artifact"
	}
	if !found {
		t.Errorf("deletionPolicy Delete: finalizers %v lack checkpointing.dev/artifact", del.GetFinalizers())
	}
	delPath, retPath := artifactPath(del), artifactPath(ret)
	if !fileExists(delPath) || !fileExists(retPath) {
		t.Fatalf("artifacts missing before deletion: %s %s", delPath, retPath)
	}
	for _, name := range []string{"delete", "retain"} {
		if err := pcpAPI.Namespace(ns).Delete(ctxT(t, 10*time.Second), name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete %s: %v", name, err)
		}
	}
	if !waitGone(t, ns, "delete", 30*time.Second) || !waitGone(t, ns, "retain", 30*time.Second) {
		t.Fatalf("PodCheckpoints not gone 30s after deletion")
	}
	if fileExists(delPath) {
		t.Errorf("deletionPolicy Delete: artifact %s still on the node", delPath)
	}
	if !fileExists(retPath) {
		t.Errorf("deletionPolicy Retain: artifact %s was removed", retPath)
	}
}

// ttlSecondsAfterFinished deletes the finished PodCheckpoint (and, with
// deletionPolicy Delete, its artifact).
func TestTTLAfterFinished(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	newPod(t, ns, "app", "node-1", nil, "app")
	newPCP(t, ns, "short", map[string]any{"podName": "app", "ttlSecondsAfterFinished": 2, "deletionPolicy": "Delete"})
	u := waitDone(t, ns, "short", done)
	if phaseOf(u) != "Succeeded" {
		t.Fatalf("phase %s", phaseOf(u))
	}
	path := artifactPath(u)
	if !waitGone(t, ns, "short", 30*time.Second) {
		t.Fatalf("PodCheckpoint with ttlSecondsAfterFinished=2 still exists 30s after it finished")
	}
	if fileExists(path) {
		t.Errorf("artifact %s left behind after the TTL deleted its PodCheckpoint (deletionPolicy Delete)", path)
	}
}

// A controller that crashes while a checkpoint runs resumes it: exactly one
// kubelet checkpoint per container, and the CR still succeeds.
func TestControllerRestartExactlyOnce(t *testing.T) {
	// Not parallel: it kills the shared controller.
	ns := newNamespace(t)
	newPod(t, ns, "slow", "node-1", map[string]string{"checkpoint.stand-in/delay-seconds": "4"}, "app", "side")
	newPCP(t, ns, "once", map[string]any{"podName": "slow"})
	deadline := time.Now().Add(30 * time.Second)
	for {
		u, err := pcpAPI.Namespace(ns).Get(ctxT(t, 10*time.Second), "once", metav1.GetOptions{})
		if err == nil {
			if s, _, _ := unstructured.NestedString(u.Object, "status", "dispatchTime"); s != "" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("PodCheckpoint was not dispatched within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	deploy := filepath.Join(binDir(), "..", "tests", "e2e", "deploy.sh")
	if wd, err := os.Getwd(); err == nil {
		deploy = filepath.Join(wd, "..", "deploy.sh")
	}
	cmd := exec.Command(deploy, "restart", "controller")
	cmd.Env = append(os.Environ(), "PCP_BIN_DIR="+binDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restart controller: %v: %s", err, out)
	}
	u := waitDone(t, ns, "once", done)
	if phaseOf(u) != "Succeeded" {
		t.Fatalf("phase %s after a controller restart: %v", phaseOf(u), u.Object["status"])
	}
	if n := kubeletRequests(t, ns, "slow"); n != 2 {
		t.Errorf("the kubelet was asked for %d checkpoints of a 2-container pod, want exactly 2", n)
	}
}

// kubectl explain documents every field of the spec (from the CRD schema).
func TestExplainSpec(t *testing.T) {
	t.Parallel()
	out := kubectl(t, "explain", "podcheckpoints.checkpointing.dev.spec")
	for _, f := range []string{"podName", "podUID", "leaveRunning", "encrypt", "encryptionSecret",
		"containers", "timeoutSeconds", "deletionPolicy", "ttlSecondsAfterFinished"} {
		i := strings.Index(out, "\n  "+f+"\t")
		if i < 0 {
			t.Errorf("kubectl explain does not list spec.%s:\n%s", f, out)
			continue
		}
		// The line after the field's header carries its description.
		rest := strings.SplitN(out[i+1:], "\n", 3)
		if len(rest) < 2 || len(strings.TrimSpace(rest[1])) < 10 {
			t.Errorf("spec.%s has no description in kubectl explain", f)
		}
	}
}

func deployCmd(t *testing.T, args ...string) {
	t.Helper()
	wd, _ := os.Getwd()
	cmd := exec.Command(filepath.Join(wd, "..", "deploy.sh"), args...)
	cmd.Env = append(os.Environ(), "PCP_BIN_DIR="+binDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("deploy.sh %v: %v: %s", args, err, out)
	}
}

func leaderIs(t *testing.T, want string, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		l, err := kube.CoordinationV1().Leases(operatorNS).Get(ctxT(t, 10*time.Second), "podcheckpoint-controller", metav1.GetOptions{})
		if err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == want {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Two controllers: one leads; when it shuts down it hands the Lease over at
// once and the other takes the work.
func TestLeaderElection(t *testing.T) {
	// Not parallel: it stops and starts the shared controller.
	if !leaderIs(t, "podcheckpoint-controller-0", 20*time.Second) {
		t.Fatalf("podcheckpoint-controller-0 does not hold the leader Lease")
	}
	deployCmd(t, "restart", "controller-2")
	t.Cleanup(func() {
		deployCmd(t, "restart", "controller")
		deployCmd(t, "stop", "controller-2")
		if !leaderIs(t, "podcheckpoint-controller-0", 20*time.Second) {
			t.Errorf("controller-0 did not lead again after controller-2 stopped")
		}
	})
	time.Sleep(3 * time.Second)
	if !leaderIs(t, "podcheckpoint-controller-0", 0) {
		t.Fatalf("the second controller took the Lease from a live leader")
	}
	start := time.Now()
	deployCmd(t, "stop", "controller")
	// Released on shutdown: the follower takes over within its retry period
	// (2 s), far sooner than the 15 s the Lease would take to expire.
	if !leaderIs(t, "podcheckpoint-controller-1", 8*time.Second) {
		t.Fatalf("controller-1 did not take over within 8s of the leader's shutdown")
	}
	t.Logf("leadership handed over in %v", time.Since(start).Round(100*time.Millisecond))
	ns := newNamespace(t)
	newPod(t, ns, "app", "node-2", nil, "app")
	newPCP(t, ns, "by-second", map[string]any{"podName": "app"})
	if u := waitDone(t, ns, "by-second", done); phaseOf(u) != "Succeeded" {
		t.Fatalf("phase %s under the second controller: %v", phaseOf(u), u.Object["status"])
	}
}

// A node helper that dies while the kubelet is checkpointing does not start a
// second checkpoint when it comes back: the job fails as Interrupted.
func TestHelperRestartInterrupted(t *testing.T) {
	// Not parallel: it kills the shared node helper of node-2.
	ns := newNamespace(t)
	newPod(t, ns, "slow", "node-2", map[string]string{"checkpoint.stand-in/delay-seconds": "3"}, "app")
	newPCP(t, ns, "cut-off", map[string]any{"podName": "slow"})
	// The helper writes Running just before it calls the kubelet, which then
	// takes 3 s (the stand-in logs a request only once it is answered).
	deadline := time.Now().Add(30 * time.Second)
	for {
		u, err := pcpAPI.Namespace(ns).Get(ctxT(t, 10*time.Second), "cut-off", metav1.GetOptions{})
		if err == nil && phaseOf(u) == "Running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the PodCheckpoint never became Running")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	deployCmd(t, "restart", "helper-node-2")
	u := waitDone(t, ns, "cut-off", done)
	expectFailed(t, u, "Interrupted")
	time.Sleep(4 * time.Second) // past the stand-in's delay: any second call would show by now
	n, late := 0, 0
	for _, r := range kubeletLog(t, ns, "slow") {
		if r.Method == "LATE" {
			late++
		} else {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the kubelet got %d checkpoint requests for one PodCheckpoint, want 1", n)
	}
	// The runtime finished the call the killed helper gave up on; the restarted
	// helper found the call in its journal and swept the late archive.
	if late > 0 {
		matches, _ := filepath.Glob(filepath.Join(nodeCheckpointsDir("node-2"), "checkpoint-slow_"+ns+"-app-*.tar"))
		for deadline := time.Now().Add(5 * time.Second); len(matches) > 0 && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
			matches, _ = filepath.Glob(filepath.Join(nodeCheckpointsDir("node-2"), "checkpoint-slow_"+ns+"-app-*.tar"))
		}
		if len(matches) > 0 {
			t.Errorf("the late archive of the interrupted call was not swept: %v", matches)
		}
	}
}

// A node helper refuses to start when the artifact directory's filesystem
// has clearly too little room, with a message that says so.
func TestHelperRefusesLowDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	free := fs.Bavail * uint64(fs.Bsize)
	cmd := exec.Command(filepath.Join(binDir(), "node-helper", "podcheckpoint-node-helper"),
		"--node-name=node-x", "--bind-address=127.0.0.1", "--port=10999",
		"--artifact-dir="+filepath.Join(dir, "artifacts"), "--state-dir="+filepath.Join(dir, "state"),
		"--kubeconfig="+state.AdminKubeconfig,
		fmt.Sprintf("--min-free-bytes=%d", free+(1<<40)))
	done := make(chan error, 1)
	var out []byte
	go func() {
		var err error
		out, err = cmd.CombinedOutput()
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("the node helper started although %d bytes are free and it wants 1 TiB more", free)
		}
		if !strings.Contains(string(out), "not enough free space") {
			t.Errorf("refusal does not say why: %s", out)
		}
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the node helper neither refused nor exited within 15s")
	}
}
