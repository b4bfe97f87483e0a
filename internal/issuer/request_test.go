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
	"net/http"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

const okBody = `{"access_token":"tok"}`

var (
	apiKeyRef = v1alpha1.SecretKeySelector{Name: "creds", Key: "apiKey"}
	userRef   = v1alpha1.SecretKeySelector{Name: "creds", Key: "user"}
	passRef   = v1alpha1.SecretKeySelector{Name: "creds", Key: "pass"}
)

// testParameters declares one parameter of every type, with defaults for some.
var testParameters = []v1alpha1.ParameterSpec{
	{Name: "description", Type: v1alpha1.ParameterString, Default: ptr(raw(`"default description"`))},
	{Name: "lifetime", Type: v1alpha1.ParameterInteger, Default: ptr(raw(`3600`))},
	{Name: "offline", Type: v1alpha1.ParameterBoolean},
	{Name: "scopes", Type: v1alpha1.ParameterStringList},
}

// TestValueSources sends one value of every source in each place it can go and
// checks the encoded request.
func TestValueSources(t *testing.T) {
	secrets := map[v1alpha1.SecretKeySelector]string{apiKeyRef: "key-123"}
	params := map[string]apiextensionsv1.JSON{"scopes": raw(`["a.read","b.write"]`), "offline": raw(`true`)}
	tests := []struct {
		name     string
		source   v1alpha1.ValueSource
		refresh  bool
		header   string // the header value, "" for not sent
		form     string // the form body
		jsonBody string // the JSON body
	}{
		{"literal", literal("hello world"), false, "hello world", "v=hello+world", `{"v":"hello world"}`},
		{"secret", fromSecret(apiKeyRef), false, "key-123", "v=key-123", `{"v":"key-123"}`},
		{"uuid", v1alpha1.ValueSource{Generate: v1alpha1.GenerateUUID}, false,
			"11111111-2222-4333-8444-555555555555", "v=11111111-2222-4333-8444-555555555555", `{"v":"11111111-2222-4333-8444-555555555555"}`},
		{"unix seconds", v1alpha1.ValueSource{Generate: v1alpha1.GenerateUnixSeconds}, false, "1772366400", "v=1772366400", `{"v":1772366400}`},
		{"unix milliseconds", v1alpha1.ValueSource{Generate: v1alpha1.GenerateUnixMilliseconds}, false,
			"1772366400000", "v=1772366400000", `{"v":1772366400000}`},
		{"rfc3339", v1alpha1.ValueSource{Generate: v1alpha1.GenerateRFC3339}, false,
			"2026-03-01T12:00:00Z", "v=2026-03-01T12%3A00%3A00Z", `{"v":"2026-03-01T12:00:00Z"}`},
		{"string parameter default", v1alpha1.ValueSource{Parameter: "description"}, false,
			"default description", "v=default+description", `{"v":"default description"}`},
		{"integer parameter default", v1alpha1.ValueSource{Parameter: "lifetime"}, false, "3600", "v=3600", `{"v":3600}`},
		{"boolean parameter", v1alpha1.ValueSource{Parameter: "offline"}, false, "true", "v=true", `{"v":true}`},
		{"refresh token", v1alpha1.ValueSource{Issued: v1alpha1.IssuedRefreshToken}, true, "rt-1", "v=rt-1", `{"v":"rt-1"}`},
	}
	for _, tt := range tests {
		for _, place := range []string{"header", "form", "json"} {
			t.Run(tt.name+" in "+place, func(t *testing.T) {
				ep := startEndpoint(t, answering(200, okBody))
				spec := tokenSpec(ep.URL)
				spec.Credentials = secretCredentials(apiKeyRef)
				spec.Parameters = testParameters
				call := &spec.Request
				if tt.refresh {
					spec.Refresh = &v1alpha1.RequestSpec{URL: ep.URL}
					spec.Response.RefreshToken = &v1alpha1.RefreshTokenSpec{Path: "refresh_token"}
					call = spec.Refresh
				}
				switch place {
				case "header":
					call.Headers = []v1alpha1.Header{{Name: "X-Value", ValueSource: tt.source}}
				case "form":
					call.Body = &v1alpha1.BodySpec{Form: []v1alpha1.FormField{{Name: "v", ValueSource: tt.source}}}
				case "json":
					call.Body = &v1alpha1.BodySpec{JSON: []v1alpha1.JSONField{{Path: "v", ValueSource: tt.source}}}
				}
				c := Call{Spec: spec, Parameters: params, Secrets: secrets, HTTPClient: testClient(t)}
				if tt.refresh {
					c.RefreshToken = "rt-1"
				}
				if _, err := testEngine().Issue(context.Background(), c); err != nil {
					t.Fatalf("Issue: %v", err)
				}
				got := ep.only(t)
				switch place {
				case "header":
					if v := got.header.Get("X-Value"); v != tt.header {
						t.Errorf("header = %q, want %q", v, tt.header)
					}
				case "form":
					if got.body != tt.form {
						t.Errorf("form = %q, want %q", got.body, tt.form)
					}
				case "json":
					if got.body != tt.jsonBody {
						t.Errorf("json = %s, want %s", got.body, tt.jsonBody)
					}
				}
			})
		}
	}
}

