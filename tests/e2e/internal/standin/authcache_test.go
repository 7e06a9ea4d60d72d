package standin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
)

// fakeReviewer answers like the API server and counts what it was sent.
type fakeReviewer struct {
	tokenReviews, sars atomic.Int64
	fail               atomic.Bool   // the next reviews fail (API server down)
	delay              time.Duration // per review
}

func (f *fakeReviewer) TokenReview(_ context.Context, tr *authnv1.TokenReview) (*authnv1.TokenReview, error) {
	f.tokenReviews.Add(1)
	time.Sleep(f.delay)
	if f.fail.Load() {
		return nil, errors.New("connection refused")
	}
	out := tr.DeepCopy()
	switch tr.Spec.Token {
	case "alice-token":
		out.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: "alice", Groups: []string{"g"}}}
	case "bob-token":
		out.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: "bob"}}
	default:
		out.Status = authnv1.TokenReviewStatus{Error: "invalid bearer token"}
	}
	return out, nil
}

func (f *fakeReviewer) SubjectAccessReview(_ context.Context, sar *authzv1.SubjectAccessReview) (*authzv1.SubjectAccessReview, error) {
	f.sars.Add(1)
	if f.fail.Load() {
		return nil, errors.New("connection refused")
	}
	out := sar.DeepCopy()
	out.Status.Allowed = sar.Spec.User == "alice"
	if !out.Status.Allowed {
		out.Status.Reason = "no RBAC policy matched"
	}
	return out, nil
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newTestServer(t *testing.T, cfg Config) (*Server, *fakeReviewer, *fakeClock) {
	t.Helper()
	cfg.NodeName = "node-1"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeReviewer{}
	clk := &fakeClock{t: time.Unix(1700000000, 0)}
	s.rev = f
	s.auth = newAuthCaches(cfg, clk.now)
	return s, f, clk
}

func authn(t *testing.T, s *Server, tok string) (*user, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/checkpoint/ns/p/c", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return s.authenticate(context.Background(), r)
}

func TestKubeletDefaults(t *testing.T) {
	s, _, _ := newTestServer(t, Config{})
	if s.auth.tokenTTL != 2*time.Minute || s.auth.allowTTL != 5*time.Minute || s.auth.denyTTL != 30*time.Second {
		t.Errorf("ttls %v %v %v, want the kubelet's 2m 5m 30s", s.auth.tokenTTL, s.auth.allowTTL, s.auth.denyTTL)
	}
	s, _, _ = newTestServer(t, Config{TokenCacheTTL: -1, AuthorizedCacheTTL: 10 * time.Second, UnauthorizedCacheTTL: -1})
	if s.auth.tokenTTL != 0 || s.auth.allowTTL != 10*time.Second || s.auth.denyTTL != 0 {
		t.Errorf("ttls %v %v %v", s.auth.tokenTTL, s.auth.allowTTL, s.auth.denyTTL)
	}
}

func TestTokenReviewCached(t *testing.T) {
	s, f, clk := newTestServer(t, Config{})
	for i := 0; i < 5; i++ {
		u, err := authn(t, s, "alice-token")
		if err != nil || u.name != "alice" || len(u.groups) != 1 {
			t.Fatalf("%d: %+v %v", i, u, err)
		}
	}
	if n := f.tokenReviews.Load(); n != 1 {
		t.Errorf("%d TokenReviews for one token, want 1", n)
	}
	// another token is another key
	if u, err := authn(t, s, "bob-token"); err != nil || u.name != "bob" {
		t.Fatalf("%+v %v", u, err)
	}
	// a refused token is kept too, for the same TTL
	for i := 0; i < 3; i++ {
		if _, err := authn(t, s, "forged"); err == nil {
			t.Fatal("forged token accepted")
		}
	}
	if n := f.tokenReviews.Load(); n != 3 {
		t.Errorf("%d TokenReviews, want 3 (alice, bob, forged once each)", n)
	}
	clk.add(119 * time.Second)
	if _, err := authn(t, s, "alice-token"); err != nil {
		t.Fatal(err)
	}
	if n := f.tokenReviews.Load(); n != 3 {
		t.Errorf("reviewed again before 2m: %d", n)
	}
	clk.add(2 * time.Second)
	if _, err := authn(t, s, "alice-token"); err != nil {
		t.Fatal(err)
	}
	if _, err := authn(t, s, "forged"); err == nil {
		t.Fatal("forged token accepted")
	}
	if n := f.tokenReviews.Load(); n != 5 {
		t.Errorf("%d TokenReviews after 2m, want 5", n)
	}
}

func TestTokenReviewErrorNotCached(t *testing.T) {
	s, f, _ := newTestServer(t, Config{})
	f.fail.Store(true)
	for i := 0; i < 2; i++ {
		if _, err := authn(t, s, "alice-token"); err == nil {
			t.Fatal("authenticated without the API server")
		}
	}
	f.fail.Store(false)
	if _, err := authn(t, s, "alice-token"); err != nil {
		t.Fatal(err)
	}
	if n := f.tokenReviews.Load(); n != 3 {
		t.Errorf("%d TokenReviews, want 3: a failed review is not kept", n)
	}
}

func TestTokenReviewShared(t *testing.T) {
	s, f, _ := newTestServer(t, Config{})
	f.delay = 200 * time.Millisecond
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if u, err := authn(t, s, "alice-token"); err != nil || u.name != "alice" {
				t.Errorf("%+v %v", u, err)
			}
		}()
	}
	wg.Wait()
	if n := f.tokenReviews.Load(); n != 1 {
		t.Errorf("%d TokenReviews for 8 concurrent requests with one token, want 1", n)
	}
}

