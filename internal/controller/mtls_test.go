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
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/samples"
)

// testCA issues client certificates for the mutual TLS specs.
type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

func newTestCA() *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test client CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	Expect(err).NotTo(HaveOccurred())
	cert, err := x509.ParseCertificate(der)
	Expect(err).NotTo(HaveOccurred())
	return &testCA{key: key, cert: cert}
}

// issue returns a client certificate (serial) and its key, both PEM.
func (ca *testCA) issue(serial int64) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "orders-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	Expect(err).NotTo(HaveOccurred())
	keyDER, err := x509.MarshalECPrivateKey(key)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

var _ = Describe("mutual TLS", func() {
	It("presents the client certificate of a kubernetes.io/tls Secret, and the renewed one after it changes", func() {
		ca := newTestCA()
		var seen struct {
			sync.Mutex
			serials []int64
		}
		// An RFC 8705 token endpoint: the client is authenticated by its
		// certificate, which must chain to the CA (tls_client_auth).
		srv := newServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/token" || r.ParseForm() != nil || r.PostForm.Get("client_id") != "orders-client" ||
				r.PostForm.Has("client_secret") || len(r.TLS.PeerCertificates) == 0 {
				http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
				return
			}
			seen.Lock()
			seen.serials = append(seen.serials, r.TLS.PeerCertificates[0].SerialNumber.Int64())
			n := len(seen.serials)
			seen.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprint("CANARY-MTLS-TOKEN-", n, "-", utilrand.String(8)), "expires_in": 3600, "token_type": "Bearer"})
		}))
		pool := x509.NewCertPool()
		pool.AddCert(ca.cert)
		srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
		srv.StartTLS()
		DeferCleanup(srv.Close)

		ns := "m-" + utilrand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		s, err := samples.Load("mtls-client-credentials.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.PointAt(srv.URL)).To(Succeed())
		s.Place(ns, credentialsNamespace, "")
		s.TokenIssuer.Spec.AllowInsecureHTTP = false
		s.TokenIssuer.Spec.CABundle = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		certPEM, keyPEM := ca.issue(2)
		tlsSecret := s.Secrets[0]
		tlsSecret.StringData = nil
		tlsSecret.Data = map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}
		for _, o := range s.Objects() {
			Expect(k8sClient.Create(ctx, o)).To(Succeed())
		}
		at := s.AccessToken
		waitReady(at)
		seen.Lock()
		Expect(seen.serials).To(Equal([]int64{2}))
		seen.Unlock()

		By("cert-manager renews the certificate: the next call presents the new one")
		clk.Step(DefaultMinMintInterval)
		certPEM, keyPEM = ca.issue(3)
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tlsSecret), tlsSecret)).To(Succeed())
		tlsSecret.Data = map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}
		Expect(k8sClient.Update(ctx, tlsSecret)).To(Succeed())
		Eventually(func() []int64 {
			seen.Lock()
			defer seen.Unlock()
			return append([]int64(nil), seen.serials...)
		}, 15*time.Second).Should(Equal([]int64{2, 3}))
		waitReady(at)
	})

	It("reports a Secret that holds no usable certificate and key", func() {
		e := newEnvWith(func(s *tokensv1alpha1.IssuerSpec) {
			s.ClientCertificate = &tokensv1alpha1.ClientCertificate{SecretName: "broken-client"}
		})
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "broken-client", Namespace: e.ns},
			Data: map[string][]byte{corev1.TLSCertKey: []byte("CANARY-NOT-A-CERT"), corev1.TLSPrivateKeyKey: []byte("CANARY-NOT-A-KEY")}})).To(Succeed())
		at := e.accessToken("no-cert")
		Eventually(func() string {
			if c := renewing(at); c != nil {
				return c.Message
			}
			return ""
		}, 10*time.Second).Should(ContainSubstring("does not hold a usable certificate and key"))
		Expect(renewing(at).Message).NotTo(ContainSubstring("CANARY"))
		Expect(e.fake.Calls()).To(BeZero())
	})
})
