package cluster

// A real node next to the kwok nodes: kubelet (same k8s.io/kubernetes module as
// the API server) + containerd 2.x with runc + Debian's CNI plugins, started by
// the supervisor. See docs/test-cluster.md, "The real node".

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	RealNodeName = "real-1"
	RealNodeIP   = "127.0.0.13"
	// CounterImage prints an increasing number every second (busybox).
	CounterImage = "podcheckpoint.test/counter:latest"
	// PauseImage is the pod sandbox image (busybox `sleep infinity`).
	PauseImage = "podcheckpoint.test/pause:latest"
	// realMarker in the kubelet root dir says the harness owns it (wiped by up/down).
	realMarker = ".pcp-real-node"
	cniBridge  = "pcp-cni0"
	cniSubnet  = "10.89.0.0/24"
)

// RealNode holds what only a real node has.
type RealNode struct {
	ContainerdSocket string `json:"containerdSocket"`
	ContainerdRoot   string `json:"containerdRoot"`
	ContainerdState  string `json:"containerdState"`
	ContainerdConfig string `json:"containerdConfig"`
	ContainerdLog    string `json:"containerdLog"`
	KubeletConfig    string `json:"kubeletConfig"`
	Kubeconfig       string `json:"kubeconfig"` // the kubelet's API credentials (system:node:<name>)
	HealthzURL       string `json:"healthzURL"`
	CNIConfDir       string `json:"cniConfDir"`
	CNIDataDir       string `json:"cniDataDir"`
	// ServingCert: "self-signed" (the kubelet writes <rootDir>/pki/kubelet.crt for
	// its name, as kubeadm and kind nodes have) or "bootstrap" (serverTLSBootstrap:
	// a CSR signed by the cluster CA, approved by `up`).
	ServingCert string   `json:"servingCert"`
	Images      []string `json:"images"`
	CRIU        string   `json:"criu"` // `criu --version`, and whether `criu check` passes
	CRIUCheckOK bool     `json:"criuCheckOK"`
}

// realNodeRoot is the kubelet --root-dir of the real node: /var/lib/kubelet by
// default, so that config/default's hostPaths are used as shipped.
func realNodeRoot() string {
	if d := os.Getenv("PCP_REAL_NODE_ROOT"); d != "" {
		return d
	}
	return "/var/lib/kubelet"
}

// RealNodeDisabled: PCP_E2E_NO_REAL_NODE=1 runs the cluster without it (said loudly).
func RealNodeDisabled() bool { return os.Getenv("PCP_E2E_NO_REAL_NODE") == "1" }

func newRealNode(work string, kport int) Node {
	p := func(parts ...string) string {
		return filepath.Join(append([]string{work, "nodes", RealNodeName}, parts...)...)
	}
	root := realNodeRoot()
	mode := "self-signed"
	if os.Getenv("PCP_REAL_NODE_SERVING_CERT") == "bootstrap" {
		mode = "bootstrap"
	}
	n := Node{
		Runtime:        "containerd",
		Name:           RealNodeName,
		IP:             RealNodeIP,
		KubeletPort:    kport,
		KubeletURL:     fmt.Sprintf("https://%s:%d", RealNodeIP, kport),
		RootDir:        root,
		CheckpointsDir: filepath.Join(root, "checkpoints"),
		CertFile:       filepath.Join(root, "pki", "kubelet.crt"),
		KeyFile:        filepath.Join(root, "pki", "kubelet.key"),
		LogFile:        filepath.Join(work, "logs", "kubelet-"+RealNodeName+".log"),
		KubeletCAFile:  filepath.Join(root, "pki", "kubelet.crt"),
		Real: &RealNode{
			ContainerdSocket: p("containerd", "containerd.sock"),
			ContainerdRoot:   p("containerd", "root"),
			ContainerdState:  p("containerd", "state"),
			ContainerdConfig: p("containerd", "config.toml"),
			ContainerdLog:    filepath.Join(work, "logs", "containerd-"+RealNodeName+".log"),
			KubeletConfig:    p("kubelet-config.yaml"),
			Kubeconfig:       p("kubelet.kubeconfig"),
			HealthzURL:       fmt.Sprintf("http://%s:10248/healthz", RealNodeIP),
			CNIConfDir:       p("cni", "net.d"),
			CNIDataDir:       p("cni", "data"),
			ServingCert:      mode,
			Images:           []string{PauseImage, CounterImage},
		},
	}
	if mode == "bootstrap" {
		n.KubeletCAFile = filepath.Join(work, "pki", "ca.crt")
		n.CertFile = filepath.Join(root, "pki", "kubelet-server-current.pem")
		n.KeyFile = n.CertFile
	}
	return n
}

