// Package clustertest checks the local test cluster itself: the API server,
// kwok's nodes and pods, the kubelet stand-ins' whole checkpoint contract
// (docs: /work/shared/design/kubelet.md) and the CRD's validation.
package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"podcheckpoint.dev/e2e/e2eutil"
)

var env *e2eutil.Env

func TestMain(m *testing.M) {
	var err error
	env, err = e2eutil.EnsureUp()
	if err != nil {
		// the cluster could not start: that is a failure, never a skip
		fmt.Fprintf(os.Stderr, "FAIL: test cluster: %v\n", err)
		os.Exit(1)
	}
	rc := m.Run()
	if env.StartedByUs && os.Getenv("PCP_E2E_KEEP") != "1" {
		if err := e2eutil.Down(); err != nil {
			fmt.Fprintf(os.Stderr, "cluster down: %v\n", err)
			rc = 1
		}
	}
	os.Exit(rc)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// fixture: a namespace, a ServiceAccount allowed nodes/checkpoint, one not
// allowed, and a running pod on node-1.
type fixture struct {
	ns       string
	allowed  string // token
	denied   string // token
	deniedSA string
	client   *http.Client
}

var (
	fixOnce sync.Once
	fix     fixture
	fixErr  error
)

func getFixture(t *testing.T) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		if fix.ns, fixErr = env.CreateNamespace(ctx, "e2e-cluster"); fixErr != nil {
			return
		}
		if fix.allowed, fixErr = env.ServiceAccountToken(ctx, fix.ns, "helper"); fixErr != nil {
			return
		}
		if fixErr = env.GrantCheckpoint(ctx, fix.ns, "helper"); fixErr != nil {
			return
		}
		fix.deniedSA = "nobody"
		if fix.denied, fixErr = env.ServiceAccountToken(ctx, fix.ns, fix.deniedSA); fixErr != nil {
			return
		}
		if _, fixErr = env.RunningPod(ctx, fix.ns, "counter", "node-1", nil, "counter", "sidecar"); fixErr != nil {
			return
		}
		fix.client, fixErr = env.StandinClient(false, 30*time.Second)
	})
	if fixErr != nil {
		t.Fatalf("fixture: %v", fixErr)
	}
	return &fix
}

func TestNodesReady(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	for _, n := range env.State.Nodes {
		node, err := env.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("node %s: %v", n.Name, err)
		}
		ready := false
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			t.Errorf("node %s not Ready: %+v", n.Name, node.Status.Conditions)
		}
		ip := ""
		for _, a := range node.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				ip = a.Address
			}
		}
		if ip != n.IP {
			t.Errorf("node %s InternalIP %q, want %s", n.Name, ip, n.IP)
		}
		if p := node.Status.DaemonEndpoints.KubeletEndpoint.Port; p != int32(n.KubeletPort) {
			t.Errorf("node %s kubelet port %d, want %d", n.Name, p, n.KubeletPort)
		}
		if node.Labels["kubernetes.io/hostname"] != n.Name {
			t.Errorf("node %s hostname label %q", n.Name, node.Labels["kubernetes.io/hostname"])
		}
	}
	if _, err := env.Client.CoreV1().Namespaces().Get(ctx, "podcheckpoint-system", metav1.GetOptions{}); err != nil {
		t.Errorf("namespace podcheckpoint-system: %v", err)
	}
	v, err := env.Client.Discovery().ServerVersion()
	if err != nil || v.GitVersion != "v1.36.3" {
		t.Errorf("server version %v (%v), want v1.36.3", v, err)
	}
}

