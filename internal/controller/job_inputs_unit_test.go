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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
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
	job := Finished{Object: at.DeepCopy(), Inputs: in.inputsHash}
	if !jobStands(at, job, true) || !r.sameInputs(ctx, at, job.Inputs) {
		t.Fatal("the result of a job decided on the current inputs does not stand")
	}
	if jobStands(at, job, false) {
		t.Error("a job's result stands although the cache shows its writes: decide as usual")
	}
	asked := job
	asked.Asked = true
	if jobStands(at, asked, true) {
		t.Error("a job's result stands although something asked while it ran")
	}
	renew := at.DeepCopy()
	renew.Annotations = map[string]string{tokensv1alpha1.AnnotationRenew: "now"}
	if jobStands(renew, job, true) {
		t.Error("a job's result stands although a renewal was asked for after it was submitted")
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
