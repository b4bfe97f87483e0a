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
	"testing"
	"time"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

func accessToken() *tokensv1alpha1.AccessToken {
	return &tokensv1alpha1.AccessToken{
		ObjectMeta: metav1.ObjectMeta{Name: "payments", Namespace: "shop", UID: "uid-1"},
		Spec: tokensv1alpha1.AccessTokenSpec{Secret: tokensv1alpha1.SecretTemplate{
			Name: "payments-token", Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "x"},
		}},
	}
}

func TestFingerprintIsKeyedAndStable(t *testing.T) {
	a, b := NewFingerprinter([]byte("key-a")), NewFingerprinter([]byte("key-b"))
	tok := []byte("CANARY-TOKEN-0001")
	if a.Fingerprint(tok) != a.Fingerprint(tok) {
		t.Fatal("fingerprint is not stable")
	}
	if a.Fingerprint(tok) == b.Fingerprint(tok) {
		t.Fatal("fingerprint does not depend on the key")
	}
	if a.Fingerprint(tok) == a.Fingerprint([]byte("CANARY-TOKEN-0002")) {
		t.Fatal("different tokens share a fingerprint")
	}
	if got := a.Fingerprint(tok); len(got) != len("hmac-sha256:")+32 {
		t.Fatalf("unexpected fingerprint %q", got)
	}
}

func TestDesiredSecret(t *testing.T) {
	at := accessToken()
	exp := time.Date(2026, 1, 1, 13, 0, 0, 0, time.UTC)
	rec := Record{Fingerprint: "hmac-sha256:00", IssuedAt: exp.Add(-time.Hour), ExpiresAt: &exp, InputsHash: "h"}
	ac := Desired(at, map[string][]byte{"token": []byte("t")}, rec)
	back, ok := ReadRecord(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: ac.Annotations}})
	if !ok || back.Fingerprint != rec.Fingerprint || !back.IssuedAt.Equal(rec.IssuedAt) || !back.ExpiresAt.Equal(exp) || back.InputsHash != "h" {
		t.Fatalf("record did not round-trip: %+v", back)
	}
	if ac.Annotations["note"] != "x" {
		t.Fatalf("user annotations lost: %v", ac.Annotations)
	}
	if *ac.Name != "payments-token" || *ac.Namespace != "shop" || *ac.Type != corev1.SecretTypeOpaque {
		t.Fatalf("unexpected identity %v/%v type %v", *ac.Namespace, *ac.Name, *ac.Type)
	}
	if ac.Labels[tokensv1alpha1.LabelManagedBy] != tokensv1alpha1.ManagedByValue || ac.Labels["team"] != "a" {
		t.Fatalf("labels %v", ac.Labels)
	}
	if len(ac.OwnerReferences) != 1 || *ac.OwnerReferences[0].UID != "uid-1" || !*ac.OwnerReferences[0].Controller {
		t.Fatalf("owner references %v", ac.OwnerReferences)
	}
	if at.Spec.Secret.Labels[tokensv1alpha1.LabelManagedBy] != "" {
		t.Fatal("Desired changed the AccessToken's own labels")
	}
}

