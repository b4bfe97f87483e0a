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

package issuer

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/yaml"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// sample is one file of config/samples, decoded into the API types.
type sample struct {
	secrets []corev1.Secret
	issuer  *v1alpha1.IssuerSpec
	token   *v1alpha1.AccessToken
}

func loadSample(t testing.TB, name string) sample {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", name))
	if err != nil {
		t.Fatalf("reading sample: %v", err)
	}
	var s sample
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(string(data))))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("splitting %s: %v", name, err)
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch meta.Kind {
		case "Secret":
			var secret corev1.Secret
			mustUnmarshalStrict(t, doc, &secret)
			s.secrets = append(s.secrets, secret)
		case "TokenIssuer":
			var issuer v1alpha1.TokenIssuer
			mustUnmarshalStrict(t, doc, &issuer)
			s.issuer = &issuer.Spec
		case "ClusterTokenIssuer":
			var issuer v1alpha1.ClusterTokenIssuer
			mustUnmarshalStrict(t, doc, &issuer)
			s.issuer = &issuer.Spec.IssuerSpec
		case "AccessToken":
			var token v1alpha1.AccessToken
			mustUnmarshalStrict(t, doc, &token)
			s.token = &token
		case "", "ServiceAccount":
		default:
			t.Fatalf("%s: unexpected kind %q", name, meta.Kind)
		}
	}
	if s.issuer == nil || s.token == nil || (len(s.secrets) == 0 && len(SecretRefs(s.issuer)) > 0) {
		t.Fatalf("%s must hold an issuer, an AccessToken and the Secrets the issuer reads", name)
	}
	if err := Validate(s.issuer); err != nil {
		t.Fatalf("%s: the issuer does not validate: %v", name, err)
	}
	return s
}

// mustUnmarshalStrict refuses unknown fields, so that a typo in a sample fails here.
func mustUnmarshalStrict(t testing.TB, doc []byte, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		t.Fatalf("decoding %T: %v", into, err)
	}
}

// testCredential is the value a test puts in place of a sample's placeholder:
// a private key (keys named private-key) is testRSAKey in PKCS#1 PEM.
func testCredential(secret, key string) string {
	switch key {
	case "AWS_ACCESS_KEY_ID":
		return samples.AWSAccessKeyID
	case "private-key", "tls.key":
		return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testRSAKey)}))
	case "tls.crt":
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: testCertificate().Raw}))
	case "private-key.p8":
		der, _ := x509.MarshalPKCS8PrivateKey(testP256)
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	case "key.json":
		der, _ := x509.MarshalPKCS8PrivateKey(testRSAKey)
		doc, _ := json.Marshal(map[string]string{"type": "service_account", "private_key_id": "kid-1",
			"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "client_email": "robot@example.iam.gserviceaccount.com"})
		return string(doc)
	}
	return "test-" + secret + "-" + key
}

// secretValues resolves every placeholder of the sample's Secrets to its test
// credential, checking that each really is a placeholder.
func (s sample) secretValues(t testing.TB) map[v1alpha1.SecretKeySelector]string {
	t.Helper()
	values := map[v1alpha1.SecretKeySelector]string{}
	for _, secret := range s.secrets {
		for key, placeholder := range secret.StringData {
			if !strings.HasPrefix(placeholder, "REPLACE-WITH-") {
				t.Errorf("Secret %s key %s is not an obvious placeholder: %q", secret.Name, key, placeholder)
			}
			values[v1alpha1.SecretKeySelector{Name: secret.Name, Key: key}] = testCredential(secret.Name, key)
		}
	}
	for _, ref := range SecretRefs(s.issuer) {
		if _, ok := values[ref]; !ok {
			t.Errorf("the issuer reads %s/%s, which the sample's Secrets do not hold", ref.Name, ref.Key)
		}
	}
	return values
}

