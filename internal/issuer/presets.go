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
	"time"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// presetRules are the failure rules of each provider family, written in the
// API's own terms and tried in order after the issuer's rules. They match on
// the body and headers only: the issuer's response.error.code path is its own.
var presetRules = map[v1alpha1.FailurePreset][]v1alpha1.FailureRule{
	v1alpha1.FailurePresetOAuth2: oauth2Rules(),
	v1alpha1.FailurePresetGitHub: githubRules(),
	v1alpha1.FailurePresetAWS:    awsRules(),
	v1alpha1.FailurePresetVault:  vaultRules(),
}

// oauth2Rules read the error codes of RFC 6749 section 5.2 (and slow_down of
// RFC 8628) from the "error" member.
func oauth2Rules() []v1alpha1.FailureRule {
	var rules []v1alpha1.FailureRule
	// The refresh token (or the grant) is invalid, expired or revoked.
	rules = append(rules, bodyEquals("error", v1alpha1.FailureRefreshRejected, "invalid_grant")...)
	// The client's credentials or request are wrong: retrying cannot help.
	rules = append(rules, bodyEquals("error", v1alpha1.FailurePermanent,
		"invalid_client", "unauthorized_client", "invalid_scope", "invalid_request", "unsupported_grant_type", "access_denied")...)
	rules = append(rules, bodyEquals("error", v1alpha1.FailureRetryable, "temporarily_unavailable", "server_error")...)
	rules = append(rules, bodyEquals("error", v1alpha1.FailureRateLimited, "slow_down")...)
	return rules
}

// githubRules follow GitHub's documented rate limits: a primary limit is a 403
// or 429 with x-ratelimit-remaining: 0, lifted at x-ratelimit-reset (unix
// seconds); a secondary limit is a 403 or 429 with Retry-After, or without it
// a wait of at least one minute.
func githubRules() []v1alpha1.FailureRule {
	limited := []int32{403, 429}
	zero := "0"
	return []v1alpha1.FailureRule{
		{Status: limited, Header: &v1alpha1.HeaderMatch{Name: "x-ratelimit-remaining", Equals: &zero},
			Meaning:    v1alpha1.FailureRateLimited,
			RetryAfter: &v1alpha1.RetryAfterSpec{Header: "x-ratelimit-reset", Format: v1alpha1.RetryAfterUnixSeconds, Default: minute()}},
		{Status: limited, Header: &v1alpha1.HeaderMatch{Name: "Retry-After"},
			Meaning: v1alpha1.FailureRateLimited, RetryAfter: &v1alpha1.RetryAfterSpec{Header: "Retry-After", Default: minute()}},
		{Status: limited, Body: &v1alpha1.BodyMatch{Path: "message", Contains: "rate limit"},
			Meaning: v1alpha1.FailureRateLimited, RetryAfter: &v1alpha1.RetryAfterSpec{Default: minute()}},
		{Status: []int32{429}, Meaning: v1alpha1.FailureRateLimited, RetryAfter: &v1alpha1.RetryAfterSpec{Default: minute()}},
		// An installation that does not exist, or repositories and
		// permissions it was not granted, stay so until someone changes them.
		{Status: []int32{404, 422}, Meaning: v1alpha1.FailurePermanent},
	}
}

// awsRules read the error code of AWS answers: "__type" (which may carry a
// namespace, "com.amazonaws.sts#ThrottlingException") or "code" of a JSON
// answer, <ErrorResponse><Error><Code> (the Query APIs, STS) or <Error><Code>
// of an XML one.
func awsRules() []v1alpha1.FailureRule {
	var rules []v1alpha1.FailureRule
	add := func(meaning v1alpha1.FailureMeaning, codes ...string) {
		for _, c := range codes {
			rules = append(rules,
				v1alpha1.FailureRule{Body: &v1alpha1.BodyMatch{Path: "__type", Contains: c}, Meaning: meaning},
				v1alpha1.FailureRule{Body: &v1alpha1.BodyMatch{Path: "code", Equals: textOf(c)}, Meaning: meaning},
				v1alpha1.FailureRule{Body: &v1alpha1.BodyMatch{Path: "ErrorResponse.Error.Code", Equals: textOf(c)}, Meaning: meaning},
				v1alpha1.FailureRule{Body: &v1alpha1.BodyMatch{Path: "Error.Code", Equals: textOf(c)}, Meaning: meaning})
		}
	}
	add(v1alpha1.FailureRateLimited, "Throttling", "TooManyRequestsException", "RequestLimitExceeded")
	// Every call carries a fresh credential (a signed JWT, a requested
	// ServiceAccount token): an expired one means the next call's will do.
	add(v1alpha1.FailureRetryable, "ExpiredToken", "IDPCommunicationError", "ServiceUnavailable", "InternalFailure")
	add(v1alpha1.FailurePermanent, "AccessDenied", "InvalidIdentityToken", "InvalidClientTokenId", "UnrecognizedClient", "ValidationError")
	return rules
}

// vaultRules read HashiCorp Vault's answers ({"errors": [...]}): a 429 is its
// rate limit quota, a 5xx (503 while sealed or on a standby) passes, and a
// 400, 403 (permission denied) or 404 stays until the configuration changes.
func vaultRules() []v1alpha1.FailureRule {
	return []v1alpha1.FailureRule{
		{Status: []int32{429}, Meaning: v1alpha1.FailureRateLimited, RetryAfter: &v1alpha1.RetryAfterSpec{Header: "Retry-After", Default: &v1alpha1.Duration{Duration: 10 * time.Second}}},
		{Status: []int32{500, 502, 503, 504}, Meaning: v1alpha1.FailureRetryable},
		{Status: []int32{400, 403, 404}, Meaning: v1alpha1.FailurePermanent},
	}
}

func bodyEquals(path string, meaning v1alpha1.FailureMeaning, values ...string) []v1alpha1.FailureRule {
	rules := make([]v1alpha1.FailureRule, 0, len(values))
	for _, v := range values {
		rules = append(rules, v1alpha1.FailureRule{Body: &v1alpha1.BodyMatch{Path: path, Equals: textOf(v)}, Meaning: meaning})
	}
	return rules
}

// textOf is a body match's equals value.
func textOf(s string) *string { return &s }

func minute() *v1alpha1.Duration { return &v1alpha1.Duration{Duration: time.Minute} }
