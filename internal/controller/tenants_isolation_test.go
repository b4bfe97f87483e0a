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
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// installationLabel is the namespace label the shared GitHub App sample binds
// installation_id to.
const installationLabel = "github.example.com/installation-id"

var _ = Describe("A ClusterTokenIssuer shared by teams", func() {
	const teamA, teamB, later = "56781234", "56789999", "56780000"
	var (
		fake   *fakes.GitHubApps
		sample *samples.Sample
		nsA    string
		nsB    string
		bare   string
	)
	namespace := func(prefix, installation string) string {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: prefix + "-" + rand.String(6)}}
		if installation != "" {
			ns.Labels = map[string]string{installationLabel: installation}
		}
		Expect(k8sClient.Create(ctx, ns)).To(Succeed())
		return ns.Name
	}
	accessToken := func(ns, name string, params map[string]apiextensionsv1.JSON) *tokensv1alpha1.AccessToken {
		at := sample.AccessToken.DeepCopy()
		at.Namespace, at.Name, at.Spec.Secret.Name = ns, name, name
		if params != nil {
			at.Spec.Parameters = params
		}
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		return at
	}
	// installationOf tells which installation the fake issued token to.
	installationOf := func(token string) any {
		for _, t := range fake.Issued() {
			if t.Value == token {
				return t.Request["installation"]
			}
		}
		return nil
	}
	tokenIn := func(at *tokensv1alpha1.AccessToken) string {
		s, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		return string(s.Data["token"])
	}

	BeforeEach(func() {
		fake = fakes.NewGitHubApps("Iv23liEXAMPLE1234567", "123456", teamA, &samples.TestKey().PublicKey)
		fake.Installations = append(fake.Installations, teamB, later)
		url := serveFake(fake, &fake.Base)
		var err error
		sample, err = samples.Load("github-app-teams.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(sample.PointAt(url)).To(Succeed())
		sample.FillCredentials()
		suffix := "-" + rand.String(6)
		cti := sample.ClusterTokenIssuer
		cti.Name += suffix
		sample.AccessToken.Spec.IssuerRef.Name = cti.Name
		nsA, nsB = namespace("team-a", teamA), namespace("team-b", teamB)
		// Allowed by name, without the label: it gets no installation at all.
		bare = namespace("bare", "")
		cti.Spec.AllowedNamespaces.Names = []string{bare}
		for _, s := range sample.Secrets {
			s.Namespace, s.Name = credentialsNamespace, s.Name+suffix
		}
		issuer.FindCredential(&cti.Spec.IssuerSpec, cti.Spec.Request.Auth.Bearer.Credential).SignedJWT.PrivateKey.SecretKeyRef.Name = sample.Secrets[0].Name
		for _, o := range []client.Object{sample.Secrets[0], cti} {
			Expect(k8sClient.Create(ctx, o)).To(Succeed())
			DeferCleanup(k8sClient.Delete, ctx, o)
		}
	})

	It("gives each namespace the installation its label names, and nothing to one that asks for another's", func() {
		a := waitReady(accessToken(nsA, "contents", nil))
		b := waitReady(accessToken(nsB, "contents", nil))
		Expect(installationOf(tokenIn(a))).To(Equal(teamA))
		Expect(installationOf(tokenIn(b))).To(Equal(teamB))
		Expect(fake.Issued()).To(HaveLen(2))

		By("refusing, before any call, team A's AccessToken that names team B's installation")
		theft := accessToken(nsA, "theft", map[string]apiextensionsv1.JSON{"installation_id": {Raw: []byte(teamB)}})
		Eventually(func(g Gomega) {
			c := renewing(theft)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonInvalidParameters))
			g.Expect(c.Message).To(ContainSubstring(`"installation_id" comes from the label "` + installationLabel + `"`))
		}, 10*time.Second).Should(Succeed())
		_, err := secretOf(theft)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a Secret for the refused AccessToken: %v", err)

		By("refusing, before any call, an AccessToken in an allowed namespace without the label")
		orphan := accessToken(bare, "contents", nil)
		Eventually(func(g Gomega) {
			c := renewing(orphan)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonInvalidParameters))
			g.Expect(c.Message).To(ContainSubstring("which the namespace does not carry"))
		}, 10*time.Second).Should(Succeed())
		settle(theft)
		settle(orphan)
		Expect(fake.Calls()).To(Equal(2), "the GitHub fake saw a call for a refused AccessToken")
	})

	It("re-issues a namespace's token when its label names another installation", func() {
		a := waitReady(accessToken(nsA, "contents", nil))
		first := tokenIn(a)
		Expect(installationOf(first)).To(Equal(teamA))

		clk.Step(DefaultMinMintInterval)
		ns := &corev1.Namespace{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: nsA}, ns)).To(Succeed())
		patch := client.MergeFrom(ns.DeepCopy())
		ns.Labels[installationLabel] = later
		Expect(k8sClient.Patch(ctx, ns, patch)).To(Succeed())
		Eventually(func(g Gomega) {
			token := tokenIn(a)
			g.Expect(token).NotTo(Equal(first))
			g.Expect(installationOf(token)).To(Equal(later))
		}, 15*time.Second).Should(Succeed())
		Expect(fake.Issued()).To(HaveLen(2))

		By("stopping renewals, without a call, when the label is removed")
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: nsA}, ns)).To(Succeed())
		patch = client.MergeFrom(ns.DeepCopy())
		delete(ns.Labels, installationLabel)
		Expect(k8sClient.Patch(ctx, ns, patch)).To(Succeed())
		Eventually(func(g Gomega) {
			c := renewing(a)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonIssuerNotAllowed))
		}, 10*time.Second).Should(Succeed())
		settle(a)
		Expect(fake.Calls()).To(Equal(2))
	})
})

