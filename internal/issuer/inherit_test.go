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
	"testing"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

func TestRefreshAndRevokeInheritFromRequest(t *testing.T) {
	auth := &v1alpha1.AuthSpec{Basic: &v1alpha1.BasicAuth{
		Username: fromSecret(v1alpha1.SecretKeySelector{Name: "c", Key: "id"}),
		Password: fromSecret(v1alpha1.SecretKeySelector{Name: "c", Key: "secret"})}}
	headers := []v1alpha1.Header{{Name: "X-Trace", ValueSource: v1alpha1.ValueSource{Generate: v1alpha1.GenerateUUID}}}
	spec := &v1alpha1.IssuerSpec{
		Credentials: secretCredentials(v1alpha1.SecretKeySelector{Name: "c", Key: "id"}, v1alpha1.SecretKeySelector{Name: "c", Key: "secret"}),
		Request: v1alpha1.RequestSpec{URL: "https://idp.example.com/token", Auth: auth, Headers: headers,
			Body: &v1alpha1.BodySpec{Form: []v1alpha1.FormField{{Name: "grant_type", ValueSource: v1alpha1.ValueSource{Value: ptr("password")}}}}},
		Refresh: &v1alpha1.RequestSpec{Body: &v1alpha1.BodySpec{Form: []v1alpha1.FormField{
			{Name: "refresh_token", ValueSource: v1alpha1.ValueSource{Issued: v1alpha1.IssuedRefreshToken}}}}},
		Revoke: &v1alpha1.RequestSpec{URL: "https://idp.example.com/revoke",
			Headers: []v1alpha1.Header{{Name: "X-Own", ValueSource: v1alpha1.ValueSource{Value: ptr("1")}}}},
		Response: v1alpha1.ResponseSpec{Token: "access_token", RefreshToken: &v1alpha1.RefreshTokenSpec{Path: "refresh_token"}},
	}
	eff := Effective(spec)
	if eff.Refresh.URL != spec.Request.URL || eff.Refresh.Auth != auth || len(eff.Refresh.Headers) != 1 || eff.Refresh.Headers[0].Name != "X-Trace" {
		t.Errorf("refresh did not inherit url, auth and headers: %+v", eff.Refresh)
	}
	if eff.Refresh.Body == spec.Request.Body {
		t.Error("refresh inherited the request's body")
	}
	if eff.Revoke.URL != "https://idp.example.com/revoke" || eff.Revoke.Auth != auth || eff.Revoke.Headers[0].Name != "X-Own" {
		t.Errorf("revoke: %+v", eff.Revoke)
	}
	if spec.Refresh.URL != "" || spec.Revoke.Auth != nil {
		t.Error("Effective changed the spec it was given")
	}
	if err := Validate(spec); err != nil {
		t.Errorf("a refresh that inherits is refused: %v", err)
	}
	if refs := SecretRefs(spec); len(refs) != 2 {
		t.Errorf("secret refs %v", refs)
	}
	full := &v1alpha1.IssuerSpec{Request: spec.Request, Response: spec.Response,
		Refresh: &v1alpha1.RequestSpec{URL: "https://idp.example.com/token", Auth: auth, Headers: headers}}
	if Effective(full) != full {
		t.Error("a spec that inherits nothing was copied")
	}
}

func TestInheritedCredentialsStayOnRequestsOrigin(t *testing.T) {
	auth := &v1alpha1.AuthSpec{Bearer: ptr(fromSecret(v1alpha1.SecretKeySelector{Name: "c", Key: "k"}))}
	headers := []v1alpha1.Header{{Name: "X-Key", ValueSource: fromSecret(v1alpha1.SecretKeySelector{Name: "c", Key: "k"})}}
	spec := &v1alpha1.IssuerSpec{
		Request: v1alpha1.RequestSpec{URL: "https://idp.example.com/token", Auth: auth, Headers: headers},
		Revoke:  &v1alpha1.RequestSpec{URL: "https://revoke.elsewhere.example/revoke/{tokenID}"},
		Refresh: &v1alpha1.RequestSpec{URL: "https://IDP.example.com/refresh"},
	}
	eff := Effective(spec)
	if eff.Revoke.Auth != nil || eff.Revoke.Headers != nil {
		t.Errorf("a revoke call to another host inherited request's credentials: %+v", eff.Revoke)
	}
	if eff.Refresh.Auth != auth || len(eff.Refresh.Headers) != 1 {
		t.Errorf("a refresh call to request's host (another path, another case) did not inherit: %+v", eff.Refresh)
	}
}
