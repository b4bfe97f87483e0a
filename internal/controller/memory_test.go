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
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
)

var _ = Describe("memory bounds", func() {
	var e *env
	BeforeEach(func() { e = newEnv() })

	It("reports parameters larger than the cache holds as InvalidSpec, without a call", func() {
		value, _ := json.Marshal(strings.Repeat("p", MaxParametersBytes))
		at := &tokensv1alpha1.AccessToken{
			ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: e.ns},
			Spec: tokensv1alpha1.AccessTokenSpec{
				IssuerRef:  tokensv1alpha1.IssuerReference{Name: "cable"},
				Parameters: map[string]apiextensionsv1.JSON{"lifetimeSeconds": {Raw: value}},
				Secret:     tokensv1alpha1.SecretTemplate{Name: "big-token"},
			},
		}
		Expect(k8sClient.Create(ctx, at)).To(Succeed(), "admission bounds the number of parameters, not their size")
		Eventually(func() string {
			if c := renewing(at); c != nil {
				return c.Reason
			}
			return ""
		}, 10*time.Second).Should(Equal(tokensv1alpha1.ReasonInvalidSpec))
		Expect(renewing(at).Message).To(ContainSubstring("more than the 65536 tokenmint reads"))
		Expect(e.fake.Calls()).To(BeZero())
	})

	It("adds the owner proof to a Secret written without one, without minting", func() {
		at := waitReady(e.accessToken("legacy"))
		s, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Annotations).To(HaveKey(secret.AnnotationOwnerProof))
		token := string(s.Data["token"])

		By("removing the proof, as in a Secret written by an earlier version")
		patch := []byte(`{"metadata":{"annotations":{"` + secret.AnnotationOwnerProof + `":null}}}`)
		Expect(k8sClient.Patch(ctx, s, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
		poke(at)
		Eventually(func(g Gomega) {
			s, err := secretOf(at)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.Annotations).To(HaveKey(secret.AnnotationOwnerProof))
		}, 10*time.Second).Should(Succeed())
		settle(at)
		Expect(e.fake.Issued()).To(HaveLen(1), "minted again for a Secret without proof")
		s, err = secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(s.Data["token"])).To(Equal(token))
		Expect(reasonsAbout(at)).NotTo(ContainElement("SecretRestored"))
	})
})
