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

package secret

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

func encodedSize(t *testing.T, st State) int {
	t.Helper()
	raw, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return len(raw)
}

// tokenOf is a token of n bytes, distinct per tag.
func tokenOf(tag string, n int) string {
	return tag + strings.Repeat("x", n-len(tag))
}

func TestBoundKeepsAnHonestState(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := State{Issuer: "ClusterTokenIssuer//acme", Token: tokenOf("t", 2048), RefreshToken: tokenOf("r", 2048),
		Fields: map[string]string{"org": "org_1"}}
	for i := range 16 {
		st.Superseded = append(st.Superseded, Superseded{Token: tokenOf(fmt.Sprint("s", i), 2048), RevokeAt: now})
	}
	got, dropped := st.Bound()
	if len(dropped) != 0 || len(got.Superseded) != 16 || !got.Restorable() || got.RefreshToken != st.RefreshToken {
		t.Fatalf("an honest state was cut: %v", dropped)
	}
}

func TestBoundDropsOldestSupersededFirst(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// The worst a provider can make: 16 KiB tokens and refresh token, 16
	// superseded 16 KiB tokens, and large copied fields: about 330 KiB.
	st := State{Issuer: "TokenIssuer/shop/acme", Token: tokenOf("current", 16<<10), RefreshToken: tokenOf("refresh", 16<<10),
		Fields: map[string]string{"a": strings.Repeat("f", 8<<10)}}
	for i := range 16 {
		st.Superseded = append(st.Superseded, Superseded{Token: tokenOf(fmt.Sprint("old", i), 16<<10), RevokeAt: now})
	}
	if encodedSize(t, st) < 290<<10 {
		t.Fatalf("the worst case is only %d bytes", encodedSize(t, st))
	}
	got, dropped := st.Bound()
	if n := encodedSize(t, got); n > MaxStateBytes {
		t.Fatalf("bounded state holds %d bytes, more than %d", n, MaxStateBytes)
	}
	if len(got.Superseded) == 0 || len(got.Superseded) >= 16 {
		t.Fatalf("kept %d superseded tokens", len(got.Superseded))
	}
	// The newest are kept, in order.
	last := got.Superseded[len(got.Superseded)-1].Token
	if last != st.Superseded[15].Token || got.Superseded[0].Token != st.Superseded[16-len(got.Superseded)].Token {
		t.Fatal("superseded tokens were not dropped oldest first")
	}
	if got.Token != st.Token || got.RefreshToken != st.RefreshToken || !got.Restorable() || len(got.Fields) != 1 {
		t.Fatalf("dropped more than superseded tokens: %v", dropped)
	}
	if len(dropped) != 1 || strings.Contains(strings.Join(dropped, ","), "xxx") {
		t.Fatalf("unexpected report %q", dropped)
	}
	if len(st.Superseded) != 16 {
		t.Fatal("Bound changed its receiver's superseded list")
	}
}

func TestBoundDropsFieldsThenTokens(t *testing.T) {
	// Escaped JSON: every '<' takes six bytes, so a 16 KiB token of them
	// takes 96 KiB encoded.
	escaped := strings.Repeat("<", 16<<10)
	st := State{Token: tokenOf("t", 16<<10), RefreshToken: tokenOf("r", 16<<10), Fields: map[string]string{"big": escaped}}
	got, dropped := st.Bound()
	if encodedSize(t, got) > MaxStateBytes || got.Fields != nil || got.Restorable() || got.Token != st.Token ||
		got.RefreshToken != st.RefreshToken || len(dropped) != 1 {
		t.Fatalf("fields not dropped alone: %v", dropped)
	}
	st = State{Token: escaped, TokenID: "id", RefreshToken: tokenOf("r", 16<<10)}
	got, _ = st.Bound()
	if encodedSize(t, got) > MaxStateBytes || got.Token != "" || got.TokenID != "" || got.RefreshToken != st.RefreshToken {
		t.Fatal("an oversized current token was not dropped before the refresh token")
	}
	st = State{RefreshToken: escaped, RefreshTokenExpiresAt: ptr.To(time.Now())}
	got, _ = st.Bound()
	if encodedSize(t, got) > MaxStateBytes || got.RefreshToken != "" || got.RefreshTokenExpiresAt != nil {
		t.Fatal("an oversized refresh token was kept")
	}
}

