package cluster

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cmdlineMentions: /proc/<pid>/cmdline contains s (guards against pid reuse).
func cmdlineMentions(pid int, s string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), s)
}

// killLeftovers SIGKILLs processes recorded in runtime.json that still run and
// still belong to this work dir (their command lines all name it).
func killLeftovers(work string) {
	rt, err := LoadRuntime(work)
	if err != nil {
		return
	}
	for _, p := range rt.Processes {
		if pidAlive(p.PID) && cmdlineMentions(p.PID, work) {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
}

// Down stops everything `up` started. Not up: success, nothing to do.
func Down(work string, out io.Writer) error {
	st, err := LoadState(work)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintln(out, "cluster: not up")
		return nil
	}
	if err != nil {
		return err
	}
	stopDeployed(work, out)
	pid := st.SupervisorPID
	if pidAlive(pid) && isSupervisor(pid, work) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		// the supervisor stops its children in reverse order (10 s each at most)
		deadline := time.Now().Add(45 * time.Second)
		for time.Now().Before(deadline) && len(groupAlive(pid)) > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		if left := groupAlive(pid); len(left) > 0 {
			fmt.Fprintf(out, "cluster: SIGKILL to process group %d (left: %v)\n", pid, left)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	} else if pid > 0 && len(groupAlive(pid)) > 0 && isGroupOurs(pid, work) {
		// supervisor gone, children left in its group
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	killLeftovers(work)
	// a real node's shims, mounts, bridge, iptables chains (the supervisor does
	// this on a clean stop; again here for a supervisor that was killed)
	for _, n := range st.RealNodes {
		cleanupRealNode(st, n, func(f string, a ...any) { fmt.Fprintf(out, "cluster: "+f+"\n", a...) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if len(groupAlive(pid)) == 0 && !leftoversAlive(work) {
			fmt.Fprintln(out, "cluster: down")
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("cluster: processes still alive after SIGKILL: group %d %v", pid, groupAlive(pid))
}

func isGroupOurs(pgid int, work string) bool {
	for _, p := range groupAlive(pgid) {
		if !cmdlineMentions(p, work) {
			return false
		}
	}
	return true
}

func leftoversAlive(work string) bool {
	rt, err := LoadRuntime(work)
	if err != nil {
		return false
	}
	for _, p := range rt.Processes {
		if pidAlive(p.PID) && cmdlineMentions(p.PID, work) {
			return true
		}
	}
	return false
}

// Status prints what runs where. Returns false when the cluster is not up.
func Status(work string, out io.Writer) bool {
	st, alive := running(work)
	if st == nil {
		fmt.Fprintf(out, "cluster: not up (no %s in %s)\n", StateFile, work)
		return false
	}
	rt, _ := LoadRuntime(work)
	phase := "unknown"
	if rt != nil {
		phase = rt.Phase
		if rt.Component != "" {
			phase += " (" + rt.Component + ": " + rt.Message + ")"
		}
	}
	if !alive {
		fmt.Fprintf(out, "cluster: not running (supervisor %d gone); work dir %s\n", st.SupervisorPID, work)
		return false
	}
	fmt.Fprintf(out, "cluster: %s, work dir %s, kubernetes %s\n", phase, work, st.KubernetesVersion)
	fmt.Fprintf(out, "  %-16s pid %-7d log %s\n", "supervisor", st.SupervisorPID, st.SupervisorLogFile)
	if rt != nil {
		for _, p := range rt.Processes {
			state := "running"
			if p.Exited || !pidAlive(p.PID) {
				state = "EXITED " + p.ExitInfo
			}
			fmt.Fprintf(out, "  %-16s pid %-7d %-8s %-26s log %s\n", p.Name, p.PID, state, p.Address, p.LogFile)
		}
	}
	fmt.Fprintf(out, "  apiserver        %s (CA %s)\n", st.APIServer.URL, st.CAFile)
	fmt.Fprintf(out, "  etcd             %s\n", st.Etcd.URL)
	for _, n := range st.Nodes {
		fmt.Fprintf(out, "  node %-11s %s kubelet %s root %s runtime %s\n", n.Name, n.IP, n.KubeletURL, n.RootDir, n.Runtime)
	}
	realNodeStatus(out, st)
	fmt.Fprintf(out, "  kubelet CA       %s\n", st.KubeletCAFile)
	fmt.Fprintf(out, "  state            %s\n", work+"/"+StateFile)
	fmt.Fprintf(out, "KUBECONFIG=%s\n", st.AdminKubeconfig)
	return true
}

// Restart asks the supervisor to kill one component and start it again with the
// same flags (kube-apiserver, etcd, kube-controller-manager, kube-scheduler,
// kubelet-<node>, containerd-<node>), and waits for it to be ready.
func Restart(work, name string, out io.Writer) error {
	st, alive := running(work)
	if !alive {
		return errors.New("cluster: not up")
	}
	res := filepath.Join(work, RestartResultFile)
	_ = os.Remove(res)
	if err := os.WriteFile(filepath.Join(work, RestartRequestFile), []byte(name+"\n"), 0o644); err != nil {
		return err
	}
	if err := syscall.Kill(st.SupervisorPID, syscall.SIGUSR1); err != nil {
		return err
	}
	deadline := time.Now().Add(180 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(res); err == nil {
			_ = os.Remove(res)
			msg := strings.TrimSpace(string(b))
			if msg != "ok" {
				return fmt.Errorf("cluster: restart %s: %s", name, msg)
			}
			fmt.Fprintf(out, "cluster: restarted %s\n", name)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("cluster: restart %s: no answer from the supervisor within 180s", name)
}

// stopDeployed stops what `cluster deploy` (deploy.sh) started: processes whose
// pid files are <work>/deploy/*/pid. They run outside the supervisor (setsid), so
// `down` stops them itself to leave nothing behind.
func stopDeployed(work string, out io.Writer) {
	files, _ := filepath.Glob(filepath.Join(work, "deploy", "*", "pid"))
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || !pidAlive(pid) {
			continue
		}
		// Only our daemons: a stale pid file may name somebody else's process now.
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if !strings.Contains(string(cmdline), "podcheckpoint-") {
			continue
		}
		fmt.Fprintf(out, "cluster: stopping deployed process %d (%s)\n", pid, filepath.Base(filepath.Dir(f)))
		_ = syscall.Kill(pid, syscall.SIGTERM)
		pids = append(pids, pid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for pidAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if pidAlive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
