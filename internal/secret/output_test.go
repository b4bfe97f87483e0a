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

package secret

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

func withSecret(t tokensv1alpha1.SecretTemplate) *tokensv1alpha1.AccessToken {
	at := &tokensv1alpha1.AccessToken{}
	at.Spec.Secret = t
	return at
}

// hostile is a token holding everything that breaks naive templating.
const hostile = "tok\"en\\with\nnewline ${token} $$ ${copy.org} </script>"

func TestDerivedKeysAreExpandedOnceAndStayValid(t *testing.T) {
	exp := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	out := Output{Token: hostile, Fields: map[string]string{"org": `acme "corp" ${token}`}, IssuedAt: exp.Add(-time.Hour), ExpiresAt: &exp}
	at := withSecret(tokensv1alpha1.SecretTemplate{Name: "s", Keys: []tokensv1alpha1.DerivedKey{
		{Key: "header", Template: "Authorization: Bearer ${token}"},
		{Key: "config.json", Encoding: tokensv1alpha1.KeyEncodingJSON,
			Template: `{"token": ${token}, "org": ${copy.org}, "expiresAt": ${expiresAt}, "issuedAt": ${issuedAt}, "price": "$$5"}`},
		{Key: "app.env", Template: "TOKEN=${token}\nEXPIRES_AT=${expiresAt}\n"},
	}})
	data, err := Data(at, out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data["header"]), "Authorization: Bearer "+hostile; got != want {
		t.Errorf("header = %q, want %q (expanded once, as it is)", got, want)
	}
	var doc map[string]string
	if err := json.Unmarshal(data["config.json"], &doc); err != nil {
		t.Fatalf("config.json is not JSON: %v\n%s", err, data["config.json"])
	}
	want := map[string]string{"token": hostile, "org": `acme "corp" ${token}`, "expiresAt": "2026-12-01T10:00:00Z",
		"issuedAt": "2026-12-01T09:00:00Z", "price": "$5"}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("config.json %s = %q, want %q", k, doc[k], v)
		}
	}
	if got := string(data["app.env"]); !strings.HasPrefix(got, "TOKEN="+hostile+"\nEXPIRES_AT=2026-12-01T10:00:00Z") {
		t.Errorf("app.env = %q", got)
	}
	if string(data["token"]) != hostile || string(data["org"]) != `acme "corp" ${token}` {
		t.Errorf("token and copied field must be written as they are")
	}

	out.ExpiresAt = nil
	data, err = Data(at, out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data["config.json"], &map[string]any{}); err != nil || !strings.Contains(string(data["config.json"]), `"expiresAt": null`) {
		t.Errorf("an unknown expiry is null in JSON: %s", data["config.json"])
	}
}

