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
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
)

// inProcess serves requests with a handler, without any socket, and keeps
// every answer it gave.
type inProcess struct {
	handler http.Handler
	answers []answer
}

func (p *inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	p.handler.ServeHTTP(rec, r)
	resp := rec.Result()
	body, _ := io.ReadAll(resp.Body)
	p.answers = append(p.answers, answer{status: resp.StatusCode, header: resp.Header, body: body})
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// fakeAnswers collects real answers of every fake, driven through the samples:
// one success and one refusal each.
func fakeAnswers(t testing.TB) (specs []*v1alpha1.ResponseSpec, answers []answer) {
	fakeFor := map[string]fakes.Server{
		"cable-transactions.yaml":        fakes.NewTransactionAPI(testCredential("cable-auth-token", "token")),
		"paisr-invoicing.yaml":           fakes.NewInvoicingAPI(testCredential("paisr-api-key", "apiKey")),
		"ca-authentication.yaml":         fakes.NewAuthenticationService(testCredential("ca-service-account", "username"), testCredential("ca-service-account", "password")),
		"banking-oauth-password.yaml":    fakes.NewBankingAPI(testCredential("banking-credentials", "consumerKey"), testCredential("banking-credentials", "consumerSecret"), testCredential("banking-credentials", "username"), testCredential("banking-credentials", "password")),
		"oauth2-client-credentials.yaml": fakes.NewOAuth2Server(testCredential("oauth2-client", "clientID"), testCredential("oauth2-client", "clientSecret")),
	}
	for name, fake := range fakeFor {
		s := loadSample(t, name)
		transport := &inProcess{handler: fake}
		call := Call{Spec: s.issuer, Parameters: s.token.Spec.Parameters, Secrets: s.secretValues(t), HTTPClient: &http.Client{Transport: transport}}
		if _, err := testEngine().Issue(context.Background(), call); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for ref := range call.Secrets {
			call.Secrets[ref] = "wrong"
		}
		if _, err := testEngine().Issue(context.Background(), call); err == nil {
			t.Fatalf("%s: wrong credentials were accepted", name)
		}
		specs = append(specs, &s.issuer.Response)
		answers = append(answers, transport.answers...)
	}
	return specs, answers
}

// FuzzParseResponse feeds arbitrary answers to every sample's response reading.
// Whatever the body, reading must not panic, a token must be usable, and an
// error must be short and must not carry a canary token.
func FuzzParseResponse(f *testing.F) {
	specs, answers := fakeAnswers(f)
	for _, a := range answers {
		f.Add(a.status, a.body)
	}
	f.Add(200, []byte(`{"success":false,"message":"FUZZ-CANARY-1 is taken","data":{"secret":"FUZZ-CANARY-1"}}`))
	f.Add(400, []byte(`{"errorInfo":{"errorCode":"FUZZ-CANARY-2","errorMessage":"FUZZ-CANARY-2"},"access_token":"FUZZ-CANARY-2"}`))
	f.Add(429, []byte(`{"error":"slow_down","expires_in":"1e400"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		for _, spec := range specs {
			red := &redactor{}
			token, err := readToken(spec, answer{status: status, header: http.Header{}, body: body}, testNow, red)
			if err == nil {
				checkFuzzedToken(t, status, token)
				continue
			}
			e := asError(t, err)
			if len(e.Code) > maxDetailLength || len(e.Message) > 2*maxDetailLength+100 {
				t.Errorf("error too long: code %d bytes, message %d bytes", len(e.Code), len(e.Message))
			}
			if strings.Contains(e.Code+e.Message, "FUZZ-CANARY") {
				if candidate, ok := lookup(mustDecode(body), spec.Token); ok && strings.HasPrefix(text(candidate), "FUZZ-CANARY") &&
					strings.Contains(e.Code+e.Message, text(candidate)) {
					t.Errorf("error carries the token: %q", e.Error())
				}
			}
		}
	})
}

func checkFuzzedToken(t *testing.T, status int, token *Token) {
	t.Helper()
	if status < 200 || status > 299 || token.Value == "" {
		t.Fatalf("token %q accepted from status %d", token.Value, status)
	}
	for _, expiry := range []*time.Time{token.ExpiresAt, token.RefreshTokenExpiresAt} {
		if expiry != nil && (!expiry.After(testNow) || expiry.Sub(testNow) > maxExpiryAhead) {
			t.Fatalf("expiry %v accepted", expiry)
		}
	}
	if len(token.Value) > MaxTokenBytes || len(token.RefreshToken) > MaxTokenBytes {
		t.Fatalf("tokens of %d and %d bytes accepted", len(token.Value), len(token.RefreshToken))
	}
	if err := checkTokenID(token.ID); err != nil {
		t.Fatalf("token id accepted, but it %v", err)
	}
	for key, value := range token.Fields {
		if len(value) > maxFieldBytes {
			t.Fatalf("field %s of %d bytes accepted", key, len(value))
		}
	}
}

// FuzzExpandURL checks that any token id is either refused, without being
// quoted, or expanded into exactly one opaque path segment or query value.
func FuzzExpandURL(f *testing.F) {
	for _, id := range []string{"42", "a/b c", "a&b=c+d", ":@$,;", ".", "..", "...", "", "%2e%2e", "é", "a\x00b", "\u0085",
		"../admin?x=1#f", strings.Repeat("x", maxTokenIDBytes+1)} {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		const host = "issuer.example.com"
		for _, template := range []string{"https://" + host + "/tokens/{tokenID}/revoke", "https://" + host + "/revoke?id={tokenID}&x=1"} {
			expanded, err := expandURL(template, id, nil, nil)
			if err != nil {
				e := asError(t, err)
				if want := map[bool]Class{true: ClassInvalidConfig, false: ClassInvalidResponse}[id == ""]; e.Class != want {
					t.Fatalf("id of %d bytes: class %v, want %v", len(id), e.Class, want)
				}
				// Every refused id but "", "." and ".." is too long or holds a
				// control character, so it can be in the message only if quoted.
				if len(id) > 2 && strings.Contains(e.Error(), id) {
					t.Fatalf("id of %d bytes is quoted in the error", len(id))
				}
				continue
			}
			if id == "" || id == "." || id == ".." || checkTokenID(id) != nil {
				t.Fatalf("id of %d bytes accepted", len(id))
			}
			u, err := url.Parse(expanded)
			if err != nil || u.Host != host || u.Fragment != "" {
				t.Fatalf("id of %d bytes: expanded URL does not parse to %s (%v)", len(id), host, err)
			}
			if strings.Contains(template, "?") {
				query := u.Query()
				if got := query["id"]; len(got) != 1 || got[0] != id || len(query) != 2 || query.Get("x") != "1" || u.Path != "/revoke" {
					t.Fatalf("id of %d bytes: query does not read back as id and x", len(id))
				}
				continue
			}
			segments := strings.Split(u.EscapedPath(), "/")
			if len(segments) != 4 || segments[1] != "tokens" || segments[3] != "revoke" || u.RawQuery != "" {
				t.Fatalf("id of %d bytes: path is not /tokens/<id>/revoke", len(id))
			}
			if got, err := url.PathUnescape(segments[2]); err != nil || got != id {
				t.Fatalf("id of %d bytes: path segment does not read back as the id", len(id))
			}
		}

		// The same value as a tenant's parameter in a URL: refused as a
		// parameter problem, or exactly one path segment, never another host.
		expanded, err := expandURL("https://"+host+"/installations/{installation}/tokens", "", map[string]any{"installation": id}, nil)
		if err != nil {
			if e := asError(t, err); e.Class != ClassInvalidParameters {
				t.Fatalf("parameter of %d bytes: class %v, want InvalidParameters", len(id), e.Class)
			}
			if id == "" || id == "." || id == ".." || checkTokenID(id) != nil {
				return
			}
			t.Fatalf("parameter of %d bytes refused: %v", len(id), err)
		}
		u, err := url.Parse(expanded)
		if err != nil || u.Host != host {
			t.Fatalf("parameter of %d bytes: expanded URL does not parse to %s (%v)", len(id), host, err)
		}
		segments := strings.Split(u.EscapedPath(), "/")
		if got, err := url.PathUnescape(segments[2]); len(segments) != 4 || err != nil || got != id || u.RawQuery != "" {
			t.Fatalf("parameter of %d bytes: path is not /installations/<value>/tokens", len(id))
		}
	})
}

func mustDecode(body []byte) any {
	doc, _ := decodeJSON(body)
	return doc
}

// FuzzBuildRequest checks that any secret, literal or parameter value is
// encoded faithfully or refused, and never splits a header.
func FuzzBuildRequest(f *testing.F) {
	f.Add("CANARY-SECRET-123", "tokenmint/1.0", `"Billing (prod)"`)
	f.Add("p@ss word&x=1", "a\r\nb", `"x"`)
	f.Add("é\u2028\"<>", "", `42`)
	f.Fuzz(func(t *testing.T, secret, literalValue, parameterJSON string) {
		ref := v1alpha1.SecretKeySelector{Name: "s", Key: "k"}
		spec := &v1alpha1.RequestSpec{
			URL:     "https://issuer.example.com/token",
			Auth:    &v1alpha1.AuthSpec{Bearer: &v1alpha1.ValueSource{Credential: "k"}},
			Headers: []v1alpha1.Header{{Name: "X-Literal", ValueSource: literal(literalValue)}},
			Body: &v1alpha1.BodySpec{JSON: []v1alpha1.JSONField{
				{Path: "credentials.secret", ValueSource: v1alpha1.ValueSource{Credential: "k"}},
				{Path: "description", ValueSource: v1alpha1.ValueSource{Parameter: "description"}},
			}},
		}
		issuer := &v1alpha1.IssuerSpec{Request: *spec, Response: v1alpha1.ResponseSpec{Token: "t"},
			Credentials: []v1alpha1.Credential{{Name: "k", SecretKeyRef: &ref}},
			Parameters:  []v1alpha1.ParameterSpec{{Name: "description"}}}
		parameters, err := ResolveParameters(issuer, map[string]apiextensionsv1.JSON{"description": {Raw: []byte(parameterJSON)}}, nil)
		if err != nil {
			return
		}
		values := &valueResolver{parameters: parameters, secrets: map[v1alpha1.SecretKeySelector]string{ref: secret}, now: testNow, spec: issuer,
			newUUID: func() string { return "u" }}
		req, err := buildRequest(context.Background(), spec, spec.URL, values, &redactor{})
		if err != nil {
			if !strings.ContainsAny(secret+literalValue, "\r\n\x00") {
				t.Fatalf("refused clean values: %v", err)
			}
			return
		}
		for name, vs := range req.Header {
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n") {
					t.Fatalf("header %s carries a line break", name)
				}
			}
		}
		body, _ := io.ReadAll(req.Body)
		var decoded struct {
			Credentials struct{ Secret string } `json:"credentials"`
			Description string                  `json:"description"`
		}
		if err := json.Unmarshal(body, &decoded); err != nil {
			t.Fatalf("body is not JSON: %v\n%s", err, body)
		}
		if utf8.ValidString(secret) && decoded.Credentials.Secret != secret {
			t.Fatalf("secret %q came back as %q", secret, decoded.Credentials.Secret)
		}
		if _, err := url.Parse(req.URL.String()); err != nil {
			t.Fatal(err)
		}
	})
}
