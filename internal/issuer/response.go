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
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// maxExpiryAhead is the furthest expiry the engine believes. Anything further
// is a unit mistake (milliseconds read as seconds) or a broken endpoint, and
// would leave a token unrenewed for ever.
const maxExpiryAhead = 10 * 365 * 24 * time.Hour

// Largest numbers accepted before conversion to a time, so that float to int
// conversion cannot overflow; the maxExpiryAhead check then applies.
const (
	maxUnixSeconds      = 1e11
	maxUnixMilliseconds = maxUnixSeconds * 1e3
	maxRelativeSeconds  = 1e9
)

// maxFieldBytes caps each value response.copy copies into the Secret.
const maxFieldBytes = 4096

// answer is one HTTP response as the engine reads it.
type answer struct {
	status int
	header http.Header
	body   []byte
	// offset is the provider's clock offset the answer's times are read with
	// (see ProviderClock); sentOffset the one the request was written with, and
	// timed whether the request carried times at all.
	offset, sentOffset time.Duration
	timed              bool
}

// readToken turns an answer into a token, or into a classified error. now is
// when the request was sent: relative expiries count from then, which errs on
// the side of renewing early.
func readToken(spec *v1alpha1.ResponseSpec, a answer, now time.Time, red *redactor) (*Token, error) {
	if a.status < 200 || a.status > 299 {
		return nil, endpointError(spec, a, now, red)
	}
	doc, err := decodeAnswer(spec, a, red)
	if err != nil {
		return nil, invalidResponse("response %v", err)
	}
	if err := checkSuccess(spec, a, doc, now, red); err != nil {
		return nil, err
	}
	value, err := requiredString(doc, spec.Token, "token")
	if err != nil {
		return nil, err
	}
	if value, err = transform(value, spec.TokenTransform); err != nil {
		return nil, invalidResponse("token at %q %v", spec.Token, err)
	}
	if value == "" {
		return nil, invalidResponse("token at %q is empty once transformed", spec.Token)
	}
	if len(value) > MaxTokenBytes {
		return nil, tooLarge("the access token", len(value), MaxTokenBytes)
	}
	token := &Token{Value: value, IssuedAt: now}
	if spec.Expiry != nil {
		expiresAt, err := readExpiry(doc, spec.Expiry, value, now, a.offset)
		if err != nil {
			return nil, invalidResponse("token expiry: %v", err)
		}
		token.ExpiresAt = &expiresAt
	}
	if err := readRefreshToken(spec.RefreshToken, doc, now, a.offset, token, red); err != nil {
		return nil, err
	}
	if spec.TokenID != "" {
		id, ok := lookup(doc, spec.TokenID)
		if !ok || text(id) == "" {
			return nil, invalidResponse("no token id at %q", spec.TokenID)
		}
		if err := checkTokenID(text(id)); err != nil {
			return nil, invalidResponse("the token id at %q %v", spec.TokenID, err)
		}
		token.ID = text(id)
	}
	if token.Fields, err = copyFields(spec.Copy, doc, red); err != nil {
		return nil, err
	}
	return token, nil
}

// readRefreshToken reads the optional refresh token. Its absence is not an
// error: OAuth2 servers return one only when they choose to.
func readRefreshToken(spec *v1alpha1.RefreshTokenSpec, doc any, now time.Time, offset time.Duration, token *Token, red *redactor) error {
	if spec == nil {
		return nil
	}
	value, ok := lookup(doc, spec.Path)
	if !ok {
		return nil
	}
	refresh, isString := value.(string)
	if !isString || refresh == "" {
		return invalidResponse("refresh token at %q is not a non-empty string", spec.Path)
	}
	red.add(refresh)
	if len(refresh) > MaxTokenBytes {
		return tooLarge("the refresh token", len(refresh), MaxTokenBytes)
	}
	token.RefreshToken = refresh
	if spec.Expiry != nil {
		expiresAt, err := readExpiry(doc, spec.Expiry, refresh, now, offset)
		if err != nil {
			return invalidResponse("refresh token expiry: %v", err)
		}
		token.RefreshTokenExpiresAt = &expiresAt
	}
	return nil
}

// copyFields copies the configured fields that are present; a provider leaving
// out an optional field should not cost the token. A value larger than
// maxFieldBytes is an invalid response. A secret field is registered with red
// before anything can fail, raw and transformed, so that no error shows it.
func copyFields(fields []v1alpha1.CopyField, doc any, red *redactor) (map[string]string, error) {
	if len(fields) == 0 {
		return nil, nil
	}
	copied := make(map[string]string, len(fields))
	for _, field := range fields {
		value, ok := lookup(doc, field.Path)
		if !ok {
			continue
		}
		s := text(value)
		if field.Secret {
			red.add(s)
		}
		if len(s) > maxFieldBytes {
			return nil, tooLarge(fmt.Sprintf("the value of response.copy[%s]", field.Key), len(s), maxFieldBytes)
		}
		if field.Transform != nil {
			if _, isString := value.(string); !isString {
				return nil, invalidResponse("response.copy[%s]: the value at %q is %s, not a string to transform", field.Key, field.Path, describe(value))
			}
			var err error
			if s, err = transform(s, field.Transform); err != nil {
				return nil, invalidResponse("response.copy[%s]: the value at %q %v", field.Key, field.Path, err)
			}
			if field.Secret {
				red.add(s)
			}
		}
		copied[field.Key] = s
	}
	return copied, nil
}

