package cluster

// `cluster restart kube-apiserver`: the supervisor stops its API server,
// keeps it down for a while, and starts it again with the same flags (a
// minimal restart for the health tests of issue #12; issue #10's general
// `cluster restart <component>` supersedes it).

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// RestartRequestFile is written by RequestRestart and read by the supervisor on SIGUSR1.
const RestartRequestFile = "restart-request.json"

type restartRequest struct {
	Component   string  `json:"component"`
	DownSeconds float64 `json:"downSeconds"`
}

// handleRestart runs in the supervisor when SIGUSR1 arrives.
func (s *supervisor) handleRestart() {
	var req restartRequest
	b, err := os.ReadFile(filepath.Join(s.st.WorkDir, RestartRequestFile))
	if err == nil {
		err = json.Unmarshal(b, &req)
	}
	if err != nil || req.Component != "kube-apiserver" {
		log.Printf("event=restart-refused request=%q err=%v", b, err)
		return
	}
	s.mu.Lock()
	var c *child
	for _, k := range s.kids {
		if k.name == req.Component {
			c = k
		}
	}
	s.mu.Unlock()
	if c == nil || c.spec == nil {
		log.Printf("event=restart-refused component=%s err=%q", req.Component, "not running")
		return
	}
	log.Printf("event=restart component=%s down=%.1fs", c.name, req.DownSeconds)
	c.expected = true
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	time.Sleep(time.Duration(req.DownSeconds * float64(time.Second)))
	sp := c.spec
	nc, err := s.startAt(c.idx, sp.name, sp.logFile, sp.addr, sp.bin, sp.args...)
	if err != nil {
		log.Printf("event=restart-failed component=%s err=%q", c.name, err)
		return
	}
	s.mu.Lock()
	for i, k := range s.kids {
		if k == c {
			s.kids[i] = nc
		}
	}
	s.mu.Unlock()
}

// RequestRestart asks the running supervisor to restart component and waits
// until the new process serves /readyz (at most timeout).
func RequestRestart(work, component string, down, timeout time.Duration) error {
	if component != "kube-apiserver" {
		return fmt.Errorf("restart: only kube-apiserver can be restarted here (the daemons: tests/e2e/cluster restart controller|helper-<node>)")
	}
	st, err := LoadState(work)
	if err != nil {
		return err
	}
	oldPID := 0
	if rt, err := LoadRuntime(work); err == nil {
		for _, p := range rt.Processes {
			if p.Name == component && !p.Exited {
				oldPID = p.PID
			}
		}
	}
	b, _ := json.Marshal(restartRequest{Component: component, DownSeconds: down.Seconds()})
	if err := os.WriteFile(filepath.Join(work, RestartRequestFile), b, 0o644); err != nil {
		return err
	}
	if err := syscall.Kill(st.SupervisorPID, syscall.SIGUSR1); err != nil {
		return fmt.Errorf("signal supervisor %d: %w", st.SupervisorPID, err)
	}
	c, err := adminHTTPClient(st)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		rt, err := LoadRuntime(work)
		if err != nil {
			continue
		}
		for _, p := range rt.Processes {
			if p.Name == component && !p.Exited && p.PID != oldPID && readyz(c, st.APIServer.URL) == nil {
				fmt.Printf("restarted %s (pid %d, was %d)\n", component, p.PID, oldPID)
				return nil
			}
		}
	}
	return fmt.Errorf("restart: %s not ready again within %s", component, timeout)
}

// ParseDown reads a --down=SECONDS argument (default 5 s).
func ParseDown(args []string) time.Duration {
	for _, a := range args {
		if v, ok := cutPrefix(a, "--down="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 {
				return time.Duration(f * float64(time.Second))
			}
		}
	}
	return 5 * time.Second
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}
