// Command scale is the scale benchmark (bench/scale/run.sh drives it): against
// the running test cluster with the operator deployed, it creates N pods over
// the deployed nodes and N PodCheckpoints, and measures our controller, then
// the controller-runtime peer (bench/peer) on a fresh set of N PodCheckpoints
// for the same pods, with our controller stopped. See docs/performance.md.
// Test tooling only.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

var pcpGVR = schema.GroupVersionResource{Group: "checkpointing.dev", Version: "v1alpha1", Resource: "podcheckpoints"}

type clusterState struct {
	WorkDir         string `json:"workDir"`
	AdminKubeconfig string `json:"adminKubeconfig"`
	Nodes           []struct {
		Name string `json:"name"`
	} `json:"nodes"`
}

type runtimeState struct {
	Processes []struct {
		Name string `json:"name"`
		PID  int    `json:"pid"`
	} `json:"processes"`
}

type config struct {
	work, deploySh, peerBin, out, which  string
	n, nodes, createWorkers, peerWorkers int
	rate, peerQPS                        float64
	peerBurst                            int
	payload                              int64
	idle, timeout                        time.Duration
	minCRRatio, maxHWMRatio              float64
	memHook                              string
}

// phaseResult is the measurement of one controller on one set of N CRs.
type phaseResult struct {
	Controller     string     `json:"controller"`
	N              int        `json:"n"`
	Nodes          int        `json:"nodes"`
	OfferedRate    float64    `json:"offeredRatePerSec"` // 0: all at once
	ClientQPS      float64    `json:"clientQps,omitempty"`
	ClientBurst    int        `json:"clientBurst,omitempty"`
	Succeeded      int        `json:"succeeded"`
	Failed         int        `json:"failed"`
	Unfinished     int        `json:"unfinished"`
	PendingLeft    int        `json:"pendingLeft"`
	NoStatusLeft   int        `json:"noStatusLeft"`
	TimedOut       bool       `json:"timedOut"`
	WallSec        float64    `json:"wallSec"`   // first create -> last terminal
	CreateSec      float64    `json:"createSec"` // first create -> last create answered
	CRPerSec       float64    `json:"crPerSec"`
	P50Sec         float64    `json:"p50Sec"`
	P99Sec         float64    `json:"p99Sec"`
	MaxSec         float64    `json:"maxSec"`
	Before         procStat   `json:"before"` // pods cached, no CRs
	After          procStat   `json:"after"`  // all terminal
	CPUSec         float64    `json:"cpuSec"` // controller CPU during the run
	Idle           procStat   `json:"idle"`   // after --idle with all CRs and pods cached
	IdleCPUSec     float64    `json:"idleCpuSec"`
	IdleRSSMinKiB  int64      `json:"idleRssMinKiB"`
	IdleRSSMaxKiB  int64      `json:"idleRssMaxKiB"`
	Deleted        procStat   `json:"deleted"`   // 10 s after every CR is gone
	DeleteSec      float64    `json:"deleteSec"` // delete sent -> the watch saw the last CR go
	HelperHWMKiB   int64      `json:"helperMaxHwmKiB,omitempty"`
	HelperCPUSec   float64    `json:"helperCpuSec,omitempty"`
	APIServerCPU   float64    `json:"apiserverCpuSec"`
	EtcdCPU        float64    `json:"etcdCpuSec"`
	StandinCPU     float64    `json:"standinCpuSec"`
	APIServerDelta []apiDelta `json:"apiserver"`
	APIServerExtra []apiExtra `json:"apiserverExtra,omitempty"` // apiextra.go
}

type result struct {
	Machine string         `json:"machine"`
	Started time.Time      `json:"started"`
	Phases  []*phaseResult `json:"phases"`
	Ratios  map[string]any `json:"oursOverPeer,omitempty"`
}

