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
	"slices"
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
type VaultKubernetesAuth struct {
	Base
	// Roles by name.
	Roles map[string]VaultRole
	// Verify reviews a ServiceAccount token for an audience ("" for none) and
	// returns the ServiceAccount's namespace and name.
	Verify func(token, audience string) (namespace, name string, ok bool)
}

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
	default:
		return vaultFailure(http.StatusNotFound, OutcomeRejected, "1 error occurred:\n\t* unsupported path\n\n")
	}
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