// pointAt sends every request of spec to base (scheme and host), keeping paths.
func pointAt(t *testing.T, spec *v1alpha1.IssuerSpec, base string) {
	t.Helper()
	if SelfSigned(spec) {
		return // no call to point anywhere
	}
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	requests := []*v1alpha1.RequestSpec{&spec.Request, spec.Refresh, spec.Revoke}
	for i := range spec.Steps {
		requests = append(requests, &spec.Steps[i].Request)
	}
	for _, r := range requests {
		if r == nil || (r != &spec.Request && !isStep(spec, r) && r.URL == "") {
			continue // refresh and revoke inherit request's URL
		}
		if !strings.HasPrefix(r.URL, "https://") {
			t.Errorf("url of a sample must be https: %s", r.URL)
		}
		u, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(r.URL))
		if err != nil {
			t.Fatal(err)
		}
		// Only the origin changes: the path keeps its {placeholders}.
		r.URL = target.Scheme + "://" + target.Host + r.URL[len(u.Scheme+"://"+u.Host):]
	}
	spec.AllowInsecureHTTP = true
}

func isStep(spec *v1alpha1.IssuerSpec, r *v1alpha1.RequestSpec) bool {
	for i := range spec.Steps {
		if r == &spec.Steps[i].Request {
			return true
		}
	}
	return false
}

// sampleRun is a sample wired to a started fake.
type sampleRun struct {
	sample
	clock  *clocktesting.FakeClock
	engine *Engine
	call   Call
}

func startSample(t *testing.T, name string, fake fakes.Server, base *fakes.Base) *sampleRun {
	t.Helper()
	s := loadSample(t, name)
	clock := clocktesting.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	base.Clock = clock
	srv := fakes.Start(t, fake)
	pointAt(t, s.issuer, srv.URL)
	client, err := NewHTTPClient(TransportConfig{Timeout: 10 * time.Second, DialContext: loopbackOnly(t)})
	if err != nil {
		t.Fatal(err)
	}
	return &sampleRun{
		sample: s,
		clock:  clock,
		engine: &Engine{Clock: clock},
		call:   Call{Spec: s.issuer, Parameters: s.token.Spec.Parameters, Secrets: s.secretValues(t), HTTPClient: client},
	}
}

func (r *sampleRun) issue(t *testing.T) *Token {
	t.Helper()
	token, err := r.engine.Issue(context.Background(), r.call)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return token
}

