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
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// idCanary marks token ids whose text must never reach an error.
const idCanary = "CANARY-ID"

// shown is message as fit for a test failure: its size alone when it carries a
// canary value.
func shown(message string) string {
	if strings.Contains(message, idCanary) || strings.Contains(message, tokenCanary) {
		return fmt.Sprintf("<a message of %d bytes quoting the value>", len(message))
	}
	return fmt.Sprintf("%q", message)
}

func TestExpandURLEscapesEveryReservedByte(t *testing.T) {
	tests := []struct {
		id   string
		want string
	}{
		{"42", "42"},
		{"AZaz09-._~", "AZaz09-._~"},
		{"...", "..."},
		{"a/b c", "a%2Fb%20c"},
		{"a&b=c+d", "a%26b%3Dc%2Bd"},
		{":@$,;", "%3A%40%24%2C%3B"},
		{"?#[]!'()*", "%3F%23%5B%5D%21%27%28%29%2A"},
		{"%2F", "%252F"},
		{"é", "%C3%A9"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			inPath, err := expandURL("https://issuer.example.com/tokens/{tokenID}/revoke", tt.id, nil, nil)
			if err != nil {
				t.Fatalf("path: %v", err)
			}
			u, err := url.Parse(inPath)
			if err != nil {
				t.Fatalf("path: %v", err)
			}
			if got := u.EscapedPath(); got != "/tokens/"+tt.want+"/revoke" {
				t.Errorf("path = %s, want /tokens/%s/revoke", got, tt.want)
			}
			if segments := strings.Split(u.EscapedPath(), "/"); len(segments) != 4 {
				t.Errorf("path %s has %d segments, want the id as one", u.EscapedPath(), len(segments)-1)
			} else if id, _ := url.PathUnescape(segments[2]); id != tt.id {
				t.Errorf("path segment unescapes to %q, want %q", id, tt.id)
			}

			inQuery, err := expandURL("https://issuer.example.com/revoke?id={tokenID}&x=1", tt.id, nil, nil)
			if err != nil {
				t.Fatalf("query: %v", err)
			}
			u, err = url.Parse(inQuery)
			if err != nil {
				t.Fatalf("query: %v", err)
			}
			if u.RawQuery != "id="+tt.want+"&x=1" {
				t.Errorf("query = %s, want id=%s&x=1", u.RawQuery, tt.want)
			}
			query := u.Query()
			if got := query["id"]; len(got) != 1 || got[0] != tt.id || len(query) != 2 || query.Get("x") != "1" {
				t.Errorf("query reads back as %q, want id=%q and x=1 only", query, tt.id)
			}
		})
	}
}

