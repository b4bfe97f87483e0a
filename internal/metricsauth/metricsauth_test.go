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
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

const (
	goodToken   = "CANARY-SCRAPER-TOKEN-7f3a"
	deniedToken = "CANARY-OTHER-TOKEN-91bc"
)

// fakeAPI answers reviews as an apiserver with two ServiceAccounts would:
// goodToken is the scraper, allowed to get /metrics; deniedToken is
// authenticated but has no role; any other token is not authenticated.
type fakeAPI struct {
	mu                          sync.Mutex
	tokenReviews, accessReviews int
	fail                        error
	lastSAR                     authorizationv1.SubjectAccessReviewSpec
	// entered, when set, is sent to as a review starts; gate, when set, holds
	// every review until it is closed.
	entered chan struct{}
	gate    chan struct{}
}

func (f *fakeAPI) counts() (tokenReviews, accessReviews int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenReviews, f.accessReviews
}

func (f *fakeAPI) client(t *testing.T) client.Client {
	scheme := runtime.NewScheme()
	if err := authenticationv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := authorizationv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
			if f.entered != nil {
				f.entered <- struct{}{}
			}
			if f.gate != nil {
				<-f.gate
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.fail != nil {
				return f.fail
			}
			switch o := obj.(type) {
			case *authenticationv1.TokenReview:
				f.tokenReviews++
				switch o.Spec.Token {
				case goodToken:
					o.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{
						Username: "system:serviceaccount:monitoring:prometheus", UID: "uid-p",
						Groups: []string{"system:serviceaccounts", "system:authenticated"},
						Extra:  map[string]authenticationv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"prom-0"}}}}
				case deniedToken:
					o.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{
						Username: "system:serviceaccount:default:nobody", Groups: []string{"system:authenticated"}}}
				default:
					o.Status = authenticationv1.TokenReviewStatus{Authenticated: false, Error: "invalid bearer token"}
				}
			case *authorizationv1.SubjectAccessReview:
				f.accessReviews++
				f.lastSAR = o.Spec
				na := o.Spec.NonResourceAttributes
				o.Status.Allowed = o.Spec.User == "system:serviceaccount:monitoring:prometheus" &&
					na != nil && na.Path == "/metrics" && na.Verb == "get" && o.Spec.ResourceAttributes == nil
			default:
				return errors.New("unexpected create")
			}
			return nil
		},
	}).Build()
}

type fixture struct {
	api   *fakeAPI
	clock *clocktesting.FakeClock
	h     http.Handler
	logs  *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	return newFixtureWith(t, &fakeAPI{}, Options{})
}

func newFixtureWith(t *testing.T, api *fakeAPI, opts Options) *fixture {
	f := &fixture{api: api, clock: clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), logs: &bytes.Buffer{}}
	var logMu sync.Mutex
	log := funcr.New(func(prefix, args string) {
		logMu.Lock()
		defer logMu.Unlock()
		f.logs.WriteString(prefix + args + "\n")
	}, funcr.Options{Verbosity: 10})
	var err error
	f.h, err = NewReviewer(f.api.client(t), opts, f.clock).Filter(log, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("tokenmint_metrics 1\n"))
	}))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) get(t *testing.T, path, authorization string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestFilterAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, path, authorization string
		want                      int
	}{
		{"allowed identity", "/metrics", "Bearer " + goodToken, http.StatusOK},
		{"scheme is case-insensitive", "/metrics", "bearer " + goodToken, http.StatusOK},
		{"no header", "/metrics", "", http.StatusUnauthorized},
		{"basic credentials", "/metrics", "Basic dXNlcjpwYXNz", http.StatusUnauthorized},
		{"empty bearer", "/metrics", "Bearer ", http.StatusUnauthorized},
		{"token the API rejects", "/metrics", "Bearer CANARY-FORGED-TOKEN", http.StatusUnauthorized},
		{"identity without the role", "/metrics", "Bearer " + deniedToken, http.StatusForbidden},
		{"allowed identity, other path", "/debug/pprof/", "Bearer " + goodToken, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			code, body := f.get(t, tc.path, tc.authorization)
			if code != tc.want {
				t.Fatalf("status %d, want %d (body %q)", code, tc.want, body)
			}
			if (code == http.StatusOK) != strings.Contains(body, "tokenmint_metrics") {
				t.Fatalf("metrics served with status %d: %q", code, body)
			}
			for _, canary := range []string{goodToken, deniedToken, "CANARY-FORGED-TOKEN"} {
				if strings.Contains(body, canary) || strings.Contains(f.logs.String(), canary) {
					t.Fatalf("a token appears in the answer or the log:\n%s\n%s", body, f.logs.String())
				}
			}
		})
	}
}

