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
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// AuthenticationServicePath is the token endpoint of the authentication
// service (seed 002).
const AuthenticationServicePath = "/token"

// authenticationFields are the required body fields, in the order they are checked.
var authenticationFields = []string{"client_txn_id", "client_app_id", "username", "password"}

// AuthenticationService fakes the authentication service's Token API (seed
// 002): POST /token with a JSON body {client_txn_id (a UUID, fresh per call),
// client_app_id, username, password} and an optional header CA_com_apiVersion:
// 1.0; it answers {token: <JWT>} whose only expiry is its exp claim. Errors are
// 400 {error_code, error_description}, such as missing_input "Value for element
// {client_txn_id} is required"; the fake also answers 400 for a repeated
// client_txn_id and 401 invalid_credentials for a wrong username or password.
type AuthenticationService struct {
	Base
	// Username and Password of the enterprise's administrator account.
	Username string
	Password string
	// SigningKey signs the HS256 JWTs; tests may verify them with it.
	SigningKey []byte

	seenTxnIDs map[string]bool
}

// NewAuthenticationService returns the fake accepting username and password.
// Lifetime defaults to 60 minutes ("an expiry time in minutes").
func NewAuthenticationService(username, password string) *AuthenticationService {
	return &AuthenticationService{
		Username:   username,
		Password:   password,
		SigningKey: []byte("fake-authentication-service-signing-key"),
		seenTxnIDs: map[string]bool{},
	}
}

func (f *AuthenticationService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.answer)
}

func authenticationFailure(status int, outcome Outcome, code, description string) reply {
	return reply{status: status, outcome: outcome, body: map[string]any{"error_code": code, "error_description": description}}
}

func (f *AuthenticationService) answer(r *http.Request) reply {
	if r.Method != http.MethodPost || r.URL.Path != AuthenticationServicePath {
		return authenticationFailure(http.StatusNotFound, OutcomeRejected, "not_found", "Resource not found")
	}
	if version := r.Header.Get("CA_com_apiVersion"); version != "" && version != "1.0" {
		return authenticationFailure(http.StatusBadRequest, OutcomeRejected, "invalid_input", "Unsupported API version "+version)
	}
	body, err := decodeJSONBody(r)
	if err != nil {
		return authenticationFailure(http.StatusBadRequest, OutcomeRejected, "invalid_input", "Request body is not valid JSON")
	}
	values := map[string]string{}
	for _, field := range authenticationFields {
		value, _ := body[field].(string)
		if value == "" {
			return authenticationFailure(http.StatusBadRequest, OutcomeRejected, "missing_input",
				fmt.Sprintf("Value for element {%s} is required", field))
		}
		values[field] = value
	}
	if _, err := uuid.Parse(values["client_txn_id"]); err != nil {
		return authenticationFailure(http.StatusBadRequest, OutcomeRejected, "invalid_input", "Value for element {client_txn_id} must be a UUID")
	}
	if !f.firstUse(values["client_txn_id"]) {
		return authenticationFailure(http.StatusBadRequest, OutcomeRejected, "invalid_input",
			"Value for element {client_txn_id} has already been used")
	}
	if values["username"] != f.Username || values["password"] != f.Password {
		return authenticationFailure(http.StatusUnauthorized, OutcomeUnauthorized, "invalid_credentials", "Invalid username or password")
	}
	now := f.now()
	expiresAt := now.Add(f.lifetime(time.Hour))
	id := uuid.NewString()
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub":           values["username"],
		"client_app_id": values["client_app_id"],
		"jti":           id,
		"iat":           now.Unix(),
		"exp":           expiresAt.Unix(),
	}).SignedString(f.SigningKey)
	if err != nil {
		return authenticationFailure(http.StatusInternalServerError, OutcomeRejected, "internal_error", "signing failed")
	}
	f.record(IssuedToken{
		Value: signed, ID: id, IssuedAt: now, ExpiresAt: expiresAt,
		Request: map[string]any{"client_txn_id": values["client_txn_id"], "client_app_id": values["client_app_id"]},
	})
	return reply{status: http.StatusOK, outcome: OutcomeIssued, body: map[string]any{"token": signed}}
}

// firstUse records a client_txn_id and reports whether it is new.
func (f *AuthenticationService) firstUse(txnID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seenTxnIDs == nil {
		f.seenTxnIDs = map[string]bool{}
	}
	if f.seenTxnIDs[txnID] {
		return false
	}
	f.seenTxnIDs[txnID] = true
	return true
}
