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
	"maps"
	"slices"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const handoverTimeout = 5 * time.Minute

// warmReplica starts replica id with warm handovers: its cache holds a
// range it was asked for (Changed) once the test loads it (load), and it
// records every range it takes that its cache did not hold.
func (c *cluster) warmReplica(id string) *replica {
	return c.startWith(id, func(o *Options, r *replica) {
		o.HandoverTimeout = handoverTimeout
		o.Ready = func(rng int) bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.loaded[rng] && slices.Contains(r.changed, rng)
		}
		acquired := o.Acquired
		o.Acquired = func(rng int) {
			acquired(rng)
			r.mu.Lock()
			defer r.mu.Unlock()
			if !r.loaded[rng] {
				r.cold = append(r.cold, rng)
			}
		}
		changed := o.Changed
		o.Changed = func(ranges []int) {
			changed(ranges)
			r.mu.Lock()
			defer r.mu.Unlock()
			for rng := range r.loaded {
				if !slices.Contains(ranges, rng) {
					delete(r.loaded, rng)
				}
			}
		}
	})
}

// leaveInBackground marks r as leaving, then runs its HandOver, which the
// cluster's rounds carry out; the channel closes when HandOver returns.
func leaveInBackground(r *replica) chan struct{} {
	r.leave()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.HandOver(context.Background())
	}()
	return done
}

func (r *replica) resetCold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cold = nil
}

// load makes r's cache hold every range it was asked to cache.
func (r *replica) load() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loaded == nil {
		r.loaded = map[int]bool{}
	}
	for _, rng := range r.changed {
		r.loaded[rng] = true
	}
}

func (r *replica) coldTakes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cold)
}

// served returns the ranges no replica serves.
func (c *cluster) unserved() []int {
	served := map[int]bool{}
	for _, r := range c.replicas {
		for _, rng := range r.Held() {
			served[rng] = true
		}
	}
	var out []int
	for rng := range 16 {
		if !served[rng] {
			out = append(out, rng)
		}
	}
	return out
}

// warmRounds runs n rounds, loading every replica's cache after each, and
// fails when a range stays unserved for two rounds in a row: a warm
// handover leaves a range to nobody only from its release to the next
// Sync of the replica that has it cached.
func (c *cluster) warmRounds(n int) {
	c.t.Helper()
	var before []int
	for range n {
		c.round()
		for _, r := range c.replicas {
			r.load()
		}
		now := c.unserved()
		for _, rng := range now {
			if slices.Contains(before, rng) {
				c.t.Fatalf("range %d unserved for two rounds", rng)
			}
		}
		before = now
	}
}

func TestWarmHandoverKeepsServingUntilTheNextHolderHasCached(t *testing.T) {
	c := newCluster(t)
	a := c.warmReplica("a")
	c.round()
	a.load()
	if n := len(a.Held()); n != 16 {
		t.Fatalf("a serves %d ranges alone", n)
	}
	b, cc, d := c.warmReplica("b"), c.warmReplica("c"), c.warmReplica("d")
	// Nobody has listed anything yet: a serves every range all along, and
	// each newcomer caches the four ranges it is to take, apart.
	c.rounds(10)
	if n := len(a.Held()); n != 16 {
		t.Fatalf("a serves %d ranges before anyone has cached its share, want 16", n)
	}
	seen := map[int]string{}
	for _, r := range []*replica{b, cc, d} {
		got := r.lastChanged()
		if len(got) != 4 || len(r.Held()) != 0 {
			t.Fatalf("%s caches %v and serves %v, want four ranges cached and none served", r.Identity(), got, r.Held())
		}
		for _, rng := range got {
			if o, ok := seen[rng]; ok {
				t.Fatalf("range %d prepared by %s and %s", rng, o, r.Identity())
			}
			seen[rng] = r.Identity()
		}
	}
	// b's lists are in: its four ranges move to it, and only those.
	want := b.lastChanged()
	b.load()
	c.rounds(3)
	if got := b.Held(); !slices.Equal(got, want) {
		t.Fatalf("b serves %v, want the ranges it cached %v", got, want)
	}
	if n := len(a.Held()); n != 12 {
		t.Fatalf("a serves %d ranges, want 12", n)
	}
	// Everyone's lists are in: balance, each range taken warm, none left
	// unserved for more than a round.
	c.warmRounds(6)
	for id, n := range c.balanced() {
		if n != 4 {
			t.Fatalf("%s serves %d, want 4", id, n)
		}
	}
	for _, r := range []*replica{a, b, cc, d} {
		if cold := r.coldTakes(); len(cold) > 0 && r != a {
			t.Fatalf("%s took ranges %v its cache did not hold", r.Identity(), cold)
		}
		if got, held := r.lastChanged(), r.Held(); !slices.Equal(got, held) {
			t.Fatalf("%s caches %v once balanced, want what it serves %v", r.Identity(), got, held)
		}
	}
}

func TestWarmHandoverGivesUpWaitingAfterTheTimeout(t *testing.T) {
	c := newCluster(t)
	a := c.warmReplica("a")
	c.round()
	a.load()
	b := c.warmReplica("b") // never loads
	c.rounds(3)
	if n := len(a.Held()); n != 16 {
		t.Fatalf("a serves %d ranges while b lists, want 16", n)
	}
	// Rounds all along, as the replicas' member Leases would expire.
	c.rounds(int(handoverTimeout/retryPeriod) + 3)
	for id, n := range c.balanced() {
		if n != 8 {
			t.Fatalf("%s serves %d after the handover timeout, want 8", id, n)
		}
	}
	if cold := b.coldTakes(); len(cold) != 8 {
		t.Fatalf("b took %v cold, want its 8 ranges", cold)
	}
}