func TestPodRunsOnNode(t *testing.T) {
	f := getFixture(t)
	pod, err := env.Client.CoreV1().Pods(f.ns).Get(ctxT(t, 10*time.Second), "counter", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Status.Phase != corev1.PodRunning || pod.Spec.NodeName != "node-1" {
		t.Fatalf("pod phase %s node %s", pod.Status.Phase, pod.Spec.NodeName)
	}
	if len(pod.Status.ContainerStatuses) != 2 {
		t.Fatalf("container statuses: %+v", pod.Status.ContainerStatuses)
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Running == nil || !cs.Ready {
			t.Errorf("container %s not running/ready: %+v", cs.Name, cs.State)
		}
	}
	if pod.Status.PodIP == "" {
		t.Errorf("no pod IP")
	}
}

func TestStandinAuthentication(t *testing.T) {
	f := getFixture(t)
	ctx := ctxT(t, 30*time.Second)
	for name, tok := range map[string]string{"no token": "", "bad token": "not-a-jwt", "forged": f.allowed[:len(f.allowed)-4] + "AAAA"} {
		r, err := env.Checkpoint(ctx, f.client, "node-1", f.ns, "counter", "counter", "", tok)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Status != 401 || r.Body != "Unauthorized" {
			t.Errorf("%s: %d %q, want 401 Unauthorized", name, r.Status, r.Body)
		}
	}
}

func TestStandinAuthorization(t *testing.T) {
	f := getFixture(t)
	ctx := ctxT(t, 30*time.Second)
	r, err := env.Checkpoint(ctx, f.client, "node-1", f.ns, "counter", "counter", "", f.denied)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("Forbidden (user=system:serviceaccount:%s:%s, verb=create, resource=nodes, subresource=checkpoint)", f.ns, f.deniedSA)
	if r.Status != 403 || r.Body != want {
		t.Errorf("got %d %q, want 403 %q", r.Status, r.Body, want)
	}
	// the request log names the user
	recs, err := env.Requests(ctx, "node-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rec := range recs {
		if rec.Status == 403 && rec.User == "system:serviceaccount:"+f.ns+":"+f.deniedSA && rec.Method == "POST" {
			found = true
		}
	}
	if !found {
		t.Errorf("403 not in the request log: %+v", recs)
	}
}

var archiveName = regexp.MustCompile(`^checkpoint-counter_([a-z0-9-]+)-counter-(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d))\.tar$`)

func checkArchive(t *testing.T, path, ns, node string, payload int64) {
	t.Helper()
	n := env.Node(node)
	if filepath.Dir(path) != n.CheckpointsDir {
		t.Errorf("archive %s not in %s", path, n.CheckpointsDir)
	}
	m := archiveName.FindStringSubmatch(filepath.Base(path))
	if m == nil || m[1] != ns {
		t.Errorf("archive name %q does not match the kubelet's pattern", filepath.Base(path))
	} else if _, err := time.Parse(time.RFC3339, m[2]); err != nil {
		t.Errorf("archive time %q: %v", m[2], err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("archive mode %v, want 0600", st.Mode().Perm())
	}
	ents, err := e2eutil.ReadArchive(path)
	if err != nil {
		t.Fatalf("read archive: %v", err)
	}
	byName := map[string]e2eutil.ArchiveEntry{}
	var imgBytes int64
	for _, e := range ents {
		byName[e.Name] = e
		if strings.HasPrefix(e.Name, "checkpoint/") && strings.HasSuffix(e.Name, ".img") {
			imgBytes += e.Size
		}
	}
	for _, want := range []string{"config.dump", "spec.dump", "checkpoint/inventory.img", "rootfs-diff.tar"} {
		if _, ok := byName[want]; !ok {
			t.Errorf("archive lacks %s (has %v)", want, ents)
		}
	}
	var cfg e2eutil.ArchiveConf
	if err := json.Unmarshal(byName["config.dump"].Data, &cfg); err != nil {
		t.Fatalf("config.dump: %v", err)
	}
	if cfg.ID == "" || cfg.Name != "counter" || cfg.RootfsImageName != "registry.example/counter:1.0" || cfg.CheckpointedAt.IsZero() || cfg.Restored {
		t.Errorf("config.dump: %+v", cfg)
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(byName["spec.dump"].Data, &spec); err != nil {
		t.Fatalf("spec.dump: %v", err)
	}
	if spec.Annotations["io.kubernetes.cri.sandbox-name"] != "counter" || spec.Annotations["io.kubernetes.cri.sandbox-namespace"] != ns ||
		spec.Annotations["io.kubernetes.cri.container-name"] != "counter" {
		t.Errorf("spec.dump annotations: %v", spec.Annotations)
	}
	if payload >= 0 && imgBytes != payload {
		t.Errorf("CRIU images hold %d bytes, want %d", imgBytes, payload)
	}
}

func TestCheckpointSuccess(t *testing.T) {
	f := getFixture(t)
	ctx := ctxT(t, 60*time.Second)
	r, err := env.Checkpoint(ctx, f.client, "node-1", f.ns, "counter", "counter", "timeout=60", f.allowed)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 200 || len(r.Items) != 1 {
		t.Fatalf("got %d %q", r.Status, r.Body)
	}
	checkArchive(t, r.Items[0], f.ns, "node-1", 1<<20)

	// the admin client certificate is a valid kubelet client too (system:masters)
	admin, err := env.StandinClient(true, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := env.Checkpoint(ctx, admin, "node-1", f.ns, "counter", "counter", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if r2.Status != 200 || len(r2.Items) != 1 {
		t.Fatalf("admin cert: %d %q", r2.Status, r2.Body)
	}
	// two checkpoints within a second never share a file
	if r2.Items[0] == r.Items[0] {
		t.Errorf("second checkpoint reused %s", r.Items[0])
	}
	checkArchive(t, r2.Items[0], f.ns, "node-1", 1<<20)

	// the log records the archive and its hash
	recs, err := env.Requests(ctx, "node-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rec := range recs {
		if rec.Archive == r.Items[0] && rec.Status == 200 && len(rec.SHA256) == 64 && rec.User == "system:serviceaccount:"+f.ns+":helper" {
			found = true
		}
	}
	if !found {
		t.Errorf("request log lacks the archive %s", r.Items[0])
	}
}

func TestCheckpointSameSecond(t *testing.T) {
	f := getFixture(t)
	ctx := ctxT(t, 60*time.Second)
	seen := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := env.Checkpoint(ctx, f.client, "node-1", f.ns, "counter", "sidecar", "", f.allowed)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || r.Status != 200 {
				t.Errorf("checkpoint: %v %+v", err, r)
				return
			}
			if seen[r.Items[0]] {
				t.Errorf("path %s returned twice", r.Items[0])
			}
			seen[r.Items[0]] = true
		}()
	}
	wg.Wait()
	if len(seen) != 4 {
		t.Errorf("%d distinct archives, want 4", len(seen))
	}
}

func TestCheckpointNotFound(t *testing.T) {
	f := getFixture(t)
	ctx := ctxT(t, 60*time.Second)
	cases := []struct {
		name, node, ns, pod, ctr, query string
		status                          int
		body                            string
	}{
		{"missing pod", "node-1", f.ns, "nope", "counter", "", 404, "pod does not exist"},
		{"missing namespace", "node-1", "no-such-ns", "counter", "counter", "", 404, "pod does not exist"},
		{"pod on another node", "node-2", f.ns, "counter", "counter", "", 404, "pod does not exist"},
		{"missing container", "node-1", f.ns, "counter", "nope", "", 404, "container nope does not exist"},
		{"bad timeout", "node-1", f.ns, "counter", "counter", "timeout=soon", 404, "cannot parse value of timeout parameter"},
	}
	for _, c := range cases {
		r, err := env.Checkpoint(ctx, f.client, c.node, c.ns, c.pod, c.ctr, c.query, f.allowed)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.Status != c.status || r.Body != c.body {
			t.Errorf("%s: got %d %q, want %d %q", c.name, r.Status, r.Body, c.status, c.body)
		}
	}
	// wrong method
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, env.Node("node-1").KubeletURL+"/checkpoint/"+f.ns+"/counter/counter", nil)
	req.Header.Set("Authorization", "Bearer "+f.allowed)
	admin, _ := env.StandinClient(true, 10*time.Second)
	resp, err := admin.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}
}

// faultPod makes a running pod on node-1 with the given annotations.
func faultPod(t *testing.T, name string, ann map[string]string) {
	t.Helper()
	f := getFixture(t)
	if _, err := env.RunningPod(ctxT(t, 60*time.Second), f.ns, name, "node-1", ann, "counter"); err != nil {
		t.Fatal(err)
	}
}

func TestFaultFail(t *testing.T) {
	f := getFixture(t)
	faultPod(t, "fail", map[string]string{e2eutil.FaultFail: "500"})
	r, err := env.Checkpoint(ctxT(t, 30*time.Second), f.client, "node-1", f.ns, "fail", "counter", "", f.allowed)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("checkpointing of %s/fail/counter failed (rpc error: code = Unknown desc = CRIU binary not found or too old)", f.ns)
	if r.Status != 500 || r.Body != want {
		t.Errorf("got %d %q, want 500 %q", r.Status, r.Body, want)
	}
}

func TestFaultDiskFull(t *testing.T) {
	f := getFixture(t)
	faultPod(t, "diskfull", map[string]string{e2eutil.FaultDiskFull: "true"})
	r, err := env.Checkpoint(ctxT(t, 30*time.Second), f.client, "node-1", f.ns, "diskfull", "counter", "", f.allowed)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 500 || !strings.HasPrefix(r.Body, "checkpointing of "+f.ns+"/diskfull/counter failed (") || !strings.Contains(r.Body, "no space left on device") {
		t.Errorf("got %d %q", r.Status, r.Body)
	}
	left, _ := filepath.Glob(filepath.Join(env.Node("node-1").CheckpointsDir, "checkpoint-diskfull_*"))
	if len(left) != 0 {
		t.Errorf("disk-full left files: %v", left)
	}
}

func TestFaultDelay(t *testing.T) {
	f := getFixture(t)
	faultPod(t, "slow", map[string]string{e2eutil.FaultDelay: "2"})
	ctx := ctxT(t, 30*time.Second)
	start := time.Now()
	r, err := env.Checkpoint(ctx, f.client, "node-1", f.ns, "slow", "counter", "", f.allowed)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); r.Status != 200 || d < 2*time.Second {
		t.Errorf("got %d after %s, want 200 after >= 2s", r.Status, d)
	}
	// a timeout below 2 min is raised to 2 min by the kubelet's CRI client (as
	// a real kubelet does): the runtime does not give up at 1 s
	start = time.Now()
	r, err = env.Checkpoint(ctx, f.client, "node-1", f.ns, "slow", "counter", "timeout=1", f.allowed)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); r.Status != 200 || d < 2*time.Second {
		t.Errorf("timeout=1: got %d %q after %s, want 200 after the 2 s delay", r.Status, r.Body, d)
	}
}

