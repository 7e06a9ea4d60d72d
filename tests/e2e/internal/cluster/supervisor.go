package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// supervisor owns every process of the cluster. It runs detached (setsid) so its
// process group holds all of them; `down` signals it, and kills the group if needed.
type supervisor struct {
	st   *State
	mu   sync.Mutex
	rt   Runtime
	kids []*child
	dead chan string // name of a child that exited
}

type child struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	idx     int
	logFile string
	addr    string
	env     []string
	bin     string
	args    []string
	ready   func() error // readiness check, for restarts
	// restarting: the exit is expected (cluster restart NAME), not a degradation
	restarting bool
}

func (s *supervisor) save() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := writeJSON(filepath.Join(s.st.WorkDir, RuntimeFile), &s.rt); err != nil {
		log.Printf("event=runtime-write-failed err=%q", err)
	}
}

func (s *supervisor) setPhase(phase, component, msg string) {
	s.mu.Lock()
	s.rt.Phase, s.rt.Component, s.rt.Message = phase, component, msg
	s.mu.Unlock()
	s.save()
	log.Printf("event=phase phase=%s component=%s msg=%q", phase, component, msg)
}

func (s *supervisor) start(name, logFile, addr string, bin string, args ...string) (*child, error) {
	return s.startEnv(name, logFile, addr, nil, bin, args...)
}

// startEnv starts a child with env (nil: the supervisor's own environment).
func (s *supervisor) startEnv(name, logFile, addr string, env []string, bin string, args ...string) (*child, error) {
	c := &child{name: name, logFile: logFile, addr: addr, env: env, bin: bin, args: args, idx: -1}
	return c, s.spawn(c)
}

// spawn starts (or starts again) the process of c.
func (s *supervisor) spawn(c *child) error {
	name, logFile, addr, bin, args := c.name, c.logFile, c.addr, c.bin, c.args
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = s.st.WorkDir
	// Same process group as the supervisor (so `down` can kill the group); die
	// with the supervisor even if it is SIGKILLed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(lf, "---- %s: starting %s %q\n", time.Now().Format(time.RFC3339), bin, args)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	s.mu.Lock()
	c.cmd, c.done, c.restarting = cmd, done, false
	proc := Process{Name: name, PID: cmd.Process.Pid, Address: addr, LogFile: logFile}
	if c.idx < 0 {
		c.idx = len(s.rt.Processes)
		s.rt.Processes = append(s.rt.Processes, proc)
		s.kids = append(s.kids, c)
	} else {
		s.rt.Processes[c.idx] = proc
	}
	idx := c.idx
	s.mu.Unlock()
	s.save()
	log.Printf("event=started component=%s pid=%d addr=%s", name, cmd.Process.Pid, addr)
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		expected := c.restarting
		if s.rt.Processes[idx].PID == cmd.Process.Pid {
			s.rt.Processes[idx].Exited = true
			if err != nil {
				s.rt.Processes[idx].ExitInfo = err.Error()
			} else {
				s.rt.Processes[idx].ExitInfo = "exit status 0"
			}
		}
		s.mu.Unlock()
		s.save()
		log.Printf("event=exited component=%s pid=%d err=%v expected=%v", name, cmd.Process.Pid, err, expected)
		close(done)
		if expected {
			return
		}
		select {
		case s.dead <- name:
		default:
		}
	}()
	return nil
}

// waitFor polls check until it succeeds, the child dies, or the deadline passes.
func waitFor(c *child, d time.Duration, check func() error) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			return fmt.Errorf("%s exited during startup (%s)", c.name, c.cmd.ProcessState)
		default:
		}
		if last = check(); last == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s: %v", c.name, d, last)
}

func (s *supervisor) stopAll() {
	s.mu.Lock()
	kids := append([]*child(nil), s.kids...)
	s.mu.Unlock()
	// reverse start order: stand-ins, kwok, apiserver, etcd
	for i := len(kids) - 1; i >= 0; i-- {
		c := kids[i]
		select {
		case <-c.done:
			continue
		default:
		}
		stopChild(c)
		s.afterStop(c.name)
	}
}

func stopChild(c *child) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		log.Printf("event=kill component=%s pid=%d reason=sigterm-timeout", c.name, c.cmd.Process.Pid)
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// afterStop: once a real node's kubelet is gone its pods are removed through
// CRI (containerd still runs); once containerd is gone, what is left is cleaned.
func (s *supervisor) afterStop(name string) {
	for _, n := range s.st.RealNodes {
		switch name {
		case "kubelet-" + n.Name:
			if err := removeAllPods(s.st, n); err != nil {
				log.Printf("event=remove-pods-failed node=%s err=%q", n.Name, err)
			}
		case "containerd-" + n.Name:
			cleanupRealNode(s.st, n, log.Printf)
		}
	}
}

