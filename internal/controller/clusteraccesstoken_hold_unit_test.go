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
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// writeLog records every write a client makes, as "verb Kind namespace/name".
type writeLog struct {
	mu     sync.Mutex
	writes []string
}

func (l *writeLog) add(verb string, c client.WithWatch, o client.Object) {
	kind := fmt.Sprintf("%T", o)
	if gvk, err := c.GroupVersionKindFor(o); err == nil {
		kind = gvk.Kind
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes = append(l.writes, verb+" "+kind+" "+client.ObjectKeyFromObject(o).String())
}

func (l *writeLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.writes
	l.writes = nil
	return w
}

func (l *writeLog) funcs() interceptor.Funcs {
	return interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
			l.add("create", c, o)
			return c.Create(ctx, o, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.UpdateOption) error {
			l.add("update", c, o)
			return c.Update(ctx, o, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, o client.Object, p client.Patch, opts ...client.PatchOption) error {
			l.add("patch", c, o)
			return c.Patch(ctx, o, p, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.DeleteOption) error {
			l.add("delete", c, o)
			return c.Delete(ctx, o, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			if w, ok := c.(client.WithWatch); ok {
				l.add("patch/"+sub, w, o)
			}
			return c.SubResource(sub).Patch(ctx, o, p, opts...)
		},
	}
}

// heldWorld is a ClusterAccessToken that selects namespaces a, b and c: a
// holds the current token, b an older one, c nothing yet; gone, no longer
// selected, still holds a copy. Its source holds a valid token.
type heldWorld struct {
	r      *ClusterAccessTokenReconciler
	c      client.Client
	log    *writeLog
	events *events.FakeRecorder
	cat    *tokensv1alpha1.ClusterAccessToken
	source *tokensv1alpha1.AccessToken
}

func newHeldWorld(t *testing.T, change func(*tokensv1alpha1.ClusterAccessToken)) *heldWorld {
	t.Helper()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)
	const opNS = "tokenmint-system"
	now := time.Now().Truncate(time.Second)
	cat := &tokensv1alpha1.ClusterAccessToken{ObjectMeta: metav1.ObjectMeta{Name: "shared", UID: "cat-uid", Generation: 1,
		Finalizers: []string{ClusterAccessTokenFinalizer}},
		Spec: tokensv1alpha1.ClusterAccessTokenSpec{IssuerRef: tokensv1alpha1.ClusterIssuerReference{Name: "issuer"},
			Secret:     tokensv1alpha1.SecretTemplate{Name: "shared-token"},
			Namespaces: tokensv1alpha1.TargetNamespaces{Names: []string{"a", "b", "c"}}}}
	if change != nil {
		change(cat)
	}
	controller := []metav1.OwnerReference{{APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: "ClusterAccessToken",
		Name: cat.Name, UID: cat.UID, Controller: ptr.To(true)}}
	source := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "cluster-shared", UID: "source-uid",
		OwnerReferences: controller},
		Spec: tokensv1alpha1.AccessTokenSpec{
			IssuerRef: tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: "issuer"},
			Secret:    tokensv1alpha1.SecretTemplate{Name: "cluster-shared"}},
		Status: tokensv1alpha1.AccessTokenStatus{TokenFingerprint: "fp-current",
			IssuedAt: &metav1.Time{Time: now}, ExpiresAt: &metav1.Time{Time: now.Add(time.Hour)},
			Conditions: []metav1.Condition{{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
				Reason: tokensv1alpha1.ReasonTokenValid, LastTransitionTime: metav1.Now()}}}}
	current := map[string][]byte{"token": []byte("current")}
	sourceSecret := secret.New(source, current, secret.Record{Fingerprint: "fp-current", IssuedAt: now})
	copyIn := func(ns string, data map[string][]byte) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shared-token", OwnerReferences: controller,
			Labels: copyLabels(cat)}, Type: corev1.SecretTypeOpaque, Data: data}
	}
	objs := []client.Object{cat, source, sourceSecret,
		&tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "issuer"}},
		copyIn("a", current), copyIn("b", map[string][]byte{"token": []byte("older")}), copyIn("gone", current)}
	for _, ns := range []string{opNS, "a", "b", "c", "gone"} {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	log := &writeLog{}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithStatusSubresource(&tokensv1alpha1.ClusterAccessToken{}, &tokensv1alpha1.AccessToken{}).
		WithInterceptorFuncs(log.funcs()).Build()
	rec := events.NewFakeRecorder(10)
	r := &ClusterAccessTokenReconciler{Client: c, APIReader: c, Metadata: c, Recorder: rec, OperatorNamespace: opNS,
		Fingerprinter: secret.NewFingerprinter(make([]byte, 32))}
	return &heldWorld{r: r, c: c, log: log, events: rec, cat: cat, source: source}
}

