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

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/tokenmint/tokenmint/internal/secret"
)

// A state Secret restored before its AccessToken and token Secret is kept for
// orphanStateGrace, so that a restore in any order finds it; only then, with
// the AccessToken still missing, is it removed.
func TestOrphanStateWaitsForItsAccessToken(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	const opNS = "tokenmint-system"
	key := types.NamespacedName{Namespace: "shop", Name: "orders"}
	state := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "tokenmint-state-x",
		Labels:      map[string]string{secret.LabelComponent: secret.ComponentState},
		Annotations: map[string]string{secret.AnnotationAccessToken: key.String(), secret.AnnotationSecret: "orders-token"}}}
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "tokenmint-state-y",
		Labels:      map[string]string{secret.LabelComponent: secret.ComponentState},
		Annotations: map[string]string{secret.AnnotationAccessToken: "shop/other"}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(state, other).Build()
	clk := clocktesting.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	r := &AccessTokenReconciler{Client: c, APIReader: c, Clock: clk, OperatorNamespace: opNS,
		Fingerprinter: secret.NewFingerprinter(make([]byte, 32))}
	exists := func(s *corev1.Secret) bool {
		err := c.Get(context.Background(), client.ObjectKeyFromObject(s), &corev1.Secret{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}

	wait, err := r.deleteOrphanState(context.Background(), key)
	if err != nil || wait != orphanStateGrace || !exists(state) {
		t.Fatalf("first sight: wait %v, err %v, kept %v; want the state kept and a look again in %v", wait, err, exists(state), orphanStateGrace)
	}
	clk.Step(orphanStateGrace - time.Minute)
	if wait, err := r.deleteOrphanState(context.Background(), key); err != nil || wait != time.Minute || !exists(state) {
		t.Fatalf("within the grace: wait %v, err %v, kept %v", wait, err, exists(state))
	}
	clk.Step(time.Minute)
	if wait, err := r.deleteOrphanState(context.Background(), key); err != nil || wait != 0 || exists(state) {
		t.Fatalf("after the grace: wait %v, err %v, kept %v; want it removed", wait, err, exists(state))
	}
	if !exists(other) {
		t.Error("the state of another AccessToken was removed")
	}
	if _, seen := r.orphans.Load(key); seen {
		t.Error("the removed orphan is still remembered")
	}
}
