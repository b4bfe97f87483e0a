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
	"strconv"
	"sync"
	"time"
)

// GitLabRotatePath is the path of a project access token's self-rotation.
func GitLabRotatePath(project string) string {
	return "/api/v4/projects/" + project + "/access_tokens/self/rotate"
}

// GitLab fakes GitLab's project access token self-rotation as the project
// access tokens API documents it: POST
// /api/v4/projects/:id/access_tokens/self/rotate authenticated with the
// token itself in the PRIVATE-TOKEN header, with an optional expires_at
// (YYYY-MM-DD, query or body, JSON or form) that must be after today and at
// most 365 days ahead; without it the new token expires a week after today.
// Rotating revokes the token it rotates and answers {id, name, revoked,
// created_at, scopes, user_id, last_used_at, active, expires_at, token}.
// A token stops working at the start (00:00 UTC) of its expires_at day.
//
// Reuse detection: a rotated (revoked) token presented again revokes every
// token of its chain, the live one included, and is answered 401
// {"error":"invalid_token", ...}, as GitLab does against a replayed token.
type GitLab struct {
	Base
	// Project is the project id or URL-encoded path in the URL.
	Project string

	mu     sync.Mutex
	nextID int
	// states holds every token ever issued, the bootstrap one included, with
	// its chain; a chain is revoked as a whole on reuse.
	states map[string]*gitlabToken
	// revokedChains counts reuse detections.
	revokedChains int
	// presented counts the calls that presented each token.
	presented map[string]int
}

type gitlabChain struct {
	revoked bool
}

// gitlabToken is one token's state, kept beside the Base record.
type gitlabToken struct {
	chain   *gitlabChain
	expires time.Time // 00:00 UTC of expires_at
	rotated bool
}

// NewGitLab returns a fake for one project holding one active token,
// bootstrap, expiring on expiresAt (a date, 00:00 UTC).
func NewGitLab(project, bootstrap string, expiresAt time.Time) *GitLab {
	f := &GitLab{Project: project, nextID: 100, states: map[string]*gitlabToken{}, presented: map[string]int{}}
	f.states[bootstrap] = &gitlabToken{chain: &gitlabChain{}, expires: startOfDay(expiresAt)}
	return f
}

func startOfDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func (f *GitLab) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.answer)
}

func gitlabMessage(status int, outcome Outcome, message string) reply {
	return reply{status: status, outcome: outcome, body: map[string]any{"message": message}}
}

func gitlabInvalidToken(description string) reply {
	return reply{status: http.StatusUnauthorized, outcome: OutcomeUnauthorized, body: map[string]any{
		"error": "invalid_token", "error_description": description,
	}}
}

