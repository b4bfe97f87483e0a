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

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// setCATSuspend sets the ClusterAccessToken's spec.suspend.
func setCATSuspend(cat *tokensv1alpha1.ClusterAccessToken, suspend bool) {
	cur := getCAT(cat)
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Spec.Suspend = suspend
	ExpectWithOffset(1, k8sClient.Patch(ctx, cur, patch)).To(Succeed())
}

// catCondition is the reason of the ClusterAccessToken's condition of type t.
func catCondition(cat *tokensv1alpha1.ClusterAccessToken, t string) func() string {
	return func() string {
		if c := meta.FindStatusCondition(getCAT(cat).Status.Conditions, t); c != nil {
			return c.Reason
		}
		return ""
	}
}

// copyVersions are the resourceVersions of the copies in namespaces ("" for none).
func copyVersions(namespaces ...string) map[string]string {
	out := map[string]string{}
	for _, ns := range namespaces {
		s := &corev1.Secret{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shared-token"}, s); err == nil {
			out[ns] = s.ResourceVersion
		} else {
			ExpectWithOffset(1, apierrors.IsNotFound(err)).To(BeTrue())
			out[ns] = ""
		}
	}
	return out
}

// setTeam puts namespace ns in team, or takes it out with "".
func setTeam(ns, team string) {
	cur := &corev1.Namespace{}
	ExpectWithOffset(1, k8sClient.Get(ctx, client.ObjectKey{Name: ns}, cur)).To(Succeed())
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Labels = map[string]string{}
	if team != "" {
		cur.Labels["team"] = team
	}
	ExpectWithOffset(1, k8sClient.Patch(ctx, cur, patch)).To(Succeed())
}

// waitWrittenTo waits until the ClusterAccessToken is Ready with n namespaces written.
func waitWrittenTo(cat *tokensv1alpha1.ClusterAccessToken, n int) {
	EventuallyWithOffset(1, func(g Gomega) {
		cur := getCAT(cat)
		g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, tokensv1alpha1.ConditionReady)).To(BeTrue(), "%+v", cur.Status.Conditions)
		g.Expect(cur.Status.Written).To(BeEquivalentTo(n))
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
}

// sourceOf is the source AccessToken of the ClusterAccessToken.
func sourceOf(cat *tokensv1alpha1.ClusterAccessToken) *tokensv1alpha1.AccessToken {
	return get(&tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: "cluster-" + cat.Name}})
}

