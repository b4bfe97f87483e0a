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
	"net/http"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// startSampleFake is startSample that also hands back the provider's fake, for
// specs that drive it (rate limits, scopes).
func startSampleFake(name string, change ...func(*samples.Sample)) (*samples.Sample, fakes.Server) {
	var server fakes.Server
	for _, p := range samples.Providers {
		if p.Name == name {
			newFake := p.NewFake
			p.NewFake = func() (fakes.Server, *fakes.Base) {
				f, base := newFake()
				server = f
				return f, base
			}
			s, _ := startSampleFrom(p, change...)
			return s, server
		}
	}
	Fail("no sample " + name)
	return nil, nil
}

// startSampleFrom places provider p's sample in a new namespace, served by its fake.
func startSampleFrom(p samples.Provider, change ...func(*samples.Sample)) (*samples.Sample, *fakes.Base) {
	ns := "f-" + rand.String(6)
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	fake, base := p.NewFake()
	s, err := samples.Load(p.File)
	Expect(err).NotTo(HaveOccurred())
	Expect(s.PointAt(serveFake(fake, base))).To(Succeed())
	s.FillCredentials()
	s.Place(ns, credentialsNamespace, "-"+ns)
	for _, c := range change {
		c(s)
	}
	for _, o := range s.Objects() {
		Expect(k8sClient.Create(ctx, o)).To(Succeed())
		if o.GetNamespace() == "" || o.GetNamespace() == credentialsNamespace {
			DeferCleanup(k8sClient.Delete, ctx, o)
		}
	}
	return s, base
}

// sampleIssuerReady is the Ready condition of the sample's issuer.
func sampleIssuerReady(s *samples.Sample) metav1.Condition {
	var obj client.Object = s.ClusterTokenIssuer
	if s.TokenIssuer != nil {
		obj = s.TokenIssuer
	}
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	var conds []metav1.Condition
	switch o := obj.(type) {
	case *tokensv1alpha1.TokenIssuer:
		conds = o.Status.Conditions
	case *tokensv1alpha1.ClusterTokenIssuer:
		conds = o.Status.Conditions
	}
	if c := meta.FindStatusCondition(conds, tokensv1alpha1.ConditionReady); c != nil {
		return *c
	}
	return metav1.Condition{}
}

