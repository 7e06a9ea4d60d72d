package security

import (
	"testing"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// TestHelperAuthorityPerNode: the node helper identity, with a token bound to
// its pod on node A, may write its own Lease, the status of a CR dispatched
// to A and delete pods on A; the API server refuses the same on node B, the
// leader Lease, the controller's status fields, and everything without the
// node-name claim.
func TestHelperAuthorityPerNode(t *testing.T) {
	nodeA, nodeB := state.Nodes[0].Name, state.Nodes[1].Name
	tokA := podBoundToken(t, operatorNS, helperSA, "pcp-helper-"+nodeA, "")
	csA, dynA := clientAs(t, tokA)
	leases := csA.CoordinationV1().Leases(operatorNS)

	// Leases: own yes, other node's no, the leader Lease no, a lie about the node no.
	own, err := leases.Get(ctxT(t, 10*time.Second), "pcp-helper-"+nodeA, metav1.GetOptions{})
	mustAllow(t, "helper A reads its Lease", err)
	_, err = leases.Patch(ctxT(t, 10*time.Second), own.Name, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"e2e.checkpointing.dev/touched":"yes"}}}`), metav1.PatchOptions{})
	mustAllow(t, "helper A patches its own Lease", err)
	_, err = leases.Patch(ctxT(t, 10*time.Second), "pcp-helper-"+nodeB, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"checkpointing.dev/endpoint":"wss://127.0.0.1:1"}}}`), metav1.PatchOptions{})
	mustDeny(t, "helper A rewrites node B's Lease", err, "podcheckpoint-helper-own-lease")
	_, err = leases.Patch(ctxT(t, 10*time.Second), own.Name, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"checkpointing.dev/node":"`+nodeB+`"}}}`), metav1.PatchOptions{})
	mustDeny(t, "helper A claims node B in its own Lease", err, "podcheckpoint-helper-own-lease")
	evil := "evil"
	dur := int32(3600)
	_, err = leases.Create(ctxT(t, 10*time.Second), &coordv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "pcp-helper-" + nodeB + "-x", Annotations: map[string]string{"checkpointing.dev/node": nodeA}},
		Spec:       coordv1.LeaseSpec{HolderIdentity: &evil}}, metav1.CreateOptions{})
	mustDeny(t, "helper A creates another Lease", err, "podcheckpoint-helper-own-lease")
	ll, err := kube.CoordinationV1().Leases(operatorNS).Get(ctxT(t, 10*time.Second), leaderLease, metav1.GetOptions{})
	mustAllow(t, "admin reads the leader Lease", err)
	ll.Spec.HolderIdentity = &evil
	ll.Spec.LeaseDurationSeconds = &dur
	_, err = leases.Update(ctxT(t, 10*time.Second), ll, metav1.UpdateOptions{})
	mustDeny(t, "helper A takes the leader Lease", err, "podcheckpoint-")

	// Status: only of CRs dispatched to A, never the controller's fields.
	ns := newNamespace(t, "authority")
	runningPod(t, ns, "on-b", nodeB)
	runningPod(t, ns, "on-a", nodeA)
	if _, err := newPCP(t, dyn, ns, "cp-b", map[string]any{"podName": "on-b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := newPCP(t, dyn, ns, "cp-a", map[string]any{"podName": "on-a"}); err != nil {
		t.Fatal(err)
	}
	dispatched := func(u *unstructured.Unstructured) bool {
		n, _, _ := unstructured.NestedString(u.Object, "status", "nodeName")
		return n != "" && terminal(u)
	}
	waitPCP(t, ns, "cp-b", 60*time.Second, "dispatched and done", dispatched)
	waitPCP(t, ns, "cp-a", 60*time.Second, "dispatched and done", dispatched)
	st := dynA.Resource(pcpGVR).Namespace(ns)
	_, err = st.Patch(ctxT(t, 10*time.Second), "cp-b", types.MergePatchType,
		[]byte(`{"status":{"message":"written by the helper of another node"}}`), metav1.PatchOptions{}, "status")
	mustDeny(t, "helper A writes the status of a CR on node B", err, "podcheckpoint-helper-own-status")
	_, err = st.Patch(ctxT(t, 10*time.Second), "cp-a", types.MergePatchType,
		[]byte(`{"status":{"nodeName":"`+nodeB+`"}}`), metav1.PatchOptions{}, "status")
	mustDeny(t, "helper A moves its CR to node B (status.nodeName)", err, "podcheckpoint-helper-own-status")
	_, err = st.Patch(ctxT(t, 10*time.Second), "cp-a", types.MergePatchType,
		[]byte(`{"status":{"podUID":"not-the-pod"}}`), metav1.PatchOptions{}, "status")
	mustDeny(t, "helper A changes status.podUID", err, "podcheckpoint-helper-own-status")
	_, err = st.Patch(ctxT(t, 10*time.Second), "cp-a", types.MergePatchType,
		[]byte(`{"status":{"message":"written by the helper of its node"}}`), metav1.PatchOptions{}, "status")
	mustAllow(t, "helper A writes the status of a CR on node A", err)

	// Pods: delete on A yes, on B no.
	err = csA.CoreV1().Pods(ns).Delete(ctxT(t, 10*time.Second), "on-b", metav1.DeleteOptions{})
	mustDeny(t, "helper A deletes a pod on node B", err, "podcheckpoint-helper-own-pods")
	if _, err := kube.CoreV1().Pods(ns).Get(ctxT(t, 10*time.Second), "on-b", metav1.GetOptions{}); err != nil {
		t.Fatalf("the pod on node B is gone: %v", err)
	}
	err = csA.CoreV1().Pods(ns).Delete(ctxT(t, 10*time.Second), "on-a", metav1.DeleteOptions{})
	mustAllow(t, "helper A deletes a pod on node A", err)

	// The same identity without a node-name claim (a token not bound to a pod on a node).
	csN, _ := clientAs(t, podBoundToken(t, operatorNS, helperSA, "", ""))
	_, err = csN.CoordinationV1().Leases(operatorNS).Patch(ctxT(t, 10*time.Second), own.Name, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"e2e.checkpointing.dev/touched":"again"}}}`), metav1.PatchOptions{})
	mustDeny(t, "helper identity without a node-name claim patches a Lease", err, "no node-name claim")
	err = csN.CoreV1().Pods(ns).Delete(ctxT(t, 10*time.Second), "on-b", metav1.DeleteOptions{})
	mustDeny(t, "helper identity without a node-name claim deletes a pod", err, "no node-name claim")
}

