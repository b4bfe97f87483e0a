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
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Vault API paths of the Kubernetes auth method (mounted at kubernetes) and
// of token self-revocation.
const (
	VaultKubernetesLoginPath = "/v1/auth/kubernetes/login"
	VaultRevokeSelfPath      = "/v1/auth/token/revoke-self"
)

// VaultRole is a role of Vault's Kubernetes auth method.
type VaultRole struct {
	// BoundServiceAccountNames and BoundServiceAccountNamespaces are the
	// ServiceAccounts that may log in with the role.
	BoundServiceAccountNames, BoundServiceAccountNamespaces []string
	// Audience, when set, is the audience the ServiceAccount token must carry.
	Audience string
	// TokenTTL is the lifetime of the Vault tokens the role issues.
	TokenTTL time.Duration
	// Policies attached to those tokens.
	Policies []string
}

// VaultKubernetesAuth fakes Vault's Kubernetes auth method and token
// self-revocation as the Vault API documentation describes them. Login is
// POST /v1/auth/kubernetes/login with the JSON body {role, jwt}; Vault
// reviews the ServiceAccount token with the cluster (Verify: for the tests a
// TokenReview against the real apiserver, with the role's audience) and checks
// the ServiceAccount against the role's bound names and namespaces. Success is
// 200 with the token in auth.client_token and its lifetime in
// auth.lease_duration (seconds); failures are {"errors": [...]} with 400 for
// a malformed request or unknown role and 403 "permission denied" for a token
// Vault does not accept. POST /v1/auth/token/revoke-self with the token in
// X-Vault-Token revokes it (204).
//
// With DatabaseRoles set it also fakes the database secrets engine (mounted
// at database) and the lease endpoints, as Vault documents them: GET
// /v1/database/creds/<role> with a live token in X-Vault-Token answers fresh
// credentials in data.username and data.password under a lease (lease_id,
// lease_duration, renewable); PUT /v1/sys/leases/renew {lease_id, increment}
// extends a live lease to increment seconds from now (the role's default TTL
// when 0), never past its max TTL from creation, and answers the lease_id,
// lease_duration and renewable without data (a capped TTL adds a warning); an
// unknown, expired or revoked lease is 400 "lease not found". PUT
// /v1/sys/leases/revoke {lease_id} revokes it (204, for an unknown lease too).
// A lease also ends with the token that created it, as every lease of a
// revoked or expired token is revoked. A missing, expired or revoked
// X-Vault-Token is 403 "permission denied".
type VaultKubernetesAuth struct {
	Base
	// Roles by name.
	Roles map[string]VaultRole
	// Verify reviews a ServiceAccount token for an audience ("" for none) and
	// returns the ServiceAccount's namespace and name.
	Verify func(token, audience string) (namespace, name string, ok bool)
	// DatabaseRoles are the roles of the database secrets engine, by name.
	DatabaseRoles map[string]VaultDatabaseRole

	leaseMu                      sync.Mutex
	leases                       []*VaultLease
	reads, renewals, revocations int
}

// VaultDatabaseRole is a role of Vault's database secrets engine.
type VaultDatabaseRole struct {
	// DefaultTTL is the lifetime of a new lease and of a renewal that asks
	// for no increment; MaxTTL bounds a lease's life from its creation.
	DefaultTTL, MaxTTL time.Duration
}

// VaultLease is a lease of database credentials the fake handed out.
type VaultLease struct {
	ID, Username, Password string
	// Token is the Vault token whose read created the lease.
	Token string
	// IssuedAt, ExpiresAt and MaxExpiresAt are on the fake's clock.
	IssuedAt, ExpiresAt, MaxExpiresAt time.Time
	// Renewals counts the lease's renewals.
	Renewals int
	// Revoked is when the lease was revoked through sys/leases/revoke.
	Revoked *time.Time
}

// Vault API paths of the database secrets engine and the lease endpoints.
const (
	VaultDatabaseCredsPrefix = "/v1/database/creds/"
	VaultLeaseRenewPath      = "/v1/sys/leases/renew"
	VaultLeaseRevokePath     = "/v1/sys/leases/revoke"
)