func wantTime(t *testing.T, what string, got *time.Time, want time.Time) {
	t.Helper()
	if got == nil || !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func wantFields(t *testing.T, got, want map[string]string) {
	t.Helper()
	for key, value := range want {
		if got[key] != value {
			t.Errorf("field %s = %q, want %q", key, got[key], value)
		}
	}
	if len(got) != len(want) {
		t.Errorf("fields = %v, want %v", got, want)
	}
}

func TestSampleCableTransactions(t *testing.T) {
	fake := fakes.NewTransactionAPI(testCredential("cable-auth-token", "token"))
	run := startSample(t, "cable-transactions.yaml", fake, &fake.Base)

	token := run.issue(t)

	issued := fake.Issued()
	if len(issued) != 1 || token.Value != issued[0].Value {
		t.Fatalf("token %q is not the one the fake issued (%v)", token.Value, issued)
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, run.clock.Now().Add(time.Hour))
	wantFields(t, token.Fields, map[string]string{
		"organization_id":   "org_9f8b7c6d5e4a3b2c1d0e",
		"organization_name": "Cable Financial Services",
	})
	if got := issued[0].Request["scopes"]; len(got.([]string)) != 1 || got.([]string)[0] != "transactions:write" {
		t.Errorf("the fake saw scopes %v", got)
	}
}

func TestSamplePaisrInvoicing(t *testing.T) {
	fake := fakes.NewInvoicingAPI(testCredential("paisr-api-key", "apiKey"))
	run := startSample(t, "paisr-invoicing.yaml", fake, &fake.Base)

	token := run.issue(t)

	issued := fake.Issued()
	if len(issued) != 1 || token.Value != issued[0].Value || token.ID != issued[0].ID {
		t.Fatalf("token %q (id %q) is not the one the fake issued (%v)", token.Value, token.ID, issued)
	}
	if token.ExpiresAt != nil {
		t.Errorf("ExpiresAt = %v, want none: the API reports no expiry", token.ExpiresAt)
	}
	if got := issued[0].Request["description"]; got != "Billing service (prod)" {
		t.Errorf("the fake saw description %v", got)
	}

	// The page documents no revocation; the fake's DELETE is the shape the
	// sample shows in a comment.
	run.call.Spec.Revoke = &v1alpha1.RequestSpec{
		Method: http.MethodDelete,
		URL:    strings.TrimSuffix(run.call.Spec.Request.URL, "/v2/access-tokens") + "/v2/access-tokens/{tokenID}",
		Auth:   run.call.Spec.Request.Auth,
	}
	if err := run.engine.Revoke(context.Background(), run.call, token.Value, token.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if fake.Valid(token.Value) || fake.CallsBy(fakes.OutcomeRevoked) != 1 {
		t.Errorf("the token is still valid after revocation")
	}

	// A scope the key may not grant: the sample's rule makes it Permanent.
	fake.AllowedScopes = []string{"invoices.read"}
	call := run.call
	call.Parameters = map[string]apiextensionsv1.JSON{"scopes": {Raw: []byte(`["invoices.write"]`)}}
	if _, err := run.engine.Issue(context.Background(), call); ClassOf(err) != ClassPermanent || !strings.Contains(err.Error(), "scope not allowed") {
		t.Errorf("a scope the key may not grant: %v, want Permanent with the provider's message", err)
	}
}

func TestSampleCAAuthentication(t *testing.T) {
	fake := fakes.NewAuthenticationService(
		testCredential("ca-service-account", "username"), testCredential("ca-service-account", "password"))
	run := startSample(t, "ca-authentication.yaml", fake, &fake.Base)

	first := run.issue(t)
	// A second call must carry a fresh client_txn_id: the service refuses a repeat.
	second := run.issue(t)

	wantTime(t, "ExpiresAt", first.ExpiresAt, run.clock.Now().Add(time.Hour))
	issued := fake.Issued()
	if len(issued) != 2 || first.Value != issued[0].Value || second.Value != issued[1].Value {
		t.Fatalf("tokens are not the ones the fake issued")
	}
	if issued[0].Request["client_txn_id"] == issued[1].Request["client_txn_id"] {
		t.Errorf("client_txn_id was reused: %v", issued[0].Request["client_txn_id"])
	}
}

func TestSampleBankingPasswordAndRefresh(t *testing.T) {
	fake := fakes.NewBankingAPI(
		testCredential("banking-credentials", "consumerKey"), testCredential("banking-credentials", "consumerSecret"),
		testCredential("banking-credentials", "username"), testCredential("banking-credentials", "password"))
	run := startSample(t, "banking-oauth-password.yaml", fake, &fake.Base)

	first := run.issue(t)
	if first.Refreshed || first.RefreshToken == "" {
		t.Fatalf("first token: Refreshed=%v RefreshToken=%q, want a password grant with a refresh token", first.Refreshed, first.RefreshToken)
	}
	wantTime(t, "ExpiresAt", first.ExpiresAt, run.clock.Now().Add(time.Hour))
	wantTime(t, "RefreshTokenExpiresAt", first.RefreshTokenExpiresAt, run.clock.Now().Add(24*time.Hour))
	wantFields(t, first.Fields, map[string]string{"di_fiid": "DI1234", "di_ficustomer": "100200300"})

	run.clock.Step(50 * time.Minute)
	run.call.RefreshToken = first.RefreshToken
	second := run.issue(t)
	if !second.Refreshed || fake.CallsBy(fakes.OutcomeRefreshed) != 1 {
		t.Fatalf("second token was not obtained with the refresh grant")
	}
	wantTime(t, "refreshed ExpiresAt", second.ExpiresAt, run.clock.Now().Add(time.Hour))

	// The first refresh token was rotated away: the refresh is refused (400) and
	// the engine falls back to the password grant.
	third := run.issue(t)
	if third.Refreshed || third.Value == second.Value {
		t.Fatalf("third token: Refreshed=%v, want a fresh password grant", third.Refreshed)
	}
	if got := fake.CallsBy(fakes.OutcomeIssued); got != 2 {
		t.Errorf("password grants = %d, want 2", got)
	}
	if got := fake.CallsBy(fakes.OutcomeRejected); got != 1 {
		t.Errorf("refused refreshes = %d, want 1", got)
	}
	for _, tok := range fake.Issued() {
		if tok.Request["user-agent"] != "tokenmint/1.0" {
			t.Errorf("user-agent = %v", tok.Request["user-agent"])
		}
	}
}

func TestSampleGitHubApp(t *testing.T) {
	fake := fakes.NewGitHubApps("Iv23liEXAMPLE1234567", "123456", "56781234", &testRSAKey.PublicKey)
	run := startSample(t, "github-app.yaml", fake, &fake.Base)

	token := run.issue(t)
	if !fake.Valid(token.Value) || !strings.HasPrefix(token.Value, "ghs_") {
		t.Fatalf("token %q is not one the fake issued", token.Value)
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, run.clock.Now().Add(time.Hour))
	wantFields(t, token.Fields, map[string]string{"repository_selection": "selected"})
	if got := fake.Issued()[0].Request["repositories"]; fmt.Sprint(got) != "[octo-repo]" {
		t.Errorf("repositories sent: %v", got)
	}
	if got := fake.Issued()[0].Request["permissions"]; fmt.Sprint(got) != "map[contents:read metadata:read]" {
		t.Errorf("permissions sent: %v", got)
	}

	By2 := func(what string, params map[string]apiextensionsv1.JSON, class Class, want string) {
		t.Helper()
		call := run.call
		call.Parameters = params
		calls := fake.Calls()
		_, err := run.engine.Issue(context.Background(), call)
		if ClassOf(err) != class || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %v with %q", what, err, class, want)
		}
		if class == ClassInvalidParameters && fake.Calls() != calls {
			t.Errorf("%s: the endpoint was called", what)
		}
	}
	By2("another installation", map[string]apiextensionsv1.JSON{"installation_id": {Raw: []byte("99")}}, ClassPermanent, "Not Found")
	By2("no installation", map[string]apiextensionsv1.JSON{}, ClassInvalidParameters, `"installation_id" is required`)
	By2("a permission the issuer does not allow", map[string]apiextensionsv1.JSON{"installation_id": {Raw: []byte("56781234")},
		"permissions": {Raw: []byte(`{"administration": "write"}`)}}, ClassInvalidParameters, `key "administration" is not one of`)
	By2("a permission the installation lacks", map[string]apiextensionsv1.JSON{"installation_id": {Raw: []byte("56781234")},
		"permissions": {Raw: []byte(`{"metadata": "write"}`)}}, ClassPermanent, "not granted")

	By := func(what string, mutate func(*v1alpha1.SignedJWT), want string) {
		t.Helper()
		spec := run.call.Spec.DeepCopy()
		mutate(FindCredential(spec, spec.Request.Auth.Bearer.Credential).SignedJWT)
		call := run.call
		call.Spec = spec
		_, err := run.engine.Issue(context.Background(), call)
		if ClassOf(err) != ClassUnauthorized || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want Unauthorized with %q", what, err, want)
		}
	}
	By("a JWT living more than 10 minutes", func(s *v1alpha1.SignedJWT) {
		s.MaxLifetime, s.Lifetime, s.Backdate = nil, &v1alpha1.Duration{Duration: 30 * time.Minute}, nil
	}, "too far in the future")
	By("another app's JWT", func(s *v1alpha1.SignedJWT) { s.Issuer.Value = ptr("Iv23liSOMEONEELSE") }, "'iss'")
	By("a JWT signed with PS256", func(s *v1alpha1.SignedJWT) { s.Algorithm = "PS256" }, "could not be decoded")
}

