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
	"maps"
	"slices"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// With watched namespaces, the typed Secret cache must also serve the
// credentials namespace: credential lookups fall back to it, and a namespace
// it does not serve is an error, not "not found".
func TestCacheOptionsServeCredentialSecrets(t *testing.T) {
	c := Config{OperatorNamespace: "op", CredentialsNamespace: "creds", WatchNamespaces: []string{"a", "b"}}
	opts := c.CacheOptions()
	if got := slices.Sorted(maps.Keys(opts.DefaultNamespaces)); !slices.Equal(got, []string{"a", "b", "op"}) {
		t.Fatalf("default namespaces %v, want a, b, op", got)
	}
	for obj, by := range opts.ByObject {
		if _, ok := obj.(*corev1.Secret); !ok {
			t.Fatalf("unexpected ByObject entry %T", obj)
		}
		if got := slices.Sorted(maps.Keys(by.Namespaces)); !slices.Equal(got, []string{"a", "b", "creds", "op"}) {
			t.Fatalf("Secret namespaces %v, want a, b, creds, op", got)
		}
		managed := labels.Set{tokensv1alpha1.LabelManagedBy: tokensv1alpha1.ManagedByValue}
		if by.Label == nil || !by.Label.Matches(managed) || by.Label.Matches(labels.Set{}) || by.Transform == nil {
			t.Fatalf("Secret cache lost its label selector or transform: %+v", by)
		}
		return
	}
	t.Fatal("no Secret entry")
}

// With watched namespaces, the caches list and watch Secrets (typed and
// metadata) only in the namespaces the chart's namespaced RBAC mode grants:
// the watched ones, the operator's and the credentials namespace.
func TestSecretNamespacesFollowWatchNamespaces(t *testing.T) {
	if got := (&Config{OperatorNamespace: "op"}).secretNamespaces(); got != nil {
		t.Errorf("without --watch-namespaces: %v, want every namespace (nil)", got)
	}
	c := Config{OperatorNamespace: "op", WatchNamespaces: []string{"a", "op"}}
	if got := slices.Sorted(maps.Keys(c.secretNamespaces())); !slices.Equal(got, []string{"a", "op", DefaultCredentialsNamespace}) {
		t.Errorf("Secret namespaces %v, want a, op, %s", got, DefaultCredentialsNamespace)
	}
}

var _ = Describe("the cache with watched namespaces", func() {
	It("serves tokenmint's Secrets in the credentials namespace, and only tokenmint's", func() {
		watched, creds := "w-"+rand.String(6), "c-"+rand.String(6)
		for _, ns := range []string{watched, creds} {
			Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		}
		managed := map[string]string{tokensv1alpha1.LabelManagedBy: tokensv1alpha1.ManagedByValue}
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "upstream-token", Namespace: creds, Labels: managed}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: creds}})).To(Succeed())

		conf := Config{OperatorNamespace: operatorNamespace, CredentialsNamespace: creds, WatchNamespaces: []string{watched}}
		opts := conf.CacheOptions()
		opts.Scheme = scheme.Scheme
		c, err := cache.New(cfg, opts)
		Expect(err).NotTo(HaveOccurred())
		cctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() { _ = c.Start(cctx) }()
		Expect(c.WaitForCacheSync(cctx)).To(BeTrue())

		s := &corev1.Secret{}
		Eventually(func() error { return c.Get(ctx, client.ObjectKey{Namespace: creds, Name: "upstream-token"}, s) }).Should(Succeed())
		Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Namespace: creds, Name: "plain"}, s))).To(BeTrue())
		Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Namespace: watched, Name: "absent"}, s))).To(BeTrue())
	})
})
