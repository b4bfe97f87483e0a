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
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/lru"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// Defaults of the limits that keep one tenant from costing another.
const (
	// DefaultIssuerConcurrency is the most calls in flight to one issuer.
	DefaultIssuerConcurrency = 20
	// DefaultNamespaceConcurrency is the most calls in flight for one
	// namespace's AccessTokens, over all issuers.
	DefaultNamespaceConcurrency = 20
	// DefaultMinMintInterval is the least time between two mints of one AccessToken.
	DefaultMinMintInterval = 10 * time.Second
	// DefaultForcedRenewalRate and DefaultForcedRenewalBurst limit, per
	// namespace, the mints asked for ahead of schedule (renew annotation, input
	// changes).
	DefaultForcedRenewalRate  = 1.0
	DefaultForcedRenewalBurst = 20
	// maxLimitedNamespaces bounds the namespaces whose forced-renewal budgets
	// are remembered; the least recently used start afresh.
	maxLimitedNamespaces = 4096
)

// NamespaceLimiters is a token bucket per namespace, driven by the caller's clock.
type NamespaceLimiters struct {
	rate  rate.Limit
	burst int

	mu       sync.Mutex
	limiters *lru.Cache
}

// NewNamespaceLimiters allows perSecond events with burst per namespace.
func NewNamespaceLimiters(perSecond float64, burst int) *NamespaceLimiters {
	return &NamespaceLimiters{rate: rate.Limit(perSecond), burst: max(1, burst), limiters: lru.New(maxLimitedNamespaces)}
}

// Take spends one event of namespace's budget at now, or returns how long to
// wait for one (spending nothing).
func (l *NamespaceLimiters) Take(namespace string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.limiters.Get(namespace)
	if !ok {
		v = rate.NewLimiter(l.rate, l.burst)
		l.limiters.Add(namespace, v)
	}
	lim := v.(*rate.Limiter)
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return time.Minute
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d
	}
	return 0
}

// mintWait returns how long a mint decided by d must wait, and why: one
// AccessToken is minted at most once per MinMintInterval, whatever asks (the
// last attempt is known from status, and from this process's memory for
// attempts whose status write is not seen yet), and mints asked for ahead of
// schedule spend their namespace's budget.
func (r *AccessTokenReconciler) mintWait(at *tokensv1alpha1.AccessToken, in *inputs, d decision, now time.Time) (time.Duration, string) {
	var last time.Time
	later := func(t time.Time) {
		if t.After(last) {
			last = t
		}
	}
	st := at.Status
	if st.IssuedAt != nil {
		later(st.IssuedAt.Time)
	}
	if st.LastFailureTime != nil {
		later(st.LastFailureTime.Time)
	}
	if v, ok := r.attempts.Load(types.NamespacedName{Namespace: at.Namespace, Name: at.Name}); ok {
		later(v.(time.Time))
	}
	if !last.IsZero() && r.MinMintInterval > 0 {
		if wait := last.Add(r.MinMintInterval).Sub(now); wait > 0 {
			return wait, fmt.Sprintf("one AccessToken is minted at most once every %s", r.MinMintInterval)
		}
	}
	if r.ForcedRenewals != nil && aheadOfSchedule(at, in, d, now) {
		if wait := r.ForcedRenewals.Take(at.Namespace, now); wait > 0 {
			return wait, fmt.Sprintf("namespace %q has used its budget of renewals ahead of schedule", at.Namespace)
		}
	}
	return 0, ""
}

// aheadOfSchedule reports whether a mint is asked for by the AccessToken's
// namespace ahead of schedule: the renew annotation, or a change of inputs the
// namespace made (its AccessToken, or a TokenIssuer it owns). A mint that is
// due anyway (first issue, lost Secret, retry, renewal time) is not, and
// neither is a change of a ClusterTokenIssuer or of its credentials, which are
// the administrator's.
func aheadOfSchedule(at *tokensv1alpha1.AccessToken, in *inputs, d decision, now time.Time) bool {
	switch d.reason {
	case reasonRenewalRequested:
	case reasonInputsChanged:
		if at.Spec.IssuerRef.Kind == tokensv1alpha1.ClusterTokenIssuerKind && at.Generation == at.Status.ObservedGeneration {
			return false
		}
	default:
		return false
	}
	for _, c := range []check{notIssued, secretLost, retryDue, renewalDue} {
		if due, ok := c(in, now); ok && due.action == actionIssue {
			return false
		}
	}
	return true
}