func TestAccessReviewCarriesTheIdentity(t *testing.T) {
	f := newFixture(t)
	if code, _ := f.get(t, "/metrics", "Bearer "+goodToken); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	s := f.api.lastSAR
	if s.User != "system:serviceaccount:monitoring:prometheus" || s.UID != "uid-p" ||
		!slices.Equal(s.Groups, []string{"system:serviceaccounts", "system:authenticated"}) ||
		!slices.Equal([]string(s.Extra["authentication.kubernetes.io/pod-name"]), []string{"prom-0"}) {
		t.Fatalf("review does not carry the authenticated identity: %+v", s)
	}
}

func TestAnswersAreCachedForTheirTTL(t *testing.T) {
	f := newFixture(t)
	for range 3 {
		f.get(t, "/metrics", "Bearer "+goodToken)
	}
	if f.api.tokenReviews != 1 || f.api.accessReviews != 1 {
		t.Fatalf("3 scrapes within a minute made %d token and %d access reviews, want 1 and 1", f.api.tokenReviews, f.api.accessReviews)
	}
	f.clock.Step(AuthenticatedTTL + time.Second)
	f.get(t, "/metrics", "Bearer "+goodToken)
	if f.api.tokenReviews != 2 || f.api.accessReviews != 1 {
		t.Fatalf("after the authentication TTL: %d token and %d access reviews, want 2 and 1", f.api.tokenReviews, f.api.accessReviews)
	}
	f.clock.Step(AllowedTTL)
	f.get(t, "/metrics", "Bearer "+goodToken)
	if f.api.accessReviews != 2 {
		t.Fatalf("after the allow TTL: %d access reviews, want 2", f.api.accessReviews)
	}

	// A denial is remembered for a shorter time than an allowance.
	f.get(t, "/metrics", "Bearer "+deniedToken)
	f.get(t, "/metrics", "Bearer "+deniedToken)
	if f.api.accessReviews != 3 {
		t.Fatalf("a repeated denied scrape made %d access reviews in all, want 3", f.api.accessReviews)
	}
	f.clock.Step(DeniedTTL + time.Second)
	f.get(t, "/metrics", "Bearer "+deniedToken)
	if f.api.accessReviews != 4 {
		t.Fatalf("after the deny TTL: %d access reviews, want 4", f.api.accessReviews)
	}

	// So is a rejected token.
	before := f.api.tokenReviews
	f.get(t, "/metrics", "Bearer CANARY-FORGED-TOKEN")
	f.get(t, "/metrics", "Bearer CANARY-FORGED-TOKEN")
	if f.api.tokenReviews != before+1 {
		t.Fatalf("a repeated rejected token made %d token reviews, want 1", f.api.tokenReviews-before)
	}
	f.clock.Step(UnauthenticatedTTL + time.Second)
	f.get(t, "/metrics", "Bearer CANARY-FORGED-TOKEN")
	if f.api.tokenReviews != before+2 {
		t.Fatalf("after the rejection TTL: %d token reviews, want 2", f.api.tokenReviews-before)
	}
}

func TestAPIErrorsAreServerErrorsAndNotCached(t *testing.T) {
	f := newFixture(t)
	f.api.fail = errors.New("connection refused")
	if code, body := f.get(t, "/metrics", "Bearer "+goodToken); code != http.StatusInternalServerError || strings.Contains(body, goodToken) {
		t.Fatalf("status %d body %q, want 500 without the token", code, body)
	}
	if !strings.Contains(f.logs.String(), "connection refused") || strings.Contains(f.logs.String(), goodToken) {
		t.Fatalf("log should give the cause without the token:\n%s", f.logs.String())
	}
	f.api.fail = nil
	if code, _ := f.get(t, "/metrics", "Bearer "+goodToken); code != http.StatusOK {
		t.Fatalf("after the API recovered: status %d, want 200", code)
	}
}
