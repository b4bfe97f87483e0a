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

package rotation

import (
	"fmt"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func TestRenewalTimeWindow(t *testing.T) {
	hour := t0.Add(time.Hour)
	cases := []struct {
		name          string
		expires       *time.Time
		policy        Policy
		earliest, due time.Duration // renewal falls in [issued+earliest, issued+due]
	}{
		{"default two thirds", &hour, Policy{}, 30 * time.Minute, 40 * time.Minute},
		{"renewBefore", &hour, Policy{RenewBefore: ptr(10 * time.Minute)}, 37*time.Minute + 30*time.Second, 50 * time.Minute},
		{"percentage", &hour, Policy{RenewBeforePercentage: ptr[int32](25)}, 33*time.Minute + 45*time.Second, 45 * time.Minute},
		{"maxAge shorter than expiry", &hour, Policy{MaxAge: ptr(30 * time.Minute)}, 15 * time.Minute, 20 * time.Minute},
		{"maxAge without expiry", nil, Policy{MaxAge: ptr(time.Hour)}, 30 * time.Minute, 40 * time.Minute},
		{"renewBefore longer than lifetime", &hour, Policy{RenewBefore: ptr(2 * time.Hour)}, 30 * time.Minute, 40 * time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i := range 200 {
				got := RenewalTime(t0, c.expires, c.policy, fmt.Sprintf("uid-%d", i))
				if got == nil {
					t.Fatal("no renewal time")
				}
				if got.Before(t0.Add(c.earliest)) || got.After(t0.Add(c.due)) {
					t.Fatalf("renewal at +%v, want within [+%v, +%v]", got.Sub(t0), c.earliest, c.due)
				}
			}
		})
	}
}

func TestRenewalTimeNeverWithoutExpiryOrMaxAge(t *testing.T) {
	if got := RenewalTime(t0, nil, Policy{}, "uid"); got != nil {
		t.Fatalf("got %v, want nil", got)
	}
}

func TestRenewalTimeIsDeterministicPerObject(t *testing.T) {
	exp := t0.Add(time.Hour)
	a := RenewalTime(t0, &exp, Policy{}, "uid-a")
	if again := RenewalTime(t0, &exp, Policy{}, "uid-a"); !again.Equal(*a) {
		t.Fatalf("same key gave %v then %v", a, again)
	}
}

// Tokens issued in the same second with one-hour lifetimes must renew spread over
// at least a tenth of the lifetime, with no minute holding more than twice the mean.
func TestRenewalTimesSpread(t *testing.T) {
	exp := t0.Add(time.Hour)
	perMinute := map[int64]int{}
	var first, last time.Time
	const n = 1000
	for i := range n {
		r := *RenewalTime(t0, &exp, Policy{}, fmt.Sprintf("8b0f6c1e-%04d-4c1e-9d6b-%012d", i, i*7919))
		if first.IsZero() || r.Before(first) {
			first = r
		}
		if r.After(last) {
			last = r
		}
		perMinute[r.Unix()/60]++
	}
	if spread := last.Sub(first); spread < 6*time.Minute {
		t.Fatalf("renewals spread over %v, want at least 6m", spread)
	}
	mean := float64(n) / float64(len(perMinute))
	for m, count := range perMinute {
		if float64(count) > 2*mean {
			t.Fatalf("minute %d holds %d renewals, mean %.1f", m, count, mean)
		}
	}
}

func TestBackoff(t *testing.T) {
	cases := []struct {
		name string
		f    Failure
		want time.Duration
	}{
		{"first failure", Failure{Attempts: 1}, time.Second},
		{"doubles", Failure{Attempts: 4}, 8 * time.Second},
		{"capped at five minutes", Failure{Attempts: 20}, 5 * time.Minute},
		{"huge attempt count", Failure{Attempts: 1 << 30}, 5 * time.Minute},
		{"capped at a tenth of the remaining lifetime", Failure{Attempts: 10, Remaining: ptr(10 * time.Minute)}, time.Minute},
		{"never below a second", Failure{Attempts: 10, Remaining: ptr(2 * time.Second)}, time.Second},
		{"expired token is not a cap", Failure{Attempts: 10, Remaining: ptr(-time.Minute)}, 5 * time.Minute},
		{"retry-after wins over a shorter backoff", Failure{Attempts: 1, RetryAfter: 30 * time.Second}, 30 * time.Second},
		{"retry-after wins over the lifetime cap", Failure{Attempts: 10, RetryAfter: 2 * time.Minute, Remaining: ptr(10 * time.Minute)}, 2 * time.Minute},
		{"terminal starts slowly", Failure{Attempts: 1, Terminal: true}, time.Minute},
		{"terminal grows", Failure{Attempts: 3, Terminal: true}, 4 * time.Minute},
		{"terminal capped at an hour", Failure{Attempts: 12, Terminal: true}, time.Hour},
		{"terminal ignores the lifetime cap", Failure{Attempts: 1, Terminal: true, Remaining: ptr(time.Minute)}, time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Backoff(c.f); got != c.want {
				t.Fatalf("Backoff(%+v) = %v, want %v", c.f, got, c.want)
			}
		})
	}
}
