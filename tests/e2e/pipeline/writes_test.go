package pipeline

// What a checkpoint costs the API server (issue 11): on the happy path the
// controller writes the status once (Pending with the dispatch fields) and
// records no Event; the helper's Events mark the transitions.

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const controllerSource = "checkpointing.dev/podcheckpoint-controller"

// statusVersions records every distinct status of one PodCheckpoint (a watch).
type statusVersions struct {
	mu   sync.Mutex
	list []map[string]any // in order; ADDED without status is not recorded
	last string
}

func watchStatus(t *testing.T, ns, name string) (*statusVersions, func()) {
	t.Helper()
	v := &statusVersions{}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := pcpAPI.Namespace(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		cancel()
		t.Fatalf("watch PodCheckpoint %s/%s: %v", ns, name, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev := range w.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			st, found, _ := unstructured.NestedMap(u.Object, "status")
			if !found || len(st) == 0 {
				continue
			}
			b, _ := json.Marshal(st)
			v.mu.Lock()
			if string(b) != v.last {
				v.list = append(v.list, st)
				v.last = string(b)
			}
			v.mu.Unlock()
		}
	}()
	return v, func() { cancel(); w.Stop(); wg.Wait() }
}

func readyOf(st map[string]any) cond {
	u := &unstructured.Unstructured{Object: map[string]any{"status": st}}
	c, _ := condition(u, "Ready")
	return c
}

// Not parallel: run while no other test keeps the helper busy, so the job
// starts at once (a queue wait would add a legitimate "Queued" write).
func TestOneControllerWritePerCheckpoint(t *testing.T) {
	ns := newNamespace(t)
	pod := newPod(t, ns, "web", "node-2", nil, "app")
	// newPod saw Running with a GET; give the controller's pod cache the same
	// view (a pod still Pending in its cache is the two-step path by design).
	time.Sleep(2 * time.Second)
	versions, stop := watchStatus(t, ns, "once")
	newPCP(t, ns, "once", map[string]any{"podName": "web"})
	u := waitDone(t, ns, "once", done)
	time.Sleep(time.Second) // the watch catches up
	stop()
	if phaseOf(u) != "Succeeded" {
		t.Fatalf("phase %s: %v", phaseOf(u), u.Object["status"])
	}
	versions.mu.Lock()
	defer versions.mu.Unlock()
	if len(versions.list) == 0 {
		t.Fatalf("the watch saw no status")
	}
	// The first status anyone wrote is the controller's merged write.
	first := versions.list[0]
	if first["phase"] != "Pending" {
		t.Errorf("first status phase %v, want Pending: %v", first["phase"], first)
	}
	if first["nodeName"] != "node-2" || first["podUID"] != string(pod.UID) {
		t.Errorf("first status nodeName %v podUID %v, want node-2 %s (dispatch fields in the first write): %v",
			first["nodeName"], first["podUID"], pod.UID, first)
	}
	if s, _ := first["dispatchTime"].(string); s == "" {
		t.Errorf("first status has no dispatchTime: %v", first)
	}
	if r := readyOf(first); r.Status != "False" || r.Reason != "Pending" {
		t.Errorf("first status Ready %+v, want False/Pending", r)
	}
	if og, _ := first["observedGeneration"].(int64); og != u.GetGeneration() {
		t.Errorf("first status observedGeneration %v, want %d", first["observedGeneration"], u.GetGeneration())
	}
	// Pending is only ever written by the controller: once.
	pending := 0
	for _, st := range versions.list {
		if st["phase"] == "Pending" {
			pending++
		}
	}
	if pending != 1 {
		b, _ := json.Marshal(versions.list)
		t.Errorf("%d Pending versions, want 1 (one controller write): %s", pending, b)
	}
	// Events: the helper's CheckpointStarted and CheckpointCompleted, none of the controller's.
	waitEvent(t, ns, "once", "Normal", "CheckpointStarted")
	waitEvent(t, ns, "once", "Normal", "CheckpointCompleted")
	evs, err := kube.EventsV1().Events(ns).List(ctxT(t, 10*time.Second), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	for _, e := range evs.Items {
		if e.Regarding.Name == "once" && e.ReportingController == controllerSource {
			t.Errorf("the controller recorded Event %s/%s on the happy path: %q", e.Type, e.Reason, e.Note)
		}
	}
}
