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
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
)

func TestHistoryKeepsTheLastTokensNewestFirst(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	at := &tokensv1alpha1.AccessToken{}
	a := tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.TokenIssuerKind, Name: "a"}
	b := tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: "b"}
	previous := ""
	for i := range 7 {
		ref := a
		if i >= 5 {
			ref = b
		}
		exp := now.Add(time.Duration(i+1) * time.Hour)
		rec := secret.Record{Fingerprint: fmt.Sprintf("fp%d", i), IssuedAt: now.Add(time.Duration(i) * time.Minute), ExpiresAt: &exp}
		recordHistory(at, rec, ref, previous, now.Add(time.Duration(i)*time.Minute))
		previous = rec.Fingerprint
	}
	h := at.Status.History
	if len(h) != maxHistory {
		t.Fatalf("history holds %d entries, want %d", len(h), maxHistory)
	}
	if h[0].Fingerprint != "fp6" || h[0].Issuer != b || h[0].ReplacedAt != nil {
		t.Errorf("head is the current token of b, not replaced: %+v", h[0])
	}
	if h[2].Fingerprint != "fp4" || h[2].Issuer != a || h[2].ReplacedAt == nil || !h[2].ReplacedAt.Time.Equal(now.Add(5*time.Minute)) {
		t.Errorf("the last token of a was replaced by the first of b: %+v", h[2])
	}
	if h[4].Fingerprint != "fp2" {
		t.Errorf("the oldest kept is fp2, got %s", h[4].Fingerprint)
	}

	// Writing the same token again (a restore) adds nothing.
	recordHistory(at, secret.Record{Fingerprint: "fp6", IssuedAt: now}, b, "fp6", now)
	if len(at.Status.History) != maxHistory || at.Status.History[1].Fingerprint != "fp5" {
		t.Errorf("recording the current token again changed the history: %+v", at.Status.History)
	}

	recordRevoked(at, "fp4", now.Add(10*time.Minute))
	if r := at.Status.History[2].RevokedAt; r == nil || !r.Time.Equal(now.Add(10*time.Minute)) {
		t.Errorf("revokedAt of fp4: %v", r)
	}
	recordRevoked(at, "unknown", now)
	for _, e := range at.Status.History {
		if e.Fingerprint != "fp4" && e.RevokedAt != nil {
			t.Errorf("%s marked revoked", e.Fingerprint)
		}
	}
}

func TestAnIssuerChangeReissuesAtOnceAndSaysSo(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	at := &tokensv1alpha1.AccessToken{}
	at.Spec.IssuerRef = tokensv1alpha1.IssuerReference{Name: "b"}
	at.Status = tokensv1alpha1.AccessTokenStatus{
		IssuedAt: &metav1.Time{Time: now.Add(-time.Minute)}, ExpiresAt: &metav1.Time{Time: now.Add(time.Hour)},
		TokenFingerprint: "fp", InputsHash: "old",
		// A failure's backoff still runs: a move is tried at once all the same.
		FailedAttempts: 2, RenewalTime: &metav1.Time{Time: now.Add(30 * time.Minute)},
		History: []tokensv1alpha1.TokenHistoryEntry{{Fingerprint: "fp",
			Issuer: tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: "a"}}},
	}
	from, moving := movingFrom(at)
	if !moving || from.Name != "a" {
		t.Fatalf("movingFrom: %v %v", from, moving)
	}
	in := &inputs{at: at, inputsHash: "new", secretMatches: true, movingFrom: describeIssuer(from)}
	d := decide(in, now)
	if d.action != actionIssue || d.reason != reasonIssuerChanged ||
		!strings.Contains(d.message, `from ClusterTokenIssuer "a" to TokenIssuer "b"`) {
		t.Errorf("decision: %+v", d)
	}
	if !aheadOfSchedule(at, in, d, now) {
		t.Error("a move is the namespace's own mint ahead of schedule, and spends its budget")
	}

	// The same issuer under the default kind is no move.
	at.Status.History[0].Issuer = tokensv1alpha1.IssuerReference{Name: "b"}
	if _, moving := movingFrom(at); moving {
		t.Error("TokenIssuer b and b of the default kind are the same issuer")
	}
	// Neither is a token the history does not know.
	at.Status.History[0].Fingerprint = "other"
	if _, moving := movingFrom(at); moving {
		t.Error("a token the history does not list has no known issuer")
	}
}

func TestTokensGoOnlyToTheIssuerThatMintedThem(t *testing.T) {
	spec := &tokensv1alpha1.IssuerSpec{Revoke: &tokensv1alpha1.RequestSpec{}}
	in := &inputs{issuerKey: "ClusterTokenIssuer//b", issuerUID: "uid-b", spec: spec}
	mine := secret.Superseded{Issuer: "ClusterTokenIssuer//b", IssuerUID: "uid-b"}
	legacy := secret.Superseded{}
	other := secret.Superseded{Issuer: "ClusterTokenIssuer//a", IssuerUID: "uid-a"}
	again := secret.Superseded{Issuer: "ClusterTokenIssuer//b", IssuerUID: "uid-b-before"}
	for _, tc := range []struct {
		name      string
		s         secret.Superseded
		current   bool
		revocable bool
	}{
		{"minted by the current issuer", mine, true, true},
		{"recorded before superseded tokens named their issuer", legacy, true, true},
		{"minted by the issuer moved from", other, false, true},
		{"minted by an issuer of the same name deleted since", again, false, true},
	} {
		if got := ownedByCurrent(in, tc.s); got != tc.current {
			t.Errorf("%s: ownedByCurrent %v, want %v", tc.name, got, tc.current)
		}
		if got := revocable(in, tc.s); got != tc.revocable {
			t.Errorf("%s: revocable %v, want %v", tc.name, got, tc.revocable)
		}
	}
	// A current issuer that cannot revoke leaves its own tokens waiting, not
	// another's, which go to their own issuer (or fail there).
	in.spec = &tokensv1alpha1.IssuerSpec{}
	if revocable(in, mine) || !revocable(in, other) {
		t.Errorf("without revoke: mine %v, other %v", revocable(in, mine), revocable(in, other))
	}
	due := &inputs{issuerKey: in.issuerKey, issuerUID: in.issuerUID, spec: in.spec,
		state: secret.State{Superseded: []secret.Superseded{mine}}}
	if revocationDue(due, time.Now()) {
		t.Error("a token the current issuer cannot revoke is never due")
	}
	if w := nextWake(&tokensv1alpha1.AccessToken{}, due, decision{}, time.Now()); w != 0 {
		t.Errorf("a token that cannot be revoked wakes nothing, got %s", w)
	}
}
