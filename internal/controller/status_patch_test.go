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

	jsonpatch "github.com/evanphx/json-patch/v5"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

func TestStatusMergePatch(t *testing.T) {
	at := func(d time.Duration) *metav1.Time {
		return &metav1.Time{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(d)}
	}
	from := tokensv1alpha1.AccessTokenStatus{
		ObservedGeneration: 1,
		IssuedAt:           at(0),
		RenewalTime:        at(time.Hour),
		FailedAttempts:     2,
		LastFailureTime:    at(time.Minute),
		TokenFingerprint:   "sha256:aa",
		Conditions: []metav1.Condition{
			{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "A", LastTransitionTime: *at(0)},
			{Type: tokensv1alpha1.ConditionRenewing, Status: metav1.ConditionTrue, Reason: "B", LastTransitionTime: *at(0)},
		},
	}
	to := *from.DeepCopy()
	to.FailedAttempts = 0
	to.LastFailureTime = nil
	to.TokenFingerprint = "sha256:bb"
	to.Conditions[0].Status, to.Conditions[0].Reason = metav1.ConditionTrue, "C"

	patch, err := statusMergePatch(&from, &to)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(patch, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["status"] == nil {
		t.Fatalf("the patch must touch only status: %s", patch)
	}
	st := got["status"]
	for _, removed := range []string{"failedAttempts", "lastFailureTime"} {
		if v, ok := st[removed]; !ok || v != nil {
			t.Errorf("%s: want null (removed), got %v in %s", removed, v, patch)
		}
	}
	if st["tokenFingerprint"] != "sha256:bb" {
		t.Errorf("tokenFingerprint not set: %s", patch)
	}
	if c, ok := st["conditions"].([]any); !ok || len(c) != 2 {
		t.Errorf("conditions must be sent whole (a merge patch replaces lists): %s", patch)
	}
	for _, same := range []string{"observedGeneration", "issuedAt", "renewalTime"} {
		if _, ok := st[same]; ok {
			t.Errorf("%s did not change and must not be in the patch: %s", same, patch)
		}
	}

	// Applied to the stored object, the patch gives exactly the new status and
	// leaves everything else alone.
	stored := tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "n", ResourceVersion: "7"},
		Spec: tokensv1alpha1.AccessTokenSpec{Secret: tokensv1alpha1.SecretTemplate{Name: "s"}}, Status: from}
	doc, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := jsonpatch.MergePatch(doc, patch)
	if err != nil {
		t.Fatal(err)
	}
	var result tokensv1alpha1.AccessToken
	if err := json.Unmarshal(patched, &result); err != nil {
		t.Fatal(err)
	}
	want := stored.DeepCopy()
	want.Status = to
	if !equality.Semantic.DeepEqual(&result, want) {
		t.Errorf("patched object differs:\n got %+v\nwant %+v", result, *want)
	}
}