func (f *GitLab) answer(r *http.Request) reply {
	if r.URL.Path != GitLabRotatePath(f.Project) {
		return gitlabMessage(http.StatusNotFound, OutcomeRejected, "404 Not Found")
	}
	if r.Method != http.MethodPost {
		return gitlabMessage(http.StatusMethodNotAllowed, OutcomeRejected, "405 Method Not Allowed")
	}
	presented := r.Header.Get("PRIVATE-TOKEN")
	expiresAt, problem := gitlabExpiresAt(r)
	now := f.now()

	f.mu.Lock()
	defer f.mu.Unlock()
	if presented != "" {
		f.presented[presented]++
	}
	tok, known := f.states[presented]
	switch {
	case presented == "" || !known:
		return gitlabMessage(http.StatusUnauthorized, OutcomeUnauthorized, "401 Unauthorized")
	case tok.chain.revoked:
		return gitlabInvalidToken("Token was revoked. You have to re-authorize from the user.")
	case tok.rotated:
		// Reuse of a rotated token: the whole chain goes.
		tok.chain.revoked = true
		f.revokedChains++
		f.revokeChainLocked(tok.chain)
		return gitlabInvalidToken("Token was revoked. You have to re-authorize from the user.")
	case !now.Before(tok.expires):
		return gitlabInvalidToken("Token has expired.")
	}
	if problem != "" {
		return gitlabMessage(http.StatusBadRequest, OutcomeRejected, "400 Bad request - "+problem)
	}
	today := startOfDay(now)
	if expiresAt.IsZero() {
		expiresAt = today.AddDate(0, 0, 7)
	}
	if !expiresAt.After(today) {
		return gitlabMessage(http.StatusBadRequest, OutcomeRejected, "400 Bad request - expires_at must be in the future")
	}
	if expiresAt.After(today.AddDate(0, 0, 365)) {
		return gitlabMessage(http.StatusBadRequest, OutcomeRejected, "400 Bad request - expires_at must not be more than 365 days in the future")
	}
	tok.rotated = true
	f.update(func(t *IssuedToken) bool { return t.Value == presented }, func(t *IssuedToken) { t.Revoked = true })
	f.nextID++
	value := randomToken("glpat-", 20)
	f.states[value] = &gitlabToken{chain: tok.chain, expires: expiresAt}
	f.record(IssuedToken{Value: value, ID: strconv.Itoa(f.nextID), IssuedAt: now, ExpiresAt: expiresAt,
		Refreshed: true, Request: map[string]any{"expires_at": expiresAt.Format(time.DateOnly)}})
	return reply{status: http.StatusOK, outcome: OutcomeRefreshed, body: map[string]any{
		"id": f.nextID, "name": "tokenmint", "revoked": false, "created_at": now.UTC().Format("2006-01-02T15:04:05.000Z"),
		"scopes": []string{"api"}, "user_id": 141, "last_used_at": nil, "active": true,
		"expires_at": expiresAt.Format(time.DateOnly), "access_level": 40, "token": value,
	}}
}

// revokeChainLocked marks every recorded token of chain revoked.
func (f *GitLab) revokeChainLocked(chain *gitlabChain) {
	for value, t := range f.states {
		if t.chain == chain {
			f.update(func(it *IssuedToken) bool { return it.Value == value }, func(it *IssuedToken) { it.Revoked = true })
		}
	}
}

// gitlabExpiresAt reads the optional expires_at of a rotation, from the query
// or the body; problem says why it is unusable.
func gitlabExpiresAt(r *http.Request) (time.Time, string) {
	raw := r.URL.Query().Get("expires_at")
	if raw == "" && r.ContentLength != 0 {
		switch {
		case hasContentType(r, "application/json"):
			var body map[string]any
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				return time.Time{}, "the body is not JSON"
			}
			if v, ok := body["expires_at"]; ok {
				s, isString := v.(string)
				if !isString {
					return time.Time{}, "expires_at is invalid"
				}
				raw = s
			}
		case hasContentType(r, "application/x-www-form-urlencoded"):
			if err := r.ParseForm(); err != nil {
				return time.Time{}, "the body is not a form"
			}
			raw = r.PostForm.Get("expires_at")
		}
	}
	if raw == "" {
		return time.Time{}, ""
	}
	t, err := time.Parse(time.DateOnly, raw)
	if err != nil {
		return time.Time{}, "expires_at is invalid"
	}
	return t, ""
}

// Active reports whether value is a token GitLab accepts now.
func (f *GitLab) Active(value string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.states[value]
	return ok && !t.chain.revoked && !t.rotated && f.now().Before(t.expires)
}

// ChainsRevoked is the number of token chains revoked for the reuse of a
// rotated token.
func (f *GitLab) ChainsRevoked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.revokedChains
}

// Presented is the number of calls that sent value in PRIVATE-TOKEN.
func (f *GitLab) Presented(value string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.presented[value]
}

// AddToken makes value an active token of the project, expiring on expiresAt
// (a date, 00:00 UTC): a token created in GitLab's settings, starting a chain
// of its own.
func (f *GitLab) AddToken(value string, expiresAt time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[value] = &gitlabToken{chain: &gitlabChain{}, expires: startOfDay(expiresAt)}
}
