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
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

const (
	googlePool         = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/my-pool/providers/my-cluster"
	googleSubjectAudie = "https:" + googlePool
)

// googleSample is the workload identity federation sample in a fresh
// namespace, against fakes of Google's STS and IAM Credentials APIs that
// verify the subject token with the real apiserver.
func googleSample() (*samples.Sample, *fakes.GoogleWorkloadIdentity) {
	ns := "g-" + rand.String(6)
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	fake := &fakes.GoogleWorkloadIdentity{Audience: googlePool,
		Subjects:        []string{"system:serviceaccount:" + ns + ":orders-api"},
		ServiceAccounts: []string{"orders@my-project.iam.gserviceaccount.com"}}
	fake.Verify = func(token string) (string, bool) {
		review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{googleSubjectAudie}}}
		if err := k8sClient.Create(ctx, review); err != nil || !review.Status.Authenticated {
			return "", false
		}
		return review.Status.User.Username, true
	}
	s, err := samples.Load("google-workload-identity-impersonation.yaml")
	Expect(err).NotTo(HaveOccurred())
	Expect(s.PointAt(serveFake(fake, &fake.Base))).To(Succeed())
	s.Place(ns, credentialsNamespace, "")
	s.AccessToken.Spec.Parameters = map[string]apiextensionsv1.JSON{"lifetime": {Raw: []byte(`"900s"`)}}
	return s, fake
}

// expectNowhere checks that none of values is in the AccessToken's Secret,
// its status or the events of its namespace.
func expectNowhere(at *tokensv1alpha1.AccessToken, values []string) {
	sec, err := secretOf(at)
	Expect(err).NotTo(HaveOccurred())
	status, err := json.Marshal(get(at).Status)
	Expect(err).NotTo(HaveOccurred())
	events := &corev1.EventList{}
	Expect(k8sClient.List(ctx, events, client.InNamespace(at.Namespace))).To(Succeed())
	eventText, err := json.Marshal(events.Items)
	Expect(err).NotTo(HaveOccurred())
	for _, v := range values {
		for key, data := range sec.Data {
			Expect(string(data)).NotTo(ContainSubstring(v), "Secret key %s holds an intermediate token", key)
		}
		Expect(string(status)).NotTo(ContainSubstring(v))
		Expect(string(eventText)).NotTo(ContainSubstring(v))
		Expect(logs.String()).NotTo(ContainSubstring(v))
	}
}