func main() {
	var c config
	flag.StringVar(&c.work, "cluster-dir", defaultWork(), "test cluster work dir (cluster.json)")
	flag.StringVar(&c.deploySh, "deploy-sh", "", "tests/e2e/deploy.sh (to stop our controller before the peer)")
	flag.StringVar(&c.peerBin, "peer-bin", "", "bench/peer binary; empty: no peer phase")
	flag.StringVar(&c.out, "out", "", "write the results as JSON here")
	flag.StringVar(&c.which, "which", "ours,peer", "phases to run, in order: ours, peer (--peer-qps/--peer-burst), peerfast (the peer at 200/400)")
	flag.IntVar(&c.n, "n", 1000, "pods and PodCheckpoints")
	flag.IntVar(&c.nodes, "nodes", 0, "spread pods over the first N deployed nodes (0: all)")
	flag.IntVar(&c.createWorkers, "create-workers", 16, "concurrent creates")
	flag.Float64Var(&c.rate, "rate", 0, "offered PodCheckpoints per second (0: all at once)")
	flag.Float64Var(&c.peerQPS, "peer-qps", 20, "peer client QPS (controller-runtime default 20)")
	flag.IntVar(&c.peerBurst, "peer-burst", 30, "peer client burst (controller-runtime default 30)")
	flag.IntVar(&c.peerWorkers, "peer-workers", 2, "peer MaxConcurrentReconciles")
	flag.Int64Var(&c.payload, "payload-bytes", 4096, "stand-in CRIU payload per container (pod annotation)")
	flag.DurationVar(&c.idle, "idle", time.Minute, "idle measurement with everything cached")
	flag.DurationVar(&c.timeout, "timeout", 12*time.Minute, "give up on a phase after this")
	flag.Float64Var(&c.minCRRatio, "min-cr-ratio", 0, "check: fail unless ours/peer CR/s >= this")
	flag.Float64Var(&c.maxHWMRatio, "max-hwm-ratio", 0, "check: fail unless ours/peer VmHWM <= this")
	flag.StringVar(&c.memHook, "mem-hook", "", "run this shell command at the end of idle and after the delete, with PCP_PID, PCP_PHASE and PCP_WHEN (idle|deleted) set (e.g. bench/scale/memdump.sh)")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintf(os.Stderr, "scale: FAIL: %v\n", err)
		os.Exit(1)
	}
}

func defaultWork() string {
	if d := os.Getenv("PCP_CLUSTER_DIR"); d != "" {
		return d
	}
	cache := os.Getenv("PCP_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "podcheckpoint")
	}
	return filepath.Join(cache, "cluster")
}

func logf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "scale: %s "+f+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

type bench struct {
	c       config
	st      clusterState
	rt      runtimeState
	cfg     *rest.Config
	cs      kubernetes.Interface
	dyn     dynamic.Interface
	ns      string
	nodes   []string
	crStore cache.Store

	mu      sync.Mutex
	created map[string]time.Time // CR name -> create sent
	done    map[string]time.Time // CR name -> first seen terminal
	phaseOf map[string]string
}