func TestSampleGoogleServiceAccount(t *testing.T) {
	fake := fakes.NewGoogleServiceAccounts("robot@example.iam.gserviceaccount.com", "kid-1", &testRSAKey.PublicKey)
	run := startSample(t, "google-service-account.yaml", fake, &fake.Base)

	token := run.issue(t)
	if !fake.Valid(token.Value) {
		t.Fatalf("token %q is not one the fake issued", token.Value)
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, run.clock.Now().Add(time.Hour))
	if got := fake.Issued()[0].Request["scope"]; got != "https://www.googleapis.com/auth/cloud-platform" {
		t.Errorf("scope sent: %v", got)
	}
	spec := run.call.Spec.DeepCopy()
	FindCredential(spec, spec.Request.Body.Form[1].Credential).SignedJWT.Audience = []string{"https://example.com/token"}
	call := run.call
	call.Spec = spec
	if _, err := run.engine.Issue(context.Background(), call); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("an assertion for another audience: %v, want invalid_grant", err)
	}
}

var testCertificate = sync.OnceValue(func() *x509.Certificate {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(4_000_000_000, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &testRSAKey.PublicKey, testRSAKey)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return cert
})

func TestSampleEntraClientAssertion(t *testing.T) {
	fake := fakes.NewEntraID("11111111-2222-3333-4444-555555555555", "00001111-aaaa-2222-bbbb-3333cccc4444", testCertificate())
	run := startSample(t, "entra-client-assertion.yaml", fake, &fake.Base)

	for range 2 { // a fresh jti each call: Entra refuses a replayed assertion
		token := run.issue(t)
		if !fake.Valid(token.Value) {
			t.Fatalf("token %q is not one the fake issued", token.Value)
		}
		wantTime(t, "ExpiresAt", token.ExpiresAt, run.clock.Now().Add(time.Hour))
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(8), NotBefore: time.Unix(0, 0), NotAfter: time.Unix(4_000_000_000, 0)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &other.PublicKey, other)
	call := run.call
	call.Secrets = maps.Clone(run.call.Secrets)
	call.Secrets[v1alpha1.SecretKeySelector{Name: "entra-client", Key: "tls.key"}] = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)}))
	call.Secrets[v1alpha1.SecretKeySelector{Name: "entra-client", Key: "tls.crt"}] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if _, err := run.engine.Issue(context.Background(), call); ClassOf(err) != ClassPermanent {
		t.Errorf("an assertion of an unregistered certificate: %v, want Permanent (invalid_client, preset OAuth2)", err)
	}
}