func (w *heldWorld) reconcile(t *testing.T) {
	t.Helper()
	if _, err := w.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(w.cat)}); err != nil {
		t.Fatal(err)
	}
}

func (w *heldWorld) get(t *testing.T) *tokensv1alpha1.ClusterAccessToken {
	t.Helper()
	cur := &tokensv1alpha1.ClusterAccessToken{}
	if err := w.c.Get(context.Background(), client.ObjectKeyFromObject(w.cat), cur); err != nil {
		t.Fatal(err)
	}
	return cur
}

func (w *heldWorld) getSource(t *testing.T) *tokensv1alpha1.AccessToken {
	t.Helper()
	cur := &tokensv1alpha1.AccessToken{}
	if err := w.c.Get(context.Background(), client.ObjectKeyFromObject(w.source), cur); err != nil {
		t.Fatal(err)
	}
	return cur
}

// copyData is the token in the copy of namespace ns, "" when there is none.
func (w *heldWorld) copyData(ns string) string {
	s := &corev1.Secret{}
	if err := w.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "shared-token"}, s); err != nil {
		return ""
	}
	return string(s.Data["token"])
}

func (w *heldWorld) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-w.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// TestClusterAccessTokenHoldWritesOnlyStatus: read-only or suspended, a
// ClusterAccessToken writes its status and nothing else (a suspended one also
// suspends its source, and changes nothing else of it); no copy is created,
// updated or deleted; status counts the namespaces holding the current token.
func TestClusterAccessTokenHoldWritesOnlyStatus(t *testing.T) {
	for name, tc := range map[string]struct {
		readOnly, suspend bool
		reason            string
		writes            []string
	}{
		"read-only": {readOnly: true, reason: tokensv1alpha1.ReasonReadOnly,
			writes: []string{"patch/status ClusterAccessToken /shared"}},
		"read-only and suspended": {readOnly: true, suspend: true, reason: tokensv1alpha1.ReasonReadOnly,
			writes: []string{"patch/status ClusterAccessToken /shared"}},
		"suspended": {suspend: true, reason: tokensv1alpha1.ReasonSuspended,
			writes: []string{"patch AccessToken tokenmint-system/cluster-shared", "patch/status ClusterAccessToken /shared"}},
	} {
		t.Run(name, func(t *testing.T) {
			w := newHeldWorld(t, func(cat *tokensv1alpha1.ClusterAccessToken) { cat.Spec.Suspend = tc.suspend })
			w.r.ReadOnly = tc.readOnly
			before := w.getSource(t)
			w.reconcile(t)
			if got := w.log.take(); !slices.Equal(got, tc.writes) {
				t.Errorf("writes %q, want %q", got, tc.writes)
			}
			after := w.getSource(t)
			if after.Spec.Suspend != (tc.suspend && !tc.readOnly) {
				t.Errorf("source spec.suspend %v", after.Spec.Suspend)
			}
			after.Spec.Suspend = before.Spec.Suspend
			if !equality.Semantic.DeepEqual(after.Spec, before.Spec) || !equality.Semantic.DeepEqual(after.Annotations, before.Annotations) {
				t.Errorf("the source changed beyond spec.suspend: %+v", after.Spec)
			}
			for ns, want := range map[string]string{"a": "current", "b": "older", "c": "", "gone": "current"} {
				if got := w.copyData(ns); got != want {
					t.Errorf("copy in %s holds %q, want %q", ns, got, want)
				}
			}
			st := w.get(t).Status
			if st.Namespaces != 3 || st.Written != 1 || st.Failing != 0 || st.TokenFingerprint != "fp-current" {
				t.Errorf("status counts %d/%d/%d, fingerprint %q", st.Namespaces, st.Written, st.Failing, st.TokenFingerprint)
			}
			renewing := meta.FindStatusCondition(st.Conditions, tokensv1alpha1.ConditionRenewing)
			if renewing == nil || renewing.Status != metav1.ConditionFalse || renewing.Reason != tc.reason {
				t.Errorf("Renewing %+v, want False/%s", renewing, tc.reason)
			}
			ready := meta.FindStatusCondition(st.Conditions, tokensv1alpha1.ConditionReady)
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != tc.reason ||
				!strings.Contains(ready.Message, "1 of the 3 selected namespaces hold the current token") {
				t.Errorf("Ready %+v", ready)
			}
			if got := w.get(t).Finalizers; !slices.Equal(got, []string{ClusterAccessTokenFinalizer}) {
				t.Errorf("finalizers %v", got)
			}
			if ev := w.drainEvents(); len(ev) != 1 || !strings.Contains(ev[0], tc.reason) {
				t.Errorf("events %q, want one %s", ev, tc.reason)
			}

			By := "reconciling again: nothing to write, no second event"
			w.reconcile(t)
			if got := w.log.take(); len(got) > 0 {
				t.Errorf("%s: writes %q", By, got)
			}
			if ev := w.drainEvents(); len(ev) > 0 {
				t.Errorf("%s: events %q", By, ev)
			}
		})
	}
}

