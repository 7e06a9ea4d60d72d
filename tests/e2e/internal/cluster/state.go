// Package cluster implements the local test cluster: state, PKI, the supervisor
// that owns every process, and the up/down/status commands.
package cluster

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const (
	// StateFile is the machine-readable description of the cluster, written by `up`
	// before the supervisor starts and never changed while it runs.
	StateFile = "cluster.json"
	// RuntimeFile is written by the supervisor: phase and the pids it owns.
	RuntimeFile = "runtime.json"
	markerFile  = ".pcp-cluster"

	KubernetesVersion = "v1.36.3"
	SystemNamespace   = "podcheckpoint-system"
	KwokAnnotation    = "kwok.x-k8s.io/node"
)

// Node is one node: a kwok-managed Node object plus a kubelet stand-in
// (Runtime "standin"), or a real kubelet with containerd (Runtime "containerd",
// the fields under "real" below; see realnode.go).
type Node struct {
	Runtime        string `json:"runtime"` // standin or containerd
	Name           string `json:"name"`
	IP             string `json:"ip"`
	KubeletPort    int    `json:"kubeletPort"`
	KubeletURL     string `json:"kubeletURL"`
	RootDir        string `json:"rootDir"`        // the stand-in's kubelet --root-dir
	CheckpointsDir string `json:"checkpointsDir"` // RootDir/checkpoints
	CertFile       string `json:"certFile"`       // stand-in serving cert (signed by KubeletCAFile)
	KeyFile        string `json:"keyFile"`
	RequestLog     string `json:"requestLog,omitempty"` // stand-ins: JSON lines, one per request served
	LogFile        string `json:"logFile"`              // the stand-in's or the kubelet's log
	// KubeletCAFile verifies this node's kubelet serving certificate: the
	// kubelet CA for stand-ins, the real kubelet's self-signed kubelet.crt (or
	// the cluster CA with serverTLSBootstrap) for a real node.
	KubeletCAFile string    `json:"kubeletCAFile"`
	Real          *RealNode `json:"real,omitempty"`
}

