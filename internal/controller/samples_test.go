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
	cryptorand "crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

var _ = Describe("the samples", func() {
	for _, p := range samples.Providers {
		It("issue a token from "+p.File, func() {
			ns := "s-" + rand.String(6)
			Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
			fake, base := p.NewFake()
			base.Clock = clk
			url := serveFake(fake, base)

			s, err := samples.Load(p.File)
			Expect(err).NotTo(HaveOccurred())
			Expect(s.PointAt(url)).To(Succeed())
			s.FillCredentials()
			s.Place(ns, credentialsNamespace, "-"+ns)
			for _, o := range s.Objects() {
				Expect(k8sClient.Create(ctx, o)).To(Succeed())
				if o.GetNamespace() == "" || o.GetNamespace() == credentialsNamespace {
					DeferCleanup(k8sClient.Delete, ctx, o)
				}
			}

			at := waitReady(s.AccessToken)
			issued := base.Issued()
			Expect(issued).To(HaveLen(1))
			sec, err := secretOf(at)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(sec.Data[secret.Key(at)])).To(Equal(issued[0].Value))
			if s.Spec().Response.Expiry == nil {
				Expect(at.Status.ExpiresAt).To(BeNil(), "the provider reports no expiry")
				Expect(at.Status.RenewalTime).NotTo(BeNil(), "maxAge decides renewal")
			} else {
				Expect(at.Status.ExpiresAt.Time).To(BeTemporally("~", issued[0].ExpiresAt, time.Second))
			}

			if issued[0].RefreshToken != "" {
				By("keeping the refresh token out of the Secret pods mount")
				for k, v := range sec.Data {
					Expect(string(v)).NotTo(Equal(issued[0].RefreshToken), "key %s", k)
				}
				state := &corev1.Secret{}
				Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: secret.StateName(at)}, state)).To(Succeed())
				st, err := secret.DecodeState(state)
				Expect(err).NotTo(HaveOccurred())
				Expect(st.RefreshToken).To(Equal(issued[0].RefreshToken))

				By("renewing with the refresh token")
				clk.SetTime(at.Status.RenewalTime.Add(time.Second))
				poke(at)
				Eventually(func() int { return base.CallsBy(fakes.OutcomeRefreshed) }, 10*time.Second).Should(Equal(1))
				Expect(base.CallsBy(fakes.OutcomeIssued)).To(Equal(1))
			}
		})
	}
})

// bearerAccepted calls url with token as its bearer and the headers given,
// and tells whether the API answered 200.
func bearerAccepted(method, url, token string, headers map[string]string) bool {
	req, err := http.NewRequest(method, url, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.Body.Close()).To(Succeed())
	return resp.StatusCode == http.StatusOK
}

// selfSignedSample applies a sample whose issuer signs its token itself and
// checks, with accepts, that the API takes the JWT in the Secret; that the
// API was never called to mint; and that a new JWT, accepted too, is signed at
// the renewal time.
func selfSignedSample(file string, accepts func(token string) bool, calls func() int, lifetime time.Duration) {
	ns := "self-" + rand.String(6)
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	s, err := samples.Load(file)
	Expect(err).NotTo(HaveOccurred())
	Expect(s.PointAt("http://127.0.0.1:1")).To(Succeed()) // nothing to point: it makes no call
	s.FillCredentials()
	s.Place(ns, credentialsNamespace, "-"+ns)
	for _, o := range s.Objects() {
		Expect(k8sClient.Create(ctx, o)).To(Succeed())
	}

	at := waitReady(s.AccessToken)
	sec, err := secretOf(at)
	Expect(err).NotTo(HaveOccurred())
	first := string(sec.Data[secret.Key(at)])
	Expect(accepts(first)).To(BeTrue(), "the API refuses the signed token")
	Expect(at.Status.ExpiresAt.Time).To(BeTemporally("~", clk.Now().Add(lifetime), time.Second))
	Expect(calls()).To(Equal(1), "signing the token called the API")

	By("signing a new token at the renewal time")
	clk.SetTime(at.Status.RenewalTime.Add(time.Second))
	poke(at)
	Eventually(func(g Gomega) {
		sec, err := secretOf(at)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(sec.Data[secret.Key(at)])).NotTo(Equal(first))
	}, 10*time.Second).Should(Succeed())
	sec, err = secretOf(at)
	Expect(err).NotTo(HaveOccurred())
	Expect(accepts(string(sec.Data[secret.Key(at)]))).To(BeTrue(), "the API refuses the renewed token")
}

