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
	"regexp"
	"slices"
	"strings"
	"time"
)

// InvoicingAPIPath is the token endpoint of the invoicing API (seed 001).
const InvoicingAPIPath = "/v2/access-tokens"

// invoicingDescription is the documented pattern of description.
var invoicingDescription = regexp.MustCompile(`^[a-zA-Z0-9() ]{4,48}$`)

// InvoicingAPI fakes the invoicing API's "Create Token" (seed 001): POST
// /v2/access-tokens with a bearer API key and a JSON body {description
// matching ^[a-zA-Z0-9() ]{4,48}$, scopes: [...]}; it answers {success: true,
// data: {id, secret}} with no expiry, and {success: false, message} with 401 or
// 400 on errors.
//
// Fake only (the page documents no revocation): DELETE /v2/access-tokens/{id}
// with the same bearer key revokes a token and answers {success: true}, or 404
// {success: false, message} for an unknown id.
type InvoicingAPI struct {
	Base
	// APIKey is the bearer credential accepted for creating and revoking tokens.
	APIKey string
	// AllowedScopes, when set, are the scopes the API key may grant; asking
	// for another gets {success: false, message: "scope not allowed"}, with
	// status 200 (the page shows its failure bodies without a status).
	AllowedScopes []string
}

// NewInvoicingAPI returns the fake accepting apiKey. Tokens have no documented
// expiry; Lifetime (default 24h) only bounds Valid.
func NewInvoicingAPI(apiKey string) *InvoicingAPI {
	return &InvoicingAPI{APIKey: apiKey}
}

func (f *InvoicingAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.answer)
}

func invoicingFailure(status int, outcome Outcome, message string) reply {
	return reply{status: status, outcome: outcome, body: map[string]any{"success": false, "message": message}}
}

func (f *InvoicingAPI) answer(r *http.Request) reply {
	id, isTokenPath := strings.CutPrefix(r.URL.Path, InvoicingAPIPath+"/")
	switch {
	case r.URL.Path == InvoicingAPIPath && r.Method == http.MethodPost:
	case isTokenPath && id != "" && r.Method == http.MethodDelete:
	default:
		return invoicingFailure(http.StatusNotFound, OutcomeRejected, "Not found")
	}
	if r.Header.Get("Authorization") != "Bearer "+f.APIKey || f.APIKey == "" {
		return invoicingFailure(http.StatusUnauthorized, OutcomeUnauthorized, "Unauthorized")
	}
	if r.Method == http.MethodDelete {
		return f.revoke(id)
	}
	return f.create(r)
}

func (f *InvoicingAPI) create(r *http.Request) reply {
	if !hasContentType(r, "application/json") {
		return invoicingFailure(http.StatusBadRequest, OutcomeRejected, "Content-Type must be application/json")
	}
	body, err := decodeJSONBody(r)
	if err != nil {
		return invoicingFailure(http.StatusBadRequest, OutcomeRejected, "Invalid JSON body")
	}
	description, _ := body["description"].(string)
	if !invoicingDescription.MatchString(description) {
		return invoicingFailure(http.StatusBadRequest, OutcomeRejected,
			"description must match ^[a-zA-Z0-9() ]{4,48}$")
	}
	scopes, err := stringList(body["scopes"])
	if err != nil {
		return invoicingFailure(http.StatusBadRequest, OutcomeRejected, "scopes must be a list of strings")
	}
	for _, s := range scopes {
		if len(f.AllowedScopes) > 0 && !slices.Contains(f.AllowedScopes, s) {
			return invoicingFailure(http.StatusOK, OutcomeRejected, "scope not allowed")
		}
	}
	now := f.now()
	token := IssuedToken{
		Value:     randomToken("", 11),
		ID:        randomToken("tkn_", 6),
		IssuedAt:  now,
		ExpiresAt: now.Add(f.lifetime(24 * time.Hour)),
		Request:   map[string]any{"description": description, "scopes": scopes},
	}
	f.record(token)
	return reply{status: http.StatusOK, outcome: OutcomeIssued, body: map[string]any{
		"success": true,
		"data":    map[string]any{"id": token.ID, "secret": token.Value},
	}}
}

func (f *InvoicingAPI) revoke(id string) reply {
	if !f.revokeWhere(func(t *IssuedToken) bool { return t.ID == id }) {
		return invoicingFailure(http.StatusNotFound, OutcomeRejected, "Token not found")
	}
	return reply{status: http.StatusOK, outcome: OutcomeRevoked, body: map[string]any{"success": true}}
}
