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

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
)

// ClockSkewWarning is the provider clock offset beyond which an issuer's
// ClockSkew condition turns True and a Warning event is raised. A minute is
// past what NTP-synchronised servers ever drift, and is where providers start
// refusing signed JWTs (GitHub allows a minute of iat drift).
const ClockSkewWarning = time.Minute

var issuerClockOffset = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "tokenmint_issuer_clock_offset_seconds",
	Help: "The issuer's clock minus the manager's, measured from the Date header of its endpoint's answers (median of the last five).",
}, issuerLabels)

func init() {
	metrics.Registry.MustRegister(issuerClockOffset)
}

// ProviderClocks holds the clock of every issuer the manager called, by issuer
// kind, namespace and name, and starts afresh when the issuer's UID changes.
// It is a cache: lost on restart, it is measured again from the next answers.
type ProviderClocks struct {
	// Correct applies the measured offsets (--provider-clock-correction);
	// when false they are only measured, exported and warned about.
	Correct bool
	// Notify is called with the issuer key whose skew state changed, so that
	// the issuer's ClockSkew condition is written.
	Notify func(issuerKey string)

	mu     sync.Mutex
	clocks map[string]*providerClock
}

type providerClock struct {
	uid    types.UID
	clock  *issuer.ProviderClock
	skewed bool
}

// For returns the clock of the issuer of issuerKey with uid, for a Call. A nil
// ProviderClocks returns nil: no clock is measured.
func (p *ProviderClocks) For(issuerKey string, uid types.UID) *issuer.ProviderClock {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clocks == nil {
		p.clocks = map[string]*providerClock{}
	}
	c, ok := p.clocks[issuerKey]
	if !ok || c.uid != uid {
		c = &providerClock{uid: uid, clock: issuer.NewProviderClock(p.Correct)}
		p.clocks[issuerKey] = c
	}
	return c.clock
}

// Observed exports the issuer's offset after a call, and notifies the issuer
// when it crossed ClockSkewWarning either way.
func (p *ProviderClocks) Observed(issuerKey string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	c, ok := p.clocks[issuerKey]
	if !ok {
		p.mu.Unlock()
		return
	}
	offset, known := c.clock.Offset()
	changed := false
	if known {
		skewed := offset > ClockSkewWarning || offset < -ClockSkewWarning
		changed, c.skewed = skewed != c.skewed, skewed
	}
	p.mu.Unlock()
	if !known {
		return
	}
	kind, ns, name := splitIssuerKey(issuerKey)
	issuerClockOffset.WithLabelValues(kind, ns, name).Set(offset.Seconds())
	if changed && p.Notify != nil {
		p.Notify(issuerKey)
	}
}

// Forget drops a deleted issuer's clock and its metric series.
func (p *ProviderClocks) Forget(issuerKey string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	delete(p.clocks, issuerKey)
	p.mu.Unlock()
	kind, ns, name := splitIssuerKey(issuerKey)
	issuerClockOffset.DeleteLabelValues(kind, ns, name)
}

// offset returns the measured offset of the issuer o, if its clock is known.
func (p *ProviderClocks) offset(issuerKey string, uid types.UID) (time.Duration, bool) {
	if p == nil {
		return 0, false
	}
	p.mu.Lock()
	c, ok := p.clocks[issuerKey]
	p.mu.Unlock()
	if !ok || c.uid != uid {
		return 0, false
	}
	return c.clock.Offset()
}

// setClockSkew writes the issuer's ClockSkew condition from its measured
// offset, and raises a Warning event when it turns True. Until the endpoint
// answered with a Date header the condition is left as it is.
func (p *ProviderClocks) setClockSkew(kind tokensv1alpha1.IssuerKind, obj client.Object, status *tokensv1alpha1.IssuerStatus, recorder events.EventRecorder) {
	offset, known := p.offset(issuerKey(kind, obj.GetNamespace(), obj.GetName()), obj.GetUID())
	if !known {
		return
	}
	cond := clockSkewCondition(offset, p.Correct, obj.GetGeneration())
	prev := meta.FindStatusCondition(status.Conditions, tokensv1alpha1.ConditionClockSkew)
	if cond.Status == metav1.ConditionTrue && (prev == nil || prev.Status != metav1.ConditionTrue) && recorder != nil {
		recorder.Eventf(obj, nil, corev1.EventTypeWarning, cond.Reason, "MeasureClock", "%s", cond.Message)
	}
	if prev != nil && prev.Status == cond.Status && prev.Reason == cond.Reason {
		// The offset moves by fractions of a second with every answer: the
		// message is rewritten only when the state changes.
		return
	}
	meta.SetStatusCondition(&status.Conditions, cond)
}

// clockSkewCondition says how far the provider's clock is off, and whether
// tokenmint corrects for it.
func clockSkewCondition(offset time.Duration, correct bool, generation int64) metav1.Condition {
	cond := metav1.Condition{Type: tokensv1alpha1.ConditionClockSkew, ObservedGeneration: generation,
		Status: metav1.ConditionFalse, Reason: tokensv1alpha1.ReasonClockInSync,
		Message: fmt.Sprintf("the endpoint's clock is within %s of the manager's (offset %s)", ClockSkewWarning, offset.Round(time.Second))}
	if offset <= ClockSkewWarning && offset >= -ClockSkewWarning {
		return cond
	}
	cond.Status, cond.Reason = metav1.ConditionTrue, tokensv1alpha1.ReasonClockAhead
	direction := "ahead of"
	if offset < 0 {
		cond.Reason, direction = tokensv1alpha1.ReasonClockBehind, "behind"
	}
	cond.Message = fmt.Sprintf("the endpoint's clock (its Date header) is %s %s the manager's", offset.Abs().Round(time.Second), direction)
	if correct {
		cond.Message += ": expiries it reports and JWTs signed for it are corrected by that offset"
	} else {
		cond.Message += ", and --provider-clock-correction is off: expiries it reports and JWTs signed for it are taken on the manager's clock"
	}
	return cond
}
