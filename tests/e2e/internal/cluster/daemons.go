package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Daemon is one operator process started by deploy.sh (<work>/deploy/<name>/).
type Daemon struct {
	Name       string `json:"name"`
	PID        int    `json:"pid"`
	Running    bool   `json:"running"`
	MetricsURL string `json:"metricsURL,omitempty"`
	LogFile    string `json:"logFile"`
}

// Daemons lists the deployed operator processes, sorted by name.
func Daemons(work string) []Daemon {
	var out []Daemon
	pids, _ := filepath.Glob(filepath.Join(work, "deploy", "*", "pid"))
	for _, pf := range pids {
		dir := filepath.Dir(pf)
		b, err := os.ReadFile(pf)
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		d := Daemon{Name: filepath.Base(dir), PID: pid, Running: pid > 0 && pidAlive(pid), LogFile: filepath.Join(dir, "log")}
		if u, err := os.ReadFile(filepath.Join(dir, "metrics-url")); err == nil {
			d.MetricsURL = strings.TrimSpace(string(u))
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// StatusJSON is `status --json`: cluster.json plus "daemons" (each deployed
// operator process, whether it runs, its metrics URL).
func StatusJSON(work string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(work, StateFile))
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	ds := Daemons(work)
	if ds == nil {
		ds = []Daemon{}
	}
	d, err := json.Marshal(ds)
	if err != nil {
		return nil, err
	}
	m["daemons"] = d
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
