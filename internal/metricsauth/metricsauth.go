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
// controller-runtime offers the same through the API server's own delegating
// authenticator and authorizer; that links most of k8s.io/apiserver into the
// manager, 20 MB of binary, much of it resident, for two API calls and a cache.
package metricsauth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/client-go/rest"
	realclock "k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// How long answers are trusted, as the API server's delegated authentication
// and authorization trust them for controller-runtime's filter.
const (
	AuthenticatedTTL   = time.Minute
	UnauthenticatedTTL = 10 * time.Second
	AllowedTTL         = 5 * time.Minute
	DeniedTTL          = 30 * time.Second
	// reviewTimeout bounds each review request.
	reviewTimeout = 10 * time.Second
	cacheSize     = 1024
)

// Reviewer authenticates and authorizes requests through the Kubernetes API,
// caching answers by a hash of the token (tokens are never kept or logged).
type Reviewer struct {
	// Client creates TokenReviews and SubjectAccessReviews.
	Client client.Client
	authn  *utilcache.LRUExpireCache
	authz  *utilcache.LRUExpireCache
}

// NewReviewer returns a Reviewer; clock is nil for the real one.
func NewReviewer(c client.Client, clock utilcache.Clock) *Reviewer {
	if clock == nil {
		clock = realclock.RealClock{}
	}
	return &Reviewer{Client: c,
		authn: utilcache.NewLRUExpireCacheWithClock(cacheSize, clock),
		authz: utilcache.NewLRUExpireCacheWithClock(cacheSize, clock)}
}

// FilterProvider is a metricsserver.Options.FilterProvider.
func FilterProvider(cfg *rest.Config, hc *http.Client) (metricsserver.Filter, error) {
	scheme := runtime.NewScheme()
	if err := authenticationv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := authorizationv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{HTTPClient: hc, Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating the metrics endpoint's review client: %w", err)
	}
	return NewReviewer(c, nil).Filter, nil
}

// Filter wraps handler: 401 without a token the API authenticates, 403 for an
// identity not allowed to get the path, 500 when the API cannot answer.
func (r *Reviewer) Filter(log logr.Logger, handler http.Handler) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		token, ok := bearerToken(req)
		if !ok {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		ctx, cancel := context.WithTimeout(req.Context(), reviewTimeout)
		defer cancel()
		key := sha256.Sum256([]byte(token))
		user, err := r.authenticate(ctx, key, token)
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
		allowed, err := r.authorize(ctx, key, user, verb, req.URL.Path)
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

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(req *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(req.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return "", false
	}
	return token, true
}

// authenticate returns who the token belongs to, or nil when the API does not
// accept it.
func (r *Reviewer) authenticate(ctx context.Context, key [32]byte, token string) (*authenticationv1.UserInfo, error) {
	if v, ok := r.authn.Get(key); ok {
		return v.(*authenticationv1.UserInfo), nil
	}
	tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
	if err := r.Client.Create(ctx, tr); err != nil {
		// The API's errors about a review never quote the token.
		return nil, fmt.Errorf("creating TokenReview: %w", err)
	}
	if !tr.Status.Authenticated {
		r.authn.Add(key, (*authenticationv1.UserInfo)(nil), UnauthenticatedTTL)
		return nil, nil
	}
	user := tr.Status.User.DeepCopy()
	r.authn.Add(key, user, AuthenticatedTTL)
	return user, nil
}

type authzKey struct {
	token      [32]byte
	verb, path string
}

// authorize asks whether user may verb the non-resource URL path.
func (r *Reviewer) authorize(ctx context.Context, key [32]byte, user *authenticationv1.UserInfo, verb, path string) (bool, error) {
	k := authzKey{key, verb, path}
	if v, ok := r.authz.Get(k); ok {
		return v.(bool), nil
	}
	extra := map[string]authorizationv1.ExtraValue{}
	for name, v := range user.Extra {
		extra[name] = authorizationv1.ExtraValue(v)
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: verb},
	}}
	if err := r.Client.Create(ctx, sar); err != nil {
		return false, fmt.Errorf("creating SubjectAccessReview: %w", err)
	}
	ttl := DeniedTTL
	if sar.Status.Allowed {
		ttl = AllowedTTL
	}
	r.authz.Add(k, sar.Status.Allowed, ttl)
	return sar.Status.Allowed, nil
}
