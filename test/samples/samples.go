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

// Package samples loads the manifests of config/samples and wires each to the
// fake of its provider, for the controller suite, the end-to-end suite and the
// demo: what is tested is what users copy.
package samples

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/controlplane"
	"github.com/tokenmint/tokenmint/test/fakes"
)

// Credential is the value that replaces a sample Secret's placeholder: a
// private key (keys named private-key) as the PEM of TestKey, anything else a
// recognisable string.
func Credential(secret, key string) string {
	switch key {
	case "AWS_ACCESS_KEY_ID":
		return AWSAccessKeyID
	case "private-key", "tls.key":
		return testKeyPEM()
	case "private-key.p8":
		der, err := x509.MarshalPKCS8PrivateKey(TestECKey())
		if err != nil {
			panic(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	case "tls.crt":
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: TestCertificate().Raw}))
	case "key.json":
		return googleKeyFile()
	}
	return "test-" + secret + "-" + key
}

// AWSAccessKeyID is the access key id of the samples' AWS Secrets (an IAM
// user's key, as AWS's documentation writes its example).
const AWSAccessKeyID = "AKIAIOSFODNN7EXAMPLE"

// The tenant and application of the Entra sample.
const (
	EntraTenant   = "11111111-2222-3333-4444-555555555555"
	EntraClientID = "00001111-aaaa-2222-bbbb-3333cccc4444"
)

// The service account of the samples' Google key file.
const (
	GoogleServiceAccount = "tokenmint-test@example-project.iam.gserviceaccount.com"
	GoogleKeyID          = "0123456789abcdef0123456789abcdef01234567"
)

// googleKeyFile is a Google service account key file holding TestKey.
func googleKeyFile() string {
	der, err := x509.MarshalPKCS8PrivateKey(testKey())
	if err != nil {
		panic(err)
	}
	doc, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "example-project", "private_key_id": GoogleKeyID,
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": GoogleServiceAccount, "client_id": "100000000000000000001",
		"token_uri": "https://oauth2.googleapis.com/token",
	})
	return string(doc)
}

var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

var testECKey = sync.OnceValue(func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
})

// TestECKey is the P-256 key of the samples' private-key.p8 credentials (an
// App Store Connect API key), made once per process.
func TestECKey() *ecdsa.PrivateKey { return testECKey() }

// The App Store Connect sample's issuer id and key id.
const (
	AppStoreIssuerID = "57246542-96fe-1a63-e053-0824d011072a"
	AppStoreKeyID    = "2X9R4HXF34"
)

var testCertificate = sync.OnceValue(func() *x509.Certificate {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tokenmint test client"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(4_000_000_000, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &testKey().PublicKey, testKey())
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return cert
})

// TestCertificate is a self-signed certificate of TestKey, the samples'
// client certificate.
func TestCertificate() *x509.Certificate { return testCertificate() }

// TestKey is the private key the samples' private-key credentials hold, made
// once per process; the fakes verify signatures with its public key.
func TestKey() *rsa.PrivateKey { return testKey() }

func testKeyPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey())}))
}

// Provider is one sample and the fake that serves it.
type Provider struct {
	// Name is a short label ("cable-transactions").
	Name string
	// File is the sample's file name in config/samples.
	File string
	// NewFake returns the provider's fake, accepting the sample's test credentials.
	NewFake func() (fakes.Server, *fakes.Base)
}

