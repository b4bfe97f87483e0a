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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// setSuspend sets the AccessToken's spec.suspend.
func setSuspend(at *tokensv1alpha1.AccessToken, suspend bool) {
	cur := get(at)
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Spec.Suspend = suspend
	ExpectWithOffset(1, k8sClient.Patch(ctx, cur, patch)).To(Succeed())
}

// renewingReason is the reason of the AccessToken's Renewing condition.
func renewingReason(at *tokensv1alpha1.AccessToken) func() string {
	return func() string {
		if c := renewing(at); c != nil {
			return c.Reason
		}
		return ""
	}
}

// secretVersion is the resourceVersion of the AccessToken's Secret.
func secretVersion(at *tokensv1alpha1.AccessToken) string {
	s, err := secretOf(at)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return s.ResourceVersion
}

var _ = Describe("spec.suspend", func() {
	It("makes no call and no write while set, reports it, and renews as usual once unset", func() {
		s, fake := startSample("oauth2-client-credentials")
		at := waitReady(s.AccessToken)
		first := fake.Issued()[0].Value

		By("renewing once, so that a superseded token waits for its revocation")
		clk.SetTime(at.Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(func() int { return len(fake.Issued()) }, 10*time.Second).Should(Equal(2))
		settle(at)
		Expect(fake.Valid(first)).To(BeTrue())

		By("suspending it")
		setSuspend(at, true)
		Eventually(renewingReason(at), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonSuspended))
		Expect(renewing(at).Status).To(Equal(metav1.ConditionFalse))
		Expect(renewing(at).Message).To(ContainSubstring("spec.suspend"))
		Expect(ready(at).Status).To(Equal(metav1.ConditionTrue), "a suspended token that is valid is Ready")
		Eventually(func() []string { return reasonsAbout(get(at)) }, 10*time.Second).Should(ContainElement(tokensv1alpha1.ReasonSuspended))
		calls, version := fake.Calls(), secretVersion(at)

		By("passing the grace period and the renewal time: nothing is revoked or minted")
		at = get(at)
		clk.SetTime(at.Status.RenewalTime.Add(time.Second))
		poke(at)
		settle(at)
		Consistently(fake.Calls, 2*time.Second, 100*time.Millisecond).Should(Equal(calls))
		Expect(fake.CallsBy(fakes.OutcomeRevoked)).To(BeZero(), "the superseded token is not revoked while suspended")
		Expect(secretVersion(at)).To(Equal(version), "the Secret is left as it is")
		Expect(ready(at).Status).To(Equal(metav1.ConditionTrue))

		By("passing the expiry: Ready turns False, still without a call")
		clk.SetTime(get(at).Status.ExpiresAt.Add(time.Second))
		poke(at)
		Eventually(func() string { return ready(at).Reason }, 10*time.Second).Should(Equal(tokensv1alpha1.ReasonExpired))
		Expect(renewingReason(at)()).To(Equal(tokensv1alpha1.ReasonSuspended))
		Expect(fake.Calls()).To(Equal(calls))
		Expect(secretVersion(at)).To(Equal(version))

		By("resuming: the expired token is renewed and the superseded one revoked")
		setSuspend(at, false)
		Eventually(func() int { return len(fake.Issued()) }, 10*time.Second).Should(Equal(3))
		waitReady(at)
		Eventually(func() int { return fake.CallsBy(fakes.OutcomeRevoked) }, 10*time.Second).Should(Equal(1))
		Expect(renewingReason(at)()).NotTo(Equal(tokensv1alpha1.ReasonSuspended))
		Expect(reasonsAbout(get(at))).To(ContainElement(tokensv1alpha1.ReasonResumed))
	})

	It("keeps a token still valid when unset, and still revokes on deletion", func() {
		s, fake := startSample("oauth2-client-credentials")
		at := waitReady(s.AccessToken)
		Expect(at.Finalizers).To(ContainElement(RevokeFinalizer))
		current := fake.Issued()[0].Value

		setSuspend(at, true)
		Eventually(renewingReason(at), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonSuspended))
		setSuspend(at, false)
		Eventually(renewingReason(at), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonResumed))
		Expect(renewing(at).Status).To(Equal(metav1.ConditionTrue))
		settle(at)
		Expect(fake.Issued()).To(HaveLen(1), "a valid token is not minted again on resume")
		Expect(ready(at).Status).To(Equal(metav1.ConditionTrue))

		By("deleting it while suspended: deletion is explicit, so the token is revoked")
		setSuspend(at, true)
		Eventually(renewingReason(at), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonSuspended))
		Expect(k8sClient.Delete(ctx, get(at))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), &tokensv1alpha1.AccessToken{}))
		}, 10*time.Second).Should(BeTrue())
		Expect(fake.Valid(current)).To(BeFalse())
		Expect(fake.CallsBy(fakes.OutcomeRevoked)).To(Equal(1))
	})
})

