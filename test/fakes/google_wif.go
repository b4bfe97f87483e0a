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
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Google workload identity federation paths.
const (
	GoogleSTSPath = "/v1/token"
	// GoogleCloudPlatformScope is the scope the STS token must carry.
	GoogleCloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"
)

var generateAccessTokenPath = regexp.MustCompile(`^/v1/projects/-/serviceAccounts/([^/:]+):generateAccessToken$`)

// GoogleWorkloadIdentity fakes Google Cloud's Security Token Service and IAM
// Credentials API together, as workload identity federation with service
// account impersonation uses them.
//
// POST /v1/token is an RFC 8693 token exchange: grant_type
// urn:ietf:params:oauth:grant-type:token-exchange, requested_token_type
// urn:ietf:params:oauth:token-type:access_token, subject_token_type
// urn:ietf:params:oauth:token-type:jwt, audience the pool provider's resource
// name (//iam.googleapis.com/projects/<n>/locations/global/workloadIdentityPools/<pool>/providers/<provider>),
// scope including cloud-platform, in a form or JSON body. The subject token
// is verified by Verify (for the tests, a TokenReview with SubjectAudience
// against the real apiserver) and must name one of Subjects. The answer is
// {access_token, issued_token_type, token_type, expires_in}, one hour by
// default (Lifetime); errors are {error, error_description} with 400.
//
// POST /v1/projects/-/serviceAccounts/<email>:generateAccessToken takes, as
// bearer, an unexpired token the STS issued, a JSON body {scope: [...],
// lifetime: "<n>s"} (at most 3600s), and answers {accessToken, expireTime}
// (RFC 3339). Errors are Google's {error: {code, message, status}}: 401
// UNAUTHENTICATED, 403 PERMISSION_DENIED for a service account the federated
// principal may not impersonate (ServiceAccounts), 400 INVALID_ARGUMENT.
type GoogleWorkloadIdentity struct {
	Base
	// Audience is the pool provider's resource name the STS expects.
	Audience string
	// Verify checks a subject token and returns the subject it authenticates.
	Verify func(token string) (subject string, ok bool)
	// Subjects may exchange their tokens ("system:serviceaccount:<ns>:<name>").
	Subjects []string
	// ServiceAccounts are the emails federated principals may impersonate.
	ServiceAccounts []string

	mu       sync.Mutex
	sts      []IssuedToken
	stsCalls int
	genCalls int
}

func (f *GoogleWorkloadIdentity) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.answer)
}

// STSCalls is how many calls the token exchange endpoint received.
func (f *GoogleWorkloadIdentity) STSCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stsCalls
}

// GenerateCalls is how many calls generateAccessToken received.
func (f *GoogleWorkloadIdentity) GenerateCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.genCalls
}

// STSTokens are the federated tokens the STS issued; Issued lists the
// service account tokens generateAccessToken issued.
func (f *GoogleWorkloadIdentity) STSTokens() []IssuedToken {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sts)
}

func (f *GoogleWorkloadIdentity) answer(r *http.Request) reply {
	if r.Method == http.MethodPost && r.URL.Path == GoogleSTSPath {
		f.mu.Lock()
		f.stsCalls++
		f.mu.Unlock()
		return f.exchange(r)
	}
	if m := generateAccessTokenPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodPost {
		f.mu.Lock()
		f.genCalls++
		f.mu.Unlock()
		return f.generate(r, m[1])
	}
	return googleFailure(http.StatusNotFound, OutcomeRejected, "NOT_FOUND", "Requested entity was not found.")
}

