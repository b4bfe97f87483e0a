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
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// refuseSecretWrites makes the API server refuse creates and updates of the
// Secret ns/name, through a ValidatingAdmissionPolicy, until the returned
// function lifts it. It returns once the refusal is in force.
func refuseSecretWrites(ns, name string) (lift func()) {
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "refuse-" + ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
						Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"},
							Resources: []string{"secrets"}},
					},
				}},
			},
			Validations: []admissionregistrationv1.Validation{{
				Expression: fmt.Sprintf("object.metadata.namespace != %q || object.metadata.name != %q", ns, name),
				Message:    "writes refused for the test",
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "refuse-" + ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	Expect(k8sClient.Create(ctx, policy)).To(Succeed())
	Expect(k8sClient.Create(ctx, binding)).To(Succeed())
	lift = func() {
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, binding))).To(Succeed())
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, policy))).To(Succeed())
	}
	DeferCleanup(lift)
	Eventually(func() error {
		probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if err := k8sClient.Create(ctx, probe); err != nil {
			return nil
		}
		Expect(k8sClient.Delete(ctx, probe)).To(Succeed())
		return fmt.Errorf("the policy is not in force yet")
	}, 20*time.Second, 200*time.Millisecond).Should(Succeed())
	return lift
}

var _ = Describe("a token minted but not written", func() {
	It("is written by the retry, never minted again", func() {
		var lift func()
		s, base := startSample("oauth2-client-credentials", func(s *samples.Sample) {
			lift = refuseSecretWrites(s.AccessToken.Namespace, s.AccessToken.Spec.Secret.Name)
		})
		Eventually(func() int { return len(base.Issued()) }, 20*time.Second, 50*time.Millisecond).Should(Equal(1))
		By("retrying the refused write, past the least interval between mints, without a second call")
		for range 3 {
			clk.Step(11 * time.Second)
			poke(s.AccessToken)
			Consistently(func() int { return len(base.Issued()) }, time.Second, 50*time.Millisecond).Should(Equal(1))
		}
		Expect(sharedSecretToken(s.AccessToken.Namespace, s.AccessToken.Spec.Secret.Name, secret.Key(s.AccessToken))).To(BeEmpty())

		By("writing the token minted first once writes are allowed again")
		lift()
		waitReady(s.AccessToken)
		Expect(base.Issued()).To(HaveLen(1))
		Expect(sharedSecretToken(s.AccessToken.Namespace, s.AccessToken.Spec.Secret.Name, secret.Key(s.AccessToken))).To(Equal(base.Issued()[0].Value))

		By("never taking the token it wrote for one it superseded")
		clk.Step(5*time.Minute + time.Second)
		poke(s.AccessToken)
		settle(s.AccessToken)
		Expect(base.Valid(base.Issued()[0].Value)).To(BeTrue())
		Expect(base.CallsBy(fakes.OutcomeRevoked)).To(BeZero())
	})
})

// sharedSecretToken is key of Secret ns/name, empty when there is none.
func sharedSecretToken(ns, name, key string) string {
	s := &corev1.Secret{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		return ""
	}
	return string(s.Data[key])
}