func (f *VaultKubernetesAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.answer)
}

func vaultFailure(status int, outcome Outcome, message string) reply {
	return reply{status: status, outcome: outcome, body: map[string]any{"errors": []string{message}}}
}

func (f *VaultKubernetesAuth) answer(r *http.Request) reply {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == VaultKubernetesLoginPath:
		return f.login(r)
	case r.Method == http.MethodPost && r.URL.Path == VaultRevokeSelfPath:
		token := r.Header.Get("X-Vault-Token")
		if token == "" || !f.Valid(token) {
			return vaultFailure(http.StatusForbidden, OutcomeUnauthorized, "permission denied")
		}
		f.revokeWhere(func(t *IssuedToken) bool { return t.Value == token })
		return reply{status: http.StatusNoContent, outcome: OutcomeRevoked}
	case f.DatabaseRoles != nil && r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, VaultDatabaseCredsPrefix):
		return f.readCreds(r)
	case f.DatabaseRoles != nil && (r.Method == http.MethodPut || r.Method == http.MethodPost) && r.URL.Path == VaultLeaseRenewPath:
		return f.renew(r)
	case f.DatabaseRoles != nil && (r.Method == http.MethodPut || r.Method == http.MethodPost) && r.URL.Path == VaultLeaseRevokePath:
		return f.revokeLease(r)
	default:
		return vaultFailure(http.StatusNotFound, OutcomeRejected, "1 error occurred:\n\t* unsupported path\n\n")
	}
}

// authorized reports whether the request carries a live Vault token.
func (f *VaultKubernetesAuth) authorized(r *http.Request) (string, bool) {
	token := r.Header.Get("X-Vault-Token")
	return token, token != "" && f.Valid(token)
}

// live reports whether a lease is in force at now: not revoked, not expired,
// and its token neither revoked nor expired. Call with leaseMu held.
func (f *VaultKubernetesAuth) live(l *VaultLease, now time.Time) bool {
	if l.Revoked != nil || !now.Before(l.ExpiresAt) {
		return false
	}
	t, ok := f.token(func(t *IssuedToken) bool { return t.Value == l.Token })
	return ok && !t.Revoked && now.Before(t.ExpiresAt)
}

func (f *VaultKubernetesAuth) readCreds(r *http.Request) reply {
	token, ok := f.authorized(r)
	if !ok {
		return vaultFailure(http.StatusForbidden, OutcomeUnauthorized, "permission denied")
	}
	name := strings.TrimPrefix(r.URL.Path, VaultDatabaseCredsPrefix)
	role, ok := f.DatabaseRoles[name]
	if !ok || name == "" || strings.Contains(name, "/") {
		return vaultFailure(http.StatusBadRequest, OutcomeRejected, fmt.Sprintf("unknown role: %s", name))
	}
	now := f.now()
	l := &VaultLease{ID: "database/creds/" + name + "/" + randomToken("", 12), Username: "v-kubernetes-" + name + "-" + randomToken("", 6),
		Password: randomToken("A1a-", 16), Token: token, IssuedAt: now, ExpiresAt: now.Add(role.DefaultTTL), MaxExpiresAt: now.Add(role.MaxTTL)}
	f.leaseMu.Lock()
	f.leases = append(f.leases, l)
	f.reads++
	f.leaseMu.Unlock()
	return reply{status: http.StatusOK, outcome: OutcomeIssued, body: map[string]any{
		"request_id": randomToken("", 16), "lease_id": l.ID, "renewable": true, "lease_duration": int64(role.DefaultTTL / time.Second),
		"data": map[string]any{"username": l.Username, "password": l.Password}, "wrap_info": nil, "warnings": nil, "auth": nil,
	}}
}

