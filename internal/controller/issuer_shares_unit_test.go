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
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/sharding"
)

func TestCallsKeepToTheReplicasShare(t *testing.T) {
	c := startedCalls(t, 20, 100)
	var held atomic.Int64
	held.Store(4)
	c.Share = func(limit int) int { return sharding.Share(limit, int(held.Load()), 16) }
	slow := &gate{release: make(chan struct{})}
	for i := range 30 {
		c.Submit(object(fmt.Sprint("ns", i%7), fmt.Sprint("a", i)), "shared", slow.job(fmt.Sprint("a", i)))
	}
	// 4 of 16 ranges: 5 of the limit of 20.
	waitFor(t, "five calls", func() bool { return len(slow.order()) == 5 })
	time.Sleep(20 * time.Millisecond)
	if n := c.MostRunning(); n != 5 {
		t.Fatalf("%d calls in flight on a replica whose share is 5", n)
	}
	held.Store(8)
	c.Kick()
	waitFor(t, "ten calls", func() bool { return len(slow.order()) == 10 })
	time.Sleep(20 * time.Millisecond)
	if n := c.MostRunning(); n != 10 {
		t.Fatalf("%d calls in flight on a replica whose share is 10", n)
	}
	// A drain lowers the share: the calls running end, none starts until
	// they fit.
	held.Store(2)
	close(slow.release)
	waitFor(t, "every call", func() bool { return len(slow.order()) == 30 })
}

func TestIssuerRateIsScaledToTheShare(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(100000, 0))
	limits := NewIssuerLimiters(DefaultIssuerRate, DefaultIssuerBurst, clk)
	var held atomic.Int64
	held.Store(4)
	limits.Share = func() (int, int) { return int(held.Load()), 16 }
	burst := int32(32)
	limits.Configure("cti", tokensv1alpha1.ClusterTokenIssuerKind, &tokensv1alpha1.RateLimit{Calls: 16, Burst: &burst})
	admitted := func() int {
		n := 0
		for limits.Admit("cti", clk.Now()) == 0 {
			n++
		}
		return n
	}
	if n := admitted(); n != 8 {
		t.Fatalf("a replica with 4 of 16 ranges was admitted %d calls at once, want a burst of 8 (32 × 4/16)", n)
	}
	if wait := limits.Admit("cti", clk.Now()); wait != 250*time.Millisecond {
		t.Fatalf("next call in %v, want 250ms (16/s × 4/16 = 4/s)", wait)
	}
	// A raised share fills the bucket at the new rate from what it holds: the
	// burst does not jump.
	held.Store(8)
	clk.Step(10 * time.Second)
	if n := admitted(); n != 8 {
		t.Fatalf("a replica whose share was just raised was admitted %d calls at once, want the 8 it held", n)
	}
	clk.Step(2 * time.Second)
	if n := admitted(); n != 16 {
		t.Fatalf("a replica with 8 of 16 ranges was admitted %d calls at once after 2s, want 16", n)
	}
	held.Store(0)
	clk.Step(10 * time.Second)
	if wait := limits.Admit("cti", clk.Now()); wait == 0 {
		t.Fatal("a replica that serves no range was admitted a call")
	}
	// The defaults (20/s, burst 40) are scaled likewise.
	held.Store(16)
	clk.Step(10 * time.Second)
	if b := limits.bucket("other", clk.Now()); b.Limit() != DefaultIssuerRate || b.Burst() != DefaultIssuerBurst {
		t.Fatalf("a replica with every range has %v/%d, want the whole default", b.Limit(), b.Burst())
	}
	held.Store(1)
	if b := limits.bucket("other", clk.Now()); b.Limit() != DefaultIssuerRate/16 || b.Burst() != 2 {
		t.Fatalf("a replica with one of 16 ranges has %v/%d, want 1.25/s burst 2", b.Limit(), b.Burst())
	}
}

// pauseReplica is one replica's limiters and pause board on a shared fake API server.
type pauseReplica struct {
	limits *IssuerLimiters
	board  *PauseBoard
}