func run(c config) error {
	b := &bench{c: c, created: map[string]time.Time{}, done: map[string]time.Time{}, phaseOf: map[string]string{}}
	if err := readJSON(filepath.Join(c.work, "cluster.json"), &b.st); err != nil {
		return fmt.Errorf("no running test cluster: %w", err)
	}
	if err := readJSON(filepath.Join(c.work, "runtime.json"), &b.rt); err != nil {
		return err
	}
	deployed, _ := os.ReadFile(filepath.Join(c.work, "deploy", "nodes"))
	b.nodes = strings.Fields(string(deployed))
	if len(b.nodes) == 0 {
		return fmt.Errorf("the operator is not deployed (no %s)", filepath.Join(c.work, "deploy", "nodes"))
	}
	if c.nodes > 0 && c.nodes < len(b.nodes) {
		b.nodes = b.nodes[:c.nodes]
	}
	var err error
	if b.cfg, err = clientcmd.BuildConfigFromFlags("", b.st.AdminKubeconfig); err != nil {
		return err
	}
	b.cfg.QPS, b.cfg.Burst = 2000, 4000 // the bench itself should not be the limit
	b.cfg.Timeout = 60 * time.Second
	if b.cs, err = kubernetes.NewForConfig(b.cfg); err != nil {
		return err
	}
	if b.dyn, err = dynamic.NewForConfig(b.cfg); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	res := &result{Machine: machine(), Started: time.Now().UTC()}
	b.ns = fmt.Sprintf("bench-scale-%d", time.Now().Unix())
	if _, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	logf("namespace %s: %d pods over %d nodes", b.ns, c.n, len(b.nodes))
	if err := b.createPods(ctx); err != nil {
		return err
	}
	b.startCRInformer(ctx)

	if sweepRates != "" { // sweep.go: the phases of --which at each rate
		steps, err := parseSweep(sweepRates, c.n)
		if err != nil {
			return err
		}
		if res.Phases, err = b.sweep(ctx, steps); err != nil {
			return err
		}
		c.which = ""
	}
	for _, which := range strings.Split(c.which, ",") {
		var pr *phaseResult
		switch which {
		case "":
			continue
		case "ours":
			pid := readPidFile(filepath.Join(c.work, "deploy", "controller", "pid"))
			if !readProc(pid).OK {
				return fmt.Errorf("our controller is not running (deploy/controller/pid)")
			}
			pr, err = b.phase(ctx, "ours", "ours", pid, true)
		case "peer":
			if c.peerBin == "" {
				continue
			}
			if err = b.stopOurs(); err == nil {
				pr, err = b.peerPhase(ctx, "peer", c.peerQPS, c.peerBurst)
			}
		case "peerfast":
			// the peer with our controller's default client limit (200/400)
			if c.peerBin == "" {
				continue
			}
			if err = b.stopOurs(); err == nil {
				pr, err = b.peerPhase(ctx, "peerfast", 200, 400)
			}
		default:
			return fmt.Errorf("--which: unknown phase %q", which)
		}
		if err != nil {
			return err
		}
		res.Phases = append(res.Phases, pr)
	}
	res.Ratios = ratios(res.Phases)
	report(os.Stdout, res)
	reportExtra(os.Stdout, res.Phases)
	if sweepRates != "" {
		sweepReport(os.Stdout, res.Phases, p99Target)
	}
	if c.out != "" {
		bs, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return fmt.Errorf("results as JSON: %w", err)
		}
		if err := os.WriteFile(c.out, append(bs, '\n'), 0o644); err != nil {
			return err
		}
	}
	return check(c, res)
}

func readJSON(path string, v any) error {
	bs, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(bs, v)
}

func machine() string {
	cpu := "?"
	if bs, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(bs), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	mem := ""
	if bs, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Fields(strings.SplitN(string(bs), "\n", 2)[0])[1] + " kB"
	}
	n := 0
	if bs, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = strings.Count(string(bs), "processor\t:")
	}
	return fmt.Sprintf("%d x %s, MemTotal %s", n, cpu, mem)
}

// parallel runs f(0..n-1) on w goroutines, offered at rate per second (0: as fast as possible).
func parallel(n, w int, rate float64, f func(i int) error) error {
	var next atomic.Int64
	var firstErr atomic.Value
	t0 := time.Now()
	var wg sync.WaitGroup
	for k := 0; k < w; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || firstErr.Load() != nil {
					return
				}
				if rate > 0 {
					if d := time.Until(t0.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
						time.Sleep(d)
					}
				}
				if err := f(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return e.(error)
	}
	return nil
}

