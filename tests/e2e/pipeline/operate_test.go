package pipeline

// Operating the operator (issue #12): a real Prometheus (Debian's package)
// scrapes both daemons; promtool parses their pages; /healthz and /readyz
// answer through an API server restart. These tests are not parallel: Go
// runs them alone (parallel tests wait until every sequential test is done),
// so counter deltas are exact and the API server outage hits no other test.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type daemon struct {
	Name       string `json:"name"`
	Running    bool   `json:"running"`
	MetricsURL string `json:"metricsURL"`
}

// daemons reads `tests/e2e/cluster status --json`: every running daemon's metrics URL.
func daemons(t *testing.T) []daemon {
	t.Helper()
	wd, _ := os.Getwd()
	out, err := exec.Command(filepath.Join(wd, "..", "cluster"), "status", "--json").Output()
	if err != nil {
		t.Fatalf("cluster status --json: %v", err)
	}
	var st struct {
		Daemons []daemon `json:"daemons"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("cluster status --json: %v", err)
	}
	var ds []daemon
	for _, d := range st.Daemons {
		if d.Running {
			if d.MetricsURL == "" {
				t.Fatalf("daemon %s runs without a metrics URL in cluster status --json", d.Name)
			}
			ds = append(ds, d)
		}
	}
	if len(ds) < 2 {
		t.Fatalf("cluster status --json lists %d running daemons, want the controller and the helpers: %s", len(ds), out)
	}
	return ds
}

func httpGet(u string) (int, string, error) {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, string(b), nil
}

func baseURL(metricsURL string) string { return strings.TrimSuffix(metricsURL, "/metrics") }

// prometheus starts Debian's prometheus on a free loopback port, scraping ds every second.
type prometheus struct {
	url string
}

func startPrometheus(t *testing.T, ds []daemon) *prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus is not installed (scripts/setup.sh installs Debian's package): %v", err)
	}
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n")
	for _, d := range ds {
		u, err := url.Parse(d.MetricsURL)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cfg, "  - job_name: %q\n    metrics_path: %q\n    static_configs:\n      - targets: [%q]\n        labels: {daemon: %q}\n",
			d.Name, u.Path, u.Host, d.Name)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	logf, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr,
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Logf("prometheus log:\n%s", b)
		}
	})
	p := &prometheus{url: "http://" + addr}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, _, err := httpGet(p.url + "/-/ready"); err == nil && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready on %s within 60s", addr)
		}
		time.Sleep(300 * time.Millisecond)
	}
	return p
}

// query runs an instant PromQL query; the result's samples by their "daemon" label (or "").
func (p *prometheus) query(t *testing.T, q string) (map[string]float64, error) {
	t.Helper()
	code, body, err := httpGet(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Status != "success" {
		return nil, fmt.Errorf("query %q: HTTP %d %s %s", q, code, r.Error, body)
	}
	out := map[string]float64{}
	for _, s := range r.Data.Result {
		if len(s.Value) == 2 {
			v, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
			out[s.Metric["daemon"]] = v
		}
	}
	return out, nil
}

// scalar: the query's only value (0 when it has no result).
func (p *prometheus) scalar(t *testing.T, q string) float64 {
	t.Helper()
	m, err := p.query(t, q)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, v := range m {
		sum += v
	}
	return sum
}

// eventually waits until pred(scalar(q)) holds, up to d; returns the last value.
func (p *prometheus) eventually(t *testing.T, q string, d time.Duration, pred func(float64) bool) (float64, bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		v := p.scalar(t, q)
		if pred(v) {
			return v, true
		}
		if time.Now().After(deadline) {
			return v, false
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// A Prometheus scrapes every daemon; after one successful and one failed
// checkpoint the counters moved by exactly one each, and the duration and
// size histograms hold observations.
func TestMetricsScrapedByPrometheus(t *testing.T) {
	ds := daemons(t)
	p := startPrometheus(t, ds)
	if v, ok := p.eventually(t, "count(up == 1)", 30*time.Second, func(v float64) bool { return v == float64(len(ds)) }); !ok {
		m, _ := p.query(t, "up")
		t.Fatalf("%v of %d targets up: %v", v, len(ds), m)
	}
	succ := `sum(podcheckpoint_checkpoints_total{result="succeeded"}) or vector(0)`
	fail := `sum(podcheckpoint_checkpoints_total{result="failed",reason="KubeletError"}) or vector(0)`
	total := `sum(podcheckpoint_checkpoint_duration_seconds_count{phase="total"}) or vector(0)`
	s0, f0, n0 := p.scalar(t, succ), p.scalar(t, fail), p.scalar(t, total)

	ns := newNamespace(t)
	newPod(t, ns, "good", "node-1", nil, "app")
	newPod(t, ns, "bad", "node-1", map[string]string{"checkpoint.stand-in/fail": "500"}, "app")
	newPCP(t, ns, "ok", map[string]any{"podName": "good"})
	newPCP(t, ns, "ko", map[string]any{"podName": "bad"})
	if u := waitDone(t, ns, "ok", done); phaseOf(u) != "Succeeded" {
		t.Fatalf("phase %s: %v", phaseOf(u), u.Object["status"])
	}
	expectFailed(t, waitDone(t, ns, "ko", done), "KubeletError")

	if v, ok := p.eventually(t, succ, 20*time.Second, func(v float64) bool { return v >= s0+1 }); !ok || v != s0+1 {
		t.Errorf("succeeded checkpoints went from %v to %v, want +1", s0, v)
	}
	if v, ok := p.eventually(t, fail, 20*time.Second, func(v float64) bool { return v >= f0+1 }); !ok || v != f0+1 {
		t.Errorf("failed (KubeletError) checkpoints went from %v to %v, want +1", f0, v)
	}
	if v, ok := p.eventually(t, total, 20*time.Second, func(v float64) bool { return v >= n0+2 }); !ok || v != n0+2 {
		t.Errorf("checkpoint_duration_seconds{phase=total} count went from %v to %v, want +2", n0, v)
	}
	// Non-empty histograms: a quantile exists, and buckets are cumulative up to +Inf.
	for _, q := range []string{
		`histogram_quantile(0.5, sum by (le) (podcheckpoint_checkpoint_duration_seconds_bucket{phase="kubelet"}))`,
		`histogram_quantile(0.5, sum by (le) (podcheckpoint_artifact_bytes_bucket))`,
	} {
		m, err := p.query(t, q)
		if err != nil || len(m) == 0 {
			t.Errorf("%s: no result (%v)", q, err)
		}
		for _, v := range m {
			if !(v > 0) {
				t.Errorf("%s = %v, want > 0", q, v)
			}
		}
	}
	if v := p.scalar(t, `sum(podcheckpoint_artifact_bytes_bucket{le="+Inf"})`); v < 1 {
		t.Errorf("artifact_bytes +Inf bucket %v, want >= 1", v)
	}
	// The controller side: one leader, API requests counted by verb and code,
	// helpers available, reconciles timed.
	for q, want := range map[string]func(float64) bool{
		`sum(podcheckpoint_leader)`:                                          func(v float64) bool { return v == 1 },
		`sum(podcheckpoint_api_requests_total{verb="PATCH",code=~"2.."})`:    func(v float64) bool { return v >= 1 },
		`sum(podcheckpoint_relists_total{resource="podcheckpoints"})`:        func(v float64) bool { return v >= 1 },
		`max(podcheckpoint_helpers_available)`:                               func(v float64) bool { return v >= 1 },
		`sum(podcheckpoint_reconcile_duration_seconds_count)`:                func(v float64) bool { return v >= 2 },
		`sum(podcheckpoint_helper_calls_total{op="checkpoint",result="ok"})`: func(v float64) bool { return v >= 2 },
		`min(process_resident_memory_bytes)`:                                 func(v float64) bool { return v > 1<<20 },
		`count(podcheckpoint_build_info)`:                                    func(v float64) bool { return v == float64(len(ds)) },
	} {
		if v, ok := p.eventually(t, q, 15*time.Second, want); !ok {
			t.Errorf("%s = %v", q, v)
		}
	}
}

// Every daemon's page parses with Prometheus's own parser, without a warning.
func TestMetricsPromtoolCheck(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not installed (scripts/setup.sh installs Debian's prometheus): %v", err)
	}
	for _, d := range daemons(t) {
		code, body, err := httpGet(d.MetricsURL)
		if err != nil || code != 200 {
			t.Fatalf("%s: GET %s: %d %v", d.Name, d.MetricsURL, code, err)
		}
		if !strings.Contains(body, "# TYPE podcheckpoint_build_info gauge") {
			t.Errorf("%s: no build info", d.Name)
		}
		cmd := exec.Command(bin, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) != 0 {
			t.Errorf("%s: promtool check metrics: %v\n%s", d.Name, err, out)
		}
		lines := 0
		sc := bufio.NewScanner(strings.NewReader(body))
		for sc.Scan() {
			lines++
		}
		t.Logf("%s: %d lines, %d bytes, promtool clean", d.Name, lines, len(body))
	}
}

// /readyz goes 503 while the API server is down and 200 again after it is
// back; /healthz stays 200 all along (an API outage is no reason to restart).
func TestHealthThroughAPIServerRestart(t *testing.T) {
	ds := daemons(t)
	var watch []daemon
	for _, d := range ds {
		if d.Name == "controller" || d.Name == "helper-node-1" {
			watch = append(watch, d)
		}
	}
	if len(watch) != 2 {
		t.Fatalf("want the controller and helper-node-1 among %v", ds)
	}
	for _, d := range watch {
		if code, body, err := httpGet(baseURL(d.MetricsURL) + "/readyz"); err != nil || code != 200 {
			t.Fatalf("%s not ready before the restart: %d %q %v", d.Name, code, body, err)
		}
	}
	type seen struct {
		notReady, healthFail int
		why                  string
	}
	var mu sync.Mutex
	obs := map[string]*seen{}
	for _, d := range watch {
		obs[d.Name] = &seen{}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, d := range watch {
		wg.Add(1)
		go func(d daemon) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				rc, rbody, rerr := httpGet(baseURL(d.MetricsURL) + "/readyz")
				hc, hbody, herr := httpGet(baseURL(d.MetricsURL) + "/healthz")
				mu.Lock()
				o := obs[d.Name]
				if rerr == nil && rc == 503 {
					o.notReady++
					o.why = strings.TrimSpace(rbody)
				}
				if herr != nil || hc != 200 {
					o.healthFail++
					t.Logf("%s /healthz: %d %q %v", d.Name, hc, hbody, herr)
				}
				mu.Unlock()
			}
		}(d)
	}
	wd, _ := os.Getwd()
	t0 := time.Now()
	out, err := exec.Command(filepath.Join(wd, "..", "cluster"), "restart", "kube-apiserver").CombinedOutput()
	if err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("cluster restart kube-apiserver: %v: %s", err, out)
	}
	t.Logf("API server back after %.1fs: %s", time.Since(t0).Seconds(), bytes.TrimSpace(out))
	// Ready again within 30 s of the API server being back.
	for _, d := range watch {
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body, err := httpGet(baseURL(d.MetricsURL) + "/readyz")
			if err == nil && code == 200 {
				t.Logf("%s ready again %.1fs after the restart returned", d.Name, time.Since(t0).Seconds())
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s not ready 30s after the API server came back: %d %q %v", d.Name, code, body, err)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	for _, d := range watch {
		o := obs[d.Name]
		if o.notReady == 0 {
			t.Errorf("%s never answered /readyz 503 while the API server was down", d.Name)
		} else {
			t.Logf("%s: %d not-ready answers while down, e.g. %q", d.Name, o.notReady, o.why)
		}
		if o.healthFail != 0 {
			t.Errorf("%s: /healthz failed %d times during the API outage", d.Name, o.healthFail)
		}
	}
	// The operator still works after the outage.
	ns := newNamespace(t)
	newPod(t, ns, "after", "node-1", nil, "app")
	newPCP(t, ns, "after", map[string]any{"podName": "after"})
	if u := waitDone(t, ns, "after", done); phaseOf(u) != "Succeeded" {
		t.Errorf("phase %s after the API server restart: %v", phaseOf(u), u.Object["status"])
	}
}

// `create --wait` on a checkpoint that takes a few seconds shows its
// progress (phase, node, what the helper says) instead of silence.
func TestPluginWaitShowsProgress(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	newPod(t, ns, "slow", "node-2", map[string]string{"checkpoint.stand-in/delay-seconds": "4"}, "app", "sidecar")
	out, code := runPlugin(t, "create", "slow", "-n", ns, "--wait=90s", "--kubeconfig", state.AdminKubeconfig)
	if code != 0 {
		t.Fatalf("create --wait: exit %d:\n%s", code, out)
	}
	// status.progress as the helper writes it: the first container with the
	// Running status, the second (4 s later, past the 2 s progress rate) with
	// its own write.
	for _, want := range []string{
		" Running on node-2: container app, 0 of 2 containers done - Checkpointing 2 containers of pod " + ns + "/slow on node node-2\n",
		" Running on node-2: container sidecar, 1 of 2 containers done - Checkpointing container sidecar (2 of 2) of pod " + ns + "/slow\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("create --wait output lacks the progress line %q:\n%s", want, out)
		}
	}
}
