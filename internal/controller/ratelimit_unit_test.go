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
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// An issuer at 2 calls a second: its jobs start at that pace on the injected
// clock, whatever the concurrency allows, the namespaces waiting take turns,
// and a job's second call (a revocation before its mint) takes from the same
// bucket.
func TestIssuerRateGatesDispatchFairly(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(100000, 0))
	limits := NewIssuerLimiters(DefaultIssuerRate, DefaultIssuerBurst, clk)
	two := int32(2)
	limits.Configure("cti", tokensv1alpha1.ClusterTokenIssuerKind, &tokensv1alpha1.RateLimit{Calls: 2, Burst: &two})

	c := NewCalls(20, 20)
	c.Gate, c.Clock = limits, clk
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	var mu sync.Mutex
	var calls []time.Time
	var order []string
	call := func(jctx context.Context, ns string) error {
		if err := limits.Wait(jctx, "cti", ns); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, clk.Now())
		return nil
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(calls) }
	// One namespace queues 30 jobs first, another 10 after: the second is
	// served in turn, not after the first's 30.
	for i := range 30 {
		c.Submit(object("busy", fmt.Sprint("a", i)), "cti", func(jctx context.Context) (ctrl.Result, error) {
			mu.Lock()
			order = append(order, "busy")
			mu.Unlock()
			return ctrl.Result{}, call(jctx, "busy")
		})
	}
	for i := range 10 {
		c.Submit(object("quiet", fmt.Sprint("b", i)), "cti", func(jctx context.Context) (ctrl.Result, error) {
			mu.Lock()
			order = append(order, "quiet")
			mu.Unlock()
			if err := call(jctx, "quiet"); err != nil {
				return ctrl.Result{}, err
			}
			// A second call of the same job waits for the bucket too.
			return ctrl.Result{}, call(jctx, "quiet")
		})
	}
	waitFor(t, "the burst", func() bool { return count() >= 2 })
	for i := 0; count() < 50 && i < 200; i++ {
		before := count()
		clk.Step(500 * time.Millisecond)
		// Each half second frees one call: wait until it is made.
		waitFor(t, "a call", func() bool { return count() > before || count() == 50 })
	}
	waitFor(t, "every call", func() bool { return count() == 50 })

	mu.Lock()
	defer mu.Unlock()
	start := calls[0]
	perSecond := map[int64]int{}
	for _, at := range calls {
		perSecond[int64(at.Sub(start)/time.Second)]++
	}
	for s, n := range perSecond {
		// The burst of 2 and the rate of 2 a second: never more than 2 in a
		// second after the first, 4 in the first.
		if (s == 0 && n > 4) || (s > 0 && n > 2) {
			t.Fatalf("%d calls in second %d: more than the issuer's 2 a second (all: %v)", n, s, perSecond)
		}
	}
	if last := calls[len(calls)-1].Sub(start); last < 23*time.Second {
		t.Fatalf("50 calls at 2 a second took %s", last)
	}
	quiet := 0
	for _, ns := range order[:10] {
		if ns == "quiet" {
			quiet++
		}
	}
	if quiet < 4 {
		t.Fatalf("the quiet namespace had %d of the first 10 starts (%v): the busy one's queue went first", quiet, order)
	}
}

func TestIssuerRateOfSpec(t *testing.T) {
	l := NewIssuerLimiters(5, 10, clocktesting.NewFakeClock(time.Unix(0, 0)))
	b := int32(50)
	hour := &tokensv1alpha1.Duration{Duration: time.Hour}
	for _, tc := range []struct {
		name  string
		kind  tokensv1alpha1.IssuerKind
		spec  *tokensv1alpha1.RateLimit
		rate  rate.Limit
		burst int
	}{
		{"unset: the flags", tokensv1alpha1.TokenIssuerKind, nil, 5, 10},
		{"a TokenIssuer may lower it", tokensv1alpha1.TokenIssuerKind, &tokensv1alpha1.RateLimit{Calls: 5000, Period: hour}, rate.Limit(5000.0 / 3600), 10},
		{"a TokenIssuer may not raise it", tokensv1alpha1.TokenIssuerKind, &tokensv1alpha1.RateLimit{Calls: 100, Burst: &b}, 5, 10},
		{"a ClusterTokenIssuer may", tokensv1alpha1.ClusterTokenIssuerKind, &tokensv1alpha1.RateLimit{Calls: 100, Burst: &b}, 100, 50},
		{"burst defaults to calls, at most 10", tokensv1alpha1.ClusterTokenIssuerKind, &tokensv1alpha1.RateLimit{Calls: 3}, 3, 3},
	} {
		r, burst := l.limitOf(tc.kind, tc.spec)
		if r != tc.rate || burst != tc.burst {
			t.Errorf("%s: %v/s burst %d, want %v/s burst %d", tc.name, r, burst, tc.rate, tc.burst)
		}
	}
	if r, _ := NewIssuerLimiters(0, 0, nil).limitOf(tokensv1alpha1.TokenIssuerKind, &tokensv1alpha1.RateLimit{Calls: 100}); r != 100 {
		t.Errorf("--issuer-rate-limit=0 capped a TokenIssuer to %v", r)
	}
}
