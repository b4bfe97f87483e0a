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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// failureCase is one failed answer and how it must be judged.
type failureCase struct {
	name      string
	status    int
	body      string
	header    []string
	wantClass Class
	wantWait  time.Duration
	wantRule  string // "" when the HTTP status decides
}

func runFailureCases(t *testing.T, spec *v1alpha1.ResponseSpec, cases []failureCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := read(spec, tt.status, tt.body, tt.header...)
			e := asError(t, err)
			if e.Class != tt.wantClass || e.RetryAfter != tt.wantWait || e.Rule != tt.wantRule {
				t.Errorf("got %v wait %s rule %q, want %v wait %s rule %q (%v)",
					e.Class, e.RetryAfter, e.Rule, tt.wantClass, tt.wantWait, tt.wantRule, e)
			}
		})
	}
}

func withPreset(p v1alpha1.FailurePreset) *v1alpha1.ResponseSpec {
	return &v1alpha1.ResponseSpec{Token: "access_token", Error: &v1alpha1.ErrorSpec{Code: "error", Message: "error_description"},
		Failures: &v1alpha1.FailureSpec{Preset: p}}
}

func TestOAuth2Preset(t *testing.T) {
	const by = "preset OAuth2"
	oauth := func(code string) string { return `{"error":"` + code + `","error_description":"d"}` }
	runFailureCases(t, withPreset(v1alpha1.FailurePresetOAuth2), []failureCase{
		{"invalid_grant", 400, oauth("invalid_grant"), nil, ClassRefreshRejected, 0, by},
		{"invalid_client", 401, oauth("invalid_client"), nil, ClassPermanent, 0, by},
		{"unauthorized_client", 400, oauth("unauthorized_client"), nil, ClassPermanent, 0, by},
		{"invalid_scope", 400, oauth("invalid_scope"), nil, ClassPermanent, 0, by},
		{"invalid_request", 400, oauth("invalid_request"), nil, ClassPermanent, 0, by},
		{"temporarily_unavailable", 503, oauth("temporarily_unavailable"), nil, ClassRetryable, 0, by},
		{"server_error in a 400", 400, oauth("server_error"), nil, ClassRetryable, 0, by},
		{"slow_down with Retry-After", 400, oauth("slow_down"), []string{"Retry-After", "7"}, ClassRateLimited, 7 * time.Second, by},
		{"unknown code falls to the status", 400, oauth("custom"), nil, ClassBadRequest, 0, ""},
		{"no JSON falls to the status", 502, `bad gateway`, nil, ClassRetryable, 0, ""},
	})
}

func TestGitHubPreset(t *testing.T) {
	const by = "preset GitHub"
	reset := strconv.FormatInt(testNow.Add(17*time.Minute).Unix(), 10)
	past := strconv.FormatInt(testNow.Add(-time.Minute).Unix(), 10)
	primary := `{"message":"API rate limit exceeded for installation ID 1."}`
	secondary := `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}`
	runFailureCases(t, withPreset(v1alpha1.FailurePresetGitHub), []failureCase{
		{"primary 403 until the reset", 403, primary, []string{"x-ratelimit-remaining", "0", "x-ratelimit-reset", reset}, ClassRateLimited, 17 * time.Minute, by},
		{"primary 429 until the reset", 429, primary, []string{"x-ratelimit-remaining", "0", "x-ratelimit-reset", reset}, ClassRateLimited, 17 * time.Minute, by},
		{"primary with a reset already past", 403, primary, []string{"x-ratelimit-remaining", "0", "x-ratelimit-reset", past}, ClassRateLimited, 0, by},
		{"primary without a reset waits a minute", 403, primary, []string{"x-ratelimit-remaining", "0"}, ClassRateLimited, time.Minute, by},
		{"secondary with Retry-After", 403, secondary, []string{"Retry-After", "30", "x-ratelimit-remaining", "4000"}, ClassRateLimited, 30 * time.Second, by},
		{"secondary 429 with Retry-After", 429, secondary, []string{"Retry-After", "90"}, ClassRateLimited, 90 * time.Second, by},
		{"secondary without Retry-After waits a minute", 403, secondary, []string{"x-ratelimit-remaining", "4000"}, ClassRateLimited, time.Minute, by},
		{"bare 429 waits a minute", 429, `{}`, nil, ClassRateLimited, time.Minute, by},
		{"permission denied is not a limit", 403, `{"message":"Resource not accessible by integration"}`, []string{"x-ratelimit-remaining", "4000"}, ClassUnauthorized, 0, ""},
		{"bad credentials", 401, `{"message":"Bad credentials"}`, nil, ClassUnauthorized, 0, ""},
		{"permissions not granted", 422, `{"message":"The permissions requested are not granted to this installation."}`, nil, ClassPermanent, 0, by},
		{"installation not found", 404, `{"message":"Not Found"}`, nil, ClassPermanent, 0, by},
	})
}