var _ = Describe("ClusterAccessToken spec.suspend", func() {
	It("suspends the source, writes no copy while set, and catches up once unset without minting a valid token again", func() {
		e := newClusterEnv()
		a, c := e.namespace(true), e.namespace(true)
		cat := e.clusterAccessToken()
		waitWrittenTo(cat, 2)
		Expect(e.fake.Issued()).To(HaveLen(1))
		first := e.fake.Issued()[0].Value

		By("suspending it: the source is suspended, status says so, Ready still follows the token")
		setCATSuspend(cat, true)
		Eventually(catCondition(cat, tokensv1alpha1.ConditionRenewing), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonSuspended))
		renewingCond := meta.FindStatusCondition(getCAT(cat).Status.Conditions, tokensv1alpha1.ConditionRenewing)
		Expect(renewingCond.Status).To(Equal(metav1.ConditionFalse))
		Expect(renewingCond.Message).To(ContainSubstring("spec.suspend"))
		Expect(meta.IsStatusConditionTrue(getCAT(cat).Status.Conditions, tokensv1alpha1.ConditionReady)).To(BeTrue())
		Eventually(func() []string { return reasonsAbout(getCAT(cat)) }, 10*time.Second).Should(ContainElement(tokensv1alpha1.ReasonSuspended))
		source := sourceOf(cat)
		Expect(source.Spec.Suspend).To(BeTrue())
		Eventually(renewingReason(source), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonSuspended))
		calls, sourceGeneration := e.fake.Calls(), sourceOf(cat).Generation

		By("a namespace selected meanwhile gets no copy, one deselected keeps its copy, none is written")
		b := e.namespace(true)
		setTeam(c, "")
		versions := copyVersions(a, b, c)
		Expect(versions[b]).To(BeEmpty())
		Expect(versions[c]).NotTo(BeEmpty())
		Eventually(func(g Gomega) {
			cur := getCAT(cat)
			g.Expect(cur.Status.Namespaces).To(BeEquivalentTo(2))
			g.Expect(cur.Status.Written).To(BeEquivalentTo(1))
			ready := meta.FindStatusCondition(cur.Status.Conditions, tokensv1alpha1.ConditionReady)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(tokensv1alpha1.ReasonSuspended))
			g.Expect(ready.Message).To(ContainSubstring("1 of the 2 selected namespaces"))
		}, 10*time.Second).Should(Succeed())
		poke(source)
		Consistently(func() map[string]string { return copyVersions(a, b, c) }, 2*time.Second, 100*time.Millisecond).Should(Equal(versions))
		Expect(e.fake.Calls()).To(Equal(calls))
		Expect(sourceOf(cat).Generation).To(Equal(sourceGeneration), "the source's spec is not written again")

		By("resuming: the copies catch up from the current token, without a mint")
		setCATSuspend(cat, false)
		Eventually(func() string { return sharedToken(b) }, 10*time.Second).Should(Equal(first))
		Eventually(func() string { return sharedToken(c) }, 10*time.Second).Should(BeEmpty())
		waitWrittenTo(cat, 2)
		Expect(sourceOf(cat).Spec.Suspend).To(BeFalse())
		Eventually(func() []string { return reasonsAbout(getCAT(cat)) }, 10*time.Second).Should(ContainElement(tokensv1alpha1.ReasonResumed))
		settle(source)
		Expect(e.fake.Issued()).To(HaveLen(1), "a valid token is not minted again on resume")
		Expect(sharedToken(a)).To(Equal(first))

		By("suspending it past the renewal time and the expiry: no call, Ready turns False")
		setCATSuspend(cat, true)
		Eventually(renewingReason(source), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonSuspended))
		calls, versions = e.fake.Calls(), copyVersions(a, b)
		clk.SetTime(sourceOf(cat).Status.RenewalTime.Add(time.Second))
		poke(source)
		settle(source)
		Consistently(e.fake.Calls, 2*time.Second, 100*time.Millisecond).Should(Equal(calls))
		clk.SetTime(sourceOf(cat).Status.ExpiresAt.Add(time.Second))
		poke(source)
		Eventually(catCondition(cat, tokensv1alpha1.ConditionReady), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonExpired))
		Expect(catCondition(cat, tokensv1alpha1.ConditionRenewing)()).To(Equal(tokensv1alpha1.ReasonSuspended))
		Expect(e.fake.Calls()).To(Equal(calls))
		Expect(copyVersions(a, b)).To(Equal(versions))

		By("resuming: the expired token is renewed once, and every copy gets the new one")
		setCATSuspend(cat, false)
		Eventually(func() int { return len(e.fake.Issued()) }, 10*time.Second).Should(Equal(2))
		second := e.fake.Issued()[1].Value
		for _, ns := range []string{a, b} {
			Eventually(func() string { return sharedToken(ns) }, 10*time.Second).Should(Equal(second))
		}
		waitWrittenTo(cat, 2)

		By("deleting it while suspended: deletion is explicit, the copies and the source go")
		setCATSuspend(cat, true)
		Eventually(catCondition(cat, tokensv1alpha1.ConditionRenewing), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonSuspended))
		Expect(k8sClient.Delete(ctx, getCAT(cat))).To(Succeed())
		for _, ns := range []string{a, b} {
			Eventually(func() string { return sharedToken(ns) }, 10*time.Second).Should(BeEmpty())
		}
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(cat), &tokensv1alpha1.ClusterAccessToken{}))
		}, 10*time.Second).Should(BeTrue())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(source), &tokensv1alpha1.AccessToken{}))
		}, 10*time.Second).Should(BeTrue())
		Expect(e.fake.Issued()).To(HaveLen(2))
	})
})

