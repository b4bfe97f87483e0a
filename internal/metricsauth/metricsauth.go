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

// Package metricsauth guards the metrics endpoint the way the Kubernetes API
// guards itself: a request needs a bearer token that the API authenticates
// (TokenReview) and an identity that RBAC allows to get the path
// (SubjectAccessReview on a non-resource URL). Scrapers are granted that by the
// metrics-reader ClusterRole.
//
// Anyone who reaches the port can send tokens, so reviews are a cost an
// outsider controls. Answers are cached (bounded in count, by a hash of the
// token, never the token), and the reviews themselves have a budget of their
// own: a rate, a bound on those in flight, and a client whose rate limiter and
// connection are not the manager's. A request that would exceed the budget is
// refused at once with 429 instead of waiting, so random tokens cost the API
// server at most the budget and never delay a reconcile.
//
// controller-runtime offers authentication and authorization through the API
// server's own delegating authenticator and authorizer; that links most of
// k8s.io/apiserver into the manager, 20 MB of binary, much of it resident, for
// two API calls and a cache, and has no budget.
package metricsauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/client-go/rest"
	realclock "k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// How long answers are trusted. A token is trusted as long as the API
// server's own cache of webhook token answers trusts it by default (2 minutes,
// kube-apiserver --authentication-token-webhook-cache-ttl): a Prometheus
// scraping every 30 s costs one TokenReview per 4 scrapes, and a deleted
// ServiceAccount keeps reading metrics for 2 minutes at most. A rejected token is
// remembered briefly (the API server's delegating authenticator's 10 s), so a
// scraper whose token is fixed recovers fast; against random tokens no negative
// cache helps, the budget does. Authorization answers are kept as
// controller-runtime's metrics filter and the API server's webhook authorizer
// keep them: 5 minutes allowed, 30 seconds denied.
const (
	AuthenticatedTTL   = 2 * time.Minute
	UnauthenticatedTTL = 10 * time.Second
	AllowedTTL         = 5 * time.Minute
	DeniedTTL          = 30 * time.Second
	// reviewTimeout bounds each review request.
	reviewTimeout = 10 * time.Second
	// cacheSize bounds each of the three caches (accepted tokens, rejected
	// tokens, authorization answers); rejected tokens have a cache of their
	// own so that they never evict a scraper's accepted one.
	cacheSize = 1024
)

// Defaults of the review budget (flags --metrics-auth-review-qps,
// --metrics-auth-review-burst and --metrics-auth-max-reviews-in-flight). A
// Prometheus needs one TokenReview and one SubjectAccessReview per
// AuthenticatedTTL; five per second leave room for many scrapers and a
// restart's burst, and cost the API server 1 % of the 504 per second that
// random tokens caused without a budget.
const (
	DefaultReviewQPS          = 5
	DefaultReviewBurst        = 10
	DefaultMaxReviewsInFlight = 4
)

// Options is the review budget.
type Options struct {
	// ReviewQPS and ReviewBurst are the rate of TokenReviews and
	// SubjectAccessReviews together.
	ReviewQPS   float64
	ReviewBurst int
	// MaxReviewsInFlight bounds the reviews waiting for the API server.
	MaxReviewsInFlight int
}

func (o Options) withDefaults() Options {
	if o.ReviewQPS <= 0 {
		o.ReviewQPS = DefaultReviewQPS
	}
	if o.ReviewBurst <= 0 {
		o.ReviewBurst = DefaultReviewBurst
	}
	if o.MaxReviewsInFlight <= 0 {
		o.MaxReviewsInFlight = DefaultMaxReviewsInFlight
	}
	return o
}

// errBudget is returned when a review would exceed the budget.
var errBudget = errors.New("metrics review budget exhausted")

var (
	reviews = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenmint_metrics_auth_reviews_total",
		Help: "TokenReviews and SubjectAccessReviews made for metrics requests, by kind.",
	}, []string{"kind"})
	refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenmint_metrics_auth_refused_total",
		Help: "Metrics requests refused with 429 because a review would exceed its budget, by reason (rate, in_flight).",
	}, []string{"reason"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(reviews, refused)
}

// Reviewer authenticates and authorizes requests through the Kubernetes API,
// caching answers by a hash of the token (tokens are never kept or logged).
type Reviewer struct {
	// Client creates TokenReviews and SubjectAccessReviews.
	Client   client.Client
	clock    realclock.PassiveClock
	accepted *utilcache.LRUExpireCache
	rejected *utilcache.LRUExpireCache
	authz    *utilcache.LRUExpireCache
	limiter  *rate.Limiter
	inFlight chan struct{}
	group    singleflight.Group
}

