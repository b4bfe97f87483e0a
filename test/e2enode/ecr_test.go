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

package e2enode

import (
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/registry"
	"github.com/tokenmint/tokenmint/test/samples"
)

const (
	// ecrNamespace holds the keyless ECR sample and the pods that pull with
	// its Secret.
	ecrNamespace = "node-ecr"
	// ecrUsername is the username of Amazon ECR's registries.
	ecrUsername = "AWS"
	// ecrFirstLifetime is the lifetime of the first authorization token: short,
	// so that the spec sees it expire.
	ecrFirstLifetime = 40 * time.Second
)

// The keyless ECR sample as users apply it: the operator requests a token of
// the sample's ServiceAccount, STS takes it (after a TokenReview against the
// apiserver) for temporary credentials, ECR takes a call signed with them for
// an authorization token, and the kubelet pulls with the dockerconfigjson
// Secret from a registry that, as ECR's, accepts AWS:<password> for as long
// as the password's token lives.
var _ = Describe("a keyless ECR pull Secret on a real node", Ordered, func() {
	var (
		fake   *fakes.AWSWebIdentityECR
		target *pullTarget
		sample *samples.Sample
	)

	BeforeAll(func() {
		createPullNamespace(ecrNamespace)

		By("STS trusting the cluster's ServiceAccount tokens, and ECR issuing tokens of " + ecrFirstLifetime.String() + " at first")
		fake = fakes.NewAWSWebIdentityECR("arn:aws:iam::123456789012:role/ecr-pull")
		fake.STS.Verify = func(token string) bool {
			review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{fakes.STSAudience}}}
			return k8sClient.Create(ctx, review) == nil && review.Status.Authenticated &&
				review.Status.User.Username == "system:serviceaccount:"+ecrNamespace+":ecr-puller"
		}
		fake.SetLifetime(ecrFirstLifetime)
		url := fakes.Start(GinkgoTB(), fake).URL

		By("a registry on loopback serving a busybox image to AWS:<password> of ECR's valid tokens only")
		target = serveImage(registry.NewBasic(func(username, password string) bool {
			return username == ecrUsername && fake.ValidPassword(password)
		}), ecrNamespace, "ecr-pull", ecrUsername)

		By("applying the sample, its Secret for that registry")
		var err error
		sample, err = samples.Load("aws-ecr-pull-secret.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(sample.Secrets).To(BeEmpty(), "the sample is keyless")
		Expect(sample.PointAt(url)).To(Succeed())
		sample.Place(ecrNamespace, credentialsNamespace, "")
		Expect(sample.AccessToken.Spec.Secret.Name).To(Equal(target.secret))
		Expect(sample.AccessToken.Spec.Secret.DockerConfigJSON.Username.Value).To(Equal(ecrUsername))
		sample.AccessToken.Spec.Secret.DockerConfigJSON.Registries = []string{target.host}
		// Renewed 5 s before the short first token expires: not before the
		// spec renews it itself.
		sample.AccessToken.Spec.RenewBefore = &tokensv1alpha1.Duration{Duration: 5 * time.Second}
		apply("ecr-sample", sample.Objects()...)
	})

	ReportAfterEach(func(r SpecReport) {
		if r.Failed() && target != nil {
			target.reportAttempts()
		}
	})

	It("pulls the image with ECR's password, and after a renewal with the new one, the old one refused once expired", func() {
		By("the Secret holds the password of ECR's first token, from STS's session credentials")
		var first fakes.ECRPassword
		Eventually(func(g Gomega) {
			passwords := fake.Passwords()
			g.Expect(passwords).NotTo(BeEmpty())
			first = passwords[0]
			g.Expect(target.password(g)).To(Equal(first.Password))
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
		Expect(fake.STS.AssumeRoleCalls()).To(Equal(1))
		Expect(fake.STS.Issued()).To(HaveLen(1))
		Expect(fake.STS.Issued()[0].Request["subject"]).To(Equal("system:serviceaccount:" + ecrNamespace + ":ecr-puller"))
		config, layer := target.blobs(first.Password)

		By("a pod pulls the image with the Secret and runs")
		seen := len(target.reg.Attempts())
		target.pullAndRun("pull-1")
		target.expectPulledWith(target.reg.Attempts()[seen:], first.Password, config, layer)

		By("renewing: ECR's next tokens live an hour")
		fake.SetLifetime(time.Hour)
		requestRenewal(ecrNamespace, sample.AccessToken.Name)
		var second fakes.ECRPassword
		Eventually(func(g Gomega) {
			passwords := fake.Passwords()
			last := passwords[len(passwords)-1]
			g.Expect(last.ExpiresAt).To(BeTemporally(">", time.Now().Add(30*time.Minute)), "no token of an hour yet")
			second = last
			g.Expect(target.password(g)).To(Equal(second.Password))
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
		Expect(fake.STS.AssumeRoleCalls()).To(Equal(1), "the session's credentials were not reused")

		By("the first token expires; the registry refuses its password and takes the new one")
		Eventually(func() bool { return fake.ValidPassword(first.Password) }, ecrFirstLifetime+10*time.Second, 250*time.Millisecond).
			Should(BeFalse())
		target.expectRefuses(first.Password)
		target.blobs(second.Password)

		By("deleting the pod and the image; a new pod pulls the image with the new password and runs")
		target.forget("pull-1", config)
		seen = len(target.reg.Attempts())
		target.pullAndRun("pull-2")
		target.expectPulledWith(target.reg.Attempts()[seen:], second.Password, config, layer)
		Expect(slices.ContainsFunc(target.reg.Attempts()[seen:], func(a registry.Attempt) bool {
			return a.Password == first.Password
		})).To(BeFalse(), "the new pod presented the expired password")
	})
})
