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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// applyFailureRules judges a failed answer by the issuer's failure rules, then
// by its preset's; e keeps the class its HTTP status gave it when none
// matches. doc is the decoded body, nil when it is not JSON; now is the
// provider's time (the local time plus its measured clock offset), since reset
// times are read from its clock.
func applyFailureRules(spec *v1alpha1.ResponseSpec, a answer, doc any, e *Error, now time.Time) {
	if spec.Failures == nil {
		return
	}
	code := ""
	if spec.Error != nil && spec.Error.Code != "" {
		if value, ok := lookup(doc, spec.Error.Code); ok {
			code = text(value)
		}
	}
	for i := range spec.Failures.Rules {
		if rule := &spec.Failures.Rules[i]; ruleMatches(rule, a, doc, code) {
			applyRule(rule, fmt.Sprintf("response.failures.rules[%d]", i), a, doc, e, now)
			return
		}
	}
	preset := presetRules[spec.Failures.Preset]
	for i := range preset {
		if ruleMatches(&preset[i], a, doc, "") {
			applyRule(&preset[i], "preset "+string(spec.Failures.Preset), a, doc, e, now)
			return
		}
	}
}

// ruleMatches reports whether every match the rule sets holds for the answer.
// code is the value at response.error.code ("" when absent); preset rules
// never match on it, since they cannot know the issuer's path.
func ruleMatches(rule *v1alpha1.FailureRule, a answer, doc any, code string) bool {
	if len(rule.Status) > 0 && !slices.Contains(rule.Status, int32(a.status)) {
		return false
	}
	if len(rule.Code) > 0 && (code == "" || !slices.Contains(rule.Code, code)) {
		return false
	}
	if b := rule.Body; b != nil {
		value, ok := lookup(doc, b.Path)
		if !ok {
			return false
		}
		if b.Equals != nil {
			if text(value) != *b.Equals {
				return false
			}
		} else if !strings.Contains(strings.ToLower(text(value)), strings.ToLower(b.Contains)) {
			return false
		}
	}
	if h := rule.Header; h != nil {
		values := a.header.Values(h.Name)
		if len(values) == 0 {
			return false
		}
		if h.Equals != nil && !slices.ContainsFunc(values, func(v string) bool {
			return strings.EqualFold(strings.TrimSpace(v), strings.TrimSpace(*h.Equals))
		}) {
			return false
		}
	}
	return true
}

// applyRule gives e the rule's meaning, and to a rate limit its delay; other
// meanings keep the Retry-After the answer carried.
func applyRule(rule *v1alpha1.FailureRule, source string, a answer, doc any, e *Error, now time.Time) {
	e.Rule = source
	switch rule.Meaning {
	case v1alpha1.FailureRetryable:
		e.Class = ClassRetryable
	case v1alpha1.FailureRateLimited:
		e.Class = ClassRateLimited
		e.RetryAfter = rateLimitDelay(rule.RetryAfter, a, doc, now)
	case v1alpha1.FailureRefreshRejected:
		e.Class = ClassRefreshRejected
	case v1alpha1.FailurePermanent:
		e.Class = ClassPermanent
	}
}

// rateLimitDelay reads the wait a rate limit asks for: from the place spec
// names (the Retry-After header by default), or spec's default when the answer
// has no usable value. A reset time in the past is no wait.
func rateLimitDelay(spec *v1alpha1.RetryAfterSpec, a answer, doc any, now time.Time) time.Duration {
	if spec == nil {
		return parseRetryAfter(a.header.Get("Retry-After"), now)
	}
	raw := ""
	switch {
	case spec.Path != "":
		if value, ok := lookup(doc, spec.Path); ok {
			raw = text(value)
		}
	case spec.Header != "":
		raw = a.header.Get(spec.Header)
	default:
		raw = a.header.Get("Retry-After")
	}
	d, ok := readDelay(strings.TrimSpace(raw), spec.Format, now)
	if !ok && spec.Default != nil {
		d = min(spec.Default.Duration, maxRetryAfter)
	}
	return d
}

