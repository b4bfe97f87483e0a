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
	"net/http"
	"slices"
	"sync"
	"time"
)

// Token exchange (RFC 8693) names.
const (
	TokenExchangePath  = "/oauth2/token"
	tokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeJWT       = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
)

// TokenExchange fakes an RFC 8693 security token service that trusts a
// Kubernetes cluster's ServiceAccount tokens: a form body with grant_type
// urn:ietf:params:oauth:grant-type:token-exchange, subject_token and
// subject_token_type urn:ietf:params:oauth:token-type:jwt (section 2.1); the
// subject token is verified by Verify (for the tests, a TokenReview against
// the real apiserver with the STS's audience) and must name one of Subjects.
// The answer is {access_token, issued_token_type, token_type, expires_in}
// (section 2.2.1); errors are {error, error_description} with 400 (2.2.2).
type TokenExchange struct {
	Base
	// Verify checks a subject token and returns the subject it authenticates.
	Verify func(token string) (subject string, ok bool)
	// Subjects may exchange their tokens ("system:serviceaccount:<ns>:<name>").
	Subjects []string

	mu       sync.Mutex
	received []string
}

func (f *TokenExchange) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.answer)
}

// SubjectTokens returns the subject tokens the fake received, for leak checks.
func (f *TokenExchange) SubjectTokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.received)
}

func (f *TokenExchange) answer(r *http.Request) reply {
	if r.Method != http.MethodPost || r.URL.Path != TokenExchangePath {
		return oauth2Failure(http.StatusNotFound, OutcomeRejected, "invalid_request", "not found")
	}
	if !hasContentType(r, "application/x-www-form-urlencoded") || r.ParseForm() != nil {
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "the body must be form encoded")
	}
	form := r.PostForm
	if form.Get("grant_type") != tokenExchangeGrant {
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "unsupported_grant_type", "unsupported grant_type")
	}
	token := form.Get("subject_token")
	if token == "" || form.Get("subject_token_type") != tokenTypeJWT {
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "subject_token and subject_token_type (jwt) are required")
	}
	f.mu.Lock()
	f.received = append(f.received, token)
	f.mu.Unlock()
	f.rememberCredential(token)
	subject, ok := f.Verify(token)
	if !ok || !slices.Contains(f.Subjects, subject) {
		return oauth2Failure(http.StatusBadRequest, OutcomeUnauthorized, "invalid_grant", "the subject token is not trusted")
	}
	now := f.now()
	lifetime := f.lifetime(time.Hour)
	issued := IssuedToken{Value: randomToken("xt_", 24), IssuedAt: now, ExpiresAt: now.Add(lifetime),
		Request: map[string]any{"subject": subject, "scope": form.Get("scope")}}
	f.record(issued)
	return reply{status: http.StatusOK, outcome: OutcomeIssued, body: map[string]any{
		"access_token": issued.Value, "issued_token_type": tokenTypeAccess, "token_type": "Bearer",
		"expires_in": int64(lifetime / time.Second),
	}}
}
