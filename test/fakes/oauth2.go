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
	"crypto"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// OAuth2 endpoint paths of the fake.
const (
	OAuth2TokenPath  = "/oauth2/token"
	OAuth2RevokePath = "/oauth2/revoke"
)

// OAuth2Server fakes an RFC 6749 authorization server's token endpoint: the
// client_credentials, password and refresh_token grants over a form body,
// client authentication by HTTP Basic or client_id/client_secret in the body
// (not both), answers {access_token, token_type, expires_in (a number),
// refresh_token, scope} and errors {error, error_description} (section 5.2).
// Refresh tokens rotate. POST /oauth2/revoke is an RFC 7009 revocation endpoint.
type OAuth2Server struct {
	Base
	// Clients maps client ids to secrets.
	Clients map[string]string
	// Users maps usernames to passwords, for the password grant.
	Users map[string]string
	// Scopes, when set, are the only scopes a client may ask for.
	Scopes []string
	// TokenPath is the token endpoint's path; default OAuth2TokenPath.
	TokenPath string
	// AssertionKeys maps client ids to the public keys of their private_key_jwt
	// credentials (RFC 7523 section 2.2, OpenID Connect Core section 9): such
	// a client authenticates with a client_assertion signed by its key, with
	// iss and sub its id, aud Audience, exp at most an hour ahead and a jti
	// never seen before.
	AssertionKeys map[string]crypto.PublicKey
	// Audience is the URL a client assertion must name: the token endpoint's.
	Audience string

	jtiMu sync.Mutex
	jtis  map[string]bool
}

// RevokeRefreshTokens invalidates every refresh token issued so far, as an
// authorization server does when a grant is revoked: redeeming one then gets
// 400 invalid_grant (RFC 6749 section 5.2).
func (f *OAuth2Server) RevokeRefreshTokens() {
	for f.update(func(t *IssuedToken) bool { return t.RefreshToken != "" && !t.RefreshTokenUsed },
		func(t *IssuedToken) { t.RefreshTokenUsed = true }) {
	}
}

// NewOAuth2Server returns a server knowing one client. Access tokens live an
// hour (Lifetime), refresh tokens a day (RefreshLifetime).
func NewOAuth2Server(clientID, clientSecret string) *OAuth2Server {
	return &OAuth2Server{Clients: map[string]string{clientID: clientSecret}, Users: map[string]string{}}
}

func (f *OAuth2Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.answer)
}

// oauth2Failure is an RFC 6749 section 5.2 error response.
func oauth2Failure(status int, outcome Outcome, code, description string) reply {
	return reply{status: status, outcome: outcome, body: map[string]any{"error": code, "error_description": description}}
}

func (f *OAuth2Server) answer(r *http.Request) reply {
	tokenPath := f.TokenPath
	if tokenPath == "" {
		tokenPath = OAuth2TokenPath
	}
	if r.Method != http.MethodPost || (r.URL.Path != tokenPath && r.URL.Path != OAuth2RevokePath) {
		return oauth2Failure(http.StatusNotFound, OutcomeRejected, "invalid_request", "not found")
	}
	if !hasContentType(r, "application/x-www-form-urlencoded") {
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "the body must be form encoded")
	}
	if err := r.ParseForm(); err != nil {
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "malformed form body")
	}
	if failure := f.authenticateClient(r); failure != nil {
		return *failure
	}
	if r.URL.Path == OAuth2RevokePath {
		// RFC 7009 section 2.2: an unknown token is not an error.
		token := r.PostForm.Get("token")
		f.revokeWhere(func(t *IssuedToken) bool { return t.Value == token || t.RefreshToken == token })
		return reply{status: http.StatusOK, outcome: OutcomeRevoked, body: map[string]any{}}
	}
	scope := r.PostForm.Get("scope")
	if failure := f.checkScope(scope); failure != nil {
		return *failure
	}
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		// Section 4.4.3: no refresh token for client credentials.
		return f.issue(scope, false, OutcomeIssued)
	case "password":
		password, known := f.Users[r.PostForm.Get("username")]
		if !known || password != r.PostForm.Get("password") {
			return oauth2Failure(http.StatusBadRequest, OutcomeUnauthorized, "invalid_grant", "invalid username or password")
		}
		return f.issue(scope, true, OutcomeIssued)
	case "refresh_token":
		if !f.redeemRefreshToken(r.PostForm.Get("refresh_token")) {
			return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_grant", "refresh token is invalid, expired or already used")
		}
		return f.issue(scope, true, OutcomeRefreshed)
	case "":
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "grant_type is required")
	default:
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "unsupported_grant_type", "unsupported grant_type")
	}
}

