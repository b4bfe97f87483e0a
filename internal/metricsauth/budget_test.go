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
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

func randomToken(t testing.TB) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "CANARY-RANDOM-" + hex.EncodeToString(b)
}

// An attacker's random tokens never hit a cache: what bounds them is the
// budget. 10,000 requests over two minutes cost at most the burst and the
// rate for two minutes, with the default budget. Run with -v for the figure.
func TestRandomTokensCostAtMostTheBudget(t *testing.T) {
	f := newFixture(t)
	const requests = 10_000
	const attack = 2 * time.Minute
	codes := map[int]int{}
	for i := range requests {
		if i > 0 {
			f.clock.Step(attack / requests)
		}
		code, body := f.get(t, "/metrics", "Bearer "+randomToken(t))
		codes[code]++
		if strings.Contains(body, "CANARY") {
			t.Fatalf("the answer quotes the token: %q", body)
		}
	}
	tr, sar := f.api.counts()
	limit := DefaultReviewBurst + int(DefaultReviewQPS*attack.Seconds())
	t.Logf("%d requests with random tokens over %v: %d TokenReviews, %d SubjectAccessReviews (budget %d/s, burst %d); answers %v",
		requests, attack, tr, sar, DefaultReviewQPS, DefaultReviewBurst, codes)
	if tr > limit || tr < limit-DefaultReviewBurst || sar != 0 {
		t.Fatalf("%d token and %d access reviews, want at most %d (and close to it) and 0", tr, sar, limit)
	}
	if codes[http.StatusUnauthorized] != tr || codes[http.StatusTooManyRequests] != requests-tr {
		t.Fatalf("answers %v: want 401 for each reviewed token, 429 for the rest", codes)
	}
	if strings.Contains(f.logs.String(), "CANARY") {
		t.Fatalf("a token appears in the log:\n%s", f.logs.String())
	}
}

// The same attack from 200 connections at one instant: the burst, no more.
func TestConcurrentRandomTokensCostAtMostTheBurst(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			for range 50 {
				f.get(t, "/metrics", "Bearer "+randomToken(t))
			}
		})
	}
	wg.Wait()
	if tr, _ := f.api.counts(); tr > DefaultReviewBurst || tr == 0 {
		t.Fatalf("10,000 concurrent requests made %d TokenReviews, want 1 to %d", tr, DefaultReviewBurst)
	}
}

// A scraper's token is reviewed once however often it comes, one after the
// other or all at once.
func TestOneTokenOneReview(t *testing.T) {
	f := newFixture(t)
	for range 1000 {
		if code, _ := f.get(t, "/metrics", "Bearer "+goodToken); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	if tr, sar := f.api.counts(); tr != 1 || sar != 1 {
		t.Fatalf("1,000 scrapes made %d token and %d access reviews, want 1 and 1", tr, sar)
	}

	api := &fakeAPI{gate: make(chan struct{})}
	f = newFixtureWith(t, api, Options{})
	var wg sync.WaitGroup
	codes := make(chan int, 1000)
	for range 1000 {
		wg.Go(func() {
			code, _ := f.get(t, "/metrics", "Bearer "+goodToken)
			codes <- code
		})
	}
	close(api.gate)
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusOK {
			t.Fatalf("a concurrent scrape got %d", code)
		}
	}
	if tr, sar := api.counts(); tr != 1 || sar != 1 {
		t.Fatalf("1,000 concurrent scrapes made %d token and %d access reviews, want 1 and 1", tr, sar)
	}
}

// A rejected token is not reviewed again until UnauthenticatedTTL has passed,
// by the injected clock, and rejections never evict an accepted token.
func TestRejectedTokenExpires(t *testing.T) {
	f := newFixture(t)
	const forged = "Bearer CANARY-FORGED-TOKEN"
	f.get(t, "/metrics", "Bearer "+goodToken)
	for range 5 {
		if code, _ := f.get(t, "/metrics", forged); code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", code)
		}
	}
	f.clock.Step(UnauthenticatedTTL)
	f.get(t, "/metrics", forged)
	if tr, _ := f.api.counts(); tr != 2 {
		t.Fatalf("within the TTL: %d token reviews, want 2 (the scraper's and the forged one's)", tr)
	}
	f.clock.Step(time.Millisecond) // just past the TTL
	if code, _ := f.get(t, "/metrics", forged); code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", code)
	}
	if tr, _ := f.api.counts(); tr != 3 {
		t.Fatalf("after the TTL: %d token reviews, want 3", tr)
	}

	// Fill the rejected cache twice over, with a budget that allows it
	// within the scraper's TTL.
	f = newFixtureWith(t, &fakeAPI{}, Options{ReviewQPS: 1000, ReviewBurst: 1000})
	f.get(t, "/metrics", "Bearer "+goodToken)
	for range 2 * cacheSize {
		f.clock.Step(time.Millisecond)
		if code, _ := f.get(t, "/metrics", "Bearer "+randomToken(t)); code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", code)
		}
	}
	before, _ := f.api.counts()
	if code, _ := f.get(t, "/metrics", "Bearer "+goodToken); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if tr, _ := f.api.counts(); tr != before {
		t.Fatal("rejected tokens evicted the scraper's accepted one")
	}
}

// Reviews waiting for the API server are bounded: one more is refused at
// once, not queued.
func TestReviewsInFlightAreBounded(t *testing.T) {
	api := &fakeAPI{entered: make(chan struct{}), gate: make(chan struct{})}
	f := newFixtureWith(t, api, Options{MaxReviewsInFlight: 2})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if code, _ := f.get(t, "/metrics", "Bearer "+randomToken(t)); code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", code)
			}
		})
	}
	<-api.entered
	<-api.entered
	if code, _ := f.get(t, "/metrics", "Bearer "+randomToken(t)); code != http.StatusTooManyRequests {
		t.Fatalf("a third review while two wait: status %d, want 429", code)
	}
	close(api.gate)
	wg.Wait()
	if tr, _ := api.counts(); tr != 2 {
		t.Fatalf("%d token reviews, want 2", tr)
	}
	api.entered = nil
	if code, _ := f.get(t, "/metrics", "Bearer "+goodToken); code != http.StatusOK {
		t.Fatalf("after the slots were freed: status %d, want 200", code)
	}
}

// A refused request says when to retry, and neither the answer, the log nor
// the endpoint's own metrics carry the token.
func TestRefusalCarriesNoToken(t *testing.T) {
	f := newFixtureWith(t, &fakeAPI{}, Options{ReviewBurst: 1})
	f.get(t, "/metrics", "Bearer "+randomToken(t))
	req, _ := http.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+goodToken)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 429 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var exposition strings.Builder
	found := false
	for _, mf := range families {
		found = found || mf.GetName() == "tokenmint_metrics_auth_refused_total"
		if _, err := expfmt.MetricFamilyToText(&exposition, mf); err != nil {
			t.Fatal(err)
		}
	}
	if !found {
		t.Fatal("tokenmint_metrics_auth_refused_total is not registered")
	}
	for _, where := range []string{rec.Body.String(), f.logs.String(), exposition.String()} {
		if strings.Contains(where, "CANARY") {
			t.Fatalf("a token appears in:\n%s", where)
		}
	}
}