// TestClusterAccessTokenHeldNewIsNotStarted: a ClusterAccessToken created
// suspended, or on a read-only manager, gets neither a finalizer nor a source.
func TestClusterAccessTokenHeldNewIsNotStarted(t *testing.T) {
	for _, readOnly := range []bool{false, true} {
		w := newHeldWorld(t, func(cat *tokensv1alpha1.ClusterAccessToken) {
			cat.Spec.Suspend = !readOnly
			cat.Finalizers = nil
		})
		w.r.ReadOnly = readOnly
		if err := w.c.Delete(context.Background(), w.source); err != nil {
			t.Fatal(err)
		}
		w.log.take()
		w.reconcile(t)
		if got := w.log.take(); !slices.Equal(got, []string{"patch/status ClusterAccessToken /shared"}) {
			t.Errorf("read-only %v: writes %q", readOnly, got)
		}
		cur := w.get(t)
		if len(cur.Finalizers) > 0 {
			t.Errorf("read-only %v: finalizers %v", readOnly, cur.Finalizers)
		}
		ready := meta.FindStatusCondition(cur.Status.Conditions, tokensv1alpha1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionFalse || !strings.Contains(ready.Message, "not created while work is held") {
			t.Errorf("read-only %v: Ready %+v", readOnly, ready)
		}
	}
}

// TestClusterAccessTokenResumeCatchesUp: once suspend is unset, the source is
// resumed (spec.suspend false, nothing else changed), the copies catch up with
// the current token and the stale one goes; Renewing says Resumed, once.
func TestClusterAccessTokenResumeCatchesUp(t *testing.T) {
	w := newHeldWorld(t, func(cat *tokensv1alpha1.ClusterAccessToken) { cat.Spec.Suspend = true })
	w.reconcile(t)
	w.log.take()
	w.drainEvents()

	cur := w.get(t)
	cur.Spec.Suspend = false
	if err := w.c.Update(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	w.log.take()
	w.reconcile(t)
	if w.getSource(t).Spec.Suspend {
		t.Error("the source is still suspended")
	}
	for ns, want := range map[string]string{"a": "current", "b": "current", "c": "current", "gone": ""} {
		if got := w.copyData(ns); got != want {
			t.Errorf("copy in %s holds %q, want %q", ns, got, want)
		}
	}
	st := w.get(t).Status
	if st.Written != 3 {
		t.Errorf("written %d, want 3", st.Written)
	}
	renewing := meta.FindStatusCondition(st.Conditions, tokensv1alpha1.ConditionRenewing)
	if renewing == nil || renewing.Reason != tokensv1alpha1.ReasonResumed {
		t.Errorf("Renewing %+v, want Resumed", renewing)
	}
	if !meta.IsStatusConditionTrue(st.Conditions, tokensv1alpha1.ConditionReady) {
		t.Errorf("not Ready: %+v", meta.FindStatusCondition(st.Conditions, tokensv1alpha1.ConditionReady))
	}
	if ev := w.drainEvents(); len(ev) != 1 || !strings.Contains(ev[0], tokensv1alpha1.ReasonResumed) {
		t.Errorf("events %q, want one Resumed", ev)
	}
	w.reconcile(t)
	if ev := w.drainEvents(); len(ev) > 0 {
		t.Errorf("events on the next reconcile %q", ev)
	}
}

// TestClusterAccessTokenReadOnlyDeletion: on a read-only manager a deleted
// ClusterAccessToken loses its finalizer, and nothing else is written: its
// copies and source are neither deleted nor changed.
func TestClusterAccessTokenReadOnlyDeletion(t *testing.T) {
	w := newHeldWorld(t, nil)
	w.r.ReadOnly = true
	if err := w.c.Delete(context.Background(), w.cat); err != nil {
		t.Fatal(err)
	}
	w.log.take()
	w.reconcile(t)
	if got := w.log.take(); !slices.Equal(got, []string{"patch ClusterAccessToken /shared"}) {
		t.Errorf("writes %q, want only the finalizer's release", got)
	}
	if err := w.c.Get(context.Background(), client.ObjectKeyFromObject(w.cat), &tokensv1alpha1.ClusterAccessToken{}); err == nil {
		t.Error("the ClusterAccessToken is still there")
	}
	for ns, want := range map[string]string{"a": "current", "b": "older", "gone": "current"} {
		if got := w.copyData(ns); got != want {
			t.Errorf("copy in %s holds %q, want %q", ns, got, want)
		}
	}
	if src := w.getSource(t); !src.DeletionTimestamp.IsZero() {
		t.Error("the source is being deleted")
	}
}
