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
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// Canary credentials: none may ever appear in an error.
const (
	canarySecret   = "CANARY-SECRET-123"
	canaryUser     = "CANARY-USER-456"
	canaryPassword = `CANARY"pa ss&word/789`
	canaryRefresh  = "CANARY-REFRESH-246"
	canaryToken    = "CANARY-TOKEN-135"
	canaryLiteral  = "CANARY-LITERAL-579"
)

var canaries = []string{canarySecret, canaryUser, canaryPassword, canaryRefresh, canaryToken, canaryLiteral,
	base64.StdEncoding.EncodeToString([]byte(canaryUser + ":" + canaryPassword)),
	// The parts of a credential that providers echo in another encoding.
	"CANARY%22pa", `CANARY\"pa`, "CANARY-SECRET", "CANARY-REFRESH", "CANARY-TOKEN", "CANARY-LITERAL"}

// echoing answers status with every credential-bearing part of the request
// copied into the provider's error fields, as careless providers do.
func echoing(status int, extra map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reply := map[string]any{
			"error":             "invalid_client: " + r.Header.Get("Authorization"),
			"error_description": "rejected " + string(body) + " with " + r.Header.Get("Authorization") + " and " + r.Header.Get("X-Api-Key"),
		}
		for k, v := range extra {
			reply[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(reply)
	}
}

func TestNoCredentialInErrors(t *testing.T) {
	secrets := map[v1alpha1.SecretKeySelector]string{apiKeyRef: canarySecret, userRef: canaryUser, passRef: canaryPassword}
	basic := &v1alpha1.AuthSpec{Basic: &v1alpha1.BasicAuth{
		Username: fromSecret(userRef), Password: fromSecret(passRef)}}
	bearer := &v1alpha1.AuthSpec{Bearer: ptr(fromSecret(apiKeyRef))}
	form := &v1alpha1.BodySpec{Form: []v1alpha1.FormField{
		{Name: "password", ValueSource: fromSecret(passRef)},
		{Name: "api_key", ValueSource: fromSecret(apiKeyRef)},
	}}
	jsonBody := &v1alpha1.BodySpec{JSON: []v1alpha1.JSONField{
		{Path: "credentials.password", ValueSource: fromSecret(passRef)},
		{Path: "username", ValueSource: fromSecret(userRef)},
	}}
	tests := []struct {
		name    string
		reply   http.HandlerFunc
		setup   func(*v1alpha1.IssuerSpec, *Call)
		revoke  bool
		success bool
	}{
		{"bearer and JSON body, 401", echoing(401, nil), func(s *v1alpha1.IssuerSpec, _ *Call) {
			s.Request.Auth, s.Request.Body = bearer, jsonBody
		}, false, false},
		{"basic and form body, 400", echoing(400, nil), func(s *v1alpha1.IssuerSpec, _ *Call) {
			s.Request.Auth, s.Request.Body = basic, form
		}, false, false},
		{"secret and literal in headers, 429", echoing(429, nil), func(s *v1alpha1.IssuerSpec, _ *Call) {
			s.Request.Headers = []v1alpha1.Header{{Name: "X-Api-Key", ValueSource: fromSecret(apiKeyRef)}}
			s.Request.Auth = &v1alpha1.AuthSpec{Bearer: ptr(literal(canaryLiteral))}
		}, false, false},
		{"refresh token, 500", echoing(500, nil), func(s *v1alpha1.IssuerSpec, c *Call) {
			s.Refresh = &v1alpha1.RequestSpec{URL: s.Request.URL, Auth: basic,
				Body: &v1alpha1.BodySpec{Form: []v1alpha1.FormField{{Name: "refresh_token", ValueSource: v1alpha1.ValueSource{Issued: v1alpha1.IssuedRefreshToken}}}}}
			s.Response.RefreshToken = &v1alpha1.RefreshTokenSpec{Path: "refresh_token"}
			c.RefreshToken = canaryRefresh
		}, false, false},
		{"issued token in a success:false answer", echoing(200, map[string]any{
			"access_token": canaryToken, "success": false, "error_description": "token " + canaryToken + " is a duplicate",
		}), func(s *v1alpha1.IssuerSpec, _ *Call) {
			s.Response.Success = &v1alpha1.SuccessSpec{Path: "success", Equals: raw("true")}
		}, false, false},
		{"revoked token, 400", echoing(400, nil), func(s *v1alpha1.IssuerSpec, _ *Call) {
			s.Revoke = &v1alpha1.RequestSpec{URL: s.Request.URL, Auth: bearer,
				Body: &v1alpha1.BodySpec{Form: []v1alpha1.FormField{{Name: "token", ValueSource: v1alpha1.ValueSource{Issued: v1alpha1.IssuedAccessToken}}}}}
		}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := startEndpoint(t, tt.reply)
			spec := tokenSpec(ep.URL)
			spec.Credentials = secretCredentials(apiKeyRef, userRef, passRef)
			spec.Response.Error = &v1alpha1.ErrorSpec{Code: "error", Message: "error_description"}
			c := Call{Spec: spec, Secrets: secrets, HTTPClient: testClient(t)}
			tt.setup(spec, &c)
			var err error
			if tt.revoke {
				err = testEngine().Revoke(context.Background(), c, canaryToken, "")
			} else {
				_, err = testEngine().Issue(context.Background(), c)
			}
			e := asError(t, err)
			text := e.Error() + "|" + e.Code + "|" + e.Message + "|" + errorsUnwrapText(e)
			for _, canary := range canaries {
				if strings.Contains(text, canary) {
					t.Errorf("error leaks %q: %s", canary, text)
				}
			}
			if !strings.Contains(e.Error(), redactedMark) {
				t.Errorf("error %q shows no redaction: the endpoint did not echo, so the test proves nothing", e.Error())
			}
		})
	}
}

