package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Options for Up.
type Options struct {
	Work       string
	BinDir     string // kube-apiserver, kubectl, etcd, kwok, kubelet, ...
	NodeBinDir string // containerd, runc, crictl, ... (build.sh node)
	ImagesDir  string // pause.tar, counter.tar (build.sh images)
	HarnessBin string // this program, for the supervisor and the stand-ins
	CRDFile    string // crds/podcheckpoint.yaml; missing file = warning
	Timeout    time.Duration
	Out        io.Writer // progress and the final KUBECONFIG= line
	Err        io.Writer // warnings
}

// ComponentError names the component that failed and carries its log tail.
type ComponentError struct {
	Component string
	Err       error
	LogFile   string
}

func (e *ComponentError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cluster: component %s failed: %v", e.Component, e.Err)
	if e.LogFile != "" {
		fmt.Fprintf(&b, "\n---- last lines of %s ----\n%s", e.LogFile, tail(e.LogFile, 25))
	}
	return b.String()
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func componentLog(st *State, rt *Runtime, name string) string {
	if rt != nil {
		for _, p := range rt.Processes {
			if p.Name == name {
				return p.LogFile
			}
		}
	}
	switch name {
	case "etcd":
		return st.Etcd.LogFile
	case "kube-apiserver":
		return st.APIServer.LogFile
	case "kwok":
		return st.KwokLogFile
	case "supervisor":
		return st.SupervisorLogFile
	}
	for _, n := range st.Nodes {
		if name == "standin-"+n.Name {
			return n.LogFile
		}
	}
	return st.SupervisorLogFile
}

// running returns the state when a supervisor for work is alive.
func running(work string) (*State, bool) {
	st, err := LoadState(work)
	if err != nil {
		return nil, false
	}
	if !pidAlive(st.SupervisorPID) || !isSupervisor(st.SupervisorPID, work) {
		return st, false
	}
	return st, true
}

// Up starts the cluster (or checks the running one) and prints KUBECONFIG=... last.
func Up(o Options) error {
	if o.Timeout == 0 {
		o.Timeout = 240 * time.Second
	}
	deadline := time.Now().Add(o.Timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	st, alive := running(o.Work)
	fresh := false
	if !alive {
		if st != nil {
			killLeftovers(o.Work) // supervisor died (e.g. reboot, SIGKILL): clear the rest
		}
		var err error
		if st, err = startFresh(o); err != nil {
			return err
		}
		fresh = true
	}
	err := finishUp(ctx, o, st)
	if err != nil && fresh {
		msg := err.Error() // with the log tail as it was at the failure
		// leave nothing behind after a failed start
		_ = Down(o.Work, io.Discard)
		return errors.New(msg)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "KUBECONFIG=%s\n", st.AdminKubeconfig)
	return nil
}

func finishUp(ctx context.Context, o Options, st *State) error {
	// 1. supervisor: every process started and ready
	for {
		rt, err := LoadRuntime(o.Work)
		if err == nil {
			switch rt.Phase {
			case "ready":
				goto processesReady
			case "failed", "degraded":
				return &ComponentError{Component: rt.Component, Err: errors.New(rt.Message), LogFile: componentLog(st, rt, rt.Component)}
			case "stopping", "stopped":
				return &ComponentError{Component: "supervisor", Err: errors.New("cluster is stopping"), LogFile: st.SupervisorLogFile}
			}
		}
		if !pidAlive(st.SupervisorPID) {
			return &ComponentError{Component: "supervisor", Err: errors.New("supervisor exited"), LogFile: st.SupervisorLogFile}
		}
		if ctx.Err() != nil {
			comp := "supervisor"
			if rt != nil {
				for _, p := range rt.Processes {
					comp = p.Name // the last one started is the one we are waiting on
				}
			}
			return &ComponentError{Component: comp, Err: errors.New("not ready before the deadline"), LogFile: componentLog(st, rt, comp)}
		}
		time.Sleep(300 * time.Millisecond)
	}
processesReady:
	rt, _ := LoadRuntime(o.Work)
	if rt != nil {
		for _, p := range rt.Processes {
			if p.Exited || !pidAlive(p.PID) {
				return &ComponentError{Component: p.Name, Err: fmt.Errorf("process %d is gone (%s)", p.PID, p.ExitInfo), LogFile: p.LogFile}
			}
		}
	}
	// 2. API objects: namespace, nodes, CRD
	cfg, err := RESTConfig(st)
	if err != nil {
		return &ComponentError{Component: "kube-apiserver", Err: err}
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return &ComponentError{Component: "kube-apiserver", Err: err}
	}
	hc, err := adminHTTPClient(st)
	if err != nil {
		return err
	}
	if err := readyz(hc, st.APIServer.URL); err != nil {
		return &ComponentError{Component: "kube-apiserver", Err: err, LogFile: st.APIServer.LogFile}
	}
	if err := ensureNamespace(ctx, cs, st.Namespace); err != nil {
		return &ComponentError{Component: "kube-apiserver", Err: err, LogFile: st.APIServer.LogFile}
	}
	for _, n := range st.Nodes {
		if err := ensureNode(ctx, cs, n); err != nil {
			return &ComponentError{Component: "kube-apiserver", Err: fmt.Errorf("node %s: %w", n.Name, err), LogFile: st.APIServer.LogFile}
		}
	}
	if err := applyCRD(ctx, cfg, o); err != nil {
		return &ComponentError{Component: "crd", Err: err}
	}
	// 3. nodes Ready (kwok), addresses kept
	if err := waitNodesReady(ctx, cs, st.Nodes); err != nil {
		return &ComponentError{Component: "kwok", Err: err, LogFile: st.KwokLogFile}
	}
	// 4. stand-ins answer
	for _, n := range st.Nodes {
		if err := standinHealthy(st, n); err != nil {
			return &ComponentError{Component: "standin-" + n.Name, Err: err, LogFile: n.LogFile}
		}
	}
	// 5. real nodes registered, addressed, Ready, serving TLS for their names
	for _, n := range st.RealNodes {
		if err := finishRealNode(ctx, st, cs, n); err != nil {
			return &ComponentError{Component: "kubelet-" + n.Name, Err: err, LogFile: n.LogFile}
		}
	}
	if st.WithoutRealNode {
		fmt.Fprintf(o.Err, "cluster: WARNING: running WITHOUT the real node (%s)\n", st.WithoutRealNodeReason)
	}
	return nil
}

func pickPort(def int, taken map[int]bool) (int, error) {
	for p := def; p < def+100 && p < 65536; p++ {
		if taken[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		taken[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("no free port in %d..%d", def, def+99)
}

func prepareWorkDir(work string) error {
	ents, err := os.ReadDir(work)
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(work, 0o755)
	}
	if err != nil {
		return err
	}
	if len(ents) > 0 && !exists(filepath.Join(work, markerFile)) {
		return fmt.Errorf("cluster: %s is not empty and is not a cluster work dir (no %s); refusing to wipe it", work, markerFile)
	}
	// Fresh state every start: new PKI, empty etcd, empty node roots. Keep the
	// previous logs one generation back for post-mortems.
	prev := filepath.Join(work, "logs.previous")
	_ = os.RemoveAll(prev)
	_ = os.Rename(filepath.Join(work, "logs"), prev)
	for _, e := range ents {
		if e.Name() == "logs.previous" || e.Name() == "logs" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(work, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func startFresh(o Options) (*State, error) {
	work, err := filepath.Abs(o.Work)
	if err != nil {
		return nil, err
	}
	if err := prepareWorkDir(work); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(work, markerFile), []byte("podcheckpoint test cluster work dir; `cluster up` wipes it\n"), 0o644); err != nil {
		return nil, err
	}
	st := newState(work)
	st.BinDir, st.HarnessBin = o.BinDir, o.HarnessBin
	st.NodeBinDir, st.ImagesDir = o.NodeBinDir, o.ImagesDir
	if RealNodeDisabled() {
		st.WithoutRealNode = true
		st.WithoutRealNodeReason = "PCP_E2E_NO_REAL_NODE=1"
	}
	for _, d := range []string{"pki", "logs", "etcd"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o700); err != nil {
			return nil, err
		}
	}
	for _, n := range st.Nodes {
		if err := os.MkdirAll(n.CheckpointsDir, 0o700); err != nil {
			return nil, err
		}
	}
	if !st.WithoutRealNode {
		st.RealNodes = []Node{newRealNode(work, envInt("PCP_KUBELET_PORT", 10250))}
		if err := os.MkdirAll(filepath.Join(work, "nodes", RealNodeName), 0o700); err != nil {
			return nil, err
		}
	}
	taken := map[int]bool{}
	if st.APIServer.Port, err = pickPort(envInt("PCP_APISERVER_PORT", 26443), taken); err != nil {
		return nil, &ComponentError{Component: "kube-apiserver", Err: err}
	}
	if st.Etcd.Port, err = pickPort(envInt("PCP_ETCD_PORT", 23790), taken); err != nil {
		return nil, &ComponentError{Component: "etcd", Err: err}
	}
	if st.Etcd.PeerPort, err = pickPort(st.Etcd.Port+10, taken); err != nil {
		return nil, &ComponentError{Component: "etcd", Err: err}
	}
	st.APIServer.URL = fmt.Sprintf("https://127.0.0.1:%d", st.APIServer.Port)
	st.Etcd.URL = fmt.Sprintf("http://127.0.0.1:%d", st.Etcd.Port)
	st.SAIssuer = st.APIServer.URL + "/"
	kport := envInt("PCP_KUBELET_PORT", 10250)
	for i := range st.Nodes {
		n := &st.Nodes[i]
		n.KubeletPort = kport
		n.KubeletURL = fmt.Sprintf("https://%s:%d", n.IP, kport)
		l, err := net.Listen("tcp", net.JoinHostPort(n.IP, strconv.Itoa(kport)))
		if err != nil {
			return nil, &ComponentError{Component: "standin-" + n.Name, Err: fmt.Errorf("%s:%d is not free (set PCP_KUBELET_PORT?): %w", n.IP, kport, err)}
		}
		l.Close()
	}
	for i := range st.RealNodes {
		n := &st.RealNodes[i]
		for _, port := range []int{kport, 10248} {
			addr := net.JoinHostPort(n.IP, strconv.Itoa(port))
			if RealNodeListening(addr) {
				return nil, &ComponentError{Component: "kubelet-" + n.Name, Err: fmt.Errorf("%s is taken (a kubelet left running?)", addr)}
			}
		}
		if err := prepareRealNode(st, n); err != nil {
			return nil, &ComponentError{Component: "real node " + n.Name, Err: fmt.Errorf("%w (PCP_E2E_NO_REAL_NODE=1 runs without it)", err)}
		}
	}
	if err := generatePKI(st); err != nil {
		return nil, err
	}
	ca, _ := os.ReadFile(st.CAFile)
	crt, _ := os.ReadFile(st.AdminCertFile)
	key, _ := os.ReadFile(st.AdminKeyFile)
	if err := os.WriteFile(st.AdminKubeconfig, kubeconfig(st.APIServer.URL, ca, crt, key), 0o600); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(work, StateFile), st); err != nil {
		return nil, err
	}
	_ = os.Remove(filepath.Join(work, RuntimeFile))

	lf, err := os.OpenFile(st.SupervisorLogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	cmd := exec.Command(o.HarnessBin, "supervise", "--work", work)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, lf, lf
	cmd.Dir = work
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, &ComponentError{Component: "supervisor", Err: err}
	}
	st.SupervisorPID = cmd.Process.Pid
	_ = cmd.Process.Release() // detached: init reaps it
	if err := writeJSON(filepath.Join(work, StateFile), st); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Err, "cluster: starting in %s (supervisor pid %d, apiserver %s)\n", work, st.SupervisorPID, st.APIServer.URL)
	return st, nil
}

// RESTConfig is the admin client configuration.
func RESTConfig(st *State) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", st.AdminKubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 100, 200
	cfg.Timeout = 30 * time.Second
	return cfg, nil
}

func ensureNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func nodeObject(n Node) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.Name,
			Labels: map[string]string{
				"kubernetes.io/hostname": n.Name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
			Annotations: map[string]string{KwokAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0"},
		},
		Status: corev1.NodeStatus{
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: n.IP},
				{Type: corev1.NodeHostName, Address: n.Name},
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(n.KubeletPort)}},
		},
	}
}

