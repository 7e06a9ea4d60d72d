package main

import (
	"math"
	"os"
	"strings"
	"testing"
)

func TestReadProcSelf(t *testing.T) {
	s := readProc(os.Getpid())
	if !s.OK || s.RSSKiB <= 0 || s.HWMKiB < s.RSSKiB {
		t.Fatalf("readProc(self) = %+v", s)
	}
	if readProc(0).OK || readProc(1<<30).OK {
		t.Fatal("readProc of no process must not be OK")
	}
}

func TestAPIDelta(t *testing.T) {
	mk := func(n0, n1, sum float64) *apiScrape {
		return &apiScrape{
			buckets: map[string]map[float64]float64{"PATCH podcheckpoints/status": {0.005: n0, 0.1: n1, math.Inf(1): n1}},
			sum:     map[string]float64{"PATCH podcheckpoints/status": sum},
			count:   map[string]float64{"PATCH podcheckpoints/status": n1},
			codes:   map[string]float64{"PATCH podcheckpoints/status 200": n1 - 1, "PATCH podcheckpoints/status 409": 1},
		}
	}
	before := mk(0, 0, 0)
	before.codes = map[string]float64{}
	// 100 requests: 98 under 5 ms, 2 under 100 ms, 1 of them a 409
	after := mk(98, 100, 0.9)
	d := diffAPI(before, after)
	if len(d) != 1 || d[0].Requests != 100 || math.Abs(d[0].MeanMs-9) > 1e-9 || d[0].P50Ms != 5 || d[0].P99Ms != 100 || d[0].Codes["409"] != 1 {
		t.Fatalf("diffAPI = %+v", d)
	}
	// every request slower than the largest finite bucket: reported as -(that bound)
	slow := mk(0, 0, 0)
	slow.buckets["PATCH podcheckpoints/status"][math.Inf(1)] = 10
	slow.count["PATCH podcheckpoints/status"] = 10
	if d := diffAPI(before, slow); len(d) != 1 || d[0].P99Ms != -100 {
		t.Fatalf("diffAPI above the buckets = %+v", d)
	}
	if diffAPI(nil, after) != nil {
		t.Fatal("diffAPI without a before scrape")
	}
}

func TestRatiosAndCheck(t *testing.T) {
	ours := &phaseResult{Controller: "ours", CRPerSec: 10, CPUSec: 2, After: procStat{HWMKiB: 2048}}
	peer := &phaseResult{Controller: "peerfast", CRPerSec: 100, CPUSec: 4, After: procStat{HWMKiB: 40960}}
	r := &result{Phases: []*phaseResult{ours, peer}}
	r.Ratios = ratios(r.Phases)
	if v := r.Ratios["crPerSec/peerfast"].(float64); v != 0.1 {
		t.Fatalf("crPerSec ratio %v", v)
	}
	if err := check(config{minCRRatio: 0.05, maxHWMRatio: 0.5}, r); err != nil {
		t.Fatalf("check within limits: %v", err)
	}
	if err := check(config{minCRRatio: 0.2}, r); err == nil {
		t.Fatal("check must fail below the CR/s ratio")
	}
	if err := check(config{maxHWMRatio: 0.01}, r); err == nil {
		t.Fatal("check must fail above the VmHWM ratio")
	}
}

func TestExtraDiff(t *testing.T) {
	m0 := "# HELP x\napiserver_watch_events_total{group=\"checkpointing.dev\",resource=\"podcheckpoints\",version=\"v1alpha1\"} 10\n" +
		"apiserver_longrunning_requests{component=\"apiserver\",resource=\"pods\",scope=\"cluster\",verb=\"WATCH\"} 3\n" +
		"apiserver_longrunning_requests{component=\"apiserver\",resource=\"pods\",scope=\"namespace\",verb=\"WATCH\"} 4\n" +
		"apiserver_cel_evaluation_duration_seconds_sum 0.5\nunrelated_total 7\n"
	m1 := strings.Replace(strings.Replace(m0, "} 10", "} 25", 1), "_sum 0.5", "_sum 1.25", 1)
	d := diffExtra(parseExtra(m0), parseExtra(m1))
	got := map[string]float64{}
	for _, x := range d {
		got[x.Series] = x.Value
	}
	want := map[string]float64{
		"apiserver_watch_events_total{group=checkpointing.dev,resource=podcheckpoints}": 15,
		"apiserver_longrunning_requests{verb=WATCH,resource=pods,component=apiserver}":  7, // a gauge: the end value, scopes summed
		"apiserver_cel_evaluation_duration_seconds_sum{}":                               0.75,
	}
	if len(got) != len(want) {
		t.Fatalf("diffExtra = %v", got)
	}
	for k, v := range want {
		if math.Abs(got[k]-v) > 1e-9 {
			t.Fatalf("diffExtra[%s] = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

func TestParseSweep(t *testing.T) {
	s, err := parseSweep("5:100, 10:200,100:1000", 1000)
	if err != nil || len(s) != 3 || s[0].rate != 5 || s[0].n != 100 || s[2].rate != 100 || s[2].n != 1000 {
		t.Fatalf("parseSweep = %v, %v", s, err)
	}
	for _, bad := range []string{"5", "5:0", "0:10", "5:2000", "x:1"} {
		if _, err := parseSweep(bad, 1000); err == nil {
			t.Fatalf("parseSweep(%q) accepted", bad)
		}
	}
}