func (b *bench) createPods(ctx context.Context) error {
	var running atomic.Int64
	fac := informers.NewSharedInformerFactoryWithOptions(b.cs, 0, informers.WithNamespace(b.ns))
	inf := fac.Core().V1().Pods().Informer()
	isRunning := func(o any) bool {
		p, ok := o.(*corev1.Pod)
		return ok && p.Status.Phase == corev1.PodRunning
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			if isRunning(o) {
				running.Add(1)
			}
		},
		UpdateFunc: func(o, n any) {
			if !isRunning(o) && isRunning(n) {
				running.Add(1)
			}
		},
	})
	pctx, stop := context.WithCancel(ctx)
	defer stop() // the bench keeps no pod cache of its own during the phases
	fac.Start(pctx.Done())
	t0 := time.Now()
	err := parallel(b.c.n, b.c.createWorkers, 0, func(i int) error {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%d", i), Namespace: b.ns,
				Labels:      map[string]string{"app": "bench-scale"},
				Annotations: map[string]string{"checkpoint.stand-in/size-bytes": fmt.Sprint(b.c.payload)}},
			Spec: corev1.PodSpec{NodeName: b.nodes[i%len(b.nodes)], Containers: []corev1.Container{{
				Name: "main", Image: "registry.example/counter:1.0", Command: []string{"/counter"}}}},
		}
		_, err := b.cs.CoreV1().Pods(b.ns).Create(ctx, pod, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("create pods: %w", err)
	}
	logf("%d pods created in %.1fs; waiting for Running", b.c.n, time.Since(t0).Seconds())
	deadline := time.Now().Add(10 * time.Minute)
	for running.Load() < int64(b.c.n) {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d pods Running after 10 min", running.Load(), b.c.n)
		}
		time.Sleep(500 * time.Millisecond)
	}
	logf("%d pods Running after %.1fs", b.c.n, time.Since(t0).Seconds())
	return nil
}

func (b *bench) startCRInformer(ctx context.Context) {
	fac := dynamicinformer.NewFilteredDynamicSharedInformerFactory(b.dyn, 0, b.ns, nil)
	inf := fac.ForResource(pcpGVR).Informer()
	seen := func(o any) {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			return
		}
		ph, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		now := time.Now()
		b.mu.Lock()
		b.phaseOf[u.GetName()] = ph
		if (ph == "Succeeded" || ph == "Failed") && b.done[u.GetName()].IsZero() {
			b.done[u.GetName()] = now
		}
		b.mu.Unlock()
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    seen,
		UpdateFunc: func(_, n any) { seen(n) },
		DeleteFunc: func(o any) {
			if u, ok := o.(*unstructured.Unstructured); ok {
				b.mu.Lock()
				delete(b.phaseOf, u.GetName())
				b.mu.Unlock()
			}
		},
	})
	b.crStore = inf.GetStore()
	fac.Start(ctx.Done())
	fac.WaitForCacheSync(ctx.Done())
}

func (b *bench) pid(name string) int {
	for _, p := range b.rt.Processes {
		if p.Name == name {
			return p.PID
		}
	}
	return 0
}

func (b *bench) standinCPU() float64 {
	var s float64
	for _, p := range b.rt.Processes {
		if strings.HasPrefix(p.Name, "standin-") {
			s += readProc(p.PID).CPUSec
		}
	}
	return s
}

func (b *bench) helpers() (maxHWM int64, cpu float64) {
	for _, n := range b.nodes {
		s := readProc(readPidFile(filepath.Join(b.c.work, "deploy", "helper-"+n, "pid")))
		if s.HWMKiB > maxHWM {
			maxHWM = s.HWMKiB
		}
		cpu += s.CPUSec
	}
	return maxHWM, cpu
}

// stopOurs stops our controller (deploy.sh stop controller) so that only the
// peer acts on the peer's CRs.
func (b *bench) stopOurs() error {
	if !readProc(readPidFile(filepath.Join(b.c.work, "deploy", "controller", "pid"))).OK {
		return nil
	}
	if b.c.deploySh == "" {
		return fmt.Errorf("our controller runs and no --deploy-sh to stop it before the peer")
	}
	out, err := exec.Command(b.c.deploySh, "stop", "controller").CombinedOutput()
	if err != nil {
		return fmt.Errorf("stop controller: %v: %s", err, out)
	}
	logf("our controller stopped")
	return nil
}