// leaseRequest reads the lease_id (and increment) of a renew or revoke body.
func leaseRequest(r *http.Request) (id string, increment time.Duration, err error) {
	body, err := decodeJSONBody(r)
	if err != nil {
		return "", 0, err
	}
	id, _ = body["lease_id"].(string)
	switch v := body["increment"].(type) {
	case nil:
	case json.Number:
		n, err := v.Int64()
		if err != nil || n < 0 {
			return "", 0, fmt.Errorf("invalid increment %q", v)
		}
		increment = time.Duration(n) * time.Second
	case string:
		if increment, err = time.ParseDuration(v); err != nil {
			return "", 0, fmt.Errorf("invalid increment %q", v)
		}
	default:
		return "", 0, errors.New("invalid increment")
	}
	return id, increment, nil
}

func (f *VaultKubernetesAuth) renew(r *http.Request) reply {
	if _, ok := f.authorized(r); !ok {
		return vaultFailure(http.StatusForbidden, OutcomeUnauthorized, "permission denied")
	}
	id, increment, err := leaseRequest(r)
	if err != nil {
		return vaultFailure(http.StatusBadRequest, OutcomeRejected, err.Error())
	}
	if id == "" {
		return vaultFailure(http.StatusBadRequest, OutcomeRejected, "lease_id must be specified")
	}
	now := f.now()
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	i := slices.IndexFunc(f.leases, func(l *VaultLease) bool { return l.ID == id })
	if i < 0 || !f.live(f.leases[i], now) {
		return vaultFailure(http.StatusBadRequest, OutcomeRejected, "lease not found")
	}
	l := f.leases[i]
	if increment == 0 {
		role := f.DatabaseRoles[strings.Split(strings.TrimPrefix(id, "database/creds/"), "/")[0]]
		increment = role.DefaultTTL
	}
	var warnings []string
	ttl := increment
	if remaining := l.MaxExpiresAt.Sub(now); ttl > remaining {
		warnings = append(warnings, fmt.Sprintf("TTL of %q exceeded the effective max_ttl of %q; TTL value is capped accordingly", increment, remaining))
		ttl = remaining
	}
	l.ExpiresAt, l.Renewals = now.Add(ttl), l.Renewals+1
	f.renewals++
	return reply{status: http.StatusOK, outcome: OutcomeRefreshed, body: map[string]any{
		"request_id": randomToken("", 16), "lease_id": l.ID, "renewable": true, "lease_duration": int64(ttl / time.Second),
		"data": nil, "wrap_info": nil, "warnings": warnings, "auth": nil,
	}}
}

func (f *VaultKubernetesAuth) revokeLease(r *http.Request) reply {
	if _, ok := f.authorized(r); !ok {
		return vaultFailure(http.StatusForbidden, OutcomeUnauthorized, "permission denied")
	}
	id, _, err := leaseRequest(r)
	if err != nil {
		return vaultFailure(http.StatusBadRequest, OutcomeRejected, err.Error())
	}
	if id == "" {
		return vaultFailure(http.StatusBadRequest, OutcomeRejected, "lease_id must be specified")
	}
	now := f.now()
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	f.revocations++
	if i := slices.IndexFunc(f.leases, func(l *VaultLease) bool { return l.ID == id }); i >= 0 && f.leases[i].Revoked == nil {
		f.leases[i].Revoked = &now
	}
	return reply{status: http.StatusNoContent, outcome: OutcomeRevoked}
}

// Leases returns a copy of every lease handed out, oldest first.
func (f *VaultKubernetesAuth) Leases() []VaultLease {
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	out := make([]VaultLease, len(f.leases))
	for i, l := range f.leases {
		out[i] = *l
	}
	return out
}

// LeaseLive reports whether the lease of the given password is in force now.
func (f *VaultKubernetesAuth) LeaseLive(password string) bool {
	now := f.now()
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	i := slices.IndexFunc(f.leases, func(l *VaultLease) bool { return l.Password == password })
	return i >= 0 && f.live(f.leases[i], now)
}