func TestSampleOAuth2ClientCredentials(t *testing.T) {
	fake := fakes.NewOAuth2Server(testCredential("oauth2-client", "clientID"), testCredential("oauth2-client", "clientSecret"))
	fake.Scopes = []string{"orders.read", "orders.write"}
	run := startSample(t, "oauth2-client-credentials.yaml", fake, &fake.Base)

	token := run.issue(t)

	if !fake.Valid(token.Value) {
		t.Fatalf("token %q is not one the fake issued", token.Value)
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, run.clock.Now().Add(time.Hour))
	wantFields(t, token.Fields, map[string]string{"scope": "orders.read"})
	if token.RefreshToken != "" {
		t.Errorf("client credentials must not yield a refresh token")
	}

	if err := run.engine.Revoke(context.Background(), run.call, token.Value, token.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if fake.Valid(token.Value) {
		t.Errorf("the token is still valid after revocation")
	}
}

// TestOAuth2PasswordAndRefreshGrants turns the client credentials sample into
// the password grant with refresh, as its comment says, and runs it against
// the OAuth2 fake: expires_in is a number here, and refresh tokens rotate.
func TestOAuth2PasswordAndRefreshGrants(t *testing.T) {
	fake := fakes.NewOAuth2Server(testCredential("oauth2-client", "clientID"), testCredential("oauth2-client", "clientSecret"))
	fake.Users["alice"] = "alice-password"
	fake.Lifetime = 5 * time.Minute
	run := startSample(t, "oauth2-client-credentials.yaml", fake, &fake.Base)
	spec := run.call.Spec
	spec.Request.Body.Form = append(spec.Request.Body.Form,
		v1alpha1.FormField{Name: "username", ValueSource: literal("alice")},
		v1alpha1.FormField{Name: "password", ValueSource: fromSecret(passRef)})
	spec.Credentials = append(spec.Credentials, secretCredentials(passRef)...)
	spec.Request.Body.Form[0].Value = ptr("password")
	spec.Refresh = &v1alpha1.RequestSpec{URL: spec.Request.URL, Auth: spec.Request.Auth, Body: &v1alpha1.BodySpec{Form: []v1alpha1.FormField{
		{Name: "grant_type", ValueSource: literal("refresh_token")},
		{Name: "refresh_token", ValueSource: v1alpha1.ValueSource{Issued: v1alpha1.IssuedRefreshToken}},
	}}}
	spec.Response.RefreshToken = &v1alpha1.RefreshTokenSpec{Path: "refresh_token"}
	run.call.Secrets[passRef] = "alice-password"

	first := run.issue(t)
	wantTime(t, "ExpiresAt", first.ExpiresAt, run.clock.Now().Add(5*time.Minute))
	if first.RefreshToken == "" || first.RefreshTokenExpiresAt != nil {
		t.Fatalf("password grant: refresh token %q expiring %v; want one with no known expiry", first.RefreshToken, first.RefreshTokenExpiresAt)
	}
	run.clock.Step(4 * time.Minute)
	run.call.RefreshToken = first.RefreshToken
	second := run.issue(t)
	if !second.Refreshed || second.RefreshToken == first.RefreshToken || !fake.Valid(second.Value) {
		t.Fatalf("refresh: Refreshed=%v, rotated=%v", second.Refreshed, second.RefreshToken != first.RefreshToken)
	}
	if fake.CallsBy(fakes.OutcomeIssued) != 1 || fake.CallsBy(fakes.OutcomeRefreshed) != 1 {
		t.Errorf("grants: %d password, %d refresh", fake.CallsBy(fakes.OutcomeIssued), fake.CallsBy(fakes.OutcomeRefreshed))
	}
}

func TestSampleAppStoreConnect(t *testing.T) {
	fake := fakes.NewAppStoreConnect("57246542-96fe-1a63-e053-0824d011072a", "2X9R4HXF34", &testP256.PublicKey)
	run := startSample(t, "app-store-connect.yaml", fake, &fake.Base)
	srv := fakes.Start(t, fake)
	apps := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/apps", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}

	run.call.HTTPClient = nil // an issuer that signs its token makes no call
	first := run.issue(t)
	if got := apps(first.Value); got != http.StatusOK {
		t.Fatalf("the API answered %d to the signed token", got)
	}
	wantTime(t, "ExpiresAt", first.ExpiresAt, run.clock.Now().Add(20*time.Minute))
	if fake.Calls() != 1 {
		t.Errorf("signing called the API: %d calls", fake.Calls())
	}

	run.clock.Step(15 * time.Minute)
	second := run.issue(t)
	if second.Value == first.Value || apps(second.Value) != http.StatusOK {
		t.Fatal("a token signed later is not a new, valid token")
	}
	run.clock.Step(6 * time.Minute)
	if got := apps(first.Value); got != http.StatusUnauthorized {
		t.Errorf("the API answered %d to an expired token", got)
	}

	spec := run.call.Spec.DeepCopy()
	spec.SignedJWT.Algorithm = "RS256"
	call := run.call
	call.Spec = spec
	_, err := run.engine.Issue(context.Background(), call)
	if ClassOf(err) != ClassInvalidConfig || !strings.Contains(err.Error(), "RS256") {
		t.Errorf("an EC key with RS256: %v, want an invalid configuration naming the algorithm", err)
	}
	if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("the error quotes the key: %v", err)
	}
}