var _ = Describe("ClusterAccessToken on a --read-only manager", func() {
	It("writes nothing but status, never re-creates or changes the source, and lets a deleted one go without deleting its copies", func() {
		e := newClusterEnv()
		a, c := e.namespace(true), e.namespace(true)
		cat := e.clusterAccessToken()
		waitWrittenTo(cat, 2)
		Expect(e.fake.Issued()).To(HaveLen(1))
		first := e.fake.Issued()[0].Value

		By("restarting the manager read-only")
		mgr.stop()
		mgr = startManagerWith(func(c *Config) { c.ReadOnly = true })
		DeferCleanup(func() {
			mgr.stop()
			mgr = startManager()
		})
		Eventually(catCondition(cat, tokensv1alpha1.ConditionRenewing), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonReadOnly))
		Expect(meta.FindStatusCondition(getCAT(cat).Status.Conditions, tokensv1alpha1.ConditionRenewing).Message).To(ContainSubstring("--read-only"))
		Expect(meta.IsStatusConditionTrue(getCAT(cat).Status.Conditions, tokensv1alpha1.ConditionReady)).To(BeTrue())
		Expect(getCAT(cat).Finalizers).To(ContainElement(ClusterAccessTokenFinalizer))
		source := sourceOf(cat)
		calls := e.fake.Calls()

		By("a namespace selected meanwhile gets no copy, one deselected keeps its copy, a renewal asked is not forwarded")
		b := e.namespace(true)
		setTeam(c, "")
		versions := copyVersions(a, b, c)
		Expect(versions[b]).To(BeEmpty())
		cur := getCAT(cat)
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Annotations = map[string]string{tokensv1alpha1.AnnotationRenew: "1"}
		Expect(k8sClient.Patch(ctx, cur, patch)).To(Succeed())
		Eventually(func(g Gomega) {
			st := getCAT(cat).Status
			g.Expect(st.Namespaces).To(BeEquivalentTo(2))
			g.Expect(st.Written).To(BeEquivalentTo(1))
		}, 10*time.Second).Should(Succeed())
		Consistently(func() map[string]string { return copyVersions(a, b, c) }, 2*time.Second, 100*time.Millisecond).Should(Equal(versions))
		now := sourceOf(cat)
		Expect(now.Generation).To(Equal(source.Generation))
		Expect(now.Spec.Suspend).To(BeFalse())
		Expect(now.Annotations).NotTo(HaveKey(tokensv1alpha1.AnnotationRenew))
		Expect(e.fake.Calls()).To(Equal(calls))

		By("suspending it on the read-only manager: the source is not written")
		setCATSuspend(cat, true)
		Consistently(func() bool { return sourceOf(cat).Spec.Suspend }, 2*time.Second, 100*time.Millisecond).Should(BeFalse())

		By("deleting the source, as a sync from the active cluster would: it is not created again")
		Expect(k8sClient.Delete(ctx, sourceOf(cat))).To(Succeed())
		sourceGone := func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(source), &tokensv1alpha1.AccessToken{}))
		}
		Eventually(sourceGone, 10*time.Second).Should(BeTrue())
		Consistently(sourceGone, 2*time.Second, 100*time.Millisecond).Should(BeTrue())
		Eventually(func() string {
			c := meta.FindStatusCondition(getCAT(cat).Status.Conditions, tokensv1alpha1.ConditionReady)
			if c == nil {
				return ""
			}
			return c.Message
		}, 10*time.Second).Should(ContainSubstring("not created while work is held"))

		By("deleting the ClusterAccessToken: the finalizer goes, the manager deletes no copy and revokes nothing")
		Expect(k8sClient.Delete(ctx, getCAT(cat))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(cat), &tokensv1alpha1.ClusterAccessToken{}))
		}, 10*time.Second).Should(BeTrue())
		// The control plane of these specs runs no garbage collector: the
		// copies, still owned by the deleted ClusterAccessToken, stay as the
		// manager left them.
		Consistently(func() map[string]string { return copyVersions(a, b, c) }, 2*time.Second, 100*time.Millisecond).Should(Equal(versions))
		Expect(sharedToken(a)).To(Equal(first))
		Expect(e.fake.Valid(first)).To(BeTrue())
		Expect(e.fake.Calls()).To(Equal(calls))
	})
})
