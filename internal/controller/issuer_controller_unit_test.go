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
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/lru"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
)

// countingReader counts the Secrets read through it.
type countingReader struct {
	client.Reader
	gets int
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.gets++
	return c.Reader.Get(ctx, key, obj, opts...)
}

func TestIssuerReconcilerReadsEachSecretOncePerVersion(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)
	secret := func(name string, keys ...string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Data: map[string][]byte{}}
		for _, k := range keys {
			s.Data[k] = []byte("value")
		}
		return s
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(secret("a", "id", "secret"), secret("b", "token")).Build()
	live := &countingReader{Reader: c}
	r := &IssuerReconciler{Client: c, APIReader: live, Metadata: c, known: lru.New(maxKnownSecretKeys)}
	var credentials []tokensv1alpha1.Credential
	ref := func(name, key string) *tokensv1alpha1.ValueSource {
		credentials = append(credentials, tokensv1alpha1.Credential{Name: name + "-" + key,
			SecretKeyRef: &tokensv1alpha1.SecretKeySelector{Name: name, Key: key}})
		return &tokensv1alpha1.ValueSource{Credential: name + "-" + key}
	}
	spec := &tokensv1alpha1.IssuerSpec{Request: tokensv1alpha1.RequestSpec{
		Auth: &tokensv1alpha1.AuthSpec{Basic: &tokensv1alpha1.BasicAuth{Username: *ref("a", "id"), Password: *ref("a", "secret")}},
		Headers: []tokensv1alpha1.Header{
			{Name: "X-Token", ValueSource: *ref("b", "token")},
			{Name: "X-Other", ValueSource: *ref("b", "other")},
			{Name: "X-Gone", ValueSource: *ref("gone", "k")},
		},
	}}
	spec.Credentials = credentials
	want := []string{`key "other" of Secret b`, "Secret gone"}

	missing, err := r.missingCredentials(ctx, spec, "ns")
	if err != nil || !slices.Equal(missing, want) {
		t.Fatalf("missingCredentials = %v, %v; want %v", missing, err, want)
	}
	if live.gets != 3 {
		t.Errorf("first look: %d reads, want one per Secret (3)", live.gets)
	}

	// Unchanged Secrets are not read again; a missing one is.
	live.gets = 0
	if missing, _ = r.missingCredentials(ctx, spec, "ns"); !slices.Equal(missing, want) {
		t.Errorf("missingCredentials = %v, want %v", missing, want)
	}
	if live.gets != 1 {
		t.Errorf("unchanged Secrets: %d reads, want only the missing one read (1)", live.gets)
	}

	// A changed Secret is read again, alone.
	b := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "b"}, b); err != nil {
		t.Fatal(err)
	}
	b.Data["other"] = []byte("now")
	if err := c.Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	live.gets = 0
	if missing, _ = r.missingCredentials(ctx, spec, "ns"); !slices.Equal(missing, []string{"Secret gone"}) {
		t.Errorf("after the key was added: missingCredentials = %v", missing)
	}
	if live.gets != 2 {
		t.Errorf("one Secret changed: %d reads, want it and the missing one (2)", live.gets)
	}
}

// A restart (or a new leader) knows no call yet: the issuer's Ready keeps
// what the last call said, and nothing is written; a call's result, or a
// change of the issuer, still sets it anew.
func TestIssuerReadyOutlivesARestart(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)
	const accepted = "configuration is valid, its credential Secrets exist, and the endpoint accepted the last call"
	cti := &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "idp", Generation: 1},
		Spec: tokensv1alpha1.ClusterTokenIssuerSpec{IssuerSpec: tokensv1alpha1.IssuerSpec{
			Request:  tokensv1alpha1.RequestSpec{URL: "https://idp.example/token"},
			Response: tokensv1alpha1.ResponseSpec{Token: "access_token"}}},
		Status: tokensv1alpha1.IssuerStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{{
			Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonValid,
			Message: accepted, ObservedGeneration: 1, LastTransitionTime: metav1.Now()}}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(cti).WithStatusSubresource(cti).Build()
	r := &IssuerReconciler{Client: c, APIReader: c, Metadata: c, Kind: tokensv1alpha1.ClusterTokenIssuerKind,
		known: lru.New(maxKnownSecretKeys), Health: NewIssuerHealth(), Clocks: &ProviderClocks{}}
	req := ctrl.Request{NamespacedName: types.NamespacedName{Name: "idp"}}
	current := func() (*tokensv1alpha1.ClusterTokenIssuer, *metav1.Condition) {
		t.Helper()
		got := &tokensv1alpha1.ClusterTokenIssuer{}
		if err := c.Get(ctx, req.NamespacedName, got); err != nil {
			t.Fatal(err)
		}
		return got, meta.FindStatusCondition(got.Status.Conditions, tokensv1alpha1.ConditionReady)
	}
	before, _ := current()
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	after, ready := current()
	if after.ResourceVersion != before.ResourceVersion || ready.Message != accepted {
		t.Fatalf("after a restart: status written (%s → %s), Ready says %q", before.ResourceVersion, after.ResourceVersion, ready.Message)
	}

	r.Health.Record(issuerKey(tokensv1alpha1.ClusterTokenIssuerKind, "", "idp"),
		&issuer.Error{Class: issuer.ClassUnauthorized, Message: "invalid_client"}, time.Now())
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, ready = current(); ready.Status != metav1.ConditionFalse {
		t.Fatalf("a failed call after the restart: Ready %s %q", ready.Status, ready.Message)
	}

	changed, _ := current()
	changed.Spec.Request.URL = "https://idp.example/v2/token"
	changed.Generation = 2
	if err := c.Update(ctx, changed); err != nil {
		t.Fatal(err)
	}
	r.Health = NewIssuerHealth()
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, ready = current(); ready.Status != metav1.ConditionTrue || ready.Message == accepted {
		t.Fatalf("a changed issuer no call has used yet: Ready %s %q", ready.Status, ready.Message)
	}
}