func TestSampleSnowflakeKeyPair(t *testing.T) {
	fake := &fakes.Snowflake{Account: "MYORG-MYACCOUNT", User: "SVC_ORDERS", PublicKey: &testRSAKey.PublicKey}
	run := startSample(t, "snowflake-key-pair.yaml", fake, &fake.Base)
	srv := fakes.Start(t, fake)
	query := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+fakes.SnowflakeStatementsPath, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	run.call.HTTPClient = nil
	token := run.issue(t)
	if got := query(token.Value); got != http.StatusOK {
		t.Fatalf("Snowflake answered %d to the signed token", got)
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, run.clock.Now().Add(59*time.Minute))
	fp, err := KeyFingerprint(&testRSAKey.PublicKey)
	if err != nil || !strings.HasPrefix(fp, "SHA256:") {
		t.Fatalf("fingerprint %q %v", fp, err)
	}

	spec := run.call.Spec.DeepCopy()
	spec.SignedJWT.Issuer = &v1alpha1.JWTValue{Value: ptr("MYORG-MYACCOUNT.SVC_ORDERS.SHA256:not-the-key")}
	call := run.call
	call.Spec = spec
	wrong, err := run.engine.Issue(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	if got := query(wrong.Value); got != http.StatusUnauthorized {
		t.Errorf("a JWT naming another key's fingerprint: %d, want 401", got)
	}
}
