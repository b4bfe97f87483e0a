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

package issuer

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
)

// vaultDatabase is Vault as the sample expects it: the Kubernetes auth role
// app gives one-hour login tokens; the database role app gives 5-minute
// leases with a max TTL of one hour.
func vaultDatabase() *fakes.VaultKubernetesAuth {
	f := &fakes.VaultKubernetesAuth{
		Roles: map[string]fakes.VaultRole{"app": {BoundServiceAccountNames: []string{"app"},
			BoundServiceAccountNamespaces: []string{"default"}, Audience: "vault", TokenTTL: time.Hour}},
		DatabaseRoles: map[string]fakes.VaultDatabaseRole{"app": {DefaultTTL: 5 * time.Minute, MaxTTL: time.Hour}},
	}
	f.Verify = func(token, audience string) (string, string, bool) {
		return "default", "app", token == "sa-token-canary" && audience == "vault"
	}
	return f
}

// holding is what a controller keeps of a token and offers for extension.
func holding(t *Token) *HeldToken {
	return &HeldToken{Value: t.Value, ID: t.ID, Fields: t.Fields, IssuedAt: t.IssuedAt, ExpiresAt: t.ExpiresAt, NotAfter: t.NotAfter}
}

func startVaultDatabase(t *testing.T) (*fakes.VaultKubernetesAuth, *sampleRun) {
	t.Helper()
	fake := vaultDatabase()
	run := startSample(t, "vault-database-credentials.yaml", fake, &fake.Base)
	sa := *FindCredential(run.call.Spec, "service-account-token").ServiceAccountToken
	run.call.ServiceAccountTokens = map[v1alpha1.ServiceAccountTokenSource]string{sa: "sa-token-canary"}
	run.call.StepScope = "TokenIssuer/default/vault-database/uid|default"
	return fake, run
}

// An hour of 5-minute leases, renewed at two thirds of their life as the
// controller does: one read and renewals of its lease, at most two logins,
// the same credentials throughout, never a login token where a lease belongs.
func TestSampleVaultDatabaseLeaseRenewal(t *testing.T) {
	fake, run := startVaultDatabase(t)
	start := run.clock.Now()
	first := run.issue(t)
	if fake.Reads() != 1 || fake.Logins() != 1 {
		t.Fatalf("reads %d, logins %d after the first mint; want 1 and 1", fake.Reads(), fake.Logins())
	}
	lease := fake.Leases()[0]
	if first.Value != lease.Password || first.ID != lease.ID || first.Fields["username"] != lease.Username {
		t.Fatalf("token %q id %q fields %v; want the lease's password, id and username", first.Value, first.ID, first.Fields)
	}
	if len(first.Fields) != 1 {
		t.Errorf("fields %v: only username may reach the Secret", first.Fields)
	}
	wantTime(t, "ExpiresAt", first.ExpiresAt, start.Add(5*time.Minute))
	wantTime(t, "NotAfter", first.NotAfter, start.Add(time.Hour))

	held := first
	var replaced []*Token
	for run.clock.Now().Before(start.Add(time.Hour)) {
		// Renew at two thirds of the current lifetime.
		run.clock.SetTime(held.IssuedAt.Add(held.ExpiresAt.Sub(held.IssuedAt) * 2 / 3))
		if !fake.LeaseLive(held.Value) {
			t.Fatalf("at %v the held lease ended before its renewal", run.clock.Now().Sub(start))
		}
		run.call.Held = holding(held)
		if held.Final {
			run.call.Held = nil
		}
		next := run.issue(t)
		if next.Extended != (run.call.Held != nil) {
			t.Fatalf("at %v: extended %v with held %v", run.clock.Now().Sub(start), next.Extended, run.call.Held != nil)
		}
		if next.Extended && (next.Value != held.Value || next.ID != held.ID || next.Fields["username"] != held.Fields["username"]) {
			t.Fatalf("an extension changed the credentials")
		}
		if !next.Extended {
			replaced = append(replaced, held)
		}
		held = next
	}
	if fake.Logins() > 2 {
		t.Errorf("%d logins in an hour of 5-minute leases, want at most 2", fake.Logins())
	}
	// The lease reached its max TTL at 60m: its last renewal was capped and
	// it was replaced by a second read before it ended.
	if fake.Reads() != 2 || len(replaced) != 1 || replaced[0].Value != first.Value {
		t.Errorf("reads %d, replaced %d; want the first lease replaced once, by a second read", fake.Reads(), len(replaced))
	}
	if got := fake.Leases()[0].Renewals; got < 15 {
		t.Errorf("the first lease was renewed %d times in its hour, want at least 15", got)
	}
	if fake.Renewals() == 0 || fake.Revocations() != 0 {
		t.Errorf("renewals %d, revocations %d", fake.Renewals(), fake.Revocations())
	}
	for _, token := range fake.Issued() {
		if !fake.Valid(token.Value) && token.Revoked {
			t.Errorf("a login token was revoked")
		}
		if token.Value == held.Value || held.Fields["username"] == token.Value {
			t.Errorf("a login token is where the credentials belong")
		}
	}
}

