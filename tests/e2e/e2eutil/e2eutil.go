// Package e2eutil gives end-to-end tests the running test cluster: its state,
// clients, ServiceAccount tokens, pods on the fake nodes, the kubelet stand-ins
// (checkpoint calls, faults, request log) and archive reading. Shared by the
// cluster tests and the pipeline tests.
package e2eutil

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"podcheckpoint.dev/e2e/internal/cluster"
	"podcheckpoint.dev/e2e/internal/standin"
)

// Types re-exported for tests outside this module's internal tree.
type (
	State       = cluster.State
	Node        = cluster.Node
	Record      = standin.Record
	NodeFaults  = standin.NodeFaults
	ArchiveConf = standin.ContainerConfig
)

// Fault annotation keys.
const (
	FaultDelay    = standin.FaultDelay
	FaultFail     = standin.FaultFail
	FaultHang     = standin.FaultHang
	FaultTruncate = standin.FaultTruncate
	FaultDiskFull = standin.FaultDiskFull
	FaultSize     = standin.FaultSize
)

// E2EDir is tests/e2e (found from this file's location).
func E2EDir() string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(f))
}

// Env is the cluster seen by a test.
type Env struct {
	State   *cluster.State
	Config  *rest.Config
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	// StartedByUs: EnsureUp ran `cluster up` on a stopped cluster (so the test
	// binary should bring it down again, unless PCP_E2E_KEEP=1).
	StartedByUs bool
}

// EnsureUp runs `tests/e2e/cluster up` (starting the cluster if needed; when it
// is up this only checks it and re-applies the CRD) and connects to it.
func EnsureUp() (*Env, error) {
	work := cluster.WorkDir()
	wasUp := exec.Command(filepath.Join(E2EDir(), "cluster"), "status").Run() == nil
	cmd := exec.Command(filepath.Join(E2EDir(), "cluster"), "up")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("tests/e2e/cluster up failed: %w\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "KUBECONFIG=") {
		return nil, fmt.Errorf("cluster up: last line is %q, want KUBECONFIG=...", last)
	}
	env, err := Connect(work)
	if err != nil {
		return nil, err
	}
	env.StartedByUs = !wasUp
	return env, nil
}

// Connect loads the state of a running cluster.
func Connect(work string) (*Env, error) {
	st, err := cluster.LoadState(work)
	if err != nil {
		return nil, err
	}
	cfg, err := cluster.RESTConfig(st)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Env{State: st, Config: cfg, Client: cs, Dynamic: dyn}, nil
}

// Down runs `tests/e2e/cluster down`.
func Down() error {
	cmd := exec.Command(filepath.Join(E2EDir(), "cluster"), "down")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// Node returns the node by name.
func (e *Env) Node(name string) cluster.Node {
	for _, n := range e.State.AllNodes() {
		if n.Name == name {
			return n
		}
	}
	panic("no node " + name)
}

// CreateNamespace makes a namespace with a unique name.
func (e *Env) CreateNamespace(ctx context.Context, prefix string) (string, error) {
	ns, err := e.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return ns.Name, nil
}

// ServiceAccountToken creates the ServiceAccount if needed (no controller-manager
// runs, so nothing else would) and returns a token from the TokenRequest API.
func (e *Env) ServiceAccountToken(ctx context.Context, ns, name string) (string, error) {
	_, err := e.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	exp := int64(3600)
	tr, err := e.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

// CheckpointClusterRole grants create on nodes/checkpoint (what the node helper needs).
const CheckpointClusterRole = "pcp-e2e-node-checkpoint"

// GrantCheckpoint binds ns/sa to a ClusterRole allowing create on nodes/checkpoint.
func (e *Env) GrantCheckpoint(ctx context.Context, ns, sa string) error {
	_, err := e.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: CheckpointClusterRole},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes/checkpoint"}, Verbs: []string{"create"}}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	_, err = e.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: CheckpointClusterRole + "-" + ns + "-" + sa},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: CheckpointClusterRole},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: sa}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// RunningPod creates a pod bound to node (spec.nodeName; no scheduler runs) and
// waits until kwok reports it Running with running container statuses.
func (e *Env) RunningPod(ctx context.Context, ns, name, node string, annotations map[string]string, containers ...string) (*corev1.Pod, error) {
	if len(containers) == 0 {
		containers = []string{"main"}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations, Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{NodeName: node},
	}
	for _, c := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
			Name: c, Image: "registry.example/counter:1.0", Command: []string{"/counter"}, Args: []string{"--interval=1s"},
		})
	}
	if _, err := e.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	return e.WaitPodRunning(ctx, ns, name, 60*time.Second)
}

