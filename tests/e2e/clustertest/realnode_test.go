package clustertest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"podcheckpoint.dev/e2e/internal/cluster"
)

// The real node is listed, Ready, and runs the counter image for real.
func TestRealNodeRunsContainers(t *testing.T) {
	if len(env.State.RealNodes) == 0 {
		fmt.Printf("clustertest: real node NOT RUN: %s\n", env.State.WithoutRealNodeReason)
		t.Skipf("no real node (%s)", env.State.WithoutRealNodeReason)
	}
	n := env.State.RealNodes[0]
	if n.Name != cluster.RealNodeName || n.Runtime != "containerd" || n.Real == nil || n.KubeletURL == "" || n.CheckpointsDir == "" {
		t.Fatalf("real node in cluster.json: %+v", n)
	}
	ctx := ctxT(t, 120*time.Second)
	node, err := env.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(node.Status.NodeInfo.ContainerRuntimeVersion, "containerd://2.") || node.Status.NodeInfo.KubeletVersion != cluster.KubernetesVersion {
		t.Errorf("node info %+v", node.Status.NodeInfo)
	}
	ns, err := env.CreateNamespace(ctx, "realnode")
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "counter", Namespace: ns},
		Spec: corev1.PodSpec{
			NodeName:                      n.Name,
			TerminationGracePeriodSeconds: new(int64),
			Containers:                    []corev1.Container{{Name: "counter", Image: cluster.CounterImage, ImagePullPolicy: corev1.PullNever}},
		},
	}
	if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := env.WaitPodRunning(ctx, ns, "counter", 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.HostIP != n.IP {
		t.Errorf("hostIP %q, want %s", got.Status.HostIP, n.IP)
	}
	time.Sleep(2500 * time.Millisecond)
	logs, err := env.Client.CoreV1().Pods(ns).GetLogs("counter", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("logs through the API server: %v", err)
	}
	lines := strings.Fields(string(logs))
	if len(lines) < 2 {
		t.Fatalf("counter printed %q", logs)
	}
	a, _ := strconv.Atoi(lines[len(lines)-2])
	b, _ := strconv.Atoi(lines[len(lines)-1])
	if b != a+1 {
		t.Errorf("counter does not count: %q", logs)
	}
	_ = env.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
}