func TestTypedOutputs(t *testing.T) {
	at := withSecret(tokensv1alpha1.SecretTemplate{Name: "s", Type: corev1.SecretTypeDockerConfigJson,
		DockerConfigJSON: &tokensv1alpha1.DockerConfigJSONOutput{Registries: []string{"ghcr.io", "registry.example.com:5000"},
			Username: tokensv1alpha1.OutputUsername{Value: "x-access-token"}}})
	data, err := Data(at, Output{Token: "ghs_abc"})
	if err != nil {
		t.Fatal(err)
	}
	var config struct {
		Auths map[string]struct{ Username, Password, Auth string }
	}
	if err := json.Unmarshal(data[corev1.DockerConfigJsonKey], &config); err != nil {
		t.Fatal(err)
	}
	for _, registry := range []string{"ghcr.io", "registry.example.com:5000"} {
		entry := config.Auths[registry]
		decoded, _ := base64.StdEncoding.DecodeString(entry.Auth)
		if string(decoded) != "x-access-token:ghs_abc" || entry.Username != "x-access-token" || entry.Password != "ghs_abc" {
			t.Errorf("%s: %+v", registry, entry)
		}
	}

	at = withSecret(tokensv1alpha1.SecretTemplate{Name: "s", Type: corev1.SecretTypeBasicAuth,
		BasicAuth: &tokensv1alpha1.BasicAuthOutput{Username: tokensv1alpha1.OutputUsername{Copy: "login"}}})
	data, err = Data(at, Output{Token: "pw", Fields: map[string]string{"login": "robot"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(data["username"]) != "robot" || string(data["password"]) != "pw" {
		t.Errorf("basic-auth data %q", data)
	}
	if _, err := Data(at, Output{Token: "pw"}); err == nil || !strings.Contains(err.Error(), `"login" is not in the response`) {
		t.Errorf("a username field missing from the response: %v", err)
	}
}

func TestPreviousKeyAndSizeBound(t *testing.T) {
	at := withSecret(tokensv1alpha1.SecretTemplate{Name: "s", PreviousKey: "token.previous"})
	data, err := Data(at, Output{Token: "new", Previous: "old"})
	if err != nil || string(data["token.previous"]) != "old" {
		t.Errorf("previous: %q %v", data, err)
	}
	data, _ = Data(at, Output{Token: "new"})
	if _, ok := data["token.previous"]; ok {
		t.Error("no previous token, but the key is written")
	}
	at.Spec.Secret.Keys = []tokensv1alpha1.DerivedKey{{Key: "many", Template: strings.Repeat("${token}", 100)}}
	canary := strings.Repeat("C", 4<<10)
	_, err = Data(at, Output{Token: canary})
	if err == nil || !strings.Contains(err.Error(), "more than") || strings.Contains(err.Error(), canary[:16]) {
		t.Errorf("oversized Secret: %v", err)
	}
}

func TestCheckOutputsBeforeAnyCall(t *testing.T) {
	tests := []struct {
		name     string
		template tokensv1alpha1.SecretTemplate
		copies   []string
		want     string // "" means fine
	}{
		{"a header and a document", tokensv1alpha1.SecretTemplate{Keys: []tokensv1alpha1.DerivedKey{
			{Key: "h", Template: "Bearer ${token}"}, {Key: "j", Template: `{"t": ${token}, "o": ${copy.org}}`, Encoding: "JSON"}}},
			[]string{"org"}, ""},
		{"a field the issuer does not copy", tokensv1alpha1.SecretTemplate{Keys: []tokensv1alpha1.DerivedKey{{Key: "h", Template: "${copy.org}"}}},
			nil, `uses the field "org", which the issuer does not copy`},
		{"an unknown placeholder", tokensv1alpha1.SecretTemplate{Keys: []tokensv1alpha1.DerivedKey{{Key: "h", Template: "${env.HOME}"}}},
			nil, `unknown placeholder "${env.HOME}"`},
		{"an unclosed placeholder", tokensv1alpha1.SecretTemplate{Keys: []tokensv1alpha1.DerivedKey{{Key: "h", Template: "${token"}}},
			nil, "is not a placeholder"},
		{"quoted placeholders in JSON", tokensv1alpha1.SecretTemplate{Keys: []tokensv1alpha1.DerivedKey{
			{Key: "j", Template: `{"t": "${token}"}`, Encoding: "JSON"}}}, nil, "does not make a JSON document"},
		{"a copied field on the token's key", tokensv1alpha1.SecretTemplate{}, []string{"token"}, `key "token" would hold both the token and a copied response field`},
		{"a derived key on a copied field", tokensv1alpha1.SecretTemplate{Keys: []tokensv1alpha1.DerivedKey{{Key: "org", Template: "x"}}},
			[]string{"org"}, `key "org" would hold both a copied response field and a derived key`},
		{"a basic-auth username from a field not copied", tokensv1alpha1.SecretTemplate{Type: corev1.SecretTypeBasicAuth,
			BasicAuth: &tokensv1alpha1.BasicAuthOutput{Username: tokensv1alpha1.OutputUsername{Copy: "login"}}}, nil, `basicAuth.username uses the field "login"`},
		{"a copied field named password in a basic-auth Secret", tokensv1alpha1.SecretTemplate{Type: corev1.SecretTypeBasicAuth,
			BasicAuth: &tokensv1alpha1.BasicAuthOutput{Username: tokensv1alpha1.OutputUsername{Value: "u"}}}, []string{"password"}, `key "password" would hold both`},
		{"a docker type without its output", tokensv1alpha1.SecretTemplate{Type: corev1.SecretTypeDockerConfigJson}, nil, "go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.template.Name = "s"
			err := CheckOutputs(withSecret(tt.template), tt.copies)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// FuzzDerivedKeys checks that any token and field yield a valid JSON document
// under JSON encoding, and are written exactly once, never expanded again.
func FuzzDerivedKeys(f *testing.F) {
	f.Add(hostile, `"quoted" \ ${copy.org}`)
	f.Add("${token}${token}", "$$")
	f.Add("\x00\u2028", "}")
	f.Fuzz(func(t *testing.T, token, field string) {
		at := withSecret(tokensv1alpha1.SecretTemplate{Name: "s", Keys: []tokensv1alpha1.DerivedKey{
			{Key: "j", Encoding: "JSON", Template: `{"t": ${token}, "f": ${copy.f}}`},
			{Key: "r", Template: "<${token}|${copy.f}>"},
		}})
		data, err := Data(at, Output{Token: token, Fields: map[string]string{"f": field}})
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]string
		if err := json.Unmarshal(data["j"], &doc); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
		// JSON replaces invalid UTF-8; compare through the same encoding.
		want := func(s string) string { b, _ := json.Marshal(s); var r string; _ = json.Unmarshal(b, &r); return r }
		if doc["t"] != want(token) || doc["f"] != want(field) {
			t.Fatalf("JSON holds %q %q", doc["t"], doc["f"])
		}
		if got := string(data["r"]); got != "<"+token+"|"+field+">" {
			t.Fatalf("raw key %q", got)
		}
	})
}