// WaitPodRunning waits for phase Running with every container running.
func (e *Env) WaitPodRunning(ctx context.Context, ns, name string, d time.Duration) (*corev1.Pod, error) {
	deadline := time.Now().Add(d)
	var last *corev1.Pod
	for time.Now().Before(deadline) {
		p, err := e.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last = p
			if p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) == len(p.Spec.Containers) {
				ok := true
				for _, cs := range p.Status.ContainerStatuses {
					ok = ok && cs.State.Running != nil
				}
				if ok {
					return p, nil
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if last == nil {
		return nil, fmt.Errorf("pod %s/%s not found within %s", ns, name, d)
	}
	return nil, fmt.Errorf("pod %s/%s not Running within %s: phase=%s statuses=%d", ns, name, d, last.Status.Phase, len(last.Status.ContainerStatuses))
}

// StandinClient trusts the stand-ins' CA; adminCert also presents the admin client cert.
func (e *Env) StandinClient(adminCert bool, timeout time.Duration) (*http.Client, error) {
	c, err := cluster.StandinHTTPClient(e.State, adminCert)
	if err != nil {
		return nil, err
	}
	c.Timeout = timeout
	return c, nil
}

// CheckpointResult is the stand-in's answer.
type CheckpointResult struct {
	Status int
	Body   string
	Items  []string // set on 200
}

// Checkpoint calls POST /checkpoint/ns/pod/ctr on node's stand-in. query is the
// raw query ("timeout=30" or ""); token "" sends no Authorization header.
func (e *Env) Checkpoint(ctx context.Context, c *http.Client, node, ns, pod, ctr, query, token string) (*CheckpointResult, error) {
	n := e.Node(node)
	url := fmt.Sprintf("%s/checkpoint/%s/%s/%s", n.KubeletURL, ns, pod, ctr)
	if query != "" {
		url += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	r := &CheckpointResult{Status: resp.StatusCode, Body: string(b)}
	if resp.StatusCode == 200 {
		var v struct {
			Items []string `json:"items"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return r, fmt.Errorf("200 with a body that is not {\"items\":[...]}: %q", b)
		}
		r.Items = v.Items
	}
	return r, nil
}

func (e *Env) adminDo(ctx context.Context, method, node, path string, body any, out any) error {
	c, err := e.StandinClient(true, 10*time.Second)
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.Node(node).KubeletURL+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// SetNodeFaults sets node-wide faults (annotation keys) for the next count
// checkpoint requests (0: until cleared).
func (e *Env) SetNodeFaults(ctx context.Context, node string, faults map[string]string, count int) error {
	return e.adminDo(ctx, http.MethodPost, node, "/admin/faults", standin.NodeFaults{Faults: faults, Count: count}, nil)
}

// ClearNodeFaults removes node-wide faults.
func (e *Env) ClearNodeFaults(ctx context.Context, node string) error {
	return e.adminDo(ctx, http.MethodDelete, node, "/admin/faults", nil, nil)
}

// Requests returns the stand-in's request log (records with seq > since).
func (e *Env) Requests(ctx context.Context, node string, since int64) ([]standin.Record, error) {
	var out []standin.Record
	err := e.adminDo(ctx, http.MethodGet, node, fmt.Sprintf("/admin/requests?since=%d", since), nil, &out)
	return out, err
}

// ArchiveEntry is one tar member.
type ArchiveEntry struct {
	Name string
	Size int64
	Data []byte // nil for checkpoint/*.img (opaque)
}

// ReadArchive reads a checkpoint archive fully; an error for a truncated one.
func ReadArchive(path string) ([]ArchiveEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var out []ArchiveEntry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		ent := ArchiveEntry{Name: h.Name, Size: h.Size}
		if strings.HasPrefix(h.Name, "checkpoint/") {
			if _, err := io.Copy(io.Discard, tr); err != nil {
				return out, err
			}
		} else if ent.Data, err = io.ReadAll(tr); err != nil {
			return out, err
		}
		out = append(out, ent)
	}
}