// prepareRealNode checks the machine, wipes what a previous run left, writes the
// configuration files. Errors name what is missing.
func prepareRealNode(st *State, n *Node) error {
	r := n.Real
	if os.Geteuid() != 0 {
		return errors.New("the real node needs root (kubelet, containerd, runc, CNI); set PCP_E2E_NO_REAL_NODE=1 to run without it")
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "crictl"} {
		if _, err := os.Stat(filepath.Join(st.NodeBinDir, b)); err != nil {
			return fmt.Errorf("no %s in %s (tests/e2e/build.sh node)", b, st.NodeBinDir)
		}
	}
	for _, b := range []string{"/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("no %s: install containernetworking-plugins (scripts/setup.sh)", b)
		}
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return errors.New("no iptables: install iptables (scripts/setup.sh)")
	}
	for _, img := range []string{"pause.tar", "counter.tar"} {
		if _, err := os.Stat(filepath.Join(st.ImagesDir, img)); err != nil {
			return fmt.Errorf("no %s in %s (tests/e2e/build.sh images)", img, st.ImagesDir)
		}
	}
	if err := wipeRealNodeRoot(n.RootDir); err != nil {
		return err
	}
	for _, d := range []string{n.RootDir, filepath.Join(n.RootDir, "pki"), n.CheckpointsDir, r.ContainerdRoot, r.ContainerdState, r.CNIConfDir, r.CNIDataDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(n.RootDir, realMarker), []byte("podcheckpoint test cluster real node "+st.WorkDir+"\n"), 0o644); err != nil {
		return err
	}
	r.CRIU, r.CRIUCheckOK = criuInfo()
	if err := os.WriteFile(r.ContainerdConfig, []byte(containerdConfig(st, n)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.CNIConfDir, "10-pcp.conflist"), []byte(cniConfig(n)), 0o644); err != nil {
		return err
	}
	return os.WriteFile(r.KubeletConfig, []byte(kubeletConfig(st, n)), 0o644)
}

// wipeRealNodeRoot removes the kubelet root of a previous run: only when it
// carries our marker (or does not exist), after unmounting what is below it.
func wipeRealNodeRoot(root string) error {
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(ents) > 0 && !exists(filepath.Join(root, realMarker)) {
		return fmt.Errorf("%s exists and is not the test cluster's (no %s): is a real kubelet installed here? (PCP_REAL_NODE_ROOT chooses another root)", root, realMarker)
	}
	unmountUnder(root)
	return os.RemoveAll(root)
}

func criuInfo() (string, bool) {
	path, err := exec.LookPath("criu")
	if err != nil {
		return "no criu on PATH", false
	}
	v, _ := exec.Command(path, "--version").CombinedOutput()
	ver := strings.TrimSpace(strings.ReplaceAll(string(v), "\n", " "))
	out, err := exec.Command(path, "check").CombinedOutput()
	if err == nil && strings.Contains(string(out), "Looks good") {
		return ver + "; criu check: Looks good", true
	}
	last := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(last, '\n'); i >= 0 {
		last = last[i+1:]
	}
	return ver + "; criu check fails: " + last, false
}

