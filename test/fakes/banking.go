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
	"strconv"
	"time"

	"github.com/google/uuid"
)

// BankingAPIPath is the token endpoint of the digital-banking API (seed 003),
// under its documented base URL https://api.candescent.com/digitalbanking.
const BankingAPIPath = "/digitalbanking/v1/oauth/token"

// bankingUserAgent is the documented user-agent format,
// {Appname}/{Appversion}[/{DeviceID}][;{Platform User-Agent}].
var bankingUserAgent = regexp.MustCompile(`^[^/;\s]+/[^/;\s]+(/[^/;\s]+)?(;.*)?$`)

// BankingAPI fakes the digital-banking API's "Create Access Token" (seed 003):
// POST /v1/oauth/token with HTTP Basic (consumer key and secret), the required
// headers user-agent and di_tid (a canonical UUID), and a form body: either
// grant_type=password with username and password, or grant_type=refresh_token
// with refresh_token. It answers {access_token, expires_in, refresh_token,
// refresh_token_expires_in, di_fiid, di_ficustomer}, the lifetimes as strings as
// the page shows, and errors as {statusMessage, errorInfo: {errorType,
// errorCode, errorMessage}}. Refresh tokens rotate: each can be used once.
type BankingAPI struct {
	Base
	// ConsumerKey and ConsumerSecret are the Basic credentials of the application.
	ConsumerKey    string
	ConsumerSecret string
	// Username and Password are the user's credentials for the password grant.
	Username string
	Password string
	// FIID is the financial institution's id, returned as di_fiid, and
	// FICustomer the user's customer id there, returned as di_ficustomer.
	FIID       string
	FICustomer string
}

// NewBankingAPI returns the fake with the given application and user
// credentials. Access tokens live an hour (Lifetime), refresh tokens a day
// (RefreshLifetime).
func NewBankingAPI(consumerKey, consumerSecret, username, password string) *BankingAPI {
	return &BankingAPI{
		ConsumerKey: consumerKey, ConsumerSecret: consumerSecret,
		Username: username, Password: password,
		FIID: "DI1234", FICustomer: "100200300",
	}
}

func (f *BankingAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.answer)
}

func bankingFailure(status int, outcome Outcome, code, message string) reply {
	statusMessage := http.StatusText(status)
	return reply{status: status, outcome: outcome, body: map[string]any{
		"statusMessage": statusMessage,
		"errorInfo":     map[string]any{"errorType": "USER_ERROR", "errorCode": code, "errorMessage": message},
	}}
}

func (f *BankingAPI) answer(r *http.Request) reply {
	if r.Method != http.MethodPost || r.URL.Path != BankingAPIPath {
		return bankingFailure(http.StatusNotFound, OutcomeRejected, "not_found", "Resource not found")
	}
	if key, secret, ok := r.BasicAuth(); !ok || key != f.ConsumerKey || secret != f.ConsumerSecret {
		return bankingFailure(http.StatusUnauthorized, OutcomeUnauthorized, "invalid_client", "Invalid consumer key or secret")
	}
	if !bankingUserAgent.MatchString(r.Header.Get("User-Agent")) {
		return bankingFailure(http.StatusBadRequest, OutcomeRejected, "invalid_request",
			"user-agent is required in the format {Appname}/{Appversion}[/{DeviceID}][;{Platform User-Agent}]")
	}
	if !isCanonicalUUID(r.Header.Get("di_tid")) {
		return bankingFailure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "di_tid is required and must be a UUID in canonical form")
	}
	if !hasContentType(r, "application/x-www-form-urlencoded") {
		return bankingFailure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "the body must be form encoded")
	}
	if err := r.ParseForm(); err != nil {
		return bankingFailure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "malformed form body")
	}
	switch r.PostForm.Get("grant_type") {
	case "password":
		if r.PostForm.Get("username") != f.Username || r.PostForm.Get("password") != f.Password || f.Username == "" {
			return bankingFailure(http.StatusUnauthorized, OutcomeUnauthorized, "invalid_grant", "Invalid username or password")
		}
		return f.issue(r, OutcomeIssued)
	case "refresh_token":
		if !f.redeemRefreshToken(r.PostForm.Get("refresh_token")) {
			return bankingFailure(http.StatusBadRequest, OutcomeRejected, "invalid_grant", "Refresh token is invalid or expired")
		}
		return f.issue(r, OutcomeRefreshed)
	default:
		return bankingFailure(http.StatusBadRequest, OutcomeRejected, "unsupported_grant_type", "grant_type must be password or refresh_token")
	}
}

func (f *BankingAPI) issue(r *http.Request, outcome Outcome) reply {
	now := f.now()
	lifetime := f.lifetime(time.Hour)
	refreshLifetime := f.refreshLifetime()
	token := IssuedToken{
		Value:                 randomToken("bank_", 24),
		IssuedAt:              now,
		ExpiresAt:             now.Add(lifetime),
		RefreshToken:          randomToken("bank_refresh_", 24),
		RefreshTokenExpiresAt: now.Add(refreshLifetime),
		Refreshed:             outcome == OutcomeRefreshed,
		Request: map[string]any{
			"grant_type":     r.PostForm.Get("grant_type"),
			"di_tid":         r.Header.Get("di_tid"),
			"user-agent":     r.Header.Get("User-Agent"),
			"originating_ip": r.Header.Get("originating_ip"),
			"offering_id":    r.Header.Get("offering_id"),
		},
	}
	f.record(token)
	return reply{status: http.StatusOK, outcome: outcome, body: map[string]any{
		"expires_in":               strconv.FormatInt(int64(lifetime/time.Second), 10),
		"di_fiid":                  f.FIID,
		"di_ficustomer":            f.FICustomer,
		"access_token":             token.Value,
		"refresh_token":            token.RefreshToken,
		"refresh_token_expires_in": strconv.FormatInt(int64(refreshLifetime/time.Second), 10),
	}}
}

// isCanonicalUUID accepts only the 8-4-4-4-12 form the page asks for, not the
// braced or urn: forms uuid.Parse also takes.
func isCanonicalUUID(value string) bool {
	_, err := uuid.Parse(value)
	return err == nil && len(value) == 36
}