func TestFaultHang(t *testing.T) {
	f := getFixture(t)
	faultPod(t, "stuck", map[string]string{e2eutil.FaultHang: "true"})
	c, err := env.StandinClient(false, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = env.Checkpoint(ctxT(t, 30*time.Second), c, "node-1", f.ns, "stuck", "counter", "", f.allowed)
	var ne interface{ Timeout() bool }
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("hang: err=%v, want a client timeout", err)
	}
	if d := time.Since(start); d < 2*time.Second || d > 5*time.Second {
		t.Errorf("client gave up after %s", d)
	}
	// the stand-in noticed the client leaving and recorded no status
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs, err := env.Requests(ctxT(t, 10*time.Second), "node-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, rec := range recs {
			if strings.HasSuffix(rec.Path, "/stuck/counter") && rec.Status == 0 && strings.Contains(rec.Note, "client gave up") {
				found = true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hang not recorded as abandoned")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestFaultTruncateAndSize(t *testing.T) {
	f := getFixture(t)
	faultPod(t, "trunc", map[string]string{e2eutil.FaultTruncate: "true"})
	ctx := ctxT(t, 30*time.Second)
	r, err := env.Checkpoint(ctx, f.client, "node-1", f.ns, "trunc", "counter", "", f.allowed)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 200 || len(r.Items) != 1 {
		t.Fatalf("got %d %q", r.Status, r.Body)
	}
	if _, err := e2eutil.ReadArchive(r.Items[0]); err == nil {
		t.Errorf("truncated archive %s reads cleanly", r.Items[0])
	}
	faultPod(t, "big", map[string]string{e2eutil.FaultSize: "5000000"})
	r, err = env.Checkpoint(ctx, f.client, "node-1", f.ns, "big", "counter", "", f.allowed)
	if err != nil || r.Status != 200 {
		t.Fatalf("size: %v %+v", err, r)
	}
	ents, err := e2eutil.ReadArchive(r.Items[0])
	if err != nil {
		t.Fatal(err)
	}
	var img int64
	for _, e := range ents {
		if strings.HasSuffix(e.Name, ".img") {
			img += e.Size
		}
	}
	if img != 5000000 {
		t.Errorf("payload %d bytes, want 5000000", img)
	}
}

func TestNodeFaultsAdmin(t *testing.T) {
	f := getFixture(t)
	ctx := ctxT(t, 60*time.Second)
	// the admin endpoint wants the admin cert or the shared token
	resp, err := f.client.Post(env.Node("node-2").KubeletURL+"/admin/faults", "application/json", strings.NewReader(`{"faults":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("admin without credentials: %d, want 401", resp.StatusCode)
	}
	if err := env.SetNodeFaults(ctx, "node-2", map[string]string{"checkpoint.stand-in/bogus": "1"}, 0); err == nil {
		t.Errorf("unknown fault accepted")
	}
	if _, err := env.RunningPod(ctx, f.ns, "on2", "node-2", nil, "app"); err != nil {
		t.Fatal(err)
	}
	// fail exactly once on node-2, then succeed
	if err := env.SetNodeFaults(ctx, "node-2", map[string]string{e2eutil.FaultFail: "500"}, 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.ClearNodeFaults(context.Background(), "node-2") })
	r, err := env.Checkpoint(ctx, f.client, "node-2", f.ns, "on2", "app", "", f.allowed)
	if err != nil || r.Status != 500 || !strings.Contains(r.Body, "CRIU binary not found or too old") {
		t.Fatalf("first: %v %+v", err, r)
	}
	r, err = env.Checkpoint(ctx, f.client, "node-2", f.ns, "on2", "app", "", f.allowed)
	if err != nil || r.Status != 200 {
		t.Fatalf("second: %v %+v", err, r)
	}
	// node-wide until cleared
	if err := env.SetNodeFaults(ctx, "node-2", map[string]string{e2eutil.FaultDiskFull: "true"}, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		r, err = env.Checkpoint(ctx, f.client, "node-2", f.ns, "on2", "app", "", f.allowed)
		if err != nil || r.Status != 500 || !strings.Contains(r.Body, "no space left on device") {
			t.Fatalf("disk-full %d: %v %+v", i, err, r)
		}
	}
	if err := env.ClearNodeFaults(ctx, "node-2"); err != nil {
		t.Fatal(err)
	}
	r, err = env.Checkpoint(ctx, f.client, "node-2", f.ns, "on2", "app", "", f.allowed)
	if err != nil || r.Status != 200 {
		t.Fatalf("after clear: %v %+v", err, r)
	}
	// node-1 never saw those faults
	r, err = env.Checkpoint(ctx, f.client, "node-1", f.ns, "counter", "counter", "", f.allowed)
	if err != nil || r.Status != 200 {
		t.Fatalf("node-1: %v %+v", err, r)
	}
}

var pcpGVR = schema.GroupVersionResource{Group: "checkpointing.dev", Version: "v1alpha1", Resource: "podcheckpoints"}

func TestCRDValidation(t *testing.T) {
	crdFile := os.Getenv("PCP_E2E_CRD")
	if crdFile == "" {
		crdFile = filepath.Join(e2eutil.E2EDir(), "..", "..", "crds", "podcheckpoint.yaml")
	}
	if _, err := os.Stat(crdFile); err != nil {
		t.Skipf("no CRD file yet (%v)", err)
	}
	f := getFixture(t)
	ctx := ctxT(t, 30*time.Second)
	api := env.Dynamic.Resource(pcpGVR).Namespace(f.ns)
	obj := func(name string, spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "checkpointing.dev/v1alpha1", "kind": "PodCheckpoint",
			"metadata": map[string]any{"name": name}, "spec": spec,
		}}
	}
	created, err := api.Create(ctx, obj("valid", map[string]any{"podName": "counter"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("valid PodCheckpoint rejected: %v", err)
	}
	if _, err := api.Create(ctx, obj("noenc", map[string]any{"podName": "counter", "encrypt": true}), metav1.CreateOptions{}); err == nil {
		t.Errorf("encrypt: true without encryptionSecret was accepted")
	} else if !strings.Contains(err.Error(), "Invalid") && !strings.Contains(err.Error(), "invalid") {
		t.Errorf("unexpected error: %v", err)
	}
	if _, err := api.Create(ctx, obj("enc", map[string]any{"podName": "counter", "encrypt": true, "encryptionSecret": "key"}), metav1.CreateOptions{}); err != nil {
		t.Errorf("encrypt with a secret rejected: %v", err)
	}
	spec := created.Object["spec"].(map[string]any)
	spec["podName"] = "other"
	if _, err := api.Update(ctx, created, metav1.UpdateOptions{}); err == nil {
		t.Errorf("spec change after creation was accepted")
	}
}
