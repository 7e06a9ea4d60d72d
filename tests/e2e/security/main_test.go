// Package security drives the operator's trust boundaries through the real API
// server of the test cluster (docs/security.md): per-node authority of the node
// helper identity (ValidatingAdmissionPolicies on the node-name claim of
// pod-bound tokens), the leader Lease, the tenant rule, the channel credential
// that is good for the channel only, and the channel's resistance to floods.
//
// It runs after the pipeline package (go test -p 1) because it stops a helper
// and floods another: never in parallel with other tests.
package security

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"podcheckpoint.dev/e2e/e2eutil"
	"podcheckpoint.dev/e2e/internal/cluster"
)

const (
	operatorNS  = "podcheckpoint-system"
	helperSA    = "podcheckpoint-node-helper"
	ctlSA       = "podcheckpoint-controller"
	chAudience  = "channel.checkpointing.dev"
	leaderLease = "podcheckpoint-controller"
)

var pcpGVR = schema.GroupVersionResource{Group: "checkpointing.dev", Version: "v1alpha1", Resource: "podcheckpoints"}

var (
	env      *e2eutil.Env
	state    *e2eutil.State
	adminCfg *rest.Config
	kube     kubernetes.Interface
	dyn      dynamic.Interface
)

func workDir() string { return state.WorkDir }

func TestMain(m *testing.M) {
	if err := setup(); err != nil {
		fmt.Fprintf(os.Stderr, "security e2e: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func setup() error {
	var err error
	if env, err = e2eutil.Connect(cluster.WorkDir()); err != nil {
		return fmt.Errorf("no test cluster (run tests/e2e/cluster up && tests/e2e/cluster deploy): %w", err)
	}
	state, adminCfg, kube, dyn = env.State, env.Config, env.Client, env.Dynamic
	if len(state.Nodes) < 2 {
		return fmt.Errorf("the security tests need two nodes, the cluster has %d", len(state.Nodes))
	}
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

// clientAs: a client that authenticates with a bearer token only (the admin
// kubeconfig's CA, none of its client certificate).
func clientAs(t *testing.T, token string) (*kubernetes.Clientset, dynamic.Interface) {
	t.Helper()
	cfg := rest.AnonymousClientConfig(adminCfg)
	cfg.BearerToken = token
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs, d
}

// podBoundToken: a token of ns/sa bound to pod ns/pod (as a projected token in
// that pod would be); pod "" = not bound to anything. audience "" = the API server's.
func podBoundToken(t *testing.T, ns, sa, pod, audience string) string {
	t.Helper()
	exp := int64(3600)
	spec := authnv1.TokenRequestSpec{ExpirationSeconds: &exp}
	if pod != "" {
		p, err := kube.CoreV1().Pods(ns).Get(ctxT(t, 10*time.Second), pod, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("pod %s/%s: %v", ns, pod, err)
		}
		spec.BoundObjectRef = &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod, UID: p.UID}
	}
	if audience != "" {
		spec.Audiences = []string{audience}
	}
	tr, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctxT(t, 10*time.Second), sa,
		&authnv1.TokenRequest{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s (pod %q): %v", ns, sa, pod, err)
	}
	return tr.Status.Token
}

// newNamespace creates a fresh namespace for one test, removed at the end.
func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns, err := env.CreateNamespace(ctxT(t, 10*time.Second), "e2e-sec-"+prefix)
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	return ns
}

// runningPod creates a pod on node and waits until kwok reports it Running.
func runningPod(t *testing.T, ns, name, node string) *corev1.Pod {
	t.Helper()
	p, err := env.RunningPod(ctxT(t, 70*time.Second), ns, name, node, nil)
	if err != nil {
		t.Fatalf("pod %s/%s on %s: %v", ns, name, node, err)
	}
	return p
}

func newPCP(t *testing.T, d dynamic.Interface, ns, name string, spec map[string]any) (*unstructured.Unstructured, error) {
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "checkpointing.dev/v1alpha1",
		"kind":       "PodCheckpoint",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec":       spec,
	}}
	return d.Resource(pcpGVR).Namespace(ns).Create(ctxT(t, 10*time.Second), obj, metav1.CreateOptions{})
}

// waitPCP waits until cond holds for the PodCheckpoint (or fails the test).
func waitPCP(t *testing.T, ns, name string, within time.Duration, what string, cond func(u *unstructured.Unstructured) bool) *unstructured.Unstructured {
	t.Helper()
	deadline := time.Now().Add(within)
	var last *unstructured.Unstructured
	for time.Now().Before(deadline) {
		u, err := dyn.Resource(pcpGVR).Namespace(ns).Get(ctxT(t, 10*time.Second), name, metav1.GetOptions{})
		if err == nil {
			last = u
			if cond(u) {
				return u
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("PodCheckpoint %s/%s: not %s within %v (last status %v)", ns, name, what, within, statusOf(last))
	return nil
}

func statusOf(u *unstructured.Unstructured) any {
	if u == nil {
		return nil
	}
	return u.Object["status"]
}

func phase(u *unstructured.Unstructured) string {
	p, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	return p
}

func terminal(u *unstructured.Unstructured) bool {
	p := phase(u)
	return p == "Succeeded" || p == "Failed"
}

// deploy runs tests/e2e/deploy.sh (stop/restart a daemon).
func deploy(t *testing.T, args ...string) {
	t.Helper()
	wd, _ := os.Getwd()
	cmd := exec.Command(filepath.Join(wd, "..", "deploy.sh"), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("deploy.sh %v: %v: %s", args, err, out)
	}
}

// helperPID is the process id of the node helper of node (deploy.sh's pid file).
func helperPID(t *testing.T, node string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(workDir(), "deploy", "helper-"+node, "pid"))
	if err != nil {
		t.Fatalf("pid of helper-%s: %v", node, err)
	}
	return strings.TrimSpace(string(b))
}

// rssKiB reads VmRSS (KiB) of a process.
func rssKiB(t *testing.T, pid string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatalf("status of %s: %v", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var v int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:")), "%d", &v)
			return v
		}
	}
	t.Fatalf("no VmRSS for %s", pid)
	return 0
}

// mustDeny: err is the API server's refusal by the named admission policy.
func mustDeny(t *testing.T, what string, err error, policy string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: accepted by the API server, want a refusal by %s", what, policy)
	}
	if !strings.Contains(err.Error(), policy) {
		t.Fatalf("%s: refused, but not by %s: %v", what, policy, err)
	}
	t.Logf("%s: refused by the API server: %v", what, err)
}

func mustAllow(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: refused, want allowed: %v", what, err)
	}
}