// restart kills one child (SIGTERM, then SIGKILL after 10 s) and starts it again
// with the same flags, waiting for its readiness check.
func (s *supervisor) restart(name string) error {
	s.mu.Lock()
	var c *child
	for _, k := range s.kids {
		if k.name == name {
			c = k
		}
	}
	if c != nil {
		c.restarting = true
	}
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("no component %q", name)
	}
	select {
	case <-c.done:
	default:
		stopChild(c)
	}
	if err := s.spawn(c); err != nil {
		return err
	}
	s.save()
	if c.ready != nil {
		if err := waitFor(c, 150*time.Second, c.ready); err != nil {
			return err
		}
	}
	log.Printf("event=restarted component=%s pid=%d", name, c.cmd.Process.Pid)
	return nil
}

// Supervise is the `supervise` subcommand: start everything, report readiness in
// runtime.json, then wait for SIGTERM and stop everything.
func Supervise(work string) int {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	st, err := LoadState(work)
	if err != nil {
		log.Printf("event=fatal err=%q", err)
		return 1
	}
	s := &supervisor{st: st, dead: make(chan string, 16)}
	s.rt = Runtime{Phase: "starting", PID: os.Getpid()}
	s.save()

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-sigs
		cancel()
	}()

	failed := func(component string, err error) int {
		s.setPhase("failed", component, err.Error())
		s.stopAll()
		return 1
	}
	startupErr := make(chan int, 1)
	go func() { startupErr <- s.startAll(ctx, failed) }()

	var rc int
	select {
	case rc = <-startupErr:
		if rc != 0 {
			return rc
		}
	case <-ctx.Done():
		s.setPhase("stopping", "", "signal during startup")
		s.stopAll()
		s.setPhase("stopped", "", "")
		return 0
	}
	usr := make(chan os.Signal, 4)
	signal.Notify(usr, syscall.SIGUSR1)
	for {
		select {
		case <-ctx.Done():
			s.setPhase("stopping", "", "signal")
			s.stopAll()
			s.setPhase("stopped", "", "")
			return 0
		case <-usr:
			s.handleRestartRequest()
		case name := <-s.dead:
			// Keep running so that `status` and `up` can report which component
			// died; `down` still stops the rest.
			s.setPhase("degraded", name, name+" exited unexpectedly")
		}
	}
}

