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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// gitlabSample is the GitLab rotation sample in a fresh namespace against a
// GitLab fake that knows the sample's bootstrap token.
func gitlabSample(policy tokensv1alpha1.RefreshRejectedPolicy) (*samples.Sample, *fakes.GitLab, string) {
	ns := "gl-" + rand.String(6)
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	bootstrap := samples.Credential("gitlab-project-token", "token")
	fake := fakes.NewGitLab("42", bootstrap, clk.Now().Add(30*24*time.Hour))
	s, err := samples.Load("gitlab-project-token-rotation.yaml")
	Expect(err).NotTo(HaveOccurred())
	Expect(s.PointAt(serveFake(fake, &fake.Base))).To(Succeed())
	s.FillCredentials()
	s.Place(ns, credentialsNamespace, "")
	s.TokenIssuer.Spec.Response.RefreshToken.OnRejected = policy
	return s, fake, bootstrap
}

var gitlabBadRequest = fakes.Fault{Status: http.StatusBadRequest, Header: http.Header{"Content-Type": {"application/json"}},
	Body: `{"message":"400 Bad request - expires_at is invalid"}`}

// rotateDue moves the clock past the AccessToken's renewal time and pokes it.
func rotateDue(at *tokensv1alpha1.AccessToken) {
	clk.SetTime(get(at).Status.RenewalTime.Add(time.Second))
	poke(at)
}

func secretToken(at *tokensv1alpha1.AccessToken) func() string {
	return func() string {
		sec, err := secretOf(at)
		if err != nil {
			return ""
		}
		return string(sec.Data["token"])
	}
}

var _ = Describe("GitLab project access token rotation", func() {
	It("rotates before the expiry date with the current token, and after a refused rotation under Fail keeps the token and calls nothing until a credential changes", func() {
		s, fake, bootstrap := gitlabSample(tokensv1alpha1.RefreshRejectedFail)
		create(s)
		at := waitReady(s.AccessToken)
		Expect(fake.Calls()).To(Equal(1))
		first := fake.Issued()[0]
		Expect(secretToken(at)()).To(Equal(first.Value))
		Expect(at.Status.ExpiresAt.Time).To(BeTemporally("==", first.ExpiresAt))
		Expect(first.ExpiresAt.Sub(at.Status.RenewalTime.Time)).To(BeNumerically(">=", 48*time.Hour), "renewBefore: 48h")

		By("rotating with the current token before it expires")
		rotateDue(at)
		Eventually(fake.Calls, 10*time.Second).Should(Equal(2))
		Expect(clk.Now()).To(BeTemporally("<", first.ExpiresAt))
		second := fake.Issued()[1]
		Eventually(secretToken(at), 10*time.Second).Should(Equal(second.Value))
		Expect(fake.Presented(first.Value)).To(Equal(1))
		Expect(fake.Presented(bootstrap)).To(Equal(1))
		Expect(fake.Active(second.Value)).To(BeTrue())

		By("refusing the next rotation: the Secret keeps the token, Ready turns False naming the refresh")
		Eventually(func() bool { return get(at).Status.RenewalTime.After(clk.Now()) }, 10*time.Second).Should(BeTrue())
		fake.FailNext(1, gitlabBadRequest)
		rotateDue(at)
		Eventually(renewingReason(at), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonRefreshRejected))
		Expect(renewing(at).Message).To(ContainSubstring("refresh request was refused"))
		Expect(renewing(at).Message).To(ContainSubstring("expires_at is invalid"))
		Eventually(func() string { return ready(at).Reason }, 10*time.Second).Should(Equal(tokensv1alpha1.ReasonRefreshRejected))
		Expect(ready(at).Status).To(Equal(metav1.ConditionFalse))
		Expect(secretToken(at)()).To(Equal(second.Value))
		Expect(fake.Calls()).To(Equal(3))

		By("calling nothing more: not at the retry time, not for a renew annotation")
		clk.Step(6 * time.Hour)
		poke(at)
		cur := get(at)
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Annotations[tokensv1alpha1.AnnotationRenew] = "now"
		Expect(k8sClient.Patch(ctx, cur, patch)).To(Succeed())
		settle(at)
		Expect(fake.Calls()).To(Equal(3))
		Expect(fake.Presented(bootstrap)).To(Equal(1), "the rotated bootstrap token was sent again")
		Expect(fake.ChainsRevoked()).To(Equal(0))
		Expect(fake.Active(second.Value)).To(BeTrue())
		Expect(secretToken(at)()).To(Equal(second.Value))

		By("starting over with a new token put in the credential Secret")
		fresh := "glpat-fresh-bootstrap-token"
		fake.AddToken(fresh, clk.Now().Add(30*24*time.Hour))
		addCanaries(fresh)
		sec := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: at.Namespace, Name: "gitlab-project-token"}, sec)).To(Succeed())
		sec.Data = map[string][]byte{"token": []byte(fresh)}
		Expect(k8sClient.Update(ctx, sec)).To(Succeed())
		Eventually(fake.Calls, 10*time.Second).Should(Equal(4))
		Expect(fake.Presented(fresh)).To(Equal(1))
		waitReady(at)
		Expect(secretToken(at)()).To(Equal(fake.Issued()[2].Value))
	})

	It("after a refused rotation under Restart makes exactly one first request, which GitLab answers by revoking the chain", func() {
		s, fake, bootstrap := gitlabSample(tokensv1alpha1.RefreshRejectedRestart)
		create(s)
		at := waitReady(s.AccessToken)
		current := fake.Issued()[0]

		fake.FailNext(1, gitlabBadRequest)
		rotateDue(at)
		Eventually(renewingReason(at), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonUnauthorized))
		settle(at)
		Expect(fake.Calls()).To(Equal(3), "the refused rotation and one first request")
		Expect(fake.Presented(bootstrap)).To(Equal(2))
		Expect(fake.ChainsRevoked()).To(Equal(1))
		Expect(fake.Active(current.Value)).To(BeFalse(), "GitLab revoked the live token for the replayed bootstrap token")
	})
})
