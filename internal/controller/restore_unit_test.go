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

func TestSameIssuerAfterARestore(t *testing.T) {
	spec := &tokensv1alpha1.IssuerSpec{
		Request: tokensv1alpha1.RequestSpec{URL: "https://login.example.com/token"},
		Revoke:  &tokensv1alpha1.RequestSpec{URL: "https://login.example.com/revoke"},
	}
	endpoint := issuerEndpoint(spec)
	st := secret.State{Issuer: "TokenIssuer/shop/login", IssuerUID: "uid-1", IssuerEndpoint: endpoint}

	if !sameIssuer(st, "TokenIssuer/shop/login", "uid-1", "") {
		t.Error("the same issuer object is not the same issuer once its spec changed")
	}
	if !sameIssuer(st, "TokenIssuer/shop/login", "uid-2", endpoint) {
		t.Error("an issuer restored under a new UID, sending tokens where it did, is not the same issuer")
	}
	elsewhere := func(edit func(s *tokensv1alpha1.IssuerSpec)) string {
		s := spec.DeepCopy()
		edit(s)
		return issuerEndpoint(s)
	}
	for name, other := range map[string]string{
		"another token URL":  elsewhere(func(s *tokensv1alpha1.IssuerSpec) { s.Request.URL = "https://attacker.example/token" }),
		"another revoke URL": elsewhere(func(s *tokensv1alpha1.IssuerSpec) { s.Revoke.URL = "https://attacker.example/revoke" }),
		"a refresh URL": elsewhere(func(s *tokensv1alpha1.IssuerSpec) {
			s.Refresh = &tokensv1alpha1.RequestSpec{URL: "https://attacker.example/r"}
		}),
		"another CA": elsewhere(func(s *tokensv1alpha1.IssuerSpec) { s.CABundle = []byte("attacker CA") }),
	} {
		if other == endpoint {
			t.Errorf("%s: same endpoint hash", name)
		}
		if sameIssuer(st, "TokenIssuer/shop/login", "uid-2", other) {
			t.Errorf("%s: an issuer re-created under the same name gets the state", name)
		}
	}
	if sameIssuer(st, "TokenIssuer/shop/other", "uid-2", endpoint) {
		t.Error("an issuer of another name gets the state")
	}
	if sameIssuer(secret.State{Issuer: "TokenIssuer/shop/login", IssuerUID: "uid-1"}, "TokenIssuer/shop/login", "uid-2", endpoint) {
		t.Error("a state that recorded no endpoint goes to an issuer of another UID")
	}
	if sameIssuer(st, "TokenIssuer/shop/login", "", endpoint) {
		t.Error("state goes to an issuer that cannot be read")
	}
}

func TestAdoptAfterARestore(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	exp := now.Add(time.Hour)
	rec := secret.Record{Fingerprint: "hmac-sha256:aa", IssuedAt: now, ExpiresAt: &exp, InputsHash: "before", InputsIdentity: "same"}
	in := func(reown bool, identity string) *inputs {
		r := rec
		return &inputs{
			at:     &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns", UID: "new"}},
			secret: &corev1.Secret{}, secretRecord: &r, reown: reown,
			inputsHash: "after", inputsIdentity: identity,
		}
	}

	restored := in(true, "same")
	if d := decide(restored, now); d.action != actionAdopt {
		t.Fatalf("a restored Secret: %v, want %v", d.action, actionAdopt)
	}
	adopt(restored.at, restored)
	if restored.at.Status.InputsHash != "after" || restored.at.Status.TokenFingerprint != rec.Fingerprint {
		t.Fatalf("restored with the same inputs: hash %q, want the current inputs'", restored.at.Status.InputsHash)
	}
	if d := decide(restored, now); d.action == actionIssue {
		t.Fatalf("after adopting a restored Secret: %v %s, want no mint", d.action, d.reason)
	}

	changed := in(true, "other")
	adopt(changed.at, changed)
	if d := decide(changed, now); d.action != actionIssue || d.reason != reasonInputsChanged {
		t.Fatalf("restored from other inputs: %v %s, want %v %s", d.action, d.reason, actionIssue, reasonInputsChanged)
	}

	// A Secret written before the identity was recorded is renewed.
	old := in(true, "same")
	old.secretRecord.InputsIdentity = ""
	adopt(old.at, old)
	if d := decide(old, now); d.action != actionIssue {
		t.Fatalf("restored without an identity: %v, want %v", d.action, actionIssue)
	}

	// A lost status write (same UID) keeps the record's hash, as before.
	crash := in(false, "same")
	adopt(crash.at, crash)
	if crash.at.Status.InputsHash != "before" {
		t.Fatalf("after a lost status write: hash %q, want the record's", crash.at.Status.InputsHash)
	}
	// The inputs changed since that token was minted (an issuer change
	// whose reconcile found status behind the Secret): adopting does not
	// forget the re-issue, it decides again a second later, not at the
	// renewal an hour away.
	if d := decide(crash, now); d.action != actionIssue || d.reason != reasonInputsChanged {
		t.Fatalf("after adopting a token of older inputs: %v %s, want %v %s", d.action, d.reason, actionIssue, reasonInputsChanged)
	}
	adopted := decision{actionAdopt, "SecretAhead", ""}
	if wake := nextWake(crash.at, crash, adopted, now); wake != time.Second {
		t.Fatalf("after adopting a token of older inputs, the next reconcile comes in %v, want 1s", wake)
	}
	if wake := nextWake(crash.at, crash, decision{actionNone, tokensv1alpha1.ReasonTokenValid, ""}, now); wake < 30*time.Minute {
		t.Fatalf("a reconcile that adopted nothing comes back in %v, want at the token's renewal", wake)
	}
}

func TestRestoredCandidate(t *testing.T) {
	at := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns", UID: "new"}}
	ref := func(kind, name, uid string) []metav1.OwnerReference {
		yes := true
		return []metav1.OwnerReference{{APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: kind, Name: name, UID: "old", Controller: &yes}}
	}
	for name, c := range map[string]struct {
		refs []metav1.OwnerReference
		want bool
	}{
		"stripped":                         {nil, true},
		"the old UID":                      {ref("AccessToken", "a", "old"), true},
		"another AccessToken":              {ref("AccessToken", "b", "old"), false},
		"a ClusterAccessToken of the name": {ref("ClusterAccessToken", "a", "old"), false},
		"another controller": {[]metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "a", UID: "old",
			Controller: func() *bool { b := true; return &b }()}}, false},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: c.refs}}
		if got := restoredCandidate(s, at); got != c.want {
			t.Errorf("%s: %v, want %v", name, got, c.want)
		}
	}
}
