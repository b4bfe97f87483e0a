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
	"os"
	"path/filepath"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/controlplane"
)

// clusterScopedResources are the resources of the generated rules that are
// not namespaced; the chart's rbac.namespaced mode keeps only these in the
// manager's ClusterRole (hack/chart checks its split against the CRDs).
var clusterScopedResources = []string{"namespaces", "tokenreviews", "subjectaccessreviews", "clustertokenissuers",
	"clustertokenissuers/status", "clusteraccesstokens", "clusteraccesstokens/status", "clusteraccesstokens/finalizers"}

// splitManagerRules reads config/rbac/role.yaml and splits its rules into
// those on cluster-scoped resources and the others.
func splitManagerRules() (cluster, namespaced []rbacv1.PolicyRule) {
	raw, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "config", "rbac", "role.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var role rbacv1.ClusterRole
	Expect(yaml.Unmarshal(raw, &role)).To(Succeed())
	Expect(role.Rules).NotTo(BeEmpty())
	for _, r := range role.Rules {
		c, n := r.DeepCopy(), r.DeepCopy()
		c.Resources, n.Resources = nil, nil
		for _, res := range r.Resources {
			if slices.Contains(clusterScopedResources, res) {
				c.Resources = append(c.Resources, res)
			} else {
				n.Resources = append(n.Resources, res)
			}
		}
		if len(c.Resources) > 0 {
			cluster = append(cluster, *c)
		}
		if len(n.Resources) > 0 {
			namespaced = append(namespaced, *n)
		}
	}
	return cluster, namespaced
}

// synced starts c and reports whether its informers for objs sync within a
// few seconds: a list the identity may not make never does.
func synced(c cache.Cache, objs ...client.Object) bool {
	cctx, stop := context.WithCancel(ctx)
	DeferCleanup(stop)
	for _, o := range objs {
		_, err := c.GetInformer(cctx, o, cache.BlockUntilSynced(false))
		Expect(err).NotTo(HaveOccurred())
	}
	go func() { _ = c.Start(cctx) }()
	wctx, cancel := context.WithTimeout(cctx, 5*time.Second)
	defer cancel()
	return c.WaitForCacheSync(wctx)
}

var _ = Describe("the caches under the chart's namespaced RBAC", func() {
	It("list and watch only in the served, operator and credentials namespaces", func() {
		suffix := rand.String(6)
		watched, op, creds := "w-"+suffix, "o-"+suffix, "c-"+suffix
		for _, ns := range []string{watched, op, creds} {
			Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		}
		user := "namespaced-manager-" + suffix
		subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
		clusterRules, namespacedRules := splitManagerRules()
		create := func(o client.Object) {
			Expect(k8sClient.Create(ctx, o)).To(Succeed())
			DeferCleanup(k8sClient.Delete, ctx, o)
		}
		create(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: clusterRules})
		create(&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user}, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user}})
		grant := func(ns string, rules []rbacv1.PolicyRule) {
			create(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns}, Rules: rules})
			create(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns}, Subjects: subjects,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user}})
		}
		grant(watched, namespacedRules)
		grant(op, namespacedRules)
		grant(creds, []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}}})
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "upstream", Namespace: creds},
			StringData: map[string]string{"token": "x"}})).To(Succeed())

		restricted := rest.CopyConfig(cfg)
		restricted.Impersonate = rest.ImpersonationConfig{UserName: user}
		typedKinds := []client.Object{&tokensv1alpha1.AccessToken{}, &tokensv1alpha1.TokenIssuer{}, &tokensv1alpha1.ClusterTokenIssuer{},
			&tokensv1alpha1.ClusterAccessToken{}, &corev1.Secret{}}
		namespaceMetadata := &metav1.PartialObjectMetadata{}
		namespaceMetadata.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
		caches := func(conf Config) (typed, metadata cache.Cache) {
			opts := conf.CacheOptions()
			opts.Scheme = scheme.Scheme
			typed, err := cache.New(restricted, opts)
			Expect(err).NotTo(HaveOccurred())
			metaOpts, err := conf.metadataCacheOptions()
			Expect(err).NotTo(HaveOccurred())
			metaOpts.Scheme = scheme.Scheme
			metadata, err = cache.New(restricted, metaOpts)
			Expect(err).NotTo(HaveOccurred())
			return typed, metadata
		}

		By("syncing every cache the manager uses with --watch-namespaces")
		conf := Config{OperatorNamespace: op, CredentialsNamespace: creds, WatchNamespaces: []string{watched}}
		typed, metadata := caches(conf)
		Expect(synced(typed, typedKinds...)).To(BeTrue(), "the typed cache lists outside the namespaced grants")
		Expect(synced(metadata, secretMetadata(), namespaceMetadata)).To(BeTrue(), "the metadata cache lists outside the namespaced grants")
		Eventually(func() error {
			return metadata.Get(ctx, client.ObjectKey{Namespace: creds, Name: "upstream"}, secretMetadata())
		}, 5*time.Second).Should(Succeed(), "a credential Secret is seen in the credentials namespace")
		Expect(metadata.Get(ctx, client.ObjectKey{Name: watched}, namespaceMetadata)).To(Succeed(), "namespace labels are read cluster-wide")

		By("failing to sync, under the same grants, without --watch-namespaces")
		typed, metadata = caches(Config{OperatorNamespace: op, CredentialsNamespace: creds})
		Expect(synced(typed, &corev1.Secret{})).To(BeFalse(), "listing Secrets cluster-wide was allowed: the check proves nothing")
		Expect(synced(metadata, secretMetadata())).To(BeFalse())
	})
})
