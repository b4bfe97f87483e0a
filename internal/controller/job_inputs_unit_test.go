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
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/lru"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// TestAJobsResultDoesNotStandForChangedInputs: a finished job's result is
// returned as is only while the issuer it was decided on is unchanged. An
// issuer changed after the job ended queues the AccessToken again, and the
// work queue merges that with the job's own end, so the reconcile that takes
// the result must see the change itself, or the token of the old inputs
// stays until its renewal.
func TestAJobsResultDoesNotStandForChangedInputs(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)
	cti := &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "idp", UID: "u1"},
		Spec: tokensv1alpha1.ClusterTokenIssuerSpec{IssuerSpec: tokensv1alpha1.IssuerSpec{
			Request: tokensv1alpha1.RequestSpec{URL: "https://idp.example/token"}}}}
	at := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "orders", UID: "a1", Generation: 1},
		Spec: tokensv1alpha1.AccessTokenSpec{
			IssuerRef: tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: "idp"},
			Secret:    tokensv1alpha1.SecretTemplate{Name: "orders-token"}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(cti, at).Build()
	r := &AccessTokenReconciler{Client: c, APIReader: c, Metadata: c, OperatorNamespace: "tokenmint-system",
		Fingerprinter: secret.NewFingerprinter(make([]byte, 32)), credentials: newCredentialStore(0)}
	ctx := context.Background()

	in, err := r.gather(ctx, at, false)
	if err != nil || in.inputsHash == "" {
		t.Fatalf("gathering: %v (inputs %q)", err, in.inputsHash)
	}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	left := at.DeepCopy() // as the job wrote it: renewal in ten minutes
	left.Status.RenewalTime = &metav1.Time{Time: now.Add(10 * time.Minute)}
	left.Status.ExpiresAt = &metav1.Time{Time: now.Add(15 * time.Minute)}
	job := Finished{Object: left, Inputs: in.inputsHash}
	if !jobStands(at, job, true, now) || !r.sameInputs(ctx, at, job.Inputs) {
		t.Fatal("the result of a job decided on the current inputs does not stand")
	}
	if jobStands(at, job, false, now) {
		t.Error("a job's result stands although the cache shows its writes: decide as usual")
	}
	asked := job
	asked.Asked = true
	if jobStands(at, asked, true, now) {
		t.Error("a job's result stands although something asked while it ran")
	}
	renew := at.DeepCopy()
	renew.Annotations = map[string]string{tokensv1alpha1.AnnotationRenew: "now"}
	if jobStands(renew, job, true, now) {
		t.Error("a job's result stands although a renewal was asked for after it was submitted")
	}

	// The reconcile that takes the result comes after the renewal time (its
	// end merged with a later event): the wait the job returned would miss it.
	if jobStands(at, job, true, now.Add(10*time.Minute)) {
		t.Error("a job's result stands although the renewal it scheduled has come")
	}
	failed := job
	failed.Object = left.DeepCopy()
	st := &failed.Object.(*tokensv1alpha1.AccessToken).Status
	st.FailedAttempts = 3 // its token expired during an outage; RenewalTime is its retry
	st.ExpiresAt = &metav1.Time{Time: now.Add(-time.Minute)}
	st.RenewalTime = &metav1.Time{Time: now.Add(time.Minute)}
	if !jobStands(at, failed, true, now) {
		t.Error("a failed job's result does not stand before its retry time")
	}
	if jobStands(at, failed, true, now.Add(time.Minute)) {
		t.Error("a failed job's result stands although its retry time has come")
	}

	cti.Spec.Request.Headers = []tokensv1alpha1.Header{{Name: "X-Tenant", ValueSource: tokensv1alpha1.ValueSource{Value: ptr.To("blue")}}}
	if err := c.Update(ctx, cti); err != nil {
		t.Fatal(err)
	}
	if r.sameInputs(ctx, at, job.Inputs) {
		t.Error("the issuer changed after the job was decided, and its result still stands")
	}
	if !r.sameInputs(ctx, at, "") {
		t.Error("a job submitted without inputs has nothing to compare, and must stand as before")
	}
}

