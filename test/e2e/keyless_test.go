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

package e2e

import (
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

var _ = Describe("the keyless sample applied with kubectl", func() {
	It("exchanges a token of the ServiceAccount that agreed, under the chart's RBAC", func() {
		const ns, audience = "e2e-keyless", "https://sts.example.com"
		kubectl("create", "namespace", ns)
		fake := &fakes.TokenExchange{Subjects: []string{"system:serviceaccount:" + ns + ":orders-api"}}
		// The token service trusts the cluster: it asks the apiserver, for
		// its own audience, who the token is.
		fake.Verify = func(token string) (string, bool) { return reviewed(token, audience) }
		url := fakes.Start(GinkgoTB(), fake).URL
		s, err := samples.Load("token-exchange-service-account.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.PointAt(url)).To(Succeed())
		s.Place(ns, credentialsNamespace, "")
		applySample("keyless", s)

		Eventually(func(g Gomega) {
			at := &tokensv1alpha1.AccessToken{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(s.AccessToken), at)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(at.Status.Conditions, tokensv1alpha1.ConditionReady)).To(BeTrue(), "%+v", at.Status.Conditions)
			sec := &corev1.Secret{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: at.Spec.Secret.Name}, sec)).To(Succeed())
			issued := fake.Issued()
			g.Expect(issued).NotTo(BeEmpty())
			g.Expect(string(sec.Data["token"])).To(Equal(issued[len(issued)-1].Value))
		}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
		Expect(fake.SubjectTokens()).NotTo(BeEmpty())
		log, err := os.ReadFile(filepath.Join(dir, "manager.log"))
		Expect(err).NotTo(HaveOccurred())
		for _, token := range fake.SubjectTokens() {
			Expect(string(log)).NotTo(ContainSubstring(token), "a ServiceAccount token in the manager's log")
		}
	})
})
