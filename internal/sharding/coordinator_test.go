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

package sharding

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	coordinationv1 "k8s.io/api/coordination/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

const (
	testNamespace = "tokenmint-system"
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
)

// cluster is replicas sharing one fake API server and one fake clock.
type cluster struct {
	t        *testing.T
	client   client.Client
	clk      *clocktesting.FakeClock
	replicas map[string]*replica
}

type replica struct {
	*Coordinator
	mu       sync.Mutex
	inFlight map[int]int
	acquired []int
	// draining is every range Draining was called with, in order.
	draining []int
	// changed is what Changed was last called with.
	changed []int
	// failWrites makes every Lease write of this replica fail.
	failWrites bool
	// beforeUpdate, when set, runs before each Lease update of this replica.
	beforeUpdate func(obj client.Object)
	// shrink, when set, is the replica's Options.Shrink.
	shrink func(kept int) bool
	// loaded are the ranges a warm replica's cache has listed; cold those
	// it took before (see warmReplica).
	loaded map[int]bool
	cold   []int
}

func newCluster(t *testing.T) *cluster {
	return &cluster{t: t, client: fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).Build(),
		clk: clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), replicas: map[string]*replica{}}
}

func (c *cluster) start(id string) *replica {
	return c.startWith(id, nil)
}

// startWith starts replica id with its Options changed by edit.
func (c *cluster) startWith(id string, edit func(*Options, *replica)) *replica {
	r := &replica{inFlight: map[int]int{}}
	cl := interceptor.NewClient(c.client.(client.WithWatch), interceptor.Funcs{
		Update: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			r.mu.Lock()
			fail, hook := r.failWrites, r.beforeUpdate
			r.mu.Unlock()
			if fail {
				return errors.New("apiserver unreachable")
			}
			if hook != nil {
				hook(obj)
			}
			return cl.Update(ctx, obj, opts...)
		},
	})
	opts := Options{Client: cl, Namespace: testNamespace, Identity: id, Ranges: 16,
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod, Clock: c.clk,
		InFlight: func(rng int) int { r.mu.Lock(); defer r.mu.Unlock(); return r.inFlight[rng] },
		Acquired: func(rng int) { r.mu.Lock(); defer r.mu.Unlock(); r.acquired = append(r.acquired, rng) },
		Changed:  func(ranges []int) { r.mu.Lock(); defer r.mu.Unlock(); r.changed = ranges },
		Draining: func(rng int) { r.mu.Lock(); defer r.mu.Unlock(); r.draining = append(r.draining, rng) },
		Shrink: func(kept int) bool {
			r.mu.Lock()
			shrink := r.shrink
			r.mu.Unlock()
			return shrink == nil || shrink(kept)
		},
	}
	if edit != nil {
		edit(&opts, r)
	}
	co, err := New(opts)
	if err != nil {
		c.t.Fatal(err)
	}
	r.Coordinator = co
	c.replicas[id] = r
	return r
}

// joinWhileBusy gives every range of a a call in flight, so that none it
// drains can be released, then starts replica id and runs three rounds: a
// drains its surplus and keeps serving the rest.
func (c *cluster) joinWhileBusy(a *replica, id string) *replica {
	a.mu.Lock()
	for rng := range 16 {
		a.inFlight[rng] = 1
	}
	a.mu.Unlock()
	b := c.start(id)
	c.rounds(3)
	return b
}

// round syncs every live replica once, checks that no range is served by
// two, then moves the clock one retry period on.
func (c *cluster) round() {
	c.t.Helper()
	for _, r := range c.replicas {
		if err := r.Sync(context.Background()); err != nil {
			r.mu.Lock()
			failing := r.failWrites
			r.mu.Unlock()
			if !failing {
				c.t.Fatalf("sync of %s: %v", r.Identity(), err)
			}
		}
		c.checkExclusive()
	}
	c.clk.Step(retryPeriod)
}

func (c *cluster) rounds(n int) {
	c.t.Helper()
	for range n {
		c.round()
	}
}

// checkExclusive fails when two replicas serve one range.
func (c *cluster) checkExclusive() {
	c.t.Helper()
	owner := map[int]string{}
	for id, r := range c.replicas {
		for _, rng := range r.Held() {
			if o, ok := owner[rng]; ok {
				c.t.Fatalf("range %d served by %s and %s", rng, o, id)
			}
			owner[rng] = id
		}
	}
}

