package main

// --perf-apiserver=DIR: a CPU profile of kube-apiserver over each phase
// (`perf record -g` on its pid, from the first create to the last terminal
// CR), written to DIR/<phase>.perf.data, to read with
// `perf report -i DIR/<phase>.perf.data --children --sort sym`.
// The test cluster runs kube-apiserver with --profiling=false, so no pprof.

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

var perfDir string

func init() {
	flag.StringVar(&perfDir, "perf-apiserver", "", "record a CPU profile (perf) of kube-apiserver per phase into this directory")
}

// startPerf starts perf on pid; the returned function stops it (SIGINT, so
// perf writes its file) and waits at most 30 s. A no-op without --perf-apiserver.
func startPerf(phase string, pid int) func() {
	if perfDir == "" || pid <= 0 {
		return func() {}
	}
	if err := os.MkdirAll(perfDir, 0o755); err != nil {
		logf("WARNING: perf: %v", err)
		return func() {}
	}
	out := filepath.Join(perfDir, phase+".perf.data")
	cmd := exec.Command("perf", "record", "-F", "299", "-g", "-p", fmt.Sprint(pid), "-o", out)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	if err := cmd.Start(); err != nil {
		logf("WARNING: perf: %v", err)
		return func() {}
	}
	return func() {
		interrupt(cmd, 30*time.Second)
		logf("%s: kube-apiserver profile in %s", phase, out)
	}
}

// interrupt stops a started command: SIGINT, then SIGKILL after wait.
func interrupt(cmd *exec.Cmd, wait time.Duration) {
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
	}
}
