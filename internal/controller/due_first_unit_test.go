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
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// After a start, the AccessTokens with work due are reconciled before the
// many whose reconcile is a no-op, whatever order the first list queued
// them in.
func TestWorkDueGoesFirstAfterAStart(t *testing.T) {
	now := time.Unix(90000, 0)
	issued := func(name string) *tokensv1alpha1.AccessToken {
		return &tokensv1alpha1.AccessToken{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Generation: 1},
			Spec:       tokensv1alpha1.AccessTokenSpec{IssuerRef: tokensv1alpha1.IssuerReference{Name: "idp"}},
			Status: tokensv1alpha1.AccessTokenStatus{ObservedGeneration: 1, TokenFingerprint: "hmac-sha256:x",
				IssuedAt: &metav1.Time{Time: now.Add(-10 * time.Minute)}, RenewalTime: &metav1.Time{Time: now.Add(30 * time.Minute)},
				ExpiresAt: &metav1.Time{Time: now.Add(50 * time.Minute)}},
		}
	}
	var objs []client.Object
	for i := range 50 {
		objs = append(objs, issued(fmt.Sprintf("idle-%02d", i)))
	}
	asked := issued("asked")
	asked.Annotations = map[string]string{tokensv1alpha1.AnnotationRenew: "now"}
	served := issued("served")
	served.Annotations = map[string]string{tokensv1alpha1.AnnotationRenew: "before"}
	served.Status.LastRenewalRequest = "before"
	renewal := issued("renewal-due")
	renewal.Status.RenewalTime = &metav1.Time{Time: now.Add(-time.Second)}
	changed := issued("changed")
	changed.Generation = 2
	fresh := issued("never-issued")
	fresh.Status = tokensv1alpha1.AccessTokenStatus{}
	objs = append(objs, asked, served, renewal, changed, fresh)
	due := []string{"asked", "changed", "never-issued", "renewal-due"}

	for _, o := range objs {
		at := o.(*tokensv1alpha1.AccessToken)
		want := slices.Contains(due, at.Name)
		if got := workDue(at, now); got != want {
			t.Errorf("%s: work due %v, want %v", at.Name, got, want)
		}
	}

	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
	r := &AccessTokenReconciler{Client: c, Clock: clocktesting.NewFakeClock(now)}
	q := priorityqueue.New[reconcile.Request]("due-first")
	defer q.ShutDown()
	// The first list queues every AccessToken at low priority.
	for _, o := range objs {
		q.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(-100)}, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
	}
	if n := r.queueDue(context.Background(), c, q); n != len(due) {
		t.Fatalf("%d AccessTokens queued first, want %d", n, len(due))
	}
	var first []string
	for range due {
		req, _ := q.Get()
		first = append(first, req.Name)
		q.Done(req)
	}
	slices.Sort(first)
	if !slices.Equal(first, due) {
		t.Fatalf("reconciled first: %v, want %v", first, due)
	}
	if got := q.Len(); got != len(objs)-len(due) {
		t.Fatalf("%d left in the queue, want the %d others, each once", got, len(objs)-len(due))
	}
}
