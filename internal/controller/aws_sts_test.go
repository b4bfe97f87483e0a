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

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

var _ = Describe("the AWS STS web identity sample", func() {
	It("writes session credentials, the secret access key only into the Secret", func() {
		ns := "aws-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		fake := &fakes.AWSSTS{Roles: []string{"arn:aws:iam::123456789012:role/orders-api"}}
		// STS trusts the cluster's ServiceAccount issuer: the real apiserver
		// checks the web identity token's signature and audience.
		fake.Verify = func(token string) bool {
			review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{fakes.STSAudience}}}
			return k8sClient.Create(ctx, review) == nil && review.Status.Authenticated &&
				review.Status.User.Username == "system:serviceaccount:"+ns+":orders-api"
		}
		s, err := samples.Load("aws-sts-web-identity.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.PointAt(serveFake(fake, &fake.Base))).To(Succeed())
		s.Place(ns, credentialsNamespace, "")
		create(s)

		at := waitReady(s.AccessToken)
		issued := fake.Issued()
		Expect(issued).To(HaveLen(1))
		Expect(fake.Calls()).To(Equal(1))
		secretKey := issued[0].Secrets[0]
		addCanaries(fake.CredentialsReceived()...)
		sec, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(sec.Data).To(HaveLen(3))
		Expect(string(sec.Data["AWS_SESSION_TOKEN"])).To(Equal(issued[0].Value))
		Expect(string(sec.Data["AWS_ACCESS_KEY_ID"])).To(Equal(issued[0].Request["accessKeyId"]))
		Expect(string(sec.Data["AWS_SECRET_ACCESS_KEY"])).To(Equal(secretKey))
		Expect(at.Status.ExpiresAt.Time).To(BeTemporally("==", issued[0].ExpiresAt))

		status, err := json.Marshal(get(at).Status)
		Expect(err).NotTo(HaveOccurred())
		events := &corev1.EventList{}
		Expect(k8sClient.List(ctx, events, client.InNamespace(ns))).To(Succeed())
		eventText, err := json.Marshal(events.Items)
		Expect(err).NotTo(HaveOccurred())
		for _, where := range []string{string(status), string(eventText), logs.String()} {
			Expect(where).NotTo(ContainSubstring(secretKey))
			Expect(where).NotTo(ContainSubstring(issued[0].Value))
		}
	})
})