// APIServer describes the kube-apiserver endpoint and its files.
type APIServer struct {
	URL      string `json:"url"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
	LogFile  string `json:"logFile"`
}

// Etcd describes the etcd endpoint.
type Etcd struct {
	URL      string `json:"url"`
	PeerPort int    `json:"peerPort"`
	Port     int    `json:"port"`
	DataDir  string `json:"dataDir"`
	LogFile  string `json:"logFile"`
}

// State is cluster.json. Other tools (deploy/undeploy, tests) read it.
type State struct {
	Version               int       `json:"version"`
	KubernetesVersion     string    `json:"kubernetesVersion"`
	WorkDir               string    `json:"workDir"`
	BinDir                string    `json:"binDir"`     // kube-apiserver, kubectl, etcd, kwok
	HarnessBin            string    `json:"harnessBin"` // this program
	APIServer             APIServer `json:"apiServer"`
	Etcd                  Etcd      `json:"etcd"`
	CAFile                string    `json:"caFile"` // cluster CA: API server serving cert and client certs
	CAKeyFile             string    `json:"caKeyFile"`
	AdminKubeconfig       string    `json:"adminKubeconfig"`
	AdminCertFile         string    `json:"adminCertFile"` // CN=admin, O=system:masters
	AdminKeyFile          string    `json:"adminKeyFile"`
	SAKeyFile             string    `json:"serviceAccountKeyFile"`
	SAPubFile             string    `json:"serviceAccountPublicKeyFile"`
	SAIssuer              string    `json:"serviceAccountIssuer"`
	KubeletCAFile         string    `json:"kubeletCAFile"` // verifies every stand-in's serving cert
	StandinAdminTokenFile string    `json:"standinAdminTokenFile"`
	KwokLogFile           string    `json:"kwokLogFile"`
	SupervisorLogFile     string    `json:"supervisorLogFile"`
	SupervisorPID         int       `json:"supervisorPid"`
	Namespace             string    `json:"namespace"`
	// Nodes are the kwok nodes with kubelet stand-ins (what most tests use);
	// RealNodes the real kubelets with containerd (realnode.go).
	Nodes     []Node `json:"nodes"`
	RealNodes []Node `json:"realNodes"`

	KubeletCAKeyFile      string    `json:"kubeletCAKeyFile"`      // signs further kubelet serving certs
	KubeletClientCertFile string    `json:"kubeletClientCertFile"` // the API server's client cert for kubelets (logs, exec)
	KubeletClientKeyFile  string    `json:"kubeletClientKeyFile"`
	NodeBinDir            string    `json:"nodeBinDir,omitempty"` // containerd, runc, crictl, ...
	ImagesDir             string    `json:"imagesDir,omitempty"`  // pause.tar, counter.tar (docker save)
	ControllerManager     Component `json:"controllerManager"`
	Scheduler             Component `json:"scheduler"`
	WithoutRealNode       bool      `json:"withoutRealNode,omitempty"` // PCP_E2E_NO_REAL_NODE=1
	WithoutRealNodeReason string    `json:"withoutRealNodeReason,omitempty"`
}

// Component is a control-plane process with its own kubeconfig.
type Component struct {
	Kubeconfig string `json:"kubeconfig"`
	LogFile    string `json:"logFile"`
}

// AllNodes: stand-in nodes, then real nodes.
func (st *State) AllNodes() []Node { return append(append([]Node(nil), st.Nodes...), st.RealNodes...) }

// Process is one child of the supervisor.
type Process struct {
	Name     string `json:"name"`
	PID      int    `json:"pid"`
	Address  string `json:"address,omitempty"`
	LogFile  string `json:"logFile"`
	Exited   bool   `json:"exited"`
	ExitInfo string `json:"exitInfo,omitempty"`
}

// Runtime is runtime.json, written by the supervisor.
type Runtime struct {
	Phase     string    `json:"phase"` // starting, ready, failed, stopping, stopped
	Component string    `json:"component,omitempty"`
	Message   string    `json:"message,omitempty"`
	PID       int       `json:"pid"`
	Processes []Process `json:"processes"`
}

// WorkDir returns ${PCP_CLUSTER_DIR:-$PCP_CACHE/cluster}.
func WorkDir() string {
	if d := os.Getenv("PCP_CLUSTER_DIR"); d != "" {
		return d
	}
	return filepath.Join(CacheDir(), "cluster")
}

// CacheDir returns ${PCP_CACHE:-$HOME/.cache/podcheckpoint}.
func CacheDir() string {
	if d := os.Getenv("PCP_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/tmp"
	}
	return filepath.Join(home, ".cache", "podcheckpoint")
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func envInt(name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > 65535 {
		return def
	}
	return n
}

// MaxNodes bounds PCP_NODES: node-N is on 127.0.0.(10+N), or one further from
// node-3 on (RealNodeIP, real-1's, is never a stand-in's), which stays below
// 127.0.0.255.
const MaxNodes = 200

// NodeCount is ${PCP_NODES:-2}: how many kwok nodes (node-1..node-N on
// 127.0.0.11..) a fresh `up` creates, each with its own kubelet stand-in. A value
// that is not a whole number in 1..MaxNodes is ignored (2).
func NodeCount() int {
	n, err := strconv.Atoi(os.Getenv("PCP_NODES"))
	if err != nil || n < 1 || n > MaxNodes {
		return 2
	}
	return n
}

// newState lays out every path under work; ports are filled in by the caller.
func newState(work string) *State {
	p := func(parts ...string) string { return filepath.Join(append([]string{work}, parts...)...) }
	st := &State{
		Version:               1,
		KubernetesVersion:     KubernetesVersion,
		WorkDir:               work,
		CAFile:                p("pki", "ca.crt"),
		CAKeyFile:             p("pki", "ca.key"),
		AdminKubeconfig:       p("admin.kubeconfig"),
		AdminCertFile:         p("pki", "admin.crt"),
		AdminKeyFile:          p("pki", "admin.key"),
		SAKeyFile:             p("pki", "sa.key"),
		SAPubFile:             p("pki", "sa.pub"),
		KubeletCAFile:         p("pki", "kubelet-ca.crt"),
		StandinAdminTokenFile: p("pki", "standin-admin.token"),
		KwokLogFile:           p("logs", "kwok.log"),
		SupervisorLogFile:     p("logs", "supervisor.log"),
		Namespace:             SystemNamespace,
		APIServer: APIServer{
			Host:     "127.0.0.1",
			CertFile: p("pki", "apiserver.crt"),
			KeyFile:  p("pki", "apiserver.key"),
			LogFile:  p("logs", "kube-apiserver.log"),
		},
		Etcd: Etcd{DataDir: p("etcd"), LogFile: p("logs", "etcd.log")},
	}
	for i, last := 0, 10; i < NodeCount(); i++ {
		name := fmt.Sprintf("node-%d", i+1)
		last++
		if fmt.Sprintf("127.0.0.%d", last) == RealNodeIP {
			last++ // real-1's kubelet listens there (10250) whether or not it is up
		}
		ip := fmt.Sprintf("127.0.0.%d", last)
		root := p("nodes", name, "var", "lib", "kubelet")
		st.Nodes = append(st.Nodes, Node{
			Name:           name,
			IP:             ip,
			RootDir:        root,
			CheckpointsDir: filepath.Join(root, "checkpoints"),
			CertFile:       p("nodes", name, "kubelet.crt"),
			KeyFile:        p("nodes", name, "kubelet.key"),
			RequestLog:     p("nodes", name, "requests.jsonl"),
			LogFile:        p("logs", "standin-"+name+".log"),
			Runtime:        "standin",
			KubeletCAFile:  p("pki", "kubelet-ca.crt"),
		})
	}
	st.KubeletCAKeyFile = p("pki", "kubelet-ca.key")
	st.KubeletClientCertFile = p("pki", "apiserver-kubelet-client.crt")
	st.KubeletClientKeyFile = p("pki", "apiserver-kubelet-client.key")
	st.ControllerManager = Component{Kubeconfig: p("kube-controller-manager.kubeconfig"), LogFile: p("logs", "kube-controller-manager.log")}
	st.Scheduler = Component{Kubeconfig: p("kube-scheduler.kubeconfig"), LogFile: p("logs", "kube-scheduler.log")}
	return st
}

// LoadState reads cluster.json from work. fs.ErrNotExist when there is none.
func LoadState(work string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(work, StateFile))
	if err != nil {
		return nil, err
	}
	st := &State{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(work, StateFile), err)
	}
	return st, nil
}

// LoadRuntime reads runtime.json.
func LoadRuntime(work string) (*Runtime, error) {
	b, err := os.ReadFile(filepath.Join(work, RuntimeFile))
	if err != nil {
		return nil, err
	}
	rt := &Runtime{}
	if err := json.Unmarshal(b, rt); err != nil {
		return nil, err
	}
	return rt, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// pidAlive: the process exists and is not a zombie.
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// state is the field after the ")" closing the command name
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// isSupervisor checks that pid really is our supervisor for work (guards against
// pid reuse before signalling it).
func isSupervisor(pid int, work string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	hasSup, hasWork := false, false
	for _, a := range args {
		if a == "supervise" {
			hasSup = true
		}
		if a == work {
			hasWork = true
		}
	}
	return hasSup && hasWork
}

// groupAlive reports whether any process of process group pgid is still alive
// (zombies do not count).
func groupAlive(pgid int) []int {
	var pids []int
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		// f[0]=state f[1]=ppid f[2]=pgrp
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}
