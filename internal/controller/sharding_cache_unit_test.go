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
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/internal/sharding"
)

func TestCacheIsWholeWithoutShardRanges(t *testing.T) {
	c := &Config{OperatorNamespace: "tokenmint-system"}
	opts := c.CacheOptions()
	if opts.NewInformer != nil || c.cacheRanges != nil {
		t.Fatal("the cache is filtered with sharding off")
	}
	c.ShardRanges = 4
	opts = c.CacheOptions()
	if opts.NewInformer == nil || c.cacheRanges == nil {
		t.Fatal("the cache is not filtered with sharding on")
	}
	if cl := fake.NewClientBuilder().Build(); (&Config{}).cacheReaderFor(cl, cl) != cl {
		t.Fatal("the issuers' reader changed with sharding off")
	}
}

func TestCacheScopes(t *testing.T) {
	c := &Config{OperatorNamespace: "tokenmint-system", CredentialsNamespace: "creds"}
	meta := func(ns string, labels, annotations map[string]string) metav1.Object {
		return &metav1.ObjectMeta{Namespace: ns, Labels: labels, Annotations: annotations}
	}
	for _, tc := range []struct {
		name   string
		obj    metav1.Object
		ns     string
		always bool
	}{
		{"token Secret", meta("shop", nil, nil), "shop", false},
		{"state Secret", meta("tokenmint-system", map[string]string{secret.LabelComponent: secret.ComponentState},
			map[string]string{secret.AnnotationAccessToken: "shop/payments"}), "shop", false},
		{"state Secret without its owner", meta("tokenmint-system", map[string]string{secret.LabelComponent: secret.ComponentState}, nil), "tokenmint-system", true},
		{"fingerprint key", meta("tokenmint-system", nil, nil), "tokenmint-system", true},
		{"credential", meta("creds", nil, nil), "creds", true},
		{"ClusterAccessToken copy", meta("shop", map[string]string{tokensv1alpha1.LabelClusterAccessToken: "shared"}, nil), "shop", true},
	} {
		if ns, always := c.secretScope(tc.obj); ns != tc.ns || always != tc.always {
			t.Errorf("%s: scope %q, always %v; want %q, %v", tc.name, ns, always, tc.ns, tc.always)
		}
	}
	if _, always := c.accessTokenScope(meta("tokenmint-system", nil, nil)); !always {
		t.Error("a ClusterAccessToken's source AccessToken is not always cached")
	}
	if ns, always := c.accessTokenScope(meta("shop", nil, nil)); ns != "shop" || always {
		t.Error("an AccessToken does not go with its namespace")
	}
}

func TestIssuersReadSecretsOfRangesNotCachedLive(t *testing.T) {
	f := sharding.NewCacheFilter(4, nil)
	c := &Config{OperatorNamespace: "tokenmint-system", cacheRanges: f}
	var inRange0 string
	for i := 0; inRange0 == ""; i++ {
		if ns := fmt.Sprintf("team-%d", i); sharding.RangeOf(ns, 4) == 0 {
			inRange0 = ns
		}
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: inRange0, Name: "cred"}}
	cached := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).Build()
	live := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(s).Build()
	reader := c.cacheReaderFor(cached, live)
	if err := reader.Get(context.Background(), client.ObjectKeyFromObject(s), &corev1.Secret{}); err != nil {
		t.Fatalf("a Secret of a range not cached was not read live: %v", err)
	}
	// Once the range is cached, the cache answers.
	lw := f.Wrap(&toolscache.ListWatch{
		ListFunc:  func(metav1.ListOptions) (runtime.Object, error) { return &corev1.SecretList{}, nil },
		WatchFunc: func(metav1.ListOptions) (watch.Interface, error) { return watch.NewFake(), nil },
	}, nil)
	f.SetRanges([]int{0})
	if _, err := lw.List(metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := reader.Get(context.Background(), client.ObjectKeyFromObject(s), &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a Secret of a range cached was read live: %v", err)
	}
}

func TestCacheObjectsMetric(t *testing.T) {
	objs := []client.Object{
		&tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "x"}},
		&tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "y"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "x-token"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "y-token"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "z-token"}},
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)
	var reader client.Reader = fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
	prev := currentCache.Swap(&reader)
	defer currentCache.Store(prev)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(cacheCollector{}); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, fam := range families {
		if fam.GetName() != "tokenmint_cache_objects" {
			continue
		}
		for _, m := range fam.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	if got["AccessToken"] != 2 || got["Secret"] != 3 {
		t.Fatalf("tokenmint_cache_objects = %v, want 2 AccessTokens and 3 Secrets", got)
	}
}

// A range whose last renewal is late is not served (Holds) but still this
// replica's (Owns): the events of its AccessTokens, and the start's pass over
// the AccessTokens with work due, keep them. Dropped, an AccessToken created
// while a renewal was late would never be queued: nothing queues a range's
// AccessTokens when its renewal lands.
func TestEventsOfARangeWhoseRenewalIsLateAreKept(t *testing.T) {
	const leaseDuration, renewDeadline, retryPeriod = 15 * time.Second, 10 * time.Second, 2 * time.Second
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	leases := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).Build()
	co, err := sharding.New(sharding.Options{Client: leases, Namespace: "tokenmint-system", Identity: "a", Ranges: 16,
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := co.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		clk.Step(retryPeriod)
	}
	at := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "api", Generation: 1}}
	if !co.Holds(at.Namespace) {
		t.Fatalf("the only replica does not serve %s after five rounds: %v", at.Namespace, co.Held())
	}
	clk.Step(renewDeadline) // no round: the last renewal is late
	if co.Holds(at.Namespace) || !co.Owns(at.Namespace) {
		t.Fatalf("late renewal: Holds %v, Owns %v; want false, true", co.Holds(at.Namespace), co.Owns(at.Namespace))
	}

	r := &AccessTokenReconciler{Shards: co, Clock: clk}
	if !r.ownsEventOf(at) {
		t.Fatal("the event of an AccessToken of a range whose renewal is late was dropped")
	}
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(at).Build()
	if n := r.queueDue(context.Background(), reader, q); n != 1 || q.Len() != 1 {
		t.Fatalf("queued %d (queue length %d) AccessTokens with work due in a range whose renewal is late, want 1", n, q.Len())
	}

	b, err := sharding.New(sharding.Options{Client: leases, Namespace: "tokenmint-system", Identity: "b", Ranges: 16,
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if other := (&AccessTokenReconciler{Shards: b, Clock: clk}); other.ownsEventOf(at) {
		t.Fatal("a replica that holds no range kept the event")
	}
}
