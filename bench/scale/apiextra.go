package main

// The kube-apiserver's own accounting of where a phase's time went besides
// the request latency histograms (apimetrics.go): watch fan-out (events sent
// to watchers, and the open watches per resource), CEL evaluation of the
// CRD's validation rules, admission (ValidatingAdmissionPolicies included),
// etcd requests, authentication and authorization. Counters and _sum/_count
// pairs are diffed around the phase; gauges are read at its end.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
)

// extraFamilies: metric name -> the labels that key a series (others are summed).
var extraFamilies = map[string][]string{
	"apiserver_watch_events_total":                                       {"group", "resource", "kind"},
	"apiserver_watch_events_sizes_sum":                                   {"group", "resource", "kind"},
	"apiserver_watch_cache_events_dispatched_total":                      {"group", "resource"},
	"apiserver_longrunning_requests":                                     {"verb", "resource", "component"}, // gauge
	"apiserver_cel_evaluation_duration_seconds_sum":                      nil,
	"apiserver_cel_evaluation_duration_seconds_count":                    nil,
	"apiserver_admission_step_admission_duration_seconds_sum":            {"operation", "type"},
	"apiserver_admission_step_admission_duration_seconds_count":          {"operation", "type"},
	"apiserver_admission_controller_admission_duration_seconds_sum":      {"name", "operation", "type"},
	"apiserver_validating_admission_policy_check_duration_seconds_sum":   {"policy", "enforcement_action"},
	"apiserver_validating_admission_policy_check_duration_seconds_count": {"policy", "enforcement_action"},
	"etcd_request_duration_seconds_sum":                                  {"operation", "type"},
	"etcd_request_duration_seconds_count":                                {"operation", "type"},
	"authentication_duration_seconds_sum":                                {"result"},
	"authentication_duration_seconds_count":                              {"result"},
	"apiserver_authorization_decisions_total":                            {"decision", "name"},
	"apiserver_response_sizes_sum":                                       {"verb", "resource", "subresource"},
}

var extraGauges = map[string]bool{"apiserver_longrunning_requests": true}

// extraScrape: series key (name{k=v,...}) -> value.
type extraScrape map[string]float64

func scrapeExtra(ctx context.Context, cs kubernetes.Interface) (extraScrape, error) {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	return parseExtra(string(raw)), nil
}

func parseExtra(text string) extraScrape {
	out := extraScrape{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels := line, ""
		rest := ""
		if lb := strings.IndexByte(line, '{'); lb >= 0 {
			rb := strings.LastIndexByte(line, '}')
			if rb < lb {
				continue
			}
			name, labels, rest = line[:lb], line[lb+1:rb], line[rb+1:]
		} else if sp := strings.IndexByte(line, ' '); sp >= 0 {
			name, rest = line[:sp], line[sp:]
		}
		keep, ok := extraFamilies[name]
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest + " x")[0], 64)
		if err != nil || math.IsNaN(v) {
			continue
		}
		l := labelsOf(labels)
		var kv []string
		for _, k := range keep {
			if l[k] != "" {
				kv = append(kv, k+"="+l[k])
			}
		}
		out[name+"{"+strings.Join(kv, ",")+"}"] += v
	}
	return out
}

// apiExtra is one series over a phase (counters: the increase; gauges: the value at the end).
type apiExtra struct {
	Series string  `json:"series"`
	Value  float64 `json:"value"`
}

func diffExtra(before, after extraScrape) []apiExtra {
	if after == nil {
		return nil
	}
	var out []apiExtra
	for k, v := range after {
		name := k[:strings.IndexByte(k, '{')]
		d := v
		if !extraGauges[name] {
			d = v - before[k]
		}
		if d > 0 {
			out = append(out, apiExtra{Series: k, Value: d})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Series < out[j].Series })
	return out
}

// reportExtra prints each phase's series, with the value per CR.
func reportExtra(w io.Writer, ps []*phaseResult) {
	for _, p := range ps {
		if len(p.APIServerExtra) == 0 {
			continue
		}
		fmt.Fprintf(w, "apiserver accounting, %s phase (counters: increase; gauges: at the end), per CR:\n", p.Controller)
		for _, d := range p.APIServerExtra {
			fmt.Fprintf(w, "  %-100s %12.3f  %10.4f/CR\n", d.Series, d.Value, d.Value/float64(max(p.N, 1)))
		}
	}
}