// Providers lists every sample: the four seed APIs and OAuth2.
var Providers = []Provider{
	{"cable-transactions", "cable-transactions.yaml", func() (fakes.Server, *fakes.Base) {
		f := fakes.NewTransactionAPI(Credential("cable-auth-token", "token"))
		return f, &f.Base
	}},
	{"paisr-invoicing", "paisr-invoicing.yaml", func() (fakes.Server, *fakes.Base) {
		f := fakes.NewInvoicingAPI(Credential("paisr-api-key", "apiKey"))
		return f, &f.Base
	}},
	{"ca-authentication", "ca-authentication.yaml", func() (fakes.Server, *fakes.Base) {
		f := fakes.NewAuthenticationService(Credential("ca-service-account", "username"), Credential("ca-service-account", "password"))
		return f, &f.Base
	}},
	{"banking-oauth-password", "banking-oauth-password.yaml", func() (fakes.Server, *fakes.Base) {
		f := fakes.NewBankingAPI(Credential("banking-credentials", "consumerKey"), Credential("banking-credentials", "consumerSecret"),
			Credential("banking-credentials", "username"), Credential("banking-credentials", "password"))
		return f, &f.Base
	}},
	{"github-app", "github-app.yaml", func() (fakes.Server, *fakes.Base) {
		f := fakes.NewGitHubApps("Iv23liEXAMPLE1234567", "123456", "56781234", &TestKey().PublicKey)
		return f, &f.Base
	}},
	{"google-service-account", "google-service-account.yaml", func() (fakes.Server, *fakes.Base) {
		f := fakes.NewGoogleServiceAccounts(GoogleServiceAccount, GoogleKeyID, &TestKey().PublicKey)
		return f, &f.Base
	}},
	{"entra-client-assertion", "entra-client-assertion.yaml", func() (fakes.Server, *fakes.Base) {
		f := fakes.NewEntraID(EntraTenant, EntraClientID, TestCertificate())
		return f, &f.Base
	}},
	{"okta-private-key-jwt", "okta-private-key-jwt.yaml", func() (fakes.Server, *fakes.Base) {
		f := &fakes.OAuth2Server{TokenPath: "/oauth2/default/v1/token", Scopes: []string{"orders.read"},
			AssertionKeys: map[string]crypto.PublicKey{"0oa1example2client3": &TestKey().PublicKey},
			Audience:      "https://example.okta.com/oauth2/default/v1/token"}
		return f, &f.Base
	}},
	{"aws-ecr-pull-secret-access-key", "aws-ecr-pull-secret-access-key.yaml", func() (fakes.Server, *fakes.Base) {
		f := &fakes.ECR{Keys: map[string]fakes.AWSKey{AWSAccessKeyID: {SecretAccessKey: Credential("aws-ecr-user", "AWS_SECRET_ACCESS_KEY")}}}
		return f, &f.Base
	}},
	{"oauth2-client-credentials", "oauth2-client-credentials.yaml", func() (fakes.Server, *fakes.Base) {
		f := fakes.NewOAuth2Server(Credential("oauth2-client", "clientID"), Credential("oauth2-client", "clientSecret"))
		f.Scopes = []string{"orders.read", "orders.write"}
		return f, &f.Base
	}},
}

// Sample is one file of config/samples, decoded.
type Sample struct {
	Secrets            []*corev1.Secret
	ServiceAccounts    []*corev1.ServiceAccount
	TokenIssuer        *tokensv1alpha1.TokenIssuer
	ClusterTokenIssuer *tokensv1alpha1.ClusterTokenIssuer
	AccessToken        *tokensv1alpha1.AccessToken
	ClusterAccessToken *tokensv1alpha1.ClusterAccessToken
}

// Load reads config/samples/<file>, refusing unknown fields.
func Load(file string) (*Sample, error) {
	data, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "config", "samples", file))
	if err != nil {
		return nil, err
	}
	s := &Sample{}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		var head struct{ Kind string }
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		var into any
		switch head.Kind {
		case "":
			continue
		case "Secret":
			sec := &corev1.Secret{}
			s.Secrets, into = append(s.Secrets, sec), sec
		case "ServiceAccount":
			sa := &corev1.ServiceAccount{}
			s.ServiceAccounts, into = append(s.ServiceAccounts, sa), sa
		case "TokenIssuer":
			s.TokenIssuer = &tokensv1alpha1.TokenIssuer{}
			into = s.TokenIssuer
		case "ClusterTokenIssuer":
			s.ClusterTokenIssuer = &tokensv1alpha1.ClusterTokenIssuer{}
			into = s.ClusterTokenIssuer
		case "AccessToken":
			s.AccessToken = &tokensv1alpha1.AccessToken{}
			into = s.AccessToken
		case "ClusterAccessToken":
			s.ClusterAccessToken = &tokensv1alpha1.ClusterAccessToken{}
			into = s.ClusterAccessToken
		default:
			return nil, fmt.Errorf("%s: unexpected kind %s", file, head.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, into); err != nil {
			return nil, fmt.Errorf("%s: decoding %s: %w", file, head.Kind, err)
		}
	}
	onlyToken := s.TokenIssuer == nil && s.ClusterTokenIssuer == nil && len(s.Secrets) == 0 && len(s.ServiceAccounts) == 0
	if onlyToken && (s.AccessToken == nil) != (s.ClusterAccessToken == nil) {
		return s, nil
	}
	if s.AccessToken == nil || s.ClusterAccessToken != nil || (s.TokenIssuer == nil) == (s.ClusterTokenIssuer == nil) {
		return nil, fmt.Errorf("%s: want one issuer and one AccessToken, or an AccessToken or ClusterAccessToken alone", file)
	}
	return s, nil
}

