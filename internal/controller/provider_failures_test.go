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
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
)

// tokenIssuerReady is the Ready condition of the TokenIssuer ns/name.
func tokenIssuerReady(ns, name string) metav1.Condition {
	ti := &tokensv1alpha1.TokenIssuer{}
	ExpectWithOffset(1, k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, ti)).To(Succeed())
	if c := meta.FindStatusCondition(ti.Status.Conditions, tokensv1alpha1.ConditionReady); c != nil {
		return *c
	}
	return metav1.Condition{}
}

var _ = Describe("providers' documented failures", func() {
	DescribeTable("on a renewal, as the issuer's preset reads them",
		func(preset tokensv1alpha1.FailurePreset, fault *fakes.Fault, wantReason string, wantWait types.GomegaMatcher, issuerStaysReady, permanent bool) {
			e := newEnvWith(func(s *tokensv1alpha1.IssuerSpec) {
				s.Response.Failures = &tokensv1alpha1.FailureSpec{Preset: preset}
			})
			at := waitReady(e.accessToken("renewed"))
			Eventually(func() metav1.ConditionStatus { return tokenIssuerReady(e.ns, "cable").Status }, 10*time.Second).Should(Equal(metav1.ConditionTrue))
			e.fake.SetFaultHook(func(*http.Request) *fakes.Fault { return fault })
			failAt := at.Status.RenewalTime.Add(time.Second)
			clk.SetTime(failAt)
			poke(at)
			settle(at)

			By("one call, classified as the provider means it")
			Expect(e.fake.CallsBy(fakes.OutcomeFault)).To(Equal(1))
			cur := get(at)
			c := meta.FindStatusCondition(cur.Status.Conditions, tokensv1alpha1.ConditionRenewing)
			Expect(c).NotTo(BeNil())
			Expect(c.Status).To(Equal(metav1.ConditionFalse))
			Expect(c.Reason).To(Equal(wantReason), c.Message)
			Expect(c.Message).NotTo(ContainSubstring(canaryAuthToken))
			Expect(cur.Status.RenewalTime.Sub(failAt)).To(wantWait)
			Expect(ready(at).Status).To(Equal(metav1.ConditionTrue), "the current token is still valid")
			if issuerStaysReady {
				Expect(tokenIssuerReady(e.ns, "cable").Status).To(Equal(metav1.ConditionTrue), "the issuer left Ready")
			}

			By("no other call before the wait is over")
			quiet := cur.Status.RenewalTime.Time
			if cur.Status.ExpiresAt.Before(&metav1.Time{Time: quiet}) {
				quiet = cur.Status.ExpiresAt.Time
			}
			clk.SetTime(quiet.Add(-time.Second))
			poke(at)
			settle(at)
			Expect(e.fake.CallsBy(fakes.OutcomeFault)).To(Equal(1))
			Expect(e.fake.CallsBy(fakes.OutcomeIssued)).To(Equal(1))
			if permanent {
				return
			}

			By("the provider answers again: the retry renews")
			e.fake.SetFaultHook(nil)
			retry := cur.Status.RenewalTime.Time
			if floor := failAt.Add(DefaultMinMintInterval); retry.Before(floor) {
				retry = floor // the least interval between two mints of one token
			}
			clk.SetTime(retry.Add(time.Second))
			poke(at)
			settle(at)
			Expect(e.fake.CallsBy(fakes.OutcomeIssued)).To(Equal(2))
			Expect(get(at).Status.FailedAttempts).To(BeZero())
			if issuerStaysReady {
				Expect(tokenIssuerReady(e.ns, "cable").Status).To(Equal(metav1.ConditionTrue))
			}
		},
		Entry("AWS throttling in XML (400, ErrorResponse.Error.Code Throttling): rate limited with backoff, the issuer stays Ready",
			tokensv1alpha1.FailurePresetAWS, fakes.AWSThrottlingXML(), tokensv1alpha1.ReasonRateLimited,
			And(BeNumerically(">", 0), BeNumerically("<", 10*time.Minute)), true, false),
		Entry("AWS throttling in JSON (400, __type ThrottlingException): rate limited with backoff, the issuer stays Ready",
			tokensv1alpha1.FailurePresetAWS, fakes.AWSThrottlingJSON(), tokensv1alpha1.ReasonRateLimited,
			And(BeNumerically(">", 0), BeNumerically("<", 10*time.Minute)), true, false),
		Entry("Vault 429 (a rate limit quota) with Retry-After: rate limited until then, the issuer stays Ready",
			tokensv1alpha1.FailurePresetVault, fakes.VaultErrors(http.StatusTooManyRequests, 45*time.Second, "request path \"auth/jwt/login\": rate limit quota exceeded"),
			tokensv1alpha1.ReasonRateLimited, BeNumerically("~", 44*time.Second, 2*time.Second), true, false),
		Entry("Vault 503 (sealed): retried with backoff",
			tokensv1alpha1.FailurePresetVault, fakes.VaultErrors(http.StatusServiceUnavailable, 0, "Vault is sealed"),
			tokensv1alpha1.ReasonEndpointError, And(BeNumerically(">", 0), BeNumerically("<", 10*time.Minute)), false, false),
		Entry("Vault 403 permission denied: permanent, re-checked hourly, the issuer stays Ready",
			tokensv1alpha1.FailurePresetVault, fakes.VaultErrors(http.StatusForbidden, 0, "permission denied"),
			tokensv1alpha1.ReasonPermanentFailure, BeNumerically("~", time.Hour, 2*time.Second), true, true),
	)

	It("after OAuth2 invalid_client, call once, mark the issuer Unauthorized and wait for a change", func() {
		ns := "f-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		fake := fakes.NewOAuth2Server("cc-client", canaryAuthToken)
		fake.Lifetime = time.Hour
		url := serveFake(fake, &fake.Base) + fakes.OAuth2TokenPath
		creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "oauth", Namespace: ns},
			StringData: map[string]string{"clientID": "cc-client", "clientSecret": canaryAuthToken}}
		Expect(k8sClient.Create(ctx, creds)).To(Succeed())
		cred := func(name, key string) tokensv1alpha1.Credential {
			return tokensv1alpha1.Credential{Name: name, SecretKeyRef: &tokensv1alpha1.SecretKeySelector{Name: "oauth", Key: key}}
		}
		grant := "client_credentials"
		spec := tokensv1alpha1.IssuerSpec{
			Credentials: []tokensv1alpha1.Credential{cred("client-id", "clientID"), cred("client-secret", "clientSecret")},
			Request: tokensv1alpha1.RequestSpec{URL: url, Auth: &tokensv1alpha1.AuthSpec{Basic: &tokensv1alpha1.BasicAuth{
				Username: tokensv1alpha1.ValueSource{Credential: "client-id"}, Password: tokensv1alpha1.ValueSource{Credential: "client-secret"}}},
				Body: &tokensv1alpha1.BodySpec{Form: []tokensv1alpha1.FormField{{Name: "grant_type", ValueSource: tokensv1alpha1.ValueSource{Value: &grant}}}}},
			Response: tokensv1alpha1.ResponseSpec{Token: "access_token",
				Expiry:   &tokensv1alpha1.ExpirySpec{Path: "expires_in", Format: tokensv1alpha1.ExpiryRelativeSeconds},
				Error:    &tokensv1alpha1.ErrorSpec{Code: "error", Message: "error_description"},
				Failures: &tokensv1alpha1.FailureSpec{Preset: tokensv1alpha1.FailurePresetOAuth2}},
			AllowInsecureHTTP: true,
		}
		Expect(k8sClient.Create(ctx, &tokensv1alpha1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "oauth", Namespace: ns}, Spec: spec})).To(Succeed())
		at := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Name: "cc", Namespace: ns},
			Spec: tokensv1alpha1.AccessTokenSpec{IssuerRef: tokensv1alpha1.IssuerReference{Name: "oauth"},
				Secret: tokensv1alpha1.SecretTemplate{Name: "cc-token"}}}
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		at = waitReady(at)
		Expect(fake.CallsBy(fakes.OutcomeIssued)).To(Equal(1))

		By("a wrong client secret is written: one call, refused as invalid_client")
		clk.Step(time.Minute) // past the least interval between two mints
		const wrong = "wrong-secret-4f1c9a"
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(creds), creds)).To(Succeed())
		creds.Data["clientSecret"] = []byte(wrong)
		Expect(k8sClient.Update(ctx, creds)).To(Succeed())
		Eventually(func() string {
			if c := renewing(at); c != nil {
				return c.Reason
			}
			return ""
		}, 20*time.Second).Should(Equal(tokensv1alpha1.ReasonPermanentFailure))
		settle(at)
		Expect(fake.CallsBy(fakes.OutcomeUnauthorized)).To(Equal(1))
		c := renewing(at)
		Expect(c.Message).To(ContainSubstring("invalid_client"))
		Expect(c.Message).NotTo(ContainSubstring(wrong))
		Expect(c.Message).NotTo(ContainSubstring(canaryAuthToken))
		Eventually(func() string { return tokenIssuerReady(ns, "oauth").Reason }, 10*time.Second).Should(Equal(tokensv1alpha1.ReasonUnauthorized))

		By("no call for half an hour, however often it is looked at")
		for range 3 {
			clk.Step(10 * time.Minute)
			poke(at)
			settle(at)
		}
		Expect(fake.Calls()).To(Equal(2))

		By("the right secret again: tried at once")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(creds), creds)).To(Succeed())
		creds.Data["clientSecret"] = []byte(canaryAuthToken)
		Expect(k8sClient.Update(ctx, creds)).To(Succeed())
		Eventually(func() int { return fake.CallsBy(fakes.OutcomeIssued) }, 20*time.Second).Should(Equal(2))
		Eventually(func() int32 { return get(at).Status.FailedAttempts }, 10*time.Second).Should(BeZero())
	})
})