func (b *bench) peerPhase(ctx context.Context, name string, qps float64, burst int) (*phaseResult, error) {
	cmd := exec.Command(b.c.peerBin, "--kubeconfig="+b.st.AdminKubeconfig,
		fmt.Sprintf("--qps=%g", qps), fmt.Sprintf("--burst=%d", burst),
		fmt.Sprintf("--workers=%d", b.c.peerWorkers))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives the bench
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer interrupt(cmd, 10*time.Second)
	synced := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "peer: synced") {
				once.Do(func() { close(synced) })
				continue
			}
			fmt.Fprintln(os.Stderr, sc.Text())
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	exited := make(chan struct{})
	go func() {
		for readProc(cmd.Process.Pid).OK && !strings.Contains(procState(cmd.Process.Pid), "Z") {
			time.Sleep(200 * time.Millisecond)
		}
		close(exited)
	}()
	select {
	case <-synced:
	case <-exited:
		return nil, fmt.Errorf("the peer exited before its caches synced (its stderr is above)")
	case <-time.After(3 * time.Minute):
		return nil, fmt.Errorf("peer did not sync its caches within 3 min")
	}
	logf("%s (pid %d, qps %g burst %d) synced", name, cmd.Process.Pid, qps, burst)
	time.Sleep(5 * time.Second) // settle: the before reading with the pods cached
	pr, err := b.phase(ctx, name, name, cmd.Process.Pid, false)
	if pr != nil {
		pr.ClientQPS, pr.ClientBurst = qps, burst
	}
	return pr, err
}

func (b *bench) counts(prefix string) (succ, failed, pending, nostatus, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, ph := range b.phaseOf {
		if !strings.HasPrefix(name, prefix+"-") {
			continue
		}
		total++
		switch ph {
		case "Succeeded":
			succ++
		case "Failed":
			failed++
		case "":
			nostatus++
		default:
			pending++
		}
	}
	return
}