// NewReviewer returns a Reviewer with the budget of opts (zero fields take
// the defaults); clock is nil for the real one.
func NewReviewer(c client.Client, opts Options, clock realclock.PassiveClock) *Reviewer {
	if clock == nil {
		clock = realclock.RealClock{}
	}
	opts = opts.withDefaults()
	return &Reviewer{Client: c, clock: clock,
		accepted: utilcache.NewLRUExpireCacheWithClock(cacheSize, clock),
		rejected: utilcache.NewLRUExpireCacheWithClock(cacheSize, clock),
		authz:    utilcache.NewLRUExpireCacheWithClock(cacheSize, clock),
		limiter:  rate.NewLimiter(rate.Limit(opts.ReviewQPS), opts.ReviewBurst),
		inFlight: make(chan struct{}, opts.MaxReviewsInFlight),
	}
}

// ReviewConfig derives from base the configuration of the review client: its
// own connection and a client-side rate limit of the review budget, never the
// manager's limiter, so that reviews neither spend --kube-api-qps nor wait
// behind reconciles.
func ReviewConfig(base *rest.Config, opts Options) *rest.Config {
	opts = opts.withDefaults()
	cfg := rest.CopyConfig(base)
	cfg.RateLimiter = nil
	cfg.QPS, cfg.Burst = float32(opts.ReviewQPS), opts.ReviewBurst
	cfg.Timeout = reviewTimeout
	return cfg
}

// FilterProvider returns a metricsserver.Options.FilterProvider whose reviews
// go through a client built from ReviewConfig(base, opts); it ignores the
// manager's configuration and HTTP client that controller-runtime passes.
func FilterProvider(base *rest.Config, opts Options) func(*rest.Config, *http.Client) (metricsserver.Filter, error) {
	return func(*rest.Config, *http.Client) (metricsserver.Filter, error) {
		cfg := ReviewConfig(base, opts)
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			return nil, fmt.Errorf("creating the metrics endpoint's review HTTP client: %w", err)
		}
		scheme := runtime.NewScheme()
		if err := authenticationv1.AddToScheme(scheme); err != nil {
			return nil, err
		}
		if err := authorizationv1.AddToScheme(scheme); err != nil {
			return nil, err
		}
		// A fixed mapping of the two kinds: no discovery requests.
		mapper := meta.NewDefaultRESTMapper(nil)
		mapper.Add(authenticationv1.SchemeGroupVersion.WithKind("TokenReview"), meta.RESTScopeRoot)
		mapper.Add(authorizationv1.SchemeGroupVersion.WithKind("SubjectAccessReview"), meta.RESTScopeRoot)
		c, err := client.New(cfg, client.Options{HTTPClient: hc, Scheme: scheme, Mapper: mapper})
		if err != nil {
			return nil, fmt.Errorf("creating the metrics endpoint's review client: %w", err)
		}
		return NewReviewer(c, opts, nil).Filter, nil
	}
}

// Filter wraps handler: 401 without a token the API authenticates, 403 for an
// identity not allowed to get the path, 429 when a review would exceed the
// budget, 500 when the API cannot answer.
func (r *Reviewer) Filter(log logr.Logger, handler http.Handler) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		token, ok := bearerToken(req)
		if !ok {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		ctx, cancel := context.WithTimeout(req.Context(), reviewTimeout)
		defer cancel()
		user, err := r.authenticate(ctx, sha256.Sum256([]byte(token)), token)
		if errors.Is(err, errBudget) {
			tooManyRequests(w)
			return
		}
		if err != nil {
			log.Error(err, "authenticating a metrics request")
			http.Error(w, "Authentication failed", http.StatusInternalServerError)
			return
		}
		if user == nil {
			log.V(4).Info("metrics request with a token the API does not accept")
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		verb := strings.ToLower(req.Method)
		allowed, err := r.authorize(ctx, user, verb, req.URL.Path)
		if errors.Is(err, errBudget) {
			tooManyRequests(w)
			return
		}
		if err != nil {
			log.Error(err, "authorizing a metrics request", "user", user.Username)
			http.Error(w, "Authorization for user "+user.Username+" failed", http.StatusInternalServerError)
			return
		}
		if !allowed {
			log.V(4).Info("metrics request denied", "user", user.Username, "verb", verb, "path", req.URL.Path)
			http.Error(w, "Authorization denied for user "+user.Username, http.StatusForbidden)
			return
		}
		handler.ServeHTTP(w, req)
	}), nil
}

