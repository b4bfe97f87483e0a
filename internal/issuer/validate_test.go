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
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
)

func TestValidate(t *testing.T) {
	const base = "https://issuer.example.com/token"
	jsonBody := func(fields ...v1alpha1.JSONField) *v1alpha1.BodySpec { return &v1alpha1.BodySpec{JSON: fields} }
	param := func(name string) v1alpha1.ValueSource { return v1alpha1.ValueSource{Parameter: name} }
	tests := []struct {
		name   string
		change func(*v1alpha1.IssuerSpec)
		want   string // "" means valid
	}{
		{"minimal", func(*v1alpha1.IssuerSpec) {}, ""},
		{"undeclared parameter", func(s *v1alpha1.IssuerSpec) {
			s.Request.Body = jsonBody(v1alpha1.JSONField{Path: "scope", ValueSource: param("scopes")})
		}, `request.body.json[scope]: parameter "scopes" is not declared`},
		{"default below minimum", func(s *v1alpha1.IssuerSpec) {
			s.Parameters = []v1alpha1.ParameterSpec{{Name: "n", Type: v1alpha1.ParameterInteger, Minimum: ptr(int64(300)), Default: ptr(raw("60"))}}
		}, "parameters[n]: default is not acceptable: parameter \"n\" is 60, below the minimum 300"},
		{"default of the wrong type", func(s *v1alpha1.IssuerSpec) {
			s.Parameters = []v1alpha1.ParameterSpec{{Name: "n", Type: v1alpha1.ParameterInteger, Default: ptr(raw(`"3600"`))}}
		}, "must be a whole number"},
		{"default not in enum", func(s *v1alpha1.IssuerSpec) {
			s.Parameters = []v1alpha1.ParameterSpec{{Name: "s", Enum: []string{"a"}, Default: ptr(raw(`"b"`))}}
		}, `"b" is not one of`},
		{"pattern does not compile", func(s *v1alpha1.IssuerSpec) {
			s.Parameters = []v1alpha1.ParameterSpec{{Name: "s", Pattern: "[a-"}}
		}, "pattern does not compile"},
		{"minimum on a string", func(s *v1alpha1.IssuerSpec) {
			s.Parameters = []v1alpha1.ParameterSpec{{Name: "s", Minimum: ptr(int64(1))}}
		}, "Integer parameters only"},
		{"minimum above maximum", func(s *v1alpha1.IssuerSpec) {
			s.Parameters = []v1alpha1.ParameterSpec{{Name: "n", Type: v1alpha1.ParameterInteger, Minimum: ptr(int64(2)), Maximum: ptr(int64(1))}}
		}, "greater than maximum"},
		{"enum on a boolean", func(s *v1alpha1.IssuerSpec) {
			s.Parameters = []v1alpha1.ParameterSpec{{Name: "b", Type: v1alpha1.ParameterBoolean, Enum: []string{"true"}}}
		}, "String, StringList and StringMap parameters only"},
		{"a declared parameter in the URL", func(s *v1alpha1.IssuerSpec) {
			s.Parameters = []v1alpha1.ParameterSpec{{Name: "installation", Type: v1alpha1.ParameterInteger}}
			s.Request.URL = "https://issuer.example.com/installations/{installation}/tokens"
		}, ""},
		{"an undeclared parameter in the URL", func(s *v1alpha1.IssuerSpec) {
			s.Request.URL = "https://issuer.example.com/installations/{installation}/tokens"
		}, `request.url: {installation} is not a declared parameter`},
		{"a parameter in the URL's host", func(s *v1alpha1.IssuerSpec) {
			s.Parameters = []v1alpha1.ParameterSpec{{Name: "tenant"}}
			s.Request.URL = "https://{tenant}.example.com/token"
		}, "may stand only in the path or the query"},
		{"a list parameter in the URL", func(s *v1alpha1.IssuerSpec) {
			s.Parameters = []v1alpha1.ParameterSpec{{Name: "ids", Type: v1alpha1.ParameterStringList}}
			s.Request.URL = "https://issuer.example.com/installations/{ids}/tokens"
		}, "must be a String or Integer parameter"},
		{"a stray brace in the URL", func(s *v1alpha1.IssuerSpec) {
			s.Request.URL = "https://issuer.example.com/token?x={a"
		}, "a placeholder is {name}"},
		{"a parameter named tokenID", func(s *v1alpha1.IssuerSpec) {
			s.Parameters = []v1alpha1.ParameterSpec{{Name: "tokenID"}}
		}, "tokenID is reserved"},
		{"a map parameter in a form", func(s *v1alpha1.IssuerSpec) {
			s.Parameters = []v1alpha1.ParameterSpec{{Name: "permissions", Type: v1alpha1.ParameterStringMap}}
			s.Request.Body = &v1alpha1.BodySpec{Form: []v1alpha1.FormField{{Name: "permissions", ValueSource: param("permissions")}}}
		}, "can be sent only in a JSON body"},
		{"keys on a string", func(s *v1alpha1.IssuerSpec) {
			s.Parameters = []v1alpha1.ParameterSpec{{Name: "s", Keys: []string{"a"}}}
		}, "keys apply to StringMap parameters only"},
		{"a map default outside its keys", func(s *v1alpha1.IssuerSpec) {
			s.Parameters = []v1alpha1.ParameterSpec{{Name: "permissions", Type: v1alpha1.ParameterStringMap,
				Keys: []string{"contents"}, Enum: []string{"read"}, Default: ptr(raw(`{"issues": "read"}`))}}
		}, `key "issues" is not one of`},
		{"list parameter in a header", func(s *v1alpha1.IssuerSpec) {
			s.Parameters = []v1alpha1.ParameterSpec{{Name: "scopes", Type: v1alpha1.ParameterStringList}}
			s.Request.Headers = []v1alpha1.Header{{Name: "X-Scopes", ValueSource: param("scopes")}}
		}, "has no header form"},
		{"json literal in a form", func(s *v1alpha1.IssuerSpec) {
			s.Request.Body = &v1alpha1.BodySpec{Form: []v1alpha1.FormField{{Name: "n", ValueSource: v1alpha1.ValueSource{JSON: "1"}}}}
		}, "json literals are for JSON body fields"},
		{"json literal not JSON", func(s *v1alpha1.IssuerSpec) {
			s.Request.Body = jsonBody(v1alpha1.JSONField{Path: "n", ValueSource: v1alpha1.ValueSource{JSON: "{oops"}})
		}, "not valid JSON"},
		{"unknown response format", func(s *v1alpha1.IssuerSpec) {
			s.Response.Format = "YAML"
		}, `response.format "YAML" is not one of JSON, XML, Form`},
		{"transform both ways", func(s *v1alpha1.IssuerSpec) {
			s.Response.TokenTransform = &v1alpha1.ValueTransform{Before: ":", After: ":"}
		}, "response.tokenTransform: set at most one of before or after"},
		{"empty transform of a copy", func(s *v1alpha1.IssuerSpec) {
			s.Response.Copy = []v1alpha1.CopyField{{Key: "k", Path: "p", Transform: &v1alpha1.ValueTransform{}}}
		}, "response.copy[k].transform: transforms nothing"},
		{"long separator", func(s *v1alpha1.IssuerSpec) {
			s.Response.TokenTransform = &v1alpha1.ValueTransform{After: strings.Repeat(":", 17)}
		}, "at most 16 bytes"},
		{"unknown base64 alphabet in a step", func(s *v1alpha1.IssuerSpec) {
			s.Steps = []v1alpha1.IssuerStep{{Name: "a", Request: v1alpha1.RequestSpec{URL: "https://a.example/"},
				Response: v1alpha1.ResponseSpec{Token: "t", TokenTransform: &v1alpha1.ValueTransform{Base64: "Hex"}}}}
		}, `steps[a].response.tokenTransform: base64 "Hex" is not one of Standard, URL`},
		{"two sources", func(s *v1alpha1.IssuerSpec) {
			s.Request.Headers = []v1alpha1.Header{{Name: "X", ValueSource: v1alpha1.ValueSource{Value: ptr("a"), Generate: v1alpha1.GenerateUUID}}}
		}, "exactly one of value"},
		{"refresh token in the primary request", func(s *v1alpha1.IssuerSpec) {
			s.Request.Headers = []v1alpha1.Header{{Name: "X", ValueSource: v1alpha1.ValueSource{Issued: v1alpha1.IssuedRefreshToken}}}
		}, "issued: RefreshToken is only available in refresh"},
		{"access token outside revoke", func(s *v1alpha1.IssuerSpec) {
			s.Refresh = &v1alpha1.RequestSpec{URL: base, Headers: []v1alpha1.Header{{Name: "X", ValueSource: v1alpha1.ValueSource{Issued: v1alpha1.IssuedAccessToken}}}}
			s.Response.RefreshToken = &v1alpha1.RefreshTokenSpec{Path: "refresh_token"}
		}, "issued: AccessToken is only available in revoke"},
		{"refresh without a refresh token path", func(s *v1alpha1.IssuerSpec) {
			s.Refresh = &v1alpha1.RequestSpec{URL: base}
		}, "refresh needs response.refreshToken"},
		{"revoke needs the token id", func(s *v1alpha1.IssuerSpec) {
			s.Revoke = &v1alpha1.RequestSpec{URL: "https://issuer.example.com/tokens/{tokenID}"}
		}, "response.tokenID does not say where it is"},
		{"token id placeholder outside revoke", func(s *v1alpha1.IssuerSpec) {
			s.Request.URL = "https://issuer.example.com/{tokenID}"
		}, "only meaningful in revoke.url"},
		{"plain http", func(s *v1alpha1.IssuerSpec) { s.Request.URL = "http://issuer.example.com/token" }, "plain http"},
		{"credentials in the URL", func(s *v1alpha1.IssuerSpec) { s.Request.URL = "https://u:p@issuer.example.com/token" }, "must not carry credentials"},
		{"not http", func(s *v1alpha1.IssuerSpec) { s.Request.URL = "ftp://issuer.example.com/token" }, "scheme must be https"},
		{"not a URL", func(s *v1alpha1.IssuerSpec) { s.Request.URL = "https://user:CANARY-PW@exa mple.com/" }, "not a URL: invalid character"},
		{"conflicting JSON paths", func(s *v1alpha1.IssuerSpec) {
			s.Request.Body = jsonBody(v1alpha1.JSONField{Path: "a", ValueSource: literal("x")}, v1alpha1.JSONField{Path: "a.b", ValueSource: literal("y")})
		}, `crosses "a"`},
		{"empty path segment", func(s *v1alpha1.IssuerSpec) { s.Response.Token = "data..secret" }, "empty segment"},
		{"expiry without path", func(s *v1alpha1.IssuerSpec) {
			s.Response.Expiry = &v1alpha1.ExpirySpec{Format: v1alpha1.ExpiryRelativeSeconds}
		}, "path is required unless format is JWT"},
		{"unknown expiry format", func(s *v1alpha1.IssuerSpec) {
			s.Response.Expiry = &v1alpha1.ExpirySpec{Path: "e", Format: "Fortnights"}
		}, `format "Fortnights"`},
		{"copying the refresh token", func(s *v1alpha1.IssuerSpec) {
			s.Response.RefreshToken = &v1alpha1.RefreshTokenSpec{Path: "refresh_token"}
			s.Response.Copy = []v1alpha1.CopyField{{Key: "rt", Path: "refresh_token"}}
		}, "must never be copied"},
		{"copying the object that holds the refresh token", func(s *v1alpha1.IssuerSpec) {
			s.Response.RefreshToken = &v1alpha1.RefreshTokenSpec{Path: "auth.refresh_token"}
			s.Response.Copy = []v1alpha1.CopyField{{Key: "auth", Path: "auth"}}
		}, "must never be copied"},
		{"Content-Type header", func(s *v1alpha1.IssuerSpec) {
			s.Request.Headers = []v1alpha1.Header{{Name: "content-type", ValueSource: literal("text/plain")}}
		}, "set by the engine"},
		{"Authorization header with auth", func(s *v1alpha1.IssuerSpec) {
			s.Request.Auth = &v1alpha1.AuthSpec{Bearer: ptr(literal("x"))}
			s.Request.Headers = []v1alpha1.Header{{Name: "Authorization", ValueSource: literal("y")}}
		}, "cannot be listed together with auth"},
		{"both bearer and basic", func(s *v1alpha1.IssuerSpec) {
			s.Request.Auth = &v1alpha1.AuthSpec{Bearer: ptr(literal("x")), Basic: &v1alpha1.BasicAuth{Username: literal("u"), Password: literal("p")}}
		}, "exactly one of bearer, basic or awsSigV4"},
		{"success equals not JSON", func(s *v1alpha1.IssuerSpec) {
			s.Response.Success = &v1alpha1.SuccessSpec{Path: "ok", Equals: raw("tru")}
		}, "success.equals is not valid JSON"},
		{"negative timeout", func(s *v1alpha1.IssuerSpec) { s.Timeout = &v1alpha1.Duration{Duration: -1} }, "timeout must be positive"},
		{"CA bundle without certificates", func(s *v1alpha1.IssuerSpec) { s.CABundle = []byte("nope") }, "caBundle holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &v1alpha1.IssuerSpec{Request: v1alpha1.RequestSpec{URL: base}, Response: v1alpha1.ResponseSpec{Token: "access_token"}}
			tt.change(spec)
			err := Validate(spec)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error containing %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "CANARY") {
				t.Errorf("Validate repeats a credential: %v", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	spec := &v1alpha1.IssuerSpec{
		Request:  v1alpha1.RequestSpec{URL: "http://x.example.com", Headers: []v1alpha1.Header{{Name: "X", ValueSource: v1alpha1.ValueSource{Parameter: "p"}}}},
		Response: v1alpha1.ResponseSpec{Token: ""},
	}
	err := Validate(spec)
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Validate = %q, want the problems on one line", err)
	}
	for _, want := range []string{"plain http", `parameter "p" is not declared`, "response.token"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to mention %q", err, want)
		}
	}
}

func TestValidateBoundsCredentialSecrets(t *testing.T) {
	spec := func(secrets, keysEach int, selfSigned bool) *v1alpha1.IssuerSpec {
		s := &v1alpha1.IssuerSpec{Request: v1alpha1.RequestSpec{URL: "https://issuer.example.com/token"}, Response: v1alpha1.ResponseSpec{Token: "access_token"}}
		body := &v1alpha1.BodySpec{}
		for i := range secrets {
			for k := range keysEach {
				ref := &v1alpha1.SecretKeySelector{Name: fmt.Sprint("cred-", i), Key: fmt.Sprint("key-", k)}
				body.JSON = append(body.JSON, v1alpha1.JSONField{Path: fmt.Sprintf("f%d_%d", i, k), ValueSource: fromSecret(*ref)})
				s.Credentials = append(s.Credentials, secretCredentials(*ref)...)
			}
		}
		// Half of them in the revoke call: the bound counts every call.
		half := len(body.JSON) / 2
		s.Request.Body = &v1alpha1.BodySpec{JSON: body.JSON[:half]}
		s.Revoke = &v1alpha1.RequestSpec{URL: "https://issuer.example.com/revoke", Body: &v1alpha1.BodySpec{JSON: body.JSON[half:]}}
		if selfSigned {
			s = &v1alpha1.IssuerSpec{SignedJWT: &v1alpha1.SignedJWT{PrivateKey: v1alpha1.JWTSecretValue{SecretKeyRef: v1alpha1.SecretKeySelector{Name: "key", Key: "k"}}}}
			for i := range secrets - 1 {
				s.SignedJWT.Claims = append(s.SignedJWT.Claims, v1alpha1.JWTClaim{Name: fmt.Sprint("c", i),
					JWTValue: v1alpha1.JWTValue{SecretKeyRef: &v1alpha1.SecretKeySelector{Name: fmt.Sprint("cred-", i), Key: "k"}}})
			}
		}
		return s
	}
	for _, tt := range []struct {
		name       string
		spec       *v1alpha1.IssuerSpec
		wantRefuse bool
	}{
		{"at the bound", spec(MaxCredentialSecrets, 1, false), false},
		{"many keys of few Secrets", spec(2, 40, false), false},
		{"one Secret too many", spec(MaxCredentialSecrets+1, 1, false), true},
		{"an attacker's 288", spec(288, 1, false), true},
		{"self-signed at the bound", spec(MaxCredentialSecrets, 1, true), false},
		{"self-signed over the bound", spec(MaxCredentialSecrets+1, 1, true), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckCredentialSecrets(tt.spec)
			if (err != nil) != tt.wantRefuse {
				t.Fatalf("CheckCredentialSecrets = %v, want refused %v", err, tt.wantRefuse)
			}
			verr := Validate(tt.spec)
			refused := verr != nil && strings.Contains(verr.Error(), "distinct credential Secrets")
			if refused != tt.wantRefuse {
				t.Errorf("Validate = %v, want the bound refused: %v", verr, tt.wantRefuse)
			}
		})
	}
}

