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
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AWS STS constants.
const (
	// STSVersion is the only API version STS answers.
	STSVersion = "2011-06-15"
	// STSNamespace is the XML namespace of STS answers and errors.
	STSNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
	// STSAudience is the audience an OIDC identity provider's tokens carry for
	// STS (the IAM OIDC provider's client id, EKS's default).
	STSAudience = "sts.amazonaws.com"
)

var (
	stsRoleARN     = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
	stsSessionName = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	stsRoleParts   = regexp.MustCompile(`^arn:(aws[a-z-]*):iam::([0-9]{12}):role/(?:.*/)?([^/]+)$`)
)

// AWSSTS fakes AWS Security Token Service's AssumeRoleWithWebIdentity, as the
// Query API documents it: parameters in the query string (GET) or a
// form-encoded body (POST), unsigned: Action=AssumeRoleWithWebIdentity,
// Version=2011-06-15, RoleArn (arn:aws:iam::<12 digits>:role/<name>, one of
// Roles), RoleSessionName (2 to 64 of [\w+=,.@-]), WebIdentityToken (a JWT,
// 4 to 20000 characters, whose aud holds Audience and whose exp has not
// passed; Verify, when set, also checks its signature) and the optional
// DurationSeconds (900 to 43200, default 3600). The answer is the documented
// XML, <AssumeRoleWithWebIdentityResponse xmlns=...> with Credentials
// (AccessKeyId, SecretAccessKey, SessionToken, Expiration in ISO 8601 UTC);
// errors are the XML envelope <ErrorResponse><Error><Type>Sender</Type>
// <Code>..</Code><Message>..</Message></Error><RequestId>..</RequestId>
// </ErrorResponse> with 400 (MissingParameter, ValidationError,
// InvalidIdentityToken, ExpiredToken, InvalidAction) or 403
// (AccessDenied, for a role not in Roles).
//
// Issued records the session token as the token, with the secret access
// key among its Secrets and the access key id in Request.
type AWSSTS struct {
	Base
	// Audience the web identity token must carry; STSAudience when empty.
	Audience string
	// Roles may be assumed.
	Roles []string
	// Verify, when set, checks the web identity token's signature (for the
	// envtest suite, a TokenReview against the real apiserver).
	Verify func(token string) bool

	mu    sync.Mutex
	calls int
}

// AssumeRoleCalls is how many calls reached AssumeRoleWithWebIdentity,
// refused ones included.
func (f *AWSSTS) AssumeRoleCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *AWSSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.answer)
}

