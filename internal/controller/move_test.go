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
	"fmt"
	"net/http"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// secondIssuer creates, beside the sample s, another ClusterTokenIssuer of
// the same sample served by its own fake, allowed in s's namespace and
// reading s's credential Secret; change edits it before it is created.
func secondIssuer(s *samples.Sample, change func(*tokensv1alpha1.ClusterTokenIssuer)) (*tokensv1alpha1.ClusterTokenIssuer, *fakes.Base) {
	for _, p := range samples.Providers {
		if p.Name != "oauth2-client-credentials" {
			continue
		}
		fake, base := p.NewFake()
		base.Clock = clk
		b, err := samples.Load(p.File)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		ExpectWithOffset(1, b.PointAt(serveFake(fake, base))).To(Succeed())
		b.Place(s.AccessToken.Namespace, credentialsNamespace, "-b-"+s.AccessToken.Namespace)
		if change != nil {
			change(b.ClusterTokenIssuer)
		}
		ExpectWithOffset(1, k8sClient.Create(ctx, b.ClusterTokenIssuer)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(ctx, b.ClusterTokenIssuer) })
		return b.ClusterTokenIssuer, base
	}
	Fail("no oauth2-client-credentials sample")
	return nil, nil
}

// get2 reads a ClusterTokenIssuer as the apiserver holds it.
func getIssuer(c *tokensv1alpha1.ClusterTokenIssuer) *tokensv1alpha1.ClusterTokenIssuer {
	out := &tokensv1alpha1.ClusterTokenIssuer{}
	ExpectWithOffset(1, k8sClient.Get(ctx, client.ObjectKeyFromObject(c), out)).To(Succeed())
	return out
}

// moveTo points the AccessToken at the ClusterTokenIssuer name, with
// parameters, in one update.
func moveTo(at *tokensv1alpha1.AccessToken, name string, params map[string]apiextensionsv1.JSON) {
	cur := get(at)
	cur.Spec.IssuerRef = tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: name}
	cur.Spec.Parameters = params
	ExpectWithOffset(1, k8sClient.Update(ctx, cur)).To(Succeed())
}

// watchSecret reads the AccessToken's Secret every few milliseconds until
// stopped, and returns every moment it held no token valid(...) accepts.
func watchSecret(at *tokensv1alpha1.AccessToken, valid func(string) bool) (stop func() []string) {
	var mu sync.Mutex
	var gaps []string
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			s, err := secretOf(at)
			problem := ""
			switch {
			case err != nil:
				problem = "Secret unreadable: " + err.Error()
			case !valid(string(s.Data["token"])):
				problem = "the Secret holds no valid token"
			}
			if problem != "" {
				mu.Lock()
				gaps = append(gaps, fmt.Sprintf("%s at %s", problem, clk.Now()))
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return gaps
	}
}

