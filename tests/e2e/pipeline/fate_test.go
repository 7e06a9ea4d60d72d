package pipeline

// One authority over a PodCheckpoint's fate (issue 8): the CR in the API
// server decides; terminal is final; the helper acts only on what the API
// server says; no plaintext outlives a job.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
)

// phaseLog records every phase every CR of a namespace goes through (a watch).
type phaseLog struct {
	mu     sync.Mutex
	phases map[string][]string  // name -> phases in order (deduplicated)
	failed map[string]time.Time // name -> first seen Failed
	reason map[string]string    // name -> Stalled reason of the failure
	podDel map[string]time.Time // pod name -> deletion seen
}

func watchPhases(t *testing.T, ns string) (*phaseLog, func()) {
	t.Helper()
	l := &phaseLog{phases: map[string][]string{}, failed: map[string]time.Time{},
		reason: map[string]string{}, podDel: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	pw, err := pcpAPI.Namespace(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch PodCheckpoints: %v", err)
	}
	kw, err := kube.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch pods: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ev := range pw.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			p := phaseOf(u)
			l.mu.Lock()
			ps := l.phases[u.GetName()]
			if p != "" && (len(ps) == 0 || ps[len(ps)-1] != p) {
				l.phases[u.GetName()] = append(ps, p)
			}
			if p == "Failed" {
				if _, seen := l.failed[u.GetName()]; !seen {
					l.failed[u.GetName()] = time.Now()
					if c, ok := condition(u, "Stalled"); ok {
						l.reason[u.GetName()] = c.Reason
					}
				}
			}
			l.mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for ev := range kw.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			if ev.Type == watch.Deleted || pod.DeletionTimestamp != nil {
				l.mu.Lock()
				if _, seen := l.podDel[pod.Name]; !seen {
					l.podDel[pod.Name] = time.Now()
				}
				l.mu.Unlock()
			}
		}
	}()
	return l, func() { cancel(); pw.Stop(); kw.Stop(); wg.Wait() }
}

// checkFinal: no CR left a terminal phase once it had one.
func (l *phaseLog) checkFinal(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, ps := range l.phases {
		for i, p := range ps {
			if (p == "Succeeded" || p == "Failed") && i != len(ps)-1 {
				t.Errorf("PodCheckpoint %s left the terminal phase %s: %v", name, p, ps)
			}
		}
	}
}