func (f *AWSSTS) answer(r *http.Request) reply {
	if r.Method == http.MethodPost && !hasContentType(r, "application/x-www-form-urlencoded") {
		return stsFailure(http.StatusBadRequest, OutcomeRejected, "InvalidParameterValue", "The request body must be form-encoded.")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return stsFailure(http.StatusMethodNotAllowed, OutcomeRejected, "InvalidAction", "Method not allowed.")
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return stsFailure(http.StatusBadRequest, OutcomeRejected, "MalformedInput", "The request is malformed.")
	}
	p := r.Form.Get
	switch {
	case p("Action") == "":
		return stsFailure(http.StatusBadRequest, OutcomeRejected, "MissingAction", "Missing Action")
	case p("Action") != "AssumeRoleWithWebIdentity":
		return stsFailure(http.StatusBadRequest, OutcomeRejected, "InvalidAction", "Could not find operation "+p("Action")+" for version "+p("Version"))
	case p("Version") != STSVersion:
		return stsFailure(http.StatusBadRequest, OutcomeRejected, "InvalidAction", "Could not find operation AssumeRoleWithWebIdentity for version "+p("Version"))
	}
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	for _, name := range []string{"RoleArn", "RoleSessionName", "WebIdentityToken"} {
		if p(name) == "" {
			return stsFailure(http.StatusBadRequest, OutcomeRejected, "MissingParameter", "The request must contain the parameter "+name)
		}
	}
	token := p("WebIdentityToken")
	f.rememberCredential(token)
	switch {
	case !stsRoleARN.MatchString(p("RoleArn")):
		return stsValidation("roleArn", "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u007E\\u0085\\u00A0-\\uD7FF\\uE000-\\uFFFD\\u10000-\\u10FFFF]+")
	case !stsSessionName.MatchString(p("RoleSessionName")):
		return stsValidation("roleSessionName", "Member must satisfy regular expression pattern: [\\w+=,.@-]*")
	case len(token) < 4 || len(token) > 20000:
		return stsValidation("webIdentityToken", "Member must have length between 4 and 20000")
	}
	duration := 3600
	if raw := p("DurationSeconds"); raw != "" {
		n, err := strconv.Atoi(raw)
		switch {
		case err != nil:
			return stsFailure(http.StatusBadRequest, OutcomeRejected, "MalformedInput", "DurationSeconds is not an integer.")
		case n < 900:
			return stsValidation("durationSeconds", "Member must have value greater than or equal to 900")
		case n > 43200:
			return stsValidation("durationSeconds", "Member must have value less than or equal to 43200")
		}
		duration = n
	}
	now := f.now()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil || (f.Verify != nil && !f.Verify(token)) {
		return stsFailure(http.StatusBadRequest, OutcomeUnauthorized, "InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements")
	}
	audience := f.Audience
	if audience == "" {
		audience = STSAudience
	}
	if aud, err := claims.GetAudience(); err != nil || !slices.Contains(aud, audience) {
		return stsFailure(http.StatusBadRequest, OutcomeUnauthorized, "InvalidIdentityToken", "Incorrect token audience")
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil || !now.Before(exp.Time) {
		return stsFailure(http.StatusBadRequest, OutcomeUnauthorized, "ExpiredToken", "Token expired: current date/time must be before the expiration date/time")
	}
	if !slices.Contains(f.Roles, p("RoleArn")) {
		return stsFailure(http.StatusForbidden, OutcomeUnauthorized, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
	}
	subject, _ := claims.GetSubject()
	issuer, _ := claims.GetIssuer()
	lifetime := time.Duration(duration) * time.Second
	if l := f.lifetime(0); l > 0 {
		lifetime = min(lifetime, l) // a role's maximum session duration
	}
	keyID := "ASIA" + stsRandomUpper(16)
	secret := stsRandomBase62(40)
	issued := IssuedToken{Value: stsRandomBase62(356), IssuedAt: now, ExpiresAt: now.Add(lifetime).Truncate(time.Second),
		Secrets: []string{secret},
		Request: map[string]any{"roleArn": p("RoleArn"), "roleSessionName": p("RoleSessionName"), "subject": subject, "accessKeyId": keyID}}
	f.record(issued)

	type credentials struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string
		SessionToken    string
		Expiration      string
	}
	type result struct {
		SubjectFromWebIdentityToken string
		Audience                    string
		AssumedRoleUser             struct{ Arn, AssumedRoleId string }
		Credentials                 credentials
		Provider                    string
	}
	type response struct {
		XMLName          xml.Name `xml:"AssumeRoleWithWebIdentityResponse"`
		Xmlns            string   `xml:"xmlns,attr"`
		Result           result   `xml:"AssumeRoleWithWebIdentityResult"`
		ResponseMetadata struct{ RequestId string }
	}
	answer := response{Xmlns: STSNamespace, Result: result{
		SubjectFromWebIdentityToken: subject, Audience: audience, Provider: issuer,
		Credentials: credentials{AccessKeyID: keyID, SecretAccessKey: secret, SessionToken: issued.Value,
			Expiration: issued.ExpiresAt.UTC().Format(time.RFC3339)},
	}}
	answer.Result.AssumedRoleUser.Arn = stsAssumedRoleARN(p("RoleArn"), p("RoleSessionName"))
	answer.Result.AssumedRoleUser.AssumedRoleId = "AROA" + stsRandomUpper(17) + ":" + p("RoleSessionName")
	answer.ResponseMetadata.RequestId = stsRequestID()
	return stsXML(http.StatusOK, OutcomeIssued, answer)
}

// stsAssumedRoleARN is the session's ARN: arn:aws:sts::<account>:assumed-role/<role>/<session>.
func stsAssumedRoleARN(roleARN, session string) string {
	var partition, account, role string
	m := stsRoleParts.FindStringSubmatch(roleARN)
	if m != nil {
		partition, account, role = m[1], m[2], m[3]
	}
	return fmt.Sprintf("arn:%s:sts::%s:assumed-role/%s/%s", partition, account, role, session)
}

// stsValidation is STS's answer to a parameter that breaks its constraint.
func stsValidation(member, constraint string) reply {
	return stsFailure(http.StatusBadRequest, OutcomeRejected, "ValidationError",
		"1 validation error detected: Value at '"+member+"' failed to satisfy constraint: "+constraint)
}

// stsFailure is STS's XML error envelope.
func stsFailure(status int, outcome Outcome, code, message string) reply {
	type envelope struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		Error     struct{ Type, Code, Message string }
		RequestId string
	}
	e := envelope{Xmlns: STSNamespace, RequestId: stsRequestID()}
	e.Error.Type, e.Error.Code, e.Error.Message = "Sender", code, message
	return stsXML(status, outcome, e)
}

func stsXML(status int, outcome Outcome, v any) reply {
	body, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return reply{status: status, outcome: outcome, contentType: "text/xml", raw: append([]byte(xml.Header), body...)}
}

func stsRequestID() string {
	id := randomToken("", 16)
	return id[:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:]
}

func stsRandomUpper(n int) string {
	return stsRandomFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", n)
}

func stsRandomBase62(n int) string {
	return stsRandomFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", n)
}

func stsRandomFrom(alphabet string, n int) string {
	out := make([]byte, n)
	for i := range out {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		out[i] = alphabet[k.Int64()]
	}
	return string(out)
}
