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
	"testing"
	"time"
	"unsafe"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
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
