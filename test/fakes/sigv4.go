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
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file checks AWS Signature Version 4 the way AWS documents it
// ("Create a signed AWS API request" in the IAM user guide), written apart
// from any signing library, so that a fake refuses what AWS would refuse.

const (
	sigV4Algorithm  = "AWS4-HMAC-SHA256"
	sigV4TimeFormat = "20060102T150405Z"
	sigV4DateFormat = "20060102"
	// SigV4MaxSkew is how far X-Amz-Date may be from the server's clock.
	SigV4MaxSkew = 5 * time.Minute
	// UnsignedPayload stands for the payload hash of an unsigned body.
	UnsignedPayload = "UNSIGNED-PAYLOAD"
)

// AWSKey is an access key a fake knows: its secret and, for temporary
// credentials, the session token that must come with it.
type AWSKey struct {
	SecretAccessKey string
	SessionToken    string
}

// AWSError is a refusal in AWS's JSON error envelope.
type AWSError struct {
	Status  int
	Type    string
	Message string
}

func (e *AWSError) Error() string { return e.Type + ": " + e.Message }

// Body is the JSON error envelope of the AWS JSON protocols.
func (e *AWSError) Body() map[string]any {
	return map[string]any{"__type": e.Type, "message": e.Message}
}

func awsErr(status int, kind, format string, args ...any) *AWSError {
	return &AWSError{Status: status, Type: kind, Message: fmt.Sprintf(format, args...)}
}

// SigV4Verifier checks requests signed with AWS Signature Version 4.
type SigV4Verifier struct {
	// Keys by access key id.
	Keys map[string]AWSKey
	// Region and Service the credential scope must name.
	Region, Service string
}

// SigV4Parts is what a signature was computed over, for tests to compare.
type SigV4Parts struct {
	CanonicalRequest string
	StringToSign     string
	Signature        string
}

// sigV4Encode is AWS's URI encoding: every byte but A-Z a-z 0-9 - _ . ~ is
// written %XY (uppercase hex); '/' is kept when keepSlash.
func sigV4Encode(s string, keepSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && keepSlash:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// CanonicalQuery is the canonical query string of a raw query: names and
// values decoded, encoded again, sorted by name then value, skipping the
// parameter skip ("" for none).
func CanonicalQuery(rawQuery, skip string) string {
	var pairs []string
	for _, part := range strings.Split(rawQuery, "&") {
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		name, _ = url.PathUnescape(name)
		value, _ = url.PathUnescape(value)
		if name == skip {
			continue
		}
		pairs = append(pairs, sigV4Encode(name, false)+"="+sigV4Encode(value, false))
	}
	slices.SortFunc(pairs, func(a, b string) int {
		an, av, _ := strings.Cut(a, "=")
		bn, bv, _ := strings.Cut(b, "=")
		if c := strings.Compare(an, bn); c != 0 {
			return c
		}
		return strings.Compare(av, bv)
	})
	return strings.Join(pairs, "&")
}

// CanonicalHeaderValue trims a value and collapses its runs of spaces.
func CanonicalHeaderValue(v string) string {
	return strings.Join(strings.Fields(v), " ")
}

// CanonicalRequest builds the canonical request: method, the path encoded
// once more (escapedPath is the path as it was sent), the canonical query,
// the signed headers (lowercase names, values trimmed, several values joined
// with commas), the list of their names and the payload hash.
func CanonicalRequest(method, escapedPath, rawQuery, skipQuery string, header http.Header, host string,
	signed []string, payloadHash string) string {
	if escapedPath == "" {
		escapedPath = "/"
	}
	var b strings.Builder
	b.WriteString(method + "\n")
	b.WriteString(sigV4Encode(escapedPath, true) + "\n")
	b.WriteString(CanonicalQuery(rawQuery, skipQuery) + "\n")
	for _, name := range signed {
		var values []string
		if name == "host" {
			values = []string{host}
		} else {
			values = header.Values(name)
		}
		for i := range values {
			values[i] = CanonicalHeaderValue(values[i])
		}
		b.WriteString(name + ":" + strings.Join(values, ",") + "\n")
	}
	b.WriteString("\n" + strings.Join(signed, ";") + "\n")
	b.WriteString(payloadHash)
	return b.String()
}

// StringToSign is the string to sign of a canonical request.
func StringToSign(amzDate, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return sigV4Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// SigV4Signature signs stringToSign with the key derived from secret for the
// scope's date, region and service.
func SigV4Signature(secret, date, region, service, stringToSign string) string {
	mac := func(key []byte, data string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(data))
		return h.Sum(nil)
	}
	key := mac([]byte("AWS4"+secret), date)
	key = mac(key, region)
	key = mac(key, service)
	key = mac(key, "aws4_request")
	return hex.EncodeToString(mac(key, stringToSign))
}

// sigV4Auth is a parsed Authorization header (or the query of a pre-signed URL).
type sigV4Auth struct {
	accessKeyID, date, region, service string
	signed                             []string
	signature                          string
}

func parseCredential(credential string, a *sigV4Auth) *AWSError {
	parts := strings.Split(credential, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return awsErr(http.StatusBadRequest, "IncompleteSignatureException",
			"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term")
	}
	a.accessKeyID, a.date, a.region, a.service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

func parseAuthorization(header string) (*sigV4Auth, *AWSError) {
	rest, ok := strings.CutPrefix(header, sigV4Algorithm+" ")
	if !ok {
		return nil, awsErr(http.StatusBadRequest, "IncompleteSignatureException", "Unsupported Authorization Type")
	}
	a := &sigV4Auth{}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[name] = value
	}
	if fields["Credential"] == "" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return nil, awsErr(http.StatusBadRequest, "IncompleteSignatureException",
			"Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters")
	}
	if err := parseCredential(fields["Credential"], a); err != nil {
		return nil, err
	}
	a.signed = strings.Split(fields["SignedHeaders"], ";")
	a.signature = fields["Signature"]
	return a, nil
}

