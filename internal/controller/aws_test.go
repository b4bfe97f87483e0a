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
	"k8s.io/utils/clock"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// The secret access key and the session token are credentials like any
// other: the leak check after every spec looks for both (they are in the
// Secret) in logs, events, statuses and metrics.
var _ = Describe("AWS Signature Version 4", func() {
	const session = "FwoGZXIvYXdzEXAMPLE-session-token-canary"

	// placeECR applies the ECR sample with temporary credentials (a session
	// token beside the key) against fake.
	placeECR := func(fake *fakes.ECR) *tokensv1alpha1.AccessToken {
		ns := "aws-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		url := serveFake(fake, &fake.Base)
		s, err := samples.Load("aws-ecr-pull-secret-access-key.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.PointAt(url)).To(Succeed())
		s.FillCredentials()
		s.Secrets[0].StringData["AWS_SESSION_TOKEN"] = session
		spec := s.Spec()
		spec.Credentials = append(spec.Credentials, tokensv1alpha1.Credential{Name: "session-token",
			SecretKeyRef: &tokensv1alpha1.SecretKeySelector{Name: s.Secrets[0].Name, Key: "AWS_SESSION_TOKEN"}})
		spec.Request.Auth.AWSSigV4.SessionToken = &tokensv1alpha1.ValueSource{Credential: "session-token"}
		s.Place(ns, credentialsNamespace, "-"+ns)
		for _, o := range s.Objects() {
			Expect(k8sClient.Create(ctx, o)).To(Succeed())
		}
		return s.AccessToken
	}
	secretKey := samples.Credential("aws-ecr-user", "AWS_SECRET_ACCESS_KEY")

	It("issues an ECR token with temporary credentials, signing the session token", func() {
		fake := &fakes.ECR{Keys: map[string]fakes.AWSKey{samples.AWSAccessKeyID: {SecretAccessKey: secretKey, SessionToken: session}}}
		at := waitReady(placeECR(fake))
		sec, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(fake.Issued()).To(HaveLen(1))
		Expect(string(sec.Data[secret.Key(at)])).To(Equal(fake.Issued()[0].Value))
		Expect(string(sec.Data["proxyEndpoint"])).To(Equal("https://123456789012.dkr.ecr.us-east-1.amazonaws.com"))
		Expect(at.Status.ExpiresAt.Time).To(BeTemporally("~", fake.Issued()[0].ExpiresAt, time.Second))
	})

	It("reports AWS's refusal of a signature without the secret or the session token", func() {
		fake := &fakes.ECR{Keys: map[string]fakes.AWSKey{samples.AWSAccessKeyID: {SecretAccessKey: "another-secret", SessionToken: session}}}
		at := placeECR(fake)
		Eventually(func(g Gomega) {
			c := renewing(at)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Message).To(ContainSubstring("InvalidSignatureException"))
		}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
		c := renewing(at)
		Expect(strings.Contains(c.Message, secretKey) || strings.Contains(c.Message, session)).To(BeFalse())
		Expect(fake.CallsBy(fakes.OutcomeIssued)).To(BeZero())
	})
})

var _ = Describe("the keyless AWS ECR sample", func() {
	It("writes a dockerconfigjson Secret from ECR, signed by STS web identity credentials reused across renewals", func() {
		ns := "ecr-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		fake := fakes.NewAWSWebIdentityECR("arn:aws:iam::123456789012:role/ecr-pull")
		// The apiserver signs the web identity token with the real time,
		// whatever the suite's clock says; STS trusts the cluster's
		// ServiceAccount issuer, so the real apiserver reviews the token.
		fake.STS.TokenClock = clock.RealClock{}
		fake.STS.Verify = func(token string) bool {
			review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{fakes.STSAudience}}}
			return k8sClient.Create(ctx, review) == nil && review.Status.Authenticated &&
				review.Status.User.Username == "system:serviceaccount:"+ns+":ecr-puller"
		}
		fake.SetLifetime(15 * time.Minute) // ECR's token ends before the one-hour session
		s, err := samples.Load("aws-ecr-pull-secret.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Secrets).To(BeEmpty())
		Expect(s.PointAt(serveFake(fake, &fake.Base))).To(Succeed())
		s.Place(ns, credentialsNamespace, "")
		create(s)

		at := waitReady(s.AccessToken)
		Expect(fake.STS.AssumeRoleCalls()).To(Equal(1))
		Expect(fake.STS.Calls()).To(Equal(1))
		Expect(fake.Calls()).To(Equal(1))
		session := fake.STS.Issued()[0]
		addCanaries(session.Value, session.Secrets[0])
		addCanaries(fake.STS.CredentialsReceived()...)

		// pullAuth is the Secret's auth for the registry, decoded.
		pullAuth := func() string {
			sec, err := secretOf(at)
			Expect(err).NotTo(HaveOccurred())
			Expect(sec.Type).To(Equal(corev1.SecretTypeDockerConfigJson))
			var config struct {
				Auths map[string]struct{ Username, Password, Auth string }
			}
			Expect(json.Unmarshal(sec.Data[corev1.DockerConfigJsonKey], &config)).To(Succeed())
			Expect(config.Auths).To(HaveLen(1))
			entry := config.Auths["123456789012.dkr.ecr.us-east-1.amazonaws.com"]
			Expect(entry.Username).To(Equal("AWS"))
			auth, err := base64.StdEncoding.DecodeString(entry.Auth)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(auth)).To(Equal("AWS:" + entry.Password))
			return string(auth)
		}
		issued := fake.Issued()
		Expect(issued).To(HaveLen(1))
		addCanaries(issued[0].Request["password"].(string))
		Expect(pullAuth()).To(Equal("AWS:" + issued[0].Request["password"].(string)))
		// ECR's authorizationToken is that auth, as ECR encodes it.
		decoded, err := base64.StdEncoding.DecodeString(issued[0].Value)
		Expect(err).NotTo(HaveOccurred())
		Expect(pullAuth()).To(Equal(string(decoded)))
		Expect(at.Status.ExpiresAt.Time).To(BeTemporally("==", issued[0].ExpiresAt.Truncate(time.Second)))
		Expect(issued[0].ExpiresAt).To(BeTemporally("<", session.ExpiresAt))

		By("renewing with the session still valid: one ECR call, no STS call")
		renewal := get(at).Status.RenewalTime
		clk.SetTime(renewal.Add(time.Second))
		poke(at)
		Eventually(fake.Calls, 10*time.Second).Should(Equal(2))
		issued = fake.Issued()
		addCanaries(issued[1].Request["password"].(string))
		Eventually(pullAuth, 10*time.Second).Should(Equal("AWS:" + issued[1].Request["password"].(string)))
		Eventually(func() time.Time { return get(at).Status.ExpiresAt.Time }, 10*time.Second).
			Should(BeTemporally("==", issued[1].ExpiresAt.Truncate(time.Second)))
		Expect(fake.STS.AssumeRoleCalls()).To(Equal(1), "the session's credentials were not reused")
		Expect(fake.STS.Calls()).To(Equal(1))
		Expect(fake.Calls()).To(Equal(2))

		expectNowhere(at, []string{session.Value, session.Secrets[0]})
	})
})
