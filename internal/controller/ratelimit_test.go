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
	"sort"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

var _ = Describe("an issuer's rate limit", func() {
	It("keeps 40 first issues at 2 calls a second on the manager's clock", func() {
		e := newEnvWith(func(s *tokensv1alpha1.IssuerSpec) {
			s.RateLimit = &tokensv1alpha1.RateLimit{Calls: 2, Burst: ptr.To[int32](2)}
		})
		ats := make([]*tokensv1alpha1.AccessToken, 40)
		for i := range ats {
			ats[i] = e.accessToken(fmt.Sprint("rated-", i))
		}
		By("the burst goes at once, then nothing until the clock moves")
		Eventually(e.fake.Calls, 20*time.Second).Should(Equal(2))
		Consistently(e.fake.Calls, 2*time.Second).Should(Equal(2))

		By("each half second of the manager's clock lets one more call through")
		for i := 0; e.fake.Calls() < 40 && i < 200; i++ {
			before := e.fake.Calls()
			clk.Step(500 * time.Millisecond)
			Eventually(func() bool { n := e.fake.Calls(); return n > before || n == 40 }, 20*time.Second).Should(BeTrue())
		}
		Expect(e.fake.Calls()).To(Equal(40))

		By("no window of the provider's log holds more than the bucket allows")
		var times []time.Time
		for _, t := range e.fake.Issued() {
			times = append(times, t.IssuedAt)
		}
		Expect(times).To(HaveLen(40))
		sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
		for i := range times {
			// At most burst + rate × elapsed calls from the first on.
			allowed := 2 + int(2*times[i].Sub(times[0]).Seconds())
			Expect(i+1).To(BeNumerically("<=", allowed), "call %d at %s after the first", i+1, times[i].Sub(times[0]))
		}
		Expect(times[39].Sub(times[0])).To(BeNumerically(">=", 19*time.Second))

		By("every AccessToken is Ready")
		for _, at := range ats {
			Eventually(func() metav1.ConditionStatus {
				if c := ready(at); c != nil {
					return c.Status
				}
				return ""
			}, 20*time.Second).Should(Equal(metav1.ConditionTrue), at.Name)
		}
	})
})