func requiredString(doc any, path, what string) (string, error) {
	value, ok := lookup(doc, path)
	if !ok {
		return "", invalidResponse("no %s at %q", what, path)
	}
	s, isString := value.(string)
	if !isString || s == "" {
		return "", invalidResponse("%s at %q is not a non-empty string", what, path)
	}
	return s, nil
}

// checkSuccess applies the success predicate to a 2xx answer.
func checkSuccess(spec *v1alpha1.ResponseSpec, a answer, doc any, now time.Time, red *redactor) error {
	if spec.Success == nil {
		return nil
	}
	want, err := decodeJSON(spec.Success.Equals.Raw)
	if err != nil {
		return &Error{Class: ClassInvalidConfig, Message: "response.success.equals is not valid JSON"}
	}
	got, present := lookup(doc, spec.Success.Path)
	if jsonEqual(got, want) {
		return nil
	}
	if spec.Format == v1alpha1.ResponseXML || spec.Format == v1alpha1.ResponseForm {
		// XML and forms hold only text: equals: true matches "true".
		if _, isString := got.(string); isString && present && text(got) == text(want) {
			return nil
		}
	}
	code, message := errorDetails(spec.Error, doc, red)
	if message == "" {
		message = fmt.Sprintf("response reports failure (%s is not %s)", spec.Success.Path, text(want))
	}
	e := &Error{Class: ClassInvalidResponse, Code: code, Message: message}
	applyFailureRules(spec, a, doc, e, now.Add(a.offset)) // reset times are on the provider's clock
	return e
}

// jsonEqual compares decoded JSON values, numbers by value (1 equals 1.0).
func jsonEqual(a, b any) bool {
	normal := func(v any) any {
		encoded, _ := json.Marshal(v)
		var plain any
		_ = json.Unmarshal(encoded, &plain)
		return plain
	}
	return reflect.DeepEqual(normal(a), normal(b))
}

// endpointError classifies a non-2xx answer, with the provider's code and
// message when the issuer says where they are.
func endpointError(spec *v1alpha1.ResponseSpec, a answer, now time.Time, red *redactor) *Error {
	e := &Error{
		Class:      classForStatus(a.status),
		StatusCode: a.status,
		RetryAfter: parseRetryAfter(a.header.Get("Retry-After"), now.Add(a.offset)),
	}
	doc, err := decodeAnswer(spec, a, red)
	if err != nil && spec.Format != v1alpha1.ResponseXML {
		// An XML error answer (AWS's JSON and Query APIs alike) is read for
		// its code and message, and for the failure rules.
		doc, err = decodeXML(a.body)
	}
	if err == nil {
		e.Code, e.Message = errorDetails(spec.Error, doc, red)
	}
	applyFailureRules(spec, a, doc, e, now.Add(a.offset)) // reset times are on the provider's clock
	return e
}

// decodeAnswer decodes a body and registers whatever sits where the token goes
// with red: it is a credential even in an answer that turns out to be a
// failure, and must stay out of that failure's message.
func decodeAnswer(spec *v1alpha1.ResponseSpec, a answer, red *redactor) (any, error) {
	doc, err := decodeBody(spec.Format, a.body)
	if err != nil {
		return nil, err
	}
	if candidate, ok := lookup(doc, spec.Token); ok {
		if token, isString := candidate.(string); isString {
			red.add(token)
			if transformed, err := transform(token, spec.TokenTransform); err == nil {
				red.add(transformed)
			}
		}
	}
	return doc, nil
}

// errorDetails reads the provider's code and message, redacted and shortened.
func errorDetails(spec *v1alpha1.ErrorSpec, doc any, red *redactor) (code, message string) {
	if spec == nil {
		return "", ""
	}
	read := func(path string) string {
		if path == "" {
			return ""
		}
		if value, ok := lookup(doc, path); ok {
			return red.detail(text(value))
		}
		return ""
	}
	return read(spec.Code), read(spec.Message)
}

