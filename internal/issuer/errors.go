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
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Class tells the caller what to do about a failed call.
type Class int

const (
	// ClassRetryable is a failure that may pass by itself: a 5xx answer, a
	// timeout, a refused or broken connection. Retry with backoff.
	ClassRetryable Class = iota
	// ClassUnauthorized is a 401 or 403: the credentials are wrong or lack a
	// permission. Retrying will not help until the configuration changes.
	ClassUnauthorized
	// ClassBadRequest is a 400 or another 4xx: the endpoint refused the request as
	// built from the configuration. Terminal until the configuration changes.
	ClassBadRequest
	// ClassRateLimited is a 429; RetryAfter carries the provider's Retry-After.
	ClassRateLimited
	// ClassInvalidResponse is an answer the engine cannot use: not JSON, too
	// large, no token at the configured path, success: false, an unusable expiry.
	ClassInvalidResponse
	// ClassInvalidParameters is an AccessToken whose parameters break the
	// issuer's declarations; raised before any call.
	ClassInvalidParameters
	// ClassInvalidConfig is an issuer configuration the engine cannot use, or a
	// destination the transport refuses; raised before any call.
	ClassInvalidConfig
	// ClassPermanent is a failure a failure rule calls Permanent: no call
	// until the AccessToken, its issuer or a credential changes, save a slow
	// re-check.
	ClassPermanent
	// ClassRefreshRejected is a refresh token the provider refused, by a
	// failure rule: the engine drops it and makes the primary request instead.
	// It leaves the engine only when the issuer's onRejected is Fail: the
	// refresh was refused and nothing else was sent, and nothing is until
	// the configuration changes. On calls without a refresh token it becomes
	// ClassPermanent.
	ClassRefreshRejected
)

var classNames = map[Class]string{
	ClassRetryable:         "Retryable",
	ClassUnauthorized:      "Unauthorized",
	ClassBadRequest:        "BadRequest",
	ClassRateLimited:       "RateLimited",
	ClassInvalidResponse:   "InvalidResponse",
	ClassInvalidParameters: "InvalidParameters",
	ClassInvalidConfig:     "InvalidConfig",
	ClassPermanent:         "Permanent",
	ClassRefreshRejected:   "RefreshRejected",
}

// String returns the class name, such as "RateLimited".
func (c Class) String() string {
	if name, ok := classNames[c]; ok {
		return name
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// Terminal reports whether retrying the same call cannot succeed until the
// issuer, the AccessToken or a credential changes.
func (c Class) Terminal() bool {
	switch c {
	case ClassUnauthorized, ClassBadRequest, ClassInvalidParameters, ClassInvalidConfig, ClassPermanent, ClassRefreshRejected:
		return true
	default:
		return false
	}
}

// Error is a classified failure of the engine. Every text in it is safe to show
// in a condition, an event or a log line: credentials, secret values and tokens
// are removed before an Error is built, and response bodies are never included
// wholesale.
type Error struct {
	// Class says how the caller should react.
	Class Class
	// StatusCode is the HTTP status of the endpoint's answer, 0 when there was none.
	StatusCode int
	// RetryAfter is the delay the endpoint asked for (Retry-After), 0 when none.
	RetryAfter time.Duration
	// Code is the provider's error code, read from response.error.code.
	Code string
	// Message describes the failure: the provider's message when it sent one,
	// otherwise the engine's.
	Message string
	// Rule names the failure rule that gave the class, such as
	// "response.failures.rules[0]" or "preset GitHub"; empty when the HTTP
	// status did.
	Rule string
	// RefreshRejected is true when the provider refused the refresh token
	// before this failure: the caller drops it.
	RefreshRejected bool
	// Step names the issuer's step that failed; empty for the request itself.
	Step string

	// cause is a redacted view of the underlying error, kept for errors.Is.
	cause error
}

// Error describes the failure in one line.
func (e *Error) Error() string {
	if e.Step != "" {
		return "step " + e.Step + ": " + e.describe()
	}
	return e.describe()
}

func (e *Error) describe() string {
	var b strings.Builder
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "endpoint answered HTTP %d", e.StatusCode)
		if text := http.StatusText(e.StatusCode); text != "" {
			b.WriteString(" " + text)
		}
	}
	detail := e.Message
	if e.Code != "" {
		detail = strings.TrimSuffix(e.Code+": "+e.Message, ": ")
	}
	if detail != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(detail)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Rule != "" && b.Len() > 0 {
		fmt.Fprintf(&b, " [%s by %s]", e.Class, e.Rule)
	}
	if b.Len() == 0 {
		return e.Class.String()
	}
	return b.String()
}

// Unwrap gives errors.Is access to the cause (context.DeadlineExceeded, for
// example) without exposing its unredacted text.
func (e *Error) Unwrap() error { return e.cause }

// redactedError carries the redacted text of an error while errors.Is still
// matches the original chain.
type redactedError struct {
	text     string
	original error
}

func (r *redactedError) Error() string { return r.text }

func (r *redactedError) Is(target error) bool { return errors.Is(r.original, target) }

// ClassOf returns the class of err, ClassRetryable when err is not an *Error.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return ClassRetryable
}

// classForStatus maps a non-2xx HTTP status to a class.
func classForStatus(status int) Class {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ClassUnauthorized
	case status == http.StatusTooManyRequests:
		return ClassRateLimited
	case status == http.StatusRequestTimeout:
		return ClassRetryable
	case status >= 400 && status < 500:
		return ClassBadRequest
	case status >= 500:
		return ClassRetryable
	default:
		// 1xx and 3xx that were not followed: the endpoint answered something the
		// engine cannot use.
		return ClassInvalidResponse
	}
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 section 10.2.3). An absent, malformed or past value is 0.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if seconds, err := strconv.ParseInt(value, 10, 64); err == nil {
		if seconds <= 0 {
			return 0
		}
		return time.Duration(min(seconds, int64(maxRetryAfter/time.Second))) * time.Second
	}
	when, err := http.ParseTime(value)
	if err != nil {
		return 0
	}
	if d := when.Sub(now); d > 0 {
		return min(d.Round(time.Second), maxRetryAfter)
	}
	return 0
}

// maxRetryAfter caps the delay an endpoint can impose, so that a hostile or
// broken Retry-After cannot park a token for years (or overflow a Duration).
const maxRetryAfter = 24 * time.Hour

// problems collects independent findings, such as every mistake of a
// configuration, so that a user can fix them in one go. It reads as one line,
// fit for a condition message, and unwraps to each finding.
type problems []error

// join returns nil for no problems, otherwise the list as one error.
func join(list []error) error {
	var kept problems
	for _, err := range list {
		// Only a list given as it is is flattened; a wrapped one keeps its prefix.
		if nested, isList := err.(problems); isList {
			kept = append(kept, nested...)
		} else if err != nil {
			kept = append(kept, err)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	return kept
}

func (p problems) Error() string {
	texts := make([]string, len(p))
	for i, err := range p {
		texts[i] = err.Error()
	}
	return strings.Join(texts, "; ")
}

func (p problems) Unwrap() []error { return p }
