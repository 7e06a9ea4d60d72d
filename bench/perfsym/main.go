// Command perfsym reads a `perf record -g` profile of a stripped Go binary
// (the test cluster's kube-apiserver is built -s -w: no .symtab, but
// .gopclntab remains, which `go tool addr2line` reads) and prints where the
// CPU went: inclusive shares of a few categories of the API server's work,
// the top functions by self and inclusive samples. Test tooling only.
//
//	perfsym BINARY PERF.DATA
//
// bench/scale --perf-apiserver=DIR writes DIR/<phase>.perf.data; see
// docs/performance.md ("Where the API server's time per CR goes").
package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// categories: a sample counts in each whose patterns match one of its frames.
var categories = []struct {
	name string
	pats []string
}{
	{"PATCH handler", []string{"PatchResource", "handlers.(*patcher)"}},
	{"CREATE handler", []string{"createHandler", "CreateResource", "CreateNamedResource"}},
	{"GET handler", []string{"GetResource", "getResourceHandler"}},
	{"UPDATE handler", []string{"UpdateResource"}},
	{"JSON encode/decode", []string{"encoding/json", "sigs.k8s.io/json", "serializer/json", "UnstructuredJSONScheme"}},
	{"managedFields (fieldmanager, structured-merge-diff)", []string{"fieldmanager", "structured-merge-diff"}},
	{"CRD schema + CEL validation", []string{"apiextensions-apiserver/pkg/apiserver/schema", "apiextensions-apiserver/pkg/apiserver/validation", "customResourceStrategy", "customResourceStatusStrategy"}},
	{"CEL (any)", []string{"cel-go", "/cel."}},
	{"admission: ValidatingAdmissionPolicy", []string{"admission/plugin/policy"}},
	{"authentication", []string{"pkg/authentication", "authenticator"}},
	{"authorization", []string{"authorization", "rbac"}},
	{"etcd client", []string{"go.etcd.io/etcd/client"}},
	{"TLS + crypto", []string{"crypto/"}},
	{"watch: cache ingest", []string{"etcd3.(*watchChan)", "cacher.(*watchCache)"}},
	{"watch: dispatch", []string{"cacher.(*Cacher).dispatchEvent", "cacher.(*Cacher).processEvent"}},
	{"watch: serving", []string{"handlers.(*WatchServer)", "handlers.serveWatch", "cacher.(*cacheWatcher)"}},
	{"Go GC (background)", []string{"runtime.gcBgMarkWorker"}},
	{"malloc", []string{"runtime.mallocgc"}},
	{"kernel", []string{"[kernel.kallsyms]"}},
}

type frame struct {
	ip  uint64
	dso string
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: perfsym BINARY PERF.DATA")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintf(os.Stderr, "perfsym: %v\n", err)
		os.Exit(1)
	}
}

func run(binary, data string) error {
	samples, err := readSamples(data)
	if err != nil {
		return err
	}
	names, err := symbolise(binary, samples)
	if err != nil {
		return err
	}
	self, incl := map[string]int{}, map[string]int{}
	stacks := make([][]string, 0, len(samples))
	for _, s := range samples {
		fr := make([]string, len(s))
		seen := map[string]bool{}
		for i, f := range s {
			fr[i] = nameOf(f, names)
			if !seen[fr[i]] {
				seen[fr[i]] = true
				incl[fr[i]]++
			}
		}
		if len(fr) > 0 {
			self[fr[0]]++
		}
		stacks = append(stacks, fr)
	}
	total := float64(max(len(samples), 1))
	fmt.Printf("samples: %d\ncategories (inclusive; a sample counts in each it falls in):\n", len(samples))
	for _, c := range categories {
		n := 0
		for _, fr := range stacks {
			if matchAny(fr, c.pats) {
				n++
			}
		}
		fmt.Printf("  %5.1f%%  %s\n", 100*float64(n)/total, c.name)
	}
	printTop("top self:", self, 25, total)
	printTop("top inclusive:", incl, 60, total)
	return nil
}

func matchAny(frames, pats []string) bool {
	for _, f := range frames {
		for _, p := range pats {
			if strings.Contains(f, p) {
				return true
			}
		}
	}
	return false
}

func printTop(title string, m map[string]int, n int, total float64) {
	type kv struct {
		k string
		v int
	}
	var l []kv
	for k, v := range m {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || (l[i].v == l[j].v && l[i].k < l[j].k) })
	fmt.Println(title)
	for i := 0; i < len(l) && i < n; i++ {
		fmt.Printf("  %5.1f%%  %s\n", 100*float64(l[i].v)/total, l[i].k)
	}
}

// readSamples: `perf script -F ip,dso` prints one frame per line (leaf
// first), samples separated by blank lines.
func readSamples(data string) ([][]frame, error) {
	out, err := exec.Command("perf", "script", "-i", data, "-F", "ip,dso").Output()
	if err != nil {
		return nil, fmt.Errorf("perf script: %w", err)
	}
	var samples [][]frame
	var cur []frame
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			if len(cur) > 0 {
				samples = append(samples, cur)
			}
			cur = nil
			continue
		}
		ip, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			continue
		}
		dso := ""
		if len(f) > 1 {
			dso = strings.Trim(f[1], "()")
		}
		cur = append(cur, frame{ip, dso})
	}
	if len(cur) > 0 {
		samples = append(samples, cur)
	}
	return samples, sc.Err()
}

// symbolise names the binary's frames: perf reports them as file offsets
// (no symbols to resolve against), mapped here to addresses through the
// executable's LOAD segments, then named by `go tool addr2line`.
func symbolise(binary string, samples [][]frame) (map[uint64]string, error) {
	ef, err := elf.Open(binary)
	if err != nil {
		return nil, err
	}
	defer ef.Close()
	toVA := func(off uint64) uint64 {
		for _, p := range ef.Progs {
			if p.Type == elf.PT_LOAD && off >= p.Off && off < p.Off+p.Filesz {
				return off - p.Off + p.Vaddr
			}
		}
		return off
	}
	base := filepath.Base(binary)
	set := map[uint64]bool{}
	for _, s := range samples {
		for _, f := range s {
			if filepath.Base(f.dso) == base || f.dso == "unknown" {
				set[f.ip] = true
			}
		}
	}
	ips := make([]uint64, 0, len(set))
	for ip := range set {
		ips = append(ips, ip)
	}
	sort.Slice(ips, func(i, j int) bool { return ips[i] < ips[j] })
	var in strings.Builder
	for _, ip := range ips {
		fmt.Fprintf(&in, "0x%x\n", toVA(ip))
	}
	cmd := exec.Command("go", "tool", "addr2line", binary)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go tool addr2line: %w", err)
	}
	lines := strings.Split(string(out), "\n") // two per address: function, file:line
	names := make(map[uint64]string, len(ips))
	for i, ip := range ips {
		if 2*i < len(lines) {
			names[ip] = lines[2*i]
		}
	}
	return names, nil
}

func nameOf(f frame, names map[uint64]string) string {
	if n, ok := names[f.ip]; ok {
		return n
	}
	return "[" + filepath.Base(f.dso) + "]"
}
