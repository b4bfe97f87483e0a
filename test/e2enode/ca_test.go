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

package e2enode

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http/httptest"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/samples"
)

// caNamespace holds the AccessTokens of the corporate CA spec.
const caNamespace = "node-ca"

// corporateCA stands for a company's own CA: the suite installs the chart with
// it in a ConfigMap (extraObjects), mounted into the manager (extraVolumes,
// extraVolumeMounts) and named by SSL_CERT_DIR (extraEnv), as docs/install.md
// tells.
var corporateCA = newServingCert("tokenmint e2enode corporate CA")

// servingCert is a self-signed certificate for 127.0.0.1, its own CA.
type servingCert struct {
	cert tls.Certificate
	pem  string
}

func newServingCert(name string) servingCert {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return servingCert{
		cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem:  string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
	}
}

// startTLSIssuer is startIssuer over HTTPS (the fake served like fakes.Start
// does, with cert), and no caBundle in the issuer: only the manager's system
// roots decide whether it trusts the endpoint.
func startTLSIssuer(namespace, suffix string, cert servingCert) issuer {
	p := samples.Providers[0]
	fake, base := p.NewFake()
	base.Lifetime = longLifetime
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	srv := httptest.NewUnstartedServer(fake)
	_ = srv.Listener.Close()
	srv.Listener = listener
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	DeferCleanup(func() {
		fake.Close()
		srv.Close()
	})
	s, err := samples.Load(p.File)
	Expect(err).NotTo(HaveOccurred())
	Expect(s.PointAt(srv.URL)).To(Succeed())
	s.Spec().AllowInsecureHTTP = false
	Expect(s.Spec().CABundle).To(BeEmpty())
	s.FillCredentials()
	s.Place(namespace, credentialsNamespace, "-"+suffix)
	objects := s.Objects()
	apply("issuer-"+suffix, objects[:len(objects)-1]...)
	return issuer{fake: base, sample: s}
}

var _ = Describe("the manager's image with a corporate CA mounted through the chart", Ordered, func() {
	var trusted, unknown issuer

	BeforeAll(func() {
		kubectl("create", "namespace", caNamespace)
		trusted = startTLSIssuer(caNamespace, "corporate-ca", corporateCA)
		unknown = startTLSIssuer(caNamespace, "unknown-ca", newServingCert("an unknown CA"))
		apply("ca-tokens", trusted.accessToken("corporate-ca", 0), unknown.accessToken("unknown-ca", 0))
	})

	It("trusts an HTTPS endpoint whose certificate the mounted CA issued, and not one of an unknown CA", func() {
		Eventually(func(g Gomega) {
			issued := trusted.fake.Issued()
			g.Expect(issued).To(HaveLen(1))
			s := &corev1.Secret{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: caNamespace, Name: "corporate-ca-token"}, s)).To(Succeed())
			g.Expect(fingerprint(string(s.Data["token"]))).To(Equal(fingerprint(issued[0].Value)))
		}, time.Minute, 200*time.Millisecond).Should(Succeed())

		Eventually(func(g Gomega) {
			at := &tokensv1alpha1.AccessToken{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: caNamespace, Name: "unknown-ca"}, at)).To(Succeed())
			c := meta.FindStatusCondition(at.Status.Conditions, tokensv1alpha1.ConditionRenewing)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Message).To(ContainSubstring("certificate"))
		}, time.Minute, 200*time.Millisecond).Should(Succeed())
		Expect(unknown.fake.Issued()).To(BeEmpty(), "the manager sent a request to an endpoint it should not trust")
	})
})

// corporateCAValues are the chart values that add corporateCA to the manager's
// trusted roots.
func corporateCAValues() map[string]any {
	return map[string]any{
		"extraObjects": []any{map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "corporate-ca", "namespace": operatorNamespace},
			"data":     map[string]any{"ca.crt": corporateCA.pem},
		}},
		"extraVolumes": []any{map[string]any{
			"name": "corporate-ca", "configMap": map[string]any{"name": "corporate-ca"},
		}},
		"extraVolumeMounts": []any{map[string]any{
			"name": "corporate-ca", "mountPath": "/etc/tokenmint/ca", "readOnly": true,
		}},
	}
}