// exchange is the STS's token exchange.
func (f *GoogleWorkloadIdentity) exchange(r *http.Request) reply {
	fields := map[string]string{}
	switch {
	case hasContentType(r, "application/x-www-form-urlencoded"):
		if r.ParseForm() != nil {
			return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "Malformed body.")
		}
		for k := range r.PostForm {
			fields[k] = r.PostForm.Get(k)
		}
	case hasContentType(r, "application/json"):
		body, err := decodeJSONBody(r)
		if err != nil {
			return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "Malformed body.")
		}
		for k, v := range body {
			if s, ok := v.(string); ok {
				fields[k] = s
			}
		}
	default:
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "Invalid Content-Type.")
	}
	switch {
	case fields["grant_type"] != tokenExchangeGrant:
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "unsupported_grant_type",
			"Invalid value for \"grant_type\".")
	case fields["requested_token_type"] != tokenTypeAccess:
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_request",
			"Invalid value for \"requested_token_type\".")
	case fields["subject_token_type"] != tokenTypeJWT:
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_request",
			"Invalid value for \"subject_token_type\".")
	case fields["audience"] != f.Audience:
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_target",
			"The target service indicated by the \"audience\" parameters is invalid.")
	case !slices.Contains(strings.Fields(fields["scope"]), GoogleCloudPlatformScope):
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_scope", "The scope must include cloud-platform.")
	case fields["subject_token"] == "":
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "subject_token is required.")
	}
	token := fields["subject_token"]
	f.rememberCredential(token)
	subject, ok := f.Verify(token)
	if !ok || !slices.Contains(f.Subjects, subject) {
		return oauth2Failure(http.StatusBadRequest, OutcomeUnauthorized, "invalid_grant",
			"The given credential is rejected by the attribute condition.")
	}
	now := f.now()
	lifetime := f.lifetime(time.Hour)
	issued := IssuedToken{Value: randomToken("ya29.sts_", 24), IssuedAt: now, ExpiresAt: now.Add(lifetime),
		Request: map[string]any{"subject": subject, "scope": fields["scope"]}}
	f.mu.Lock()
	f.sts = append(f.sts, issued)
	f.mu.Unlock()
	return reply{status: http.StatusOK, outcome: OutcomeIssued, body: map[string]any{
		"access_token": issued.Value, "issued_token_type": tokenTypeAccess, "token_type": "Bearer",
		"expires_in": int64(lifetime / time.Second),
	}}
}

// generate is generateAccessToken for the service account email.
func (f *GoogleWorkloadIdentity) generate(r *http.Request, email string) reply {
	bearer, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	now := f.now()
	f.mu.Lock()
	valid := found && slices.ContainsFunc(f.sts, func(t IssuedToken) bool { return t.Value == bearer && now.Before(t.ExpiresAt) })
	f.mu.Unlock()
	if !valid {
		return googleFailure(http.StatusUnauthorized, OutcomeUnauthorized, "UNAUTHENTICATED",
			"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
	}
	if !slices.Contains(f.ServiceAccounts, email) {
		return googleFailure(http.StatusForbidden, OutcomeUnauthorized, "PERMISSION_DENIED",
			"Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).")
	}
	if !hasContentType(r, "application/json") {
		return googleFailure(http.StatusBadRequest, OutcomeRejected, "INVALID_ARGUMENT", "Invalid JSON payload received.")
	}
	var body struct {
		Scope    []string `json:"scope"`
		Lifetime string   `json:"lifetime"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10)).Decode(&body); err != nil {
		return googleFailure(http.StatusBadRequest, OutcomeRejected, "INVALID_ARGUMENT", "Invalid JSON payload received.")
	}
	if len(body.Scope) == 0 {
		return googleFailure(http.StatusBadRequest, OutcomeRejected, "INVALID_ARGUMENT", "Scope required.")
	}
	lifetime := time.Hour
	if body.Lifetime != "" {
		d, err := time.ParseDuration(body.Lifetime)
		if err != nil || !strings.HasSuffix(body.Lifetime, "s") || d <= 0 || d > time.Hour {
			return googleFailure(http.StatusBadRequest, OutcomeRejected, "INVALID_ARGUMENT",
				"The lifetime must be a duration in seconds of at most 3600s.")
		}
		lifetime = d
	}
	issued := IssuedToken{Value: randomToken("ya29.sa_", 24), IssuedAt: now, ExpiresAt: now.Add(lifetime),
		Request: map[string]any{"serviceAccount": email, "scope": body.Scope}}
	f.record(issued)
	return reply{status: http.StatusOK, outcome: OutcomeIssued, body: map[string]any{
		"accessToken": issued.Value, "expireTime": issued.ExpiresAt.UTC().Format(time.RFC3339),
	}}
}

// googleFailure is a Google API error: {error: {code, message, status}}.
func googleFailure(status int, outcome Outcome, code, message string) reply {
	return reply{status: status, outcome: outcome, body: map[string]any{
		"error": map[string]any{"code": status, "message": message, "status": code}}}
}
