// Package gitops tests the Argo CD health check of PodCheckpoint
// (config/argocd/checkpointing.dev/PodCheckpoint/health.lua) with
// gopher-lua, the Lua interpreter Argo CD embeds, in Argo CD's test layout
// (health_test.yaml + testdata/), and checks that kstatus (Flux, kubectl
// wait users) computes the matching InProgress/Current/Failed on the same
// PodCheckpoints.
package gitops

import (
	"os"
	"path/filepath"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

const dir = "../../config/argocd/checkpointing.dev/PodCheckpoint"

type healthTest struct {
	Tests []struct {
		InputPath    string `json:"inputPath"`
		HealthStatus struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"healthStatus"`
	} `json:"tests"`
}

// toLua converts decoded JSON the way Argo CD hands `obj` to a health script.
func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case float64:
		return lua.LNumber(x)
	case int64:
		return lua.LNumber(x)
	case map[string]any:
		t := L.NewTable()
		for k, e := range x {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, e := range x {
			t.Append(toLua(L, e))
		}
		return t
	}
	return lua.LNil
}

// runHealth runs health.lua on obj in a sandbox like Argo CD's (base, table,
// string, math only) and returns status and message.
func runHealth(t *testing.T, script string, obj map[string]any) (string, string) {
	t.Helper()
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.fn), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			t.Fatal(err)
		}
	}
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		t.Fatalf("health.lua: %v", err)
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health.lua returned %s, want a table", L.Get(-1).Type())
	}
	return lua.LVAsString(ret.RawGetString("status")), lua.LVAsString(ret.RawGetString("message"))
}

func load(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// As the API server would hand it over: JSON numbers as int64 where whole.
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return u.Object
}

// loadCases reads health_test.yaml (Argo CD's format).
func loadCases(t *testing.T) healthTest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ht healthTest
	if err := yaml.Unmarshal(b, &ht); err != nil {
		t.Fatal(err)
	}
	return ht
}

// Argo CD health → kstatus status for the same object.
var kstatusFor = map[string]status.Status{
	"Progressing": status.InProgressStatus,
	"Healthy":     status.CurrentStatus,
	"Degraded":    status.FailedStatus,
}

// Where kstatus cannot agree: an object without any status is "Current" to
// kstatus (it has no condition or observedGeneration to go by). The
// controller writes Pending (Reconciling=True) at its first reconcile; Flux
// users wait on status.phase with healthCheckExprs instead (docs/gitops.md).
var kstatusExceptions = map[string]status.Status{
	"testdata/new.yaml": status.CurrentStatus,
}

func TestHealthLua(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	ht := loadCases(t)
	if len(ht.Tests) < 5 {
		t.Fatalf("health_test.yaml has %d cases, want every phase", len(ht.Tests))
	}
	seen := map[string]bool{}
	for _, tc := range ht.Tests {
		tc := tc
		t.Run(tc.InputPath, func(t *testing.T) {
			obj := load(t, filepath.Join(dir, tc.InputPath))
			st, msg := runHealth(t, string(script), obj)
			if st != tc.HealthStatus.Status || msg != tc.HealthStatus.Message {
				t.Errorf("health.lua = %s %q, want %s %q", st, msg, tc.HealthStatus.Status, tc.HealthStatus.Message)
			}
			seen[st] = true
		})
	}
	for _, want := range []string{"Progressing", "Healthy", "Degraded"} {
		if !seen[want] {
			t.Errorf("no case maps to %s", want)
		}
	}
}

func TestKstatusAgrees(t *testing.T) {
	ht := loadCases(t)
	for _, tc := range ht.Tests {
		tc := tc
		t.Run(tc.InputPath, func(t *testing.T) {
			obj := load(t, filepath.Join(dir, tc.InputPath))
			res, err := status.Compute(&unstructured.Unstructured{Object: obj})
			if err != nil {
				t.Fatalf("kstatus: %v", err)
			}
			want := kstatusFor[tc.HealthStatus.Status]
			if w, ok := kstatusExceptions[tc.InputPath]; ok {
				want = w
			}
			if res.Status != want {
				t.Errorf("kstatus %s (%q), want %s (Argo CD says %s)", res.Status, res.Message, want, tc.HealthStatus.Status)
			}
			t.Logf("kstatus %s: %s", res.Status, res.Message)
		})
	}
}
