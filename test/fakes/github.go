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
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// GitHubInstallationTokenPath is the path of a GitHub App installation's
// access token endpoint, with the installation id.
func GitHubInstallationTokenPath(installationID string) string {
	return "/app/installations/" + installationID + "/access_tokens"
}

// GitHubApps fakes GitHub's "Create an installation access token for an app"
// endpoint as its documentation describes it: POST
// /app/installations/{installation_id}/access_tokens authenticated by a JWT
// the app signs with RS256, whose iss is the app's client id or app id, iat
// not in the future and exp at most 10 minutes ahead (checked against the
// signature with the app's public key); an optional JSON body with
// repositories, repository_ids and permissions; 201 Created with token,
// expires_at (RFC 3339, one hour), permissions and repository_selection.
// Errors are {message, documentation_url} with 401, 404 or 422, and under a
// rate limit (SetRateLimit) 403 or 429 with GitHub's rate-limit headers.
type GitHubApps struct {
	Base
	// ClientID and AppID are the app's identifiers; either may be the iss.
	ClientID, AppID string
	// PublicKey verifies the app's JWTs.
	PublicKey *rsa.PublicKey
	// Installations are the installation ids of the app.
	Installations []string
	// Repositories of the installations; a request may name only these.
	Repositories []string
	// Granted are the permissions the installation has; a request may ask for
	// these at their level or below, and gets all of them when it names none.
	Granted map[string]string

	limitMu sync.Mutex
	limit   GitHubLimit
}

// NewGitHubApps returns a fake for one app with one installation.
func NewGitHubApps(clientID, appID, installationID string, publicKey *rsa.PublicKey) *GitHubApps {
	return &GitHubApps{ClientID: clientID, AppID: appID, PublicKey: publicKey, Installations: []string{installationID},
		Repositories: []string{"octo-repo", "docs"},
		Granted:      map[string]string{"contents": "write", "metadata": "read", "issues": "write", "pull_requests": "write", "packages": "read"}}
}

func (f *GitHubApps) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.answer)
}

func githubFailure(status int, outcome Outcome, message string) reply {
	return reply{status: status, outcome: outcome, body: map[string]any{
		"message": message, "documentation_url": "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app",
		"status": http.StatusText(status)}}
}

func (f *GitHubApps) answer(r *http.Request) reply {
	installation := ""
	for _, id := range f.Installations {
		if r.URL.Path == GitHubInstallationTokenPath(id) {
			installation = id
		}
	}
	if installation == "" {
		return githubFailure(http.StatusNotFound, OutcomeRejected, "Not Found")
	}
	if r.Method != http.MethodPost {
		return githubFailure(http.StatusNotFound, OutcomeRejected, "Not Found")
	}
	if err := f.checkJWT(r.Header.Get("Authorization")); err != nil {
		return githubFailure(http.StatusUnauthorized, OutcomeUnauthorized, err.Error())
	}
	if limited := f.rateLimited(); limited != nil {
		return *limited
	}
	var body struct {
		Repositories  []string          `json:"repositories"`
		RepositoryIDs []int64           `json:"repository_ids"`
		Permissions   map[string]string `json:"permissions"`
	}
	if r.ContentLength != 0 {
		if !hasContentType(r, "application/json") {
			return githubFailure(http.StatusUnsupportedMediaType, OutcomeRejected, "Unsupported Media Type")
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return githubFailure(http.StatusUnprocessableEntity, OutcomeRejected, "Invalid request: the body is not a valid JSON object of repositories, repository_ids and permissions")
		}
	}
	for _, repo := range body.Repositories {
		known := false
		for _, have := range f.Repositories {
			known = known || have == repo
		}
		if !known || strings.Contains(repo, "/") {
			return githubFailure(http.StatusUnprocessableEntity, OutcomeRejected, "There is at least one repository that does not exist or is not accessible to the parent installation.")
		}
	}
	levels := map[string]int{"read": 1, "write": 2, "admin": 3}
	for name, level := range body.Permissions {
		if levels[level] == 0 || levels[level] > levels[f.Granted[name]] {
			return githubFailure(http.StatusUnprocessableEntity, OutcomeRejected, "The permissions requested are not granted to this installation.")
		}
	}
	selection := "all"
	if len(body.Repositories) > 0 || len(body.RepositoryIDs) > 0 {
		selection = "selected"
	}
	permissions := body.Permissions
	if len(permissions) == 0 {
		permissions = f.Granted
	}
	now := f.now()
	token := IssuedToken{
		Value:     randomToken("ghs_", 36),
		IssuedAt:  now,
		ExpiresAt: now.Add(f.lifetime(time.Hour)).Truncate(time.Second),
		Request:   map[string]any{"installation": installation, "repositories": body.Repositories, "permissions": body.Permissions},
	}
	f.record(token)
	return reply{status: http.StatusCreated, outcome: OutcomeIssued, body: map[string]any{
		"token":                token.Value,
		"expires_at":           token.ExpiresAt.UTC().Format(time.RFC3339),
		"permissions":          permissions,
		"repository_selection": selection,
	}}
}

// checkJWT verifies the app's JWT the way GitHub does: RS256 signed by the
// app's key, iss the app, iat present and not ahead of the clock (allowing a
// minute of drift), exp present, in the future and at most 10 minutes ahead.
func (f *GitHubApps) checkJWT(authorization string) error {
	raw, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok {
		return errors.New("A JSON web token could not be decoded")
	}
	f.rememberCredential(raw)
	now := f.now()
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return f.PublicKey, nil })
	if err != nil {
		return errors.New("A JSON web token could not be decoded")
	}
	iss := ""
	switch v := claims["iss"].(type) {
	case string:
		iss = v
	case float64:
		iss = strconv.FormatInt(int64(v), 10)
	}
	if iss == "" || (iss != f.ClientID && iss != f.AppID) {
		return errors.New("'Issuer' claim ('iss') must be an Integer or the app's client ID")
	}
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil || iat.After(now.Add(time.Minute)) {
		return errors.New("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued")
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return errors.New("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires")
	}
	if !exp.After(now) {
		return errors.New("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires")
	}
	if exp.Sub(now) > 10*time.Minute || exp.Sub(iat.Time) > 10*time.Minute+time.Minute {
		return errors.New("'Expiration time' claim ('exp') is too far in the future")
	}
	return nil
}