// authenticateClient applies section 2.3.1: Basic or body credentials, never
// both; a failed Basic attempt answers 401 with WWW-Authenticate.
func (f *OAuth2Server) authenticateClient(r *http.Request) *reply {
	if r.PostForm.Has("client_assertion") || r.PostForm.Has("client_assertion_type") {
		return f.authenticateAssertion(r)
	}
	id, secret, basic := r.BasicAuth()
	bodyID := r.PostForm.Get("client_id")
	if basic && (bodyID != "" || r.PostForm.Has("client_secret")) {
		failure := oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "use one client authentication method")
		return &failure
	}
	if !basic {
		id, secret = bodyID, r.PostForm.Get("client_secret")
	}
	if want, known := f.Clients[id]; known && id != "" && want == secret {
		return nil
	}
	failure := oauth2Failure(http.StatusUnauthorized, OutcomeUnauthorized, "invalid_client", "client authentication failed")
	if basic {
		failure.header = http.Header{"Www-Authenticate": {`Basic realm="fake"`}}
	}
	return &failure
}

func (f *OAuth2Server) checkScope(scope string) *reply {
	if f.Scopes == nil || scope == "" {
		return nil
	}
	for _, s := range strings.Fields(scope) {
		if !slices.Contains(f.Scopes, s) {
			failure := oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_scope", "scope "+s+" is not allowed")
			return &failure
		}
	}
	return nil
}

func (f *OAuth2Server) issue(scope string, withRefresh bool, outcome Outcome) reply {
	now := f.now()
	lifetime := f.lifetime(time.Hour)
	token := IssuedToken{
		Value:     randomToken("at_", 24),
		IssuedAt:  now,
		ExpiresAt: now.Add(lifetime),
		Refreshed: outcome == OutcomeRefreshed,
		Request:   map[string]any{"scope": scope},
	}
	body := map[string]any{
		"access_token": token.Value,
		"token_type":   "Bearer",
		"expires_in":   int64(lifetime / time.Second),
	}
	if scope != "" {
		body["scope"] = scope
	}
	if withRefresh {
		refreshLifetime := f.refreshLifetime()
		token.RefreshToken = randomToken("rt_", 24)
		token.RefreshTokenExpiresAt = now.Add(refreshLifetime)
		body["refresh_token"] = token.RefreshToken
	}
	f.record(token)
	return reply{status: http.StatusOK, outcome: outcome, body: body}
}

// authenticateAssertion checks a private_key_jwt client assertion, the only
// client authentication of its request.
func (f *OAuth2Server) authenticateAssertion(r *http.Request) *reply {
	fail := func(description string) *reply {
		failure := oauth2Failure(http.StatusUnauthorized, OutcomeUnauthorized, "invalid_client", description)
		return &failure
	}
	if _, _, basic := r.BasicAuth(); basic || r.PostForm.Has("client_secret") {
		failure := oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "use one client authentication method")
		return &failure
	}
	if r.PostForm.Get("client_assertion_type") != clientAssertionType {
		return fail("client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	}
	raw := r.PostForm.Get("client_assertion")
	f.rememberCredential(raw)
	claims := jwt.MapClaims{}
	var client string
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) {
			client, _ = claims["iss"].(string)
			key, ok := f.AssertionKeys[client]
			if !ok {
				return nil, jwt.ErrTokenUnverifiable
			}
			return key, nil
		})
	if err != nil {
		return fail("The client_assertion signature is invalid.")
	}
	if sub, _ := claims.GetSubject(); sub != client {
		return fail("The client_assertion token sub claim must match the iss claim.")
	}
	if id := r.PostForm.Get("client_id"); id != "" && id != client {
		return fail("client_id does not match the client_assertion's issuer.")
	}
	if aud, _ := claims.GetAudience(); len(aud) != 1 || aud[0] != f.Audience {
		return fail("The audience claim for client_assertion must be the endpoint invoked for the request.")
	}
	now := f.now()
	exp, errExp := claims.GetExpirationTime()
	if errExp != nil || exp == nil || !exp.After(now) || exp.Sub(now) > time.Hour {
		return fail("The client_assertion token has an expiration too far into the future, or has expired.")
	}
	jti, _ := claims["jti"].(string)
	f.jtiMu.Lock()
	defer f.jtiMu.Unlock()
	if f.jtis == nil {
		f.jtis = map[string]bool{}
	}
	if jti == "" || f.jtis[jti] {
		return fail("The client_assertion token has a missing or already used jti claim.")
	}
	f.jtis[jti] = true
	return nil
}
