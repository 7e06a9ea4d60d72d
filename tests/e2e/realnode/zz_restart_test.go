package realnode

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"podcheckpoint.dev/e2e/e2eutil"
	"podcheckpoint.dev/e2e/internal/cluster"
)

// cluster restart kube-apiserver: a new process with the same flags, ready again.
// Last of all the e2e tests (this file sorts last in the last package): the
// deployed daemons of the other packages never see it.
func TestRestartAPIServer(t *testing.T) {
	pidOf := func() int {
		rt, err := cluster.LoadRuntime(env.State.WorkDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range rt.Processes {
			if p.Name == "kube-apiserver" && !p.Exited {
				return p.PID
			}
		}
		return 0
	}
	before := pidOf()
	cmd := exec.Command(filepath.Join(e2eutil.E2EDir(), "cluster"), "restart", "kube-apiserver")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("cluster restart kube-apiserver: %v", err)
	}
	after := pidOf()
	if after == 0 || after == before {
		t.Fatalf("kube-apiserver pid %d -> %d", before, after)
	}
	if _, err := env.Client.CoreV1().Namespaces().Get(ctxT(t, 10*time.Second), "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("API server after restart: %v", err)
	}
	rt, _ := cluster.LoadRuntime(env.State.WorkDir)
	if rt.Phase != "ready" {
		t.Errorf("supervisor phase %q after the restart, want ready", rt.Phase)
	}
	t.Logf("kube-apiserver restarted in %.1fs (pid %d -> %d)", time.Since(t0).Seconds(), before, after)
}