func TestSecretRefs(t *testing.T) {
	a := v1alpha1.SecretKeySelector{Name: "a", Key: "k"}
	b := v1alpha1.SecretKeySelector{Name: "b", Key: "k"}
	c := v1alpha1.SecretKeySelector{Name: "a", Key: "other"}
	spec := &v1alpha1.IssuerSpec{
		Credentials: secretCredentials(a, b, c, v1alpha1.SecretKeySelector{Name: "unused", Key: "k"}),
		Request: v1alpha1.RequestSpec{
			Auth:    &v1alpha1.AuthSpec{Basic: &v1alpha1.BasicAuth{Username: fromSecret(a), Password: fromSecret(b)}},
			Headers: []v1alpha1.Header{{Name: "X", ValueSource: fromSecret(a)}},
		},
		Refresh: &v1alpha1.RequestSpec{Body: &v1alpha1.BodySpec{Form: []v1alpha1.FormField{{Name: "f", ValueSource: fromSecret(c)}}}},
		Revoke:  &v1alpha1.RequestSpec{Body: &v1alpha1.BodySpec{JSON: []v1alpha1.JSONField{{Path: "p", ValueSource: fromSecret(b)}}}},
	}
	if got, want := SecretRefs(spec), []v1alpha1.SecretKeySelector{a, b, c}; !slices.Equal(got, want) {
		t.Errorf("SecretRefs = %v, want %v", got, want)
	}
}

