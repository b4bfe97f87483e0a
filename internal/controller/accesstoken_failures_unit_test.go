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
