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
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

var _ = Describe("the local control plane", func() {
	It("stores and returns a Secret", func() {
		in := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "controlplane-check", Namespace: "default"},
			StringData: map[string]string{"k": "v"},
		}
		Expect(k8sClient.Create(ctx, in)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, in)

		out := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(in), out)).To(Succeed())
		Expect(out.Data).To(HaveKeyWithValue("k", []byte("v")))
	})

	It("serves tokenmint's CRDs with their defaults", func() {
		at := &tokensv1alpha1.AccessToken{
			ObjectMeta: metav1.ObjectMeta{Name: "crd-check", Namespace: "default"},
			Spec: tokensv1alpha1.AccessTokenSpec{
				IssuerRef: tokensv1alpha1.IssuerReference{Name: "some-issuer"},
				Secret:    tokensv1alpha1.SecretTemplate{Name: "crd-check-token"},
			},
		}
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, at)

		out := &tokensv1alpha1.AccessToken{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), out)).To(Succeed())
		Expect(out.Spec.IssuerRef.Kind).To(Equal(tokensv1alpha1.TokenIssuerKind))
		Expect(out.Spec.Secret.Key).To(Equal("token"))
		Expect(out.Spec.Secret.Type).To(BeEquivalentTo("Opaque"))
	})
})
