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

package fakes

import (
	"net/url"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestGoogleWorkloadIdentity(t *testing.T) {
	const audience = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/k8s"
	const email = "orders@project.iam.gserviceaccount.com"
	clk := clocktesting.NewFakeClock(fakeNow)
	fake := &GoogleWorkloadIdentity{Audience: audience, Subjects: []string{"system:serviceaccount:shop:orders"},
		ServiceAccounts: []string{email}}
	fake.Clock = clk
	fake.Verify = func(token string) (string, bool) {
		switch token {
		case "sa-token":
			return "system:serviceaccount:shop:orders", true
		case "other-sa-token":
			return "system:serviceaccount:shop:other", true
		}
		return "", false
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	exchangeBody := func(change func(url.Values)) string {
		v := url.Values{"grant_type": {tokenExchangeGrant}, "requested_token_type": {tokenTypeAccess},
			"subject_token_type": {tokenTypeJWT}, "subject_token": {"sa-token"}, "audience": {audience},
			"scope": {GoogleCloudPlatformScope}}
		if change != nil {
			change(v)
		}
		return v.Encode()
	}
	run(t, fake, []exchange{
		{name: "wrong grant", path: GoogleSTSPath, header: form, body: exchangeBody(func(v url.Values) { v.Set("grant_type", "client_credentials") }),
			status: 400, want: map[string]any{"error": "unsupported_grant_type"}},
		{name: "wrong requested type", path: GoogleSTSPath, header: form,
			body: exchangeBody(func(v url.Values) { v.Set("requested_token_type", tokenTypeJWT) }), status: 400, want: map[string]any{"error": "invalid_request"}},
		{name: "wrong subject type", path: GoogleSTSPath, header: form,
			body: exchangeBody(func(v url.Values) { v.Set("subject_token_type", tokenTypeAccess) }), status: 400, want: map[string]any{"error": "invalid_request"}},
		{name: "wrong audience", path: GoogleSTSPath, header: form,
			body: exchangeBody(func(v url.Values) {
				v.Set("audience", "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/other")
			}),
			status: 400, want: map[string]any{"error": "invalid_target"}},
		{name: "no cloud-platform scope", path: GoogleSTSPath, header: form,
			body: exchangeBody(func(v url.Values) { v.Set("scope", "openid") }), status: 400, want: map[string]any{"error": "invalid_scope"}},
		{name: "forged subject token", path: GoogleSTSPath, header: form,
			body: exchangeBody(func(v url.Values) { v.Set("subject_token", "forged") }), status: 400, want: map[string]any{"error": "invalid_grant"}},
		{name: "subject not trusted", path: GoogleSTSPath, header: form,
			body: exchangeBody(func(v url.Values) { v.Set("subject_token", "other-sa-token") }), status: 400, want: map[string]any{"error": "invalid_grant"}},
		{name: "exchange", path: GoogleSTSPath, header: form, body: exchangeBody(nil), status: 200,
			want: map[string]any{"issued_token_type": tokenTypeAccess, "token_type": "Bearer", "expires_in": 3600}},
	})
	if fake.STSCalls() != 8 || len(fake.STSTokens()) != 1 {
		t.Fatalf("STS calls = %d, tokens = %d; want 8 and 1", fake.STSCalls(), len(fake.STSTokens()))
	}
	sts := fake.STSTokens()[0].Value
	generate := "/v1/projects/-/serviceAccounts/" + email + ":generateAccessToken"
	bearer := func(token string) map[string]string { return jsonHeaders("Authorization", "Bearer "+token) }
	body := `{"scope": ["https://www.googleapis.com/auth/cloud-platform"], "lifetime": "900s"}`
	run(t, fake, []exchange{
		{name: "no bearer", path: generate, header: jsonHeaders(), body: body, status: 401},
		{name: "a bearer the STS did not issue", path: generate, header: bearer("ya29.other"), body: body, status: 401},
		{name: "another service account", path: "/v1/projects/-/serviceAccounts/admin@project.iam.gserviceaccount.com:generateAccessToken",
			header: bearer(sts), body: body, status: 403},
		{name: "no scope", path: generate, header: bearer(sts), body: `{"lifetime": "900s"}`, status: 400},
		{name: "lifetime over an hour", path: generate, header: bearer(sts), body: `{"scope": ["x"], "lifetime": "7200s"}`, status: 400},
		{name: "generate", path: generate, header: bearer(sts), body: body, status: 200,
			want: map[string]any{"expireTime": fakeNow.Add(15 * time.Minute).Format(time.RFC3339)}},
	})
	status, answer, _ := send(fake, exchange{path: generate, header: bearer("ya29.other"), body: body})
	if errObj, ok := answer["error"].(map[string]any); status != 401 || !ok || errObj["status"] != "UNAUTHENTICATED" {
		t.Errorf("refusal = %d %v, want Google's {error: {code, message, status: UNAUTHENTICATED}}", status, answer)
	}
	if len(fake.Issued()) != 1 || !fake.Valid(fake.Issued()[0].Value) {
		t.Errorf("issued = %v, want one valid token", fake.Issued())
	}
	clk.Step(time.Hour)
	if status, _, _ := send(fake, exchange{path: generate, header: bearer(sts), body: body}); status != 401 {
		t.Errorf("an expired STS token was accepted: %d", status)
	}
	if fake.GenerateCalls() != 8 {
		t.Errorf("generate calls = %d, want 8", fake.GenerateCalls())
	}
}
