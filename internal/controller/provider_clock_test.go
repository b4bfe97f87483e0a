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
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// skewedSample creates a sample against its provider's fake, whose clock (its
// Date header, the expiries it issues, the JWT times it checks) runs skew
// ahead of the manager's.
func skewedSample(file string, skew time.Duration) (*samples.Sample, *fakes.Base) {
	return sampleAgainstFake(file, skew, nil)
}

// sampleAgainstFake is skewedSample with the sample changed by change, when
// set, before it is created.
func sampleAgainstFake(file string, skew time.Duration, change func(*samples.Sample)) (*samples.Sample, *fakes.Base) {
	ns := newNamespace("clock-")
	i := slices.IndexFunc(samples.Providers, func(p samples.Provider) bool { return p.File == file })
	Expect(i).NotTo(BeNumerically("<", 0))
	fake, base := samples.Providers[i].NewFake()
	base.SetSkew(skew)
	s, err := samples.Load(file)
	Expect(err).NotTo(HaveOccurred())
	Expect(s.PointAt(serveFake(fake, base))).To(Succeed())
	s.FillCredentials()
	s.Place(ns, credentialsNamespace, "-"+ns)
	if s.ClusterTokenIssuer != nil {
		// Its credential Secrets share one namespace with every other spec's.
		for _, sec := range s.Secrets {
			old := sec.Name
			sec.Name += "-" + ns
			for i := range s.Spec().Credentials {
				if ref := s.Spec().Credentials[i].SecretKeyRef; ref != nil && ref.Name == old {
					ref.Name = sec.Name
				}
			}
		}
	}
	if change != nil {
		change(s)
	}
	for _, o := range s.Objects() {
		Expect(k8sClient.Create(ctx, o)).To(Succeed())
		if o.GetNamespace() == "" || o.GetNamespace() == credentialsNamespace {
			DeferCleanup(k8sClient.Delete, ctx, o)
		}
	}
	return s, base
}

// sampleIssuer returns the sample's issuer as it is now, and its metric labels.
func sampleIssuer(s *samples.Sample) (client.Object, *tokensv1alpha1.IssuerStatus, []string) {
	if s.ClusterTokenIssuer != nil {
		o := &tokensv1alpha1.ClusterTokenIssuer{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(s.ClusterTokenIssuer), o)).To(Succeed())
		return o, &o.Status, []string{string(tokensv1alpha1.ClusterTokenIssuerKind), "", o.Name}
	}
	o := &tokensv1alpha1.TokenIssuer{}
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(s.TokenIssuer), o)).To(Succeed())
	return o, &o.Status, []string{string(tokensv1alpha1.TokenIssuerKind), o.Namespace, o.Name}
}

// realExpiry is when the fake's last token really expires, on the manager's clock.
func realExpiry(base *fakes.Base, skew time.Duration) time.Time {
	issued := base.Issued()
	ExpectWithOffset(1, issued).NotTo(BeEmpty())
	return issued[len(issued)-1].ExpiresAt.Add(-skew)
}

// heldExpiry is the expiry the manager wrote into the AccessToken's Secret.
func heldExpiry(at *tokensv1alpha1.AccessToken) time.Time {
	sec, err := secretOf(at)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	t, err := time.Parse(time.RFC3339, sec.Annotations[secret.AnnotationExpiresAt])
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	ExpectWithOffset(1, get(at).Status.ExpiresAt.Time).To(BeTemporally("==", t))
	return t
}