// phase creates N CRs <prefix>-i for pod-i and measures controller pid.
func (b *bench) phase(ctx context.Context, name, prefix string, pid int, ours bool) (*phaseResult, error) {
	c := b.c
	pr := &phaseResult{Controller: name, N: c.n, Nodes: len(b.nodes), OfferedRate: c.rate}
	pr.Before = readProc(pid)
	api0, err := scrapeAPI(ctx, b.cs)
	if err != nil {
		logf("WARNING: apiserver /metrics: %v", err)
	}
	extra0, _ := scrapeExtra(ctx, b.cs)
	apiCPU0, etcdCPU0, sCPU0 := readProc(b.pid("kube-apiserver")).CPUSec, readProc(b.pid("etcd")).CPUSec, b.standinCPU()
	stopPerf := startPerf(name, b.pid("kube-apiserver"))
	_, hCPU0 := b.helpers()

	logf("%s: creating %d PodCheckpoints (rate %g/s, 0 = at once); controller pid %d RSS %.1f MiB",
		name, c.n, c.rate, pid, mib(pr.Before.RSSKiB))
	t0 := time.Now()
	err = parallel(c.n, c.createWorkers, c.rate, func(i int) error {
		cr := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "checkpointing.dev/v1alpha1", "kind": "PodCheckpoint",
			"metadata": map[string]any{"name": fmt.Sprintf("%s-%d", prefix, i), "namespace": b.ns},
			"spec":     map[string]any{"podName": fmt.Sprintf("pod-%d", i)},
		}}
		sent := time.Now()
		b.mu.Lock()
		b.created[cr.GetName()] = sent
		b.mu.Unlock()
		_, err := b.dyn.Resource(pcpGVR).Namespace(b.ns).Create(ctx, cr, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: create PodCheckpoints: %w", name, err)
	}
	pr.CreateSec = time.Since(t0).Seconds()
	logf("%s: created in %.1fs", name, pr.CreateSec)

	// wait: all terminal, or the timeout, or no progress for a long time
	deadline := t0.Add(c.timeout)
	lastLog := time.Now()
	var hwm int64
	for {
		s, f, p, ns, _ := b.counts(prefix)
		if st := readProc(pid); st.HWMKiB > hwm {
			hwm = st.HWMKiB
		}
		if s+f >= c.n {
			break
		}
		if time.Now().After(deadline) {
			pr.TimedOut = true
			logf("%s: TIMEOUT after %v: %d Succeeded, %d Failed, %d in progress, %d without status", name, c.timeout, s, f, p, ns)
			break
		}
		if time.Since(lastLog) > 10*time.Second {
			st := readProc(pid)
			logf("%s: %.0fs: %d Succeeded, %d Failed, %d in progress, %d without status; RSS %.1f MiB HWM %.1f MiB CPU %.1fs",
				name, time.Since(t0).Seconds(), s, f, p, ns, mib(st.RSSKiB), mib(st.HWMKiB), st.CPUSec-pr.Before.CPUSec)
			lastLog = time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopPerf()
	pr.After = readProc(pid)
	pr.CPUSec = pr.After.CPUSec - pr.Before.CPUSec
	pr.APIServerCPU = readProc(b.pid("kube-apiserver")).CPUSec - apiCPU0
	pr.EtcdCPU = readProc(b.pid("etcd")).CPUSec - etcdCPU0
	pr.StandinCPU = b.standinCPU() - sCPU0
	if ours {
		var hCPU float64
		pr.HelperHWMKiB, hCPU = b.helpers()
		pr.HelperCPUSec = hCPU - hCPU0
	}
	api1, err := scrapeAPI(ctx, b.cs)
	if err == nil {
		pr.APIServerDelta = diffAPI(api0, api1)
	}
	if extra1, err := scrapeExtra(ctx, b.cs); err == nil {
		pr.APIServerExtra = diffExtra(extra0, extra1)
	}

	// latencies
	b.mu.Lock()
	var lat []float64
	var last time.Time
	for n, t := range b.created {
		if !strings.HasPrefix(n, prefix+"-") {
			continue
		}
		if d, ok := b.done[n]; ok {
			lat = append(lat, d.Sub(t).Seconds())
			if d.After(last) {
				last = d
			}
		}
	}
	b.mu.Unlock()
	pr.Succeeded, pr.Failed, pr.PendingLeft, pr.NoStatusLeft, _ = b.counts(prefix)
	pr.Unfinished = c.n - pr.Succeeded - pr.Failed
	sort.Float64s(lat)
	if len(lat) > 0 {
		pr.P50Sec = lat[len(lat)*50/100]
		pr.P99Sec = lat[min(len(lat)-1, len(lat)*99/100)]
		pr.MaxSec = lat[len(lat)-1]
		pr.WallSec = last.Sub(t0).Seconds()
		pr.CRPerSec = float64(len(lat)) / pr.WallSec
	}
	logf("%s: %d Succeeded, %d Failed in %.1fs (%.1f CR/s), p50 %.2fs p99 %.2fs; RSS %.1f MiB HWM %.1f MiB CPU %.1fs",
		name, pr.Succeeded, pr.Failed, pr.WallSec, pr.CRPerSec, pr.P50Sec, pr.P99Sec, mib(pr.After.RSSKiB), mib(pr.After.HWMKiB), pr.CPUSec)

	// idle with everything cached
	if c.idle > 0 {
		pr.IdleRSSMinKiB = 1 << 62
		end := time.Now().Add(c.idle)
		for time.Now().Before(end) {
			st := readProc(pid)
			pr.IdleRSSMinKiB = min(pr.IdleRSSMinKiB, st.RSSKiB)
			pr.IdleRSSMaxKiB = max(pr.IdleRSSMaxKiB, st.RSSKiB)
			time.Sleep(time.Second)
		}
		pr.Idle = readProc(pid)
		pr.IdleCPUSec = pr.Idle.CPUSec - pr.After.CPUSec
		logf("%s: idle %v: RSS %.1f..%.1f MiB, CPU %.2fs", name, c.idle, mib(pr.IdleRSSMinKiB), mib(pr.IdleRSSMaxKiB), pr.IdleCPUSec)
		b.memHook(pid, name, "idle")
	}

	// delete every CR of this phase, then the RSS once they are gone
	t1 := time.Now()
	if err := b.deleteAll(ctx, prefix); err != nil {
		return nil, fmt.Errorf("%s: delete PodCheckpoints: %w", name, err)
	}
	// The controller removes its finalizer from each: a deadline that scales with N.
	wait := max(5*time.Minute, time.Duration(c.n)*30*time.Millisecond)
	ddl := time.Now().Add(wait)
	for {
		_, _, _, _, total := b.counts(prefix)
		if total == 0 {
			break
		}
		if time.Now().After(ddl) {
			logf("%s: WARNING: %d PodCheckpoints still there %v after the delete", name, total, wait)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	pr.DeleteSec = time.Since(t1).Seconds()
	logf("%s: delete sent and all gone in %.1fs", name, pr.DeleteSec)
	time.Sleep(10 * time.Second)
	pr.Deleted = readProc(pid)
	logf("%s: all deleted: RSS %.1f MiB", name, mib(pr.Deleted.RSSKiB))
	b.memHook(pid, name, "deleted")
	return pr, nil
}

// deleteCollectionMax is the largest N deleted with one DeleteCollection: the
// API server handles it in one request under its 60 s request timeout, which
// 10,000 CRs (each with a finalizer to set a deletionTimestamp on) exceed.
const deleteCollectionMax = 2000

// deleteAll deletes the CRs prefix-0..n-1: one DeleteCollection up to
// deleteCollectionMax, else one DELETE each with --create-workers clients
// (a missing one is fine), under a deadline that scales with N.
func (b *bench) deleteAll(ctx context.Context, prefix string) error {
	res := b.dyn.Resource(pcpGVR).Namespace(b.ns)
	if b.c.n <= deleteCollectionMax {
		return res.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	}
	dctx, cancel := context.WithTimeout(ctx, time.Minute+time.Duration(b.c.n)*20*time.Millisecond)
	defer cancel()
	return parallel(b.c.n, b.c.createWorkers, 0, func(i int) error {
		err := res.Delete(dctx, fmt.Sprintf("%s-%d", prefix, i), metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

func ratios(ps []*phaseResult) map[string]any {
	var ours *phaseResult
	for _, p := range ps {
		if p.Controller == "ours" {
			ours = p
		}
	}
	r := map[string]any{}
	for _, peer := range ps {
		if ours == nil || peer == ours || peer.CRPerSec == 0 || peer.After.HWMKiB == 0 {
			continue
		}
		sfx := ""
		if peer.Controller != "peer" {
			sfx = "/" + peer.Controller
		}
		r["crPerSec"+sfx] = ours.CRPerSec / peer.CRPerSec
		r["hwm"+sfx] = float64(ours.After.HWMKiB) / float64(peer.After.HWMKiB)
		r["cpuSec"+sfx] = ours.CPUSec / max(peer.CPUSec, 0.01)
		if peer.Idle.RSSKiB > 0 {
			r["idleRss"+sfx] = float64(ours.Idle.RSSKiB) / float64(peer.Idle.RSSKiB)
		}
		if peer.Deleted.RSSKiB > 0 {
			r["deletedRss"+sfx] = float64(ours.Deleted.RSSKiB) / float64(peer.Deleted.RSSKiB)
		}
	}
	if len(r) == 0 {
		return nil
	}
	return r
}

func report(w io.Writer, r *result) {
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
	fmt.Fprintf(w, "%-8s %6s %5s %5s %7s %8s %7s %7s %7s | %8s %8s %8s %8s %8s %6s | %7s %7s %7s | %s\n",
		"ctl", "N", "nodes", "rate", "ok/fail", "wall s", "CR/s", "p50 s", "p99 s",
		"RSS0 MiB", "HWM MiB", "CPU s", "idleRSS", "delRSS", "idleCPU", "api CPU", "etcd", "helper", "helper HWM")
	for _, p := range r.Phases {
		ok := fmt.Sprintf("%d/%d", p.Succeeded, p.Failed)
		if p.TimedOut {
			ok += "!"
		}
		fmt.Fprintf(w, "%-8s %6d %5d %5g %7s %8.1f %7.1f %7.2f %7.2f | %8.1f %8.1f %8.1f %8.1f %8.1f %6.2f | %7.1f %7.1f %7.1f | %.1f MiB\n",
			p.Controller, p.N, p.Nodes, p.OfferedRate, ok, p.WallSec, p.CRPerSec, p.P50Sec, p.P99Sec,
			mib(p.Before.RSSKiB), mib(p.After.HWMKiB), p.CPUSec, mib(p.Idle.RSSKiB), mib(p.Deleted.RSSKiB), p.IdleCPUSec,
			p.APIServerCPU, p.EtcdCPU, p.HelperCPUSec, mib(p.HelperHWMKiB))
	}
	for _, p := range r.Phases {
		fmt.Fprintf(w, "apiserver, %s phase (request latency from its own histogram; p50/p99 are bucket upper bounds):\n", p.Controller)
		for i, d := range p.APIServerDelta {
			if i >= 12 {
				break
			}
			fmt.Fprintf(w, "  %-36s %7.0f req  mean %6.1f ms  p50 <= %5.0f ms  p99 <= %6.0f ms  codes %v\n", d.Key, d.Requests, d.MeanMs, d.P50Ms, d.P99Ms, d.Codes)
		}
	}
	if r.Ratios != nil {
		keys := make([]string, 0, len(r.Ratios))
		for k := range r.Ratios {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprint(w, "ours/peer:")
		for _, k := range keys {
			fmt.Fprintf(w, " %s %.2f", k, r.Ratios[k])
		}
		fmt.Fprintln(w)
	}
}

// check applies the regression limits (ratios, not absolute figures).
func check(c config, r *result) error {
	if c.minCRRatio == 0 && c.maxHWMRatio == 0 {
		return nil
	}
	for _, p := range r.Phases {
		if p.TimedOut || p.Failed > 0 {
			return fmt.Errorf("check: %s: %d Failed, timed out %v", p.Controller, p.Failed, p.TimedOut)
		}
	}
	if r.Ratios == nil {
		return fmt.Errorf("check: no ours/peer ratios (both phases must run)")
	}
	var errs []string
	sfx := "" // against the peer, else the peer at our client limit
	if _, ok := r.Ratios["crPerSec"]; !ok {
		sfx = "/peerfast"
	}
	crs, ok1 := r.Ratios["crPerSec"+sfx].(float64)
	hwm, ok2 := r.Ratios["hwm"+sfx].(float64)
	if !ok1 || !ok2 {
		return fmt.Errorf("check: no ours/peer ratios (phases ours and peer must run)")
	}
	if v := crs; c.minCRRatio > 0 && v < c.minCRRatio {
		errs = append(errs, fmt.Sprintf("ours/peer CR/s %.2f < %.2f", v, c.minCRRatio))
	}
	if v := hwm; c.maxHWMRatio > 0 && v > c.maxHWMRatio {
		errs = append(errs, fmt.Sprintf("ours/peer VmHWM %.2f > %.2f", v, c.maxHWMRatio))
	}
	if len(errs) > 0 {
		return fmt.Errorf("check: %s", strings.Join(errs, "; "))
	}
	fmt.Println("check: 1 passed, 0 failed")
	return nil
}
