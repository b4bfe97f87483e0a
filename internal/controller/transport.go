/*
Copyright 2026 The tokenmint Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controller

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/sharding"
)

// SourceFactory makes a watch source that feeds events to a handler; main wires
// it to the metadata-only cache.
type SourceFactory func(handler.EventHandler) source.Source

// MetadataSource returns a SourceFactory watching the metadata of gvk's objects
// through c, a metadata-only cache.
func MetadataSource(c cache.Cache, gvk schema.GroupVersionKind) SourceFactory {
	return func(h handler.EventHandler) source.Source {
		obj := &metav1.PartialObjectMetadata{}
		obj.SetGroupVersionKind(gvk)
		return source.Kind[client.Object](c, obj, h)
	}
}

// MaxTimeout is the longest call to an endpoint, whatever an issuer says.
const MaxTimeout = 60 * time.Second

// maxTransports bounds the HTTP clients kept at once: every distinct CA bundle
// (which any TokenIssuer author chooses) makes one, with its own connections.
const maxTransports = 256

// Transports hands out one HTTP client per distinct transport configuration (CA
// bundle, timeout, dial guard), so connections are reused across AccessTokens.
// It keeps the maxTransports most recently used; an evicted client's idle
// connections are closed.
type Transports struct {
	// Base lets tests inject the dialer and resolver; nil uses the system's.
	Base    *issuer.TransportConfig
	mu      sync.Mutex
	clients *lru.Cache
}

// NewTransports returns an empty Transports; base may be nil.
func NewTransports(base *issuer.TransportConfig) *Transports {
	clients := lru.NewWithEvictionFunc(maxTransports, func(_ lru.Key, v any) {
		v.(*http.Client).CloseIdleConnections()
	})
	return &Transports{Base: base, clients: clients}
}

// Get returns the client for spec, guarded against private destinations if
// asked, presenting the client certificate of clientCert (PEM certificate
// chain, then key) when it is not empty. A client certificate outside its
// validity period at now is refused: the endpoint would refuse the handshake
// with an error that does not say why.
func (t *Transports) Get(spec *tokensv1alpha1.IssuerSpec, guarded bool, now time.Time, clientCert ...[]byte) (*http.Client, error) {
	cfg := issuer.TransportConfig{}
	if t.Base != nil {
		cfg = *t.Base
	}
	cfg.CABundle = spec.CABundle
	cfg.GuardPrivateDestinations = guarded
	cfg.Timeout = 30 * time.Second
	if spec.Timeout != nil && spec.Timeout.Duration > 0 {
		// The apiserver admits at most MaxTimeout; an issuer stored before
		// that bound existed gets no more.
		cfg.Timeout = min(spec.Timeout.Duration, MaxTimeout)
	}
	sum := sha256.Sum256(spec.CABundle)
	key := fmt.Sprintf("%x/%v/%v", sum[:8], guarded, cfg.Timeout)
	if len(clientCert) == 2 {
		pair, err := tls.X509KeyPair(clientCert[0], clientCert[1])
		if err != nil {
			return nil, errors.New("the client certificate Secret does not hold a usable certificate and key (tls.crt, tls.key)")
		}
		if err := issuer.CheckValidity(pair.Leaf, now); err != nil {
			return nil, fmt.Errorf("the client certificate %w", err)
		}
		cfg.ClientCertificate = &pair
		h := sha256.New()
		h.Write(clientCert[0])
		h.Write(clientCert[1])
		key += fmt.Sprintf("/%x", h.Sum(nil)[:16])
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.clients.Get(key); ok {
		return c.(*http.Client), nil
	}
	c, err := issuer.NewHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	t.clients.Add(key, c)
	return c, nil
}

// IssuerLimiters is a token bucket per issuer shared by all its AccessTokens, so
// that thousands of tokens never flood one provider: its rate is the issuer's
// spec.rateLimit, else Rate and Burst (--issuer-rate-limit, --issuer-burst),
// which also cap a TokenIssuer's. The bucket gates the issuer's dispatch in
// Calls (see Admit), where the namespaces with calls waiting take turns, so
// each gets an equal share of it; a job's further calls (a revocation before a
// mint, several at deletion) take from it too (see Wait). When a provider
// answers 429, the namespace whose call got it waits for its Retry-After; the
// whole issuer waits only when a 429 comes for a second namespace while the
// first still waits (the provider limits the client, not one namespace's
// calls). The buckets run on Clock.
type IssuerLimiters struct {
	// Rate and Burst apply to issuers without spec.rateLimit; rate.Inf is no limit.
	Rate  rate.Limit
	Burst int
	Clock clock.Clock
	// Share, when set, returns the ranges this replica serves and the number
	// of ranges: with sharding, each issuer's rate and burst are scaled to
	// this replica's part (see sharding.ShareRate), so that the replicas
	// together keep to the issuer's rate.
	Share func() (held, total int)
	// Pauses, when set, shares every pause after a 429 with the other
	// replicas (see PauseBoard); Pause applies theirs here.
	Pauses PausePublisher

	mu       sync.Mutex
	limiters map[string]*issuerLimiter
}

// PausePublisher tells the other replicas that the issuer key is paused:
// namespace on it until namespaceUntil, the whole issuer until issuerUntil
// (zero: not the whole issuer).
type PausePublisher interface {
	Publish(key, namespace string, namespaceUntil, issuerUntil time.Time)
}

type issuerLimiter struct {
	bucket *rate.Limiter
	// rate and burst are the issuer's own, before this replica's share.
	rate  rate.Limit
	burst int
	// held and total are the share the bucket was last scaled to.
	held, total int
	pauseUntil  time.Time
	// namespaces holds, by namespace, until when it waits after a 429 it got;
	// entries go when their pause ends.
	namespaces map[string]time.Time
}

// NewIssuerLimiters returns limiters allowing perSecond calls with burst per
// issuer that sets no rate of its own; perSecond 0 or less is no limit.
func NewIssuerLimiters(perSecond float64, burst int, clk clock.Clock) *IssuerLimiters {
	r := rate.Inf
	if perSecond > 0 {
		r = rate.Limit(perSecond)
	}
	return &IssuerLimiters{Rate: r, Burst: max(1, burst), Clock: clk, limiters: map[string]*issuerLimiter{}}
}

func (l *IssuerLimiters) get(key string) *issuerLimiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	il, ok := l.limiters[key]
	if !ok {
		il = &issuerLimiter{bucket: rate.NewLimiter(l.Rate, l.Burst), rate: l.Rate, burst: l.Burst, held: -1,
			namespaces: map[string]time.Time{}}
		l.limiters[key] = il
	}
	return il
}

// bucket returns the issuer key's token bucket, scaled first to this
// replica's current share when it changed.
func (l *IssuerLimiters) bucket(key string, now time.Time) *rate.Limiter {
	il := l.get(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.scaleLocked(il, now)
	return il.bucket
}

// scaleLocked sets il's bucket to the issuer's rate and burst, scaled to this
// replica's share when sharing.
func (l *IssuerLimiters) scaleLocked(il *issuerLimiter, now time.Time) {
	r, burst := il.rate, il.burst
	held, total := 1, 1
	if l.Share != nil {
		held, total = l.Share()
		if r != rate.Inf {
			perSecond, b := sharding.ShareRate(float64(r), burst, held, total)
			r, burst = rate.Limit(perSecond), b
		}
	}
	if held == il.held && total == il.total && il.bucket.Limit() == r && il.bucket.Burst() == burst {
		return
	}
	il.held, il.total = held, total
	if il.bucket.Limit() != r {
		il.bucket.SetLimitAt(now, r)
	}
	if il.bucket.Burst() != burst {
		il.bucket.SetBurstAt(now, burst)
	}
}

// limitOf returns the rate and burst of an issuer of kind with spec's
// rateLimit: the defaults when it sets none, and for a TokenIssuer, which a
// tenant writes, never more than the defaults.
func (l *IssuerLimiters) limitOf(kind tokensv1alpha1.IssuerKind, spec *tokensv1alpha1.RateLimit) (rate.Limit, int) {
	if spec == nil {
		return l.Rate, l.Burst
	}
	perSecond, burst := spec.PerSecond()
	r := rate.Limit(perSecond)
	if kind != tokensv1alpha1.ClusterTokenIssuerKind && l.Rate != rate.Inf {
		r, burst = min(r, l.Rate), min(burst, l.Burst)
	}
	return r, burst
}

// Configure sets the rate of the issuer key, of kind, to what its spec's
// rateLimit asks for (see limitOf).
func (l *IssuerLimiters) Configure(key string, kind tokensv1alpha1.IssuerKind, spec *tokensv1alpha1.RateLimit) {
	if l == nil {
		return
	}
	r, burst := l.limitOf(kind, spec)
	il := l.get(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	il.rate, il.burst = r, burst
	l.scaleLocked(il, l.Clock.Now())
}

// Admit takes one call of the issuer's bucket at now for a job about to
// start, or returns how long until one is there (taking nothing).
func (l *IssuerLimiters) Admit(key string, now time.Time) time.Duration {
	bucket := l.bucket(key, now)
	if bucket.Limit() == rate.Inf {
		return 0
	}
	res := bucket.ReserveN(now, 1)
	if !res.OK() {
		return time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d
	}
	return 0
}

// admitted is the call a job was admitted with (see Admit): its first call to
// that issuer takes no more from the bucket.
type admitted struct {
	key  string
	used atomic.Bool
}

type admittedKey struct{}

// withAdmitted marks ctx as a job's admitted to the issuer key.
func withAdmitted(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, admittedKey{}, &admitted{key: key})
}

// ErrIssuerPaused is returned while an issuer is paused after a 429.
var ErrIssuerPaused = errors.New("the provider asked to slow down")

// Wait blocks until the issuer's bucket allows a call for namespace: at once
// for the first call of a job admitted to the issuer, on Clock otherwise.
// While the issuer, or the namespace on it, is paused after a 429 it returns a
// rate-limited error with the remaining pause instead.
func (l *IssuerLimiters) Wait(ctx context.Context, key, namespace string) error {
	il := l.get(key)
	now := l.Clock.Now()
	l.mu.Lock()
	pause := max(il.pauseUntil.Sub(now), il.namespaces[namespace].Sub(now))
	l.mu.Unlock()
	if pause > 0 {
		return &issuer.Error{Class: issuer.ClassRateLimited, RetryAfter: pause, Message: ErrIssuerPaused.Error()}
	}
	bucket := l.bucket(key, now)
	if bucket.Limit() == rate.Inf {
		return nil
	}
	if a, ok := ctx.Value(admittedKey{}).(*admitted); ok && a.key == key && a.used.CompareAndSwap(false, true) {
		return nil
	}
	res := bucket.ReserveN(now, 1)
	if !res.OK() {
		return &issuer.Error{Class: issuer.ClassRateLimited, RetryAfter: time.Second, Message: ErrIssuerPaused.Error()}
	}
	d := res.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	t := l.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		res.CancelAt(l.Clock.Now())
		return ctx.Err()
	}
}

// Observe pauses namespace on the issuer when err is a 429 carrying
// Retry-After, and the whole issuer when another namespace is paused too.
func (l *IssuerLimiters) Observe(key, namespace string, err error, now time.Time) {
	var ie *issuer.Error
	if !errors.As(err, &ie) || ie.Class != issuer.ClassRateLimited || ie.RetryAfter <= 0 {
		return
	}
	il := l.get(key)
	l.mu.Lock()
	until := now.Add(ie.RetryAfter)
	others := false
	for ns, t := range il.namespaces {
		switch {
		case !t.After(now):
			delete(il.namespaces, ns)
		case ns != namespace:
			others = true
		}
	}
	if until.After(il.namespaces[namespace]) {
		il.namespaces[namespace] = until
	}
	if others && until.After(il.pauseUntil) {
		il.pauseUntil = until
	}
	nsUntil, issuerUntil := il.namespaces[namespace], time.Time{}
	if il.pauseUntil.After(now) {
		issuerUntil = il.pauseUntil
	}
	l.mu.Unlock()
	if l.Pauses != nil {
		l.Pauses.Publish(key, namespace, nsUntil, issuerUntil)
	}
}

// Pause applies a pause another replica saw: namespace (if not empty) on the
// issuer key until namespaceUntil, the whole issuer until issuerUntil (if
// not zero). Pauses only ever grow here; they end on their own.
func (l *IssuerLimiters) Pause(key, namespace string, namespaceUntil, issuerUntil time.Time) {
	il := l.get(key)
	now := l.Clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if namespace != "" && namespaceUntil.After(now) && namespaceUntil.After(il.namespaces[namespace]) {
		il.namespaces[namespace] = namespaceUntil
	}
	if issuerUntil.After(il.pauseUntil) {
		il.pauseUntil = issuerUntil
	}
}

// Paused returns until when namespace, and the whole issuer key, are paused.
func (l *IssuerLimiters) Paused(key, namespace string) (namespaceUntil, issuerUntil time.Time) {
	il := l.get(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	return il.namespaces[namespace], il.pauseUntil
}