// LiveLeases returns the ids of the leases in force now.
func (f *VaultKubernetesAuth) LiveLeases() []string {
	now := f.now()
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	var ids []string
	for _, l := range f.leases {
		if f.live(l, now) {
			ids = append(ids, l.ID)
		}
	}
	return ids
}

// RevokeLeaseBehindBack revokes a lease as an operator would with vault
// lease revoke, without a call to the fake.
func (f *VaultKubernetesAuth) RevokeLeaseBehindBack(id string) {
	now := f.now()
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	if i := slices.IndexFunc(f.leases, func(l *VaultLease) bool { return l.ID == id }); i >= 0 && f.leases[i].Revoked == nil {
		f.leases[i].Revoked = &now
	}
}

// Logins, Reads, Renewals and Revocations count the successful logins,
// credential reads and lease renewals, and the lease revocations asked for.
func (f *VaultKubernetesAuth) Logins() int { return len(f.Issued()) }

// Reads counts the credential reads answered.
func (f *VaultKubernetesAuth) Reads() int {
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	return f.reads
}

// Renewals counts the lease renewals granted.
func (f *VaultKubernetesAuth) Renewals() int {
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	return f.renewals
}

// Revocations counts the lease revocations asked for.
func (f *VaultKubernetesAuth) Revocations() int {
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	return f.revocations
}

func (f *VaultKubernetesAuth) login(r *http.Request) reply {
	body, err := decodeJSONBody(r)
	if err != nil {
		return vaultFailure(http.StatusBadRequest, OutcomeRejected, "failed to parse JSON input: "+err.Error())
	}
	roleName, _ := body["role"].(string)
	jwt, _ := body["jwt"].(string)
	switch {
	case roleName == "":
		return vaultFailure(http.StatusBadRequest, OutcomeRejected, "missing role")
	case jwt == "":
		return vaultFailure(http.StatusBadRequest, OutcomeRejected, "missing jwt")
	}
	f.rememberCredential(jwt)
	role, ok := f.Roles[roleName]
	if !ok {
		return vaultFailure(http.StatusBadRequest, OutcomeRejected, fmt.Sprintf("invalid role name %q", roleName))
	}
	namespace, name, ok := f.Verify(jwt, role.Audience)
	if !ok {
		return vaultFailure(http.StatusForbidden, OutcomeUnauthorized, "permission denied")
	}
	if !slices.Contains(role.BoundServiceAccountNames, name) && !slices.Contains(role.BoundServiceAccountNames, "*") {
		return vaultFailure(http.StatusForbidden, OutcomeUnauthorized, "service account name not authorized")
	}
	if !slices.Contains(role.BoundServiceAccountNamespaces, namespace) && !slices.Contains(role.BoundServiceAccountNamespaces, "*") {
		return vaultFailure(http.StatusForbidden, OutcomeUnauthorized, "namespace not authorized")
	}
	now := f.now()
	ttl := role.TokenTTL
	if ttl == 0 {
		ttl = 768 * time.Hour // Vault's default maximum lease
	}
	ttl = f.lifetime(ttl)
	issued := IssuedToken{Value: randomToken("hvs.", 24), ID: randomToken("", 12), IssuedAt: now, ExpiresAt: now.Add(ttl),
		Request: map[string]any{"role": roleName, "service_account_name": name, "service_account_namespace": namespace}}
	f.record(issued)
	return reply{status: http.StatusOK, outcome: OutcomeIssued, body: map[string]any{
		"request_id": randomToken("", 16), "lease_id": "", "renewable": false, "lease_duration": 0,
		"data": nil, "wrap_info": nil, "warnings": nil,
		"auth": map[string]any{
			"client_token": issued.Value, "accessor": issued.ID,
			"policies": append([]string{"default"}, role.Policies...), "token_policies": append([]string{"default"}, role.Policies...),
			"metadata":       map[string]any{"role": roleName, "service_account_name": name, "service_account_namespace": namespace},
			"lease_duration": int64(ttl / time.Second), "renewable": true, "token_type": "service", "orphan": true,
		},
	}}
}