// counts returns the ranges served by each replica, and checks that every
// range is served and that counts differ by at most one.
func (c *cluster) balanced() map[string]int {
	c.t.Helper()
	out := map[string]int{}
	total, lo, hi := 0, 1<<30, 0
	for id, r := range c.replicas {
		n := len(r.Held())
		out[id] = n
		total += n
		lo, hi = min(lo, n), max(hi, n)
	}
	if total != 16 {
		c.t.Fatalf("%d of 16 ranges served: %v", total, out)
	}
	if hi-lo > 1 {
		c.t.Fatalf("ranges per replica differ by more than one: %v", out)
	}
	return out
}

func (c *cluster) holder(rng int) string {
	l := &coordinationv1.Lease{}
	if err := c.client.Get(context.Background(), client.ObjectKey{Namespace: testNamespace, Name: RangeLeaseName(rng)}, l); err != nil {
		c.t.Fatal(err)
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

func TestRangeOfIsStableAndSpread(t *testing.T) {
	if RangeOf("shop", 16) != RangeOf("shop", 16) {
		t.Fatal("not stable")
	}
	if got := RangeOf("anything", 1); got != 0 {
		t.Fatalf("one range: got %d", got)
	}
	seen := map[int]int{}
	for i := range 1600 {
		rng := RangeOf(fmt.Sprintf("team-%d", i), 16)
		if rng < 0 || rng >= 16 {
			t.Fatalf("range %d out of bounds", rng)
		}
		seen[rng]++
	}
	for rng := range 16 {
		if seen[rng] < 50 {
			t.Fatalf("range %d got %d of 1600 namespaces: %v", rng, seen[rng], seen)
		}
	}
}

func TestTargets(t *testing.T) {
	got := Targets([]string{"c", "a", "b"}, 16)
	if got["a"] != 6 || got["b"] != 5 || got["c"] != 5 {
		t.Fatalf("got %v", got)
	}
	if got := Targets([]string{"a", "a"}, 16); got["a"] != 16 {
		t.Fatalf("duplicates: %v", got)
	}
}

func TestOneReplicaAcquiresEveryRange(t *testing.T) {
	c := newCluster(t)
	a := c.start("a")
	c.round()
	if got := len(a.Held()); got != 16 {
		t.Fatalf("holds %d ranges", got)
	}
	for rng := range 16 {
		if h := c.holder(rng); h != "a" {
			t.Fatalf("range %d held by %q", rng, h)
		}
	}
	if len(a.acquired) != 16 {
		t.Fatalf("acquired callbacks: %v", a.acquired)
	}
	if !a.Holds("shop") {
		t.Fatal("does not serve a namespace of a held range")
	}
	if !a.Recent("shop") {
		t.Fatal("a range just taken is not recent")
	}
	c.clk.Step(leaseDuration)
	if a.Recent("shop") {
		t.Fatal("a range taken a lease duration ago is still recent")
	}
}

func TestBalanceOneToFourToTwo(t *testing.T) {
	c := newCluster(t)
	c.start("a")
	c.round()
	for _, id := range []string{"b", "c", "d"} {
		c.start(id)
	}
	c.rounds(5)
	for id, n := range c.balanced() {
		if n != 4 {
			t.Fatalf("with four replicas %s serves %d", id, n)
		}
	}

	// Scale down to two: c and d stop and release what they hold.
	for _, id := range []string{"c", "d"} {
		c.replicas[id].Stop(context.Background())
		if n := len(c.replicas[id].Held()); n != 0 {
			t.Fatalf("%s still serves %d after stopping", id, n)
		}
		delete(c.replicas, id)
	}
	c.rounds(3)
	for id, n := range c.balanced() {
		if n != 8 {
			t.Fatalf("with two replicas %s serves %d", id, n)
		}
	}
	// The member Leases of the stopped replicas are gone.
	list := &coordinationv1.LeaseList{}
	if err := c.client.List(context.Background(), list, client.MatchingLabels{LabelLease: RoleMember}); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 {
		t.Fatalf("%d member leases", len(list.Items))
	}
}

func TestThreeReplicasDifferByAtMostOne(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b", "c"} {
		c.start(id)
	}
	c.rounds(5)
	c.balanced()
}

func TestKilledReplicaRangesTakenOverAfterLeaseDuration(t *testing.T) {
	c := newCluster(t)
	a, b := c.start("a"), c.start("b")
	c.rounds(4)
	c.balanced()
	ofB := b.Held()

	// b is killed: it neither renews nor releases. It last renewed in the
	// round before, one retry period ago.
	delete(c.replicas, "b")
	lastRenewal := c.clk.Now().Add(-retryPeriod)
	for c.clk.Since(lastRenewal) <= leaseDuration {
		at := c.clk.Since(lastRenewal)
		c.round()
		for _, rng := range ofB {
			if a.HoldsRange(rng) {
				t.Fatalf("range %d taken %v after b's last renewal, within the lease duration", rng, at)
			}
		}
	}
	c.rounds(2)
	if got := len(a.Held()); got != 16 {
		t.Fatalf("a serves %d ranges after b's leases expired", got)
	}
	for _, rng := range ofB {
		if h := c.holder(rng); h != "a" {
			t.Fatalf("range %d held by %q", rng, h)
		}
	}
	// The killed replica's member Lease is removed.
	l := &coordinationv1.Lease{}
	err := c.client.Get(context.Background(), client.ObjectKey{Namespace: testNamespace, Name: MemberLeaseName("b")}, l)
	if err == nil {
		t.Fatal("the killed replica's member lease is still there")
	}
}

func TestDrainBeforeRelease(t *testing.T) {
	c := newCluster(t)
	a := c.start("a")
	c.round()
	b := c.joinWhileBusy(a, "b")
	if n := len(a.Held()); n != 8 {
		t.Fatalf("a serves %d ranges; it should stop taking work for its surplus", n)
	}
	if n := len(b.Held()); n != 0 {
		t.Fatalf("b serves %d ranges while a's calls still run", n)
	}
	var draining []int
	for rng := range 16 {
		if !a.HoldsRange(rng) {
			draining = append(draining, rng)
			if h := c.holder(rng); h != "a" {
				t.Fatalf("range %d released with a call in flight (holder %q)", rng, h)
			}
		}
	}
	// A long drain keeps the Leases renewed: b never takes them.
	c.rounds(int(2*leaseDuration/retryPeriod) + 1)
	if n := len(b.Held()); n != 0 {
		t.Fatalf("b took %d ranges whose calls still run", n)
	}

	// The calls of one draining range end: only that one is released.
	a.mu.Lock()
	a.inFlight[draining[0]] = 0
	a.mu.Unlock()
	c.rounds(2)
	if !b.HoldsRange(draining[0]) || len(b.Held()) != 1 {
		t.Fatalf("b serves %v, want only %d", b.Held(), draining[0])
	}
	a.mu.Lock()
	clear(a.inFlight)
	a.mu.Unlock()
	c.rounds(2)
	c.balanced()
}

// TestDrainingIsReportedAndAnUndoneDrainQueuesAgain: a range that starts to
// drain is reported once (its waiting work may go); when the replica that
// wanted it stops before the drain ends, the range is served again and
// reported as taken, so that its AccessTokens are queued again.
func TestDrainingIsReportedAndAnUndoneDrainQueuesAgain(t *testing.T) {
	c := newCluster(t)
	a := c.start("a")
	c.round()
	a.mu.Lock()
	a.acquired = nil
	a.mu.Unlock()
	b := c.joinWhileBusy(a, "b")
	a.mu.Lock()
	draining := slices.Clone(a.draining)
	a.mu.Unlock()
	slices.Sort(draining)
	var notServed []int
	for rng := range 16 {
		if !a.HoldsRange(rng) {
			notServed = append(notServed, rng)
		}
	}
	if len(draining) != 8 || !slices.Equal(draining, notServed) {
		t.Fatalf("Draining reported %v (each once); a drains %v", draining, notServed)
	}

	b.Stop(context.Background())
	delete(c.replicas, "b")
	c.rounds(int(leaseDuration/retryPeriod) + 2)
	if n := len(a.Held()); n != 16 {
		t.Fatalf("a serves %d ranges once b has gone, want 16", n)
	}
	a.mu.Lock()
	acquired := slices.Clone(a.acquired)
	again := len(a.draining)
	a.mu.Unlock()
	slices.Sort(acquired)
	if !slices.Equal(acquired, notServed) {
		t.Fatalf("ranges queued again: %v, want the %v whose drain was undone", acquired, notServed)
	}
	if again != 8 {
		t.Fatalf("Draining called %d times, want 8", again)
	}
}

func TestRenewFailureStopsServingWithinRenewDeadline(t *testing.T) {
	c := newCluster(t)
	a := c.start("a")
	c.round()
	a.mu.Lock()
	a.failWrites = true
	a.mu.Unlock()
	start := c.clk.Now().Add(-retryPeriod) // the last renewal
	for c.clk.Since(start) <= renewDeadline {
		if len(a.Held()) != 16 {
			t.Fatalf("stopped serving %v after the last renewal, before the renew deadline", c.clk.Since(start))
		}
		c.round()
	}
	if n := len(a.Held()); n != 0 {
		t.Fatalf("a serves %d ranges it could not renew for longer than the renew deadline", n)
	}
	// Not served, but still a's until another replica may take them: a
	// reconcile turned away meanwhile is to be tried again.
	ns := namespaceOf(t, 5)
	if a.Holds(ns) || !a.Owns(ns) {
		t.Fatalf("late renewal: Holds %v, Owns %v; want false, true", a.Holds(ns), a.Owns(ns))
	}
	a.mu.Lock()
	a.failWrites = false
	a.mu.Unlock()
	c.round()
	if !a.Holds(ns) || len(a.Held()) != 16 {
		t.Fatalf("a serves %v once its renewal landed, want every range", a.Held())
	}
	// It serves the ranges well before another replica may take them.
	if renewDeadline >= leaseDuration {
		t.Fatal("renew deadline must be below the lease duration")
	}
}

// A round's renewals of the ranges held are written together, not one round
// trip after the other: each update below waits until all 16 have started.
func TestRoundRenewsItsRangesTogether(t *testing.T) {
	c := newCluster(t)
	a := c.start("a")
	c.rounds(2)
	if n := len(a.Held()); n != 16 {
		t.Fatalf("a serves %d ranges, want 16", n)
	}
	var started sync.WaitGroup
	started.Add(16)
	all := make(chan struct{})
	go func() { started.Wait(); close(all) }()
	var waited, alone sync.Map
	a.mu.Lock()
	a.beforeUpdate = func(obj client.Object) {
		if obj.GetName() == MemberLeaseName("a") {
			return
		}
		if _, again := waited.LoadOrStore(obj.GetName(), true); !again {
			started.Done()
		}
		select {
		case <-all:
		case <-time.After(5 * time.Second): // a guard, not a measure: sequential renewals never get here together
			alone.Store(obj.GetName(), true)
		}
	}
	a.mu.Unlock()
	c.round()
	n := 0
	alone.Range(func(any, any) bool { n++; return true })
	if n > 0 {
		t.Fatalf("%d range renewals were written while others had not started: the round renews one after the other", n)
	}
	if got := len(a.Held()); got != 16 {
		t.Fatalf("a serves %d ranges after the round, want 16", got)
	}
}

// A round that renews ranges after the renew deadline says so: their
// AccessTokens were not served meanwhile.
func TestLateRenewalIsLogged(t *testing.T) {
	c := newCluster(t)
	a := c.start("a")
	c.round()
	// The next round comes late (a slow API server, a starved process):
	// the ranges are still a's, but not served until it renews them.
	c.clk.Step(renewDeadline)
	if len(a.Held()) != 0 || !a.Owns(namespaceOf(t, 3)) {
		t.Fatalf("past the renew deadline: serves %v, owns %v; want none served, still owned", a.Held(), a.Owns(namespaceOf(t, 3)))
	}
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, prefix+" "+args) }, funcr.Options{})
	if err := a.Sync(logf.IntoContext(context.Background(), log)); err != nil {
		t.Fatal(err)
	}
	want := `"ranges"=[0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]`
	found := false
	for _, l := range lines {
		if strings.Contains(l, "renewed after the renew deadline") && strings.Contains(l, want) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no line reports the 16 ranges renewed late; logged %q", lines)
	}
	lines = nil
	c.clk.Step(retryPeriod)
	if err := a.Sync(logf.IntoContext(context.Background(), log)); err != nil {
		t.Fatal(err)
	}
	if len(lines) > 0 {
		t.Fatalf("a renewal in time was logged: %q", lines)
	}
}