func TestDrifted(t *testing.T) {
	at := accessToken()
	ok := &corev1.Secret{Type: corev1.SecretTypeOpaque, ObjectMeta: metav1.ObjectMeta{Labels: Labels(at), Annotations: map[string]string{"note": "x", "extra": "y"}}}
	if Drifted(ok, at) {
		t.Fatal("an up-to-date Secret (with an extra annotation) reported as drifted")
	}
	for name, mutate := range map[string]func(s *corev1.Secret){
		"label removed":      func(s *corev1.Secret) { delete(s.Labels, "team") },
		"annotation changed": func(s *corev1.Secret) { s.Annotations["note"] = "changed" },
		"type changed":       func(s *corev1.Secret) { s.Type = corev1.SecretTypeDockerConfigJson },
	} {
		s := ok.DeepCopy()
		mutate(s)
		if !Drifted(s, at) {
			t.Errorf("%s: not reported as drifted", name)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	at := accessToken()
	exp := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := State{Token: "t", RefreshToken: "r", RefreshTokenExpiresAt: &exp, TokenID: "id",
		Superseded: []Superseded{{Token: "old", ID: "old-id", RevokeAt: exp}}}
	ac, err := DesiredState(at, "tokenmint-system", in)
	if err != nil {
		t.Fatal(err)
	}
	if *ac.Namespace != "tokenmint-system" || ac.Labels[LabelAccessTokenUID] != "uid-1" {
		t.Fatalf("state Secret identity %v labels %v", *ac.Namespace, ac.Labels)
	}
	out, err := DecodeState(&corev1.Secret{Data: ac.Data})
	if err != nil {
		t.Fatal(err)
	}
	if out.Token != "t" || out.RefreshToken != "r" || !out.RefreshTokenExpiresAt.Equal(exp) || out.Superseded[0].ID != "old-id" {
		t.Fatalf("round trip lost data: %+v", out)
	}
	if _, err := DecodeState(&corev1.Secret{Data: map[string][]byte{"state.json": []byte("{not json")}}); err == nil {
		t.Fatal("a corrupt state decoded without error")
	}
}

func TestNewIsWhatDesiredApplies(t *testing.T) {
	at := accessToken()
	at.Spec.Secret.Type = corev1.SecretTypeBasicAuth
	exp := time.Date(2026, 1, 1, 13, 0, 0, 0, time.UTC)
	rec := Record{Fingerprint: "hmac-sha256:00", IssuedAt: exp.Add(-time.Hour), ExpiresAt: &exp, InputsHash: "h"}
	data := map[string][]byte{"token": []byte("t"), "scope": []byte("s")}
	applied, err := json.Marshal(Desired(at, data, rec))
	if err != nil {
		t.Fatal(err)
	}
	var fromApply corev1.Secret
	if err := json.Unmarshal(applied, &fromApply); err != nil {
		t.Fatal(err)
	}
	created := New(at, data, rec)
	created.TypeMeta = fromApply.TypeMeta
	if !equality.Semantic.DeepEqual(&fromApply, created) {
		t.Fatalf("New and Desired differ:\napply  %+v\ncreate %+v", &fromApply, created)
	}
}

func TestLeavesOut(t *testing.T) {
	at := accessToken()
	rec := Record{Fingerprint: "hmac-sha256:00", IssuedAt: time.Unix(0, 0), InputsHash: "h"}
	data := map[string][]byte{"token": []byte("t")}
	s := New(at, data, rec)
	if LeavesOut(s, at, data, rec) {
		t.Fatal("the Secret tokenmint would write leaves nothing out")
	}
	for name, mutate := range map[string]func(*corev1.Secret){
		"label":      func(s *corev1.Secret) { s.Labels["gone"] = "1" },
		"annotation": func(s *corev1.Secret) { s.Annotations["gone"] = "1" },
		"key":        func(s *corev1.Secret) { s.Data["gone"] = []byte("1") },
	} {
		c := s.DeepCopy()
		mutate(c)
		if !LeavesOut(c, at, data, rec) {
			t.Errorf("an extra %s is not reported", name)
		}
	}
}

func TestTrimManagedFieldsKeepsOnlyTheCreateMarker(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{
		{Manager: FieldOwner, Operation: metav1.ManagedFieldsOperationApply, FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:data":{}}`)}},
		{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: &metav1.FieldsV1{Raw: []byte(`{}`)}},
	}}}
	out, _ := TrimManagedFields(s.DeepCopy())
	if got := out.(*corev1.Secret); len(got.ManagedFields) != 0 || CreatedByUpdate(got) {
		t.Fatalf("kept %v", got.ManagedFields)
	}
	s.ManagedFields = append(s.ManagedFields, metav1.ManagedFieldsEntry{Manager: FieldOwner, Operation: metav1.ManagedFieldsOperationUpdate,
		FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:data":{"f:token":{}}}`)}})
	out, _ = TrimManagedFields(s.DeepCopy())
	got := out.(*corev1.Secret)
	if !CreatedByUpdate(got) || len(got.ManagedFields) != 1 || got.ManagedFields[0].FieldsV1 != nil {
		t.Fatalf("kept %v", got.ManagedFields)
	}
}

func TestTrimManagedFieldsKeepsValuesAndSharesStrings(t *testing.T) {
	at := accessToken()
	rec := Record{Fingerprint: "hmac-sha256:00", IssuedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), InputsHash: "h"}
	decoded := func() *corev1.Secret {
		// As the decoder leaves it: every string its own copy.
		raw, err := json.Marshal(New(at, map[string][]byte{"token": []byte("CANARY")}, rec))
		if err != nil {
			t.Fatal(err)
		}
		s := &corev1.Secret{}
		if err := json.Unmarshal(raw, s); err != nil {
			t.Fatal(err)
		}
		s.ManagedFields = []metav1.ManagedFieldsEntry{
			{Manager: FieldOwner, Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1",
				FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:data":{}}`)}},
			{Manager: "kubectl-edit", Operation: metav1.ManagedFieldsOperationUpdate},
		}
		return s
	}
	a, b := decoded(), decoded()
	want := a.DeepCopy()
	want.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: FieldOwner, Operation: metav1.ManagedFieldsOperationUpdate}}
	for _, s := range []*corev1.Secret{a, b} {
		if _, err := TrimManagedFields(s); err != nil {
			t.Fatal(err)
		}
	}
	if !equality.Semantic.DeepEqual(a, want) {
		t.Fatalf("transform changed the Secret:\n got %+v\nwant %+v", a, want)
	}
	if !CreatedByUpdate(a) {
		t.Fatal("the create's ownership marker was lost")
	}
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	if !same(a.Namespace, b.Namespace) || !same(a.Annotations[AnnotationIssuedAt], b.Annotations[AnnotationIssuedAt]) ||
		!same(a.Labels["team"], b.Labels["team"]) || !same(a.OwnerReferences[0].Kind, b.OwnerReferences[0].Kind) {
		t.Fatal("recurring strings are stored twice")
	}
	for k := range a.Annotations {
		for k2 := range b.Annotations {
			if k == k2 && !same(k, k2) {
				t.Fatalf("annotation key %q is stored twice", k)
			}
		}
	}

	// A Secret tokenmint did not create carries no marker.
	c := decoded()
	c.ManagedFields = c.ManagedFields[1:]
	if _, err := TrimManagedFields(c); err != nil || CreatedByUpdate(c) || c.ManagedFields != nil {
		t.Fatalf("marker on a Secret tokenmint did not create: %+v, %v", c.ManagedFields, err)
	}
}
