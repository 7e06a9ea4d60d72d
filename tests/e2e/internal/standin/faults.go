package standin

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Fault keys: pod annotations, and the keys of the per-node fault map set through
// POST /admin/faults. A pod annotation overrides the node's value for that key.
const (
	FaultPrefix   = "checkpoint.stand-in/"
	FaultDelay    = FaultPrefix + "delay-seconds" // "N": sleep N s, then proceed
	FaultFail     = FaultPrefix + "fail"          // "500"|"true": CRIU error; "unimplemented": containerd 1.7 error
	FaultHang     = FaultPrefix + "hang"          // "true": never answer until the client gives up
	FaultTruncate = FaultPrefix + "truncate"      // "true": write half the archive, answer 200
	FaultDiskFull = FaultPrefix + "disk-full"     // "true": 500 ... no space left on device
	FaultSize     = FaultPrefix + "size-bytes"    // "N": CRIU payload size
	// "false": when the client gives up during a delay, nothing is written. Default
	// (as containerd 2.x behind a real kubelet): the runtime finishes anyway and
	// writes the complete archive when the delay ends, named at request time.
	FaultLateArchive = FaultPrefix + "late-archive"
)

// Faults is the effective fault set of one request.
type Faults struct {
	DelaySeconds int64
	Fail         string
	Hang         bool
	Truncate     bool
	DiskFull     bool
	SizeBytes    int64 // -1: default
	NoLate       bool  // late-archive "false"
}

// NodeFaults is the body of POST /admin/faults and of GET /admin/faults.
type NodeFaults struct {
	// Faults uses the annotation keys, e.g. {"checkpoint.stand-in/fail": "500"}.
	Faults map[string]string `json:"faults"`
	// Count > 0: the faults apply to the next Count checkpoint requests that reach
	// the runtime step, then clear themselves. 0: until replaced or deleted.
	Count int `json:"count"`
}

type nodeFaultState struct {
	mu sync.Mutex
	nf NodeFaults
}

func (n *nodeFaultState) set(nf NodeFaults) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if nf.Faults == nil {
		nf.Faults = map[string]string{}
	}
	n.nf = nf
}

func (n *nodeFaultState) get() NodeFaults {
	n.mu.Lock()
	defer n.mu.Unlock()
	cp := NodeFaults{Faults: map[string]string{}, Count: n.nf.Count}
	for k, v := range n.nf.Faults {
		cp.Faults[k] = v
	}
	return cp
}

// take returns the node faults for one request, consuming one use when counted.
func (n *nodeFaultState) take() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]string{}
	for k, v := range n.nf.Faults {
		out[k] = v
	}
	if n.nf.Count > 0 {
		n.nf.Count--
		if n.nf.Count == 0 {
			n.nf.Faults = map[string]string{}
		}
	}
	return out
}

func truthy(v string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	return err == nil && b
}

// ValidateFaults checks the keys and values of a fault map.
func ValidateFaults(m map[string]string) error {
	for k, v := range m {
		switch k {
		case FaultDelay, FaultSize:
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil || n < 0 {
				return fmt.Errorf("%s: %q is not a non-negative integer", k, v)
			}
		case FaultFail:
			switch strings.TrimSpace(v) {
			case "500", "true", "unimplemented", "false", "":
			default:
				return fmt.Errorf("%s: %q (want 500, true or unimplemented)", k, v)
			}
		case FaultHang, FaultTruncate, FaultDiskFull, FaultLateArchive:
			if _, err := strconv.ParseBool(strings.TrimSpace(v)); err != nil {
				return fmt.Errorf("%s: %q is not a boolean", k, v)
			}
		default:
			return fmt.Errorf("unknown fault %q", k)
		}
	}
	return nil
}

// MergeFaults: node faults, overridden key by key by the pod's annotations.
// Unknown annotation values are ignored (the pod is not ours to validate).
func MergeFaults(node, pod map[string]string) Faults {
	m := map[string]string{}
	for k, v := range node {
		m[k] = v
	}
	for k, v := range pod {
		if strings.HasPrefix(k, FaultPrefix) {
			m[k] = v
		}
	}
	f := Faults{SizeBytes: -1}
	if n, err := strconv.ParseInt(strings.TrimSpace(m[FaultDelay]), 10, 64); err == nil && n > 0 {
		f.DelaySeconds = n
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(m[FaultSize]), 10, 64); err == nil && n >= 0 {
		f.SizeBytes = n
	}
	switch v := strings.TrimSpace(m[FaultFail]); v {
	case "500", "true", "unimplemented":
		f.Fail = v
	}
	f.Hang = truthy(m[FaultHang])
	f.Truncate = truthy(m[FaultTruncate])
	f.DiskFull = truthy(m[FaultDiskFull])
	if v := strings.TrimSpace(m[FaultLateArchive]); v != "" && !truthy(v) {
		f.NoLate = true
	}
	return f
}
