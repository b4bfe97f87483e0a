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
	"crypto/rsa"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Google's OAuth 2.0 token endpoint: its path, and the audience an assertion
// must name (the endpoint's real URL, whatever host the fake is reached at).
const (
	GoogleTokenPath     = "/token"
	GoogleTokenAudience = "https://oauth2.googleapis.com/token"
	jwtBearerGrant      = "urn:ietf:params:oauth:grant-type:jwt-bearer"
)

// GoogleServiceAccounts fakes Google's token endpoint for service accounts
// (the RFC 7523 jwt-bearer grant), as "Using OAuth 2.0 for Server to Server
// Applications" describes it: a form body with grant_type
// urn:ietf:params:oauth:grant-type:jwt-bearer and an assertion signed RS256 by
// the service account's key, with iss the account's email, scope
// (space-delimited) and aud exactly https://oauth2.googleapis.com/token, iat
// and exp at most an hour apart; the answer is {access_token, expires_in,
// token_type}; errors are {error, error_description} with 400.
type GoogleServiceAccounts struct {
	Base
	// Accounts maps service account emails to their public keys.
	Accounts map[string]*rsa.PublicKey
	// KeyIDs, when set, maps an email to the id of its key, which the kid
	// header must name.
	KeyIDs map[string]string
}

// NewGoogleServiceAccounts returns a fake knowing one service account.
func NewGoogleServiceAccounts(email, keyID string, key *rsa.PublicKey) *GoogleServiceAccounts {
	return &GoogleServiceAccounts{Accounts: map[string]*rsa.PublicKey{email: key}, KeyIDs: map[string]string{email: keyID}}
}

func (f *GoogleServiceAccounts) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.answer)
}

func (f *GoogleServiceAccounts) answer(r *http.Request) reply {
	if r.Method != http.MethodPost || r.URL.Path != GoogleTokenPath {
		return oauth2Failure(http.StatusNotFound, OutcomeRejected, "invalid_request", "Not Found")
	}
	if !hasContentType(r, "application/x-www-form-urlencoded") {
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "Invalid Content-Type")
	}
	if err := r.ParseForm(); err != nil {
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "Malformed body")
	}
	if g := r.PostForm.Get("grant_type"); g != jwtBearerGrant {
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "unsupported_grant_type", "Invalid grant_type: "+g)
	}
	now := f.now()
	f.rememberCredential(r.PostForm.Get("assertion"))
	claims := jwt.MapClaims{}
	var email string
	token, err := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(r.PostForm.Get("assertion"), claims, func(t *jwt.Token) (any, error) {
			email, _ = claims["iss"].(string)
			key, ok := f.Accounts[email]
			if !ok {
				return nil, jwt.ErrTokenUnverifiable
			}
			if want := f.KeyIDs[email]; want != "" && t.Header["kid"] != want {
				return nil, jwt.ErrTokenUnverifiable
			}
			return key, nil
		})
	if err != nil || !token.Valid {
		return oauth2Failure(http.StatusBadRequest, OutcomeUnauthorized, "invalid_grant", "Invalid JWT Signature.")
	}
	if aud, _ := claims.GetAudience(); len(aud) != 1 || aud[0] != GoogleTokenAudience {
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
	}
	iat, err1 := claims.GetIssuedAt()
	exp, err2 := claims.GetExpirationTime()
	if err1 != nil || err2 != nil || iat == nil || exp == nil || iat.After(now.Add(time.Minute)) || !exp.After(now) || exp.Sub(iat.Time) > time.Hour {
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
	}
	scope, _ := claims["scope"].(string)
	if strings.TrimSpace(scope) == "" {
		return oauth2Failure(http.StatusBadRequest, OutcomeRejected, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
	}
	lifetime := f.lifetime(time.Hour)
	issued := IssuedToken{Value: randomToken("ya29.", 40), IssuedAt: now, ExpiresAt: now.Add(lifetime),
		Request: map[string]any{"scope": scope, "iss": email}}
	f.record(issued)
	return reply{status: http.StatusOK, outcome: OutcomeIssued, body: map[string]any{
		"access_token": issued.Value, "expires_in": int64(lifetime / time.Second), "token_type": "Bearer",
	}}
}
