package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// procStat is one reading of a process: memory from /proc/<pid>/status (KiB),
// CPU from /proc/<pid>/stat (utime+stime, seconds).
type procStat struct {
	OK     bool    `json:"ok"`
	RSSKiB int64   `json:"rssKiB"`
	HWMKiB int64   `json:"hwmKiB"`
	CPUSec float64 `json:"cpuSec"`
}

const clkTck = 100 // sysconf(_SC_CLK_TCK) on Linux/amd64

func readProc(pid int) procStat {
	var s procStat
	if pid <= 0 {
		return s
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &s.RSSKiB
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &s.HWMKiB
		default:
			continue
		}
		fs := strings.Fields(line)
		if len(fs) >= 2 {
			*dst, _ = strconv.ParseInt(fs[1], 10, 64)
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s
	}
	str := string(b)
	i := strings.LastIndexByte(str, ')')
	if i < 0 {
		return s
	}
	fs := strings.Fields(str[i+1:])
	// fs[0] is field 3 (state); utime is field 14, stime field 15
	if len(fs) < 13 {
		return s
	}
	ut, _ := strconv.ParseInt(fs[11], 10, 64)
	st, _ := strconv.ParseInt(fs[12], 10, 64)
	s.CPUSec = float64(ut+st) / clkTck
	s.OK = true
	return s
}

// readPidFile reads a pid file of deploy.sh.
func readPidFile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// procState is the state letter of /proc/<pid>/stat ("Z" for a zombie), or "".
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+3 > len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// memHook runs --mem-hook (if set) for the controller pid at a measuring point;
// its output goes to stderr with the bench's log. A failing hook is reported,
// not fatal: it is a diagnosis, not a measurement.
func (b *bench) memHook(pid int, phase, when string) {
	if b.c.memHook == "" || pid <= 0 {
		return
	}
	cmd := exec.Command("/bin/sh", "-c", b.c.memHook)
	cmd.Env = append(os.Environ(), fmt.Sprintf("PCP_PID=%d", pid), "PCP_PHASE="+phase, "PCP_WHEN="+when)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		logf("%s: mem-hook (%s): %v", phase, when, err)
	}
}
