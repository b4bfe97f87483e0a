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
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

func TestProviderClocksPerIssuer(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var notified []string
	clocks := &ProviderClocks{Correct: true, Notify: func(key string) { notified = append(notified, key) }}
	key := issuerKey(tokensv1alpha1.TokenIssuerKind, "team", "skewed")
	observe := func(uid string, offset time.Duration) {
		c := clocks.For(key, types.UID("uid-"+uid))
		c.Observe(http.Header{"Date": []string{now.Add(offset).Format(http.TimeFormat)}}, now, now)
		clocks.Observed(key)
	}
	issuerObj := &tokensv1alpha1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "skewed", UID: "uid-a", Generation: 3}}
	status := &tokensv1alpha1.IssuerStatus{}
	rec := events.NewFakeRecorder(10)

	observe("a", 30*time.Second)
	if len(notified) != 0 {
		t.Errorf("notified %v for an offset within a minute", notified)
	}
	if got := testutil.ToFloat64(issuerClockOffset.WithLabelValues("TokenIssuer", "team", "skewed")); got != 30.5 {
		t.Errorf("metric %v, want 30.5", got)
	}
	clocks.setClockSkew(tokensv1alpha1.TokenIssuerKind, issuerObj, status, rec)
	if c := meta.FindStatusCondition(status.Conditions, tokensv1alpha1.ConditionClockSkew); c == nil || c.Status != metav1.ConditionFalse || c.Reason != tokensv1alpha1.ReasonClockInSync {
		t.Errorf("condition %+v, want False ClockInSync", c)
	}

	for range 3 { // the median moves once most of the last five answers agree
		observe("a", -3*time.Minute)
	}
	if len(notified) != 1 || notified[0] != key {
		t.Errorf("notified %v, want %s once when the offset crossed a minute", notified, key)
	}
	clocks.setClockSkew(tokensv1alpha1.TokenIssuerKind, issuerObj, status, rec)
	c := meta.FindStatusCondition(status.Conditions, tokensv1alpha1.ConditionClockSkew)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != tokensv1alpha1.ReasonClockBehind || !strings.Contains(c.Message, "3m0s behind") {
		t.Errorf("condition %+v, want True ClockBehind by 3m0s", c)
	}
	if len(rec.Events) != 1 || !strings.Contains(<-rec.Events, "Warning ClockBehind") {
		t.Error("want one Warning ClockBehind event")
	}
	clocks.setClockSkew(tokensv1alpha1.TokenIssuerKind, issuerObj, status, rec)
	if len(rec.Events) != 0 {
		t.Error("an event again without a transition")
	}

	// A new issuer of the same name starts afresh.
	if _, known := clocks.offset(key, "uid-b"); known {
		t.Error("the offset of a deleted issuer applies to a new one of the same name")
	}
	observe("b", 0)
	if offset, known := clocks.offset(key, "uid-b"); !known || offset != time.Second/2 {
		t.Errorf("offset %v %v, want 0.5s from the one answer", offset, known)
	}
	clocks.Forget(key)
	if issuerClockOffset.DeleteLabelValues("TokenIssuer", "team", "skewed") {
		t.Error("the series outlived the forgotten issuer")
	}
}