var _ = Describe("a provider whose clock is off", func() {
	for _, skew := range []time.Duration{10 * time.Minute, -3 * time.Minute} {
		It("is measured and corrected for: "+skew.String(), func() {
			By("a GitHub App, whose JWT's iat and exp GitHub checks on its own clock")
			s, github := skewedSample("github-app.yaml", skew)
			at := waitReady(s.AccessToken)
			Expect(github.CallsBy(fakes.OutcomeUnauthorized)).To(BeNumerically("<=", 1),
				"at most the first JWT, signed before the offset was known, is refused")
			Expect(heldExpiry(at)).To(BeTemporally("<=", realExpiry(github, skew)))
			Expect(heldExpiry(at)).To(BeTemporally("~", realExpiry(github, skew), time.Second))
			Expect(at.Status.RenewalTime.Time).To(BeTemporally("<", realExpiry(github, skew)))

			obj, status, labels := sampleIssuer(s)
			Expect(testutil.ToFloat64(issuerClockOffset.WithLabelValues(labels...))).To(BeNumerically("~", skew.Seconds(), 1))
			Eventually(func(g Gomega) {
				obj, status, _ = sampleIssuer(s)
				c := meta.FindStatusCondition(status.Conditions, tokensv1alpha1.ConditionClockSkew)
				g.Expect(c).NotTo(BeNil())
				g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
				g.Expect(c.Reason).To(Equal(map[bool]string{true: tokensv1alpha1.ReasonClockAhead, false: tokensv1alpha1.ReasonClockBehind}[skew > 0]))
				g.Expect(c.Message).To(ContainSubstring("are corrected"))
			}, 10*time.Second).Should(Succeed())
			Eventually(func() []string { return eventReasons(obj.GetNamespace()) }, 10*time.Second).
				Should(ContainElement(BeElementOf(tokensv1alpha1.ReasonClockAhead, tokensv1alpha1.ReasonClockBehind)))

			By("renewing on time with a JWT accepted at once, the offset being known")
			refused := github.CallsBy(fakes.OutcomeUnauthorized)
			clk.SetTime(at.Status.RenewalTime.Add(time.Second))
			poke(at)
			Eventually(func() int { return github.CallsBy(fakes.OutcomeIssued) }, 10*time.Second).Should(Equal(2))
			Expect(github.CallsBy(fakes.OutcomeUnauthorized)).To(Equal(refused))
			Eventually(func() *metav1.Time { return get(at).Status.ExpiresAt }, 10*time.Second).
				Should(HaveField("Time", BeTemporally("~", realExpiry(github, skew), time.Second)))
			settle(at)
			Expect(heldExpiry(at)).To(BeTemporally("<=", realExpiry(github, skew)))
			Expect(heldExpiry(at)).To(BeTemporally("~", realExpiry(github, skew), time.Second))

			By("an absolute expiry in unix seconds, read on the provider's clock")
			s, cable := skewedSample("cable-transactions.yaml", skew)
			at = waitReady(s.AccessToken)
			Expect(heldExpiry(at)).To(BeTemporally("<=", realExpiry(cable, skew)))
			Expect(heldExpiry(at)).To(BeTemporally("~", realExpiry(cable, skew), time.Second))
		})
	}

	It("is only measured with --provider-clock-correction=false, and then the JWT is refused and the expiry is off by the skew", func() {
		mgr.stop()
		mgr = startManagerWith(func(c *Config) { c.ProviderClockCorrection = false })
		DeferCleanup(func() {
			mgr.stop()
			mgr = startManager()
		})
		for _, skew := range []time.Duration{10 * time.Minute, -3 * time.Minute} {
			s, github := skewedSample("github-app.yaml", skew)
			Eventually(func(g Gomega) {
				c := renewing(s.AccessToken)
				g.Expect(c).NotTo(BeNil())
				g.Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonUnauthorized))
			}, 10*time.Second).Should(Succeed())
			Expect(github.CallsBy(fakes.OutcomeIssued)).To(BeZero())
			_, _, labels := sampleIssuer(s)
			Expect(testutil.ToFloat64(issuerClockOffset.WithLabelValues(labels...))).To(BeNumerically("~", skew.Seconds(), 1))
			Eventually(func(g Gomega) {
				_, status, _ := sampleIssuer(s)
				c := meta.FindStatusCondition(status.Conditions, tokensv1alpha1.ConditionClockSkew)
				g.Expect(c).NotTo(BeNil())
				g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
				g.Expect(c.Message).To(ContainSubstring("--provider-clock-correction is off"))
			}, 10*time.Second).Should(Succeed())

			s, cable := skewedSample("cable-transactions.yaml", skew)
			at := waitReady(s.AccessToken)
			Expect(heldExpiry(at)).To(BeTemporally("~", realExpiry(cable, skew).Add(skew), time.Second),
				"without correction the provider's time is taken for the manager's")
			if skew > 0 {
				Expect(heldExpiry(at)).To(BeTemporally(">", realExpiry(cable, skew)), "the token is held past its real expiry")
			}
		}
	})
})