func tooManyRequests(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	http.Error(w, "Too many metrics requests to review", http.StatusTooManyRequests)
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(req *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(req.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return "", false
	}
	return token, true
}

// review runs create within the budget, or returns errBudget at once: no
// request waits for a rate token or a slot.
func (r *Reviewer) review(ctx context.Context, kind string, create func(context.Context) error) error {
	select {
	case r.inFlight <- struct{}{}:
		defer func() { <-r.inFlight }()
	default:
		refused.WithLabelValues("in_flight").Inc()
		return errBudget
	}
	if !r.limiter.AllowN(r.clock.Now(), 1) {
		refused.WithLabelValues("rate").Inc()
		return errBudget
	}
	reviews.WithLabelValues(kind).Inc()
	return create(ctx)
}

// authenticate returns who the token belongs to, or nil when the API does not
// accept it. Concurrent requests with one token share one review.
func (r *Reviewer) authenticate(ctx context.Context, key [32]byte, token string) (*authenticationv1.UserInfo, error) {
	if v, ok := r.accepted.Get(key); ok {
		return v.(*authenticationv1.UserInfo), nil
	}
	if _, ok := r.rejected.Get(key); ok {
		return nil, nil
	}
	v, err, _ := r.group.Do("authn\x00"+string(key[:]), func() (any, error) {
		// A review that ended since the lookup above has cached its answer.
		if v, ok := r.accepted.Get(key); ok {
			return v, nil
		}
		if _, ok := r.rejected.Get(key); ok {
			return (*authenticationv1.UserInfo)(nil), nil
		}
		tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
		err := r.review(ctx, "TokenReview", func(ctx context.Context) error { return r.Client.Create(ctx, tr) })
		if errors.Is(err, errBudget) {
			return nil, err
		}
		if err != nil {
			// The API's errors about a review never quote the token.
			return nil, fmt.Errorf("creating TokenReview: %w", err)
		}
		if !tr.Status.Authenticated {
			r.rejected.Add(key, struct{}{}, UnauthenticatedTTL)
			return (*authenticationv1.UserInfo)(nil), nil
		}
		user := tr.Status.User.DeepCopy()
		r.accepted.Add(key, user, AuthenticatedTTL)
		return user, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*authenticationv1.UserInfo), nil
}

// authzKey identifies an authorization question: a hash of the identity as the
// SubjectAccessReview states it (user, UID, groups, extra) and the request.
// Extra is part of it because an authorizer may decide on it.
func authzKey(user *authenticationv1.UserInfo, verb, path string) [32]byte {
	h := sha256.New()
	field := func(s string) { fmt.Fprintf(h, "%d:%s", len(s), s) }
	field(user.Username)
	field(user.UID)
	groups := slices.Sorted(slices.Values(user.Groups))
	fmt.Fprintf(h, "g%d", len(groups))
	for _, g := range groups {
		field(g)
	}
	names := make([]string, 0, len(user.Extra))
	for name := range user.Extra {
		names = append(names, name)
	}
	slices.Sort(names)
	fmt.Fprintf(h, "e%d", len(names))
	for _, name := range names {
		field(name)
		fmt.Fprintf(h, "v%d", len(user.Extra[name]))
		for _, v := range user.Extra[name] {
			field(v)
		}
	}
	field(verb)
	field(path)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// authorize asks whether user may verb the non-resource URL path.
func (r *Reviewer) authorize(ctx context.Context, user *authenticationv1.UserInfo, verb, path string) (bool, error) {
	k := authzKey(user, verb, path)
	if v, ok := r.authz.Get(k); ok {
		return v.(bool), nil
	}
	v, err, _ := r.group.Do("authz\x00"+string(k[:]), func() (any, error) {
		if v, ok := r.authz.Get(k); ok {
			return v, nil
		}
		extra := map[string]authorizationv1.ExtraValue{}
		for name, v := range user.Extra {
			extra[name] = authorizationv1.ExtraValue(v)
		}
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: verb},
		}}
		err := r.review(ctx, "SubjectAccessReview", func(ctx context.Context) error { return r.Client.Create(ctx, sar) })
		if errors.Is(err, errBudget) {
			return false, err
		}
		if err != nil {
			return false, fmt.Errorf("creating SubjectAccessReview: %w", err)
		}
		ttl := DeniedTTL
		if sar.Status.Allowed {
			ttl = AllowedTTL
		}
		r.authz.Add(k, sar.Status.Allowed, ttl)
		return sar.Status.Allowed, nil
	})
	if err != nil {
		return false, err
	}
	return v.(bool), nil
}
