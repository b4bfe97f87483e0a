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
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
)

// gitlabRefusal is a rotation GitLab refuses while the token it was asked to
// rotate stays valid (a 400 about the request, not the token).
var gitlabRefusal = fakes.Fault{Status: http.StatusBadRequest, Header: http.Header{"Content-Type": {"application/json"}},
	Body: `{"message":"400 Bad request - expires_at is invalid"}`}

func startGitLab(t *testing.T) (*sampleRun, *fakes.GitLab, string) {
	t.Helper()
	bootstrap := testCredential("gitlab-project-token", "token")
	fake := fakes.NewGitLab("42", bootstrap, time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC))
	run := startSample(t, "gitlab-project-token-rotation.yaml", fake, &fake.Base)
	return run, fake, bootstrap
}

// TestSampleGitLabRotation: the first rotation sends the bootstrap token, the
// later ones the current token, each before the date it expires on.
func TestSampleGitLabRotation(t *testing.T) {
	run, fake, bootstrap := startGitLab(t)

	first := run.issue(t)
	if first.Refreshed || !strings.HasPrefix(first.Value, "glpat-") || first.RefreshToken != first.Value {
		t.Fatalf("first rotation: Refreshed=%v, token is its own refresh credential: %v", first.Refreshed, first.RefreshToken == first.Value)
	}
	// Rotated on 2026-03-01: the token expires a week later, at 00:00 UTC.
	wantTime(t, "ExpiresAt", first.ExpiresAt, time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC))
	wantTime(t, "RefreshTokenExpiresAt", first.RefreshTokenExpiresAt, time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC))
	wantFields(t, first.Fields, map[string]string{"expires_at": "2026-03-08"})
	if fake.Active(bootstrap) || !fake.Active(first.Value) {
		t.Fatalf("after the first rotation the bootstrap token must be revoked and the new one active")
	}

	// Two days before expiry (the sample's renewBefore), with the current token.
	run.clock.SetTime(time.Date(2026, 3, 6, 0, 0, 0, 0, time.UTC))
	run.call.RefreshToken = first.RefreshToken
	second := run.issue(t)
	if !second.Refreshed || !fake.Active(second.Value) || fake.Active(first.Value) {
		t.Fatalf("second rotation: Refreshed=%v, new active %v, old active %v", second.Refreshed, fake.Active(second.Value), fake.Active(first.Value))
	}
	wantTime(t, "ExpiresAt", second.ExpiresAt, time.Date(2026, 3, 13, 0, 0, 0, 0, time.UTC))
	if fake.Presented(bootstrap) != 1 || fake.Calls() != 2 {
		t.Errorf("bootstrap sent %d times, %d calls; want 1 and 2", fake.Presented(bootstrap), fake.Calls())
	}
}

// TestSampleGitLabRefusedRotationFails: with onRejected Fail a refused
// rotation is the end of the call: the bootstrap token is not sent again, so
// GitLab does not revoke the chain and the current token stays valid.
func TestSampleGitLabRefusedRotationFails(t *testing.T) {
	run, fake, bootstrap := startGitLab(t)
	current := run.issue(t)
	run.call.RefreshToken = current.RefreshToken
	calls := fake.Calls()

	fake.FailNext(1, gitlabRefusal)
	tok, err := run.engine.Issue(context.Background(), run.call)
	var ie *Error
	if tok != nil || !errors.As(err, &ie) || ie.Class != ClassRefreshRejected || !ie.RefreshRejected || !ie.Class.Terminal() {
		t.Fatalf("a refused rotation: token %v, error %v; want a terminal RefreshRejected error", tok, err)
	}
	if !strings.Contains(err.Error(), "expires_at is invalid") || strings.Contains(err.Error(), current.Value) || strings.Contains(err.Error(), bootstrap) {
		t.Errorf("error %q must carry GitLab's message and no token", err)
	}
	if got := fake.Calls() - calls; got != 1 {
		t.Errorf("calls after the refusal = %d, want 1 (the refused rotation alone)", got)
	}
	if fake.Presented(bootstrap) != 1 || fake.ChainsRevoked() != 0 || !fake.Active(current.Value) {
		t.Errorf("bootstrap sent %d times, chains revoked %d, current active %v; want 1, 0, true",
			fake.Presented(bootstrap), fake.ChainsRevoked(), fake.Active(current.Value))
	}
}

// TestSampleGitLabRefusedRotationRestarts shows why: with Restart the first
// request follows at once, exactly once, re-sending the rotated bootstrap
// token, and GitLab revokes every token of the chain, the live one included.
func TestSampleGitLabRefusedRotationRestarts(t *testing.T) {
	run, fake, bootstrap := startGitLab(t)
	current := run.issue(t)
	run.call.RefreshToken = current.RefreshToken
	run.call.Spec = run.call.Spec.DeepCopy()
	run.call.Spec.Response.RefreshToken.OnRejected = v1alpha1.RefreshRejectedRestart
	calls := fake.Calls()

	fake.FailNext(1, gitlabRefusal)
	_, err := run.engine.Issue(context.Background(), run.call)
	var ie *Error
	if !errors.As(err, &ie) || ie.Class != ClassUnauthorized || !ie.RefreshRejected {
		t.Fatalf("Restart after a refused rotation: %v; want GitLab's 401 to the reused bootstrap token", err)
	}
	if got := fake.Calls() - calls; got != 2 || fake.Presented(bootstrap) != 2 {
		t.Errorf("calls after the refusal = %d, bootstrap sent %d times; want 2 and 2 (one first request)", got, fake.Presented(bootstrap))
	}
	if fake.ChainsRevoked() != 1 || fake.Active(current.Value) {
		t.Errorf("GitLab's reuse detection: chains revoked %d, current active %v; want 1, false", fake.ChainsRevoked(), fake.Active(current.Value))
	}
}

func TestDateExpiry(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	spec := &v1alpha1.ExpirySpec{Path: "expires_at", Format: v1alpha1.ExpiryDate}
	for _, tt := range []struct {
		value any
		want  time.Time
		err   string
	}{
		{"2026-12-31", time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), ""},
		{"2026-03-02", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), ""},
		{"2026-03-01", time.Time{}, "not in the future"},
		{"2026-12-31T00:00:00Z", time.Time{}, "not a date"},
		{"31/12/2026", time.Time{}, "not a date"},
		{float64(20261231), time.Time{}, "not a date"},
	} {
		got, err := readExpiry(map[string]any{"expires_at": tt.value}, spec, "", now, 0)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%v: error %v, want %q", tt.value, err, tt.err)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("%v: %v %v, want %v", tt.value, got, err, tt.want)
		}
	}
}
