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

package e2eplugin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	kt "github.com/tokenmint/tokenmint/internal/plugin"
	"github.com/tokenmint/tokenmint/test/samples"
)

// clientCertificate returns a CA and a client certificate it issued to
// commonName, with the client's key, as PEM.
func clientCertificate(commonName string) (ca *x509.Certificate, certPEM, keyPEM string) {
	GinkgoHelper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test client CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	Expect(err).NotTo(HaveOccurred())
	ca, err = x509.ParseCertificate(der)
	Expect(err).NotTo(HaveOccurred())
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: commonName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	Expect(err).NotTo(HaveOccurred())
	keyDER, err := x509.MarshalECPrivateKey(key)
	Expect(err).NotTo(HaveOccurred())
	return ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
}

var _ = Describe("test --send with mutual TLS", func() {
	It("presents the issuer's client certificate and trusts its caBundle, as the manager does", func() {
		ca, certPEM, keyPEM := clientCertificate("orders-client")
		const token = "mtls-token-canary-0123456789"
		var served atomic.Int32
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "orders-client" ||
				r.FormValue("client_id") != "orders-client" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			served.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token": "` + token + `", "expires_in": 600}`))
		}))
		listener, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		Expect(srv.Listener.Close()).To(Succeed())
		srv.Listener = listener
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
		DeferCleanup(srv.Close)

		ns := newNamespace()
		s, err := samples.Load("mtls-client-credentials.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.PointAt(srv.URL)).To(Succeed())
		s.Spec().AllowInsecureHTTP = false
		s.Spec().CABundle = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		s.Secrets[0].StringData = map[string]string{"tls.crt": certPEM, "tls.key": keyPEM}
		s.Place(ns, credentialsNamespace, "")
		Expect(k8sClient.Create(ctx, s.Secrets[0])).To(Succeed())
		Expect(k8sClient.Create(ctx, s.TokenIssuer)).To(Succeed())

		By("rendering: the certificate travels in the handshake, never in the request")
		r := plugin("test", s.TokenIssuer.Name, "-n", ns)
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(ContainSubstring("client_id=orders-client&grant_type=client_credentials&scope=accounts"))

		r2 := plugin("test", s.TokenIssuer.Name, "-n", ns, "--send", "--allow-private-destinations", "-o", "json")
		Expect(r2.code).To(Equal(0), r2.output())
		var v kt.TestView
		Expect(json.Unmarshal([]byte(r2.stdout), &v)).To(Succeed())
		Expect(served.Load()).To(BeEquivalentTo(1))
		Expect(v.Result.Token.Bytes).To(Equal(len(token)))
		Expect(v.Result.ExpiresAt.Time).To(BeTemporally("~", time.Now().Add(10*time.Minute), time.Minute))

		var canaries []string
		for _, line := range strings.Split(keyPEM, "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				canaries = append(canaries, line)
			}
		}
		expectNoneOf(r.output()+r2.output(), append(canaries, token))
	})
})