func pauseReplicas(t *testing.T, clk *clocktesting.FakeClock, writes *atomic.Int64, ids ...string) (client.Client, []pauseReplica) {
	base := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).Build()
	cl := interceptor.NewClient(base.(client.WithWatch), interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			writes.Add(1)
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			writes.Add(1)
			return c.Update(ctx, obj, opts...)
		},
	})
	var out []pauseReplica
	for _, id := range ids {
		l := NewIssuerLimiters(DefaultIssuerRate, DefaultIssuerBurst, clk)
		b := &PauseBoard{Client: cl, Namespace: "tokenmint-system", Identity: id, Clock: clk, Limiters: l}
		l.Pauses = b
		out = append(out, pauseReplica{limits: l, board: b})
	}
	return cl, out
}

// sync is what the coordinator's Sync hands the board: the pause Leases.
func (r pauseReplica) sync(t *testing.T, cl client.Client) {
	t.Helper()
	list := &coordinationv1.LeaseList{}
	if err := cl.List(context.Background(), list, client.InNamespace("tokenmint-system"), client.HasLabels{sharding.LabelLease}); err != nil {
		t.Fatal(err)
	}
	r.board.Observed(context.Background(), list.Items)
}

func rateLimited(after time.Duration) error {
	return &issuer.Error{Class: issuer.ClassRateLimited, RetryAfter: after, Message: "slow down"}
}

func TestPausesAfterA429ReachTheOtherReplicas(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(100000, 0))
	var writes atomic.Int64
	cl, rs := pauseReplicas(t, clk, &writes, "a", "b")
	a, b := rs[0], rs[1]
	const key = "ClusterTokenIssuer/shared"
	a.sync(t, cl)
	b.sync(t, cl)
	waitWrites := func(n int64) {
		t.Helper()
		waitFor(t, fmt.Sprintf("%d writes", n), func() bool { return writes.Load() >= n })
		time.Sleep(20 * time.Millisecond)
		if got := writes.Load(); got != n {
			t.Fatalf("%d writes of pause Leases, want %d", got, n)
		}
	}

	// A 429 for namespace one on replica a: one write; b pauses that namespace (after a handover, it would serve it).
	start := clk.Now()
	a.limits.Observe(key, "one", rateLimited(30*time.Second), start)
	waitWrites(1)
	// The same answer again on another call: nothing new to say, no write.
	a.limits.Observe(key, "one", rateLimited(30*time.Second), start)
	time.Sleep(20 * time.Millisecond)
	if writes.Load() != 1 {
		t.Fatalf("a 429 already recorded was written again (%d writes)", writes.Load())
	}
	clk.Step(2 * time.Second) // b sees it one retry period late
	b.sync(t, cl)
	ns, whole := b.limits.Paused(key, "one")
	if want := start.Add(32 * time.Second); !ns.Equal(want) || !whole.IsZero() {
		t.Fatalf("b has namespace one paused until %v and the issuer until %v, want %v and nothing", ns, whole, want)
	}
	if err := b.limits.Wait(context.Background(), key, "two"); err != nil {
		t.Fatalf("one namespace's 429 paused another's calls on b: %v", err)
	}

	// A 429 for namespace two on replica b while one waits: the whole issuer waits, on both replicas.
	b.limits.Observe(key, "two", rateLimited(20*time.Second), clk.Now())
	waitWrites(2)
	issuerUntil := clk.Now().Add(20 * time.Second)
	if _, whole := b.limits.Paused(key, "three"); !whole.Equal(issuerUntil) {
		t.Fatalf("b has the issuer paused until %v, want %v", whole, issuerUntil)
	}
	clk.Step(time.Second)
	a.sync(t, cl)
	if _, whole := a.limits.Paused(key, "three"); whole.Before(issuerUntil) {
		t.Fatalf("a has the issuer paused until %v, want at least %v", whole, issuerUntil)
	}
	var ie *issuer.Error
	if err := a.limits.Wait(context.Background(), key, "three"); !errors.As(err, &ie) || ie.Class != issuer.ClassRateLimited {
		t.Fatalf("a called the paused issuer for a third namespace: %v", err)
	}

	// Once the pause is over, calls go on, and the Lease goes a minute later.
	clk.Step(25 * time.Second)
	if err := a.limits.Wait(context.Background(), key, "three"); err != nil {
		t.Fatalf("the issuer is still paused after the pause: %v", err)
	}
	clk.Step(pauseLeaseKept + 10*time.Second)
	a.sync(t, cl)
	list := &coordinationv1.LeaseList{}
	if err := cl.List(context.Background(), list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Fatalf("%d pause Leases left after their pause ended", len(list.Items))
	}
	if n := writes.Load(); n != 2 {
		t.Fatalf("%d writes for two 429 answers", n)
	}
}