// One node, 25 CRs with slow kubelet calls and short timeouts, some deleting
// their pods: the queue wait is not the checkpoint's deadline, Busy is not a
// failure, terminal is final, a Failed CR never loses its pod, and the kubelet
// is asked once per container per CR. The helper runs 4 jobs at once
// (--max-parallel-jobs); 6 s calls drain ~0.6 jobs/s, slower than the
// controller dispatches them, so most of the 25 really wait in its queue.
func TestContentionOnOneNode(t *testing.T) {
	ns := newNamespace(t)
	log, stop := watchPhases(t, ns)
	defer stop()
	const n = 25
	for i := 0; i < n; i++ {
		newPod(t, ns, fmt.Sprintf("p%02d", i), "node-1",
			map[string]string{"checkpoint.stand-in/delay-seconds": "6"}, "app")
	}
	for i := 0; i < n; i++ {
		newPCP(t, ns, fmt.Sprintf("c%02d", i), map[string]any{
			"podName": fmt.Sprintf("p%02d", i), "timeoutSeconds": 10, "leaveRunning": i%3 != 0,
		})
	}
	start := time.Now()
	results := map[string]*unstructured.Unstructured{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("c%02d", i)
		results[name] = waitDone(t, ns, name, 6*time.Minute-time.Since(start))
	}
	t.Logf("25 checkpoints of 6 s each on one node (4 at once) finished in %s", time.Since(start).Round(time.Second))
	time.Sleep(3 * time.Second) // anything late would show now
	log.checkFinal(t)
	log.mu.Lock()
	defer log.mu.Unlock()
	for i := 0; i < n; i++ {
		name, pod := fmt.Sprintf("c%02d", i), fmt.Sprintf("p%02d", i)
		u := results[name]
		if u == nil {
			t.Errorf("%s did not finish", name)
			continue
		}
		if r := log.reason[name]; r == "Busy" || r == "Timeout" {
			t.Errorf("%s failed with %s while it waited for a slot: %v", name, r, u.Object["status"])
		}
		if phaseOf(u) != "Succeeded" {
			t.Errorf("%s: phase %s (%v)", name, phaseOf(u), u.Object["status"])
		}
		if ft, failed := log.failed[name]; failed {
			if dt, deleted := log.podDel[pod]; deleted && dt.After(ft) {
				t.Errorf("pod %s was deleted %s after %s was reported Failed", pod, dt.Sub(ft), name)
			}
		}
		if got := kubeletRequests(t, ns, pod); got != 1 {
			t.Errorf("the kubelet was asked %d times for %s's one container, want 1", got, pod)
		}
		if i%3 == 0 && phaseOf(u) == "Succeeded" {
			if _, deleted := log.podDel[pod]; !deleted {
				t.Errorf("%s succeeded with leaveRunning=false but pod %s was not deleted", name, pod)
			}
		}
	}
	if ps := log.phases["c24"]; len(ps) == 0 || ps[0] != "Pending" {
		t.Errorf("c24 phases %v: want Pending first (queued or busy is Pending)", ps)
	}
	// The waits were real and said so: Queued / NodeHelperBusy Events, at most one per CR.
	evs, err := kube.CoreV1().Events(ns).List(ctxT(t, 10*time.Second), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	waits := map[string]int{}
	for _, e := range evs.Items {
		if e.Reason == "Queued" || e.Reason == "NodeHelperBusy" {
			waits[e.InvolvedObject.Name] += int(max(e.Count, 1))
		}
	}
	if len(waits) == 0 {
		t.Errorf("no Queued or NodeHelperBusy Event although 25 checkpoints shared four slots")
	}
	for name, c := range waits {
		if c > 1 {
			t.Errorf("%s got %d wait Events, want one", name, c)
		}
	}
	t.Logf("%d of 25 CRs reported a wait", len(waits))
}

// Deleting a PodCheckpoint mid-job and creating one of the same name: the old
// job stops at its next step (another UID), never deletes the pod, and the new
// one runs on its own.
func TestDeleteAndRecreateMidJob(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	newPod(t, ns, "web", "node-2", map[string]string{"checkpoint.stand-in/delay-seconds": "4"}, "app", "side")
	newPCP(t, ns, "cp", map[string]any{"podName": "web", "leaveRunning": false})
	deadline := time.Now().Add(60 * time.Second)
	for {
		u, err := pcpAPI.Namespace(ns).Get(ctxT(t, 10*time.Second), "cp", metav1.GetOptions{})
		if err == nil && phaseOf(u) == "Running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cp did not start within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := pcpAPI.Namespace(ns).Delete(ctxT(t, 10*time.Second), "cp", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if !waitGone(t, ns, "cp", 30*time.Second) {
		t.Fatalf("cp not gone")
	}
	newPCP(t, ns, "cp", map[string]any{"podName": "web", "leaveRunning": true})
	u := waitDone(t, ns, "cp", done)
	if phaseOf(u) != "Succeeded" {
		t.Fatalf("the re-created cp: phase %s: %v", phaseOf(u), u.Object["status"])
	}
	time.Sleep(2 * time.Second)
	if _, err := kube.CoreV1().Pods(ns).Get(ctxT(t, 10*time.Second), "web", metav1.GetOptions{}); err != nil {
		t.Errorf("pod web is gone although the CR that asked for its deletion was deleted mid-job: %v", err)
	}
	// The old job stopped at its next step: at most 1 call for it, 2 for the new one.
	if got := kubeletRequests(t, ns, "web"); got > 3 || got < 2 {
		t.Errorf("%d kubelet calls for the two CRs, want 2 (new) + at most 1 (old, stopped)", got)
	}
}

// deletionPolicy Delete with encryption: the .tar.cms goes with the CR.
func TestDeletePolicyEncrypted(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	r := makeRecipient(t, "p256")
	tlsSecret(t, ns, "key", r)
	newPod(t, ns, "app", "node-2", nil, "app")
	newPCP(t, ns, "enc", map[string]any{"podName": "app", "encrypt": true, "encryptionSecret": "key",
		"deletionPolicy": "Delete"})
	u := waitDone(t, ns, "enc", done)
	if phaseOf(u) != "Succeeded" {
		t.Fatalf("phase %s: %v", phaseOf(u), u.Object["status"])
	}
	path := artifactPath(u)
	if !strings.HasSuffix(path, ".tar.cms") || !fileExists(path) {
		t.Fatalf("no encrypted artifact at %q", path)
	}
	if fp, _, _ := unstructured.NestedString(u.Object, "status", "recipientFingerprint"); fp != r.Fingerprint {
		t.Errorf("status.recipientFingerprint %q, want %q (recorded at dispatch)", fp, r.Fingerprint)
	}
	if err := pcpAPI.Namespace(ns).Delete(ctxT(t, 10*time.Second), "enc", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if !waitGone(t, ns, "enc", 30*time.Second) {
		t.Fatalf("enc not gone 30s after deletion")
	}
	if fileExists(path) {
		t.Errorf("deletionPolicy Delete with encryption: %s still on the node", path)
	}
}

// A kubelet call the helper gives up on: the runtime still writes the
// complete plaintext archive later (as containerd does); the helper removes it.
func TestLateArchiveIsSwept(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	// The helper's deadline is timeoutSeconds + 3 s margin = 4 s; the stand-in
	// (like a real kubelet) raises timeout=1 to 120 s and finishes at 8 s.
	newPod(t, ns, "slow", "node-2", map[string]string{"checkpoint.stand-in/delay-seconds": "8"}, "app")
	newPCP(t, ns, "late", map[string]any{"podName": "slow", "timeoutSeconds": 1})
	u := waitDone(t, ns, "late", done)
	expectFailed(t, u, "Timeout")
	dir := nodeCheckpointsDir("node-2")
	prefix := "checkpoint-slow_" + ns + "-app-"
	wrote, gone := false, false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for _, r := range kubeletLog(t, ns, "slow") {
			wrote = wrote || (r.Method == "LATE" && r.Archive != "")
		}
		matches, _ := filepath.Glob(filepath.Join(dir, prefix+"*.tar"))
		gone = len(matches) == 0
		if wrote && gone {
			break
		}
	}
	if !wrote {
		t.Fatalf("the stand-in never wrote the late archive (is the late-archive model on?)")
	}
	if !gone {
		t.Errorf("the late plaintext archive of a given-up call is still in %s", dir)
	}
}

// ---------------------------------------------------------------- the channel, as the controller

// helperCall sends one raw job text to node's helper the way the controller
// does (pinned certificate from its Lease, a channel token of the controller's
// ServiceAccount: audience channel.checkpointing.dev) and returns the first state.
func helperCall(t *testing.T, node, text string) map[string]any {
	t.Helper()
	ctx := ctxT(t, 20*time.Second)
	lease, err := kube.CoordinationV1().Leases(operatorNS).Get(ctx, "pcp-helper-"+node, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("lease of %s: %v", node, err)
	}
	endpoint := lease.Annotations["checkpointing.dev/endpoint"]
	pin := lease.Annotations["checkpointing.dev/cert-sha256"]
	exp := int64(600)
	tr, err := kube.CoreV1().ServiceAccounts(operatorNS).CreateToken(ctx, "podcheckpoint-controller",
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &exp,
			Audiences: []string{"channel.checkpointing.dev"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for the controller's ServiceAccount: %v", err)
	}
	d := websocket.Dialer{
		Subprotocols:     []string{"pcp.checkpointing.dev.v1"},
		HandshakeTimeout: 5 * time.Second,
		TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // the pin below is the trust, as in lib/chan
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 || sha256hex(raw[0]) != pin {
					return fmt.Errorf("certificate does not match the Lease's pin")
				}
				return nil
			},
		},
	}
	hdr := http.Header{"Authorization": []string{"Bearer " + tr.Status.Token}}
	c, _, err := d.DialContext(ctx, endpoint, hdr)
	if err != nil {
		t.Fatalf("dial %s: %v", endpoint, err)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte(text)); err != nil {
		t.Fatalf("send: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("no answer from the helper on %s: %v", node, err)
	}
	var st map[string]any
	if err := json.Unmarshal(msg, &st); err != nil {
		t.Fatalf("answer %q: %v", msg, err)
	}
	return st
}

// A client with a valid channel identity sends jobs whose contents disagree
// with their CRs: a finished CR's UID to another node's helper, a Failed CR's
// UID with v1 fields naming a victim pod and leaveRunning=false, a
// delete-artifact for a CR that is not being deleted. Nothing happens.
func TestJobDisagreeingWithItsCRDoesNothing(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	newPod(t, ns, "web", "node-1", nil, "app")
	victim := newPod(t, ns, "victim", "node-1", nil, "app")
	newPCP(t, ns, "done", map[string]any{"podName": "web"})
	newPCP(t, ns, "failed", map[string]any{"podName": "web", "containers": []any{"nope"}})
	done := waitDone(t, ns, "done", 90*time.Second)
	failed := waitDone(t, ns, "failed", 30*time.Second)
	if phaseOf(done) != "Succeeded" {
		t.Fatalf("done: %s", phaseOf(done))
	}
	expectFailed(t, failed, "ContainerNotFound")
	before := map[string]string{"done": done.GetResourceVersion(), "failed": failed.GetResourceVersion()}
	calls := kubeletRequests(t, ns, "web") + kubeletRequests(t, ns, "victim")

	job := func(op string, u *unstructured.Unstructured, extra string) string {
		return fmt.Sprintf(`{"v":2,"type":"job","op":%q,"uid":%q,"namespace":%q,"name":%q%s}`,
			op, string(u.GetUID()), ns, u.GetName(), extra)
	}
	// 1. a finished CR re-run on another node
	st := helperCall(t, "node-2", job("checkpoint", done, ""))
	t.Logf("node-2 answered %v", st)
	// 2. a Failed CR with the old (v1) fields: pod victim, leaveRunning false
	st = helperCall(t, "node-1", job("checkpoint", failed,
		`,"pod":"victim","podUID":"`+string(victim.UID)+`","node":"node-1","containers":["app"],"leaveRunning":false`))
	t.Logf("node-1 answered %v", st)
	// 3. delete-artifact of a live CR
	st = helperCall(t, "node-1", job("delete-artifact", done, `,"artifactPath":"`+artifactPath(done)+`"`))
	if st["state"] != "refused" {
		t.Errorf("delete-artifact of a CR that is not being deleted: %v", st)
	}
	time.Sleep(5 * time.Second) // a job would have run by now
	for name, rv := range before {
		u, err := pcpAPI.Namespace(ns).Get(ctxT(t, 10*time.Second), name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get %s: %v", name, err)
		}
		if u.GetResourceVersion() != rv {
			t.Errorf("%s was written (resourceVersion %s -> %s): %v", name, rv, u.GetResourceVersion(), u.Object["status"])
		}
	}
	if got := kubeletRequests(t, ns, "web") + kubeletRequests(t, ns, "victim"); got != calls {
		t.Errorf("the kubelet was asked %d more times", got-calls)
	}
	if _, err := kube.CoreV1().Pods(ns).Get(ctxT(t, 10*time.Second), "victim", metav1.GetOptions{}); err != nil {
		t.Errorf("pod victim, named by no CR, is gone: %v", err)
	}
	if !fileExists(artifactPath(done)) {
		t.Errorf("the artifact of a live CR was deleted")
	}
}

// setContainerState writes what a kubelet would report for one container
// (kwok reports every container of spec.containers running, and nothing else).
func setContainerState(t *testing.T, ns, pod, name string, init bool, st corev1.ContainerState) {
	t.Helper()
	for attempt := 0; attempt < 10; attempt++ {
		p, err := kube.CoreV1().Pods(ns).Get(ctxT(t, 10*time.Second), pod, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get pod: %v", err)
		}
		list := &p.Status.ContainerStatuses
		if init {
			list = &p.Status.InitContainerStatuses
		}
		found := false
		for i := range *list {
			if (*list)[i].Name == name {
				(*list)[i].State, found = st, true
			}
		}
		if !found {
			*list = append(*list, corev1.ContainerStatus{Name: name, State: st, Image: "registry.k8s.io/busybox"})
		}
		if _, err = kube.CoreV1().Pods(ns).UpdateStatus(ctxT(t, 10*time.Second), p, metav1.UpdateOptions{}); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("could not update the status of pod %s/%s", ns, pod)
}

// A selected container that is not running: refused before any container is frozen.
func TestExitedContainerRefused(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	newPod(t, ns, "half", "node-1", nil, "app", "side")
	setContainerState(t, ns, "half", "side", false, corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}})
	newPCP(t, ns, "cp", map[string]any{"podName": "half"})
	u := waitDone(t, ns, "cp", done)
	expectFailed(t, u, "ContainerNotRunning")
	if n := len(kubeletLog(t, ns, "half")); n != 0 {
		t.Errorf("the kubelet was asked %d times although a selected container is not running", n)
	}
}

