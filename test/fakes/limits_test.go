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
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestGitHubAppsRateLimits(t *testing.T) {
	clk := clocktesting.NewFakeClock(fakeNow)
	f := NewGitHubApps("Iv23liCLIENT", "42", "99", &signingKey.PublicKey)
	f.Clock = clk
	call := func() (int, map[string]any, map[string]string) {
		now := clk.Now().Unix()
		x := exchange{path: GitHubInstallationTokenPath("99"), header: jsonHeaders("Authorization", "Bearer "+
			signed(t, jwt.SigningMethodRS256, signingKey, jwt.MapClaims{"iss": "42", "iat": now, "exp": now + 300}, nil))}
		status, body, header := send(f, x)
		return status, body, map[string]string{"remaining": header.Get("X-Ratelimit-Remaining"),
			"reset": header.Get("X-Ratelimit-Reset"), "retry": header.Get("Retry-After")}
	}
	until := fakeNow.Add(10 * time.Minute)
	tests := []struct {
		name        string
		limit       GitHubLimit
		wantStatus  int
		wantHeaders map[string]string
		wantMessage string
	}{
		{"primary", GitHubLimit{Until: until}, 403,
			map[string]string{"remaining": "0", "reset": strconv.FormatInt(until.Unix(), 10), "retry": ""}, "API rate limit exceeded"},
		{"primary as 429", GitHubLimit{Until: until, Status429: true}, 429,
			map[string]string{"remaining": "0", "reset": strconv.FormatInt(until.Unix(), 10), "retry": ""}, "API rate limit exceeded"},
		{"secondary", GitHubLimit{Secondary: true, Until: until, Window: 3 * time.Minute}, 403,
			map[string]string{"remaining": "4999", "reset": "", "retry": "180"}, "secondary rate limit"},
		{"secondary without Retry-After", GitHubLimit{Secondary: true, Until: until, OmitRetryAfter: true, Status429: true}, 429,
			map[string]string{"remaining": "4999", "reset": "", "retry": ""}, "secondary rate limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.SetRateLimit(tt.limit)
			status, body, headers := call()
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d", status, tt.wantStatus)
			}
			for k, v := range tt.wantHeaders {
				if headers[k] != v {
					t.Errorf("%s = %q, want %q", k, headers[k], v)
				}
			}
			if msg, _ := body["message"].(string); !strings.Contains(msg, tt.wantMessage) {
				t.Errorf("message %q does not contain %q", msg, tt.wantMessage)
			}
		})
	}
	f.SetRateLimit(GitHubLimit{Secondary: true, Until: until, Window: 3 * time.Minute})
	clk.SetTime(until.Add(-30 * time.Second))
	if _, _, headers := call(); headers["retry"] != "30" {
		t.Errorf("the last window announces Retry-After %q, want 30 (the limit's end)", headers["retry"])
	}
	clk.SetTime(until)
	if status, _, _ := call(); status != 201 {
		t.Errorf("after the limit: status %d, want 201", status)
	}
	if n := f.CallsBy(OutcomeRateLimited); n != 5 {
		t.Errorf("%d calls counted as rate limited, want 5", n)
	}
}

func TestOAuth2RevokedRefreshTokens(t *testing.T) {
	fake := NewOAuth2Server("client", "secret")
	fake.Users["alice"] = "pw"
	basic := map[string]string{"Content-Type": "application/x-www-form-urlencoded",
		"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("client:secret"))}
	run(t, fake, []exchange{{name: "password", path: OAuth2TokenPath, header: basic, body: "grant_type=password&username=alice&password=pw", status: 200}})
	refresh := "grant_type=refresh_token&refresh_token=" + fake.Issued()[0].RefreshToken
	fake.RevokeRefreshTokens()
	run(t, fake, []exchange{{name: "revoked refresh token", path: OAuth2TokenPath, header: basic, body: refresh, status: 400,
		want: map[string]any{"error": "invalid_grant"}}})
}

func TestInvoicingScopeNotAllowed(t *testing.T) {
	fake := NewInvoicingAPI("api-key")
	fake.AllowedScopes = []string{"invoices.read"}
	bearer := jsonHeaders("Authorization", "Bearer api-key")
	run(t, fake, []exchange{
		{name: "allowed", path: InvoicingAPIPath, header: bearer, body: `{"description":"Billing","scopes":["invoices.read"]}`, status: 200,
			want: map[string]any{"success": true}},
		{name: "not allowed", path: InvoicingAPIPath, header: bearer, body: `{"description":"Billing","scopes":["invoices.write"]}`, status: 200,
			want: map[string]any{"success": false, "message": "scope not allowed"}, absent: []string{"data"}},
	})
}