func TestDesiredStateIsBounded(t *testing.T) {
	at := accessToken()
	st := State{Token: tokenOf("t", 16<<10), RefreshToken: tokenOf("r", 16<<10)}
	for i := range 16 {
		st.Superseded = append(st.Superseded, Superseded{Token: tokenOf(fmt.Sprint("old", i), 16<<10)})
	}
	ac, err := DesiredState(at, "tokenmint-system", st)
	if err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{Data: ac.Data}
	if n := len(s.Data[stateKey]); n > MaxStateBytes {
		t.Fatalf("state Secret holds %d bytes, more than %d", n, MaxStateBytes)
	}
	back, err := DecodeState(s)
	if err != nil || back.RefreshToken != st.RefreshToken || !back.Restorable() {
		t.Fatalf("decoded state lost what fits: %v", err)
	}
}

func TestOwnerProof(t *testing.T) {
	f := NewFingerprinter([]byte("installation-key-0123456789abcdef"))
	at := accessToken()
	owned := New(at, map[string][]byte{"token": []byte("CANARY")},
		Record{Fingerprint: "fp", IssuedAt: time.Now(), OwnerProof: f.OwnerProof(at.Namespace, at.Spec.Secret.Name, "AccessToken", at.Name)})
	if !f.VerifyOwnerProof(owned) {
		t.Fatal("the proof tokenmint writes does not verify")
	}
	if owned.Annotations[AnnotationOwnerProof] == f.Fingerprint([]byte(at.Namespace+at.Spec.Secret.Name+string(at.UID))) {
		t.Fatal("the proof is a token fingerprint")
	}
	forged := func(edit func(s *corev1.Secret)) *corev1.Secret {
		s := owned.DeepCopy()
		edit(s)
		return s
	}
	for name, s := range map[string]*corev1.Secret{
		"no proof":        forged(func(s *corev1.Secret) { delete(s.Annotations, AnnotationOwnerProof) }),
		"made-up proof":   forged(func(s *corev1.Secret) { s.Annotations[AnnotationOwnerProof] = "hmac-sha256:00" }),
		"other name":      forged(func(s *corev1.Secret) { s.Name = "copied-annotations" }),
		"other namespace": forged(func(s *corev1.Secret) { s.Namespace = "elsewhere" }),
		"other owner":     forged(func(s *corev1.Secret) { s.OwnerReferences[0].Name = "another-token" }),
		"stripped, labelled for another": forged(func(s *corev1.Secret) {
			s.OwnerReferences = nil
			s.Labels[tokensv1alpha1.LabelAccessToken] = "another-token"
		}),
		"stripped, unlabelled": forged(func(s *corev1.Secret) {
			s.OwnerReferences = nil
			delete(s.Labels, tokensv1alpha1.LabelAccessToken)
		}),
		"not a controller": forged(func(s *corev1.Secret) { s.OwnerReferences[0].Controller = nil }),
		"other kind":       forged(func(s *corev1.Secret) { s.OwnerReferences[0].Kind = "Deployment" }),
		"other group": forged(func(s *corev1.Secret) {
			s.OwnerReferences[0].APIVersion = "example.com/v1"
		}),
	} {
		if f.VerifyOwnerProof(s) {
			t.Errorf("%s: proof verifies", name)
		}
	}
	if NewFingerprinter([]byte("another-installation-key-0123456")).VerifyOwnerProof(owned) {
		t.Error("a proof verifies under another key")
	}
	var none *Fingerprinter
	if none.VerifyOwnerProof(owned) {
		t.Error("a proof verifies with no key")
	}
	cat := owned.DeepCopy()
	cat.OwnerReferences = []metav1.OwnerReference{{APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: "ClusterAccessToken",
		Name: "shared", UID: "cat-uid", Controller: ptr.To(true)}}
	cat.Annotations[AnnotationOwnerProof] = f.OwnerProof(cat.Namespace, cat.Name, "ClusterAccessToken", "shared")
	if !f.VerifyOwnerProof(cat) {
		t.Error("a ClusterAccessToken copy's proof does not verify")
	}
	if f.ProvesOwner(cat, "AccessToken", "shared") {
		t.Error("a ClusterAccessToken's proof proves an AccessToken of that name")
	}

	// A restore re-creates the AccessToken under a new UID; the backup tool
	// keeps the owner reference to the old one, or strips it.
	restored := forged(func(s *corev1.Secret) { s.OwnerReferences[0].UID = "uid-after-restore" })
	stripped := forged(func(s *corev1.Secret) { s.OwnerReferences = nil })
	for name, s := range map[string]*corev1.Secret{"restored": restored, "stripped": stripped} {
		if !f.VerifyOwnerProof(s) || !f.ProvesOwner(s, "AccessToken", at.Name) {
			t.Errorf("%s: the proof does not verify", name)
		}
	}

	// Secrets written by earlier versions carry a proof bound to the UID:
	// still kept by the cache, not proof enough for the controller.
	legacy := forged(func(s *corev1.Secret) {
		s.Annotations[AnnotationOwnerProof] = f.UIDOwnerProof(s.Namespace, s.Name, at.UID)
	})
	if !f.VerifyOwnerProof(legacy) {
		t.Error("a proof bound to the owner's UID no longer verifies")
	}
	if f.ProvesOwner(legacy, "AccessToken", at.Name) {
		t.Error("a proof bound to the owner's UID proves the owner by name")
	}
	if f.VerifyOwnerProof(forged(func(s *corev1.Secret) {
		s.Annotations[AnnotationOwnerProof] = f.UIDOwnerProof(s.Namespace, s.Name, at.UID)
		s.OwnerReferences[0].UID = "uid-2"
	})) {
		t.Error("a proof bound to a UID verifies for another owner")
	}
	// Re-applying the Secret never counts the proof as left out.
	if LeavesOut(owned, at, owned.Data, Record{Fingerprint: "fp", IssuedAt: time.Now()}) {
		t.Error("the owner proof counts as a field the apply leaves out")
	}
}

