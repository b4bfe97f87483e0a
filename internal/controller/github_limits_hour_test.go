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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenmint/tokenmint/test/fakes"
)

var _ = Describe("an hour of GitHub secondary rate limits", func() {
	It("calls at most once per reset window, keeps the issuer Ready, serves the token while valid and renews once lifted", func() {
		s, server := startSampleFake("github-app")
		gh := server.(*fakes.GitHubApps)
		at := waitReady(s.AccessToken)
		Eventually(func() metav1.ConditionStatus { return sampleIssuerReady(s).Status }, 10*time.Second).Should(Equal(metav1.ConditionTrue))
		expires := at.Status.ExpiresAt.Time
		start := at.Status.RenewalTime.Time
		const window = 5 * time.Minute
		limitEnd := start.Add(time.Hour)
		gh.SetRateLimit(fakes.GitHubLimit{Secondary: true, Until: limitEnd, Window: window})

		By("stepping through the hour a minute at a time")
		calls := gh.Calls()
		var limitedAt []time.Time
		for t := start.Add(time.Second); !t.After(limitEnd.Add(window)); t = t.Add(time.Minute) {
			clk.SetTime(t)
			before := gh.CallsBy(fakes.OutcomeRateLimited)
			poke(at)
			settle(at)
			if gh.CallsBy(fakes.OutcomeRateLimited) > before {
				limitedAt = append(limitedAt, t)
			}
			Expect(gh.CallsBy(fakes.OutcomeRateLimited)-before).To(BeNumerically("<=", 1), "more than one call in a minute")
			Expect(sampleIssuerReady(s).Status).To(Equal(metav1.ConditionTrue), "the issuer left Ready under a rate limit")
			if t.Before(expires) {
				Expect(ready(at).Status).To(Equal(metav1.ConditionTrue), "the valid token was not served at %s", t)
			}
			if get(at).Status.FailedAttempts == 0 && gh.CallsBy(fakes.OutcomeIssued) > 1 {
				break
			}
		}
		for i := 1; i < len(limitedAt); i++ {
			Expect(limitedAt[i].Sub(limitedAt[i-1])).To(BeNumerically(">=", window), "two calls within one Retry-After window")
		}
		// One call at the renewal time and one after each window but the last.
		Expect(limitedAt).To(HaveLen(12))

		By("renewed by the first call after the limit, within a window of its end, and Ready again")
		cur := get(at)
		Expect(cur.Status.FailedAttempts).To(BeZero())
		Expect(cur.Status.IssuedAt.Time).To(BeTemporally(">=", limitEnd))
		Expect(cur.Status.IssuedAt.Time).To(BeTemporally("<=", limitEnd.Add(window)))
		Expect(gh.Calls() - calls).To(Equal(len(limitedAt) + 1))
		Expect(ready(at).Status).To(Equal(metav1.ConditionTrue))
	})
})
