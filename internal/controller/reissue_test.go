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
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

var _ = Describe("an issuer's reissue window", func() {
	It("spreads the re-issue of 50 tokens after a credential change over the window, none before its slot and none expired", func() {
		const n = 50
		const window = 30 * time.Minute
		e := newEnvWith(func(s *tokensv1alpha1.IssuerSpec) {
			s.ReissueWindow = &tokensv1alpha1.Duration{Duration: window}
		})
		ats := make([]*tokensv1alpha1.AccessToken, n)
		for i := range ats {
			ats[i] = e.accessToken(fmt.Sprint("spread-", i))
		}
		list := func() map[string]tokensv1alpha1.AccessToken {
			l := &tokensv1alpha1.AccessTokenList{}
			ExpectWithOffset(1, k8sClient.List(ctx, l, client.InNamespace(e.ns))).To(Succeed())
			out := map[string]tokensv1alpha1.AccessToken{}
			for _, at := range l.Items {
				out[at.Name] = at
			}
			return out
		}
		Eventually(func(g Gomega) {
			for _, at := range list() {
				g.Expect(meta.IsStatusConditionTrue(at.Status.Conditions, tokensv1alpha1.ConditionReady)).To(BeTrue(), at.Name)
			}
			g.Expect(list()).To(HaveLen(n))
		}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
		Expect(e.fake.Calls()).To(Equal(n))

		By("twenty minutes on, the credential Secret changes")
		clk.Step(20 * time.Minute)
		before := list()
		cred := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "cable-auth"}, cred)).To(Succeed())
		cred.StringData = map[string]string{"rotated": "1"}
		Expect(k8sClient.Update(ctx, cred)).To(Succeed())
		rotated := clk.Now()

		By("every AccessToken records its slot, or its earlier renewal, and nothing is minted yet")
		due := map[string]time.Time{}
		Eventually(func(g Gomega) {
			for name, at := range list() {
				g.Expect(at.Status.ReissueAfter).NotTo(BeNil(), name)
				due[name] = at.Status.ReissueAfter.Time
			}
		}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
		renewedFirst := 0
		for name, t := range due {
			slot := rotated.Truncate(time.Second).Add(time.Second + reissueOffset(e.ns, name, window))
			renew := before[name].Status.RenewalTime.Time
			want := slot
			if renew.Before(slot) {
				want, renewedFirst = renew, renewedFirst+1
			}
			Expect(t).To(BeTemporally("==", want), name)
			Expect(t).To(BeTemporally(">", rotated), name)
			Expect(t).To(BeTemporally("<=", rotated.Add(window+time.Second)), name)
		}
		// Renewals come 30 to 40 minutes after issue: some tokens are renewed
		// before their slot, the others wait for it.
		Expect(renewedFirst).To(BeNumerically(">", 0))
		Expect(renewedFirst).To(BeNumerically("<", n))
		Consistently(e.fake.Calls, 2*time.Second).Should(Equal(n))

		By("minute by minute, each token is re-issued at its time, not before, and none expires")
		reissued := map[string]time.Time{}
		perStep := 0
		for step := 0; len(reissued) < n && step < 40; step++ {
			clk.Step(time.Minute)
			now := clk.Now()
			var poked []*tokensv1alpha1.AccessToken
			for name, at := range list() {
				Expect(at.Status.ExpiresAt.After(now)).To(BeTrue(), "%s expired at %s", name, at.Status.ExpiresAt)
				if _, done := reissued[name]; done {
					continue
				}
				if at.Status.InputsHash != before[name].Status.InputsHash {
					Fail(fmt.Sprintf("%s was re-issued before its time %s (now %s)", name, due[name], now))
				}
				if !due[name].After(now) {
					cur := at
					poke(&cur)
					poked = append(poked, &cur)
				}
			}
			perStep = max(perStep, len(poked))
			for _, at := range poked {
				Eventually(func(g Gomega) {
					cur := get(at)
					g.Expect(cur.Status.InputsHash).NotTo(Equal(before[at.Name].Status.InputsHash), at.Name)
					g.Expect(cur.Status.ReissueAfter).To(BeNil(), at.Name)
					reissued[at.Name] = cur.Status.IssuedAt.Time
				}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
			}
		}
		Expect(reissued).To(HaveLen(n))
		for name, t := range reissued {
			Expect(t).NotTo(BeTemporally("<", due[name]), name)
			Expect(t).To(BeTemporally("<", due[name].Add(time.Minute)), name)
			Expect(t).To(BeTemporally("<=", rotated.Add(window+time.Minute)), name)
		}
		Expect(e.fake.Calls()).To(Equal(2 * n))
		// All at once would be 50 in one step; spread over 30 steps, a few each.
		Expect(perStep).To(BeNumerically("<=", 10))
		for _, at := range list() {
			Expect(meta.IsStatusConditionTrue(at.Status.Conditions, tokensv1alpha1.ConditionReady)).To(BeTrue(), at.Name)
		}
	})

	It("re-issues at once when the AccessToken itself changes, and leaves alone a change of the window", func() {
		e := newEnvWith(func(s *tokensv1alpha1.IssuerSpec) {
			s.ReissueWindow = &tokensv1alpha1.Duration{Duration: time.Hour}
		})
		at := waitReady(e.accessToken("own-change"))
		first := at.Status.InputsHash

		By("the window's change re-issues nothing")
		ti := &tokensv1alpha1.TokenIssuer{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "cable"}, ti)).To(Succeed())
		ti.Spec.ReissueWindow = &tokensv1alpha1.Duration{Duration: 2 * time.Hour}
		Expect(k8sClient.Update(ctx, ti)).To(Succeed())
		poke(at)
		settle(at)
		Expect(get(at).Status.InputsHash).To(Equal(first))
		Expect(get(at).Status.ReissueAfter).To(BeNil())
		Expect(e.fake.Calls()).To(Equal(1))

		By("the AccessToken's own parameters change: a new token at once")
		clk.Step(time.Minute) // past the least interval between two mints
		cur := get(at)
		cur.Spec.Parameters = map[string]apiextensionsv1.JSON{"lifetimeSeconds": *jsonValue(1800)}
		Expect(k8sClient.Update(ctx, cur)).To(Succeed())
		Eventually(e.fake.Calls, 20*time.Second).Should(Equal(2))
		Eventually(func() string { return get(at).Status.InputsHash }, 20*time.Second).ShouldNot(Equal(first))
		Expect(get(at).Status.ReissueAfter).To(BeNil())
	})
})
