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
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// A held token is offered for extension only when its time alone is up.
func TestHeldTokenOnlyWhenTheRenewalIsDueAndNothingChanged(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	r := &AccessTokenReconciler{Fingerprinter: secret.NewFingerprinter(make([]byte, 32))}
	notAfter := now.Add(time.Hour)
	fresh := func() *inputs {
		at := &tokensv1alpha1.AccessToken{Status: tokensv1alpha1.AccessTokenStatus{
			IssuedAt: &metav1.Time{Time: now.Add(-200 * time.Second)}, ExpiresAt: &metav1.Time{Time: now.Add(100 * time.Second)}}}
		return &inputs{at: at, issuerKey: "TokenIssuer/ns/vault", issuerUID: "uid", inputsHash: "h1",
			spec:         &tokensv1alpha1.IssuerSpec{RefreshExtends: true, Refresh: &tokensv1alpha1.RequestSpec{}},
			state:        secret.State{Issuer: "TokenIssuer/ns/vault", IssuerUID: "uid", Token: "password", TokenID: "database/creds/app/1", TokenNotAfter: &notAfter},
			secretRecord: &secret.Record{Fingerprint: r.Fingerprinter.Fingerprint([]byte("password")), InputsHash: "h1"}}
	}
	due := decision{action: actionIssue, reason: reasonRenewalDue}
	held := r.heldToken(fresh(), due, now)
	if held == nil || held.Value != "password" || held.ID != "database/creds/app/1" || !held.NotAfter.Equal(notAfter) ||
		!held.ExpiresAt.Equal(now.Add(100*time.Second)) {
		t.Fatalf("held %+v, want the state's token with its expiry and not-after", held)
	}
	if r.heldToken(fresh(), decision{action: actionIssue, reason: tokensv1alpha1.ReasonRetrying}, now) == nil {
		t.Error("a retried renewal extends too")
	}
	for name, change := range map[string]func(*inputs, *decision, *time.Time){
		"inputs changed":    func(_ *inputs, d *decision, _ *time.Time) { d.reason = reasonInputsChanged },
		"renewal requested": func(_ *inputs, d *decision, _ *time.Time) { d.reason = reasonRenewalRequested },
		"retried, new inputs": func(in *inputs, d *decision, _ *time.Time) {
			d.reason, in.inputsHash = tokensv1alpha1.ReasonRetrying, "h2"
		},
		"marked final":           func(in *inputs, _ *decision, _ *time.Time) { in.state.TokenFinal = true },
		"expired":                func(_ *inputs, _ *decision, now *time.Time) { *now = now.Add(100 * time.Second) },
		"another issuer's":       func(in *inputs, _ *decision, _ *time.Time) { in.state.IssuerUID = "uid-before" },
		"not in the Secret":      func(in *inputs, _ *decision, _ *time.Time) { in.secretRecord.Fingerprint = "other" },
		"no refreshExtends":      func(in *inputs, _ *decision, _ *time.Time) { in.spec.RefreshExtends = false },
		"moving between issuers": func(in *inputs, _ *decision, _ *time.Time) { in.moved = true },
	} {
		in, d, at := fresh(), due, now
		change(in, &d, &at)
		if got := r.heldToken(in, d, at); got != nil {
			t.Errorf("%s: held %+v, want none: the token is replaced", name, got)
		}
	}
}

// A replaced token is not revoked while the Secret still holds it.
func TestNoRevocationWhileTheSecretHoldsTheToken(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	at := &tokensv1alpha1.AccessToken{Spec: tokensv1alpha1.AccessTokenSpec{Secret: tokensv1alpha1.SecretTemplate{Name: "db", Key: "password"}}}
	old := secret.Superseded{Token: "old-password", RevokeAt: now.Add(-time.Minute), Issuer: "TokenIssuer/ns/vault", IssuerUID: "uid"}
	in := &inputs{at: at, issuerKey: "TokenIssuer/ns/vault", issuerUID: "uid",
		spec:   &tokensv1alpha1.IssuerSpec{Revoke: &tokensv1alpha1.RequestSpec{}},
		state:  secret.State{Superseded: []secret.Superseded{old}},
		secret: &corev1.Secret{Data: map[string][]byte{"password": []byte("old-password")}}}
	if revocationDue(in, now) {
		t.Error("revocation due while the Secret holds the token")
	}
	in.secret.Data["password"] = []byte("new-password")
	if !revocationDue(in, now) {
		t.Error("revocation not due once the Secret holds the new token")
	}
}