// check verifies everything but the signature itself: scope, key, time.
func (v *SigV4Verifier) check(a *sigV4Auth, amzDate string, now time.Time, maxAge time.Duration) (AWSKey, time.Time, *AWSError) {
	signedAt, err := time.Parse(sigV4TimeFormat, amzDate)
	if err != nil {
		return AWSKey{}, time.Time{}, awsErr(http.StatusBadRequest, "IncompleteSignatureException",
			"X-Amz-Date must be in the ISO8601 basic format, got %q", amzDate)
	}
	switch {
	case a.date != signedAt.Format(sigV4DateFormat):
		return AWSKey{}, time.Time{}, awsErr(http.StatusForbidden, "InvalidSignatureException",
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s'", a.date, signedAt.Format(sigV4DateFormat))
	case a.region != v.Region:
		return AWSKey{}, time.Time{}, awsErr(http.StatusForbidden, "InvalidSignatureException",
			"Credential should be scoped to a valid region, not '%s'.", a.region)
	case a.service != v.Service:
		return AWSKey{}, time.Time{}, awsErr(http.StatusForbidden, "InvalidSignatureException",
			"Credential should be scoped to correct service: '%s'.", v.Service)
	case signedAt.Before(now.Add(-maxAge)):
		return AWSKey{}, time.Time{}, awsErr(http.StatusForbidden, "InvalidSignatureException",
			"Signature expired: %s is now earlier than %s (%s - %s.)", amzDate,
			now.Add(-maxAge).UTC().Format(sigV4TimeFormat), now.UTC().Format(sigV4TimeFormat), maxAge)
	case signedAt.After(now.Add(SigV4MaxSkew)):
		return AWSKey{}, time.Time{}, awsErr(http.StatusForbidden, "InvalidSignatureException",
			"Signature not yet current: %s is still later than %s (%s + 5 min.)", amzDate,
			now.Add(SigV4MaxSkew).UTC().Format(sigV4TimeFormat), now.UTC().Format(sigV4TimeFormat))
	}
	key, ok := v.Keys[a.accessKeyID]
	if !ok {
		return AWSKey{}, time.Time{}, awsErr(http.StatusForbidden, "UnrecognizedClientException",
			"The security token included in the request is invalid.")
	}
	return key, signedAt, nil
}

// Verify checks the Authorization header of r, whose body was body, at now.
// It returns what was signed, or AWS's refusal.
func (v *SigV4Verifier) Verify(r *http.Request, body []byte, now time.Time) (*SigV4Parts, *AWSError) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return nil, awsErr(http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	a, failure := parseAuthorization(header)
	if failure != nil {
		return nil, failure
	}
	for _, required := range []string{"host", "x-amz-date"} {
		if !slices.Contains(a.signed, required) {
			return nil, awsErr(http.StatusBadRequest, "IncompleteSignatureException",
				"Signed headers must include %s", required)
		}
	}
	amzDate := r.Header.Get("X-Amz-Date")
	key, _, failure := v.check(a, amzDate, now, SigV4MaxSkew)
	if failure != nil {
		return nil, failure
	}
	token := r.Header.Get("X-Amz-Security-Token")
	if token != key.SessionToken {
		return nil, awsErr(http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	if token != "" && !slices.Contains(a.signed, "x-amz-security-token") {
		return nil, awsErr(http.StatusBadRequest, "IncompleteSignatureException", "Signed headers must include x-amz-security-token")
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if sent := r.Header.Get("X-Amz-Content-Sha256"); sent != "" {
		if sent != payloadHash && sent != UnsignedPayload {
			return nil, awsErr(http.StatusBadRequest, "XAmzContentSHA256Mismatch",
				"The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
		payloadHash = sent
	}
	parts := v.sign(a, key, amzDate, CanonicalRequest(r.Method, r.URL.EscapedPath(), r.URL.RawQuery, "", r.Header, r.Host, a.signed, payloadHash))
	if !hmac.Equal([]byte(parts.Signature), []byte(a.signature)) {
		return nil, awsErr(http.StatusForbidden, "InvalidSignatureException",
			"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return parts, nil
}

func (v *SigV4Verifier) sign(a *sigV4Auth, key AWSKey, amzDate, canonical string) *SigV4Parts {
	scope := strings.Join([]string{a.date, a.region, a.service, "aws4_request"}, "/")
	toSign := StringToSign(amzDate, scope, canonical)
	return &SigV4Parts{CanonicalRequest: canonical, StringToSign: toSign,
		Signature: SigV4Signature(key.SecretAccessKey, a.date, a.region, a.service, toSign)}
}

// VerifyPresigned checks a URL pre-signed in its query string (GET, empty
// payload), sent with header (whose signed headers must be there), at now.
// A URL is accepted for maxAge after its X-Amz-Date when maxAge is set (EKS
// accepts its tokens 15 minutes whatever X-Amz-Expires says), otherwise for
// X-Amz-Expires seconds.
func (v *SigV4Verifier) VerifyPresigned(u *url.URL, header http.Header, now time.Time, maxAge time.Duration) (*SigV4Parts, *AWSError) {
	q := u.Query()
	if q.Get("X-Amz-Algorithm") != sigV4Algorithm {
		return nil, awsErr(http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	a := &sigV4Auth{}
	if err := parseCredential(q.Get("X-Amz-Credential"), a); err != nil {
		return nil, err
	}
	a.signed = strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	a.signature = q.Get("X-Amz-Signature")
	if !slices.Contains(a.signed, "host") {
		return nil, awsErr(http.StatusBadRequest, "IncompleteSignatureException", "Signed headers must include host")
	}
	if maxAge == 0 {
		expires, err := strconv.Atoi(q.Get("X-Amz-Expires"))
		if err != nil || expires < 1 || expires > 604800 {
			return nil, awsErr(http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Amz-Expires must be between 1 and 604800 seconds")
		}
		maxAge = time.Duration(expires) * time.Second
	}
	key, _, failure := v.check(a, q.Get("X-Amz-Date"), now, maxAge)
	if failure != nil {
		return nil, failure
	}
	if q.Get("X-Amz-Security-Token") != key.SessionToken {
		return nil, awsErr(http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	empty := sha256.Sum256(nil)
	canonical := CanonicalRequest(http.MethodGet, u.EscapedPath(), u.RawQuery, "X-Amz-Signature", header, u.Host, a.signed, hex.EncodeToString(empty[:]))
	parts := v.sign(a, key, q.Get("X-Amz-Date"), canonical)
	if !hmac.Equal([]byte(parts.Signature), []byte(a.signature)) {
		return nil, awsErr(http.StatusForbidden, "SignatureDoesNotMatch",
			"The request signature we calculated does not match the signature you provided.")
	}
	return parts, nil
}
