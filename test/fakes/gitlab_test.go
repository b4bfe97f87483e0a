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
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestGitLabRotationIsStrict(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	fake := NewGitLab("42", "glpat-bootstrap", time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC))
	fake.Clock = clock
	srv := Start(t, fake)
	rotate := func(token, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+GitLabRotatePath("42"), strings.NewReader(body))
		req.Header.Set("PRIVATE-TOKEN", token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var doc map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		return resp.StatusCode, doc
	}

	for _, tt := range []struct{ body, want string }{
		{`{"expires_at":"2026-13-01"}`, "expires_at is invalid"},
		{`{"expires_at":"2026-03-01"}`, "must be in the future"},
		{`{"expires_at":"2027-03-02"}`, "more than 365 days"},
		{`{"expires_at":20260310}`, "expires_at is invalid"},
	} {
		if status, doc := rotate("glpat-bootstrap", tt.body); status != http.StatusBadRequest || !strings.Contains(doc["message"].(string), tt.want) {
			t.Errorf("%s: %d %v, want 400 %q", tt.body, status, doc, tt.want)
		}
	}
	if !fake.Active("glpat-bootstrap") {
		t.Fatal("a refused rotation revoked the token")
	}
	status, doc := rotate("glpat-bootstrap", `{"expires_at":"2026-03-10"}`)
	first, _ := doc["token"].(string)
	if status != http.StatusOK || doc["expires_at"] != "2026-03-10" || !strings.HasPrefix(first, "glpat-") {
		t.Fatalf("rotation: %d %v", status, doc)
	}
	status, doc = rotate(first, "")
	second, _ := doc["token"].(string)
	if status != http.StatusOK || doc["expires_at"] != "2026-03-08" {
		t.Fatalf("rotation without expires_at: %d %v, want a week after today", status, doc)
	}
	if fake.Active(first) || !fake.Active(second) {
		t.Fatal("rotation must revoke the rotated token only")
	}

	// Reuse of a rotated token revokes the whole chain, the live token included.
	if status, doc := rotate("glpat-bootstrap", ""); status != http.StatusUnauthorized || doc["error"] != "invalid_token" {
		t.Errorf("reused bootstrap token: %d %v, want 401 invalid_token", status, doc)
	}
	if fake.Active(second) || fake.ChainsRevoked() != 1 {
		t.Errorf("after reuse: live token active %v, chains revoked %d", fake.Active(second), fake.ChainsRevoked())
	}
	if status, _ := rotate(second, ""); status != http.StatusUnauthorized {
		t.Errorf("a token of a revoked chain rotated: %d", status)
	}

	// A token stops working at 00:00 UTC of its expires_at.
	fake.AddToken("glpat-other", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	clock.SetTime(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	if status, doc := rotate("glpat-other", ""); status != http.StatusUnauthorized || !strings.Contains(doc["error_description"].(string), "expired") {
		t.Errorf("expired token: %d %v", status, doc)
	}
	if fake.Presented("glpat-bootstrap") != 6 || fake.CallsBy(OutcomeRefreshed) != 2 {
		t.Errorf("bootstrap presented %d times, rotations %d; want 6 and 2", fake.Presented("glpat-bootstrap"), fake.CallsBy(OutcomeRefreshed))
	}
}