// TestChangedKeepsDrainingRanges: the ranges reported to Changed (those a
// replica caches) keep a draining range until it is released.
func TestChangedKeepsDrainingRanges(t *testing.T) {
	c := newCluster(t)
	a := c.start("a")
	c.round()
	if got := a.lastChanged(); len(got) != 16 {
		t.Fatalf("a reported %v, want every range", got)
	}
	c.joinWhileBusy(a, "b")
	if n := len(a.Held()); n != 8 {
		t.Fatalf("a serves %d ranges, want 8", n)
	}
	if got := a.lastChanged(); len(got) != 16 {
		t.Fatalf("a reported %v while draining 8, want all 16 still cached", got)
	}
	a.mu.Lock()
	clear(a.inFlight)
	a.mu.Unlock()
	c.rounds(2)
	if got, held := a.lastChanged(), a.Held(); !slices.Equal(got, held) || len(held) != 8 {
		t.Fatalf("a reported %v once drained, want its 8 ranges %v", got, held)
	}
	a.Stop(context.Background())
	if got := a.lastChanged(); len(got) != 0 {
		t.Fatalf("a reported %v after stopping, want none", got)
	}
}

func (r *replica) lastChanged() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// TestIssuerShareHoldsAcrossHandovers runs replicas that each start calls to
// one issuer up to their share of its limit (Share of the ranges they serve)
// and end them slowly, through scale 1 → 4 → 2 → 3, and checks after every
// replica's every Sync that the calls in flight on all replicas add up to at
// most the limit: a replica lowers its calls to the share of the ranges it
// keeps before it releases one, and raises its share only once it has taken
// one.
func TestIssuerShareHoldsAcrossHandovers(t *testing.T) {
	const limit = 20
	c := newCluster(t)
	running := map[string]int{}
	var mu sync.Mutex
	start := func(id string) {
		r := c.start(id)
		r.shrink = func(kept int) bool {
			mu.Lock()
			defer mu.Unlock()
			return running[id] <= Share(limit, kept, 16)
		}
	}
	step := 0
	// fill starts calls on every replica up to its share; ending ends one
	// call on every replica each step, so a drain takes several rounds.
	fill := func() {
		mu.Lock()
		defer mu.Unlock()
		sum := 0
		for id, r := range c.replicas {
			if share := Share(limit, r.Serving(), 16); running[id] < share {
				running[id] = share
			}
			sum += running[id]
		}
		if sum > limit {
			t.Fatalf("step %d: %v calls in flight to one issuer of limit %d", step, running, limit)
		}
	}
	ending := func() {
		mu.Lock()
		defer mu.Unlock()
		for id := range running {
			if running[id] > 0 {
				running[id]--
			}
		}
	}
	rounds := func(n int) {
		for range n {
			step++
			for _, r := range c.replicas {
				if err := r.Sync(context.Background()); err != nil {
					t.Fatal(err)
				}
				c.checkExclusive()
				fill()
			}
			ending()
			fill()
			c.clk.Step(retryPeriod)
		}
	}
	start("a")
	rounds(3)
	if running["a"] != limit {
		t.Fatalf("a alone runs %d calls, want the whole limit %d", running["a"], limit)
	}
	for _, id := range []string{"b", "c", "d"} {
		start(id)
	}
	rounds(30)
	c.balanced()
	sum := 0
	for _, n := range running {
		sum += n
	}
	// 16 ranges over 4: 4 each, floor(20×4/16) = 5 each.
	if sum != limit {
		t.Fatalf("the shares of four replicas fill %d of %d", sum, limit)
	}
	for _, id := range []string{"c", "d"} {
		// Stopping, a replica's dispatcher lets its calls end first.
		mu.Lock()
		running[id] = 0
		mu.Unlock()
		c.replicas[id].Stop(context.Background())
		delete(c.replicas, id)
		mu.Lock()
		delete(running, id)
		mu.Unlock()
	}
	rounds(int(leaseDuration/retryPeriod) + 5)
	c.balanced()
	start("e")
	rounds(25)
	c.balanced()
}

// namespaceOf returns a namespace name of range rng of 16.
func namespaceOf(t *testing.T, rng int) string {
	t.Helper()
	for i := range 10000 {
		if ns := fmt.Sprintf("team-%d", i); RangeOf(ns, 16) == rng {
			return ns
		}
	}
	t.Fatalf("no namespace of range %d", rng)
	return ""
}

// TestOwnsFollowsTheLeaseNotTheRenewal: a range being drained or held by
// another is not owned; a nil Coordinator (sharding off) owns everything.
func TestOwnsFollowsTheLeaseNotTheRenewal(t *testing.T) {
	var none *Coordinator
	if !none.Owns("any") {
		t.Fatal("without sharding every namespace is this replica's")
	}
	c := newCluster(t)
	a := c.start("a")
	c.round()
	b := c.joinWhileBusy(a, "b")
	for rng := range 16 {
		ns := namespaceOf(t, rng)
		if a.Owns(ns) != a.HoldsRange(rng) {
			t.Fatalf("range %d: Owns %v while HoldsRange %v (draining ranges are not owned)", rng, a.Owns(ns), a.HoldsRange(rng))
		}
		if b.Owns(ns) {
			t.Fatalf("b owns range %d before it took any", rng)
		}
	}
}
