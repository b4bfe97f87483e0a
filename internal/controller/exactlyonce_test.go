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
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Over many renewal cycles, with resyncs, metadata updates, manager restarts
// and outside edits and deletions of the Secret in between, exactly one token is
// minted per scheduled renewal.
var _ = Describe("exactly once", func() {
	It("mints one token per scheduled renewal, whatever happens in between", func() {
		e := newEnv()
		at := waitReady(e.accessToken("once"))
		minted := 1
		lastIssued := func() string { i := e.fake.Issued(); return i[len(i)-1].Value }
		secretHoldsLast := func(g Gomega) {
			s, err := secretOf(at)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(string(s.Data["token"])).To(Equal(lastIssued()))
		}

		for cycle := 1; cycle <= 12; cycle++ {
			By(fmt.Sprintf("cycle %d", cycle))
			switch cycle % 4 {
			case 0:
				mgr.stop()
				mgr = startManager()
				poke(at)
			case 1:
				s, err := secretOf(at)
				Expect(err).NotTo(HaveOccurred())
				s.Data["token"] = []byte("edited by someone")
				Expect(k8sClient.Update(ctx, s)).To(Succeed())
			case 2:
				s, err := secretOf(at)
				Expect(err).NotTo(HaveOccurred())
				Expect(k8sClient.Delete(ctx, s)).To(Succeed())
			case 3:
				for i := range 3 {
					cur := get(at)
					patch := client.MergeFrom(cur.DeepCopy())
					cur.Labels = map[string]string{"cycle": fmt.Sprint(cycle, "-", i)}
					Expect(k8sClient.Patch(ctx, cur, patch)).To(Succeed())
					poke(at)
				}
			}
			Eventually(secretHoldsLast, 10*time.Second).Should(Succeed())
			settle(at)
			Expect(e.fake.Issued()).To(HaveLen(minted), "minted outside a scheduled renewal")

			clk.SetTime(get(at).Status.RenewalTime.Add(time.Second))
			poke(at)
			minted++
			Eventually(func() int { return len(e.fake.Issued()) }, 10*time.Second).Should(Equal(minted))
			Eventually(secretHoldsLast, 10*time.Second).Should(Succeed())
		}
		settle(at)
		Expect(e.fake.Issued()).To(HaveLen(minted))
	})

	It("rebuilds a status write lost after a mint from the Secret, minting nothing", func() {
		e := newEnv()
		at := waitReady(e.accessToken("lost"))
		want := at.Status

		By("putting status back to before the token was issued, as a lost write would leave it")
		cur := get(at)
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Status.TokenFingerprint = "hmac-sha256:00000000000000000000000000000000"
		cur.Status.IssuedAt.Time = cur.Status.IssuedAt.Add(-time.Hour)
		cur.Status.InputsHash = "stale"
		Expect(k8sClient.Status().Patch(ctx, cur, patch)).To(Succeed())
		poke(at)
		Eventually(func() string { return get(at).Status.TokenFingerprint }, 10*time.Second).Should(Equal(want.TokenFingerprint))
		settle(at)
		got := get(at).Status
		Expect(got.IssuedAt.Equal(want.IssuedAt)).To(BeTrue())
		Expect(got.ExpiresAt.Equal(want.ExpiresAt)).To(BeTrue())
		Expect(got.InputsHash).To(Equal(want.InputsHash))
		Expect(e.fake.Issued()).To(HaveLen(1))
	})
})