var _ = Describe("failure rules", func() {
	It("under GitHub secondary limits call at most once per window, keep the issuer Ready, and renew before expiry", func() {
		s, server := startSampleFake("github-app")
		gh := server.(*fakes.GitHubApps)
		at := waitReady(s.AccessToken)
		Eventually(func() metav1.ConditionStatus { return sampleIssuerReady(s).Status }, 10*time.Second).Should(Equal(metav1.ConditionTrue))
		expires := at.Status.ExpiresAt.Time
		start := at.Status.RenewalTime.Time
		const window = 5 * time.Minute
		limitEnd := start.Add(3*window + 30*time.Second)
		Expect(limitEnd.Before(expires)).To(BeTrue(), "the spec needs the limit to end before the token expires")
		gh.SetRateLimit(fakes.GitHubLimit{Secondary: true, Until: limitEnd, Window: window})

		By("stepping through the limit a minute at a time")
		calls := gh.Calls()
		limitedAt := []time.Time{}
		for t := start.Add(time.Second); !t.After(limitEnd.Add(window)); t = t.Add(time.Minute) {
			clk.SetTime(t)
			before := gh.CallsBy(fakes.OutcomeRateLimited)
			poke(at)
			settle(at)
			if gh.CallsBy(fakes.OutcomeRateLimited) > before {
				limitedAt = append(limitedAt, t)
			}
			Expect(sampleIssuerReady(s).Status).To(Equal(metav1.ConditionTrue), "the issuer left Ready under a rate limit")
			Expect(ready(at).Status).To(Equal(metav1.ConditionTrue), "the token was served out while still valid")
			if get(at).Status.FailedAttempts == 0 && gh.CallsBy(fakes.OutcomeIssued) > 1 {
				break
			}
		}
		for i := 1; i < len(limitedAt); i++ {
			Expect(limitedAt[i].Sub(limitedAt[i-1])).To(BeNumerically(">=", window), "two calls within one Retry-After window")
		}
		Expect(limitedAt).To(HaveLen(4), "one call per window: at the renewal time and after each of three windows")
		Expect(renewing(at).Reason).NotTo(Equal(tokensv1alpha1.ReasonUnauthorized))

		By("renewing as soon as the limit is lifted, before the old token expires")
		cur := get(at)
		Expect(cur.Status.FailedAttempts).To(BeZero())
		Expect(cur.Status.IssuedAt.Time).To(BeTemporally("<=", limitEnd.Add(window)))
		Expect(cur.Status.IssuedAt.Time.Before(expires)).To(BeTrue())
		Expect(gh.Calls() - calls).To(Equal(len(limitedAt) + 1))
	})

	It("after invalid_grant on a refresh, make exactly one fresh first request and never offer the refresh token again", func() {
		ns := "f-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		fake := fakes.NewOAuth2Server("refresh-client", canaryAuthToken)
		fake.Users["svc"] = "svc-password"
		fake.Lifetime = time.Hour
		url := serveFake(fake, &fake.Base) + fakes.OAuth2TokenPath
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "oauth", Namespace: ns},
			StringData: map[string]string{"clientID": "refresh-client", "clientSecret": canaryAuthToken, "username": "svc", "password": "svc-password"}})).To(Succeed())
		cred := func(name, key string) tokensv1alpha1.Credential {
			return tokensv1alpha1.Credential{Name: name, SecretKeyRef: &tokensv1alpha1.SecretKeySelector{Name: "oauth", Key: key}}
		}
		form := func(fields ...tokensv1alpha1.FormField) *tokensv1alpha1.BodySpec {
			return &tokensv1alpha1.BodySpec{Form: fields}
		}
		val := func(s string) tokensv1alpha1.ValueSource { return tokensv1alpha1.ValueSource{Value: &s} }
		spec := tokensv1alpha1.IssuerSpec{
			Credentials: []tokensv1alpha1.Credential{cred("client-id", "clientID"), cred("client-secret", "clientSecret"),
				cred("username", "username"), cred("password", "password")},
			Request: tokensv1alpha1.RequestSpec{URL: url, Auth: &tokensv1alpha1.AuthSpec{Basic: &tokensv1alpha1.BasicAuth{
				Username: tokensv1alpha1.ValueSource{Credential: "client-id"}, Password: tokensv1alpha1.ValueSource{Credential: "client-secret"}}},
				Body: form(tokensv1alpha1.FormField{Name: "grant_type", ValueSource: val("password")},
					tokensv1alpha1.FormField{Name: "username", ValueSource: tokensv1alpha1.ValueSource{Credential: "username"}},
					tokensv1alpha1.FormField{Name: "password", ValueSource: tokensv1alpha1.ValueSource{Credential: "password"}})},
			Refresh: &tokensv1alpha1.RequestSpec{Body: form(tokensv1alpha1.FormField{Name: "grant_type", ValueSource: val("refresh_token")},
				tokensv1alpha1.FormField{Name: "refresh_token", ValueSource: tokensv1alpha1.ValueSource{Issued: tokensv1alpha1.IssuedRefreshToken}})},
			Response: tokensv1alpha1.ResponseSpec{Token: "access_token",
				Expiry:       &tokensv1alpha1.ExpirySpec{Path: "expires_in", Format: tokensv1alpha1.ExpiryRelativeSeconds},
				Error:        &tokensv1alpha1.ErrorSpec{Code: "error", Message: "error_description"},
				RefreshToken: &tokensv1alpha1.RefreshTokenSpec{Path: "refresh_token"},
				Failures:     &tokensv1alpha1.FailureSpec{Preset: tokensv1alpha1.FailurePresetOAuth2}},
			AllowInsecureHTTP: true,
		}
		Expect(k8sClient.Create(ctx, &tokensv1alpha1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "oauth", Namespace: ns}, Spec: spec})).To(Succeed())
		at := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Name: "refreshing", Namespace: ns},
			Spec: tokensv1alpha1.AccessTokenSpec{IssuerRef: tokensv1alpha1.IssuerReference{Name: "oauth"},
				Secret: tokensv1alpha1.SecretTemplate{Name: "refreshing-token"}}}
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		at = waitReady(at)
		Expect(fake.CallsBy(fakes.OutcomeIssued)).To(Equal(1))

		renew := func() {
			cur := get(at)
			clk.SetTime(cur.Status.RenewalTime.Add(time.Second))
			poke(at)
			settle(at)
		}
		By("refreshing while the refresh token is good")
		renew()
		Expect(fake.CallsBy(fakes.OutcomeRefreshed)).To(Equal(1))
		Expect(fake.CallsBy(fakes.OutcomeIssued)).To(Equal(1))

		By("the grant is revoked: one refused refresh, one password grant")
		fake.RevokeRefreshTokens()
		renew()
		Expect(fake.CallsBy(fakes.OutcomeRejected)).To(Equal(1))
		Expect(fake.CallsBy(fakes.OutcomeIssued)).To(Equal(2))
		Expect(get(at).Status.FailedAttempts).To(BeZero())
		renew()
		Expect(fake.CallsBy(fakes.OutcomeRefreshed)).To(Equal(2), "the new grant's refresh token is used")

		By("revoked again, and the password grant fails once: the dead refresh token is never offered again")
		fake.RevokeRefreshTokens()
		var failPassword atomic.Int32
		failPassword.Store(1)
		fake.SetFaultHook(func(r *http.Request) *fakes.Fault {
			if r.ParseForm() == nil && r.PostForm.Get("grant_type") == "password" && failPassword.Add(-1) >= 0 {
				return &fakes.Fault{Status: http.StatusServiceUnavailable, Body: `{"error":"temporarily_unavailable"}`}
			}
			return nil
		})
		renew()
		Expect(fake.CallsBy(fakes.OutcomeRejected)).To(Equal(2))
		Expect(fake.CallsBy(fakes.OutcomeFault)).To(Equal(1))
		Expect(get(at).Status.FailedAttempts).To(Equal(int32(1)))
		clk.Step(DefaultMinMintInterval) // the retry, once the floor between mints has passed
		poke(at)
		settle(at)
		Expect(fake.CallsBy(fakes.OutcomeRejected)).To(Equal(2), "the rejected refresh token was offered again")
		Expect(fake.CallsBy(fakes.OutcomeIssued)).To(Equal(3))
		Expect(get(at).Status.FailedAttempts).To(BeZero())
	})

	It("after the invoicing API's success: false scope not allowed, call once and then not until the AccessToken changes", func() {
		s, server := startSampleFake("paisr-invoicing", func(s *samples.Sample) {
			s.AccessToken.Spec.Parameters["scopes"] = apiextensionsv1.JSON{Raw: []byte(`["invoices.write"]`)}
		})
		invoicing := server.(*fakes.InvoicingAPI)
		invoicing.AllowedScopes = []string{"invoices.read"}
		at := s.AccessToken
		Eventually(func() string {
			if c := renewing(at); c != nil {
				return c.Reason
			}
			return ""
		}, 10*time.Second).Should(Equal(tokensv1alpha1.ReasonPermanentFailure))
		settle(at)
		Expect(invoicing.Calls()).To(Equal(1))
		c := renewing(at)
		Expect(c.Message).To(ContainSubstring("scope not allowed"))
		Expect(c.Message).To(ContainSubstring("until the AccessToken, its issuer or a credential changes"))
		Expect(c.Message).NotTo(ContainSubstring(samples.Credential("paisr-api-key", "apiKey")))
		failedAt := get(at).Status.LastFailureTime.Time
		Expect(get(at).Status.RenewalTime.Time).To(BeTemporally("~", failedAt.Add(time.Hour), time.Second))
		Expect(sampleIssuerReady(s).Status).To(Equal(metav1.ConditionTrue), "one AccessToken's scope made the issuer look broken")

		By("no call for the next 59 minutes, however often it is looked at")
		for _, d := range []time.Duration{time.Minute, 10 * time.Minute, 30 * time.Minute, 59 * time.Minute} {
			clk.SetTime(failedAt.Add(d))
			poke(at)
			settle(at)
		}
		Expect(invoicing.Calls()).To(Equal(1))

		By("a changed AccessToken is tried at once")
		cur := get(at)
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Spec.Parameters["scopes"] = apiextensionsv1.JSON{Raw: []byte(`["invoices.read"]`)}
		Expect(k8sClient.Patch(ctx, cur, patch)).To(Succeed())
		waitReady(at)
		Expect(invoicing.Calls()).To(Equal(2))
	})
})
