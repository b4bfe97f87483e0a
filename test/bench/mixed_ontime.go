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
	"fmt"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// held is one token of one AccessToken: when it arrived (was issued by the
// endpoint, or was seen in the Secret) and when it expires, by the endpoint's
// clock.
type held struct {
	at, expiry time.Time
}

// renewal is the replacement of one token by the next.
type renewal struct {
	key    string
	expiry time.Time // of the token being replaced
	next   time.Time // when its successor arrived; zero if none has
}

// onTime tells whether the successor arrived strictly before the expiry.
func (r renewal) onTime() bool { return !r.next.IsZero() && r.next.Before(r.expiry) }

// lead is the time from the successor's arrival to the replaced token's
// expiry: negative when it was late. Meaningless when there is no successor.
func (r renewal) lead() time.Duration { return r.expiry.Sub(r.next) }

// renewalsOf lists the renewals of one AccessToken that fall in [from, to]:
// each token's replacement counts at the moment it arrived or, if that was
// later or never, at the moment the token expired (from then on it was
// overdue). A token that has not expired by `to` and has no successor is not
// due yet and is not listed.
func renewalsOf(key string, seq []held, from, to time.Time) []renewal {
	s := append([]held(nil), seq...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].at.Before(s[j].at) })
	var out []renewal
	for i, h := range s {
		r := renewal{key: key, expiry: h.expiry}
		when := h.expiry // overdue from then on
		if i+1 < len(s) {
			r.next = s[i+1].at
			if r.next.Before(when) {
				when = r.next
			}
		}
		if when.Before(from) || when.After(to) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// renewalSummary is the on-time account of a set of AccessTokens over a window.
type renewalSummary struct {
	due     int // renewals that fell in the window
	onTime  int // of them, successor before the expiry
	late    int // successor after the expiry
	missing int // no successor although the token expired in the window
	// neverIssued are expected AccessTokens that never had a token at all.
	neverIssued []string
	// minLead is the smallest lead of a renewal that happened (negative: late),
	// on the AccessToken minLeadKey; medianLead is the median of those leads.
	minLead, medianLead time.Duration
	minLeadKey          string
	renewed             int // renewals that happened (on time or late)
}

// percent is the share of due renewals that were on time; 0 when none was due.
func (s renewalSummary) percent() float64 {
	if s.due == 0 {
		return 0
	}
	return 100 * float64(s.onTime) / float64(s.due)
}

// perfect is true when every expected AccessToken was issued, at least one
// renewal was due, and every due renewal was on time.
func (s renewalSummary) perfect() bool {
	return s.due > 0 && s.onTime == s.due && len(s.neverIssued) == 0
}

// summarizeRenewals accounts every expected AccessToken's renewals in [from, to].
func summarizeRenewals(seqs map[string][]held, expected []string, from, to time.Time) renewalSummary {
	var s renewalSummary
	var leads []time.Duration
	keys := make([]string, 0, len(seqs))
	for k := range seqs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, r := range renewalsOf(k, seqs[k], from, to) {
			s.due++
			switch {
			case r.next.IsZero():
				s.missing++
				continue
			case r.onTime():
				s.onTime++
			default:
				s.late++
			}
			l := r.lead()
			if len(leads) == 0 || l < s.minLead {
				s.minLead, s.minLeadKey = l, k
			}
			leads = append(leads, l)
		}
	}
	for _, k := range expected {
		if len(seqs[k]) == 0 {
			s.neverIssued = append(s.neverIssued, k)
		}
	}
	s.renewed = len(leads)
	if len(leads) > 0 {
		sort.Slice(leads, func(i, j int) bool { return leads[i] < leads[j] })
		s.medianLead = leads[len(leads)/2]
	}
	return s
}

// chartMemoryLimit reads resources.limits.memory from the chart's values.yaml.
func chartMemoryLimit(values []byte) (string, float64, error) {
	var v struct {
		Resources struct {
			Limits map[string]string `json:"limits"`
		} `json:"resources"`
	}
	if err := yaml.Unmarshal(values, &v); err != nil {
		return "", 0, err
	}
	s := v.Resources.Limits["memory"]
	if s == "" {
		return "", 0, fmt.Errorf("no resources.limits.memory")
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return "", 0, fmt.Errorf("resources.limits.memory %q: %w", s, err)
	}
	return s, float64(q.Value()), nil
}
