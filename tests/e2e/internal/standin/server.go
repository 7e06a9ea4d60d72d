// Package standin is the kubelet stand-in: the kubelet's checkpoint API
// (POST /checkpoint/{ns}/{pod}/{container}) with the kubelet's authentication
// (TokenReview or client certificate), authorization (SubjectAccessReview for
// nodes/checkpoint), status codes, bodies and archive naming, writing a fake but
// well-formed checkpoint archive, with injectable faults.
package standin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Config of one stand-in.
type Config struct {
	NodeName       string
	Addr           string // ip:port
	CheckpointsDir string // <root-dir>/checkpoints
	CertFile       string
	KeyFile        string
	ClientCAFile   string // cluster CA: client certificates
	AdminToken     string // shared secret for /admin (header X-Admin-Token)
	RequestLog     string // JSON lines
	PayloadBytes   int64
	Client         kubernetes.Interface // admin: reviews and pod reads
	// How long webhook answers are kept, as the kubelet does (authcache.go):
	// 0 is the kubelet's default (2m, 5m, 30s), negative keeps none.
	TokenCacheTTL        time.Duration
	AuthorizedCacheTTL   time.Duration
	UnauthorizedCacheTTL time.Duration
}

// reviewer sends TokenReviews and SubjectAccessReviews (the API server; a
// counting fake in unit tests).
type reviewer interface {
	TokenReview(ctx context.Context, tr *authnv1.TokenReview) (*authnv1.TokenReview, error)
	SubjectAccessReview(ctx context.Context, sar *authzv1.SubjectAccessReview) (*authzv1.SubjectAccessReview, error)
}

type apiReviewer struct{ c kubernetes.Interface }

func (a apiReviewer) TokenReview(ctx context.Context, tr *authnv1.TokenReview) (*authnv1.TokenReview, error) {
	return a.c.AuthenticationV1().TokenReviews().Create(ctx, tr, metav1.CreateOptions{})
}

func (a apiReviewer) SubjectAccessReview(ctx context.Context, sar *authzv1.SubjectAccessReview) (*authzv1.SubjectAccessReview, error) {
	return a.c.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
}

