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

package v1alpha1

import "time"

// RateLimit is the pace of calls to an issuer's endpoints, as providers
// document theirs: calls per period ("5 per 1s", "600 per 1m", "5000 per 1h"),
// and how many may go at once after a quiet spell.
// +kubebuilder:validation:XValidation:rule="!has(self.period) || (duration(self.period) >= duration('1s') && duration(self.period) <= duration('24h'))",message="period must be between 1s and 24h"
// +kubebuilder:validation:XValidation:rule="!has(self.burst) || self.burst <= self.calls",message="burst must not be greater than calls"
type RateLimit struct {
	// calls is how many calls the issuer's endpoints receive per period, all
	// its AccessTokens together: mints, refreshes and revocations.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	Calls int32 `json:"calls"`

	// period is the time calls are counted over, from 1s to 24h.
	// +kubebuilder:default="1s"
	// +optional
	Period *Duration `json:"period,omitempty"`

	// burst is how many calls may go at once after a quiet spell; default:
	// calls, at most 10.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	// +optional
	Burst *int32 `json:"burst,omitempty"`
}

// PerSecond returns the calls per second and the burst the limit allows.
func (r *RateLimit) PerSecond() (float64, int) {
	period := time.Second
	if r.Period != nil && r.Period.Duration >= time.Second {
		period = r.Period.Duration
	}
	calls := max(1, int(r.Calls))
	burst := min(calls, 10)
	if r.Burst != nil && *r.Burst >= 1 {
		burst = int(*r.Burst)
	}
	return float64(calls) / period.Seconds(), burst
}
