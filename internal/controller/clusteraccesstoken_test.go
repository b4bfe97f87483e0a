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
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// clusterEnv is a ClusterTokenIssuer of the transaction API fake, allowed in
// namespaces labelled team=<team>.
type clusterEnv struct {
	team   string
	fake   *fakes.TransactionAPI
	issuer string
}

func newClusterEnv() *clusterEnv {
	e := &clusterEnv{team: "t" + rand.String(6)}
	e.fake = fakes.NewTransactionAPI(canaryAuthToken)
	e.fake.Clock = clk
	e.fake.Lifetime = time.Hour
	url := serveFake(e.fake, &e.fake.Base)
	credentials := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cable-" + e.team, Namespace: credentialsNamespace},
		StringData: map[string]string{"token": canaryAuthToken}}
	Expect(k8sClient.Create(ctx, credentials)).To(Succeed())
	DeferCleanup(k8sClient.Delete, ctx, credentials)
	spec := transactionsSpec(url)
	spec.Credentials[0].SecretKeyRef.Name = credentials.Name
	e.issuer = "cable-" + e.team
	cti := &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: e.issuer},
		Spec: tokensv1alpha1.ClusterTokenIssuerSpec{IssuerSpec: spec, AllowedNamespaces: &tokensv1alpha1.AllowedNamespaces{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": e.team}}}}}
	Expect(k8sClient.Create(ctx, cti)).To(Succeed())
	DeferCleanup(k8sClient.Delete, ctx, cti)
	return e
}

// namespace creates a namespace, in the team when inTeam.
func (e *clusterEnv) namespace(inTeam bool) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "c-" + rand.String(6)}}
	if inTeam {
		ns.Labels = map[string]string{"team": e.team}
	}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func (e *clusterEnv) clusterAccessToken(names ...string) *tokensv1alpha1.ClusterAccessToken {
	cat := &tokensv1alpha1.ClusterAccessToken{ObjectMeta: metav1.ObjectMeta{Name: "shared-" + e.team},
		Spec: tokensv1alpha1.ClusterAccessTokenSpec{
			IssuerRef: tokensv1alpha1.ClusterIssuerReference{Name: e.issuer},
			Secret: tokensv1alpha1.SecretTemplate{Name: "shared-token",
				Keys: []tokensv1alpha1.DerivedKey{{Key: "header", Template: "Authorization: Bearer ${token}"}}},
			Namespaces: tokensv1alpha1.TargetNamespaces{Names: names,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": e.team}}},
		}}
	Expect(k8sClient.Create(ctx, cat)).To(Succeed())
	return cat
}

func getCAT(cat *tokensv1alpha1.ClusterAccessToken) *tokensv1alpha1.ClusterAccessToken {
	out := &tokensv1alpha1.ClusterAccessToken{}
	ExpectWithOffset(1, k8sClient.Get(ctx, client.ObjectKeyFromObject(cat), out)).To(Succeed())
	return out
}

func sharedToken(ns string) string {
	s := &corev1.Secret{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shared-token"}, s); err != nil {
		return ""
	}
	return string(s.Data["token"])
}

var _ = Describe("ClusterAccessToken", func() {
	It("mints once and writes the token to every selected namespace, following namespaces as they come and go", func() {
		e := newClusterEnv()
		a, b := e.namespace(true), e.namespace(true)
		cat := e.clusterAccessToken()
		Eventually(func(g Gomega) {
			cur := getCAT(cat)
			g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, tokensv1alpha1.ConditionReady)).To(BeTrue())
			g.Expect(cur.Status.Written).To(BeEquivalentTo(2))
		}, 15*time.Second).Should(Succeed())
		Expect(e.fake.Issued()).To(HaveLen(1))
		first := e.fake.Issued()[0].Value
		for _, ns := range []string{a, b} {
			s := &corev1.Secret{}
			Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shared-token"}, s)).To(Succeed())
			Expect(string(s.Data["token"])).To(Equal(first))
			Expect(string(s.Data["header"])).To(Equal("Authorization: Bearer " + first))
			Expect(s.Labels).To(HaveKeyWithValue(tokensv1alpha1.LabelClusterAccessToken, cat.Name))
			Expect(metav1.IsControlledBy(s, getCAT(cat))).To(BeTrue())
		}

		By("writing the current token to a namespace that appears later, without a mint")
		c := e.namespace(true)
		Eventually(func() string { return sharedToken(c) }, 10*time.Second).Should(Equal(first))
		Eventually(func() int32 { return getCAT(cat).Status.Written }, 10*time.Second).Should(BeEquivalentTo(3))
		Expect(e.fake.Issued()).To(HaveLen(1))

		By("deleting the Secret of a namespace no longer selected")
		nsA := &corev1.Namespace{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: a}, nsA)).To(Succeed())
		patch := client.MergeFrom(nsA.DeepCopy())
		nsA.Labels = map[string]string{}
		Expect(k8sClient.Patch(ctx, nsA, patch)).To(Succeed())
		Eventually(func() string { return sharedToken(a) }, 10*time.Second).Should(BeEmpty())

		By("renewing once for every namespace")
		source := &tokensv1alpha1.AccessToken{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "cluster-" + cat.Name}, source)).To(Succeed())
		clk.SetTime(source.Status.RenewalTime.Add(time.Second))
		poke(source)
		Eventually(func() int { return len(e.fake.Issued()) }, 10*time.Second).Should(Equal(2))
		second := e.fake.Issued()[1].Value
		for _, ns := range []string{b, c} {
			Eventually(func() string { return sharedToken(ns) }, 10*time.Second).Should(Equal(second))
		}
		Expect(e.fake.Issued()).To(HaveLen(2))

		By("removing every Secret and the source when it is deleted")
		Expect(k8sClient.Delete(ctx, getCAT(cat))).To(Succeed())
		for _, ns := range []string{b, c} {
			Eventually(func() string { return sharedToken(ns) }, 10*time.Second).Should(BeEmpty())
		}
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(source), &tokensv1alpha1.AccessToken{}))
		}, 10*time.Second).Should(BeTrue())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(cat), &tokensv1alpha1.ClusterAccessToken{}))
		}, 10*time.Second).Should(BeTrue())
	})

	It("never takes over a Secret it does not own, nor writes where the issuer does not allow", func() {
		e := newClusterEnv()
		ok, taken, outside := e.namespace(true), e.namespace(true), e.namespace(false)
		foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: taken, Name: "shared-token"},
			StringData: map[string]string{"token": "someone else's"}}
		Expect(k8sClient.Create(ctx, foreign)).To(Succeed())
		cat := e.clusterAccessToken(outside)
		Eventually(func(g Gomega) {
			st := getCAT(cat).Status
			g.Expect(st.Written).To(BeEquivalentTo(1))
			g.Expect(st.Failing).To(BeEquivalentTo(2))
			g.Expect(st.Failures).To(ConsistOf(
				tokensv1alpha1.NamespaceFailure{Name: taken, Message: errNotOwnedCopy.Error()},
				tokensv1alpha1.NamespaceFailure{Name: outside, Message: `ClusterTokenIssuer "` + e.issuer + `" does not allow this namespace`},
			))
			ready := meta.FindStatusCondition(getCAT(cat).Status.Conditions, tokensv1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Reason).To(Equal("NamespacesFailing"))
		}, 15*time.Second).Should(Succeed())
		Expect(sharedToken(ok)).To(Equal(e.fake.Issued()[0].Value))
		Expect(sharedToken(taken)).To(Equal("someone else's"))
		Expect(sharedToken(outside)).To(BeEmpty())
		Expect(k8sClient.Delete(ctx, getCAT(cat))).To(Succeed())
	})

	It("of the sample serves three namespaces from one call", func() {
		oauth2, base := startSample("oauth2-client-credentials")
		waitReady(oauth2.AccessToken)
		s, err := samples.Load("cluster-access-token.yaml")
		Expect(err).NotTo(HaveOccurred())
		cat := s.ClusterAccessToken
		cat.Name += "-" + rand.String(6)
		cat.Spec.IssuerRef.Name = oauth2.AccessToken.Spec.IssuerRef.Name
		var namespaces []string
		for i, name := range cat.Spec.Namespaces.Names {
			cat.Spec.Namespaces.Names[i] = name + "-" + rand.String(6)
			namespaces = append(namespaces, cat.Spec.Namespaces.Names[i])
		}
		labelled := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "labelled-" + rand.String(6),
			Labels: map[string]string{"tokens.example.com/orders": "read-" + cat.Name}}}
		cat.Spec.Namespaces.Selector.MatchLabels["tokens.example.com/orders"] = "read-" + cat.Name
		Expect(k8sClient.Create(ctx, labelled)).To(Succeed())
		for _, ns := range namespaces {
			Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		}
		namespaces = append(namespaces, labelled.Name)
		Expect(k8sClient.Create(ctx, cat)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, cat))).To(Succeed()) })

		Eventually(func(g Gomega) {
			cur := getCAT(cat)
			g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, tokensv1alpha1.ConditionReady)).To(BeTrue())
			g.Expect(cur.Status.Namespaces).To(BeEquivalentTo(3))
			g.Expect(cur.Status.Written).To(BeEquivalentTo(3))
		}, 15*time.Second).Should(Succeed())
		Expect(base.Issued()).To(HaveLen(2), "one call for the sample's AccessToken, one for all three namespaces")
		token := base.Issued()[1].Value
		for _, ns := range namespaces {
			sec := &corev1.Secret{}
			Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "orders-reader-token"}, sec)).To(Succeed())
			Expect(string(sec.Data["token"])).To(Equal(token))
		}
	})
})
