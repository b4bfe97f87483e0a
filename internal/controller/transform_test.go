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
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
)

func TestCompactObjectKeepsWhatTheControllerReads(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	decoded := func(name string) *tokensv1alpha1.AccessToken {
		at := &tokensv1alpha1.AccessToken{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: "uid-" + "name",
				Labels:        map[string]string{"team": "payments"},
				Annotations:   map[string]string{lastApplied: `{"spec":{}}`, tokensv1alpha1.AnnotationRenew: "r1"},
				Finalizers:    []string{RevokeFinalizer},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}},
			Spec: tokensv1alpha1.AccessTokenSpec{
				IssuerRef: tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: "acme"},
				Secret:    tokensv1alpha1.SecretTemplate{Name: name + "-token", Labels: map[string]string{"app": "web"}},
			},
			Status: tokensv1alpha1.AccessTokenStatus{TokenFingerprint: "hmac-sha256:" + name, Conditions: []metav1.Condition{
				{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonTokenValid,
					Message: "the Secret holds a valid token until 2026-01-01T01:00:00Z", LastTransitionTime: now},
			}},
		}
		// As the decoder leaves it: every string its own copy.
		raw, err := json.Marshal(at)
		if err != nil {
			t.Fatal(err)
		}
		out := &tokensv1alpha1.AccessToken{}
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := decoded("a"), decoded("b")
	want := a.DeepCopy()
	want.ManagedFields = nil
	delete(want.Annotations, lastApplied)
	for _, at := range []*tokensv1alpha1.AccessToken{a, b} {
		if _, err := compactObject(at); err != nil {
			t.Fatal(err)
		}
	}
	if !equality.Semantic.DeepEqual(a, want) {
		t.Fatalf("transform changed more than managed fields and kubectl's copy:\n got %+v\nwant %+v", a, want)
	}
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	ca, cb := a.Status.Conditions[0], b.Status.Conditions[0]
	if !same(a.Namespace, b.Namespace) || !same(a.Spec.IssuerRef.Name, b.Spec.IssuerRef.Name) ||
		!same(ca.Message, cb.Message) || !same(ca.Reason, cb.Reason) || !same(a.Finalizers[0], b.Finalizers[0]) ||
		!same(a.Spec.Secret.Labels["app"], b.Spec.Secret.Labels["app"]) || !same(a.Labels["team"], b.Labels["team"]) {
		t.Fatal("recurring strings are stored twice")
	}
}

func TestCompactObjectDropsOversizedParameters(t *testing.T) {
	at := func(value string) *tokensv1alpha1.AccessToken {
		raw, _ := json.Marshal(value)
		return &tokensv1alpha1.AccessToken{
			ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "shop", Annotations: map[string]string{
				annotationParametersDropped:    "1", // forged by the writer: never trusted
				"other":                        strings.Repeat("x", 200<<10),
				tokensv1alpha1.AnnotationRenew: "r1",
			}},
			Spec: tokensv1alpha1.AccessTokenSpec{Parameters: map[string]apiextensionsv1.JSON{
				"description": {Raw: raw}, "lifetimeSeconds": {Raw: []byte("3600")}}},
		}
	}
	small := at("Billing service (prod)")
	if _, err := compactObject(small); err != nil {
		t.Fatal(err)
	}
	if len(small.Spec.Parameters) != 2 {
		t.Fatal("small parameters were dropped")
	}
	if _, ok := droppedParameters(small); ok || specProblem(small) != nil {
		t.Fatal("a marker the writer set is trusted")
	}
	if len(small.Annotations) != 2 || small.Annotations[tokensv1alpha1.AnnotationRenew] != "r1" ||
		len(small.Annotations[annotationOthers]) > 16 {
		t.Fatalf("annotations kept: %v", slices.Collect(maps.Keys(small.Annotations)))
	}
	// Another value of a dropped annotation still changes the cached object.
	edited := at("Billing service (prod)")
	edited.Annotations["other"] += "!"
	if _, err := compactObject(edited); err != nil {
		t.Fatal(err)
	}
	if edited.Annotations[annotationOthers] == small.Annotations[annotationOthers] {
		t.Fatal("an edit of a dropped annotation leaves the cached object unchanged")
	}

	big := at(strings.Repeat("p", 900_000))
	if _, err := compactObject(big); err != nil {
		t.Fatal(err)
	}
	if big.Spec.Parameters != nil {
		t.Fatal("oversized parameters are cached")
	}
	n, ok := droppedParameters(big)
	if !ok || n < 900_000 {
		t.Fatalf("no marker of the dropped parameters: %d, %v", n, ok)
	}
	p := specProblem(big)
	if p == nil || p.reason != tokensv1alpha1.ReasonInvalidSpec ||
		p.message != fmt.Sprintf("parameters hold %d bytes, more than the %d tokenmint reads", n, MaxParametersBytes) {
		t.Fatalf("dropped parameters not reported as InvalidSpec: %+v", p)
	}

	// Exactly at the bound: kept.
	edge := at("")
	edge.Spec.Parameters = map[string]apiextensionsv1.JSON{"d": {Raw: []byte(`"` + strings.Repeat("e", MaxParametersBytes-3) + `"`)}}
	if _, err := compactObject(edge); err != nil {
		t.Fatal(err)
	}
	if parametersSize(edge) != MaxParametersBytes || edge.Spec.Parameters == nil {
		t.Fatal("parameters at the bound were dropped")
	}
}

