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
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// TransactionAPIPath is the token endpoint of the transaction-data API (seed 000).
const TransactionAPIPath = "/auth/token"

// errNotObject is a JSON body that is not an object.
var errNotObject = errors.New("body is not a JSON object")

// TransactionAPI fakes the transaction-data API's "Request a new access token"
// (seed 000): POST /auth/token with "Authorization: Bearer <refresh/auth
// token>" and a JSON body {expiry_seconds: 300..86400, scopes:
// {organization_id, scopes: [...]}}; it answers {token, expiry (unix seconds),
// organization_id, organization_name, scopes}. Errors are 401 and 400 with
// {"message": ...}; the page documents no error body, so the fake picks one.
// An issued access token cannot be used to request another, as the page says.
type TransactionAPI struct {
	Base
	// AuthToken is the refresh/auth token the provider handed out.
	AuthToken string
	// OrganizationID is the only organization the auth token may ask for.
	OrganizationID string
	// OrganizationName is returned with every token.
	OrganizationName string
}

// NewTransactionAPI returns the fake with the given auth token and the
// organization of the documentation's example. Lifetime, when set, overrides the
// requested expiry_seconds so that tests can use short-lived tokens.
func NewTransactionAPI(authToken string) *TransactionAPI {
	return &TransactionAPI{
		AuthToken:        authToken,
		OrganizationID:   "org_9f8b7c6d5e4a3b2c1d0e",
		OrganizationName: "Cable Financial Services",
	}
}

func (f *TransactionAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.answer)
}

func (f *TransactionAPI) answer(r *http.Request) reply {
	fail := func(status int, outcome Outcome, message string) reply {
		return reply{status: status, outcome: outcome, body: map[string]any{"message": message}}
	}
	if r.Method != http.MethodPost || r.URL.Path != TransactionAPIPath {
		return fail(http.StatusNotFound, OutcomeRejected, "not found")
	}
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || bearer == "":
		return fail(http.StatusUnauthorized, OutcomeUnauthorized, "missing bearer token")
	case f.isAccessToken(bearer):
		return fail(http.StatusUnauthorized, OutcomeUnauthorized, "an access token cannot be used to request a new token; use your refresh token")
	case bearer != f.AuthToken:
		return fail(http.StatusUnauthorized, OutcomeUnauthorized, "invalid token")
	}
	if !hasContentType(r, "application/json") {
		return fail(http.StatusBadRequest, OutcomeRejected, "Content-Type must be application/json")
	}
	body, err := decodeJSONBody(r)
	if err != nil {
		return fail(http.StatusBadRequest, OutcomeRejected, "malformed JSON body")
	}
	seconds, err := expirySeconds(body["expiry_seconds"])
	if err != nil {
		return fail(http.StatusBadRequest, OutcomeRejected, err.Error())
	}
	organization, scopes, err := transactionScopes(body["scopes"])
	if err != nil {
		return fail(http.StatusBadRequest, OutcomeRejected, err.Error())
	}
	if organization != f.OrganizationID {
		return fail(http.StatusUnauthorized, OutcomeUnauthorized, "the token may not be used for organization "+organization)
	}
	lifetime := f.lifetime(time.Duration(seconds) * time.Second)
	now := f.now()
	token := IssuedToken{
		Value:     randomToken("cable_", 24),
		IssuedAt:  now,
		ExpiresAt: now.Add(lifetime),
		Request:   map[string]any{"expiry_seconds": seconds, "organization_id": organization, "scopes": scopes},
	}
	f.record(token)
	return reply{status: http.StatusOK, outcome: OutcomeIssued, body: map[string]any{
		"token":             token.Value,
		"expiry":            token.ExpiresAt.Unix(),
		"organization_id":   organization,
		"organization_name": f.OrganizationName,
		"scopes":            map[string]any{"organization_id": organization, "scopes": scopes},
	}}
}

func (f *TransactionAPI) isAccessToken(value string) bool {
	_, found := f.token(func(t *IssuedToken) bool { return t.Value == value })
	return found
}

// expirySeconds checks expiry_seconds: a required whole number in 300..86400.
func expirySeconds(value any) (int64, error) {
	number, ok := value.(json.Number)
	if !ok {
		return 0, errors.New("expiry_seconds is required and must be a number")
	}
	seconds, err := strconv.ParseInt(number.String(), 10, 64)
	if err != nil {
		return 0, errors.New("expiry_seconds must be a whole number")
	}
	if seconds < 300 || seconds > 86400 {
		return 0, errors.New("expiry_seconds must be between 300 and 86400")
	}
	return seconds, nil
}

// transactionScopes checks the scopes object: {organization_id, scopes: [..]}.
func transactionScopes(value any) (string, []string, error) {
	object, ok := value.(map[string]any)
	if !ok {
		return "", nil, errors.New("scopes is required and must be an object")
	}
	organization, ok := object["organization_id"].(string)
	if !ok || organization == "" {
		return "", nil, errors.New("scopes.organization_id is required")
	}
	scopes, err := stringList(object["scopes"])
	if err != nil {
		return "", nil, errors.New("scopes.scopes must be a list of strings")
	}
	return organization, scopes, nil
}

// stringList reads a JSON list of strings.
func stringList(value any) ([]string, error) {
	items, ok := value.([]any)
	if !ok {
		return nil, errors.New("not a list")
	}
	list := make([]string, 0, len(items))
	for _, item := range items {
		s, ok := item.(string)
		if !ok {
			return nil, errors.New("not a list of strings")
		}
		list = append(list, s)
	}
	return list, nil
}
