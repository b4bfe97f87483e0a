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

package v1alpha1

// FailurePreset names the failure rules of a provider family.
// +kubebuilder:validation:Enum=OAuth2;GitHub;AWS;Vault
type FailurePreset string

const (
	// FailurePresetOAuth2 reads the error codes of RFC 6749 section 5.2.
	FailurePresetOAuth2 FailurePreset = "OAuth2"
	// FailurePresetGitHub reads GitHub's primary and secondary rate limits.
	FailurePresetGitHub FailurePreset = "GitHub"
	// FailurePresetAWS reads the error codes of AWS JSON error answers.
	FailurePresetAWS FailurePreset = "AWS"
	// FailurePresetVault reads HashiCorp Vault's {"errors": [...]} answers.
	FailurePresetVault FailurePreset = "Vault"
)

// FailureMeaning says what a failed answer means, and so what tokenmint does.
// +kubebuilder:validation:Enum=Retryable;RateLimited;RefreshRejected;Permanent
type FailureMeaning string

const (
	// FailureRetryable passes by itself: retried with backoff.
	FailureRetryable FailureMeaning = "Retryable"
	// FailureRateLimited waits until the provider's reset time or delay,
	// without marking the issuer not Ready.
	FailureRateLimited FailureMeaning = "RateLimited"
	// FailureRefreshRejected drops the refresh token and makes the first
	// request once instead. On any other call it is Permanent.
	FailureRefreshRejected FailureMeaning = "RefreshRejected"
	// FailurePermanent stops calling until the AccessToken, its issuer or a
	// credential changes, with a slow re-check.
	FailurePermanent FailureMeaning = "Permanent"
)

// FailureSpec says what the provider's failed answers mean.
type FailureSpec struct {
	// preset adds the rules of a provider family, applied after rules:
	// OAuth2 (RFC 6749 error codes), GitHub (primary and secondary rate
	// limits), AWS (throttling and other error codes of JSON error answers),
	// Vault ({"errors": [...]} answers). docs/renewal.md lists them.
	// +optional
	Preset FailurePreset `json:"preset,omitempty"`

	// rules are tried in order on every failed answer (a non-2xx status, or a
	// 2xx that response.success rejects); the first that matches decides.
	// An answer no rule matches is judged by its HTTP status.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Rules []FailureRule `json:"rules,omitempty"`
}

// FailureRule matches a failed answer and says what it means. Every match it
// sets must hold.
// +kubebuilder:validation:XValidation:rule="has(self.status) || has(self.code) || has(self.body) || has(self.header)",message="a rule matches on at least one of status, code, body or header"
// +kubebuilder:validation:XValidation:rule="!has(self.retryAfter) || self.meaning == 'RateLimited'",message="retryAfter is for meaning RateLimited"
type FailureRule struct {
	// status lists HTTP statuses, one of which the answer has.
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Minimum=100
	// +kubebuilder:validation:items:Maximum=599
	// +optional
	Status []int32 `json:"status,omitempty"`

	// code lists provider error codes, one of which the value at
	// response.error.code is (compared as text).
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=256
	// +optional
	Code []string `json:"code,omitempty"`

	// body matches a value of the answer's JSON body.
	// +optional
	Body *BodyMatch `json:"body,omitempty"`

	// header matches a header of the answer.
	// +optional
	Header *HeaderMatch `json:"header,omitempty"`

	// meaning of a matching answer: Retryable (retried with backoff),
	// RateLimited (waits for retryAfter; the issuer stays Ready),
	// RefreshRejected (the refresh token is dropped and the first request made
	// once instead; Permanent on other calls) or Permanent (no call until the
	// AccessToken, its issuer or a credential changes; re-checked hourly).
	// +required
	Meaning FailureMeaning `json:"meaning"`

	// retryAfter says where a RateLimited answer gives its delay or reset
	// time. Default: the Retry-After header, in seconds or as an HTTP date.
	// +optional
	RetryAfter *RetryAfterSpec `json:"retryAfter,omitempty"`
}

// BodyMatch matches the value at a path of the answer's JSON body.
// +kubebuilder:validation:XValidation:rule="has(self.equals) != has(self.contains)",message="set exactly one of equals or contains"
type BodyMatch struct {
	// path of the value, such as "error" or "message".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +required
	Path string `json:"path"`

	// equals is the value's text: a string as it is, any other value as
	// JSON ("false", "0", "[]").
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Equals *string `json:"equals,omitempty"`

	// contains is text the value holds, compared without regard to case
	// ("secondary rate limit").
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Contains string `json:"contains,omitempty"`
}

// HeaderMatch matches a header of the answer.
type HeaderMatch struct {
	// name of the header, in any case.
	// +kubebuilder:validation:Pattern=`^[!#$%&'*+.^_|~0-9A-Za-z-]+$`
	// +kubebuilder:validation:MaxLength=256
	// +required
	Name string `json:"name"`

	// equals is the header's value (surrounding spaces ignored). Without it
	// the header only has to be present.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Equals *string `json:"equals,omitempty"`
}

// RetryAfterFormat says how a delay or reset time is written.
// +kubebuilder:validation:Enum=SecondsOrHTTPDate;UnixSeconds;UnixMilliseconds;RFC3339
type RetryAfterFormat string

const (
	// RetryAfterSecondsOrHTTPDate is a delay in seconds or an HTTP date, as
	// Retry-After has it (RFC 9110 section 10.2.3).
	RetryAfterSecondsOrHTTPDate RetryAfterFormat = "SecondsOrHTTPDate"
	// RetryAfterUnixSeconds is a reset time in unix seconds (x-ratelimit-reset).
	RetryAfterUnixSeconds RetryAfterFormat = "UnixSeconds"
	// RetryAfterUnixMilliseconds is a reset time in unix milliseconds.
	RetryAfterUnixMilliseconds RetryAfterFormat = "UnixMilliseconds"
	// RetryAfterRFC3339 is a reset time in RFC 3339 format.
	RetryAfterRFC3339 RetryAfterFormat = "RFC3339"
)

// RetryAfterSpec locates the delay or reset time of a rate limit: in a header
// or at a path of the body. The wait is capped at 24h.
// +kubebuilder:validation:XValidation:rule="!(has(self.header) && has(self.path))",message="set at most one of header or path"
// +kubebuilder:validation:XValidation:rule="!has(self.default) || duration(self.default) <= duration('24h')",message="default must be at most 24h"
type RetryAfterSpec struct {
	// header holding the value: Retry-After, x-ratelimit-reset.
	// +kubebuilder:validation:Pattern=`^[!#$%&'*+.^_|~0-9A-Za-z-]+$`
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Header string `json:"header,omitempty"`

	// path of the value in the JSON body, such as "error.retry_after".
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Path string `json:"path,omitempty"`

	// format of the value: SecondsOrHTTPDate (a delay in seconds or an HTTP
	// date), UnixSeconds, UnixMilliseconds or RFC3339 (a reset time).
	// +kubebuilder:default=SecondsOrHTTPDate
	// +optional
	Format RetryAfterFormat `json:"format,omitempty"`

	// default is the wait when the answer carries no usable value (GitHub asks
	// for at least a minute after a secondary rate limit without Retry-After).
	// +optional
	Default *Duration `json:"default,omitempty"`
}
