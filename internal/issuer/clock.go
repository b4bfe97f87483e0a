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

package issuer

import (
	"net/http"
	"slices"
	"sync"
	"time"
)

// MaxClockOffset bounds the provider clock offset the engine believes: a Date
// header further than this from the local clock is a broken header (a server
// stuck in 1970, a proxy's cached answer), not a clock to follow, and is
// ignored.
const MaxClockOffset = time.Hour

// minClockCorrection is the smallest offset the engine corrects: below it the
// measurement (a Date header's whole second, half a round trip) is as large
// as the offset, and renewal long before expiry absorbs the difference.
const minClockCorrection = 2 * time.Second

// clockSamples is how many recent answers the offset is the median of: one
// slow answer or one proxy's Date cannot move it.
const clockSamples = 5

// clockRetryThreshold is the change of the offset, measured from a refused
// answer, after which a request that carried times (a signed JWT, a generated
// timestamp) is sent once more with the provider's time.
const clockRetryThreshold = 30 * time.Second

// ProviderClock is what the engine knows of one issuer's clock: the offset of
// its Date header from the local clock, the median of the last few answers.
// Times the provider writes (absolute expiries, Retry-After dates) are turned
// into local time with it, and times written for the provider (the iat, nbf
// and exp of signed JWTs, generated timestamps) are written on the provider's
// clock. It is safe for concurrent use; the zero value knows nothing and
// corrects nothing until it has measured.
//
// A Date header has a resolution of one second and the answer takes a round
// trip, so each sample is the Date (plus half a second, the middle of the
// second it names) minus the midpoint of send and receive: its error is at
// most half a second plus half the round trip.
type ProviderClock struct {
	// Correct applies the offset; when false the offset is only measured,
	// for the metric and the warning.
	Correct bool

	mu      sync.Mutex
	samples []time.Duration
	next    int
}

// NewProviderClock returns a clock that applies the offset when correct is true.
func NewProviderClock(correct bool) *ProviderClock {
	return &ProviderClock{Correct: correct}
}

// Observe records the Date header of an answer to a request sent at sent and
// received at received (local clock). An absent, unparsable or implausible
// header is ignored; ok reports whether a sample was taken.
func (p *ProviderClock) Observe(header http.Header, sent, received time.Time) (ok bool) {
	if p == nil {
		return false
	}
	offset, ok := dateOffset(header, sent, received)
	if !ok {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.samples) < clockSamples {
		p.samples = append(p.samples, offset)
	} else {
		p.samples[p.next] = offset
	}
	p.next = (p.next + 1) % clockSamples
	return true
}

// Offset is the provider's clock minus the local clock; known is false before
// any answer carried a usable Date header.
func (p *ProviderClock) Offset() (offset time.Duration, known bool) {
	if p == nil {
		return 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.samples) == 0 {
		return 0, false
	}
	sorted := slices.Clone(p.samples)
	slices.Sort(sorted)
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2], true
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2, true
}

// correction is the offset the engine applies: zero when correction is off or
// nothing was measured yet.
func (p *ProviderClock) correction() time.Duration {
	if p == nil || !p.Correct {
		return 0
	}
	offset, _ := p.Offset()
	if offset < minClockCorrection && offset > -minClockCorrection {
		return 0
	}
	return offset
}

// dateOffset is one sample: the answer's Date against the midpoint of send
// and receive.
func dateOffset(header http.Header, sent, received time.Time) (time.Duration, bool) {
	value := header.Get("Date")
	if value == "" {
		return 0, false
	}
	date, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	if received.Before(sent) {
		received = sent
	}
	midpoint := sent.Add(received.Sub(sent) / 2)
	offset := date.Add(time.Second / 2).Sub(midpoint)
	if offset > MaxClockOffset || offset < -MaxClockOffset {
		return 0, false
	}
	return offset, true
}

// resendOnProviderTime reports whether a request refused with err should be
// sent once more: it carried times (a signed JWT, a timestamp), the provider
// refused it as unauthorised or malformed, which is how providers refuse a
// JWT "not yet valid" or "expired", and its answer moved the measured offset
// by more than clockRetryThreshold from the one the request was written with.
func (a answer) resendOnProviderTime(err error) bool {
	if !a.timed {
		return false
	}
	if class := ClassOf(err); class != ClassUnauthorized && class != ClassBadRequest {
		return false
	}
	moved := a.offset - a.sentOffset
	return moved > clockRetryThreshold || moved < -clockRetryThreshold
}