func TestExpandURLRefusesUnusableIDs(t *testing.T) {
	tests := []struct {
		name  string
		id    string
		class Class
		want  string
	}{
		{"empty", "", ClassInvalidConfig, "none is known"},
		{"dot", ".", ClassInvalidResponse, "dot segment"},
		{"dot dot", "..", ClassInvalidResponse, "dot segment"},
		{"too long", idCanary + strings.Repeat("x", maxTokenIDBytes+1-len(idCanary)), ClassInvalidResponse,
			"the token id is 513 bytes, more than the 512 tokenmint accepts"},
		{"line break", idCanary + "\nx", ClassInvalidResponse, "control character"},
		{"NUL", idCanary + "\x00", ClassInvalidResponse, "control character"},
		{"DEL", idCanary + "\x7f", ClassInvalidResponse, "control character"},
		{"C1 control", idCanary + "\u0085", ClassInvalidResponse, "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := expandURL("https://issuer.example.com/tokens/{tokenID}", tt.id, nil, nil)
			if err == nil {
				t.Fatalf("id of %d bytes accepted as %d bytes of URL", len(tt.id), len(got))
			}
			e := asError(t, err)
			if e.Class != tt.class || !strings.Contains(e.Message, tt.want) {
				t.Errorf("got %v %s, want %v containing %q", e.Class, shown(e.Message), tt.class, tt.want)
			}
			if strings.Contains(e.Error(), idCanary) {
				t.Errorf("the error quotes the id (class %v, %d bytes)", e.Class, len(e.Error()))
			}
		})
	}
	t.Run("512 bytes is accepted", func(t *testing.T) {
		if _, err := expandURL("https://issuer.example.com/tokens/{tokenID}", strings.Repeat("x", maxTokenIDBytes), nil, nil); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRevokeRefusesUnusableIDs goes through the engine: nothing is sent, and
// the error neither quotes the id nor passes for a configuration mistake.
func TestRevokeRefusesUnusableIDs(t *testing.T) {
	for _, id := range []string{"..", idCanary + "\r\nHost: elsewhere", idCanary + strings.Repeat("0", maxTokenIDBytes)} {
		ep := startEndpoint(t, answering(200, `{}`))
		spec := tokenSpec(ep.URL)
		spec.Response.TokenID = "id"
		spec.Revoke = &v1alpha1.RequestSpec{URL: ep.URL + "/tokens/{tokenID}", Method: http.MethodDelete}
		err := testEngine().Revoke(context.Background(), Call{Spec: spec, HTTPClient: testClient(t)}, "old-token", id)
		e := asError(t, err)
		if e.Class != ClassInvalidResponse {
			t.Errorf("id of %d bytes: class %v, want InvalidResponse", len(id), e.Class)
		}
		if strings.Contains(e.Error(), idCanary) {
			t.Errorf("id of %d bytes: the error quotes the id", len(id))
		}
		if n := len(ep.seen()); n != 0 {
			t.Errorf("id of %d bytes: endpoint saw %d requests, want 0", len(id), n)
		}
	}
}

func TestRevokeSendsTheIDAsOneSegment(t *testing.T) {
	ep := startEndpoint(t, answering(204, ``))
	spec := tokenSpec(ep.URL)
	spec.Response.TokenID = "id"
	spec.Revoke = &v1alpha1.RequestSpec{URL: ep.URL + "/tokens/{tokenID}", Method: http.MethodDelete}
	err := testEngine().Revoke(context.Background(), Call{Spec: spec, HTTPClient: testClient(t)}, "old-token", "../admin?x=1&y=2;z")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ep.only(t).path, "/tokens/..%2Fadmin%3Fx%3D1%26y%3D2%3Bz"; got != want {
		t.Errorf("path = %s, want %s", got, want)
	}
}

func TestIssueRefusesUnusableTokenIDs(t *testing.T) {
	spec := &v1alpha1.ResponseSpec{Token: "access_token", TokenID: "id"}
	body := func(id string) string {
		encoded, _ := json.Marshal(id)
		return `{"access_token":"t","id":` + string(encoded) + `}`
	}
	tests := []struct {
		name string
		id   string
		want string
	}{
		{"too long", idCanary + strings.Repeat("x", maxTokenIDBytes+1-len(idCanary)),
			`the token id at "id" is 513 bytes, more than the 512 tokenmint accepts`},
		{"line break", idCanary + "\nx", `the token id at "id" contains a control character`},
		{"tab", idCanary + "\tx", `the token id at "id" contains a control character`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := read(spec, 200, body(tt.id))
			e := asError(t, err)
			if e.Class != ClassInvalidResponse || e.Message != tt.want {
				t.Errorf("got %v %s, want InvalidResponse %q", e.Class, shown(e.Message), tt.want)
			}
			if strings.Contains(e.Error(), idCanary) {
				t.Error("the error quotes the id")
			}
		})
	}
	for _, id := range []string{strings.Repeat("x", maxTokenIDBytes), "..", "a/b&c"} {
		token, err := read(spec, 200, body(id))
		if err != nil || token.ID != id {
			t.Errorf("id of %d bytes: got %s, want it kept", len(id), shown(fmt.Sprint(err)))
		}
	}
}

// tokenCanary marks tokens whose text must never reach an error.
const tokenCanary = "CANARY-TOKEN"

func sized(n int) string { return tokenCanary + strings.Repeat("x", n-len(tokenCanary)) }

func TestTokenSizeCaps(t *testing.T) {
	spec := &v1alpha1.ResponseSpec{Token: "access_token", RefreshToken: &v1alpha1.RefreshTokenSpec{Path: "refresh_token"}}
	body := func(access, refresh string) string {
		return fmt.Sprintf(`{"access_token":%q,"refresh_token":%q}`, access, refresh)
	}
	token, err := read(spec, 200, body(sized(MaxTokenBytes), sized(MaxTokenBytes)))
	if err != nil || len(token.Value) != MaxTokenBytes || len(token.RefreshToken) != MaxTokenBytes {
		t.Fatalf("tokens of exactly %d bytes must be accepted: %s", MaxTokenBytes, shown(fmt.Sprint(err)))
	}
	tests := []struct {
		name string
		body string
		want string
	}{
		{"access token", body(sized(70000), "r"), "the access token is 70000 bytes, more than the 16384 tokenmint accepts"},
		{"access token one byte over", body(sized(MaxTokenBytes+1), "r"), "the access token is 16385 bytes, more than the 16384 tokenmint accepts"},
		{"refresh token", body("t", sized(MaxTokenBytes+1)), "the refresh token is 16385 bytes, more than the 16384 tokenmint accepts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := read(spec, 200, tt.body)
			e := asError(t, err)
			if e.Class != ClassInvalidResponse || e.Message != tt.want {
				t.Errorf("got %v %s, want InvalidResponse %q", e.Class, shown(e.Message), tt.want)
			}
			if strings.Contains(e.Error(), tokenCanary) {
				t.Error("the error quotes the token")
			}
		})
	}
}

