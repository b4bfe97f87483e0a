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
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// renderedText is everything a rendered request shows, for leak checks.
func renderedText(r *RenderedRequest) string {
	var b strings.Builder
	b.WriteString(r.Method + " " + r.URL + "\n")
	for _, h := range r.Headers {
		b.WriteString(h.Name + ": " + h.Value + "\n")
	}
	b.WriteString(r.Body)
	return b.String()
}

func header(r *RenderedRequest, name string) string {
	for _, h := range r.Headers {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

// assertNoCredential fails when text holds any credential, in any of the
// encodings a request may carry it in.
func assertNoCredential(t *testing.T, text string, credentials ...string) {
	t.Helper()
	for _, c := range credentials {
		quoted, _ := json.Marshal(c)
		unescaped := strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(string(quoted), `\u0026`, "&"), `\u003c`, "<"), `\u003e`, ">")
		for _, form := range []string{c, url.QueryEscape(c), url.PathEscape(c), strings.Trim(string(quoted), `"`),
			strings.Trim(unescaped, `"`), base64.StdEncoding.EncodeToString([]byte(c))} {
			if strings.Contains(text, form) {
				t.Errorf("rendered request shows a credential (%q):\n%s", form, text)
			}
		}
	}
}

func TestRenderMasksSecretValuesInEveryEncoding(t *testing.T) {
	bearer := v1alpha1.SecretKeySelector{Name: "api", Key: "token"}
	password := v1alpha1.SecretKeySelector{Name: "login", Key: "password"}
	secrets := map[v1alpha1.SecretKeySelector]string{
		bearer:   "bearer-canary-7f3a",
		password: `pa"ss w&rd/é+canary`,
	}
	spec := &v1alpha1.IssuerSpec{
		Credentials: secretCredentials(bearer, password),
		Request: v1alpha1.RequestSpec{
			URL:     "https://auth.example.com/token",
			Auth:    &v1alpha1.AuthSpec{Bearer: ptr(fromSecret(bearer))},
			Headers: []v1alpha1.Header{{Name: "X-Txn", ValueSource: v1alpha1.ValueSource{Generate: v1alpha1.GenerateUUID}}},
			Body: &v1alpha1.BodySpec{JSON: []v1alpha1.JSONField{
				{Path: "user", ValueSource: literal("svc")},
				{Path: "password", ValueSource: fromSecret(password)},
				{Path: "lifetime", ValueSource: v1alpha1.ValueSource{Parameter: "lifetime"}},
			}},
		},
		Parameters: []v1alpha1.ParameterSpec{{Name: "lifetime", Type: v1alpha1.ParameterInteger, Default: ptr(raw("600"))}},
		Response:   v1alpha1.ResponseSpec{Token: "token"},
	}
	r, err := testEngine().Render(Call{Spec: spec, Secrets: secrets,
		Parameters: map[string]apiextensionsv1.JSON{"lifetime": raw("900")}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "POST" || r.URL != "https://auth.example.com/token" {
		t.Errorf("rendered %s %s", r.Method, r.URL)
	}
	if got := header(r, "Authorization"); got != "Bearer <Secret api/token>" {
		t.Errorf("Authorization: %q", got)
	}
	if got := header(r, "X-Txn"); got != "11111111-2222-4333-8444-555555555555" {
		t.Errorf("generated header: %q", got)
	}
	if got := header(r, "Content-Type"); got != "application/json" {
		t.Errorf("Content-Type: %q", got)
	}
	if want := `{"lifetime":900,"password":"<Secret login/password>","user":"svc"}`; r.Body != want {
		t.Errorf("body\n got %s\nwant %s", r.Body, want)
	}
	assertNoCredential(t, renderedText(r), secrets[bearer], secrets[password])
}

func TestRenderMasksBasicCredentialsAndFormValues(t *testing.T) {
	id := v1alpha1.SecretKeySelector{Name: "client", Key: "id"}
	secret := v1alpha1.SecretKeySelector{Name: "client", Key: "secret"}
	secrets := map[v1alpha1.SecretKeySelector]string{id: "client-id-canary", secret: "s3cr3t canary&=+"}
	spec := &v1alpha1.IssuerSpec{
		Credentials: secretCredentials(id, secret),
		Request: v1alpha1.RequestSpec{
			URL: "https://login.example.com/oauth2/token",
			Auth: &v1alpha1.AuthSpec{Basic: &v1alpha1.BasicAuth{
				Username: fromSecret(id), Password: fromSecret(secret)}},
			Body: &v1alpha1.BodySpec{Form: []v1alpha1.FormField{
				{Name: "grant_type", ValueSource: literal("client_credentials")},
				{Name: "client_secret", ValueSource: fromSecret(secret)},
			}},
		},
		Response: v1alpha1.ResponseSpec{Token: "access_token"},
	}
	r, err := testEngine().Render(Call{Spec: spec, Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := header(r, "Authorization"), "Basic base64(<Secret client/id>:<Secret client/secret>)"; got != want {
		t.Errorf("Authorization: %q, want %q", got, want)
	}
	if want := "client_secret=<Secret client/secret>&grant_type=client_credentials"; r.Body != want {
		t.Errorf("body %q, want %q", r.Body, want)
	}
	assertNoCredential(t, renderedText(r), secrets[id], secrets[secret], "client-id-canary:s3cr3t canary&=+")
}

func TestRenderHidesLiteralBasicPassword(t *testing.T) {
	spec := &v1alpha1.IssuerSpec{
		Request: v1alpha1.RequestSpec{URL: "https://login.example.com/token",
			Auth: &v1alpha1.AuthSpec{Basic: &v1alpha1.BasicAuth{Username: literal("app"), Password: literal("literal-canary")}}},
		Response: v1alpha1.ResponseSpec{Token: "access_token"},
	}
	r, err := testEngine().Render(Call{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := header(r, "Authorization"), "Basic base64(app:<password>)"; got != want {
		t.Errorf("Authorization: %q, want %q", got, want)
	}
	assertNoCredential(t, renderedText(r), "literal-canary")
}

func TestRenderMasksSignedJWTsAndServiceAccountTokens(t *testing.T) {
	keyRef := v1alpha1.SecretKeySelector{Name: "app", Key: "private-key"}
	keyPEM := pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(testRSAKey))
	sa := v1alpha1.ServiceAccountTokenSource{ServiceAccountName: "orders", Audience: "sts.example.com"}
	spec := &v1alpha1.IssuerSpec{
		Credentials: []v1alpha1.Credential{
			{Name: "app-jwt", SignedJWT: &v1alpha1.SignedJWT{
				PrivateKey: v1alpha1.JWTSecretValue{SecretKeyRef: keyRef}, Algorithm: "RS256",
				Issuer: &v1alpha1.JWTValue{Value: ptr("app-1")}, KeyID: &v1alpha1.JWTValue{Value: ptr("k1")},
			}},
			{Name: "workload", ServiceAccountToken: &sa},
		},
		Request: v1alpha1.RequestSpec{
			URL:  "https://sts.example.com/token",
			Auth: &v1alpha1.AuthSpec{Bearer: &v1alpha1.ValueSource{Credential: "app-jwt"}},
			Body: &v1alpha1.BodySpec{Form: []v1alpha1.FormField{
				{Name: "subject_token", ValueSource: v1alpha1.ValueSource{Credential: "workload"}},
			}},
		},
		Response: v1alpha1.ResponseSpec{Token: "access_token"},
	}
	secrets := map[v1alpha1.SecretKeySelector]string{keyRef: keyPEM}

	r, err := testEngine().Render(Call{Spec: spec, Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := header(r, "Authorization"), "Bearer <signed JWT RS256 kid=k1, claims exp,iat,iss,jti, valid 5m0s>"; got != want {
		t.Errorf("Authorization: %q, want %q", got, want)
	}
	if want := "subject_token=<ServiceAccount token of orders for audience sts.example.com>"; r.Body != want {
		t.Errorf("body %q, want %q", r.Body, want)
	}
	if strings.Contains(renderedText(r), "eyJ") {
		t.Errorf("rendered request shows a JWT:\n%s", renderedText(r))
	}
	assertNoCredential(t, renderedText(r), keyPEM)

	// A token the caller did request is masked the same way.
	r, err = testEngine().Render(Call{Spec: spec, Secrets: secrets,
		ServiceAccountTokens: map[v1alpha1.ServiceAccountTokenSource]string{sa: "sa-token-canary"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "subject_token=<ServiceAccount token of orders for audience sts.example.com>"; r.Body != want {
		t.Errorf("body %q, want %q", r.Body, want)
	}
	assertNoCredential(t, renderedText(r), "sa-token-canary", keyPEM)
}

func TestRenderRefusesWhatIssueRefuses(t *testing.T) {
	spec := &v1alpha1.IssuerSpec{
		Request: v1alpha1.RequestSpec{URL: "https://auth.example.com/token",
			Body: &v1alpha1.BodySpec{JSON: []v1alpha1.JSONField{{Path: "n", ValueSource: v1alpha1.ValueSource{Parameter: "n"}}}}},
		Parameters: []v1alpha1.ParameterSpec{{Name: "n", Type: v1alpha1.ParameterInteger, Maximum: ptr[int64](10)}},
		Response:   v1alpha1.ResponseSpec{Token: "token"},
	}
	_, err := testEngine().Render(Call{Spec: spec, Parameters: map[string]apiextensionsv1.JSON{"n": raw("11")}})
	if e := asError(t, err); e.Class != ClassInvalidParameters {
		t.Errorf("class %v, want InvalidParameters: %v", e.Class, err)
	}

	missing := v1alpha1.SecretKeySelector{Name: "api", Key: "token"}
	spec = &v1alpha1.IssuerSpec{
		Credentials: secretCredentials(missing),
		Request:     v1alpha1.RequestSpec{URL: "https://auth.example.com/token", Auth: &v1alpha1.AuthSpec{Bearer: ptr(fromSecret(missing))}},
		Response:    v1alpha1.ResponseSpec{Token: "token"},
	}
	_, err = testEngine().Render(Call{Spec: spec})
	if e := asError(t, err); e.Class != ClassInvalidConfig || !strings.Contains(e.Message, `no value for key "token" of Secret "api"`) {
		t.Errorf("got %v", err)
	}
}

func TestRenderExpandsURLParameters(t *testing.T) {
	spec := &v1alpha1.IssuerSpec{
		Request:    v1alpha1.RequestSpec{URL: "https://api.example.com/app/installations/{installation_id}/access_tokens"},
		Parameters: []v1alpha1.ParameterSpec{{Name: "installation_id", Type: v1alpha1.ParameterInteger}},
		Response:   v1alpha1.ResponseSpec{Token: "token"},
	}
	r, err := testEngine().Render(Call{Spec: spec, Parameters: map[string]apiextensionsv1.JSON{"installation_id": {Raw: []byte("42")}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.URL != "https://api.example.com/app/installations/42/access_tokens" {
		t.Errorf("URL %q", r.URL)
	}
	if _, err := testEngine().Render(Call{Spec: &v1alpha1.IssuerSpec{SignedJWT: &v1alpha1.SignedJWT{Algorithm: "ES256",
		PrivateKey: v1alpha1.JWTSecretValue{SecretKeyRef: v1alpha1.SecretKeySelector{Name: "k", Key: "k"}}}}}); err == nil ||
		!strings.Contains(err.Error(), "sends no request") {
		t.Errorf("a self-signed issuer: %v", err)
	}
}