// TestLeaderLeaseOnlyController: no identity but the controller's writes the
// leader Lease, even one that RBAC would let write Leases.
func TestLeaderLeaseOnlyController(t *testing.T) {
	ns := newNamespace(t, "leader")
	// Somebody with full rights on Leases in the operator namespace.
	sa := "lease-admin"
	if _, err := kube.CoreV1().ServiceAccounts(operatorNS).Create(ctxT(t, 10*time.Second),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	_, err := kube.RbacV1().Roles(operatorNS).Create(ctxT(t, 10*time.Second), &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-lease-admin"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"*"}}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	_, err = kube.RbacV1().RoleBindings(operatorNS).Create(ctxT(t, 10*time.Second), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-lease-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "e2e-lease-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: operatorNS, Name: sa}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	_ = ns
	cs, _ := clientAs(t, podBoundToken(t, operatorNS, sa, "", ""))
	// RBAC alone allows it: an unrelated Lease is fine.
	_, err = cs.CoordinationV1().Leases(operatorNS).Create(ctxT(t, 10*time.Second),
		&coordv1.Lease{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-unrelated-"}}, metav1.CreateOptions{})
	mustAllow(t, "lease-admin creates an unrelated Lease", err)
	var err2 error
	for i := 0; i < 5; i++ { // a renewal of the controller in between is a 409: retry
		ll, err := cs.CoordinationV1().Leases(operatorNS).Get(ctxT(t, 10*time.Second), leaderLease, metav1.GetOptions{})
		mustAllow(t, "lease-admin reads the leader Lease", err)
		evil, dur := "evil", int32(3600)
		ll.Spec.HolderIdentity, ll.Spec.LeaseDurationSeconds = &evil, &dur
		_, err2 = cs.CoordinationV1().Leases(operatorNS).Update(ctxT(t, 10*time.Second), ll, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err2) {
			break
		}
	}
	mustDeny(t, "lease-admin takes the leader Lease", err2, "podcheckpoint-leader-lease")
	err = cs.CoordinationV1().Leases(operatorNS).Delete(ctxT(t, 10*time.Second), leaderLease, metav1.DeleteOptions{})
	mustDeny(t, "lease-admin deletes the leader Lease", err, "podcheckpoint-leader-lease")
	ll, err := kube.CoordinationV1().Leases(operatorNS).Get(ctxT(t, 10*time.Second), leaderLease, metav1.GetOptions{})
	if err != nil || ll.Spec.HolderIdentity == nil || *ll.Spec.HolderIdentity == "evil" {
		t.Fatalf("the leader Lease changed hands: %v %v", err, ll.Spec.HolderIdentity)
	}
}
