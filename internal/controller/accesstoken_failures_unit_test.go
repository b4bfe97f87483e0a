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
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/secret"
)

func TestFailureMeaningsInTheController(t *testing.T) {
	now := time.Unix(80000, 0)
	permanent := &issuer.Error{Class: issuer.ClassPermanent, StatusCode: 200, Message: "scope not allowed", Rule: "response.failures.rules[0]"}
	limited := &issuer.Error{Class: issuer.ClassRateLimited, StatusCode: 403, RetryAfter: 17 * time.Minute, Rule: "preset GitHub"}
	wrongClient := &issuer.Error{Class: issuer.ClassPermanent, StatusCode: 401, Code: "invalid_client", Rule: "preset OAuth2"}
	tests := []struct {
		name       string
		err        error
		attempts   int32
		wantReason string
		wantDelay  time.Duration
		wantHealth string // "-" when the issuer's health is left as it was
	}{
		{"permanent waits an hour from the first failure", permanent, 0, tokensv1alpha1.ReasonPermanentFailure, time.Hour, "-"},
		{"permanent still waits an hour later on", permanent, 7, tokensv1alpha1.ReasonPermanentFailure, time.Hour, "-"},
		{"a permanent 401 marks the issuer Unauthorized", wrongClient, 0, tokensv1alpha1.ReasonPermanentFailure, time.Hour, tokensv1alpha1.ReasonUnauthorized},
		{"a rate limit waits for its reset and leaves the issuer Ready", limited, 0, tokensv1alpha1.ReasonRateLimited, 17 * time.Minute, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := &tokensv1alpha1.AccessToken{}
			at.Status.FailedAttempts = tt.attempts + 1
			if got := retryDelay(at, tt.err, now); got != tt.wantDelay {
				t.Errorf("retryDelay = %s, want %s", got, tt.wantDelay)
			}
			reason, msg := failureReason(tt.err)
			if reason != tt.wantReason {
				t.Errorf("reason = %s, want %s", reason, tt.wantReason)
			}
			if reason == tokensv1alpha1.ReasonPermanentFailure && !strings.Contains(msg, "until the AccessToken, its issuer or a credential changes") {
				t.Errorf("message %q does not say what ends the wait", msg)
			}
			health, counted := healthReason(tt.err)
			if !counted {
				health = "-"
			}
			if health != tt.wantHealth {
				t.Errorf("issuer health = %q, want %q", health, tt.wantHealth)
			}
		})
	}
}

func TestRejectedRefreshTokenIsDropped(t *testing.T) {
	spec := &tokensv1alpha1.IssuerSpec{Response: tokensv1alpha1.ResponseSpec{RefreshToken: &tokensv1alpha1.RefreshTokenSpec{Path: "refresh_token"}}}
	fresh := func() *inputs {
		exp := time.Unix(90000, 0)
		return &inputs{spec: spec, state: secret.State{Token: "t", RefreshToken: "rt-dead", RefreshTokenExpiresAt: &exp}}
	}
	in := fresh()
	dropRejectedRefreshToken(in, &issuer.Error{Class: issuer.ClassUnauthorized, RefreshRejected: true}, nil)
	if in.state.RefreshToken != "" || in.state.RefreshTokenExpiresAt != nil || !in.stateDirty {
		t.Errorf("after a failed fallback the refresh token is kept (%q) or not written (dirty %v)", in.state.RefreshToken, in.stateDirty)
	}
	in = fresh()
	dropRejectedRefreshToken(in, nil, &issuer.Token{Value: "new", RefreshRejected: true})
	if in.state.RefreshToken != "" || in.stateDirty {
		t.Errorf("after a successful fallback: refresh token %q, dirty %v; want it dropped for store to write", in.state.RefreshToken, in.stateDirty)
	}
	in = fresh()
	dropRejectedRefreshToken(in, &issuer.Error{Class: issuer.ClassRetryable}, nil)
	if in.state.RefreshToken != "rt-dead" || in.stateDirty {
		t.Error("a failure that says nothing about the refresh token dropped it")
	}
}

// TestRefusedRefreshHoldsUntilInputsChange: after a refresh refused under
// onRejected: Fail nothing is called, not for a retry time that passed, a
// renew annotation or a lost Secret, until the inputs change; Ready turns
// False while the Secret keeps the token.
func TestRefusedRefreshHoldsUntilInputsChange(t *testing.T) {
	now := time.Unix(100000, 0)
	refused := &issuer.Error{Class: issuer.ClassRefreshRejected, StatusCode: 400, Message: "expires_at is invalid", RefreshRejected: true}
	reason, msg := failureReason(refused)
	if reason != tokensv1alpha1.ReasonRefreshRejected || !strings.Contains(msg, "refresh request was refused") ||
		!strings.Contains(msg, "expires_at is invalid") || !strings.Contains(msg, "onRejected is Fail") {
		t.Fatalf("failureReason = %s %q", reason, msg)
	}
	held := func() *inputs {
		at := &tokensv1alpha1.AccessToken{}
		at.Annotations = map[string]string{tokensv1alpha1.AnnotationRenew: "again"}
		at.Status.IssuedAt = &metav1.Time{Time: now.Add(-5 * time.Hour)}
		at.Status.ExpiresAt = &metav1.Time{Time: now.Add(time.Hour)}
		at.Status.InputsHash = "h1"
		at.Status.FailedAttempts = 1
		at.Status.RenewalTime = &metav1.Time{Time: now.Add(-time.Minute)}
		meta.SetStatusCondition(&at.Status.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionRenewing,
			Status: metav1.ConditionFalse, Reason: reason, Message: msg})
		return &inputs{at: at, inputsHash: "h1", secretMatches: true}
	}
	in := held()
	if d := decide(in, now); d.action != actionBlocked || d.reason != tokensv1alpha1.ReasonRefreshRejected {
		t.Errorf("held: %v %s, want Blocked RefreshRejected", d.action, d.reason)
	}
	in.secretMatches = false
	if d := decide(in, now); d.action != actionBlocked {
		t.Errorf("a lost Secret while held: %v, want Blocked", d.action)
	}
	in = held()
	in.inputsHash = "h2"
	if d := decide(in, now); d.action != actionIssue {
		t.Errorf("new inputs: %v, want Issue", d.action)
	}

	in = held()
	setReady(in.at, in, now)
	ready := meta.FindStatusCondition(in.at.Status.Conditions, tokensv1alpha1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != tokensv1alpha1.ReasonRefreshRejected ||
		!strings.Contains(ready.Message, "keeps the current token") {
		t.Errorf("Ready = %+v, want False RefreshRejected saying the Secret keeps its token", ready)
	}

	// Any other failure is retried when its time comes.
	in = held()
	meta.SetStatusCondition(&in.at.Status.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionRenewing,
		Status: metav1.ConditionFalse, Reason: tokensv1alpha1.ReasonBadRequest, Message: "x"})
	if d := decide(in, now); d.action != actionIssue {
		t.Errorf("a BadRequest whose retry is due: %v, want Issue", d.action)
	}
}
