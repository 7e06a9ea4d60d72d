package cluster

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// keyPair is a certificate with its private key.
type keyPair struct {
	cert    *x509.Certificate
	key     *rsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
}

func newKey() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) }

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
}

func encode(cert *x509.Certificate, key *rsa.PrivateKey) *keyPair {
	return &keyPair{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
	}
}

// newCA makes a self-signed CA valid for ten years.
func newCA(cn string) (*keyPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"podcheckpoint-e2e"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return encode(cert, key), nil
}

// issue signs a leaf certificate. server: serving cert with the given SANs;
// otherwise a client certificate.
func (ca *keyPair) issue(cn string, orgs []string, server bool, dns []string, ips []net.IP) (*keyPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(2 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return encode(cert, key), nil
}

func (kp *keyPair) write(certFile, keyFile string) error {
	if err := os.WriteFile(certFile, kp.certPEM, 0o644); err != nil {
		return err
	}
	if keyFile != "" {
		if err := os.WriteFile(keyFile, kp.keyPEM, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// generatePKI writes every certificate and key the cluster needs (see docs/test-cluster.md).
func generatePKI(st *State) error {
	ca, err := newCA("podcheckpoint-e2e-ca")
	if err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	if err := ca.write(st.CAFile, st.CAKeyFile); err != nil {
		return err
	}
	srv, err := ca.issue("kube-apiserver", nil, true,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")})
	if err != nil {
		return fmt.Errorf("apiserver cert: %w", err)
	}
	if err := srv.write(st.APIServer.CertFile, st.APIServer.KeyFile); err != nil {
		return err
	}
	admin, err := ca.issue("admin", []string{"system:masters"}, false, nil, nil)
	if err != nil {
		return fmt.Errorf("admin cert: %w", err)
	}
	if err := admin.write(st.AdminCertFile, st.AdminKeyFile); err != nil {
		return err
	}
	// ServiceAccount token signing key.
	sakey, err := newKey()
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sakey.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(st.SAKeyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(sakey)}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(st.SAPubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return err
	}
	// Kubelet serving certificates: their own CA, like kubelets whose serving
	// certs are not signed by the cluster CA.
	kca, err := newCA("podcheckpoint-e2e-kubelet-ca")
	if err != nil {
		return fmt.Errorf("kubelet CA: %w", err)
	}
	// the key is kept: further node serving certificates can be signed (tests)
	if err := kca.write(st.KubeletCAFile, st.KubeletCAKeyFile); err != nil {
		return err
	}
	for _, n := range st.Nodes {
		kp, err := kca.issue(n.Name, nil, true, []string{n.Name, "localhost"}, []net.IP{net.ParseIP(n.IP)})
		if err != nil {
			return fmt.Errorf("kubelet cert %s: %w", n.Name, err)
		}
		if err := kp.write(n.CertFile, n.KeyFile); err != nil {
			return err
		}
	}
	// Control-plane and node identities (client certs of the cluster CA).
	caPEM := ca.certPEM
	idents := []struct {
		cn, org, kubeconfig string
	}{
		{"system:kube-controller-manager", "", st.ControllerManager.Kubeconfig},
		{"system:kube-scheduler", "", st.Scheduler.Kubeconfig},
	}
	for _, n := range st.RealNodes {
		idents = append(idents, struct{ cn, org, kubeconfig string }{"system:node:" + n.Name, "system:nodes", n.Real.Kubeconfig})
	}
	for _, id := range idents {
		var orgs []string
		if id.org != "" {
			orgs = []string{id.org}
		}
		kp, err := ca.issue(id.cn, orgs, false, nil, nil)
		if err != nil {
			return fmt.Errorf("%s cert: %w", id.cn, err)
		}
		if err := os.WriteFile(id.kubeconfig, kubeconfig(st.APIServer.URL, caPEM, kp.certPEM, kp.keyPEM), 0o600); err != nil {
			return err
		}
	}
	// the API server's client certificate for kubelets (kubectl logs/exec)
	kc, err := ca.issue("kube-apiserver-kubelet-client", []string{"system:masters"}, false, nil, nil)
	if err != nil {
		return err
	}
	if err := kc.write(st.KubeletClientCertFile, st.KubeletClientKeyFile); err != nil {
		return err
	}
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return err
	}
	return os.WriteFile(st.StandinAdminTokenFile, []byte(fmt.Sprintf("%x\n", tok)), 0o600)
}

// kubeconfig renders a kubeconfig with the credentials embedded.
func kubeconfig(server string, caPEM, certPEM, keyPEM []byte) []byte {
	b64 := func(b []byte) string { return base64Std(b) }
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: pcp-e2e
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: pcp-e2e
  context:
    cluster: pcp-e2e
    user: admin
current-context: pcp-e2e
`, server, b64(caPEM), b64(certPEM), b64(keyPEM)))
}