// TestNoCredentialInBuildErrors covers errors raised while building the request,
// before the endpoint could echo anything.
func TestNoCredentialInBuildErrors(t *testing.T) {
	spec := tokenSpec("http://127.0.0.1:1/token")
	spec.Request.Auth = &v1alpha1.AuthSpec{Basic: &v1alpha1.BasicAuth{Username: literal(canaryUser + ":x"), Password: literal("p")}}
	_, err := testEngine().Issue(context.Background(), Call{Spec: spec, HTTPClient: testClient(t)})
	if e := asError(t, err); e.Class != ClassInvalidConfig || strings.Contains(e.Error(), canaryUser) {
		t.Errorf("got %v %q", e.Class, e.Error())
	}
}

func errorsUnwrapText(err error) string {
	if inner := errors.Unwrap(err); inner != nil {
		return inner.Error()
	}
	return ""
}

func TestRedactor(t *testing.T) {
	r := &redactor{}
	r.add("abc")
	r.add("abcdef")
	r.add("")
	tests := map[string]string{
		"key abcdef here":        "key [redacted] here",
		"key abc here":           "key [redacted] here",
		"nothing":                "nothing",
		"abcabc":                 "[redacted][redacted]",
		"line\none\x00two":       "line one two",
		strings.Repeat("x", 300): strings.Repeat("x", 197) + "...",
	}
	for in, want := range tests {
		if got := r.detail(in); got != want {
			t.Errorf("detail(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactorRemovesJSONStringsWithAndWithoutHTMLEscaping(t *testing.T) {
	red := &redactor{}
	red.add(canaryPassword)
	for _, echoed := range []string{`CANARY\"pa ss&word/789`, `CANARY\"pa ss\u0026word/789`} {
		if got := red.redact("rejected {\"password\":\"" + echoed + "\"}"); got != `rejected {"password":"[redacted]"}` {
			t.Errorf("redacting %s gave %s", echoed, got)
		}
	}
}

func TestRedactRemovesEveryEncoding(t *testing.T) {
	text := "a " + canaryPassword + " b " + url.QueryEscape(canaryPassword) + " c " + url.PathEscape(canaryPassword) + " d " + canarySecret
	got := Redact(text, canaryPassword, canarySecret, "")
	if want := "a [redacted] b [redacted] c [redacted] d [redacted]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
