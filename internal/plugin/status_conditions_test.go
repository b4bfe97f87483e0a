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

package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

func TestStatusShowsExpiryUnknownClockSkewAndPendingReissue(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)
	issued := metav1.NewTime(now.Add(-time.Hour))
	reissue := metav1.NewTime(now.Add(12 * time.Minute))
	unknown := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "forever"},
		Spec: tokensv1alpha1.AccessTokenSpec{IssuerRef: tokensv1alpha1.IssuerReference{Name: "appliance"},
			Secret: tokensv1alpha1.SecretTemplate{Name: "forever-token"}},
		Status: tokensv1alpha1.AccessTokenStatus{IssuedAt: &issued, ReissueAfter: &reissue, Conditions: []metav1.Condition{
			{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonTokenValid},
			{Type: tokensv1alpha1.ConditionExpiryUnknown, Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonNoExpiry,
				Message: "the endpoint reports no expiry and neither defaultLifetime nor maxAge is set"}}}}
	known := unknown.DeepCopy()
	known.Name, known.Status.ReissueAfter = "bounded", nil
	known.Status.Conditions = known.Status.Conditions[:1]
	ti := &tokensv1alpha1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "appliance"},
		Status: tokensv1alpha1.IssuerStatus{Conditions: []metav1.Condition{
			{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonValid},
			{Type: tokensv1alpha1.ConditionClockSkew, Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonClockAhead,
				Message: "the endpoint's clock is 10m0s ahead"}}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(unknown, known, ti).Build()
	ctx := context.Background()
	out := &bytes.Buffer{}
	view := buildStatus(ctx, c, unknown, now)
	printStatus(out, &view)
	for _, want := range []string{"Issuer clock:", "ClockAhead: the endpoint's clock is 10m0s ahead",
		"Expires:", "unknown: the endpoint reports no expiry", "Re-issue after:", "in 12m"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if err := printStructured(out, "json", []StatusView{buildStatus(ctx, c, known, now), view}); err != nil {
		t.Fatal(err)
	}
	var views []StatusView
	if err := json.Unmarshal(out.Bytes(), &views); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if len(views) != 2 || views[0].Name != "bounded" || views[1].Name != "forever" {
		t.Fatalf("views %+v", views)
	}
	if views[0].ExpiryUnknown != "" || views[0].ReissueAfter != nil {
		t.Errorf("bounded: expiryUnknown %q, reissueAfter %v; want neither", views[0].ExpiryUnknown, views[0].ReissueAfter)
	}
	if views[1].ExpiryUnknown == "" || views[1].ReissueAfter == nil || !strings.HasPrefix(views[1].IssuerClockSkew, "ClockAhead") {
		t.Errorf("forever: %+v", views[1])
	}
}