// Spec returns the sample's issuer spec.
func (s *Sample) Spec() *tokensv1alpha1.IssuerSpec {
	if s.TokenIssuer != nil {
		return &s.TokenIssuer.Spec
	}
	return &s.ClusterTokenIssuer.Spec.IssuerSpec
}

// PointAt sends every request of the issuer to base (scheme and host; paths
// stay) and allows plain http, for a fake on loopback.
func (s *Sample) PointAt(base string) error {
	target, err := url.Parse(base)
	if err != nil {
		return err
	}
	spec := s.Spec()
	if spec.SignedJWT != nil {
		return nil // the issuer signs its token and calls nothing
	}
	requests := []*tokensv1alpha1.RequestSpec{&spec.Request, spec.Refresh, spec.Revoke}
	for i := range spec.Steps {
		requests = append(requests, &spec.Steps[i].Request)
	}
	for _, r := range requests {
		if r == nil || r.URL == "" {
			continue // refresh and revoke inherit request's URL
		}
		u, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(r.URL))
		if err != nil {
			return err
		}
		// Only the origin changes: the path keeps its {placeholders}.
		r.URL = target.Scheme + "://" + target.Host + r.URL[len(u.Scheme+"://"+u.Host):]
	}
	spec.AllowInsecureHTTP = true
	return nil
}

// FillCredentials replaces every placeholder of the sample's Secrets with its
// test credential.
func (s *Sample) FillCredentials() {
	for _, sec := range s.Secrets {
		for k := range sec.StringData {
			sec.StringData[k] = Credential(sec.Name, k)
		}
	}
}

// Place moves the sample into namespace: the AccessToken and a TokenIssuer with
// its Secrets, or, for a ClusterTokenIssuer, its Secrets into
// credentialsNamespace and its allowed namespaces to namespace. A non-empty
// suffix is added to the cluster-scoped issuer's name to keep it unique.
func (s *Sample) Place(namespace, credentialsNamespace, suffix string) {
	s.AccessToken.Namespace = namespace
	secretsNS := namespace
	if s.ClusterTokenIssuer != nil {
		secretsNS = credentialsNamespace
		s.ClusterTokenIssuer.Name += suffix
		s.AccessToken.Spec.IssuerRef.Name = s.ClusterTokenIssuer.Name
		if a := s.ClusterTokenIssuer.Spec.AllowedNamespaces; a != nil && !slices.Contains(a.Names, namespace) {
			a.Names = append(a.Names, namespace)
		}
	} else {
		s.TokenIssuer.Namespace = namespace
	}
	for _, sec := range s.Secrets {
		sec.Namespace = secretsNS
	}
	for _, sa := range s.ServiceAccounts {
		sa.Namespace = namespace
	}
}

// Objects returns the sample's objects in the order to create them.
func (s *Sample) Objects() []client.Object {
	var objs []client.Object
	for _, sec := range s.Secrets {
		objs = append(objs, sec)
	}
	for _, sa := range s.ServiceAccounts {
		objs = append(objs, sa)
	}
	if s.TokenIssuer != nil {
		objs = append(objs, s.TokenIssuer)
	} else {
		objs = append(objs, s.ClusterTokenIssuer)
	}
	return append(objs, s.AccessToken)
}
