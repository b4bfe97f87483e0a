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

package plugin

import (
	"strings"
	"testing"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
)

// TestSecretCopiedFieldsNotShown: test shows a copied field marked secret by
// its size only, in text and structured output, and counts it among the
// credentials its last guard removes.
func TestSecretCopiedFieldsNotShown(t *testing.T) {
	const secretKey = "SECRET-ACCESS-KEY-CANARY"
	spec := &tokensv1alpha1.IssuerSpec{Response: tokensv1alpha1.ResponseSpec{Token: "t", Copy: []tokensv1alpha1.CopyField{
		{Key: "AWS_ACCESS_KEY_ID", Path: "id"},
		{Key: "AWS_SECRET_ACCESS_KEY", Path: "key", Secret: true},
		{Key: "echo", Path: "echo"},
	}}}
	fields := map[string]string{"AWS_ACCESS_KEY_ID": "ASIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": secretKey, "echo": "key " + secretKey}
	hidden := append([]string{"token"}, secretFields(spec, fields)...)
	if len(hidden) != 2 || hidden[1] != secretKey {
		t.Fatalf("secret fields %v", hidden)
	}
	view := fieldsView(spec, fields, hidden)
	want := map[string]string{"AWS_ACCESS_KEY_ID": "ASIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "<secret, 24 bytes, not shown>", "echo": "key [redacted]"}
	for k, v := range want {
		if view[k] != v {
			t.Errorf("%s shown as %q, want %q", k, view[k], v)
		}
	}
	var out strings.Builder
	printTest(&out, &TestView{Issuer: "TokenIssuer/ns/aws", Request: &issuer.RenderedRequest{Method: "POST", URL: "https://sts.example/"},
		Result: &ResultView{IssuedAt: &Moment{}, Token: &TokenView{}, Fields: view}})
	if strings.Contains(out.String(), secretKey) || !strings.Contains(out.String(), "AWS_SECRET_ACCESS_KEY") || !strings.Contains(out.String(), "ASIAEXAMPLE") {
		t.Errorf("output:\n%s", out.String())
	}
}