// readExpiry reads an expiry and checks that it is believable: in the future
// and less than ten years away. token is the value a JWT expiry without a path
// is read from. An absolute expiry is on the provider's clock, offset ahead
// of the local one: it is returned in local time.
func readExpiry(doc any, spec *v1alpha1.ExpirySpec, token string, now time.Time, offset time.Duration) (time.Time, error) {
	expiry, err := expiryValue(doc, spec, token, now)
	if err != nil {
		return time.Time{}, err
	}
	if spec.Format != v1alpha1.ExpiryRelativeSeconds {
		expiry = expiry.Add(-offset)
	}
	switch {
	case !expiry.After(now):
		return time.Time{}, fmt.Errorf("%s is not in the future", expiry.UTC().Format(time.RFC3339))
	case expiry.Sub(now) > maxExpiryAhead:
		return time.Time{}, fmt.Errorf("%s is more than ten years ahead", expiry.UTC().Format(time.RFC3339))
	}
	return expiry, nil
}

func expiryValue(doc any, spec *v1alpha1.ExpirySpec, token string, now time.Time) (time.Time, error) {
	if spec.Format == v1alpha1.ExpiryJWT && spec.Path == "" {
		return jwtExpiry(token)
	}
	value, ok := lookup(doc, spec.Path)
	if !ok {
		return time.Time{}, fmt.Errorf("no value at %q", spec.Path)
	}
	var expiry time.Time
	var err error
	switch spec.Format {
	case v1alpha1.ExpiryUnixSeconds:
		expiry, err = numericTime(value, maxUnixSeconds, func(n float64) time.Time {
			// A float64 near today's unix time is exact to a quarter of a
			// microsecond: rounding to the microsecond gives back the
			// fractions providers write (ECR's 1767225600.123).
			whole, fraction := math.Modf(n)
			return time.Unix(int64(whole), int64(fraction*float64(time.Second))).Round(time.Microsecond)
		})
	case v1alpha1.ExpiryUnixMilliseconds:
		expiry, err = numericTime(value, maxUnixMilliseconds, func(n float64) time.Time {
			return time.UnixMilli(int64(n))
		})
	case v1alpha1.ExpiryRelativeSeconds:
		expiry, err = numericTime(value, maxRelativeSeconds, func(n float64) time.Time {
			return now.Add(time.Duration(n * float64(time.Second)))
		})
	case v1alpha1.ExpiryRFC3339:
		expiry, err = rfc3339Time(value)
	case v1alpha1.ExpiryHTTPDate:
		expiry, err = httpDate(value)
	case v1alpha1.ExpiryJWT:
		s, isString := value.(string)
		if !isString {
			return time.Time{}, fmt.Errorf("value at %q is not a JWT", spec.Path)
		}
		return jwtExpiry(s)
	default:
		return time.Time{}, fmt.Errorf("unknown expiry format %q", spec.Format)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("value at %q %w", spec.Path, err)
	}
	return expiry, nil
}

// numericTime reads a number or a numeric string (expires_in: "3600") and
// converts it with toTime once it is known to be within [0, limit].
func numericTime(value any, limit float64, toTime func(float64) time.Time) (time.Time, error) {
	var literal string
	switch v := value.(type) {
	case json.Number:
		literal = v.String()
	case string:
		literal = v
	default:
		return time.Time{}, fmt.Errorf("is %s, not a number", describe(value))
	}
	n, err := strconv.ParseFloat(literal, 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return time.Time{}, fmt.Errorf("is not a number")
	}
	if n <= 0 || n > limit {
		return time.Time{}, fmt.Errorf("is out of range (%g)", n)
	}
	return toTime(n), nil
}

func rfc3339Time(value any) (time.Time, error) {
	s, ok := value.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("is %s, not an RFC 3339 time", describe(value))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("is not an RFC 3339 time")
	}
	return t, nil
}

// httpDate reads an HTTP date (RFC 9110): the IMF-fixdate
// "Mon, 02 Jan 2006 15:04:05 GMT", or the obsolete RFC 850 and asctime forms
// recipients must still accept.
func httpDate(value any) (time.Time, error) {
	s, ok := value.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("is %s, not an HTTP date", describe(value))
	}
	t, err := http.ParseTime(strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("is not an HTTP date")
	}
	return t, nil
}

// jwtExpiry reads the exp claim of a JWT without verifying its signature: the
// engine is the token's bearer, not its audience, and holds no key to verify
// it with. The value is used only to schedule renewal.
func jwtExpiry(token string) (time.Time, error) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		return time.Time{}, fmt.Errorf("token is not a well-formed JWT")
	}
	exp, err := claims.GetExpirationTime()
	if err != nil {
		return time.Time{}, fmt.Errorf("JWT exp claim is not a number")
	}
	if exp == nil {
		return time.Time{}, fmt.Errorf("JWT has no exp claim")
	}
	return exp.Time, nil
}

// tooLarge refuses a value by its size alone; the value itself is never quoted.
func tooLarge(what string, size, limit int) *Error {
	return invalidResponse("%s is %d bytes, more than the %d tokenmint accepts", what, size, limit)
}

func invalidResponse(format string, args ...any) *Error {
	return &Error{Class: ClassInvalidResponse, Message: fmt.Sprintf(format, args...)}
}
