package security

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestTenantRule: creating a PodCheckpoint asks what the checkpoint does of
// the requester: exec rights on the pod (a checkpoint is a memory dump), and
// delete rights on the pod for leaveRunning: false. A tenant with only
// "create podcheckpoints" cannot get a pod dumped or deleted.
func TestTenantRule(t *testing.T) {
	ns := newNamespace(t, "tenant")
	node := state.Nodes[0].Name
	runningPod(t, ns, "victim", node)
	sa := "tenant"
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctxT(t, 10*time.Second),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	grant := func(name string, rules ...rbacv1.PolicyRule) {
		t.Helper()
		if _, err := kube.RbacV1().Roles(ns).Create(ctxT(t, 10*time.Second), &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := kube.RbacV1().RoleBindings(ns).Create(ctxT(t, 10*time.Second), &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: sa}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	grant("pcp-creator",
		rbacv1.PolicyRule{APIGroups: []string{"checkpointing.dev"}, Resources: []string{"podcheckpoints"}, Verbs: []string{"create", "get", "list"}},
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}})
	_, dynT := clientAs(t, podBoundToken(t, ns, sa, "", ""))

	_, err := newPCP(t, dynT, ns, "delete-it", map[string]any{"podName": "victim", "leaveRunning": false})
	mustDeny(t, "tenant without exec/delete asks for leaveRunning: false", err, "podcheckpoint-tenant")
	_, err = newPCP(t, dynT, ns, "dump-it", map[string]any{"podName": "victim"})
	mustDeny(t, "tenant without exec asks for a memory dump", err, "podcheckpoint-tenant")
	if !strings.Contains(err.Error(), "pods/exec") {
		t.Fatalf("the refusal does not say what is missing: %v", err)
	}

	grant("exec", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create"}, ResourceNames: []string{"victim"}})
	waitRBAC(t, func() error {
		_, err := newPCP(t, dynT, ns, "dump-it", map[string]any{"podName": "victim"})
		return err
	})
	_, err = newPCP(t, dynT, ns, "delete-it", map[string]any{"podName": "victim", "leaveRunning": false})
	mustDeny(t, "tenant with exec but without delete asks for leaveRunning: false", err, "podcheckpoint-tenant")
	if !strings.Contains(err.Error(), "delete") {
		t.Fatalf("the refusal does not say what is missing: %v", err)
	}
	u := waitPCP(t, ns, "dump-it", 60*time.Second, "done", terminal)
	if phase(u) != "Succeeded" {
		t.Fatalf("the allowed checkpoint did not succeed: %v", statusOf(u))
	}
	if _, err := kube.CoreV1().Pods(ns).Get(ctxT(t, 10*time.Second), "victim", metav1.GetOptions{}); err != nil {
		t.Fatalf("the pod is gone although the tenant may not delete it: %v", err)
	}

	grant("delete", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"delete"}, ResourceNames: []string{"victim"}})
	waitRBAC(t, func() error {
		_, err := newPCP(t, dynT, ns, "delete-it", map[string]any{"podName": "victim", "leaveRunning": false})
		return err
	})
	u = waitPCP(t, ns, "delete-it", 60*time.Second, "done", terminal)
	if phase(u) != "Succeeded" {
		t.Fatalf("the allowed leaveRunning: false checkpoint did not succeed: %v", statusOf(u))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := kube.CoreV1().Pods(ns).Get(ctxT(t, 10*time.Second), "victim", metav1.GetOptions{})
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pod was not deleted although the tenant may delete it")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitRBAC retries f until a new RoleBinding is seen by the authorizer (the
// RBAC cache follows the API within a moment).
func waitRBAC(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused after the grant: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