func ensureNode(ctx context.Context, cs kubernetes.Interface, n Node) error {
	want := nodeObject(n)
	got, err := cs.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		got, err = cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	if !nodeAddressOK(got, n) {
		got.Status.Addresses = want.Status.Addresses
		got.Status.DaemonEndpoints = want.Status.DaemonEndpoints
		_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, got, metav1.UpdateOptions{})
	}
	return err
}

func nodeAddressOK(node *corev1.Node, n Node) bool {
	ok := false
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && a.Address == n.IP {
			ok = true
		}
	}
	return ok && node.Status.DaemonEndpoints.KubeletEndpoint.Port == int32(n.KubeletPort)
}

func hasTaint(node *corev1.Node, key string) bool {
	for _, t := range node.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func waitNodesReady(ctx context.Context, cs kubernetes.Interface, nodes []Node) error {
	var last string
	for {
		allOK := true
		for _, n := range nodes {
			node, err := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			switch {
			case err != nil:
				allOK, last = false, fmt.Sprintf("node %s: %v", n.Name, err)
			case !nodeReady(node):
				allOK, last = false, fmt.Sprintf("node %s not Ready", n.Name)
			case hasTaint(node, "node.kubernetes.io/not-ready"):
				// lifted by kube-controller-manager's node lifecycle once Ready
				allOK, last = false, fmt.Sprintf("node %s still has the not-ready taint", n.Name)
			case !nodeAddressOK(node, n):
				return fmt.Errorf("node %s lost its InternalIP %s / kubelet port %d: %+v", n.Name, n.IP, n.KubeletPort, node.Status.Addresses)
			}
		}
		if allOK {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes not Ready before the deadline: %s", last)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// applyCRD server-side-applies every object of o.CRDFile and waits until the CRDs
// are Established. A missing file is a warning (the CRD is written elsewhere).
func applyCRD(ctx context.Context, cfg *rest.Config, o Options) error {
	if o.CRDFile == "" {
		return nil
	}
	data, err := os.ReadFile(o.CRDFile)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(o.Err, "cluster: WARNING: %s does not exist yet; CRD not applied\n", o.CRDFile)
		return nil
	}
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(bytes.NewReader(data)), 4096)
	var crds []string
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("%s: %w", o.CRDFile, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		if obj.GetKind() != "CustomResourceDefinition" {
			return fmt.Errorf("%s: unexpected kind %q (only CustomResourceDefinition is applied)", o.CRDFile, obj.GetKind())
		}
		body, err := obj.MarshalJSON()
		if err != nil {
			return err
		}
		force := true
		if _, err := dyn.Resource(crdGVR).Patch(ctx, obj.GetName(), types.ApplyPatchType, body,
			metav1.PatchOptions{FieldManager: "pcp-e2e-cluster", Force: &force}); err != nil {
			return fmt.Errorf("apply %s from %s: %w", obj.GetName(), o.CRDFile, err)
		}
		crds = append(crds, obj.GetName())
	}
	if len(crds) == 0 {
		return fmt.Errorf("%s holds no CustomResourceDefinition", o.CRDFile)
	}
	for _, name := range crds {
		for {
			u, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err == nil && crdEstablished(u) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("CRD %s not Established before the deadline (last error %v)", name, err)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

func crdEstablished(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// StandinHTTPClient trusts the kubelet CA (the stand-ins' serving certs).
func StandinHTTPClient(st *State, clientCert bool) (*http.Client, error) {
	ca, err := os.ReadFile(st.KubeletCAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s", st.KubeletCAFile)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if clientCert {
		cert, err := tls.LoadX509KeyPair(st.AdminCertFile, st.AdminKeyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}, nil
}

func standinHealthy(st *State, n Node) error {
	c, err := StandinHTTPClient(st, false)
	if err != nil {
		return err
	}
	c.Timeout = 3 * time.Second
	resp, err := c.Get(n.KubeletURL + "/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s/healthz: %s", n.KubeletURL, resp.Status)
	}
	return nil
}