// TestPauseFromAnotherReplicaStopsItsDispatch checks a replica that never got a
// 429 itself: while the other replica's pause holds, its jobs for the issuer
// make no call.
func TestPauseFromAnotherReplicaStopsItsDispatch(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(100000, 0))
	var writes atomic.Int64
	cl, rs := pauseReplicas(t, clk, &writes, "a", "b")
	a, b := rs[0], rs[1]
	const key = "ClusterTokenIssuer/shared"
	a.sync(t, cl)
	b.sync(t, cl)
	// Two namespaces on a: the whole issuer pauses.
	a.limits.Observe(key, "one", rateLimited(time.Minute), clk.Now())
	a.limits.Observe(key, "two", rateLimited(time.Minute), clk.Now())
	waitFor(t, "the issuer's pause written", func() bool {
		l := &coordinationv1.Lease{}
		err := cl.Get(context.Background(), client.ObjectKey{Namespace: "tokenmint-system", Name: PauseLeaseName(key)}, l)
		return err == nil && l.Annotations[AnnotationIssuerPausedUntil] != ""
	})
	b.sync(t, cl)

	c := startedCalls(t, 20, 20)
	var mu sync.Mutex
	called := 0
	job := func(jctx context.Context) (ctrl.Result, error) {
		if err := b.limits.Wait(jctx, key, "three"); err != nil {
			return ctrl.Result{}, err
		}
		mu.Lock()
		called++
		mu.Unlock()
		return ctrl.Result{}, nil
	}
	c.Submit(object("three", "x"), key, job)
	waitFor(t, "the job", func() bool { _, ok := c.Take(client.ObjectKey{Namespace: "three", Name: "x"}); return ok })
	mu.Lock()
	if called != 0 {
		t.Fatal("b called an issuer paused by a")
	}
	mu.Unlock()
	clk.Step(time.Minute + 5*time.Second)
	c.Submit(object("three", "x"), key, job)
	waitFor(t, "the job after the pause", func() bool { mu.Lock(); defer mu.Unlock(); return called == 1 })
}

// A tenant whose endpoints answer 429 with ever later Retry-After, on many
// issuers, costs at most the namespace's budget of pause records; pauses
// shorter than the Lease list period are not shared at all.
func TestPauseRecordsAreBoundedPerNamespace(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(100000, 0))
	var writes atomic.Int64
	_, rs := pauseReplicas(t, clk, &writes, "a")
	a := rs[0]
	a.board.MinPause = 2 * time.Second
	a.board.Budget = NewNamespaceLimiters(pausePublishRate, pausePublishBurst)

	a.limits.Observe("TokenIssuer/tenant/short", "tenant", rateLimited(time.Second), clk.Now())
	time.Sleep(20 * time.Millisecond)
	if n := writes.Load(); n != 0 {
		t.Fatalf("a 1 s pause made %d writes; a pause shorter than the list period is not shared", n)
	}
	for i := range 50 {
		a.limits.Observe(fmt.Sprintf("TokenIssuer/tenant/i-%d", i), "tenant", rateLimited(time.Minute+time.Duration(i)*time.Second), clk.Now())
	}
	waitFor(t, "the budget's writes", func() bool { return writes.Load() >= pausePublishBurst })
	time.Sleep(50 * time.Millisecond)
	if n := writes.Load(); n != pausePublishBurst {
		t.Fatalf("50 issuers' 429s in one namespace made %d writes, want the burst %d", n, pausePublishBurst)
	}
	// Another namespace has its own budget.
	a.limits.Observe("TokenIssuer/other/x", "other", rateLimited(time.Minute), clk.Now())
	waitFor(t, "the other namespace's write", func() bool { return writes.Load() == pausePublishBurst+1 })
	// Every pause still holds on the replica that saw it.
	if ns, _ := a.limits.Paused("TokenIssuer/tenant/i-49", "tenant"); !ns.After(clk.Now()) {
		t.Fatal("a pause over the budget was not kept locally")
	}
}