var _ = Describe("moving an AccessToken to another issuer", func() {
	It("switches the Secret to the new issuer's token without a gap, and revokes the old one through its own issuer after its grace period", func() {
		s, fakeA := startSample("oauth2-client-credentials")
		at := waitReady(s.AccessToken)
		tokenA := fakeA.Issued()[0].Value
		b, fakeB := secondIssuer(s, func(c *tokensv1alpha1.ClusterTokenIssuer) {
			// Longer than A's 5m: A's token goes after A's grace period.
			c.Spec.RevokeGracePeriod = &tokensv1alpha1.Duration{Duration: 30 * time.Minute}
		})
		stop := watchSecret(at, func(v string) bool { return fakeA.Valid(v) || fakeB.Valid(v) })

		By("changing issuerRef and parameters in one update")
		clk.Step(DefaultMinMintInterval)
		moveTo(at, b.Name, map[string]apiextensionsv1.JSON{"scopes": {Raw: []byte(`["orders.write"]`)}})
		Eventually(func() int { return len(fakeB.Issued()) }, 10*time.Second).Should(Equal(1))
		Eventually(func() string {
			sec, err := secretOf(at)
			if err != nil {
				return ""
			}
			return string(sec.Data["token"])
		}, 10*time.Second).Should(Equal(fakeB.Issued()[0].Value))
		at = waitReady(at)
		settle(at)
		Expect(fakeB.Issued()).To(HaveLen(1), "exactly one mint from the new issuer")
		Expect(fakeA.Issued()).To(HaveLen(1), "the old issuer renews nothing")
		Expect(fakeA.Valid(tokenA)).To(BeTrue(), "the old token lives through the old issuer's grace period")
		Expect(reasonsAbout(at)).NotTo(ContainElement(tokensv1alpha1.ReasonRevokeFailed))

		By("status.history lists both tokens with their issuers")
		h := get(at).Status.History
		Expect(h).To(HaveLen(2))
		Expect(h[0].Fingerprint).To(Equal(get(at).Status.TokenFingerprint))
		Expect(h[0].Issuer).To(Equal(tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: b.Name}))
		Expect(h[0].ReplacedAt).To(BeNil())
		Expect(h[1].Issuer).To(Equal(s.AccessToken.Spec.IssuerRef))
		Expect(h[1].ReplacedAt).NotTo(BeNil())
		Expect(h[1].RevokedAt).To(BeNil())
		Expect(h[1].ExpiresAt).NotTo(BeNil())

		By("before the old issuer's grace period ends, nothing is revoked")
		clk.Step(4 * time.Minute)
		poke(at)
		settle(at)
		Expect(fakeA.CallsBy(fakes.OutcomeRevoked)).To(BeZero())

		By("after it, the old token is revoked through the old issuer, and nothing of it reaches the new one")
		clk.Step(time.Minute + time.Second)
		poke(at)
		Eventually(func() int { return fakeA.CallsBy(fakes.OutcomeRevoked) }, 10*time.Second).Should(Equal(1))
		Expect(fakeA.Valid(tokenA)).To(BeFalse())
		Eventually(func() *metav1.Time { return get(at).Status.History[1].RevokedAt }, 10*time.Second).ShouldNot(BeNil())
		settle(at)
		Expect(fakeB.CallsBy(fakes.OutcomeRevoked)).To(BeZero())
		Expect(fakeB.Calls()).To(Equal(1), "the new issuer got one call: its own mint")
		Expect(fakeA.Issued()).To(HaveLen(1))
		Expect(stop()).To(BeEmpty(), "the Secret always held a valid token")
		Expect(fakeB.Valid(fakeB.Issued()[0].Value)).To(BeTrue())
	})

	It("keeps the old token, unrenewed, while the new issuer refuses the parameters or fails", func() {
		s, fakeA := startSample("oauth2-client-credentials")
		at := waitReady(s.AccessToken)
		tokenA := fakeA.Issued()[0].Value
		b, fakeB := secondIssuer(s, nil)

		By("moving with parameters the new issuer does not allow")
		clk.Step(DefaultMinMintInterval)
		moveTo(at, b.Name, map[string]apiextensionsv1.JSON{"scopes": {Raw: []byte(`["admin"]`)}})
		Eventually(renewingReason(at), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonInvalidParameters))
		Expect(renewing(at).Message).To(ContainSubstring("moving from ClusterTokenIssuer %q", s.AccessToken.Spec.IssuerRef.Name))
		Expect(ready(at).Status).To(Equal(metav1.ConditionTrue))
		Expect(ready(at).Message).To(ContainSubstring("has not issued one yet"))
		sec, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(sec.Data["token"])).To(Equal(tokenA))
		Expect(fakeB.Calls()).To(BeZero())

		By("fixing the parameters while the new issuer's endpoint fails")
		fakeB.FailNext(1, fakes.Fault{Status: http.StatusInternalServerError, Body: `{"error":"server_error"}`})
		clk.Step(DefaultMinMintInterval)
		moveTo(at, b.Name, map[string]apiextensionsv1.JSON{"scopes": {Raw: []byte(`["orders.read"]`)}})
		Eventually(fakeB.Calls, 10*time.Second).Should(Equal(1))
		Eventually(renewingReason(at), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonEndpointError))
		settle(at)
		sec, err = secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(sec.Data["token"])).To(Equal(tokenA), "the old token stays")
		Expect(ready(at).Status).To(Equal(metav1.ConditionTrue))

		By("at the retry time, the new issuer is asked again, and the old one never")
		at = get(at)
		Expect(at.Status.RenewalTime.Time).To(BeTemporally("<", clk.Now().Add(DefaultMinMintInterval)))
		clk.Step(DefaultMinMintInterval)
		poke(at)
		Eventually(func() int { return len(fakeB.Issued()) }, 10*time.Second).Should(Equal(1))
		waitReady(at)
		settle(at)
		Expect(fakeA.Issued()).To(HaveLen(1))
		Expect(fakeA.CallsBy(fakes.OutcomeRefreshed)).To(BeZero())
		sec, err = secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(sec.Data["token"])).To(Equal(fakeB.Issued()[0].Value))
		Expect(fakeA.Valid(tokenA)).To(BeTrue())
	})

	It("cannot revoke the old token once its issuer is gone, says so, and sends it nowhere", func() {
		s, fakeA := startSample("oauth2-client-credentials")
		at := waitReady(s.AccessToken)
		tokenA := fakeA.Issued()[0].Value
		b, fakeB := secondIssuer(s, nil)

		clk.Step(DefaultMinMintInterval)
		moveTo(at, b.Name, s.AccessToken.Spec.Parameters)
		Eventually(func() int { return len(fakeB.Issued()) }, 10*time.Second).Should(Equal(1))
		waitReady(at)
		settle(at)

		By("deleting the old issuer and creating it again (another UID), then passing its grace period")
		old := getIssuer(s.ClusterTokenIssuer)
		Expect(k8sClient.Delete(ctx, old)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(old), &tokensv1alpha1.ClusterTokenIssuer{}))
		}, 10*time.Second).Should(BeTrue())
		again := &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: old.Name}, Spec: *old.Spec.DeepCopy()}
		Expect(k8sClient.Create(ctx, again)).To(Succeed())
		clk.Step(5*time.Minute + time.Second)
		poke(at)
		Eventually(func() []string { return reasonsAbout(get(at)) }, 10*time.Second).Should(ContainElement(tokensv1alpha1.ReasonRevokeFailed))
		settle(at)
		Expect(fakeA.CallsBy(fakes.OutcomeRevoked)).To(BeZero(), "the old token is never sent to an issuer created again under its issuer's name")
		Expect(fakeB.CallsBy(fakes.OutcomeRevoked)).To(BeZero(), "the old token is never sent to the new issuer")
		Expect(fakeB.Calls()).To(Equal(1))
		Expect(fakeA.Valid(tokenA)).To(BeTrue())
		Expect(get(at).Status.History[1].RevokedAt).To(BeNil())
	})

	It("revokes the old token through the old issuer when the new one keeps no state, then removes the state", func() {
		s, fakeA := startSample("oauth2-client-credentials")
		at := waitReady(s.AccessToken)
		tokenA := fakeA.Issued()[0].Value
		b, fakeB := secondIssuer(s, func(c *tokensv1alpha1.ClusterTokenIssuer) {
			c.Spec.Revoke, c.Spec.RevokeGracePeriod = nil, nil
		})

		clk.Step(DefaultMinMintInterval)
		moveTo(at, b.Name, s.AccessToken.Spec.Parameters)
		Eventually(func() int { return len(fakeB.Issued()) }, 10*time.Second).Should(Equal(1))
		waitReady(at)
		settle(at)
		Expect(fakeA.Valid(tokenA)).To(BeTrue())

		clk.Step(5*time.Minute + time.Second)
		poke(at)
		Eventually(func() int { return fakeA.CallsBy(fakes.OutcomeRevoked) }, 10*time.Second).Should(Equal(1))
		Expect(fakeA.Valid(tokenA)).To(BeFalse())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: secret.StateName(at)}, &corev1.Secret{}))
		}, 10*time.Second).Should(BeTrue(), "nothing is left to revoke, and the new issuer keeps no state")
		Eventually(func() *metav1.Time { return get(at).Status.History[1].RevokedAt }, 10*time.Second).ShouldNot(BeNil())
		Expect(fakeA.Issued()).To(HaveLen(1))
		Expect(fakeB.Calls()).To(Equal(1))
	})

	It("revokes the old issuer's token through it when the AccessToken is deleted before the new issuer issued one", func() {
		s, fakeA := startSample("oauth2-client-credentials")
		at := waitReady(s.AccessToken)
		tokenA := fakeA.Issued()[0].Value
		b, fakeB := secondIssuer(s, nil)
		fakeB.FailNext(100, fakes.Fault{Status: http.StatusUnauthorized, Body: `{"error":"invalid_client"}`})

		clk.Step(DefaultMinMintInterval)
		moveTo(at, b.Name, s.AccessToken.Spec.Parameters)
		Eventually(renewingReason(at), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonPermanentFailure), "invalid_client is permanent by the OAuth2 preset")
		settle(at)

		Expect(k8sClient.Delete(ctx, get(at))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), &tokensv1alpha1.AccessToken{}))
		}, 10*time.Second).Should(BeTrue())
		Expect(fakeA.Valid(tokenA)).To(BeFalse(), "revoked through the issuer that minted it")
		Expect(fakeA.CallsBy(fakes.OutcomeRevoked)).To(Equal(1))
		Expect(fakeB.CallsBy(fakes.OutcomeRevoked)).To(BeZero())
		Expect(fakeB.Issued()).To(BeEmpty())
	})

	It("moves a ClusterAccessToken's source with it, and every namespace gets the new issuer's token", func() {
		a, b := newClusterEnv(), newClusterEnv()
		ns := a.namespace(true)
		cti := &tokensv1alpha1.ClusterTokenIssuer{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: b.issuer}, cti)).To(Succeed())
		patch := client.MergeFrom(cti.DeepCopy())
		cti.Spec.AllowedNamespaces.Names = []string{ns}
		Expect(k8sClient.Patch(ctx, cti, patch)).To(Succeed())
		cat := a.clusterAccessToken(ns)
		DeferCleanup(func() { _ = k8sClient.Delete(ctx, cat) })
		Eventually(func() string { return sharedToken(ns) }, 15*time.Second).ShouldNot(BeEmpty())
		Expect(sharedToken(ns)).To(Equal(a.fake.Issued()[0].Value))

		clk.Step(DefaultMinMintInterval)
		cur := getCAT(cat)
		patch = client.MergeFrom(cur.DeepCopy())
		cur.Spec.IssuerRef.Name = b.issuer
		Expect(k8sClient.Patch(ctx, cur, patch)).To(Succeed())
		Eventually(func() int { return len(b.fake.Issued()) }, 10*time.Second).Should(Equal(1))
		Eventually(func() string { return sharedToken(ns) }, 10*time.Second).Should(Equal(b.fake.Issued()[0].Value))
		Expect(a.fake.Issued()).To(HaveLen(1))

		source := &tokensv1alpha1.AccessToken{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "cluster-" + cat.Name}, source)).To(Succeed())
		Expect(source.Spec.IssuerRef.Name).To(Equal(b.issuer))
		Eventually(func() []string {
			var issuers []string
			for _, h := range get(source).Status.History {
				issuers = append(issuers, h.Issuer.Name)
			}
			return issuers
		}, 10*time.Second).Should(Equal([]string{b.issuer, a.issuer}))
	})
})