// readDelay converts a delay or reset time written in format; ok is false
// when the value is absent or unreadable.
func readDelay(raw string, format v1alpha1.RetryAfterFormat, now time.Time) (time.Duration, bool) {
	if raw == "" {
		return 0, false
	}
	var at time.Time
	switch format {
	case v1alpha1.RetryAfterUnixSeconds, v1alpha1.RetryAfterUnixMilliseconds:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n <= 0 || n > maxUnixMilliseconds {
			return 0, false
		}
		if format == v1alpha1.RetryAfterUnixSeconds {
			if n > maxUnixSeconds {
				return 0, false
			}
			at = time.Unix(n, 0)
		} else {
			at = time.UnixMilli(n)
		}
	case v1alpha1.RetryAfterRFC3339:
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			return 0, false
		}
		at = t
	default:
		if _, err := strconv.ParseInt(raw, 10, 64); err != nil {
			if _, err := http.ParseTime(raw); err != nil {
				return 0, false
			}
		}
		return parseRetryAfter(raw, now), true
	}
	if d := at.Sub(now); d > 0 {
		return min(d.Round(time.Second), maxRetryAfter), true
	}
	return 0, true
}

// validateFailures checks what the CRD schema cannot (the paths) and what it
// checks too, for issuers that reach the engine another way.
func validateFailures(response *v1alpha1.ResponseSpec) []error {
	f := response.Failures
	if f == nil {
		return nil
	}
	var problems []error
	if _, known := presetRules[f.Preset]; f.Preset != "" && !known {
		problems = append(problems, fmt.Errorf("response.failures.preset %q is not one of OAuth2, GitHub, AWS, Vault", f.Preset))
	}
	for i, rule := range f.Rules {
		fail := func(format string, args ...any) {
			problems = append(problems, fmt.Errorf("response.failures.rules[%d]: %s", i, fmt.Sprintf(format, args...)))
		}
		if len(rule.Status) == 0 && len(rule.Code) == 0 && rule.Body == nil && rule.Header == nil {
			fail("matches on nothing: set status, code, body or header")
		}
		if len(rule.Code) > 0 && (response.Error == nil || response.Error.Code == "") {
			fail("matching on code needs response.error.code, the path the code is read from")
		}
		switch rule.Meaning {
		case v1alpha1.FailureRetryable, v1alpha1.FailureRateLimited, v1alpha1.FailureRefreshRejected, v1alpha1.FailurePermanent:
		default:
			fail("meaning %q is not one of Retryable, RateLimited, RefreshRejected, Permanent", rule.Meaning)
		}
		if b := rule.Body; b != nil {
			if _, err := splitPath(b.Path); err != nil {
				fail("body.path: %v", err)
			}
			if (b.Equals == nil) == (b.Contains == "") {
				fail("body: set exactly one of equals or contains")
			}
		}
		if r := rule.RetryAfter; r != nil {
			if rule.Meaning != v1alpha1.FailureRateLimited {
				fail("retryAfter is for meaning RateLimited")
			}
			if r.Path != "" && r.Header != "" {
				fail("retryAfter: set at most one of header or path")
			}
			if r.Path != "" {
				if _, err := splitPath(r.Path); err != nil {
					fail("retryAfter.path: %v", err)
				}
			}
		}
	}
	return problems
}

// refreshRejected reports whether the endpoint turned a refresh token down, so
// that it is dropped and the primary request made instead: a rule said so, or
// no rule spoke and the status was a 400, 401 or 403 (or another 4xx).
func refreshRejected(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	if e.Rule != "" {
		return e.Class == ClassRefreshRejected
	}
	return e.Class == ClassUnauthorized || e.Class == ClassBadRequest
}

// permanentUnlessRefresh turns RefreshRejected on a call that sent no refresh
// token into Permanent: the grant itself is refused.
func permanentUnlessRefresh(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Class == ClassRefreshRejected {
		e.Class = ClassPermanent
	}
	return err
}

// failOnRejected reports whether the issuer asks that a refused refresh end
// the call instead of falling back to the first request.
func failOnRejected(spec *v1alpha1.IssuerSpec) bool {
	rt := spec.Response.RefreshToken
	return rt != nil && rt.OnRejected == v1alpha1.RefreshRejectedFail
}

// refusedRefresh is the error of a refused refresh under onRejected: Fail.
// It keeps the provider's status, code and message, and is ClassRefreshRejected,
// which is terminal: the caller drops the refresh token, keeps the token it
// has, and calls again only when its inputs change.
func refusedRefresh(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	e.Class = ClassRefreshRejected
	e.RefreshRejected = true
	return e
}