// TestBodyEncodings checks nested JSON, typed literals, lists in forms and JSON,
// optional parameters left out, and the content type of each format.
func TestBodyEncodings(t *testing.T) {
	params := map[string]apiextensionsv1.JSON{"scopes": raw(`["a.read","b.write"]`)}
	tests := []struct {
		name        string
		method      v1alpha1.HTTPMethod
		body        *v1alpha1.BodySpec
		wantMethod  string
		wantBody    string
		contentType string
	}{
		{
			name: "nested JSON with typed literals",
			body: &v1alpha1.BodySpec{JSON: []v1alpha1.JSONField{
				{Path: "expiry_seconds", ValueSource: v1alpha1.ValueSource{Parameter: "lifetime"}},
				{Path: "scopes.organization_id", ValueSource: literal("org_1")},
				{Path: "scopes.scopes", ValueSource: v1alpha1.ValueSource{Parameter: "scopes"}},
				{Path: "limits", ValueSource: v1alpha1.ValueSource{JSON: `{"max": 5, "exact": 1.50}`}},
				{Path: "list", ValueSource: v1alpha1.ValueSource{JSON: `[1, "two", true, null]`}},
				{Path: "big", ValueSource: v1alpha1.ValueSource{JSON: `12345678901234567890`}},
				{Path: "offline", ValueSource: v1alpha1.ValueSource{Parameter: "offline"}},
			}},
			wantMethod: "POST",
			wantBody: `{"big":12345678901234567890,"expiry_seconds":3600,"limits":{"exact":1.50,"max":5},` +
				`"list":[1,"two",true,null],"scopes":{"organization_id":"org_1","scopes":["a.read","b.write"]}}`,
			contentType: "application/json",
		},
		{
			name: "form with a list joined by spaces",
			body: &v1alpha1.BodySpec{Form: []v1alpha1.FormField{
				{Name: "grant_type", ValueSource: literal("client_credentials")},
				{Name: "scope", ValueSource: v1alpha1.ValueSource{Parameter: "scopes"}},
				{Name: "offline", ValueSource: v1alpha1.ValueSource{Parameter: "offline"}},
			}},
			wantMethod:  "POST",
			wantBody:    "grant_type=client_credentials&scope=a.read+b.write",
			contentType: "application/x-www-form-urlencoded",
		},
		{name: "no body", method: "GET", wantMethod: "GET"},
		{name: "no body with PUT", method: "PUT", wantMethod: "PUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := startEndpoint(t, answering(200, okBody))
			spec := tokenSpec(ep.URL)
			spec.Parameters = testParameters
			spec.Request.Method = tt.method
			spec.Request.Body = tt.body
			c := Call{Spec: spec, Parameters: params, HTTPClient: testClient(t)}
			if _, err := testEngine().Issue(context.Background(), c); err != nil {
				t.Fatalf("Issue: %v", err)
			}
			got := ep.only(t)
			if got.method != tt.wantMethod || got.body != tt.wantBody {
				t.Errorf("got %s %q, want %s %q", got.method, got.body, tt.wantMethod, tt.wantBody)
			}
			if ct := got.header.Get("Content-Type"); ct != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", ct, tt.contentType)
			}
			if got.header.Get("Accept") != "application/json" || got.header.Get("User-Agent") != defaultUserAgent {
				t.Errorf("default headers: Accept %q, User-Agent %q", got.header.Get("Accept"), got.header.Get("User-Agent"))
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	secrets := map[v1alpha1.SecretKeySelector]string{apiKeyRef: "key-123", userRef: "Aladdin", passRef: "open sesame"}
	tests := []struct {
		name string
		auth *v1alpha1.AuthSpec
		want string
	}{
		{"none", nil, ""},
		{"bearer", &v1alpha1.AuthSpec{Bearer: ptr(fromSecret(apiKeyRef))}, "Bearer key-123"},
		// The example of RFC 7617 section 2.
		{"basic", &v1alpha1.AuthSpec{Basic: &v1alpha1.BasicAuth{
			Username: fromSecret(userRef), Password: fromSecret(passRef),
		}}, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := startEndpoint(t, answering(200, okBody))
			spec := tokenSpec(ep.URL)
			spec.Credentials = secretCredentials(apiKeyRef, userRef, passRef)
			spec.Request.Auth = tt.auth
			c := Call{Spec: spec, Secrets: secrets, HTTPClient: testClient(t)}
			if _, err := testEngine().Issue(context.Background(), c); err != nil {
				t.Fatalf("Issue: %v", err)
			}
			if got := ep.only(t).header.Get("Authorization"); got != tt.want {
				t.Errorf("Authorization = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestUUIDFreshPerCall checks the real generator, not the test's fixed one.
func TestUUIDFreshPerCall(t *testing.T) {
	ep := startEndpoint(t, answering(200, okBody))
	spec := tokenSpec(ep.URL)
	spec.Request.Headers = []v1alpha1.Header{{Name: "di_tid", ValueSource: v1alpha1.ValueSource{Generate: v1alpha1.GenerateUUID}}}
	c := Call{Spec: spec, HTTPClient: testClient(t)}
	engine := &Engine{}
	for range 2 {
		if _, err := engine.Issue(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	requests := ep.seen()
	first, second := requests[0].header.Get("di_tid"), requests[1].header.Get("di_tid")
	if len(first) != 36 || first == second || first[14] != '4' {
		t.Errorf("di_tid values %q and %q are not two fresh version 4 UUIDs", first, second)
	}
}

func TestHeaderValueWithLineBreakRefused(t *testing.T) {
	ep := startEndpoint(t, answering(200, okBody))
	spec := tokenSpec(ep.URL)
	spec.Request.Headers = []v1alpha1.Header{{Name: "X-Key", ValueSource: fromSecret(apiKeyRef)}}
	c := Call{Spec: spec, Secrets: map[v1alpha1.SecretKeySelector]string{apiKeyRef: "key\r\nX-Injected: 1"}, HTTPClient: testClient(t)}
	_, err := testEngine().Issue(context.Background(), c)
	if e := asError(t, err); e.Class != ClassInvalidConfig {
		t.Errorf("class = %v, want InvalidConfig (%v)", e.Class, err)
	}
	if n := len(ep.seen()); n != 0 {
		t.Errorf("endpoint saw %d requests, want 0", n)
	}
}

func TestRefreshFallback(t *testing.T) {
	tests := []struct {
		name          string
		refreshStatus int
		wantPrimary   bool
		wantClass     Class
	}{
		{"refused with 400 falls back", 400, true, 0},
		{"refused with 401 falls back", 401, true, 0},
		{"5xx does not fall back", 503, false, ClassRetryable},
		{"429 does not fall back", 429, false, ClassRateLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primary := startEndpoint(t, answering(200, `{"access_token":"primary","refresh_token":"rt-2"}`))
			refresh := startEndpoint(t, answering(tt.refreshStatus, `{"error":"invalid_grant"}`))
			spec := tokenSpec(primary.URL)
			spec.Refresh = &v1alpha1.RequestSpec{URL: refresh.URL}
			spec.Response.RefreshToken = &v1alpha1.RefreshTokenSpec{Path: "refresh_token"}
			c := Call{Spec: spec, RefreshToken: "rt-1", HTTPClient: testClient(t)}
			token, err := testEngine().Issue(context.Background(), c)
			if len(refresh.seen()) != 1 {
				t.Fatalf("refresh endpoint saw %d requests, want 1", len(refresh.seen()))
			}
			if tt.wantPrimary {
				if err != nil || token.Value != "primary" || token.Refreshed || token.RefreshToken != "rt-2" {
					t.Fatalf("got %+v, %v; want the primary request's token", token, err)
				}
				return
			}
			if e := asError(t, err); e.Class != tt.wantClass {
				t.Errorf("class = %v, want %v", e.Class, tt.wantClass)
			}
			if n := len(primary.seen()); n != 0 {
				t.Errorf("primary endpoint saw %d requests, want 0", n)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		tokenID  string
		status   int
		wantPath string
		wantErr  Class
	}{
		{"id path-escaped", "/tokens/{tokenID}", "a/b c", 200, "/tokens/a%2Fb%20c", -1},
		{"no id needed", "/revoke", "", 204, "/revoke", -1},
		{"id needed but unknown", "/tokens/{tokenID}", "", 200, "", ClassInvalidConfig},
		{"refused", "/revoke", "", 401, "/revoke", ClassUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := startEndpoint(t, answering(tt.status, `{}`))
			spec := tokenSpec(ep.URL)
			spec.Response.TokenID = "id"
			spec.Revoke = &v1alpha1.RequestSpec{URL: ep.URL + tt.url, Method: http.MethodDelete,
				Body: &v1alpha1.BodySpec{Form: []v1alpha1.FormField{{Name: "token", ValueSource: v1alpha1.ValueSource{Issued: v1alpha1.IssuedAccessToken}}}}}
			err := testEngine().Revoke(context.Background(), Call{Spec: spec, HTTPClient: testClient(t)}, "old-token", tt.tokenID)
			if tt.wantErr >= 0 {
				if e := asError(t, err); e.Class != tt.wantErr {
					t.Errorf("class = %v, want %v (%v)", e.Class, tt.wantErr, err)
				}
			} else if err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if tt.wantPath == "" {
				if n := len(ep.seen()); n != 0 {
					t.Errorf("endpoint saw %d requests, want 0", n)
				}
				return
			}
			got := ep.only(t)
			if got.path != tt.wantPath || got.method != http.MethodDelete || got.body != "token=old-token" {
				t.Errorf("got %s %s %q", got.method, got.path, got.body)
			}
		})
	}
}