// A lease revoked behind tokenmint's back: the refused renewal falls back to
// one new read, and the revoke request revokes leases by id with a login
// token, logging in again when the kept one has expired.
func TestSampleVaultDatabaseRenewalRefusedAndRevoke(t *testing.T) {
	fake, run := startVaultDatabase(t)
	first := run.issue(t)
	fake.RevokeLeaseBehindBack(first.ID)
	run.clock.Step(200 * time.Second)
	run.call.Held = holding(first)
	second := run.issue(t)
	if second.Extended || !second.RefreshRejected || second.Value == first.Value {
		t.Fatalf("extended %v, refresh rejected %v: want a new lease after the refused renewal", second.Extended, second.RefreshRejected)
	}
	if fake.Reads() != 2 || fake.Renewals() != 0 || fake.Logins() != 1 {
		t.Errorf("reads %d, renewals %d, logins %d; want 2, 0 and 1", fake.Reads(), fake.Renewals(), fake.Logins())
	}

	// Refused again and the read fails too: the error says the refresh was
	// refused, and the second read is not tried.
	fake.RevokeLeaseBehindBack(second.ID)
	fake.FailNext(0, fakes.Fault{})
	run.call.Held = holding(second)
	fake.SetFaultHook(func(r *http.Request) *fakes.Fault {
		if strings.HasPrefix(r.URL.Path, fakes.VaultDatabaseCredsPrefix) {
			return &fakes.Fault{Status: 503, Body: `{"errors":["Vault is sealed"]}`}
		}
		return nil
	})
	_, err := run.engine.Issue(context.Background(), run.call)
	if e := asError(t, err); !e.RefreshRejected || e.Class != ClassRetryable {
		t.Errorf("error %v (refresh rejected %v, class %s), want a retryable failure after a refused renewal", err, e.RefreshRejected, e.Class)
	}
	fake.SetFaultHook(nil)

	// Two hours on, the kept login has expired: revoking logs in again and
	// revokes the lease, not the login token.
	run.clock.Step(2 * time.Hour)
	logins := fake.Logins()
	run.call.Held = nil
	if err := run.engine.Revoke(context.Background(), run.call, second.Value, second.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if fake.Logins() != logins+1 || fake.Revocations() != 1 {
		t.Errorf("logins %d (was %d), revocations %d; want one login and one revocation", fake.Logins(), logins, fake.Revocations())
	}
	for _, token := range fake.Issued() {
		if token.Revoked {
			t.Errorf("login token %s was revoked", token.ID)
		}
	}
}

// Extension values are checked where they are used.
func TestRefreshExtendsValidation(t *testing.T) {
	s := loadSample(t, "vault-database-credentials.yaml")
	if err := Validate(s.issuer); err != nil {
		t.Fatalf("the sample is invalid: %v", err)
	}
	noExpiry := s.issuer.DeepCopy()
	noExpiry.Response.Expiry = nil
	refreshToken := s.issuer.DeepCopy()
	refreshToken.Refresh.Body.JSON[0].ValueSource = v1alpha1.ValueSource{Issued: v1alpha1.IssuedRefreshToken}
	noID := s.issuer.DeepCopy()
	noID.Response.TokenID = ""
	plain := s.issuer.DeepCopy()
	plain.RefreshExtends = false
	for name, tc := range map[string]struct {
		spec *v1alpha1.IssuerSpec
		want string
	}{
		"no expiry":                    {noExpiry, "refreshExtends needs refresh and response.expiry"},
		"no token id":                  {noID, "refresh uses the token id (issued: TokenID) but response.tokenID"},
		"a refresh token":              {refreshToken, "issued: RefreshToken has no value with refreshExtends"},
		"the held token's id, plainly": {plain, "issued: TokenID is only available in revoke"},
	} {
		err := Validate(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