func containerdConfig(st *State, n *Node) string {
	r := n.Real
	return fmt.Sprintf(`# written by tests/e2e (pcp-e2e up)
version = 3
root = %q
state = %q

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  level = "info"

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    # no registry: every image is imported; never pull
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = %q

  [plugins.'io.containerd.cri.v1.runtime']
    # this VM's capability bounding set has no CAP_SYS_RESOURCE: without it every
    # sandbox fails "nsexec: failed to update /proc/self/oom_score_adj"
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    enable_cdi = false
    enable_criu = true

    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = %q
          SystemdCgroup = false

    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/usr/lib/cni']
      conf_dir = %q
      max_conf_num = 1

  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
    stream_server_address = %q
    stream_server_port = '0'
`, r.ContainerdRoot, r.ContainerdState, r.ContainerdSocket, r.ContainerdSocket+".ttrpc", PauseImage,
		filepath.Join(st.NodeBinDir, "runc"), r.CNIConfDir, n.IP)
}

func cniConfig(n *Node) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "pcp",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "loopback"}
  ]
}
`, cniBridge, n.Real.CNIDataDir, cniSubnet)
}

func kubeletConfig(st *State, n *Node) string {
	tls := ""
	if n.Real.ServingCert == "bootstrap" {
		tls = "serverTLSBootstrap: true\n"
	}
	return fmt.Sprintf(`# written by tests/e2e (pcp-e2e up)
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: %d
readOnlyPort: 0
healthzBindAddress: %s
healthzPort: 10248
%sauthentication:
  anonymous: {enabled: false}
  webhook: {enabled: true, cacheTTL: 10s}
  x509: {clientCAFile: %q}