// Native sidecars (initContainers with restartPolicy Always) that run are part
// of the pod-level checkpoint, and can be named.
func TestNativeSidecarIncluded(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	always := corev1.ContainerRestartPolicyAlways
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "mesh", Namespace: ns},
		Spec: corev1.PodSpec{NodeName: "node-2",
			InitContainers: []corev1.Container{{Name: "proxy", Image: "registry.k8s.io/busybox", RestartPolicy: &always}},
			Containers:     []corev1.Container{{Name: "app", Image: "registry.k8s.io/busybox"}}},
	}
	if _, err := kube.CoreV1().Pods(ns).Create(ctxT(t, 10*time.Second), pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		p, err := kube.CoreV1().Pods(ns).Get(ctxT(t, 10*time.Second), "mesh", metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod mesh not Running")
		}
	}
	setContainerState(t, ns, "mesh", "proxy", true, corev1.ContainerState{
		Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}})
	newPCP(t, ns, "all", map[string]any{"podName": "mesh"})
	u := waitDone(t, ns, "all", done)
	if phaseOf(u) != "Succeeded" {
		t.Fatalf("phase %s: %v", phaseOf(u), u.Object["status"])
	}
	got := []string{}
	cs, _, _ := unstructured.NestedSlice(u.Object, "status", "containers")
	for _, c := range cs {
		if m, ok := c.(map[string]any); ok {
			got = append(got, fmt.Sprint(m["name"]))
		}
	}
	if strings.Join(got, ",") != "app,proxy" {
		t.Errorf("status.containers %v, want app and the running native sidecar proxy", got)
	}
	newPCP(t, ns, "named", map[string]any{"podName": "mesh", "containers": []any{"proxy"}})
	if u := waitDone(t, ns, "named", done); phaseOf(u) != "Succeeded" {
		t.Errorf("naming the native sidecar: phase %s: %v", phaseOf(u), u.Object["status"])
	}
}