func TestCopiedFieldCap(t *testing.T) {
	spec := &v1alpha1.ResponseSpec{Token: "access_token", Copy: []v1alpha1.CopyField{{Key: "org", Path: "org"}}}
	token, err := read(spec, 200, fmt.Sprintf(`{"access_token":"t","org":%q}`, sized(maxFieldBytes)))
	if err != nil || len(token.Fields["org"]) != maxFieldBytes {
		t.Fatalf("a field of exactly %d bytes must be copied: %s", maxFieldBytes, shown(fmt.Sprint(err)))
	}
	tests := []struct {
		name string
		org  string
		want string
	}{
		{"string", fmt.Sprintf("%q", sized(maxFieldBytes+1)),
			"the value of response.copy[org] is 4097 bytes, more than the 4096 tokenmint accepts"},
		// A non-string value is copied as its JSON text, and that is what counts.
		{"list", `["` + strings.Repeat("x", maxFieldBytes) + `"]`,
			"the value of response.copy[org] is 4100 bytes, more than the 4096 tokenmint accepts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := read(spec, 200, `{"access_token":"t","org":`+tt.org+`}`)
			e := asError(t, err)
			if e.Class != ClassInvalidResponse || e.Message != tt.want {
				t.Errorf("got %v %s, want InvalidResponse %q", e.Class, shown(e.Message), tt.want)
			}
			if strings.Contains(e.Error(), tokenCanary) || strings.Contains(e.Error(), "xxxx") {
				t.Error("the error quotes the value")
			}
		})
	}
}

// TestResponseCapIs256KiB sends a body the former 1 MiB cap let through.
func TestResponseCapIs256KiB(t *testing.T) {
	const size = 256<<10 + 1
	prefix := `{"access_token":"t","pad":"`
	ep := startEndpoint(t, answering(200, prefix+strings.Repeat("x", size-len(prefix)-2)+`"}`))
	e := asError(t, issueWith(t, tokenSpec(ep.URL), testClient(t)))
	if e.Class != ClassInvalidResponse || e.Message != "response body is larger than 262144 bytes" {
		t.Errorf("got %v %s, want InvalidResponse larger than 262144 bytes", e.Class, shown(e.Message))
	}
}

// TestTokenIDOnlyInPathOrQuery: in the host, a provider-chosen id would choose
// where the revoke request and its credentials go.
func TestTokenIDOnlyInPathOrQuery(t *testing.T) {
	tests := []struct {
		url   string
		valid bool
	}{
		{"https://issuer.example.com/tokens/{tokenID}", true},
		{"https://issuer.example.com/revoke?id={tokenID}", true},
		{"https://issuer.example.com/tokens/{tokenID}/revoke?again={tokenID}", true},
		{"https://{tokenID}/revoke", false},
		{"https://{tokenID}.example.com/revoke", false},
		{"https://issuer.example.com:{tokenID}/revoke", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			spec := &v1alpha1.IssuerSpec{
				Request:  v1alpha1.RequestSpec{URL: "https://issuer.example.com/token"},
				Revoke:   &v1alpha1.RequestSpec{URL: tt.url},
				Response: v1alpha1.ResponseSpec{Token: "access_token", TokenID: "id"},
			}
			err := Validate(spec)
			if tt.valid && err != nil {
				t.Errorf("Validate: %v", err)
			}
			if !tt.valid && (err == nil || !strings.Contains(err.Error(), "revoke.url")) {
				t.Errorf("Validate = %v, want revoke.url refused", err)
			}
		})
	}
}
