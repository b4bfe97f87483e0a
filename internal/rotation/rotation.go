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

// Package rotation holds the pure timing decisions of token renewal: when a token
// is due, the per-object jitter that spreads renewals, and the retry backoff. Every
// function takes the current time; nothing here reads a clock.
package rotation

import (
	"hash/fnv"
	"time"
)

// DefaultRenewAtFraction renews a token once this fraction of its lifetime has passed
// when the AccessToken sets neither renewBefore nor renewBeforePercentage.
const DefaultRenewAtFraction = 2.0 / 3.0

// JitterFraction is the largest share of the time between issue and the nominal
// renewal by which renewal is brought forward. Renewal only ever moves earlier
// than asked, never later, so the token is still renewed well before expiry.
const JitterFraction = 0.25

// Policy is an AccessToken's renewal settings.
type Policy struct {
	// RenewBefore renews this long before expiry.
	RenewBefore *time.Duration
	// RenewBeforePercentage renews when this percentage of the lifetime is left.
	RenewBeforePercentage *int32
	// MaxAge renews after this long whatever the expiry, and is the lifetime of
	// tokens that have no expiry.
	MaxAge *time.Duration
}

// RenewalTime returns when a token issued at issuedAt, expiring at expiresAt (nil
// when unknown), should be renewed under p, brought forward by the deterministic
// jitter of key (an object's UID). It returns nil when the token never needs
// renewal on time alone (no expiry and no MaxAge).
func RenewalTime(issuedAt time.Time, expiresAt *time.Time, p Policy, key string) *time.Time {
	end := expiresAt
	if p.MaxAge != nil {
		byAge := issuedAt.Add(*p.MaxAge)
		if end == nil || byAge.Before(*end) {
			end = &byAge
		}
	}
	if end == nil {
		return nil
	}
	lifetime := end.Sub(issuedAt)
	if lifetime <= 0 {
		t := issuedAt
		return &t
	}
	var lead time.Duration // how long before end to renew
	switch {
	case p.RenewBefore != nil:
		lead = *p.RenewBefore
	case p.RenewBeforePercentage != nil:
		lead = time.Duration(float64(lifetime) * float64(*p.RenewBeforePercentage) / 100)
	default:
		lead = time.Duration(float64(lifetime) * (1 - DefaultRenewAtFraction))
	}
	// A renewBefore longer than the lifetime would renew immediately, again and
	// again: fall back to the default share of the lifetime instead.
	if lead >= lifetime {
		lead = time.Duration(float64(lifetime) * (1 - DefaultRenewAtFraction))
	}
	nominal := lifetime - lead
	jitter := time.Duration(float64(nominal) * JitterFraction * unitHash(key))
	t := issuedAt.Add(nominal - jitter).Truncate(time.Second)
	if t.Before(issuedAt) {
		t = issuedAt
	}
	return &t
}

// unitHash maps key to a number in [0, 1), the same for the same key.
func unitHash(key string) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return float64(h.Sum64()>>11) / float64(1<<53)
}

// Backoff limits.
const (
	// InitialBackoff is the wait after the first failure.
	InitialBackoff = time.Second
	// MaxBackoff caps the wait between retries of a retryable failure.
	MaxBackoff = 5 * time.Minute
	// InitialTerminalBackoff is the wait after the first failure that will not
	// heal by itself (unauthorized, bad request): the configuration must change,
	// and a change is retried at once.
	InitialTerminalBackoff = time.Minute
	// MaxTerminalBackoff caps the wait between retries of terminal failures.
	MaxTerminalBackoff = time.Hour
	// MinBackoff is never undercut, even close to expiry.
	MinBackoff = time.Second
)

// Failure describes the failed attempts so far.
type Failure struct {
	// Attempts is the number of consecutive failed attempts (1 after the first).
	Attempts int32
	// Terminal is true when the error will not heal without a configuration change.
	Terminal bool
	// RetryAfter is the provider's own Retry-After delay, if any.
	RetryAfter time.Duration
	// Remaining is the lifetime left in the current token, if one is known and
	// still valid; retries then come at least ten times before it expires.
	Remaining *time.Duration
}

// Backoff returns how long to wait after the failure before trying again:
// exponential from InitialBackoff, capped at MaxBackoff and at a tenth of the
// token's remaining lifetime, never shorter than the provider's Retry-After.
// Terminal failures back off from InitialTerminalBackoff up to MaxTerminalBackoff.
func Backoff(f Failure) time.Duration {
	initial, ceiling := InitialBackoff, MaxBackoff
	if f.Terminal {
		initial, ceiling = InitialTerminalBackoff, MaxTerminalBackoff
	}
	d := ceiling
	if n := f.Attempts - 1; n < 0 {
		d = initial
	} else if n < 30 && initial<<n < ceiling {
		d = initial << n
	}
	if !f.Terminal && f.Remaining != nil && *f.Remaining > 0 && *f.Remaining/10 < d {
		d = *f.Remaining / 10
	}
	if d < MinBackoff {
		d = MinBackoff
	}
	if f.RetryAfter > d {
		d = f.RetryAfter
	}
	return d
}
