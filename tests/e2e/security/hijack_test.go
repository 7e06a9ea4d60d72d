package security

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// impostor is a TLS server that records the bearer tokens presented to it.
type impostor struct {
	ln     net.Listener
	fp     string
	conns  atomic.Int64
	mu     sync.Mutex
	tokens []string
}

func startImpostor(t *testing.T, ip string) *impostor {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "impostor"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP(ip)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	im := &impostor{fp: hex.EncodeToString(sum[:])}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	im.ln = tls.NewListener(&countingListener{Listener: ln, n: &im.conns}, &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{"http/1.1"}})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			im.mu.Lock()
			im.tokens = append(im.tokens, strings.TrimPrefix(a, "Bearer "))
			im.mu.Unlock()
		}
		http.Error(w, "no", http.StatusForbidden)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(im.ln)
	t.Cleanup(func() { srv.Close() })
	return im
}

func (im *impostor) endpoint() string { return "wss://" + im.ln.Addr().String() }

func (im *impostor) got() []string {
	im.mu.Lock()
	defer im.mu.Unlock()
	return append([]string(nil), im.tokens...)
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// publish rewrites the helper Lease of node to point at im (as admin: with
// the per-node policies no helper token may do this for another node).
func publish(t *testing.T, node string, im *impostor) {
	t.Helper()
	leases := kube.CoordinationV1().Leases(operatorNS)
	for i := 0; i < 10; i++ {
		l, err := leases.Get(ctxT(t, 10*time.Second), "pcp-helper-"+node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		now := metav1.NewMicroTime(time.Now())
		dur := int32(3600)
		l.Annotations["checkpointing.dev/endpoint"] = im.endpoint()
		l.Annotations["checkpointing.dev/cert-sha256"] = im.fp
		l.Spec.RenewTime, l.Spec.LeaseDurationSeconds = &now, &dur
		if _, err = leases.Update(ctxT(t, 10*time.Second), l, metav1.UpdateOptions{}); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("could not rewrite Lease pcp-helper-%s", node)
}

// TestHijackedEndpoint: a helper Lease rewritten to another address is not
// trusted (its host is not the node's address); one rewritten to a server on
// the node itself (a compromised node) receives only the channel token, which
// the API server refuses for anything but the channel audience.
func TestHijackedEndpoint(t *testing.T) {
	node := state.Nodes[1]
	deploy(t, "stop", "helper-"+node.Name)
	t.Cleanup(func() {
		deploy(t, "restart", "helper-"+node.Name)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			l, err := kube.CoordinationV1().Leases(operatorNS).Get(ctxT(t, 10*time.Second), "pcp-helper-"+node.Name, metav1.GetOptions{})
			if err == nil && strings.Contains(l.Annotations["checkpointing.dev/endpoint"], node.IP+":10443") {
				return
			}
			time.Sleep(300 * time.Millisecond)
		}
		t.Errorf("helper-%s did not publish its Lease again", node.Name)
	})
	ns := newNamespace(t, "hijack")
	runningPod(t, ns, "app", node.Name)

	// 1. Another address: never contacted.
	away := startImpostor(t, "127.0.0.1")
	publish(t, node.Name, away)
	if _, err := newPCP(t, dyn, ns, "cp", map[string]any{"podName": "app"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(8 * time.Second) // several reconciles (poll 2 s)
	if n := away.conns.Load(); n != 0 {
		t.Fatalf("the controller connected %d times to %s, which is not an address of %s", n, away.endpoint(), node.Name)
	}
	t.Logf("Lease endpoint %s (not an address of %s): 0 connections in 8 s", away.endpoint(), node.Name)

	// 2. On the node itself: gets the channel token, and only that.
	onNode := startImpostor(t, node.IP)
	publish(t, node.Name, onNode)
	var toks []string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && len(toks) == 0 {
		toks = onNode.got()
		time.Sleep(200 * time.Millisecond)
	}
	if len(toks) == 0 {
		u, _ := dyn.Resource(pcpGVR).Namespace(ns).Get(ctxT(t, 10*time.Second), "cp", metav1.GetOptions{})
		t.Fatalf("the controller never called %s (%d TCP connections); CR status %v", onNode.endpoint(), onNode.conns.Load(), statusOf(u))
	}
	apiTok, err := os.ReadFile(filepath.Join(workDir(), "deploy", "controller", "sa", "token"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if tok == strings.TrimSpace(string(apiTok)) {
			t.Fatal("the controller sent its API token to a helper endpoint")
		}
		// The API server refuses it as an API credential ...
		tr, err := kube.AuthenticationV1().TokenReviews().Create(ctxT(t, 10*time.Second),
			&authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: tok}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if tr.Status.Authenticated {
			t.Fatalf("the token a hijacked endpoint received is good for the API server: %+v", tr.Status.User)
		}
		cs, _ := clientAs(t, tok)
		if _, err := cs.CoreV1().Secrets(ns).List(ctxT(t, 10*time.Second), metav1.ListOptions{}); err == nil {
			t.Fatal("the received token lists Secrets")
		} else {
			t.Logf("received token used against the API server: %v", err)
		}
		if _, err := cs.CoreV1().Pods(ns).List(ctxT(t, 10*time.Second), metav1.ListOptions{}); err == nil {
			t.Fatal("the received token lists pods")
		}
		// ... and accepts it for the channel audience only.
		tr, err = kube.AuthenticationV1().TokenReviews().Create(ctxT(t, 10*time.Second),
			&authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: tok, Audiences: []string{chAudience}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !tr.Status.Authenticated || tr.Status.User.Username != "system:serviceaccount:"+operatorNS+":"+ctlSA {
			t.Fatalf("the received token is not the controller's channel token: %+v", tr.Status)
		}
	}
	t.Logf("hijacked endpoint on %s received %d token(s): channel audience only, refused by the API server for API calls", node.IP, len(toks))
	_ = unstructured.Unstructured{}
}
