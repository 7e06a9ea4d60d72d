package standin

// The kubelet caches the answers of its authentication and authorization
// webhooks, and so does the stand-in, with the same defaults and keys, so that
// the API server sees from our tests the reviews a real node would send (one
// per token per 2 minutes, one per user and request kind per 5 minutes), not
// one pair per checkpoint. From the Kubernetes source (v1.36):
//
//   - cmd/kubelet/app/auth.go BuildAuthn/BuildAuthz: the kubelet builds
//     authenticatorfactory.DelegatingAuthenticatorConfig{CacheTTL:
//     authentication.webhook.cacheTTL} and authorizerfactory.DelegatingAuthorizerConfig{
//     AllowCacheTTL: authorization.webhook.cacheAuthorizedTTL, DenyCacheTTL:
//     authorization.webhook.cacheUnauthorizedTTL}.
//   - pkg/kubelet/apis/config/v1beta1/defaults.go SetDefaults_KubeletConfiguration:
//     cacheTTL 2m (flag --authentication-token-webhook-cache-ttl),
//     cacheAuthorizedTTL 5m (--authorization-webhook-cache-authorized-ttl),
//     cacheUnauthorizedTTL 30s (--authorization-webhook-cache-unauthorized-ttl).
//   - staging/src/k8s.io/apiserver/pkg/authentication/authenticatorfactory/delegating.go:
//     cache.New(tokenAuth, false, CacheTTL, CacheTTL): authenticated and
//     unauthenticated answers are both kept CacheTTL, errors are not kept.
//   - staging/src/k8s.io/apiserver/pkg/authentication/token/cache/cached_token_authenticator.go:
//     the key is the request's audiences and the token (newer versions hash
//     it); concurrent lookups of one key within 500 ms share one review.
//   - staging/src/k8s.io/apiserver/plugin/pkg/authorizer/webhook/webhook.go
//     Authorize: the key is json.Marshal of the SubjectAccessReview's spec
//     (user, uid, groups, extra, resource attributes); Allowed is kept for the
//     authorized TTL, anything else (denied, no opinion) for the unauthorized
//     TTL; a failed review is not kept.
//
// The stand-in keeps a SHA-256 of the key, never the token itself.

import (
	"crypto/sha256"
	"encoding/json"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
)

// The kubelet's defaults (pkg/kubelet/apis/config/v1beta1/defaults.go).
const (
	DefaultTokenCacheTTL        = 2 * time.Minute
	DefaultAuthorizedCacheTTL   = 5 * time.Minute
	DefaultUnauthorizedCacheTTL = 30 * time.Second
	// maxCacheEntries bounds each cache (the kubelet's token cache: 32 stripes
	// of 128 LRU entries; its authorizer's LRU: 8192).
	maxCacheEntries = 4096
)

// ttlOrDefault: 0 means the kubelet's default, negative means no caching.
func ttlOrDefault(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	if v < 0 {
		return 0
	}
	return v
}

type cacheEntry[V any] struct {
	val     V
	expires time.Time
}

// flight is one review in progress that later lookups of the key wait for.
type flight[V any] struct {
	done chan struct{}
	val  V
	ttl  time.Duration
	err  error
}

// ttlCache maps a key's SHA-256 to an answer until it expires; bounded;
// Do shares one computation among concurrent callers of a key.
type ttlCache[V any] struct {
	mu       sync.Mutex
	now      func() time.Time
	entries  map[[32]byte]cacheEntry[V]
	inflight map[[32]byte]*flight[V]
}

func newTTLCache[V any](now func() time.Time) *ttlCache[V] {
	return &ttlCache[V]{now: now, entries: map[[32]byte]cacheEntry[V]{}, inflight: map[[32]byte]*flight[V]{}}
}

// Do returns the cached answer for key, else runs compute and keeps its
// answer for the ttl it returns (0: not kept; an error is never kept). With
// share, concurrent callers of one key wait for one computation (the token
// cache does; the webhook authorizer does not). hit reports whether no
// review was made for this caller.
func (c *ttlCache[V]) Do(key []byte, share bool, compute func() (V, time.Duration, error)) (val V, hit bool, err error) {
	k := sha256.Sum256(key)
	c.mu.Lock()
	if e, ok := c.entries[k]; ok {
		if c.now().Before(e.expires) {
			c.mu.Unlock()
			return e.val, true, nil
		}
		delete(c.entries, k)
	}
	if f, ok := c.inflight[k]; ok {
		c.mu.Unlock()
		<-f.done
		return f.val, true, f.err
	}
	f := &flight[V]{done: make(chan struct{})}
	if share {
		c.inflight[k] = f
	}
	c.mu.Unlock()

	f.val, f.ttl, f.err = compute()

	c.mu.Lock()
	if share {
		delete(c.inflight, k)
	}
	if f.err == nil && f.ttl > 0 {
		if len(c.entries) >= maxCacheEntries {
			now := c.now()
			for ek, e := range c.entries {
				if !now.Before(e.expires) {
					delete(c.entries, ek)
				}
			}
			if len(c.entries) >= maxCacheEntries {
				c.entries = map[[32]byte]cacheEntry[V]{}
			}
		}
		c.entries[k] = cacheEntry[V]{val: f.val, expires: c.now().Add(f.ttl)}
	}
	c.mu.Unlock()
	close(f.done)
	return f.val, false, f.err
}

// authCaches are the kubelet's two webhook caches.
type authCaches struct {
	tokenTTL, allowTTL, denyTTL time.Duration
	tokens                      *ttlCache[authnv1.TokenReviewStatus]
	reviews                     *ttlCache[authzv1.SubjectAccessReviewStatus]
}

func newAuthCaches(cfg Config, now func() time.Time) *authCaches {
	if now == nil {
		now = time.Now
	}
	return &authCaches{
		tokenTTL: ttlOrDefault(cfg.TokenCacheTTL, DefaultTokenCacheTTL),
		allowTTL: ttlOrDefault(cfg.AuthorizedCacheTTL, DefaultAuthorizedCacheTTL),
		denyTTL:  ttlOrDefault(cfg.UnauthorizedCacheTTL, DefaultUnauthorizedCacheTTL),
		tokens:   newTTLCache[authnv1.TokenReviewStatus](now),
		reviews:  newTTLCache[authzv1.SubjectAccessReviewStatus](now),
	}
}

// tokenKey: the audiences and the token, as the kubelet's cache keys it.
func tokenKey(audiences []string, token string) []byte {
	b, _ := json.Marshal(audiences)
	return append(append(b, '|'), token...)
}

// reviewKey: the review's spec as JSON, as the webhook authorizer keys it.
func reviewKey(spec *authzv1.SubjectAccessReviewSpec) ([]byte, error) {
	return json.Marshal(spec)
}