// Record is one served request (GET /admin/requests).
type Record struct {
	Seq        int64     `json:"seq"`
	Time       time.Time `json:"time"`
	Node       string    `json:"node"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Query      string    `json:"query,omitempty"`
	Status     int       `json:"status"` // 0: no answer (hang, client went away)
	User       string    `json:"user,omitempty"`
	DurationMS int64     `json:"durationMs"`
	Note       string    `json:"note,omitempty"`
	// Set when an archive was written (also for the truncate fault):
	Archive   string `json:"archive,omitempty"`
	SHA256    string `json:"sha256,omitempty"` // of the file as left on disk
	SizeBytes int64  `json:"sizeBytes,omitempty"`
}

// Server is the stand-in.
type Server struct {
	cfg      Config
	faults   nodeFaultState
	mu       sync.Mutex
	records  []Record
	seq      int64
	logf     *os.File
	shutdown chan struct{}
	once     sync.Once
	rev      reviewer
	auth     *authCaches
}

const maxRecords = 10000

// New builds a stand-in.
func New(cfg Config) (*Server, error) {
	if cfg.PayloadBytes <= 0 {
		cfg.PayloadBytes = DefaultPayloadBytes
	}
	s := &Server{cfg: cfg, shutdown: make(chan struct{}), rev: apiReviewer{cfg.Client}, auth: newAuthCaches(cfg, nil)}
	s.faults.set(NodeFaults{})
	if cfg.RequestLog != "" {
		f, err := os.OpenFile(cfg.RequestLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		s.logf = f
	}
	return s, nil
}

// statusWriter remembers the status code.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

type reqInfo struct {
	user    string
	note    string
	archive string
	sha256  string
	size    int64
}

// plain writes a text/plain body the way go-restful's WriteErrorString does.
func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}

// ServeHTTP routes; every request is recorded.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	info := &reqInfo{}
	s.route(sw, r, info)
	rec := Record{
		Time: start.UTC(), Node: s.cfg.NodeName, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Status: sw.status, User: info.user, DurationMS: time.Since(start).Milliseconds(), Note: info.note,
		Archive: info.archive, SHA256: info.sha256, SizeBytes: info.size,
	}
	s.record(rec)
}

func (s *Server) record(rec Record) {
	s.mu.Lock()
	s.seq++
	rec.Seq = s.seq
	s.records = append(s.records, rec)
	if len(s.records) > maxRecords {
		s.records = s.records[len(s.records)-maxRecords:]
	}
	if s.logf != nil {
		if b, err := json.Marshal(rec); err == nil {
			_, _ = s.logf.Write(append(b, '\n'))
		}
	}
	s.mu.Unlock()
	log.Printf("event=request node=%s method=%s path=%s query=%q status=%d user=%q duration_ms=%d note=%q",
		rec.Node, rec.Method, rec.Path, rec.Query, rec.Status, rec.User, rec.DurationMS, rec.Note)
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	switch {
	case r.URL.Path == "/healthz":
		// unauthenticated here (the kubelet's own is on 10248) so readiness
		// checks need no credentials
		plain(w, http.StatusOK, "ok")
	case strings.HasPrefix(r.URL.Path, "/admin/"):
		s.admin(w, r, info)
	default:
		s.kubeletAPI(w, r, info)
	}
}

// user is an authenticated identity.
type user struct {
	name   string
	uid    string
	groups []string
	extra  map[string]authzv1.ExtraValue
}

// authenticate: verified client certificate, else bearer token via TokenReview.
// Anonymous requests are refused (kubelets run with --anonymous-auth=false).
func (s *Server) authenticate(ctx context.Context, r *http.Request) (*user, error) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		c := r.TLS.VerifiedChains[0][0]
		return &user{name: c.Subject.CommonName, groups: append([]string(nil), c.Subject.Organization...)}, nil
	}
	h := r.Header.Get("Authorization")
	const pfx = "bearer "
	if len(h) <= len(pfx) || !strings.EqualFold(h[:len(pfx)], pfx) {
		return nil, errors.New("no credentials")
	}
	tok := strings.TrimSpace(h[len(pfx):])
	if tok == "" {
		return nil, errors.New("empty bearer token")
	}
	// No audiences in the review: the kubelet's are the API server's (authcache.go).
	st, _, err := s.auth.tokens.Do(tokenKey(nil, tok), true, func() (authnv1.TokenReviewStatus, time.Duration, error) {
		tr, err := s.rev.TokenReview(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: tok}})
		if err != nil {
			return authnv1.TokenReviewStatus{}, 0, err
		}
		return tr.Status, s.auth.tokenTTL, nil // authenticated or not, both kept
	})
	if err != nil {
		return nil, fmt.Errorf("tokenreview: %w", err)
	}
	if !st.Authenticated {
		return nil, fmt.Errorf("token not authenticated: %s", st.Error)
	}
	u := &user{name: st.User.Username, uid: st.User.UID, groups: st.User.Groups, extra: map[string]authzv1.ExtraValue{}}
	for k, v := range st.User.Extra {
		u.extra[k] = authzv1.ExtraValue(v)
	}
	return u, nil
}

func verbFor(method string) string {
	switch method {
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	default:
		return "get"
	}
}

// subresourceFor maps paths as the kubelet's auth.go does (only what we serve).
func subresourceFor(path string) string {
	if path == "/checkpoint" || strings.HasPrefix(path, "/checkpoint/") {
		return "checkpoint"
	}
	return "proxy"
}

// authorize: a SubjectAccessReview for nodes/<sub> of this node, its answer
// kept as the kubelet's webhook authorizer keeps it (authcache.go).
func (s *Server) authorize(ctx context.Context, u *user, verb, sub string) (authzv1.SubjectAccessReviewStatus, error) {
	spec := authzv1.SubjectAccessReviewSpec{
		User: u.name, UID: u.uid, Groups: u.groups, Extra: u.extra,
		ResourceAttributes: &authzv1.ResourceAttributes{
			Verb: verb, Resource: "nodes", Subresource: sub, Name: s.cfg.NodeName, Version: "v1",
		},
	}
	key, err := reviewKey(&spec)
	if err != nil {
		return authzv1.SubjectAccessReviewStatus{}, err
	}
	st, _, err := s.auth.reviews.Do(key, false, func() (authzv1.SubjectAccessReviewStatus, time.Duration, error) {
		sar, err := s.rev.SubjectAccessReview(ctx, &authzv1.SubjectAccessReview{Spec: spec})
		if err != nil {
			return authzv1.SubjectAccessReviewStatus{}, 0, err
		}
		if sar.Status.Allowed {
			return sar.Status, s.auth.allowTTL, nil
		}
		return sar.Status, s.auth.denyTTL, nil
	})
	return st, err
}

func (s *Server) kubeletAPI(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	ctx := r.Context()
	u, err := s.authenticate(ctx, r)
	if err != nil {
		info.note = err.Error()
		plain(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	info.user = u.name
	verb, sub := verbFor(r.Method), subresourceFor(r.URL.Path)
	sar, err := s.authorize(ctx, u, verb, sub)
	if err != nil {
		info.note = "subjectaccessreview: " + err.Error()
		plain(w, http.StatusInternalServerError, fmt.Sprintf("Authorization error (user=%s, verb=%s, resource=%s, subresource=%s)", u.name, verb, "nodes", sub))
		return
	}
	if !sar.Allowed {
		info.note = "denied: " + sar.Reason
		plain(w, http.StatusForbidden, fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=%s, subresource=%s)", u.name, verb, "nodes", sub))
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) != 4 || parts[0] != "checkpoint" || parts[1] == "" || parts[2] == "" || parts[3] == "" {
		plain(w, http.StatusNotFound, "404 page not found")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		plain(w, http.StatusMethodNotAllowed, "405: Method Not Allowed")
		return
	}
	s.checkpoint(w, r, info, parts[1], parts[2], parts[3])
}

func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request, info *reqInfo, ns, podName, ctr string) {
	ctx := r.Context()
	failed := func(cause string) {
		plain(w, http.StatusInternalServerError, fmt.Sprintf("checkpointing of %s/%s/%s failed (%s)", ns, podName, ctr, cause))
	}
	pod, err := s.cfg.Client.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (err == nil && pod.Spec.NodeName != s.cfg.NodeName) {
		plain(w, http.StatusNotFound, "pod does not exist")
		return
	}
	if err != nil {
		info.note = "pod get: " + err.Error()
		failed("stand-in: cannot read the pod from the API server: " + err.Error())
		return
	}
	var spec *corev1.Container
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == ctr {
				spec = &list[i]
			}
		}
	}
	if spec == nil {
		for i := range pod.Spec.EphemeralContainers {
			if pod.Spec.EphemeralContainers[i].Name == ctr {
				c := corev1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
				spec = &c
			}
		}
	}
	if spec == nil {
		plain(w, http.StatusNotFound, fmt.Sprintf("container %s does not exist", ctr))
		return
	}
	var timeout int64
	if q := r.URL.Query().Get("timeout"); q != "" {
		if timeout, err = strconv.ParseInt(q, 10, 64); err != nil {
			plain(w, http.StatusNotFound, "cannot parse value of timeout parameter")
			return
		}
	}
	// The kubelet's CRI client raises any timeout below its runtime request
	// timeout (2 min) to that default: only the caller's deadline enforces less.
	if timeout > 0 && timeout < CRIMinTimeoutSeconds {
		timeout = CRIMinTimeoutSeconds
	}
	// The kubelet names the archive when the request arrives.
	requested := time.Now()
	// The kubelet only finds running containers (kubelet.go findContainer).
	var status *corev1.ContainerStatus
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for i := range list {
			if list[i].Name == ctr {
				status = &list[i]
			}
		}
	}
	if status == nil || status.State.Running == nil {
		failed(fmt.Sprintf("container %s not found", ctr))
		return
	}

	f := MergeFaults(s.faults.take(), pod.Annotations)
	if f.Hang {
		info.note = "fault: hang"
		select {
		case <-ctx.Done():
			info.note = "fault: hang; client gave up"
		case <-s.shutdown:
			info.note = "fault: hang; shutdown"
		}
		return // no answer at all
	}
	if f.DelaySeconds > 0 {
		d := time.Duration(f.DelaySeconds) * time.Second
		info.note = fmt.Sprintf("fault: delay %ds", f.DelaySeconds)
		// the runtime honours the timeout: CRIU is aborted past it
		if timeout > 0 && f.DelaySeconds > timeout {
			d = time.Duration(timeout) * time.Second
		}
		deadline := time.Now().Add(d)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			info.note += "; client gave up"
			if !f.NoLate && !(timeout > 0 && f.DelaySeconds > timeout) && f.Fail == "" {
				// The runtime does not stop: the archive appears when it is done.
				info.note += "; archive written late"
				go s.lateArchive(pod, spec, status, ns, podName, ctr, requested, deadline, f)
			}
			return
		case <-s.shutdown:
			return
		}
		if timeout > 0 && f.DelaySeconds > timeout {
			failed("rpc error: code = DeadlineExceeded desc = context deadline exceeded")
			return
		}
	}
	switch f.Fail {
	case "500", "true":
		info.note = "fault: fail"
		failed("rpc error: code = Unknown desc = CRIU binary not found or too old")
		return
	case "unimplemented":
		info.note = "fault: fail unimplemented"
		failed("rpc error: code = Unimplemented desc = method CheckpointContainer not implemented")
		return
	}

	if f.DiskFull {
		info.note = "fault: disk-full"
		failed(fmt.Sprintf("rpc error: code = Unknown desc = failed to write checkpoint archive: write %s: no space left on device",
			CheckpointsPath(s.cfg.CheckpointsDir, podName, ns, ctr, requested)))
		return
	}
	path, sum, size, werr := s.writeArchive(pod, spec, status, ns, podName, ctr, requested, f)
	if werr != nil {
		failed("rpc error: code = Unknown desc = " + werr.Error())
		return
	}
	if f.Truncate {
		info.note = "fault: truncate"
	}
	info.archive, info.sha256, info.size = path, sum, size
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(struct {
		Items []string `json:"items"`
	}{Items: []string{path}})
}

// CRIMinTimeoutSeconds is the kubelet's runtime request timeout: smaller
// checkpoint timeouts are raised to it (pkg/kubelet/cri/remote).
const CRIMinTimeoutSeconds = 120

// CheckpointsPath is where the archive named at time t would go.
func CheckpointsPath(dir, pod, ns, ctr string, t time.Time) string {
	return dir + "/" + ArchiveName(pod, ns, ctr, t.Truncate(time.Second))
}

// lateArchive is the runtime finishing after the client went away.
func (s *Server) lateArchive(pod *corev1.Pod, spec *corev1.Container, status *corev1.ContainerStatus,
	ns, podName, ctr string, requested, done time.Time, f Faults) {
	select {
	case <-time.After(time.Until(done)):
	case <-s.shutdown:
		return
	}
	path, sum, size, err := s.writeArchive(pod, spec, status, ns, podName, ctr, requested, f)
	rec := Record{Time: time.Now().UTC(), Node: s.cfg.NodeName, Method: "LATE",
		Path: "/checkpoint/" + ns + "/" + podName + "/" + ctr, Note: "late archive after the client gave up",
		Archive: path, SHA256: sum, SizeBytes: size}
	if err != nil {
		rec.Note += ": " + err.Error()
	}
	s.record(rec)
}

// writeArchive writes the archive named at `requested`; path, sha256, size.
func (s *Server) writeArchive(pod *corev1.Pod, spec *corev1.Container, status *corev1.ContainerStatus,
	ns, podName, ctr string, requested time.Time, f Faults) (string, string, int64, error) {
	now := time.Now()
	file, path, _, err := CreateArchiveFile(s.cfg.CheckpointsDir, podName, ns, ctr, requested)
	if err != nil {
		return "", "", 0, err
	}
	size := s.cfg.PayloadBytes
	if f.SizeBytes >= 0 {
		size = f.SizeBytes
	}
	a := &ArchiveSpec{
		Namespace: ns, Pod: podName, PodUID: string(pod.UID), Container: ctr,
		ContainerID: strings.TrimPrefix(strings.TrimPrefix(status.ContainerID, "containerd://"), "cri-o://"),
		Image:       spec.Image, ImageRef: status.ImageID, Command: append(append([]string(nil), spec.Command...), spec.Args...),
		CreatedTime: pod.CreationTimestamp.Time.UTC(), CheckpointedTime: now.UTC(), PayloadBytes: size,
	}
	if a.ContainerID == "" {
		h := sha256.Sum256([]byte(string(pod.UID) + "/" + ctr))
		a.ContainerID = hex.EncodeToString(h[:])
	}
	if status.State.Running != nil && !status.State.Running.StartedAt.IsZero() {
		a.CreatedTime = status.State.Running.StartedAt.Time.UTC()
	}
	if a.ImageRef == "" {
		h := sha256.Sum256([]byte(spec.Image))
		a.ImageRef = "sha256:" + hex.EncodeToString(h[:])
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(file, h)}
	werr := WriteArchive(cw, a)
	sum, size := hex.EncodeToString(h.Sum(nil)), cw.n
	if werr == nil && f.Truncate {
		size = cw.n / 2
		if werr = file.Truncate(size); werr == nil {
			sum, werr = fileSHA256(path)
		}
	}
	if cerr := file.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(path)
		return "", "", 0, werr
	}
	return path, sum, size, nil
}

// adminAllowed: client certificate of group system:masters, or X-Admin-Token.
func (s *Server) adminAllowed(r *http.Request) (string, bool) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		c := r.TLS.VerifiedChains[0][0]
		for _, o := range c.Subject.Organization {
			if o == "system:masters" {
				return c.Subject.CommonName, true
			}
		}
	}
	tok := r.Header.Get("X-Admin-Token")
	if s.cfg.AdminToken != "" && tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.AdminToken)) == 1 {
		return "admin-token", true
	}
	return "", false
}

func (s *Server) admin(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	who, ok := s.adminAllowed(r)
	if !ok {
		plain(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	info.user = who
	switch {
	case r.URL.Path == "/admin/faults" && r.Method == http.MethodGet:
		writeJSON(w, s.faults.get())
	case r.URL.Path == "/admin/faults" && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		var nf NodeFaults
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&nf); err != nil {
			plain(w, http.StatusBadRequest, "bad fault JSON: "+err.Error())
			return
		}
		if err := ValidateFaults(nf.Faults); err != nil {
			plain(w, http.StatusBadRequest, err.Error())
			return
		}
		if nf.Count < 0 {
			plain(w, http.StatusBadRequest, "count must be >= 0")
			return
		}
		s.faults.set(nf)
		info.note = fmt.Sprintf("faults=%v count=%d", nf.Faults, nf.Count)
		writeJSON(w, s.faults.get())
	case r.URL.Path == "/admin/faults" && r.Method == http.MethodDelete:
		s.faults.set(NodeFaults{})
		writeJSON(w, s.faults.get())
	case r.URL.Path == "/admin/requests" && r.Method == http.MethodGet:
		var since int64
		if v := r.URL.Query().Get("since"); v != "" {
			since, _ = strconv.ParseInt(v, 10, 64)
		}
		s.mu.Lock()
		out := make([]Record, 0, len(s.records))
		for _, rec := range s.records {
			if rec.Seq > since {
				out = append(out, rec)
			}
		}
		s.mu.Unlock()
		writeJSON(w, out)
	default:
		plain(w, http.StatusNotFound, "404 page not found")
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

// TLSConfig: serving cert; client certs verified against the cluster CA if sent.
func TLSConfig(cfg Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(cfg.ClientCAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", cfg.ClientCAFile)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

// Run serves until ctx is done, then shuts down (hanging requests are released).
func (s *Server) Run(ctx context.Context) error {
	tc, err := TLSConfig(s.cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, TLSConfig: tc, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(os.Stderr, "http: ", log.LstdFlags)}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	log.Printf("event=listening node=%s addr=%s checkpoints=%s", s.cfg.NodeName, s.cfg.Addr, s.cfg.CheckpointsDir)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.once.Do(func() { close(s.shutdown) })
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if s.logf != nil {
		_ = s.logf.Close()
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