func TestTrimSecretKeepsDataOnlyWithOwnerProof(t *testing.T) {
	cfg := &Config{OperatorNamespace: "tokenmint-system"}
	_ = cfg.CacheOptions()
	f := secret.NewFingerprinter([]byte("installation-key-0123456789abcdef"))
	at := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Name: "payments", Namespace: "shop", UID: "uid-1"},
		Spec: tokensv1alpha1.AccessTokenSpec{Secret: tokensv1alpha1.SecretTemplate{Name: "payments-token"}}}
	data := map[string][]byte{"token": []byte("CANARY-TOKEN")}
	written := func(proof string) *corev1.Secret {
		s := secret.New(at, data, secret.Record{Fingerprint: "fp", IssuedAt: time.Now(), OwnerProof: proof})
		s.Annotations["note"] = strings.Repeat("n", 100<<10)
		s.Labels["team"] = "a"
		return s
	}
	trim := func(s *corev1.Secret) *corev1.Secret {
		out, err := cfg.trimSecret(s)
		if err != nil {
			t.Fatal(err)
		}
		return out.(*corev1.Secret)
	}
	proof := f.OwnerProof(at.Namespace, at.Spec.Secret.Name, "AccessToken", at.Name)

	// Before Setup has read the key nothing verifies: no data is cached.
	if s := trim(written(proof)); s.Data != nil {
		t.Fatal("data cached before the key is known")
	}
	cfg.proofs.Store(f)
	if s := trim(written(proof)); string(s.Data["token"]) != "CANARY-TOKEN" || s.Annotations["note"] == "" {
		t.Fatal("a Secret with a valid owner proof lost its data or annotations")
	}

	// A forged controller reference: tokenmint's label, an owner reference
	// naming an AccessToken, a proof copied from another Secret.
	forged := written(proof)
	forged.Name = "forged"
	forged.Data["big"] = make([]byte, 200<<10)
	forged.OwnerReferences = append(forged.OwnerReferences, make([]metav1.OwnerReference, 100)...)
	s := trim(forged)
	if s.Data != nil || s.Annotations != nil || s.Labels["team"] != "" || len(s.OwnerReferences) != 1 {
		t.Fatalf("a forged Secret keeps more than its identity: %d data keys, %d annotations, %d owner references",
			len(s.Data), len(s.Annotations), len(s.OwnerReferences))
	}
	if s.Labels[tokensv1alpha1.LabelManagedBy] != tokensv1alpha1.ManagedByValue || !secret.IsOwnedBy(s, at) {
		t.Fatal("the identity the controllers read was dropped")
	}
	// The same Secret naming another AccessToken as its owner, with or
	// without owner references: nothing kept.
	other := written(proof)
	other.OwnerReferences[0].Name = "another-token"
	stripped := written(proof)
	stripped.OwnerReferences = nil
	stripped.Labels[tokensv1alpha1.LabelAccessToken] = "another-token"
	for _, s := range []*corev1.Secret{other, stripped} {
		if s := trim(s); s.Data != nil || s.Annotations != nil {
			t.Fatal("a Secret whose owner the proof does not name keeps its data")
		}
	}
	// Restored from backup: the AccessToken has a new UID, and the owner
	// reference names the old one, or is gone.
	restored := written(proof)
	restored.OwnerReferences[0].UID = "uid-before-restore"
	stripped = written(proof)
	stripped.OwnerReferences = nil
	for _, s := range []*corev1.Secret{restored, stripped} {
		if s := trim(s); string(s.Data["token"]) != "CANARY-TOKEN" || s.Annotations[secret.AnnotationOwnerProof] == "" {
			t.Fatal("a restored Secret lost its data or its proof")
		}
	}
	// Written before Secrets carried the proof: held without data.
	if s := trim(written("")); s.Data != nil || !secret.IsOwnedBy(s, at) {
		t.Fatal("a Secret without proof keeps its data")
	}

	// State Secrets: kept up to MaxStateBytes.
	state := func(n int) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tokenmint-system", Name: secret.StatePrefix + "uid-1",
			Labels: map[string]string{tokensv1alpha1.LabelManagedBy: tokensv1alpha1.ManagedByValue, secret.LabelComponent: secret.ComponentState}},
			Data: map[string][]byte{"state.json": make([]byte, n)}}
	}
	if s := trim(state(secret.MaxStateBytes - len("state.json"))); s.Data == nil {
		t.Fatal("a state within the bound lost its data")
	}
	if s := trim(state(secret.MaxStateBytes)); s.Data != nil {
		t.Fatal("a state over the bound keeps its data")
	}
	// The same Secret elsewhere is not a state Secret.
	elsewhere := state(10)
	elsewhere.Namespace = "shop"
	if s := trim(elsewhere); s.Data != nil {
		t.Fatal("a state-labelled Secret outside the operator namespace keeps its data")
	}
}

func TestCompactObjectDropsIssuerAnnotations(t *testing.T) {
	ti := &tokensv1alpha1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "i", Namespace: "shop",
		Annotations: map[string]string{lastApplied: strings.Repeat("x", 200<<10)}}}
	cti := &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "c",
		Annotations: map[string]string{"note": strings.Repeat("x", 200<<10)}}}
	for _, o := range []any{ti, cti} {
		if _, err := compactObject(o); err != nil {
			t.Fatal(err)
		}
	}
	if ti.Annotations != nil || cti.Annotations != nil {
		t.Fatal("issuer annotations are cached")
	}
}