func TestLeavingReplicaHandsItsRangesOverWarm(t *testing.T) {
	c := newCluster(t)
	a, b := c.warmReplica("a"), c.warmReplica("b")
	c.warmRounds(8)
	c.balanced()
	b.resetCold() // the ranges both took at first, free
	done := leaveInBackground(a)
	// a has not synced since: it still serves its ranges while b lists.
	c.round()
	c.round()
	if n := len(a.Held()); n != 8 {
		t.Fatalf("leaving a serves %d ranges before b has cached them, want 8", n)
	}
	if got := b.lastChanged(); len(got) != 16 {
		t.Fatalf("b caches %v, want every range", got)
	}
	select {
	case <-done:
		t.Fatal("HandOver returned while a still holds ranges")
	default:
	}
	c.warmRounds(5)
	<-done
	if n := len(a.Held()); n != 0 {
		t.Fatalf("a serves %d after handing over", n)
	}
	if n := len(b.Held()); n != 16 {
		t.Fatalf("b serves %d, want every range", n)
	}
	if cold := b.coldTakes(); len(cold) > 0 {
		t.Fatalf("b took %v its cache did not hold", cold)
	}
	// a's member Lease says it is leaving: nobody counts it in.
	l := &coordinationv1.Lease{}
	if err := c.client.Get(context.Background(), client.ObjectKey{Namespace: testNamespace, Name: MemberLeaseName("a")}, l); err != nil {
		t.Fatal(err)
	}
	if l.Annotations[AnnotationLeaving] != "true" {
		t.Fatalf("a's member lease annotations %v", l.Annotations)
	}
}

func TestLastReplicaLeavesAtOnce(t *testing.T) {
	c := newCluster(t)
	a := c.warmReplica("a")
	c.warmRounds(2)
	done := leaveInBackground(a)
	c.round()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the last replica waited to hand over to nobody")
	}
	if n := len(a.Held()); n != 0 {
		t.Fatalf("a serves %d after leaving", n)
	}
}

// TestHandoverPlanStaysAsRangesMoveAlongIt: a plan's ranges taken one by one
// (released, then free and cached by the member that is to take it, then
// held by it) leave the rest of the plan as it was, so that no replica
// prepares a range in vain.
func TestHandoverPlanStaysAsRangesMoveAlongIt(t *testing.T) {
	targets := Targets([]string{"a", "b", "c", "d"}, 16)
	holders := map[int]string{}
	for rng := range 16 {
		holders[rng] = "a"
	}
	incomingOf := map[string]map[int]bool{"a": {}, "b": {}, "c": {}, "d": {}}
	first := handoverPlan(targets, holders, incomingOf, 16)
	if len(first) != 12 {
		t.Fatalf("plan %v, want the 12 ranges beyond a's four", first)
	}
	for rng := range 4 {
		if _, ok := first[rng]; ok {
			t.Fatalf("plan moves range %d, one of the four a keeps", rng)
		}
	}
	per := map[string]int{}
	for _, to := range first {
		per[to]++
	}
	if per["b"] != 4 || per["c"] != 4 || per["d"] != 4 {
		t.Fatalf("plan gives %v, want four to each newcomer", per)
	}
	// Move the ranges in an order of their own, each through its three
	// steps, checking the plan of the others after each step.
	order := slices.Sorted(maps.Keys(first))
	slices.Reverse(order)
	for _, rng := range order {
		to := first[rng]
		incomingOf[to][rng] = true
		for step, move := range []func(){
			func() {},
			func() { delete(holders, rng) },
			func() { holders[rng] = to; delete(incomingOf[to], rng) },
		} {
			move()
			plan := handoverPlan(targets, holders, incomingOf, 16)
			for r, want := range first {
				if holders[r] == want {
					if _, ok := plan[r]; ok {
						t.Fatalf("step %d of range %d: plan still moves range %d, held by %s", step, rng, r, want)
					}
					continue
				}
				if plan[r] != want {
					t.Fatalf("step %d of range %d: plan gives range %d to %q, first to %q", step, rng, r, plan[r], want)
				}
			}
		}
	}
}

// TestHandoverPlanKeepsWhatAMemberPreparesWhenAnotherJoins: b prepares half
// of a's ranges; c joining changes the targets, and b keeps as many of the
// ranges it prepares as its new target takes, so that its lists are not lost.
func TestHandoverPlanKeepsWhatAMemberPreparesWhenAnotherJoins(t *testing.T) {
	holders := map[int]string{}
	for rng := range 16 {
		holders[rng] = "a"
	}
	two := handoverPlan(Targets([]string{"a", "b"}, 16), holders, nil, 16)
	incoming := map[int]bool{}
	for rng, to := range two {
		if to != "b" {
			t.Fatalf("plan of two gives range %d to %s", rng, to)
		}
		incoming[rng] = true
	}
	if len(incoming) != 8 {
		t.Fatalf("b prepares %v, want 8 ranges", incoming)
	}
	three := handoverPlan(Targets([]string{"a", "b", "c"}, 16), holders, map[string]map[int]bool{"b": incoming}, 16)
	kept, perC := 0, 0
	for rng, to := range three {
		switch to {
		case "b":
			if !incoming[rng] {
				t.Fatalf("b is to take range %d, which it does not prepare, while it prepares %v", rng, incoming)
			}
			kept++
		case "c":
			perC++
		}
	}
	if kept != 5 || perC != 5 {
		t.Fatalf("b keeps %d of its ranges and c gets %d, want 5 and 5 (targets 6, 5, 5)", kept, perC)
	}
}
