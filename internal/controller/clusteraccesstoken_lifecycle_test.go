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
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// holdFinalizer keeps a ClusterAccessToken in deletion after tokenmint let it go.
const holdFinalizer = "test.tokenmint.dev/hold"

var _ = Describe("ClusterAccessToken uninstall", func() {
	It("re-creates a lost source, forwards renewals to it, never re-creates it while the ClusterAccessToken is being deleted, and revokes every token", func() {
		s, fake := startSample("oauth2-client-credentials")
		waitReady(s.AccessToken)
		Expect(fake.Issued()).To(HaveLen(1))
		ns := s.AccessToken.Namespace

		cat := &tokensv1alpha1.ClusterAccessToken{ObjectMeta: metav1.ObjectMeta{Name: "uninstall-" + ns,
			Finalizers: []string{holdFinalizer}},
			Spec: tokensv1alpha1.ClusterAccessTokenSpec{
				IssuerRef:  tokensv1alpha1.ClusterIssuerReference{Name: s.ClusterTokenIssuer.Name},
				Secret:     tokensv1alpha1.SecretTemplate{Name: "shared-token"},
				Namespaces: tokensv1alpha1.TargetNamespaces{Names: []string{ns}}}}
		Expect(k8sClient.Create(ctx, cat)).To(Succeed())
		DeferCleanup(func() {
			cur := &tokensv1alpha1.ClusterAccessToken{}
			if k8sClient.Get(ctx, client.ObjectKeyFromObject(cat), cur) == nil {
				patch := client.MergeFrom(cur.DeepCopy())
				controllerutil.RemoveFinalizer(cur, holdFinalizer)
				Expect(client.IgnoreNotFound(k8sClient.Patch(ctx, cur, patch))).To(Succeed())
				Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, cur))).To(Succeed())
			}
		})
		waitWritten := func() {
			EventuallyWithOffset(1, func(g Gomega) {
				cur := getCAT(cat)
				g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, tokensv1alpha1.ConditionReady)).To(BeTrue())
				g.Expect(cur.Status.Written).To(BeEquivalentTo(1))
			}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
		}
		waitWritten()
		Expect(fake.Issued()).To(HaveLen(2))
		first := fake.Issued()[1].Value
		Expect(sharedToken(ns)).To(Equal(first))
		source := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: "cluster-" + cat.Name}}
		sourceGone := func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(source), &tokensv1alpha1.AccessToken{}))
		}

		By("re-creating the source deleted on its own, the ClusterAccessToken staying")
		old := get(source)
		sourceSecret := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: source.Name}, sourceSecret)).To(Succeed())
		Expect(metav1.IsControlledBy(sourceSecret, old)).To(BeTrue())
		secretUID := sourceSecret.UID
		Expect(k8sClient.Delete(ctx, old)).To(Succeed())
		Eventually(func() bool { return fake.Valid(first) }, 20*time.Second).Should(BeFalse())
		// The finalizer deleted the old source's Secret before revoking its
		// token (envtest runs no garbage collector, which would otherwise).
		gone := &corev1.Secret{}
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: source.Name}, gone)
		Expect(apierrors.IsNotFound(err) || gone.UID != secretUID).To(BeTrue(), "the old source's Secret is gone")
		Eventually(func(g Gomega) {
			cur := &tokensv1alpha1.AccessToken{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(source), cur)).To(Succeed())
			g.Expect(cur.UID).NotTo(Equal(old.UID))
		}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
		clk.Step(DefaultMinMintInterval) // one mint per name per interval, across re-creations
		poke(source)
		Eventually(func() int { return len(fake.Issued()) }, 20*time.Second).Should(Equal(3))
		second := fake.Issued()[2].Value
		Eventually(func() string { return sharedToken(ns) }, 20*time.Second).Should(Equal(second))
		waitWritten()

		By("serving a renewal asked of the ClusterAccessToken through its source")
		clk.Step(DefaultMinMintInterval)
		cur := getCAT(cat)
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Annotations = map[string]string{tokensv1alpha1.AnnotationRenew: "1"}
		Expect(k8sClient.Patch(ctx, cur, patch)).To(Succeed())
		Eventually(func() int { return len(fake.Issued()) }, 20*time.Second).Should(Equal(4))
		third := fake.Issued()[3].Value
		Eventually(func() string { return sharedToken(ns) }, 20*time.Second).Should(Equal(third))
		Expect(get(source).Annotations).To(HaveKeyWithValue(tokensv1alpha1.AnnotationRenew, "1"))
		Eventually(func() string { return get(source).Status.LastRenewalRequest }, 20*time.Second).Should(Equal("1"))
		Consistently(func() int { return len(fake.Issued()) }, 2*time.Second, 100*time.Millisecond).Should(Equal(4))

		By("deleting the ClusterAccessToken, then its source, as an uninstall does")
		Expect(k8sClient.Delete(ctx, getCAT(cat))).To(Succeed())
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, get(source)))).To(Succeed())
		Eventually(sourceGone, 20*time.Second).Should(BeTrue())
		Eventually(func() string { return sharedToken(ns) }, 20*time.Second).Should(BeEmpty())
		Eventually(func() []string { return getCAT(cat).Finalizers }, 20*time.Second).Should(Equal([]string{holdFinalizer}))

		By("leaving the source gone while the ClusterAccessToken is being deleted, its token revoked")
		Consistently(sourceGone, 3*time.Second, 100*time.Millisecond).Should(BeTrue())
		Expect(fake.Issued()).To(HaveLen(4))
		Expect(fake.Valid(second)).To(BeFalse())
		Expect(fake.Valid(third)).To(BeFalse())
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx,
			client.ObjectKey{Namespace: operatorNamespace, Name: secret.StateName(old)}, &corev1.Secret{}))).To(BeTrue())

		By("letting the ClusterAccessToken go: nothing stays terminating")
		cur = getCAT(cat)
		patch = client.MergeFrom(cur.DeepCopy())
		controllerutil.RemoveFinalizer(cur, holdFinalizer)
		Expect(k8sClient.Patch(ctx, cur, patch)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(cat), &tokensv1alpha1.ClusterAccessToken{}))
		}, 20*time.Second).Should(BeTrue())
		Expect(sourceGone()).To(BeTrue())
		Expect(fake.Issued()).To(HaveLen(4))

		By("then revoking the namespaced AccessToken's token when it is deleted")
		Expect(k8sClient.Delete(ctx, get(s.AccessToken))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(s.AccessToken), &tokensv1alpha1.AccessToken{}))
		}, 20*time.Second).Should(BeTrue())
		for _, t := range fake.Issued() {
			Expect(fake.Valid(t.Value)).To(BeFalse(), "a token was left unrevoked")
		}
	})
})