func TestResolveParameters(t *testing.T) {
	spec := &v1alpha1.IssuerSpec{Parameters: []v1alpha1.ParameterSpec{
		{Name: "description", Pattern: `[a-zA-Z0-9() ]{4,48}`, Default: ptr(raw(`"tokenmint"`))},
		{Name: "lifetime", Type: v1alpha1.ParameterInteger, Minimum: ptr(int64(300)), Maximum: ptr(int64(86400))},
		{Name: "scopes", Type: v1alpha1.ParameterStringList, Enum: []string{"a.read", "b.write"}, Required: true},
		{Name: "offline", Type: v1alpha1.ParameterBoolean},
	}}
	got, err := ResolveParameters(spec, map[string]apiextensionsv1.JSON{"lifetime": raw("600"), "scopes": raw(`["b.write"]`), "offline": raw("false")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got["description"] != "tokenmint" || got["lifetime"] != int64(600) || !slices.Equal(got["scopes"].([]string), []string{"b.write"}) || got["offline"] != false {
		t.Errorf("ResolveParameters = %#v", got)
	}
}

func TestStringMapParameters(t *testing.T) {
	spec := &v1alpha1.IssuerSpec{Parameters: []v1alpha1.ParameterSpec{{Name: "permissions", Type: v1alpha1.ParameterStringMap,
		Keys: []string{"contents", "issues", "metadata"}, Enum: []string{"read", "write"}}}}
	got, err := ResolveParameters(spec, map[string]apiextensionsv1.JSON{"permissions": raw(`{"contents": "read", "issues": "write"}`)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"contents": "read", "issues": "write"}; !maps.Equal(got["permissions"].(map[string]string), want) {
		t.Errorf("permissions = %v, want %v", got["permissions"], want)
	}
	many := map[string]string{}
	for i := range maxMapEntries + 1 {
		many[fmt.Sprintf("k%d", i)] = "read"
	}
	tooMany, _ := json.Marshal(many)
	for value, want := range map[string]string{
		`{"administration": "write"}`: `key "administration" is not one of`,
		`{"contents": "admin"}`:       `"admin" is not one of`,
		`{"contents": true}`:          `"permissions.contents" must be a string, got a boolean`,
		`["contents"]`:                "must be an object of strings, got a list",
		string(tooMany):               "more than 64",
	} {
		_, err := ResolveParameters(spec, map[string]apiextensionsv1.JSON{"permissions": raw(value)}, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", value, err, want)
		}
	}
}

// TestParameterViolationsRejectedBeforeAnyCall runs each violation against the
// invoicing fake and checks the fake was never called.
func TestParameterViolationsRejectedBeforeAnyCall(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]apiextensionsv1.JSON
		want   string
	}{
		{"below minimum", map[string]apiextensionsv1.JSON{"lifetime": raw("299")}, "below the minimum 300"},
		{"above maximum", map[string]apiextensionsv1.JSON{"lifetime": raw("86401")}, "above the maximum 86400"},
		{"not whole", map[string]apiextensionsv1.JSON{"lifetime": raw("3600.5")}, "must be a whole number"},
		{"integer as string", map[string]apiextensionsv1.JSON{"lifetime": raw(`"3600"`)}, "must be a whole number, got a string"},
		{"pattern", map[string]apiextensionsv1.JSON{"description": raw(`"bad/chars!"`)}, "does not match the pattern"},
		{"pattern must match in full", map[string]apiextensionsv1.JSON{"description": raw(`"ok but far too long for the pattern of the invoicing API"`)}, "does not match"},
		{"enum item", map[string]apiextensionsv1.JSON{"scopes": raw(`["invoices.read","invoices.delete"]`)}, `"invoices.delete" is not one of`},
		{"list of numbers", map[string]apiextensionsv1.JSON{"scopes": raw(`[1]`)}, "item 0 must be a string"},
		{"list as string", map[string]apiextensionsv1.JSON{"scopes": raw(`"invoices.read"`)}, "must be a list of strings"},
		{"undeclared", map[string]apiextensionsv1.JSON{"audience": raw(`"x"`)}, `"audience" is not declared`},
		{"not JSON", map[string]apiextensionsv1.JSON{"lifetime": raw("{")}, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := fakes.NewInvoicingAPI("key")
			srv := fakes.Start(t, fake)
			spec := tokenSpec(srv.URL + fakes.InvoicingAPIPath)
			spec.Request.Auth = &v1alpha1.AuthSpec{Bearer: ptr(literal("key"))}
			spec.Request.Body = &v1alpha1.BodySpec{JSON: []v1alpha1.JSONField{
				{Path: "description", ValueSource: v1alpha1.ValueSource{Parameter: "description"}},
				{Path: "scopes", ValueSource: v1alpha1.ValueSource{Parameter: "scopes"}},
				{Path: "lifetime", ValueSource: v1alpha1.ValueSource{Parameter: "lifetime"}},
			}}
			spec.Response.Token = "data.secret"
			spec.Parameters = []v1alpha1.ParameterSpec{
				{Name: "description", Pattern: `[a-zA-Z0-9() ]{4,48}`, Default: ptr(raw(`"tokenmint"`))},
				{Name: "scopes", Type: v1alpha1.ParameterStringList, Enum: []string{"invoices.read"}, Default: ptr(raw(`["invoices.read"]`))},
				{Name: "lifetime", Type: v1alpha1.ParameterInteger, Minimum: ptr(int64(300)), Maximum: ptr(int64(86400))},
			}
			_, err := testEngine().Issue(context.Background(), Call{Spec: spec, Parameters: tt.params, HTTPClient: testClient(t)})
			e := asError(t, err)
			if e.Class != ClassInvalidParameters || !strings.Contains(e.Error(), tt.want) {
				t.Errorf("got %v %q, want InvalidParameters containing %q", e.Class, e.Error(), tt.want)
			}
			if fake.Calls() != 0 {
				t.Errorf("the fake saw %d calls, want 0", fake.Calls())
			}
		})
	}
	t.Run("required parameter absent or null", func(t *testing.T) {
		spec := &v1alpha1.IssuerSpec{Parameters: []v1alpha1.ParameterSpec{{Name: "scopes", Type: v1alpha1.ParameterStringList, Required: true}}}
		for _, params := range []map[string]apiextensionsv1.JSON{nil, {"scopes": raw("null")}} {
			if _, err := ResolveParameters(spec, params, nil); err == nil || !strings.Contains(err.Error(), `"scopes" is required`) {
				t.Errorf("ResolveParameters(%v) = %v, want the required parameter reported", params, err)
			}
		}
	})
}