func TestTokenCacheOff(t *testing.T) {
	s, f, _ := newTestServer(t, Config{TokenCacheTTL: -1})
	for i := 0; i < 3; i++ {
		if _, err := authn(t, s, "alice-token"); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.tokenReviews.Load(); n != 3 {
		t.Errorf("%d TokenReviews with the cache off, want 3", n)
	}
}

func TestSubjectAccessReviewCached(t *testing.T) {
	s, f, clk := newTestServer(t, Config{})
	alice := &user{name: "alice", groups: []string{"g"}, extra: map[string]authzv1.ExtraValue{}}
	bob := &user{name: "bob", extra: map[string]authzv1.ExtraValue{}}
	check := func(u *user, sub string, want bool) {
		t.Helper()
		st, err := s.authorize(context.Background(), u, "create", sub)
		if err != nil || st.Allowed != want {
			t.Fatalf("%s %s: %+v %v, want allowed=%v", u.name, sub, st, err, want)
		}
	}
	for i := 0; i < 4; i++ {
		check(alice, "checkpoint", true)
		check(bob, "checkpoint", false)
	}
	if n := f.sars.Load(); n != 2 {
		t.Errorf("%d SubjectAccessReviews, want 2", n)
	}
	// every part of the spec is the key: another subresource, other groups, other extra
	check(alice, "proxy", true)
	check(&user{name: "alice", extra: map[string]authzv1.ExtraValue{}}, "checkpoint", true)
	check(&user{name: "alice", groups: []string{"g"}, extra: map[string]authzv1.ExtraValue{"k": {"v"}}}, "checkpoint", true)
	if n := f.sars.Load(); n != 5 {
		t.Errorf("%d SubjectAccessReviews, want 5", n)
	}
	// denied answers go after 30 s, allowed ones after 5 min
	clk.add(31 * time.Second)
	check(alice, "checkpoint", true)
	check(bob, "checkpoint", false)
	if n := f.sars.Load(); n != 6 {
		t.Errorf("%d SubjectAccessReviews after 31 s, want 6 (bob again)", n)
	}
	clk.add(270 * time.Second)
	check(alice, "checkpoint", true)
	if n := f.sars.Load(); n != 7 {
		t.Errorf("%d SubjectAccessReviews after 5 min, want 7 (alice again)", n)
	}
	// a failed review is not kept
	f.fail.Store(true)
	if _, err := s.authorize(context.Background(), &user{name: "carol"}, "create", "checkpoint"); err == nil {
		t.Fatal("authorized without the API server")
	}
	f.fail.Store(false)
	check(&user{name: "carol"}, "checkpoint", false)
	if n := f.sars.Load(); n != 9 {
		t.Errorf("%d SubjectAccessReviews, want 9", n)
	}
}

func TestCacheBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	c := newTTLCache[int](clk.now)
	for i := 0; i < maxCacheEntries+10; i++ {
		key := []byte{byte(i), byte(i >> 8), byte(i >> 16)}
		if _, _, err := c.Do(key, false, func() (int, time.Duration, error) { return i, time.Minute, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.entries); n > maxCacheEntries {
		t.Errorf("%d entries, bound %d", n, maxCacheEntries)
	}
}
