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

// The pure checks of the shards mode: whether the ranges are balanced over
// the live replicas, when a killed replica's ranges were served again, whether
// a Secret ever held an expired token, and whether every mint reached a Secret.

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// rangeHolder is what a range Lease says: who holds it and when it was last
// renewed.
type rangeHolder struct {
	holder string
	renew  time.Time
}

// balance is the share of the ranges each live replica holds, by the Leases.
type balance struct {
	counts   map[string]int // live replica identity to ranges held
	orphaned []int          // ranges held by no live replica, or not renewed for a lease duration
	ok       bool           // every range held by a live replica, the counts differ by at most one
}

// balanceOf checks the range Leases against the live replicas: every one of
// the ranges must be held by a live replica that renewed it within
// leaseDuration of now, and the live replicas' counts (a replica holding none
// counts as 0) may differ by at most one.
func balanceOf(holders map[int]rangeHolder, live []string, ranges int, leaseDuration time.Duration, now time.Time) balance {
	b := balance{counts: map[string]int{}}
	for _, id := range live {
		b.counts[id] = 0
	}
	for rng := range ranges {
		h, ok := holders[rng]
		if _, alive := b.counts[h.holder]; !ok || h.holder == "" || !alive || now.Sub(h.renew) > leaseDuration {
			b.orphaned = append(b.orphaned, rng)
			continue
		}
		b.counts[h.holder]++
	}
	if len(live) == 0 || len(b.orphaned) > 0 {
		return b
	}
	lo, hi := ranges, 0
	for _, n := range b.counts {
		lo, hi = min(lo, n), max(hi, n)
	}
	b.ok = hi-lo <= 1
	return b
}

// describe lists the counts in the order of live, e.g. "6, 5, 5".
func (b balance) describe(live []string) string {
	parts := make([]string, 0, len(live))
	for _, id := range live {
		parts = append(parts, fmt.Sprint(b.counts[id]))
	}
	s := strings.Join(parts, ", ")
	if len(b.orphaned) > 0 {
		s += fmt.Sprintf("; %d not served", len(b.orphaned))
	}
	return s
}

// failover follows the ranges a killed replica held until each is held by
// another replica.
type failover struct {
	killed  string
	at      time.Time
	pending map[int]bool
	last    time.Time // when the last of them was taken
}

func newFailover(killed string, at time.Time, holders map[int]rangeHolder) *failover {
	f := &failover{killed: killed, at: at, pending: map[int]bool{}}
	for rng, h := range holders {
		if h.holder == killed {
			f.pending[rng] = true
		}
	}
	return f
}

// observe records the Leases seen at now; a range counts as served again once
// a replica other than the killed one holds it.
func (f *failover) observe(holders map[int]rangeHolder, now time.Time) {
	for rng := range f.pending {
		if h := holders[rng]; h.holder != "" && h.holder != f.killed {
			delete(f.pending, rng)
			f.last = now
		}
	}
}

// done tells whether every range has been taken, and how long after the kill
// the last was.
func (f *failover) done() (bool, time.Duration) {
	if len(f.pending) > 0 {
		return false, 0
	}
	if f.last.IsZero() {
		return true, 0
	}
	return true, f.last.Sub(f.at)
}

// expiryGap is a time a Secret held a token that had expired: from its expiry
// until the next token arrived, or until the end of the observation.
type expiryGap struct {
	key      string
	from, to time.Time
}

// expiryGaps lists the gaps of one Secret whose tokens arrived as seq (each
// with its expiry), observed until end.
func expiryGaps(key string, seq []held, end time.Time) []expiryGap {
	s := slices.Clone(seq)
	sort.SliceStable(s, func(i, j int) bool { return s[i].at.Before(s[j].at) })
	var out []expiryGap
	for i, h := range s {
		until := end
		if i+1 < len(s) {
			until = s[i+1].at
		}
		if h.expiry.Before(until) {
			out = append(out, expiryGap{key: key, from: h.expiry, to: until})
		}
	}
	return out
}

// mint is one token the endpoint issued.
type mint struct {
	subject string
	token   string
	at      time.Time
}

// mintAccount compares what the endpoint issued with what reached the
// Secrets.
type mintAccount struct {
	issued int // tokens the endpoint issued
	stored int // of them, seen in their AccessToken's Secret
	// lostToKill are tokens never stored that were issued within the grace
	// before a SIGKILL: the killed replica may have minted them and died before
	// writing (documented; the next holder mints anew).
	lostToKill int
	// wasted are tokens never stored otherwise: a mint that did not need to
	// happen.
	wasted []mint
	// close are mints of one AccessToken less than minInterval after its
	// previous mint: two mints for one renewal.
	close []mint
	// shortest is the least time between two mints of one AccessToken (the
	// earlier not lost to a kill), on shortestSubject; 0 when none minted twice.
	shortest        time.Duration
	shortestSubject string
}

// accountMints checks every issued token against the tokens seen in Secrets.
// kills are the times of SIGKILLs; a token issued within grace before one,
// or within after it (a call the killed replica had sent is answered, and
// logged, when the endpoint's delay is over, whether or not it noticed the
// connection close), and never stored counts as lost to it.
func accountMints(mints []mint, stored map[string]bool, kills []time.Time, grace, after, minInterval time.Duration) mintAccount {
	var a mintAccount
	s := slices.Clone(mints)
	sort.SliceStable(s, func(i, j int) bool { return s[i].at.Before(s[j].at) })
	// last is each AccessToken's previous mint that was not lost to a kill.
	last := map[string]time.Time{}
	for _, m := range s {
		a.issued++
		if prev, ok := last[m.subject]; ok {
			gap := m.at.Sub(prev)
			if gap < minInterval {
				a.close = append(a.close, m)
			}
			if a.shortestSubject == "" || gap < a.shortest {
				a.shortest, a.shortestSubject = gap, m.subject
			}
		}
		if stored[m.token] {
			a.stored++
			last[m.subject] = m.at
			continue
		}
		killed := false
		for _, k := range kills {
			if !m.at.After(k.Add(after)) && k.Sub(m.at) <= grace {
				killed = true
			}
		}
		if killed {
			a.lostToKill++
			continue
		}
		a.wasted = append(a.wasted, m)
		last[m.subject] = m.at
	}
	return a
}

// ok is true when every mint but those lost to a kill reached a Secret and no
// AccessToken was minted twice within the interval.
func (a mintAccount) ok() bool { return len(a.wasted) == 0 && len(a.close) == 0 }