var _ = Describe("an issuer with steps", func() {
	It("reuses the federated token across renewals, shows it nowhere, and names a failing step", func() {
		s, fake := googleSample()
		create(s)
		at := waitReady(s.AccessToken)
		Expect(fake.STSCalls()).To(Equal(1))
		Expect(fake.GenerateCalls()).To(Equal(1))
		sec, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(sec.Data).To(HaveLen(1))
		Expect(string(sec.Data["token"])).To(Equal(fake.Issued()[0].Value))
		Expect(at.Status.ExpiresAt.Time).To(BeTemporally("==", fake.Issued()[0].ExpiresAt.Truncate(time.Second)))

		By("renewing the 15-minute token twice with one federated token")
		for n := 2; n <= 3; n++ {
			renewal := get(at).Status.RenewalTime
			clk.SetTime(renewal.Add(time.Second))
			poke(at)
			Eventually(fake.GenerateCalls, 10*time.Second).Should(Equal(n))
			Eventually(func() string {
				sec, _ := secretOf(at)
				return string(sec.Data["token"])
			}, 10*time.Second).Should(Equal(fake.Issued()[n-1].Value))
			Eventually(func() time.Time { return get(at).Status.RenewalTime.Time }, 10*time.Second).Should(BeTemporally(">", renewal.Time))
		}
		Expect(fake.STSCalls()).To(Equal(1), "a federated token valid for an hour was exchanged again")
		Expect(clk.Now().Sub(fake.STSTokens()[0].IssuedAt)).To(BeNumerically("<", 48*time.Minute))

		var stsTokens []string
		for _, t := range fake.STSTokens() {
			stsTokens = append(stsTokens, t.Value)
		}
		addCanaries(stsTokens...)
		addCanaries(fake.CredentialsReceived()...)
		expectNowhere(at, stsTokens)

		By("failing in step sts once the federated token is due: the Secret stays as it was")
		before, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		fake.FailNext(1, fakes.Fault{Status: http.StatusBadRequest, Header: http.Header{"Content-Type": {"application/json"}},
			Body: `{"error":"invalid_grant","error_description":"The given credential is rejected by the attribute condition."}`})
		clk.SetTime(fake.STSTokens()[0].IssuedAt.Add(50 * time.Minute))
		poke(at)
		Eventually(func() string {
			if c := renewing(at); c != nil {
				return c.Message
			}
			return ""
		}, 10*time.Second).Should(ContainSubstring("step sts: "))
		Expect(renewing(at).Message).To(ContainSubstring("invalid_grant"))
		// The fault answered the exchange (a fault is counted apart from the
		// endpoint's own answers): the request was never made.
		Expect(fake.CallsBy(fakes.OutcomeFault)).To(Equal(1))
		Expect(fake.GenerateCalls()).To(Equal(3), "the request was made after its step failed")
		after, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(after.ResourceVersion).To(Equal(before.ResourceVersion))
		Expect(after.Data).To(Equal(before.Data))
		expectNowhere(at, stsTokens)
	})

	It("runs the same chain for a ClusterTokenIssuer, with one federated token per namespace", func() {
		s, fake := googleSample()
		nsA := s.AccessToken.Namespace
		nsB := "g-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsB}})).To(Succeed())
		fake.Subjects = append(fake.Subjects, "system:serviceaccount:"+nsB+":orders-api")
		name := "google-" + nsA
		cti := &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: tokensv1alpha1.ClusterTokenIssuerSpec{IssuerSpec: s.TokenIssuer.Spec}}
		Expect(k8sClient.Create(ctx, cti)).To(Succeed())
		var tokens []*tokensv1alpha1.AccessToken
		for _, ns := range []string{nsA, nsB} {
			sa := s.ServiceAccounts[0].DeepCopy()
			sa.Namespace = ns
			sa.Annotations = map[string]string{tokensv1alpha1.AnnotationIssuers: "ClusterTokenIssuer/" + name}
			Expect(k8sClient.Create(ctx, sa)).To(Succeed())
			at := s.AccessToken.DeepCopy()
			at.Namespace = ns
			at.Spec.IssuerRef = tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: name}
			Expect(k8sClient.Create(ctx, at)).To(Succeed())
			tokens = append(tokens, at)
		}
		for _, at := range tokens {
			waitReady(at)
		}
		// Each namespace's ServiceAccount gets its own exchange: results are
		// never shared across the namespaces whose tokens the step sends.
		Expect(fake.STSCalls()).To(Equal(2))
		Expect(fake.GenerateCalls()).To(Equal(2))
		subjects := []any{fake.STSTokens()[0].Request["subject"], fake.STSTokens()[1].Request["subject"]}
		Expect(subjects).To(ConsistOf("system:serviceaccount:"+nsA+":orders-api", "system:serviceaccount:"+nsB+":orders-api"))

		By("renewing both without another exchange")
		due := clk.Now()
		before := map[string]string{}
		for _, at := range tokens {
			if r := get(at).Status.RenewalTime.Time; r.After(due) {
				due = r
			}
			sec, err := secretOf(at)
			Expect(err).NotTo(HaveOccurred())
			before[at.Namespace] = string(sec.Data["token"])
		}
		clk.SetTime(due.Add(time.Second))
		for _, at := range tokens {
			poke(at)
		}
		for _, at := range tokens {
			Eventually(func() string {
				sec, _ := secretOf(at)
				return string(sec.Data["token"])
			}, 10*time.Second).ShouldNot(Equal(before[at.Namespace]))
		}
		Expect(fake.GenerateCalls()).To(Equal(4))
		Expect(fake.STSCalls()).To(Equal(2))
		var stsTokens []string
		for _, t := range fake.STSTokens() {
			stsTokens = append(stsTokens, t.Value)
		}
		addCanaries(stsTokens...)
		for _, at := range tokens {
			expectNowhere(at, stsTokens)
		}
	})
})