authorization:
  mode: Webhook
  webhook: {cacheAuthorizedTTL: 10s, cacheUnauthorizedTTL: 5s}
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
# this machine has cgroup v1 (hybrid): kubelet 1.36 only warns with this
failCgroupV1: false
failSwapOn: false
# no registry can re-pull an imported image: never collect them
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {nodefs.available: "1%%", imagefs.available: "1%%", memory.available: "100Mi"}
maxPods: 40
serializeImagePulls: false
resolvConf: /etc/resolv.conf
registerNode: true
`, n.IP, n.KubeletPort, n.IP, tls, st.CAFile, n.Real.ContainerdSocket)
}

// startRealNode (supervisor): containerd, the images, the kubelet.
func (s *supervisor) startRealNode(ctx context.Context, n Node) (string, error) {
	st, r := s.st, n.Real
	env := append(os.Environ(), "PATH="+st.NodeBinDir+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	ctrd, err := s.startEnv("containerd-"+n.Name, r.ContainerdLog, r.ContainerdSocket, env,
		filepath.Join(st.NodeBinDir, "containerd"), "--config", r.ContainerdConfig)
	if err != nil {
		return "containerd-" + n.Name, err
	}
	if err := waitFor(ctrd, 60*time.Second, func() error {
		return exec.Command(filepath.Join(st.NodeBinDir, "ctr"), "--address", r.ContainerdSocket, "version").Run()
	}); err != nil {
		return "containerd-" + n.Name, err
	}
	for _, img := range []string{"pause.tar", "counter.tar"} {
		if err := ImportImage(st, n, filepath.Join(st.ImagesDir, img)); err != nil {
			return "containerd-" + n.Name, err
		}
	}
	if ctx.Err() != nil {
		return "", nil
	}
	kl, err := s.startEnv("kubelet-"+n.Name, n.LogFile, n.KubeletURL, env, filepath.Join(st.BinDir, "kubelet"),
		"--config="+r.KubeletConfig,
		"--kubeconfig="+r.Kubeconfig,
		"--root-dir="+n.RootDir,
		"--hostname-override="+n.Name,
		"--node-ip="+n.IP,
		"--node-labels=podcheckpoint.test/real-node=true",
		"--v=2")
	if err != nil {
		return "kubelet-" + n.Name, err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := waitFor(kl, 120*time.Second, func() error {
		resp, err := hc.Get(r.HealthzURL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: %s", r.HealthzURL, resp.Status)
		}
		return nil
	}); err != nil {
		return "kubelet-" + n.Name, err
	}
	return "", nil
}

// ImportImage imports a `docker save` archive into the node's containerd (k8s.io namespace).
func ImportImage(st *State, n Node, tarFile string) error {
	out, err := exec.Command(filepath.Join(st.NodeBinDir, "ctr"), "--address", n.Real.ContainerdSocket,
		"-n", "k8s.io", "images", "import", "--platform", "linux/amd64", tarFile).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr images import %s: %v: %s", tarFile, err, bytes.TrimSpace(out))
	}
	return nil
}

// finishRealNode (`up`): the Node registered, its addresses, Ready, the serving cert.
func finishRealNode(ctx context.Context, st *State, cs kubernetes.Interface, n Node) error {
	var node *corev1.Node
	var err error
	for {
		node, err = cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the kubelet did not register Node %s: %v", n.Name, err)
		case <-time.After(300 * time.Millisecond):
		}
	}
	// The kubelet refuses a loopback --node-ip for status.addresses ("nodeIP can't
	// be loopback address") and then leaves them alone: set them as a real node
	// has them, so pods get status.hostIP and the API server finds the kubelet.
	for !nodeAddressOK(node, n) {
		node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.IP}, {Type: corev1.NodeHostName, Address: n.Name}}
		_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: cannot set its addresses: %v", n.Name, err)
		case <-time.After(300 * time.Millisecond):
		}
		if node, err = cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{}); err != nil {
			return err
		}
	}
	if n.Real.ServingCert == "bootstrap" {
		if err := approveServingCSRs(ctx, cs, n); err != nil {
			return err
		}
	}
	if err := waitNodesReady(ctx, cs, []Node{n}); err != nil {
		return err
	}
	// the kubelet's serving certificate is there and verifies for the node name
	deadline := time.Now().Add(60 * time.Second)
	for {
		err = kubeletTLSCheck(n)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// kubeletTLSCheck: a TLS handshake with the kubelet at its IP, verified for its name.
func kubeletTLSCheck(n Node) error {
	c, err := KubeletHTTPClient(n, nil)
	if err != nil {
		return err
	}
	c.Timeout = 3 * time.Second
	resp, err := c.Get(fmt.Sprintf("https://%s:%d/healthz", n.Name, n.KubeletPort))
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil // 401 is fine: the TLS handshake verified
}

// RealNodeStatus: one line about each real node for `status`.
func realNodeStatus(out io.Writer, st *State) {
	for _, n := range st.RealNodes {
		fmt.Fprintf(out, "  node %-11s %s kubelet %s root %s runtime %s (containerd %s) serving cert %s; %s\n",
			n.Name, n.IP, n.KubeletURL, n.RootDir, n.Runtime, n.Real.ContainerdSocket, n.Real.ServingCert, n.Real.CRIU)
	}
	if st.WithoutRealNode {
		fmt.Fprintf(out, "  no real node     %s\n", st.WithoutRealNodeReason)
	}
}

// cleanupRealNode removes what the real node leaves on the machine once its
// processes are gone: shims, mounts, the CNI bridge, the kubelet's iptables
// chains, the kubelet root. Safe to call more than once.
func cleanupRealNode(st *State, n Node, log func(string, ...any)) {
	r := n.Real
	// containerd-shim-runc-v2 processes re-parent to init: find them by address
	for _, pid := range pidsMentioning(r.ContainerdSocket) {
		log("event=kill-shim pid=%d", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	// container processes whose shims are gone: in our cgroups (kubepods)
	for _, pid := range pidsInKubepods() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	time.Sleep(200 * time.Millisecond)
	unmountUnder(r.ContainerdState)
	unmountUnder(r.ContainerdRoot)
	unmountUnder(n.RootDir)
	_ = exec.Command("ip", "link", "del", cniBridge).Run()
	removeKubeIptables(log)
	if exists(filepath.Join(n.RootDir, realMarker)) {
		if err := os.RemoveAll(n.RootDir); err != nil {
			log("event=cleanup-failed path=%s err=%q", n.RootDir, err)
		}
	}
	// the node helper's hostPath (config/node-helper) on this machine's real node
	if exists("/var/lib/podcheckpoint") && n.RootDir == "/var/lib/kubelet" {
		_ = os.RemoveAll("/var/lib/podcheckpoint")
	}
	_ = os.RemoveAll(r.ContainerdState)
}

func pidsMentioning(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if cmdlineMentions(pid, s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// pidsInKubepods lists processes in the kubelet's pod cgroups (cgroupfs driver).
func pidsInKubepods() []int {
	var pids []int
	seen := map[int]bool{}
	_ = filepath.Walk("/sys/fs/cgroup/pids/kubepods", func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(path)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
				seen[pid] = true
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// unmountUnder lazily unmounts every mount point at or below dir, deepest first.
func unmountUnder(dir string) {
	if dir == "" {
		return
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := strings.ReplaceAll(f[4], "\\040", " ")
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	for _, mp := range mps {
		_ = syscall.Unmount(mp, syscall.MNT_DETACH)
	}
}

// removeKubeIptables deletes the chains the kubelet adds (KUBE-FIREWALL,
// KUBE-KUBELET-CANARY, ...) and the rules that jump to them.
func removeKubeIptables(log func(string, ...any)) {
	for _, bin := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle"} {
			out, err := exec.Command(bin+"-save", "-t", table).Output()
			if err != nil {
				continue
			}
			var chains []string
			for _, line := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(line, ":KUBE-") {
					chains = append(chains, strings.Fields(line[1:])[0])
				}
			}
			for _, line := range strings.Split(string(out), "\n") {
				if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, " -j KUBE-") {
					continue
				}
				f := strings.Fields(line)
				if strings.HasPrefix(f[1], "KUBE-") {
					continue // flushed with its chain
				}
				args := append([]string{"-t", table, "-D"}, f[1:]...)
				if err := exec.Command(bin, args...).Run(); err != nil {
					log("event=iptables-delete-failed table=%s rule=%q err=%q", table, line, err)
				}
			}
			for _, c := range chains {
				_ = exec.Command(bin, "-t", table, "-F", c).Run()
			}
			for _, c := range chains {
				_ = exec.Command(bin, "-t", table, "-X", c).Run()
			}
		}
	}
}

// removeAllPods stops and removes every pod sandbox through CRI (before
// containerd stops: else the shims keep the containers running).
func removeAllPods(st *State, n Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(st.NodeBinDir, "crictl"), "--runtime-endpoint", "unix://"+n.Real.ContainerdSocket,
		"--timeout", "30s", "rmp", "-fa").CombinedOutput()
	if err != nil {
		return fmt.Errorf("crictl rmp -fa: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// RealNodeListening reports whether something already listens on addr (a
// previous kubelet left running would make up fail confusingly).
func RealNodeListening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// KubeletHTTPClient talks to a node's kubelet as the node helper does: to its
// IP, verifying the certificate for its name against n.KubeletCAFile. URLs may
// use the node name or the IP as host. cert: optional client certificate.
func KubeletHTTPClient(n Node, cert *tls.Certificate) (*http.Client, error) {
	ca, err := os.ReadFile(n.KubeletCAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s", n.KubeletCAFile)
	}
	tc := &tls.Config{RootCAs: pool, ServerName: n.Name, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: tc,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, network, net.JoinHostPort(n.IP, port))
		},
	}}, nil
}

// approveServingCSRs approves the kubelet-serving CSRs of node n (what a CSR
// approver does on clusters with serverTLSBootstrap; kube-controller-manager
// signs them with the cluster CA) until the kubelet has its certificate.
func approveServingCSRs(ctx context.Context, cs kubernetes.Interface, n Node) error {
	for {
		list, err := cs.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		if err == nil {
			for i := range list.Items {
				csr := &list.Items[i]
				if csr.Spec.SignerName != certv1.KubeletServingSignerName || csr.Spec.Username != "system:node:"+n.Name {
					continue
				}
				if len(csr.Status.Conditions) > 0 {
					continue
				}
				csr.Status.Conditions = append(csr.Status.Conditions, certv1.CertificateSigningRequestCondition{
					Type: certv1.CertificateApproved, Status: corev1.ConditionTrue,
					Reason: "PcpE2EApproved", Message: "approved by the test cluster (tests/e2e) for " + n.Name,
				})
				_, _ = cs.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{})
			}
		}
		if exists(n.CertFile) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: no serving certificate (serverTLSBootstrap) before the deadline", n.Name)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