var _ = Describe("--read-only", func() {
	It("makes no call and writes nothing but status, and lets a deleted AccessToken go without revoking", func() {
		s, fake := startSample("oauth2-client-credentials")
		at := waitReady(s.AccessToken)
		current := fake.Issued()[0].Value
		version := secretVersion(at)

		By("restarting the manager read-only")
		mgr.stop()
		mgr = startManagerWith(func(c *Config) { c.ReadOnly = true })
		DeferCleanup(func() {
			mgr.stop()
			mgr = startManager()
		})
		Eventually(renewingReason(at), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonReadOnly))
		Expect(renewing(at).Message).To(ContainSubstring("--read-only"))
		Expect(ready(at).Status).To(Equal(metav1.ConditionTrue))
		calls := fake.Calls()

		By("passing the renewal time: nothing is minted, the Secret is not written")
		clk.SetTime(get(at).Status.RenewalTime.Add(time.Second))
		poke(at)
		settle(at)
		Consistently(fake.Calls, 2*time.Second, 100*time.Millisecond).Should(Equal(calls))
		Expect(secretVersion(at)).To(Equal(version))

		By("a new AccessToken gets status, and neither a token, a Secret nor a finalizer")
		fresh := s.AccessToken.DeepCopy()
		fresh.ObjectMeta = metav1.ObjectMeta{Name: "fresh", Namespace: at.Namespace}
		fresh.Spec.Secret.Name = "fresh-token"
		Expect(k8sClient.Create(ctx, fresh)).To(Succeed())
		Eventually(renewingReason(fresh), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonReadOnly))
		Expect(ready(fresh).Reason).To(Equal(tokensv1alpha1.ReasonPending))
		Expect(get(fresh).Finalizers).To(BeEmpty())
		_, err := secretOf(fresh)
		Expect(apierrors.IsNotFound(err)).To(BeTrue())
		Expect(fake.Calls()).To(Equal(calls))

		By("deleting the AccessToken: the finalizer goes without a revocation, the state stays")
		Expect(k8sClient.Delete(ctx, get(at))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), &tokensv1alpha1.AccessToken{}))
		}, 10*time.Second).Should(BeTrue())
		Expect(fake.Valid(current)).To(BeTrue())
		Expect(fake.Calls()).To(Equal(calls))
		state := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: secret.StateName(at)}, state)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, state)
	})
})

// ownedBy reports whether the AccessToken's Secret has an owner reference to it.
func ownedBy(at *tokensv1alpha1.AccessToken) bool {
	s, err := secretOf(at)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	for _, ref := range s.OwnerReferences {
		if ref.UID == at.UID {
			return true
		}
	}
	return false
}

// deleteAndWait deletes the AccessToken and waits until it is gone.
func deleteAndWait(at *tokensv1alpha1.AccessToken) {
	ExpectWithOffset(1, k8sClient.Delete(ctx, get(at))).To(Succeed())
	EventuallyWithOffset(1, func() bool {
		return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), &tokensv1alpha1.AccessToken{}))
	}, 10*time.Second).Should(BeTrue())
}

// The control plane of these specs runs no garbage collector: a Secret that
// keeps its owner reference stays after its owner goes, and would be deleted
// on a real cluster. The specs check the owner reference instead.
var _ = Describe("deletion policies", func() {
	It("secretDeletionPolicy Retain removes the owner reference before the AccessToken goes, and still revokes by default", func() {
		s, fake := startSample("oauth2-client-credentials", func(s *samples.Sample) {
			s.AccessToken.Spec.SecretDeletionPolicy = tokensv1alpha1.SecretDeletionPolicyRetain
		})
		at := waitReady(s.AccessToken)
		Expect(at.Finalizers).To(ContainElement(RevokeFinalizer))
		Expect(ownedBy(at)).To(BeTrue())
		current := fake.Issued()[0].Value

		deleteAndWait(at)
		Expect(ownedBy(at)).To(BeFalse(), "the retained Secret has no owner reference to the deleted AccessToken")
		Expect(fake.Valid(current)).To(BeFalse())
		Expect(fake.Issued()).To(HaveLen(1), "one token minted")
		// At least once: a finalizer update that conflicts with the
		// Secret's release is retried, and the retry may revoke the same
		// token again (revocation is idempotent, RFC 7009).
		Expect(fake.CallsBy(fakes.OutcomeRevoked)).To(BeNumerically(">=", 1))
		Expect(reasonsAbout(at)).To(ContainElement("SecretRetained"))
	})

	It("secretDeletionPolicy Retain with revocationPolicy None keeps a valid token in the kept Secret", func() {
		s, fake := startSample("oauth2-client-credentials", func(s *samples.Sample) {
			s.AccessToken.Spec.SecretDeletionPolicy = tokensv1alpha1.SecretDeletionPolicyRetain
			s.AccessToken.Spec.RevocationPolicy = tokensv1alpha1.RevocationPolicyNone
		})
		at := waitReady(s.AccessToken)
		Expect(at.Finalizers).To(ContainElement(RevokeFinalizer), "the finalizer is kept to release the Secret")
		current := fake.Issued()[0].Value

		deleteAndWait(at)
		Expect(ownedBy(at)).To(BeFalse())
		Expect(fake.Valid(current)).To(BeTrue())
		Expect(fake.CallsBy(fakes.OutcomeRevoked)).To(BeZero())
	})

	It("revocationPolicy None needs no finalizer and revokes nothing; the default Delete keeps the owner reference", func() {
		s, fake := startSample("oauth2-client-credentials")
		at := waitReady(s.AccessToken)
		Expect(at.Finalizers).To(ContainElement(RevokeFinalizer))
		current := fake.Issued()[0].Value

		By("switching to revocationPolicy None: the finalizer goes")
		cur := get(at)
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Spec.RevocationPolicy = tokensv1alpha1.RevocationPolicyNone
		Expect(k8sClient.Patch(ctx, cur, patch)).To(Succeed())
		Eventually(func() []string { return get(at).Finalizers }, 10*time.Second).ShouldNot(ContainElement(RevokeFinalizer))

		deleteAndWait(at)
		Expect(fake.Valid(current)).To(BeTrue())
		Expect(fake.CallsBy(fakes.OutcomeRevoked)).To(BeZero())
		Expect(ownedBy(at)).To(BeTrue(), "with secretDeletionPolicy Delete the garbage collector deletes the Secret")
	})
})
