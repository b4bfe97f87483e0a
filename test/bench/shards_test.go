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

package main

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestShardsBalance(t *testing.T) {
	now := time.Unix(10000, 0)
	fresh, stale := now.Add(-time.Second), now.Add(-20*time.Second)
	lease := 15 * time.Second
	holders := func(ids ...string) map[int]rangeHolder {
		m := map[int]rangeHolder{}
		for i, id := range ids {
			m[i] = rangeHolder{holder: id, renew: fresh}
		}
		return m
	}
	tests := []struct {
		name     string
		holders  map[int]rangeHolder
		live     []string
		ranges   int
		ok       bool
		describe string
	}{
		{"even", holders("a", "b", "a", "b"), []string{"a", "b"}, 4, true, "2, 2"},
		{"one more", holders("a", "b", "c", "a", "b"), []string{"a", "b", "c"}, 5, true, "2, 2, 1"},
		{"two more", holders("a", "a", "a", "b"), []string{"a", "b"}, 4, false, "3, 1"},
		{"a live replica holding none", holders("a", "a", "b"), []string{"a", "b", "c"}, 3, false, "2, 1, 0"},
		{"held by a replica not live", holders("a", "gone", "b", "b"), []string{"a", "b"}, 4, false, "1, 2; 1 not served"},
		{"a range without a Lease", holders("a", "b", "a"), []string{"a", "b"}, 4, false, "2, 1; 1 not served"},
		{"released (no holder)", holders("a", "", "b", "b"), []string{"a", "b"}, 4, false, "1, 2; 1 not served"},
		{"no live replica", holders("a"), nil, 1, false, "; 1 not served"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := balanceOf(tc.holders, tc.live, tc.ranges, lease, now)
			if b.ok != tc.ok {
				t.Errorf("ok = %v, want %v", b.ok, tc.ok)
			}
			if got := b.describe(tc.live); got != tc.describe {
				t.Errorf("describe = %q, want %q", got, tc.describe)
			}
		})
	}
	t.Run("a Lease not renewed for a lease duration", func(t *testing.T) {
		h := holders("a", "b")
		h[1] = rangeHolder{holder: "b", renew: stale}
		if b := balanceOf(h, []string{"a", "b"}, 2, lease, now); b.ok || len(b.orphaned) != 1 || b.orphaned[0] != 1 {
			t.Errorf("balance = %+v, want range 1 orphaned", b)
		}
	})
}

func TestShardsFailover(t *testing.T) {
	kill := time.Unix(10000, 0)
	f := newFailover("dead", kill, map[int]rangeHolder{0: {holder: "dead"}, 1: {holder: "alive"}, 2: {holder: "dead"}})
	if len(f.pending) != 2 {
		t.Fatalf("pending = %v, want ranges 0 and 2", f.pending)
	}
	// Still the dead holder, or released: not served yet.
	f.observe(map[int]rangeHolder{0: {holder: "dead"}, 1: {holder: "alive"}, 2: {holder: ""}}, kill.Add(5*time.Second))
	if ok, _ := f.done(); ok {
		t.Fatal("done before any range was taken")
	}
	f.observe(map[int]rangeHolder{0: {holder: "alive"}, 1: {holder: "alive"}, 2: {holder: ""}}, kill.Add(16*time.Second))
	if ok, _ := f.done(); ok {
		t.Fatal("done with range 2 still unserved")
	}
	// A range taken and later handed on again does not move the time.
	f.observe(map[int]rangeHolder{0: {holder: "other"}, 1: {holder: "alive"}, 2: {holder: "other"}}, kill.Add(18*time.Second))
	f.observe(map[int]rangeHolder{0: {holder: "alive"}, 1: {holder: "alive"}, 2: {holder: "alive"}}, kill.Add(40*time.Second))
	ok, d := f.done()
	if !ok || d != 18*time.Second {
		t.Errorf("done = %v, %s; want true, 18s", ok, d)
	}
	if ok, d := newFailover("dead", kill, map[int]rangeHolder{0: {holder: "alive"}}).done(); !ok || d != 0 {
		t.Errorf("a killed replica that held nothing: done = %v, %s; want true, 0", ok, d)
	}
}