func (s *supervisor) startAll(ctx context.Context, failed func(string, error) int) int {
	st := s.st
	bin := func(n string) string { return filepath.Join(st.BinDir, n) }
	peer := fmt.Sprintf("http://127.0.0.1:%d", st.Etcd.PeerPort)
	etcd, err := s.start("etcd", st.Etcd.LogFile, st.Etcd.URL, bin("etcd"),
		"--name=pcp", "--data-dir="+st.Etcd.DataDir,
		"--listen-client-urls="+st.Etcd.URL, "--advertise-client-urls="+st.Etcd.URL,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=pcp="+peer, "--unsafe-no-fsync=true",
		"--log-level=warn", "--quota-backend-bytes=4294967296")
	if err != nil {
		return failed("etcd", err)
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	etcd.ready = func() error {
		resp, err := hc.Get(st.Etcd.URL + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("etcd /health: %s", resp.Status)
		}
		return nil
	}
	if err := waitFor(etcd, 60*time.Second, etcd.ready); err != nil {
		return failed("etcd", err)
	}
	if ctx.Err() != nil {
		return 0
	}

	api, err := s.start("kube-apiserver", st.APIServer.LogFile, st.APIServer.URL, bin("kube-apiserver"),
		"--etcd-servers="+st.Etcd.URL,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(st.APIServer.Port),
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--cert-dir="+filepath.Join(st.WorkDir, "pki", "apiserver-generated"),
		"--tls-cert-file="+st.APIServer.CertFile,
		"--tls-private-key-file="+st.APIServer.KeyFile,
		"--client-ca-file="+st.CAFile,
		"--service-account-issuer="+st.SAIssuer,
		"--service-account-key-file="+st.SAPubFile,
		"--service-account-signing-key-file="+st.SAKeyFile,
		"--service-cluster-ip-range=10.0.0.0/24",
		// Node: kubelets read their pods and review tokens (as on kubeadm clusters)
		"--authorization-mode=Node,RBAC",
		"--kubelet-client-certificate="+st.KubeletClientCertFile,
		"--kubelet-client-key="+st.KubeletClientKeyFile,
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		"--profiling=false",
		"--v=1")
	if err != nil {
		return failed("kube-apiserver", err)
	}
	apiClient, err := adminHTTPClient(st)
	if err != nil {
		return failed("kube-apiserver", err)
	}
	api.ready = func() error { return readyz(apiClient, st.APIServer.URL) }
	if err := waitFor(api, 150*time.Second, api.ready); err != nil {
		return failed("kube-apiserver", err)
	}
	if ctx.Err() != nil {
		return 0
	}

	// kube-controller-manager and kube-scheduler: Deployments and DaemonSets get
	// pods, namespaces finish terminating, garbage collection, kube-root-ca.crt,
	// CSR signing with the cluster CA, node lifecycle (it lifts the kubelet's
	// not-ready taint; kwok renews its nodes' Leases). No taint eviction: a
	// NoExecute taint must never delete the tests' pods behind their back.
	if _, err := s.start("kube-controller-manager", st.ControllerManager.LogFile, "", bin("kube-controller-manager"),
		"--kubeconfig="+st.ControllerManager.Kubeconfig,
		"--authentication-kubeconfig="+st.ControllerManager.Kubeconfig,
		"--authorization-kubeconfig="+st.ControllerManager.Kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--leader-elect=false",
		"--controllers=*,-taint-eviction-controller,-device-taint-eviction-controller",
		"--root-ca-file="+st.CAFile,
		"--service-account-private-key-file="+st.SAKeyFile,
		"--use-service-account-credentials=true",
		"--cluster-signing-cert-file="+st.CAFile,
		"--cluster-signing-key-file="+st.CAKeyFile,
		"--concurrent-gc-syncs=5",
		"--v=1"); err != nil {
		return failed("kube-controller-manager", err)
	}
	if _, err := s.start("kube-scheduler", st.Scheduler.LogFile, "", bin("kube-scheduler"),
		"--kubeconfig="+st.Scheduler.Kubeconfig,
		"--authentication-kubeconfig="+st.Scheduler.Kubeconfig,
		"--authorization-kubeconfig="+st.Scheduler.Kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--leader-elect=false",
		"--v=1"); err != nil {
		return failed("kube-scheduler", err)
	}

	kwokConf := filepath.Join(st.WorkDir, "kwok.yaml")
	if err := os.WriteFile(kwokConf, []byte("apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions: {}\n"), 0o644); err != nil {
		return failed("kwok", err)
	}
	// No --node-port: kwok would serve its own kubelet API on 0.0.0.0:<port>,
	// which is the stand-ins' port. The Node objects carry daemonEndpoints already.
	if _, err := s.start("kwok", st.KwokLogFile, "", bin("kwok"),
		"--kubeconfig="+st.AdminKubeconfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+KwokAnnotation+"=fake",
		"--cidr=10.244.0.1/16",
		"--node-lease-duration-seconds=40", // Leases for kube-controller-manager's node lifecycle
		"--config="+kwokConf,               // not ~/.kwok/kwok.yaml from the user's home; default stages
	); err != nil {
		return failed("kwok", err)
	}

	var standins []*child
	for _, n := range st.Nodes {
		c, err := s.start("standin-"+n.Name, n.LogFile, n.KubeletURL, st.HarnessBin,
			"standin", "--work", st.WorkDir, "--node", n.Name)
		if err != nil {
			return failed("standin-"+n.Name, err)
		}
		standins = append(standins, c)
	}
	for i, n := range st.Nodes {
		addr := net.JoinHostPort(n.IP, strconv.Itoa(n.KubeletPort))
		if err := waitFor(standins[i], 30*time.Second, func() error {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return err
			}
			return conn.Close()
		}); err != nil {
			return failed("standin-"+n.Name, err)
		}
	}
	for _, n := range st.RealNodes {
		if comp, err := s.startRealNode(ctx, n); err != nil {
			return failed(comp, err)
		}
	}
	// kwok may not have started listening anywhere; only check that it is alive.
	time.Sleep(200 * time.Millisecond)
	s.mu.Lock()
	for _, p := range s.rt.Processes {
		if p.Exited {
			s.mu.Unlock()
			return failed(p.Name, fmt.Errorf("%s exited during startup: %s", p.Name, p.ExitInfo))
		}
	}
	s.mu.Unlock()
	s.setPhase("ready", "", "")
	return 0
}

// RestartRequestFile: `cluster restart NAME` writes NAME here and sends SIGUSR1;
// the supervisor answers in RestartResultFile ("ok" or the error).
const (
	RestartRequestFile = "restart.request"
	RestartResultFile  = "restart.result"
)

func (s *supervisor) handleRestartRequest() {
	req := filepath.Join(s.st.WorkDir, RestartRequestFile)
	b, err := os.ReadFile(req)
	if err != nil {
		return
	}
	_ = os.Remove(req)
	name := strings.TrimSpace(string(b))
	log.Printf("event=restart component=%s", name)
	msg := "ok"
	if err := s.restart(name); err != nil {
		msg = err.Error()
		log.Printf("event=restart-failed component=%s err=%q", name, err)
	} else {
		s.mu.Lock()
		back := s.rt.Phase == "degraded" && s.rt.Component == name
		s.mu.Unlock()
		if back {
			s.setPhase("ready", "", "")
		}
	}
	_ = os.WriteFile(filepath.Join(s.st.WorkDir, RestartResultFile+".tmp"), []byte(msg+"\n"), 0o644)
	_ = os.Rename(filepath.Join(s.st.WorkDir, RestartResultFile+".tmp"), filepath.Join(s.st.WorkDir, RestartResultFile))
}

func adminHTTPClient(st *State) (*http.Client, error) {
	ca, err := os.ReadFile(st.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s", st.CAFile)
	}
	cert, err := tls.LoadX509KeyPair(st.AdminCertFile, st.AdminKeyFile)
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		}},
	}, nil
}

func readyz(c *http.Client, url string) error {
	resp, err := c.Get(url + "/readyz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("/readyz: %s", resp.Status)
	}
	return nil
}
