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
	"encoding/json"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
)

// auditLines returns the audit trail the manager logged for the AccessToken
// namespace/name, each line's structured fields decoded.
func auditLines(namespace, name string) []map[string]string {
	var out []map[string]string
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, "\taudit\t") {
			continue
		}
		i := strings.Index(line, "{")
		if i < 0 {
			continue
		}
		fields := map[string]any{}
		if json.Unmarshal([]byte(line[i:]), &fields) != nil {
			continue
		}
		if fields["accessToken"] != namespace+"/"+name {
			continue
		}
		m := map[string]string{}
		for k, v := range fields {
			if s, ok := v.(string); ok {
				m[k] = s
			}
		}
		out = append(out, m)
	}
	return out
}

var _ = Describe("the audit trail", func() {
	It("has one line per mint and per revocation, naming tokens by fingerprint only", func() {
		s, fake := startSample("oauth2-client-credentials")
		at := waitReady(s.AccessToken)
		first := at.Status.TokenFingerprint
		trail := func() []map[string]string { return auditLines(at.Namespace, at.Name) }

		By("the first token")
		Eventually(trail, 5*time.Second).Should(HaveLen(1))
		minted := trail()[0]
		Expect(minted).To(And(HaveKeyWithValue("event", "Minted"), HaveKeyWithValue("fingerprint", first),
			HaveKeyWithValue("trigger", reasonNotIssued), HaveKeyWithValue("grant", "request"),
			HaveKeyWithValue("issuer", accessTokenIssuerKey(at)), HaveKeyWithValue("uid", string(at.UID)),
			HaveKeyWithValue("expiresAt", at.Status.ExpiresAt.UTC().Format(time.RFC3339))))
		Expect(minted).NotTo(HaveKey("replaced"))

		By("a renewal names the token it replaces")
		clk.SetTime(at.Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(func() int { return len(fake.Issued()) }, 10*time.Second).Should(Equal(2))
		settle(at)
		second := get(at).Status.TokenFingerprint
		Eventually(trail, 5*time.Second).Should(HaveLen(2))
		Expect(trail()[1]).To(And(HaveKeyWithValue("event", "Minted"), HaveKeyWithValue("fingerprint", second),
			HaveKeyWithValue("replaced", first), HaveKeyWithValue("trigger", "RenewalDue")))

		By("the replaced token's revocation after its grace period, and the current one's on deletion")
		clk.Step(5*time.Minute + time.Second)
		poke(at)
		Eventually(func() int { return fake.CallsBy(fakes.OutcomeRevoked) }, 10*time.Second).Should(Equal(1))
		Eventually(trail, 5*time.Second).Should(HaveLen(3))
		Expect(trail()[2]).To(And(HaveKeyWithValue("event", "Revocation"), HaveKeyWithValue("fingerprint", first),
			HaveKeyWithValue("trigger", revokeSuperseded), HaveKeyWithValue("outcome", "Revoked")))
		Expect(k8sClient.Delete(ctx, get(at))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), &tokensv1alpha1.AccessToken{}))
		}, 10*time.Second).Should(BeTrue())
		Eventually(trail, 5*time.Second).Should(HaveLen(4))
		Expect(trail()[3]).To(And(HaveKeyWithValue("fingerprint", second),
			HaveKeyWithValue("trigger", revokeDeletion), HaveKeyWithValue("outcome", "Revoked")))

		By("never a token's value")
		raw, err := json.Marshal(trail())
		Expect(err).NotTo(HaveOccurred())
		for _, t := range fake.Issued() {
			Expect(string(raw)).NotTo(ContainSubstring(t.Value))
		}
	})
})