var _ = Describe("A ClusterAccessToken whose ClusterTokenIssuer is deleted", func() {
	It("allows no namespace, keeps the Secrets it wrote, and writes again once the issuer is back", func() {
		e := newClusterEnv()
		a := e.namespace(true)
		cat := e.clusterAccessToken()
		Eventually(func() int32 { return getCAT(cat).Status.Written }, 15*time.Second).Should(BeEquivalentTo(1))
		first := sharedToken(a)
		Expect(first).NotTo(BeEmpty())

		cti := &tokensv1alpha1.ClusterTokenIssuer{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: e.issuer}, cti)).To(Succeed())
		Expect(k8sClient.Delete(ctx, cti)).To(Succeed())
		Eventually(func(g Gomega) {
			cur := getCAT(cat)
			ready := meta.FindStatusCondition(cur.Status.Conditions, tokensv1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(tokensv1alpha1.ReasonIssuerNotFound))
			g.Expect(ready.Message).To(ContainSubstring("no namespace is allowed"))
			g.Expect(ready.Message).To(ContainSubstring("the 1 written before are kept"))
			g.Expect(cur.Status.Namespaces).To(BeZero())
			g.Expect(cur.Status.Written).To(BeZero())
			g.Expect(cur.Status.Failures).To(ConsistOf(tokensv1alpha1.NamespaceFailure{Name: a,
				Message: `ClusterTokenIssuer "` + e.issuer + `" not found, so no namespace is allowed`}))
		}, 10*time.Second).Should(Succeed())

		By("writing nothing to a namespace selected meanwhile")
		b := e.namespace(true)
		Eventually(func() int32 { return getCAT(cat).Status.Failing }, 10*time.Second).Should(BeEquivalentTo(2))
		Consistently(func() string { return sharedToken(b) }, 2*time.Second).Should(BeEmpty())
		Expect(sharedToken(a)).To(Equal(first), "the Secret written before is kept as it was")

		By("writing to every selected namespace once the issuer is created again")
		clk.Step(DefaultMinMintInterval)
		again := &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: e.issuer}, Spec: cti.Spec}
		Expect(k8sClient.Create(ctx, again)).To(Succeed())
		Eventually(func(g Gomega) {
			cur := getCAT(cat)
			g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, tokensv1alpha1.ConditionReady)).To(BeTrue())
			g.Expect(cur.Status.Written).To(BeEquivalentTo(2))
			// The issuer created again is another object: its first token
			// replaces the one kept, in both namespaces.
			g.Expect(sharedToken(b)).NotTo(BeEmpty())
			g.Expect(sharedToken(b)).To(Equal(sharedToken(a)))
		}, 15*time.Second).Should(Succeed())
		Expect(k8sClient.Delete(ctx, getCAT(cat))).To(Succeed())
	})
})