func TestAWSPreset(t *testing.T) {
	const by = "preset AWS"
	runFailureCases(t, withPreset(v1alpha1.FailurePresetAWS), []failureCase{
		{"Throttling", 400, `{"__type":"Throttling","message":"Rate exceeded"}`, nil, ClassRateLimited, 0, by},
		{"namespaced ThrottlingException", 400, `{"__type":"com.amazonaws.sts#ThrottlingException","message":"Rate exceeded"}`, []string{"Retry-After", "3"}, ClassRateLimited, 3 * time.Second, by},
		{"TooManyRequestsException in code", 429, `{"code":"TooManyRequestsException"}`, nil, ClassRateLimited, 0, by},
		{"RequestLimitExceeded", 503, `{"__type":"RequestLimitExceeded"}`, nil, ClassRateLimited, 0, by},
		{"ExpiredToken is retried with a fresh credential", 400, `{"__type":"ExpiredTokenException"}`, nil, ClassRetryable, 0, by},
		{"IDPCommunicationError", 400, `{"__type":"IDPCommunicationError"}`, nil, ClassRetryable, 0, by},
		{"AccessDenied", 403, `{"__type":"AccessDenied","message":"Not authorized to perform sts:AssumeRoleWithWebIdentity"}`, nil, ClassPermanent, 0, by},
		{"InvalidIdentityToken", 400, `{"code":"InvalidIdentityToken"}`, nil, ClassPermanent, 0, by},
		{"unknown code falls to the status", 400, `{"__type":"Other"}`, nil, ClassBadRequest, 0, ""},
		{"STS XML Throttling", 400, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>`, []string{"Retry-After", "2"}, ClassRateLimited, 2 * time.Second, by},
		{"STS XML AccessDenied", 403, `<?xml version="1.0"?><ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>`, nil, ClassPermanent, 0, by},
		{"S3-style XML SlowDown is not a code of the preset", 503, `<Error><Code>SlowDown</Code></Error>`, nil, ClassRetryable, 0, ""},
		{"XML ExpiredToken", 400, `<Error><Code>ExpiredToken</Code></Error>`, nil, ClassRetryable, 0, by},
		{"broken XML falls to the status", 400, `<ErrorResponse><Error><Code>Throttling</Code></Error>`, nil, ClassBadRequest, 0, ""},
	})
}

func TestVaultPreset(t *testing.T) {
	const by = "preset Vault"
	runFailureCases(t, withPreset(v1alpha1.FailurePresetVault), []failureCase{
		{"rate limit quota", 429, `{"errors":["request path \"auth/kubernetes/login\": rate limit quota exceeded"]}`, []string{"Retry-After", "5"}, ClassRateLimited, 5 * time.Second, by},
		{"rate limit without Retry-After", 429, `{"errors":[]}`, nil, ClassRateLimited, 10 * time.Second, by},
		{"sealed", 503, `{"errors":["Vault is sealed"]}`, nil, ClassRetryable, 0, by},
		{"permission denied", 403, `{"errors":["permission denied"]}`, nil, ClassPermanent, 0, by},
		{"invalid role", 400, `{"errors":["invalid role name \"x\""]}`, nil, ClassPermanent, 0, by},
	})
}

func TestIssuerRulesComeBeforeThePreset(t *testing.T) {
	spec := withPreset(v1alpha1.FailurePresetOAuth2)
	spec.Failures.Rules = []v1alpha1.FailureRule{
		{Code: []string{"invalid_client"}, Status: []int32{401}, Meaning: v1alpha1.FailureRetryable},
		{Header: &v1alpha1.HeaderMatch{Name: "X-Quota-Left", Equals: ptr("0")}, Meaning: v1alpha1.FailureRateLimited,
			RetryAfter: &v1alpha1.RetryAfterSpec{Header: "X-Quota-Reset", Format: v1alpha1.RetryAfterRFC3339}},
		{Body: &v1alpha1.BodyMatch{Path: "retry.in", Contains: "x"}, Meaning: v1alpha1.FailurePermanent},
		{Status: []int32{420}, Meaning: v1alpha1.FailureRateLimited,
			RetryAfter: &v1alpha1.RetryAfterSpec{Path: "retry.at", Format: v1alpha1.RetryAfterUnixMilliseconds}},
		{Status: []int32{418}, Meaning: v1alpha1.FailureRateLimited,
			RetryAfter: &v1alpha1.RetryAfterSpec{Path: "retry.after", Default: &v1alpha1.Duration{Duration: 48 * time.Hour}}},
		{Body: &v1alpha1.BodyMatch{Path: "state.busy", Equals: ptr("true")}, Meaning: v1alpha1.FailureRetryable},
	}
	inAMinute := strconv.FormatInt(testNow.Add(time.Minute).UnixMilli(), 10)
	runFailureCases(t, spec, []failureCase{
		{"issuer's rule wins", 401, `{"error":"invalid_client"}`, nil, ClassRetryable, 0, "response.failures.rules[0]"},
		{"every match must hold", 400, `{"error":"invalid_client"}`, nil, ClassPermanent, 0, "preset OAuth2"},
		{"header reset as RFC 3339", 400, `{}`, []string{"x-quota-left", " 0 ", "X-Quota-Reset", testNow.Add(2 * time.Minute).Format(time.RFC3339)},
			ClassRateLimited, 2 * time.Minute, "response.failures.rules[1]"},
		{"header with another value", 400, `{}`, []string{"X-Quota-Left", "3"}, ClassBadRequest, 0, ""},
		{"body contains, any case", 500, `{"retry":{"in":"NEXT"}}`, nil, ClassPermanent, 0, "response.failures.rules[2]"},
		{"body reset in milliseconds", 420, `{"retry":{"at":` + inAMinute + `}}`, nil, ClassRateLimited, time.Minute, "response.failures.rules[3]"},
		{"unreadable value uses the default, capped at 24h", 418, `{"retry":{"after":"soon"}}`, nil, ClassRateLimited, 24 * time.Hour, "response.failures.rules[4]"},
		{"equals compares a boolean's text", 409, `{"state":{"busy":true}}`, nil, ClassRetryable, 0, "response.failures.rules[5]"},
		{"equals does not match the string of another value", 409, `{"state":{"busy":"yes"}}`, nil, ClassBadRequest, 0, ""},
		{"delay seconds in the body", 418, `{"retry":{"after":12}}`, nil, ClassRateLimited, 12 * time.Second, "response.failures.rules[4]"},
	})
}

// The invoicing API answers 200 {"success": false, "message": ...}: a rule
// on the message makes "scope not allowed" Permanent, and the class names the
// rule without copying anything else from the body.
func TestRulesJudgeARejectedSuccess(t *testing.T) {
	spec := &v1alpha1.ResponseSpec{Token: "data.secret", Error: &v1alpha1.ErrorSpec{Message: "message"},
		Success: &v1alpha1.SuccessSpec{Path: "success", Equals: raw("true")},
		Failures: &v1alpha1.FailureSpec{Rules: []v1alpha1.FailureRule{
			{Body: &v1alpha1.BodyMatch{Path: "message", Contains: "scope not allowed"}, Meaning: v1alpha1.FailurePermanent}}}}
	runFailureCases(t, spec, []failureCase{
		{"scope not allowed", 200, `{"success":false,"message":"Scope not allowed: invoices.write"}`, nil, ClassPermanent, 0, "response.failures.rules[0]"},
		{"other failures stay as they were", 200, `{"success":false,"message":"quota reached"}`, nil, ClassInvalidResponse, 0, ""},
	})
	_, err := read(spec, 200, `{"success":false,"message":"scope not allowed"}`)
	if got := err.Error(); !strings.Contains(got, "[Permanent by response.failures.rules[0]]") {
		t.Errorf("error %q does not name the rule", got)
	}
	if token, err := read(spec, 200, `{"success":true,"message":"scope not allowed","data":{"secret":"s"}}`); err != nil || token.Value != "s" {
		t.Errorf("a successful answer was judged by the rules: %v, %v", token, err)
	}
}

// A refresh refused by a rule falls back to the primary request once, and
// the token (or the error) says so, so that the caller drops the refresh
// token; a rule saying anything else keeps the primary request uncalled.
func TestRefreshRejectedByRule(t *testing.T) {
	tests := []struct {
		name         string
		refreshBody  string
		primary      int
		wantPrimary  int
		wantClass    Class // -1: success
		wantRejected bool
	}{
		{"invalid_grant falls back once", `{"error":"invalid_grant"}`, 200, 1, -1, true},
		{"invalid_grant, then the request fails too", `{"error":"invalid_grant"}`, 401, 1, ClassPermanent, true},
		{"invalid_client stops", `{"error":"invalid_client"}`, 200, 0, ClassPermanent, false},
		{"temporarily_unavailable waits", `{"error":"temporarily_unavailable"}`, 200, 0, ClassRetryable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primary := startEndpoint(t, answering(tt.primary, `{"access_token":"primary","error":"invalid_client"}`))
			refresh := startEndpoint(t, answering(400, tt.refreshBody))
			spec := tokenSpec(primary.URL)
			spec.Refresh = &v1alpha1.RequestSpec{URL: refresh.URL}
			spec.Response.RefreshToken = &v1alpha1.RefreshTokenSpec{Path: "refresh_token"}
			spec.Response.Failures = &v1alpha1.FailureSpec{Preset: v1alpha1.FailurePresetOAuth2}
			token, err := testEngine().Issue(context.Background(), Call{Spec: spec, RefreshToken: "rt-1", HTTPClient: testClient(t)})
			if n := len(refresh.seen()); n != 1 {
				t.Fatalf("refresh endpoint saw %d requests, want 1", n)
			}
			if n := len(primary.seen()); n != tt.wantPrimary {
				t.Fatalf("primary endpoint saw %d requests, want %d", n, tt.wantPrimary)
			}
			if tt.wantClass < 0 {
				if err != nil || token.Value != "primary" || !token.RefreshRejected || token.Refreshed {
					t.Fatalf("got %+v, %v; want the primary request's token, marked as replacing a rejected refresh", token, err)
				}
				return
			}
			e := asError(t, err)
			if e.Class != tt.wantClass || e.RefreshRejected != tt.wantRejected {
				t.Errorf("got %v (refresh rejected %v), want %v (%v)", e.Class, e.RefreshRejected, tt.wantClass, tt.wantRejected)
			}
		})
	}
}

// RefreshRejected on a call that carried no refresh token refuses the grant
// itself: Permanent.
func TestRefreshRejectedOnTheFirstRequestIsPermanent(t *testing.T) {
	ep := startEndpoint(t, answering(400, `{"error":"invalid_grant"}`))
	spec := tokenSpec(ep.URL)
	spec.Response.Failures = &v1alpha1.FailureSpec{Preset: v1alpha1.FailurePresetOAuth2}
	_, err := testEngine().Issue(context.Background(), Call{Spec: spec, HTTPClient: testClient(t)})
	if e := asError(t, err); e.Class != ClassPermanent || e.RefreshRejected {
		t.Errorf("got %v (refresh rejected %v), want Permanent", e.Class, e.RefreshRejected)
	}
}

func TestValidateFailures(t *testing.T) {
	tests := []struct {
		name  string
		rules []v1alpha1.FailureRule
		want  string
	}{
		{"matches nothing", []v1alpha1.FailureRule{{Meaning: v1alpha1.FailurePermanent}}, "matches on nothing"},
		{"code without error.code", []v1alpha1.FailureRule{{Code: []string{"x"}, Meaning: v1alpha1.FailurePermanent}}, "needs response.error.code"},
		{"bad meaning", []v1alpha1.FailureRule{{Status: []int32{400}, Meaning: "Sometimes"}}, "is not one of"},
		{"retryAfter on Permanent", []v1alpha1.FailureRule{{Status: []int32{400}, Meaning: v1alpha1.FailurePermanent,
			RetryAfter: &v1alpha1.RetryAfterSpec{}}}, "retryAfter is for meaning RateLimited"},
		{"equals and contains", []v1alpha1.FailureRule{{Body: &v1alpha1.BodyMatch{Path: "a", Equals: ptr("x"), Contains: "x"}, Meaning: v1alpha1.FailurePermanent}}, "exactly one of equals or contains"},
		{"bad path", []v1alpha1.FailureRule{{Body: &v1alpha1.BodyMatch{Path: "a..b", Contains: "x"}, Meaning: v1alpha1.FailurePermanent}}, "body.path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tokenSpec("http://127.0.0.1/token")
			spec.Response.Failures = &v1alpha1.FailureSpec{Rules: tt.rules}
			if err := Validate(spec); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	spec := tokenSpec("http://127.0.0.1/token")
	spec.Response.Failures = &v1alpha1.FailureSpec{Preset: "Other"}
	if err := Validate(spec); err == nil || !strings.Contains(err.Error(), "preset") {
		t.Errorf("Validate accepted an unknown preset: %v", err)
	}
	for preset, rules := range presetRules {
		spec.Response.Failures = &v1alpha1.FailureSpec{Preset: preset, Rules: rules}
		spec.Response.Error = &v1alpha1.ErrorSpec{Code: "error"}
		if err := Validate(spec); err != nil {
			t.Errorf("preset %s's own rules do not validate: %v", preset, err)
		}
	}
}

// A rule's verdict never puts a credential in the error: the message is the
// redacted provider message.
func TestRuleErrorsStayRedacted(t *testing.T) {
	const canary = "canary-secret-5b1f"
	ep := startEndpoint(t, answering(http.StatusBadRequest, `{"error":"invalid_client","error_description":"client secret `+canary+` is wrong"}`))
	spec := tokenSpec(ep.URL)
	spec.Credentials = secretCredentials(v1alpha1.SecretKeySelector{Name: "c", Key: "secret"})
	spec.Request.Headers = []v1alpha1.Header{{Name: "X-Key", ValueSource: fromSecret(v1alpha1.SecretKeySelector{Name: "c", Key: "secret"})}}
	spec.Response.Error = &v1alpha1.ErrorSpec{Code: "error", Message: "error_description"}
	spec.Response.Failures = &v1alpha1.FailureSpec{Preset: v1alpha1.FailurePresetOAuth2}
	_, err := testEngine().Issue(context.Background(), Call{Spec: spec, HTTPClient: testClient(t),
		Secrets: map[v1alpha1.SecretKeySelector]string{{Name: "c", Key: "secret"}: canary}})
	if e := asError(t, err); e.Class != ClassPermanent || strings.Contains(e.Error(), canary) {
		t.Errorf("got %v %q; want Permanent without the credential", e.Class, e.Error())
	}
}

func TestXMLErrorAnswers(t *testing.T) {
	spec := &v1alpha1.ResponseSpec{Token: "access_token", Error: &v1alpha1.ErrorSpec{Code: "ErrorResponse.Error.Code", Message: "ErrorResponse.Error.Message"}}
	_, err := read(spec, 400, `<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>Couldn't retrieve verification key</Message></Error></ErrorResponse>`)
	if e := asError(t, err); e.Code != "InvalidIdentityToken" || e.Message != "Couldn't retrieve verification key" {
		t.Errorf("code %q message %q: the XML envelope was not read", e.Code, e.Message)
	}
	tests := []struct {
		name string
		body string
		want any // nil: refused
	}{
		{"repeated elements become a list", `<R><E>a</E><E>b</E><E>c</E></R>`, map[string]any{"R": map[string]any{"E": []any{"a", "b", "c"}}}},
		{"attributes ignored, text trimmed", `<R a="1"> x </R>`, map[string]any{"R": "x"}},
		{"too deep", strings.Repeat("<a>", maxXMLDepth+1) + strings.Repeat("</a>", maxXMLDepth+1), nil},
		{"not XML", `{"a":1}`, nil},
		{"unclosed", `<a><b>x</b>`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := decodeXML([]byte(tt.body))
			if tt.want == nil {
				if err == nil {
					t.Errorf("decoded %v, want a refusal", doc)
				}
				return
			}
			if err != nil || !jsonEqual(doc, tt.want) {
				t.Errorf("got %v, %v; want %v", doc, err, tt.want)
			}
		})
	}
}