var _ = Describe("the samples whose issuer signs the token", func() {
	It("App Store Connect: writes a JWT the API accepts, and signs a new one before it expires", func() {
		api := fakes.NewAppStoreConnect(samples.AppStoreIssuerID, samples.AppStoreKeyID, &samples.TestECKey().PublicKey)
		api.Clock = clk
		url := serveFake(api, &api.Base)
		selfSignedSample("app-store-connect.yaml", func(token string) bool {
			return bearerAccepted(http.MethodGet, url+"/v1/apps", token, nil)
		}, api.Calls, 20*time.Minute)
		Expect(api.Accepted()).To(HaveLen(2))
	})

	It("Snowflake key pair: writes a JWT whose iss carries the key's fingerprint, and signs a new one before it expires", func() {
		api := &fakes.Snowflake{Account: "MYORG-MYACCOUNT", User: "SVC_ORDERS", PublicKey: &samples.TestKey().PublicKey}
		api.Clock = clk
		url := serveFake(api, &api.Base)
		selfSignedSample("snowflake-key-pair.yaml", func(token string) bool {
			return bearerAccepted(http.MethodPost, url+fakes.SnowflakeStatementsPath, token,
				map[string]string{"X-Snowflake-Authorization-Token-Type": "KEYPAIR_JWT"})
		}, api.Calls, 59*time.Minute)
		Expect(api.Accepted()).To(HaveLen(2))
	})
})

var _ = Describe("a signing key that cannot be used", func() {
	// refused loads a sample against its fake, lets change break its
	// credentials, and returns the Renewing condition's message once the
	// AccessToken reports the problem; the fake must never have been called.
	refused := func(file string, change func(*samples.Sample)) string {
		ns := "key-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		i := slices.IndexFunc(samples.Providers, func(p samples.Provider) bool { return p.File == file })
		Expect(i).NotTo(BeNumerically("<", 0))
		fake, base := samples.Providers[i].NewFake()
		base.Clock = clk
		s, err := samples.Load(file)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.PointAt(serveFake(fake, base))).To(Succeed())
		s.FillCredentials()
		change(s)
		s.Place(ns, credentialsNamespace, "-"+ns)
		for _, o := range s.Objects() {
			Expect(k8sClient.Create(ctx, o)).To(Succeed())
			if o.GetNamespace() == "" || o.GetNamespace() == credentialsNamespace {
				DeferCleanup(k8sClient.Delete, ctx, o)
			}
		}
		var message string
		Eventually(func() string {
			if c := renewing(s.AccessToken); c != nil && c.Reason == tokensv1alpha1.ReasonInvalidConfig {
				message = c.Message
			}
			return message
		}, 10*time.Second).ShouldNot(BeEmpty())
		Expect(base.Calls()).To(BeZero(), "the provider was called with a JWT it would refuse")
		return message
	}

	It("is refused when the algorithm does not suit the key", func() {
		message := refused("github-app.yaml", func(s *samples.Sample) {
			issuer.FindCredential(s.Spec(), "app-jwt").SignedJWT.Algorithm = "ES256"
		})
		Expect(message).To(ContainSubstring("algorithm ES256 needs an ECDSA P-256 key, but the key is an RSA key"))
		Expect(message).NotTo(ContainSubstring("PRIVATE KEY"))
	})

	It("is refused when the certificate it names has expired", func() {
		expired := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "expired"},
			NotBefore: clk.Now().Add(-48 * time.Hour), NotAfter: clk.Now().Add(-time.Hour)}
		der, err := x509.CreateCertificate(cryptorand.Reader, expired, expired, &samples.TestKey().PublicKey, samples.TestKey())
		Expect(err).NotTo(HaveOccurred())
		message := refused("entra-client-assertion.yaml", func(s *samples.Sample) {
			s.Secrets[0].StringData["tls.crt"] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		})
		Expect(message).To(ContainSubstring("expired at " + expired.NotAfter.UTC().Format(time.RFC3339)))
	})
})
