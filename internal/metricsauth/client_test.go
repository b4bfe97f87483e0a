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

package metricsauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// managerLimiter stands for the manager's --kube-api-qps limiter: it counts
// what is asked of it.
type managerLimiter struct {
	mu    sync.Mutex
	calls int
}

func (l *managerLimiter) count() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
}
func (l *managerLimiter) TryAccept() bool                { l.count(); return true }
func (l *managerLimiter) Accept()                        { l.count() }
func (l *managerLimiter) Stop()                          {}
func (l *managerLimiter) QPS() float32                   { return 500 }
func (l *managerLimiter) Wait(ctx context.Context) error { l.count(); return nil }

// Reviews go through a client of their own: given a base configuration that
// carries the manager's limiter, and the manager's configuration and HTTP
// client as controller-runtime passes them, no review touches that limiter
// or asks for discovery.
func TestReviewsDoNotSpendTheManagersBudget(t *testing.T) {
	var mu sync.Mutex
	paths := []string{}
	api := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path+" "+r.Header.Get("Content-Type"))
		mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		obj, _, err := clientgoscheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
		w.Header().Set("Content-Type", "application/json")
		switch o := obj.(type) {
		case *authenticationv1.TokenReview:
			o.Status = authenticationv1.TokenReviewStatus{Authenticated: o.Spec.Token == goodToken,
				User: authenticationv1.UserInfo{Username: "system:serviceaccount:monitoring:prometheus"}}
			_ = json.NewEncoder(w).Encode(o)
		case *authorizationv1.SubjectAccessReview:
			o.Status.Allowed = true
			_ = json.NewEncoder(w).Encode(o)
		default:
			http.Error(w, fmt.Sprint(err), http.StatusNotFound)
		}
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api.Listener = l
	api.Start()
	defer api.Close()

	limiter := &managerLimiter{}
	manager := &rest.Config{Host: api.URL, QPS: 500, Burst: 1000, RateLimiter: limiter}
	managerHTTP, err := rest.HTTPClientFor(manager)
	if err != nil {
		t.Fatal(err)
	}
	filter, err := FilterProvider(manager, Options{})(manager, managerHTTP)
	if err != nil {
		t.Fatal(err)
	}
	h, err := filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+goodToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s %v", rec.Code, rec.Body, paths)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 2 {
		t.Fatalf("requests to the API: %v, want a TokenReview and a SubjectAccessReview only", paths)
	}
	if limiter.calls != 0 {
		t.Fatalf("the reviews asked the manager's limiter %d times", limiter.calls)
	}
	if manager.RateLimiter != limiter || manager.QPS != 500 {
		t.Fatalf("the manager's configuration was changed: %+v", manager)
	}
	cfg := ReviewConfig(manager, Options{})
	if cfg.RateLimiter != nil || cfg.QPS != DefaultReviewQPS || cfg.Burst != DefaultReviewBurst {
		t.Fatalf("review configuration: limiter %v, QPS %v, burst %d; want none shared, %v, %d",
			cfg.RateLimiter, cfg.QPS, cfg.Burst, DefaultReviewQPS, DefaultReviewBurst)
	}
}