// AccessTokens of one issuer share one copy of each version of it: a call
// waiting its turn keeps its inputs, and a copy of the issuer each would
// grow a backlog's memory by about a kilobyte per AccessToken.
func TestAccessTokensShareTheirIssuersCopy(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)
	cti := &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "idp", UID: "u1"},
		Spec: tokensv1alpha1.ClusterTokenIssuerSpec{IssuerSpec: tokensv1alpha1.IssuerSpec{
			Request: tokensv1alpha1.RequestSpec{URL: "https://idp.example/token"}}}}
	ti := &tokensv1alpha1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "own", UID: "u2"},
		Spec: tokensv1alpha1.IssuerSpec{Request: tokensv1alpha1.RequestSpec{URL: "https://own.example/token"}}}
	accessToken := func(name string, kind tokensv1alpha1.IssuerKind, issuer string) *tokensv1alpha1.AccessToken {
		return &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID(name), Generation: 1},
			Spec: tokensv1alpha1.AccessTokenSpec{IssuerRef: tokensv1alpha1.IssuerReference{Kind: kind, Name: issuer},
				Secret: tokensv1alpha1.SecretTemplate{Name: name + "-token"}}}
	}
	a, b := accessToken("a", tokensv1alpha1.ClusterTokenIssuerKind, "idp"), accessToken("b", tokensv1alpha1.ClusterTokenIssuerKind, "idp")
	own1, own2 := accessToken("c", tokensv1alpha1.TokenIssuerKind, "own"), accessToken("d", tokensv1alpha1.TokenIssuerKind, "own")
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(cti, ti, a, b, own1, own2).Build()
	r := &AccessTokenReconciler{Client: c, APIReader: c, Metadata: c, OperatorNamespace: "tokenmint-system",
		Fingerprinter: secret.NewFingerprinter(make([]byte, 32)), credentials: newCredentialStore(0),
		issuerCopies: lru.New(maxIssuerCopies)}
	ctx := context.Background()
	gather := func(at *tokensv1alpha1.AccessToken) *inputs {
		t.Helper()
		in, err := r.gather(ctx, at, false)
		if err != nil || in.spec == nil {
			t.Fatalf("gathering %s: %v (problem %v)", at.Name, err, in.problem)
		}
		return in
	}
	for _, pair := range [][2]*tokensv1alpha1.AccessToken{{a, b}, {own1, own2}} {
		first, second := gather(pair[0]), gather(pair[1])
		if first.spec != second.spec {
			t.Errorf("%s and %s of one issuer hold two copies of it", pair[0].Name, pair[1].Name)
		}
	}
	before := gather(a)

	cur := &tokensv1alpha1.ClusterTokenIssuer{}
	if err := c.Get(ctx, types.NamespacedName{Name: "idp"}, cur); err != nil {
		t.Fatal(err)
	}
	cur.Spec.Request.URL = "https://idp.example/v2/token"
	if err := c.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	after := gather(b)
	if after.spec == before.spec || after.spec.Request.URL != "https://idp.example/v2/token" {
		t.Fatalf("after the issuer changed: the old copy is used (%s)", after.spec.Request.URL)
	}
	if before.spec.Request.URL != "https://idp.example/token" {
		t.Fatalf("the copy an earlier reconcile holds changed under it: %s", before.spec.Request.URL)
	}
	if again := gather(a); again.spec != after.spec {
		t.Error("the new version is copied once per AccessToken")
	}

	if err := c.Delete(ctx, cur); err != nil {
		t.Fatal(err)
	}
	recreated := &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "idp", UID: "u3"},
		Spec: tokensv1alpha1.ClusterTokenIssuerSpec{IssuerSpec: tokensv1alpha1.IssuerSpec{
			Request: tokensv1alpha1.RequestSpec{URL: "https://idp.example/v3/token"}}}}
	if err := c.Create(ctx, recreated); err != nil {
		t.Fatal(err)
	}
	if in := gather(a); in.issuerUID != "u3" || in.spec.Request.URL != "https://idp.example/v3/token" {
		t.Fatalf("after the issuer was re-created: %s of %s", in.spec.Request.URL, in.issuerUID)
	}
}
