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
	"bytes"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// metricsPage is the manager's metrics as Prometheus scrapes them.
func metricsPage(g Gomega) string {
	var page bytes.Buffer
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		_, err := expfmt.MetricFamilyToText(&page, f)
		g.Expect(err).NotTo(HaveOccurred())
	}
	return page.String()
}

var _ = Describe("a token whose endpoint reports no expiry", func() {
	// paisr is the Paisr sample, whose API reports no expiry, with the
	// AccessToken's maxAge and the issuer's defaultLifetime as given.
	paisr := func(maxAge, defaultLifetime *tokensv1alpha1.Duration) (*tokensv1alpha1.AccessToken, *fakes.Base) {
		s, fake := sampleAgainstFake("paisr-invoicing.yaml", 0, func(s *samples.Sample) {
			s.AccessToken.Spec.MaxAge = maxAge
			s.Spec().DefaultLifetime = defaultLifetime
		})
		return waitReady(s.AccessToken), fake
	}
	hours := func(h int) *tokensv1alpha1.Duration {
		return &tokensv1alpha1.Duration{Duration: time.Duration(h) * time.Hour}
	}

	It("lives the issuer's defaultLifetime, which maxAge can only shorten", func() {
		at, _ := paisr(nil, hours(2))
		Expect(at.Status.ExpiresAt.Time).To(BeTemporally("==", at.Status.IssuedAt.Add(2*time.Hour)))
		Expect(heldExpiry(at)).To(BeTemporally("==", at.Status.IssuedAt.Add(2*time.Hour)))
		Expect(at.Status.RenewalTime.Time).To(BeTemporally("<", at.Status.ExpiresAt.Time))
		Expect(at.Status.RenewalTime.Time).To(BeTemporally(">", at.Status.IssuedAt.Add(time.Hour)))
		Expect(meta.FindStatusCondition(at.Status.Conditions, tokensv1alpha1.ConditionExpiryUnknown)).To(BeNil())

		shorter, _ := paisr(&tokensv1alpha1.Duration{Duration: 30 * time.Minute}, hours(2))
		Expect(shorter.Status.RenewalTime.Time).To(BeTemporally("<=", shorter.Status.IssuedAt.Add(30*time.Minute)))

		longer, _ := paisr(hours(5), hours(2))
		Expect(longer.Status.RenewalTime.Time).To(BeTemporally("<", longer.Status.IssuedAt.Add(2*time.Hour)),
			"a maxAge longer than the issuer's defaultLifetime does not lengthen it")
	})

	It("with neither defaultLifetime nor maxAge stays Ready and says ExpiryUnknown, in a condition, an event and a metric", func() {
		at, _ := paisr(nil, nil)
		Expect(at.Status.ExpiresAt).To(BeNil())
		Expect(ready(at).Status).To(Equal(metav1.ConditionTrue))
		Eventually(func(g Gomega) {
			c := meta.FindStatusCondition(get(at).Status.Conditions, tokensv1alpha1.ConditionExpiryUnknown)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonNoExpiry))
			g.Expect(c.Message).To(ContainSubstring("spec.defaultLifetime"))
		}, 10*time.Second).Should(Succeed())
		Eventually(func() []string { return eventReasons(at.Namespace) }, 10*time.Second).Should(ContainElement(tokensv1alpha1.ReasonNoExpiry))
		series := `tokenmint_accesstoken_expiry_unknown{issuer_kind="TokenIssuer",issuer_name="` + at.Spec.IssuerRef.Name +
			`",name="` + at.Name + `",namespace="` + at.Namespace + `"} 1`
		Eventually(func(g Gomega) { g.Expect(metricsPage(g)).To(ContainSubstring(series)) }, 10*time.Second).Should(Succeed())

		By("clearing all three once the AccessToken sets maxAge")
		cur := get(at)
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Spec.MaxAge = hours(720)
		Expect(k8sClient.Patch(ctx, cur, patch)).To(Succeed())
		Eventually(func() *metav1.Condition {
			return meta.FindStatusCondition(get(at).Status.Conditions, tokensv1alpha1.ConditionExpiryUnknown)
		}, 10*time.Second).Should(BeNil())
		Eventually(func(g Gomega) { g.Expect(metricsPage(g)).NotTo(ContainSubstring(series)) }, 10*time.Second).Should(Succeed())
		Expect(get(at).Status.RenewalTime).NotTo(BeNil())
	})
})
