package main

// --rates=R:N,...: the latency curve. For each phase of --which (ours, peer,
// peerfast) and each step, N PodCheckpoints offered at R per second on the
// same pods (names <phase>-r<R>-i), measured as one phase each (the peer is
// restarted per step, our controller is stopped before the first peer step).
// Then a table of p50/p99 by offered rate and, per controller, the highest
// offered rate whose p99 stays within --p99-target.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

var (
	sweepRates string
	p99Target  float64
)

func init() {
	flag.StringVar(&sweepRates, "rates", "", "latency curve: RATE:COUNT steps, e.g. 5:100,10:200,20:400,50:1000,100:1000 (COUNT <= --n)")
	flag.Float64Var(&p99Target, "p99-target", 2, "the curve's p99 target in seconds (issue #11: 2 s)")
}

type sweepStep struct {
	rate float64
	n    int
}

func parseSweep(s string, maxN int) ([]sweepStep, error) {
	var steps []sweepStep
	for _, f := range strings.Split(s, ",") {
		r, n, ok := strings.Cut(strings.TrimSpace(f), ":")
		if !ok {
			return nil, fmt.Errorf("--rates: %q is not RATE:COUNT", f)
		}
		rate, err1 := strconv.ParseFloat(r, 64)
		cnt, err2 := strconv.Atoi(n)
		if err1 != nil || err2 != nil || rate <= 0 || cnt <= 0 || cnt > maxN {
			return nil, fmt.Errorf("--rates: %q: need a rate > 0 and 0 < COUNT <= --n (%d)", f, maxN)
		}
		steps = append(steps, sweepStep{rate, cnt})
	}
	return steps, nil
}

func (b *bench) sweep(ctx context.Context, steps []sweepStep) ([]*phaseResult, error) {
	var out []*phaseResult
	saved := b.c
	defer func() { b.c = saved }()
	for _, which := range strings.Split(saved.which, ",") {
		for _, s := range steps {
			b.c.rate, b.c.n = s.rate, s.n
			name := fmt.Sprintf("%s-r%g", which, s.rate)
			var pr *phaseResult
			var err error
			switch which {
			case "ours":
				pid := readPidFile(filepath.Join(saved.work, "deploy", "controller", "pid"))
				if !readProc(pid).OK {
					return nil, fmt.Errorf("our controller is not running (deploy/controller/pid)")
				}
				pr, err = b.phase(ctx, name, name, pid, true)
			case "peer", "peerfast":
				qps, burst := saved.peerQPS, saved.peerBurst
				if which == "peerfast" {
					qps, burst = 200, 400
				}
				if err = b.stopOurs(); err == nil {
					pr, err = b.peerPhase(ctx, name, qps, burst)
				}
			default:
				return nil, fmt.Errorf("--which: unknown phase %q", which)
			}
			if err != nil {
				return nil, err
			}
			out = append(out, pr)
		}
	}
	return out, nil
}

// sweepReport prints the curve: p50/p99 by offered rate per controller, and
// the highest offered rate with p99 <= the target.
func sweepReport(w io.Writer, ps []*phaseResult, target float64) {
	byCtl := map[string][]*phaseResult{}
	var ctls []string
	for _, p := range ps {
		ctl, _, _ := strings.Cut(p.Controller, "-r")
		if byCtl[ctl] == nil {
			ctls = append(ctls, ctl)
		}
		byCtl[ctl] = append(byCtl[ctl], p)
	}
	fmt.Fprintf(w, "latency curve (create -> terminal; p99 target %gs):\n", target)
	fmt.Fprintf(w, "  %-9s %6s %5s %7s %7s %7s %7s %8s %8s\n", "ctl", "rate", "N", "CR/s", "p50 s", "p99 s", "max s", "api CPU", "ms/CR")
	for _, ctl := range ctls {
		rs := byCtl[ctl]
		sort.Slice(rs, func(i, j int) bool { return rs[i].OfferedRate < rs[j].OfferedRate })
		best := 0.0
		for _, p := range rs {
			fmt.Fprintf(w, "  %-9s %6g %5d %7.1f %7.2f %7.2f %7.2f %8.1f %8.1f\n", ctl, p.OfferedRate, p.N,
				p.CRPerSec, p.P50Sec, p.P99Sec, p.MaxSec, p.APIServerCPU, 1000*p.APIServerCPU/float64(max(p.N, 1)))
			if p.P99Sec <= target && p.Failed == 0 && !p.TimedOut && p.OfferedRate > best {
				best = p.OfferedRate
			}
		}
		fmt.Fprintf(w, "  %s: highest offered rate with p99 <= %gs: %g CR/s\n", ctl, target, best)
	}
}
