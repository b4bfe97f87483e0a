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
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

const stsAudience = "https://sts.example.com"

// keylessSample is the token exchange sample in a fresh namespace, against a
// security token service that verifies subject tokens with the real apiserver.
func keylessSample() (*samples.Sample, *fakes.TokenExchange) {
	ns := "k-" + rand.String(6)
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	fake := &fakes.TokenExchange{Subjects: []string{"system:serviceaccount:" + ns + ":orders-api"}}
	fake.Verify = func(token string) (string, bool) {
		review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{stsAudience}}}
		if err := k8sClient.Create(ctx, review); err != nil || !review.Status.Authenticated {
			return "", false
		}
		return review.Status.User.Username, true
	}
	s, err := samples.Load("token-exchange-service-account.yaml")
	Expect(err).NotTo(HaveOccurred())
	Expect(s.PointAt(serveFake(fake, &fake.Base))).To(Succeed())
	s.Place(ns, credentialsNamespace, "")
	return s, fake
}

func create(s *samples.Sample) {
	for _, o := range s.Objects() {
		Expect(k8sClient.Create(ctx, o)).To(Succeed())
	}
}

// apiAudience is an audience the apiserver accepts: that of a token requested
// without one.
func apiAudience(namespace, serviceAccount string) string {
	tr := &authenticationv1.TokenRequest{}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: serviceAccount}}
	Expect(k8sClient.SubResource("token").Create(ctx, sa, tr)).To(Succeed())
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tr.Status.Token, ".")[1])
	Expect(err).NotTo(HaveOccurred())
	var claims struct {
		Aud []string `json:"aud"`
	}
	Expect(json.Unmarshal(payload, &claims)).To(Succeed())
	Expect(claims.Aud).NotTo(BeEmpty())
	return claims.Aud[0]
}

var _ = Describe("a ServiceAccount token as the credential", func() {
	It("is requested for every call, from a ServiceAccount that agreed, and never shown", func() {
		s, fake := keylessSample()
		create(s)
		at := waitReady(s.AccessToken)
		Expect(fake.Issued()).To(HaveLen(1))
		Expect(fake.Issued()[0].Request["subject"]).To(Equal("system:serviceaccount:" + at.Namespace + ":orders-api"))

		clk.SetTime(at.Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(func() int { return len(fake.Issued()) }, 10*time.Second).Should(Equal(2))
		received := fake.SubjectTokens()
		Expect(received).To(HaveLen(2))
		Expect(received[0]).NotTo(Equal(received[1]), "a ServiceAccount token was reused")
		addCanaries(received...)
		for _, token := range received {
			Expect(logs.String()).NotTo(ContainSubstring(token))
		}
	})

	It("is refused for a ServiceAccount that did not agree", func() {
		s, fake := keylessSample()
		s.ServiceAccounts[0].Annotations = map[string]string{tokensv1alpha1.AnnotationIssuers: "TokenIssuer/another"}
		create(s)
		Eventually(func() string {
			if c := renewing(s.AccessToken); c != nil {
				return c.Message
			}
			return ""
		}, 10*time.Second).Should(ContainSubstring("has not agreed to have its tokens sent by TokenIssuer/sts"))
		Expect(renewing(s.AccessToken).Reason).To(Equal(tokensv1alpha1.ReasonInvalidConfig))
		Expect(fake.Calls()).To(BeZero())
	})

	It("is refused for an audience the Kubernetes API accepts", func() {
		s, fake := keylessSample()
		for _, sa := range s.ServiceAccounts {
			Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		}
		s.ServiceAccounts = nil
		aud := apiAudience(s.AccessToken.Namespace, "orders-api")
		s.TokenIssuer.Spec.Credentials[0].ServiceAccountToken.Audience = aud
		create(s)
		Eventually(func() string {
			if c := renewing(s.AccessToken); c != nil {
				return c.Message
			}
			return ""
		}, 10*time.Second).Should(ContainSubstring("is accepted by the Kubernetes API"))
		Expect(fake.Calls()).To(BeZero())
	})
})

var _ = Describe("the Vault Kubernetes login sample", func() {
	It("logs in with a ServiceAccount token Vault reviews, logs in again before expiry and revokes what it replaced", func() {
		ns := "v-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		vault := &fakes.VaultKubernetesAuth{Roles: map[string]fakes.VaultRole{"billing": {
			BoundServiceAccountNames: []string{"billing"}, BoundServiceAccountNamespaces: []string{ns},
			Audience: "vault", TokenTTL: time.Hour, Policies: []string{"billing"}}}}
		vault.Verify = func(token, audience string) (string, string, bool) {
			review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{audience}}}
			if err := k8sClient.Create(ctx, review); err != nil || !review.Status.Authenticated {
				return "", "", false
			}
			parts := strings.Split(review.Status.User.Username, ":") // system:serviceaccount:<ns>:<name>
			if len(parts) != 4 {
				return "", "", false
			}
			return parts[2], parts[3], true
		}
		s, err := samples.Load("vault-kubernetes-login.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.PointAt(serveFake(vault, &vault.Base))).To(Succeed())
		s.Place(ns, credentialsNamespace, "")
		create(s)

		at := waitReady(s.AccessToken)
		issued := vault.Issued()
		Expect(issued).To(HaveLen(1))
		Expect(issued[0].Request["service_account_name"]).To(Equal("billing"))
		sec, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(sec.Data["token"])).To(Equal(issued[0].Value))
		Expect(at.Status.ExpiresAt.Time).To(BeTemporally("~", issued[0].ExpiresAt, time.Second))

		By("logging in again before the Vault token expires")
		clk.SetTime(at.Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(func() int { return len(vault.Issued()) }, 10*time.Second).Should(Equal(2))

		By("revoking the replaced token with revoke-self after the grace period")
		clk.Step(5*time.Minute + time.Second)
		poke(at)
		Eventually(func() bool { return vault.Issued()[0].Revoked }, 10*time.Second).Should(BeTrue())
		Expect(vault.Valid(vault.Issued()[1].Value)).To(BeTrue())

		By("revoking the current token when the AccessToken is deleted")
		Expect(k8sClient.Delete(ctx, at)).To(Succeed())
		Eventually(func() bool { return vault.Issued()[1].Revoked }, 10*time.Second).Should(BeTrue())

		received := vault.CredentialsReceived()
		Expect(received).To(HaveLen(2))
		addCanaries(received...)
		for _, token := range received {
			Expect(logs.String()).NotTo(ContainSubstring(token))
		}
	})
})
