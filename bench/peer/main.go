// Command peer is the benchmark's baseline: a minimal controller-runtime
// reconciler that watches the same PodCheckpoints and pods as the C controller
// and writes the same two status transitions (Pending at first sight, then
// Succeeded), without doing any checkpoint. It is what a Go operator pays just
// to watch and write. Test tooling only (bench/scale runs it); never shipped.
//
//	peer --kubeconfig=FILE [--qps=20 --burst=30 --workers=2]   (--kubeconfig is controller-runtime's own flag)
//
// It prints "peer: synced" on stderr once its caches are filled.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

var pcpGVK = schema.GroupVersionKind{Group: "checkpointing.dev", Version: "v1alpha1", Kind: "PodCheckpoint"}

const podNameIndex = "spec.podName"

func newPCP() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(pcpGVK)
	return u
}

type reconciler struct{ c client.Client }

// Reconcile: no status -> Pending (nodeName, podUID from the cached pod);
// Pending -> Succeeded. Terminal: nothing. Every write is a merge patch of
// /status with the resourceVersion precondition, as the C controller does.
func (r *reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	cr := newPCP()
	if err := r.c.Get(ctx, req.NamespacedName, cr); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	phase, _, _ := unstructured.NestedString(cr.Object, "status", "phase")
	if phase == "Succeeded" || phase == "Failed" || cr.GetDeletionTimestamp() != nil {
		return reconcile.Result{}, nil
	}
	podName, _, _ := unstructured.NestedString(cr.Object, "spec", "podName")
	var pod corev1.Pod
	podErr := r.c.Get(ctx, types.NamespacedName{Namespace: cr.GetNamespace(), Name: podName}, &pod)
	if podErr != nil && !apierrors.IsNotFound(podErr) {
		return reconcile.Result{}, podErr
	}
	now := metav1.Now().UTC().Format(time.RFC3339)
	orig := cr.DeepCopy()
	st := map[string]any{"observedGeneration": cr.GetGeneration()}
	switch {
	case apierrors.IsNotFound(podErr):
		st["phase"] = "Failed"
		st["message"] = fmt.Sprintf("Pod %s not found.", podName)
		st["completionTime"] = now
		st["conditions"] = []any{cond("Ready", "False", "PodNotFound", cr.GetGeneration(), now)}
	case phase == "":
		st["phase"] = "Pending"
		st["nodeName"] = pod.Spec.NodeName
		st["podUID"] = string(pod.UID)
		st["conditions"] = []any{cond("Ready", "False", "Pending", cr.GetGeneration(), now)}
	default:
		st["phase"] = "Succeeded"
		st["startTime"] = now
		st["completionTime"] = now
		st["message"] = "Checkpoint completed (peer: no checkpoint taken)."
		st["conditions"] = []any{cond("Ready", "True", "CheckpointCompleted", cr.GetGeneration(), now)}
	}
	old, _, _ := unstructured.NestedMap(cr.Object, "status")
	for k, v := range st {
		if old == nil {
			old = map[string]any{}
		}
		old[k] = v
	}
	if err := unstructured.SetNestedField(cr.Object, old, "status"); err != nil {
		return reconcile.Result{}, err
	}
	err := r.c.Status().Patch(ctx, cr, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsConflict(err) {
		return reconcile.Result{Requeue: true}, nil
	}
	return reconcile.Result{}, err
}

func cond(typ, status, reason string, gen int64, now string) map[string]any {
	return map[string]any{"type": typ, "status": status, "reason": reason,
		"message": reason, "observedGeneration": gen, "lastTransitionTime": now}
}

func main() {
	qps := flag.Float64("qps", 20, "client QPS (controller-runtime's default 20)")
	burst := flag.Int("burst", 30, "client burst (controller-runtime's default 30)")
	workers := flag.Int("workers", 2, "MaxConcurrentReconciles (the C controller's --workers default)")
	flag.Parse()
	log.SetLogger(zap.New(zap.UseDevMode(false), zap.Level(zapcore.ErrorLevel)))

	cfg, err := ctrlconfig.GetConfig() // --kubeconfig (controller-runtime's flag), $KUBECONFIG, in-cluster
	if err != nil {
		fmt.Fprintf(os.Stderr, "peer: %v\n", err)
		os.Exit(1)
	}
	cfg.QPS, cfg.Burst = float32(*qps), *burst
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		LeaderElection:         false,
		// Reads of PodCheckpoints (unstructured) from the informer cache, as a typed
		// operator's would be; by default controller-runtime sends them to the API server.
		Client: client.Options{Cache: &client.CacheOptions{Unstructured: true}},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "peer: manager: %v\n", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := mgr.GetFieldIndexer().IndexField(ctx, newPCP(), podNameIndex, func(o client.Object) []string {
		n, _, _ := unstructured.NestedString(o.(*unstructured.Unstructured).Object, "spec", "podName")
		return []string{n}
	}); err != nil {
		fmt.Fprintf(os.Stderr, "peer: index: %v\n", err)
		os.Exit(1)
	}
	r := &reconciler{c: mgr.GetClient()}
	// pod events -> the PodCheckpoints naming that pod (the index a typical operator keeps)
	podToCRs := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(pcpGVK.GroupVersion().WithKind("PodCheckpointList"))
		if err := r.c.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{podNameIndex: o.GetName()}); err != nil {
			return nil
		}
		out := make([]reconcile.Request, 0, len(list.Items))
		for i := range list.Items {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: list.Items[i].GetNamespace(), Name: list.Items[i].GetName()}})
		}
		return out
	})
	if err := ctrl.NewControllerManagedBy(mgr).Named("podcheckpoint-peer").For(newPCP()).
		Watches(&corev1.Pod{}, podToCRs).
		WithOptions(controller.Options{MaxConcurrentReconciles: *workers}).
		Complete(r); err != nil {
		fmt.Fprintf(os.Stderr, "peer: controller: %v\n", err)
		os.Exit(1)
	}
	go func() {
		if mgr.GetCache().WaitForCacheSync(ctx) {
			fmt.Fprintln(os.Stderr, "peer: synced")
		}
	}()
	if err := mgr.Start(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "peer: %v\n", err)
		os.Exit(1)
	}
}
