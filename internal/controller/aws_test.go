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
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

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
