package main

import (
	"bufio"
	"context"
	"math"
	"sort"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
)

// apiScrape holds the kube-apiserver's request metrics (every resource and
// verb but WATCH) from one scrape of /metrics.
type apiScrape struct {
	// key: verb + " " + resource[/subresource]
	buckets map[string]map[float64]float64 // le -> cumulative count
	sum     map[string]float64
	count   map[string]float64
	codes   map[string]float64 // verb resource code -> requests
}

func labelsOf(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			m[k] = strings.Trim(v, `"`)
		}
	}
	return m
}

func scrapeAPI(ctx context.Context, cs kubernetes.Interface) (*apiScrape, error) {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	a := &apiScrape{buckets: map[string]map[float64]float64{}, sum: map[string]float64{}, count: map[string]float64{}, codes: map[string]float64{}}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_") || strings.Contains(line, `verb="WATCH"`) {
			continue // watches: their duration is the watch's lifetime
		}
		lb := strings.IndexByte(line, '{')
		rb := strings.LastIndexByte(line, '}')
		if lb < 0 || rb < lb {
			continue
		}
		name := line[:lb]
		l := labelsOf(line[lb+1 : rb])
		v, err := strconv.ParseFloat(strings.TrimSpace(line[rb+1:]), 64)
		if err != nil {
			continue
		}
		res := l["resource"]
		if l["subresource"] != "" {
			res += "/" + l["subresource"]
		}
		key := l["verb"] + " " + res
		switch name {
		case "apiserver_request_duration_seconds_bucket":
			le, err := strconv.ParseFloat(l["le"], 64)
			if l["le"] == "+Inf" {
				le, err = math.Inf(1), nil
			}
			if err != nil {
				continue
			}
			if a.buckets[key] == nil {
				a.buckets[key] = map[float64]float64{}
			}
			a.buckets[key][le] += v
		case "apiserver_request_duration_seconds_sum":
			a.sum[key] += v
		case "apiserver_request_duration_seconds_count":
			a.count[key] += v
		case "apiserver_request_total":
			a.codes[key+" "+l["code"]] += v
		}
	}
	return a, sc.Err()
}

// apiDelta is what the API server saw for one verb+resource between two scrapes.
type apiDelta struct {
	Key      string             `json:"key"`
	Requests float64            `json:"requests"`
	MeanMs   float64            `json:"meanMs"`
	P50Ms    float64            `json:"p50Ms"` // bucket upper bound; -B: above the largest bound B
	P99Ms    float64            `json:"p99Ms"` // bucket upper bound; -B: above the largest bound B
	Codes    map[string]float64 `json:"codes,omitempty"`
}

func quantile(b map[float64]float64, total, q float64) float64 {
	les := make([]float64, 0, len(b))
	for le := range b {
		les = append(les, le)
	}
	sort.Float64s(les)
	finite := 0.0
	for _, le := range les {
		if math.IsInf(le, 1) {
			break
		}
		finite = le
		if b[le] >= q*total {
			return le
		}
	}
	return -finite // above the largest bucket: -(that bound), JSON has no +Inf
}

func diffAPI(before, after *apiScrape) []apiDelta {
	if before == nil || after == nil {
		return nil
	}
	var out []apiDelta
	for key, n := range after.count {
		d := n - before.count[key]
		if d <= 0 {
			continue
		}
		b := map[float64]float64{}
		for le, c := range after.buckets[key] {
			b[le] = c - before.buckets[key][le]
		}
		ad := apiDelta{Key: key, Requests: d, MeanMs: 1000 * (after.sum[key] - before.sum[key]) / d,
			P50Ms: 1000 * quantile(b, d, 0.5), P99Ms: 1000 * quantile(b, d, 0.99), Codes: map[string]float64{}}
		for ck, c := range after.codes {
			if strings.HasPrefix(ck, key+" ") {
				if dc := c - before.codes[ck]; dc > 0 {
					ad.Codes[strings.TrimPrefix(ck, key+" ")] = dc
				}
			}
		}
		out = append(out, ad)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Requests > out[j].Requests })
	return out
}