func TestShardsExpiryGaps(t *testing.T) {
	t0 := time.Unix(10000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name string
		seq  []held
		end  time.Time
		want []expiryGap
	}{
		{"renewed before each expiry", []held{{at(0), at(120)}, {at(80), at(200)}, {at(160), at(280)}}, at(250), nil},
		{"renewed one second late", []held{{at(0), at(120)}, {at(121), at(241)}}, at(200),
			[]expiryGap{{"k", at(120), at(121)}}},
		{"renewed exactly at the expiry", []held{{at(0), at(120)}, {at(120), at(240)}}, at(200), nil},
		{"the last token expired before the end", []held{{at(0), at(120)}, {at(80), at(200)}}, at(230),
			[]expiryGap{{"k", at(200), at(230)}}},
		{"out of order, as watched", []held{{at(80), at(200)}, {at(0), at(60)}}, at(150),
			[]expiryGap{{"k", at(60), at(80)}}},
		{"nothing held", nil, at(100), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := expiryGaps("k", tc.seq, tc.end)
			if len(got) != len(tc.want) {
				t.Fatalf("gaps = %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("gap %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestShardsMintAccount(t *testing.T) {
	t0 := time.Unix(10000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	kill := at(100)
	mints := []mint{
		{"a", "a1", at(0)}, {"a", "a2", at(80)}, // renewed
		{"b", "b1", at(0)}, {"b", "b2", at(98)}, {"b", "b3", at(110)}, // b2 died with the killed replica; b3 is the next holder's
		{"c", "c1", at(0)}, {"c", "c2", at(50)}, // c2 never written, no kill near: wasted
		{"d", "d1", at(0)}, {"d", "d2", at(3)}, // both written, 3 s apart: two mints for one renewal
	}
	stored := map[string]bool{"a1": true, "a2": true, "b1": true, "b3": true, "c1": true, "d1": true, "d2": true}
	a := accountMints(mints, stored, []time.Time{kill}, 5*time.Second, 500*time.Millisecond, 10*time.Second)
	if a.issued != 9 || a.stored != 7 || a.lostToKill != 1 {
		t.Errorf("issued, stored, lost to the kill = %d, %d, %d; want 9, 7, 1", a.issued, a.stored, a.lostToKill)
	}
	if len(a.wasted) != 1 || a.wasted[0].token != "c2" {
		t.Errorf("wasted = %+v, want c2", a.wasted)
	}
	if len(a.close) != 1 || a.close[0].token != "d2" {
		t.Errorf("close = %+v, want d2 (b3 follows a mint lost to the kill)", a.close)
	}
	if a.shortest != 3*time.Second || a.shortestSubject != "d" {
		t.Errorf("shortest = %s on %q, want 3s on d", a.shortest, a.shortestSubject)
	}
	if a.ok() {
		t.Error("ok with a wasted mint and a double mint")
	}
	clean := accountMints(mints[:5], stored, []time.Time{kill}, 5*time.Second, 500*time.Millisecond, 10*time.Second)
	if !clean.ok() || clean.lostToKill != 1 {
		t.Errorf("clean account = %+v, want ok with one mint lost to the kill", clean)
	}
	// A mint after the kill, or long before it, is not excused by it; one
	// answered just after it (the killed replica's call, answered once the
	// endpoint's delay was over) is.
	late := accountMints([]mint{{"e", "e1", at(101)}, {"f", "f1", at(90)}, {"g", "g1", kill.Add(300 * time.Millisecond)}}, nil,
		[]time.Time{kill}, 5*time.Second, 500*time.Millisecond, 10*time.Second)
	if late.lostToKill != 1 || len(late.wasted) != 2 || slices.ContainsFunc(late.wasted, func(m mint) bool { return m.token == "g1" }) {
		t.Errorf("late = %+v, want e1 and f1 wasted, g1 lost to the kill", late)
	}
}

func TestShardsHandoversFromLogs(t *testing.T) {
	log := strings.Join([]string{
		`--- 2026-12-07T12:49:00Z /manager --shard-ranges=16`,
		`{"level":"info","ts":"2026-12-07T12:50:07Z","logger":"cache","msg":"ranges taken listed into the cache","kind":"Secret","ranges":[11,12],"kept":3140,"listed":10001,"seconds":2.019}`,
		`{"level":"info","ts":"2026-12-07T12:50:10Z","logger":"cache","msg":"ranges taken listed into the cache","kind":"AccessToken","ranges":[11,12],"kept":3140,"listed":10000,"seconds":4.622}`,
		`{"level":"info","ts":"2026-12-07T12:52:39Z","logger":"cache","msg":"ranges taken listed into the cache","kind":"AccessToken","ranges":[3],"kept":640,"listed":10000,"seconds":1.5}`,
		`{"level":"info","ts":"2026-12-07T12:50:12Z","logger":"sharding","msg":"handing a range over: the replica that takes it has it cached","range":4,"to":"vm-1bbd17","waited":"6s"}`,
		`{"level":"info","ts":"2026-12-07T12:50:12Z","logger":"sharding","msg":"handing a range over: the replica that takes it has it cached","range":5,"to":"vm-1bbd17","waited":"6s"}`,
		`{"level":"info","ts":"2026-12-07T12:55:12Z","logger":"sharding","msg":"handing a range over before the replica that takes it has it cached (--shard-handover-timeout)","range":6,"to":"vm-1bbd17","waited":"5m0s"}`,
		`{"level":"info","ts":"2026-12-07T12:53:51Z","logger":"sharding","msg":"handing the ranges over before stopping","ranges":[0,1,2,3],"timeout":"15s"}`,
		`{"level":"info","ts":"2026-12-07T12:53:59Z","logger":"sharding","msg":"stopping","rangesLeft":[2,3],"seconds":15.0}`,
		`{"level":"info","ts":"2026-12-07T12:54:00Z","logger":"controller-runtime","msg":"stopping"}`,
		`not json`,
	}, "\n")
	var h handovers
	h.longestLoad = map[string]float64{}
	if err := h.add(strings.NewReader(log)); err != nil {
		t.Fatal(err)
	}
	if h.warm != 2 || h.timedOut != 1 || h.leftAtStop != 2 {
		t.Fatalf("warm %d, timed out %d, left at stop %d; want 2, 1, 2", h.warm, h.timedOut, h.leftAtStop)
	}
	if got := h.loads(); got != "AccessToken 4.6 s, Secret 2.0 s" {
		t.Fatalf("loads %q", got)
	}
}

// TestHandoverMessagesAreTheManagers: the lines readHandovers counts are
// the ones the manager writes.
func TestHandoverMessagesAreTheManagers(t *testing.T) {
	src := map[string]string{}
	for _, p := range []string{"../../internal/sharding/coordinator.go", "../../internal/sharding/cachefilter.go", "../../internal/controller/sharding.go"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		src[p] = string(b)
	}
	for _, msg := range []string{msgWarm, msgTimedOut, `"` + msgStopping + `"`, msgRangeLoad} {
		found := false
		for _, s := range src {
			found = found || strings.Contains(s, msg)
		}
		if !found {
			t.Errorf("no manager source writes %q", msg)
		}
	}
}

func TestNeverWrittenNamesTheMintsToLookUp(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := neverWritten(nil, start); got != "" {
		t.Fatalf("no mint lost: %q, want nothing", got)
	}
	a := accountMints([]mint{{subject: "t-1", token: "a", at: start.Add(time.Minute)}, {subject: "t-2", token: "b", at: start.Add(90 * time.Second)}},
		map[string]bool{"a": true}, nil, 5*time.Second, time.Second, 5*time.Second)
	if got, want := neverWritten(a.wasted, start), "; never written: t-2 at 1m30s (from the run's start)"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