func TestStateNameSurvivesRestore(t *testing.T) {
	at := accessToken()
	restored := at.DeepCopy()
	restored.UID = "uid-after-restore"
	if StateName(at) != StateName(restored) {
		t.Fatal("the state name changes with the AccessToken's UID")
	}
	other := at.DeepCopy()
	other.Name += "-2"
	elsewhere := at.DeepCopy()
	elsewhere.Namespace += "-2"
	if StateName(other) == StateName(at) || StateName(elsewhere) == StateName(at) {
		t.Fatal("two AccessTokens share a state name")
	}
	long := at.DeepCopy()
	long.Namespace, long.Name = strings.Repeat("n", 63), strings.Repeat("a", 253)
	if n := len(StateName(long)); n > 63 {
		t.Fatalf("a state name of %d characters", n)
	}
	if UIDStateName(at) != StatePrefix+string(at.UID) {
		t.Fatal("the name earlier versions used is not the UID's")
	}
}

func TestAdoptable(t *testing.T) {
	at := accessToken()
	marked := func(edit func(s *corev1.Secret)) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: at.Namespace, Name: at.Spec.Secret.Name,
			Annotations: map[string]string{AnnotationAdopt: "true"}}, Type: corev1.SecretTypeOpaque}
		edit(s)
		return s
	}
	if !Adoptable(marked(func(*corev1.Secret) {}), at) {
		t.Fatal("a marked Opaque Secret is not adoptable")
	}
	for name, s := range map[string]*corev1.Secret{
		"unmarked":     marked(func(s *corev1.Secret) { delete(s.Annotations, AnnotationAdopt) }),
		"marked false": marked(func(s *corev1.Secret) { s.Annotations[AnnotationAdopt] = "false" }),
		"another type": marked(func(s *corev1.Secret) { s.Type = corev1.SecretTypeServiceAccountToken }),
		"pull secret":  marked(func(s *corev1.Secret) { s.Type = corev1.SecretTypeDockerConfigJson }),
		"has controller": marked(func(s *corev1.Secret) {
			s.OwnerReferences = []metav1.OwnerReference{{Kind: "Deployment", Name: "d", UID: "u", Controller: ptr.To(true)}}
		}),
	} {
		if Adoptable(s, at) {
			t.Errorf("%s: adoptable", name)
		}
	}
}
