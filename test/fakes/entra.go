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
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// EntraTokenPath is the v2.0 token endpoint path of a Microsoft Entra tenant.
func EntraTokenPath(tenant string) string { return "/" + tenant + "/oauth2/v2.0/token" }

// EntraID fakes the Microsoft identity platform's client credentials flow
// with a certificate credential, as "Microsoft identity platform application
// authentication certificate credentials" describes it: a form body with
// client_id, scope (a resource's /.default), grant_type client_credentials,
// client_assertion_type ...:jwt-bearer and a client_assertion signed RS256 or
// PS256 with the x5t#S256 header the registered certificate's thumbprint, aud
// the token URL, iss and sub the client id, a jti never seen before, and nbf,
// iat and exp with exp at most an hour after nbf. The answer is {token_type,
// expires_in, ext_expires_in, access_token}; errors are {error,
// error_description, error_codes} with 400 or 401.
type EntraID struct {
	Base
	// Tenant is the tenant id in the URL; Audience the token URL an assertion
	// must name (https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token).
	Tenant, Audience string
	// ClientID and Certificate are the application and its registered certificate.
	ClientID    string
	Certificate *x509.Certificate

	// Federated are the application's federated identity credentials
	// (workload identity federation): an assertion whose iss is not the
	// client id must match one on issuer, subject and audience, and be signed
	// by a key of IssuerKeys[iss], as Entra checks it against the issuer's
	// OIDC discovery document and JWKS.
	Federated  []FederatedCredential
	IssuerKeys map[string]crypto.PublicKey

	mu   sync.Mutex
	jtis map[string]bool
}

// FederatedCredential is a federated identity credential of an application:
// tokens of Issuer for Subject, with Audience (api://AzureADTokenExchange by
// default in Entra), are accepted as its client assertion.
type FederatedCredential struct {
	Issuer, Subject, Audience string
}

// NewEntraID returns a fake for one application of one tenant.
func NewEntraID(tenant, clientID string, cert *x509.Certificate) *EntraID {
	return &EntraID{Tenant: tenant, ClientID: clientID, Certificate: cert,
		Audience: "https://login.microsoftonline.com/" + tenant + "/oauth2/v2.0/token", jtis: map[string]bool{}}
}

func (f *EntraID) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.answer)
}

func entraFailure(status int, outcome Outcome, code, aadsts, description string) reply {
	number, _ := strconv.Atoi(strings.TrimPrefix(aadsts, "AADSTS"))
	return reply{status: status, outcome: outcome, body: map[string]any{
		"error": code, "error_description": aadsts + ": " + description, "error_codes": []int{number},
		"timestamp": "2026-03-01 12:00:00Z", "trace_id": "0000aaaa-11bb-cc22-dd33-444444eeeeee",
		"correlation_id": "aaaa0000-bb11-2222-33cc-444444dddddd",
	}}
}

func (f *EntraID) answer(r *http.Request) reply {
	if r.Method != http.MethodPost || r.URL.Path != EntraTokenPath(f.Tenant) {
		return entraFailure(http.StatusNotFound, OutcomeRejected, "invalid_request", "AADSTS90002", "Tenant not found.")
	}
	if !hasContentType(r, "application/x-www-form-urlencoded") || r.ParseForm() != nil {
		return entraFailure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "AADSTS900144", "The request body must contain the following parameter: 'grant_type'.")
	}
	form := r.PostForm
	if form.Get("grant_type") != "client_credentials" {
		return entraFailure(http.StatusBadRequest, OutcomeRejected, "unsupported_grant_type", "AADSTS70003", "The app requested an unsupported grant type.")
	}
	if form.Get("client_id") != f.ClientID {
		return entraFailure(http.StatusBadRequest, OutcomeUnauthorized, "unauthorized_client", "AADSTS700016", "Application was not found in the directory.")
	}
	if !strings.HasSuffix(form.Get("scope"), "/.default") {
		return entraFailure(http.StatusBadRequest, OutcomeRejected, "invalid_scope", "AADSTS1002012", "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.")
	}
	if form.Get("client_assertion_type") != clientAssertionType || form.Has("client_secret") {
		return entraFailure(http.StatusBadRequest, OutcomeRejected, "invalid_request", "AADSTS7000218", "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	}
	if assertion := form.Get("client_assertion"); f.federated(assertion) {
		if aadsts, problem := f.checkFederated(assertion); problem != "" {
			return entraFailure(http.StatusBadRequest, OutcomeUnauthorized, "invalid_client", aadsts, problem)
		}
	} else if problem := f.checkAssertion(assertion); problem != "" {
		return entraFailure(http.StatusUnauthorized, OutcomeUnauthorized, "invalid_client", "AADSTS700027", problem)
	}
	now := f.now()
	lifetime := f.lifetime(time.Hour)
	issued := IssuedToken{Value: randomToken("eyJ0eXAiOiJKV1Qi.", 40), IssuedAt: now, ExpiresAt: now.Add(lifetime),
		Request: map[string]any{"scope": form.Get("scope")}}
	f.record(issued)
	seconds := int64(lifetime / time.Second)
	return reply{status: http.StatusOK, outcome: OutcomeIssued, body: map[string]any{
		"token_type": "Bearer", "expires_in": seconds, "ext_expires_in": seconds, "access_token": issued.Value,
	}}
}

// checkAssertion returns why a client assertion is refused, or "".
func (f *EntraID) checkAssertion(raw string) string {
	f.rememberCredential(raw)
	now := f.now()
	sum := sha256.Sum256(f.Certificate.Raw)
	thumbprint := base64.RawURLEncoding.EncodeToString(sum[:])
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"RS256", "PS256"}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
			if t.Header["x5t#S256"] != thumbprint {
				return nil, jwt.ErrTokenUnverifiable
			}
			return f.Certificate.PublicKey, nil
		})
	if err != nil {
		return "Client assertion failed signature validation."
	}
	if iss, _ := claims.GetIssuer(); iss != f.ClientID {
		return "Client assertion contains an invalid issuer."
	}
	if sub, _ := claims.GetSubject(); sub != f.ClientID {
		return "Client assertion contains an invalid subject."
	}
	if aud, _ := claims.GetAudience(); !slices.Contains(aud, f.Audience) {
		return "Client assertion audience claim does not match Realm issuer."
	}
	nbf, err1 := claims.GetNotBefore()
	exp, err2 := claims.GetExpirationTime()
	if err1 != nil || err2 != nil || nbf == nil || exp == nil || nbf.After(now.Add(5*time.Minute)) || !exp.After(now) || exp.Sub(nbf.Time) > time.Hour {
		return "Client assertion is not within its valid time range."
	}
	jti, _ := claims["jti"].(string)
	f.mu.Lock()
	defer f.mu.Unlock()
	if jti == "" || f.jtis[jti] {
		return "The jti claim of the client assertion was already used, or is missing."
	}
	f.jtis[jti] = true
	return ""
}

// federated reports whether an assertion is an external token for a
// federated credential: its iss is not the application's client id.
func (f *EntraID) federated(raw string) bool {
	if len(f.Federated) == 0 {
		return false
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {
		return false
	}
	iss, _ := claims.GetIssuer()
	return iss != f.ClientID
}

// checkFederated returns the AADSTS code and description of a refused
// federated assertion, or "" and "" when a federated credential matches.
func (f *EntraID) checkFederated(raw string) (string, string) {
	f.rememberCredential(raw)
	now := f.now()
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"RS256", "ES256"}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
			iss, _ := t.Claims.GetIssuer()
			if key, ok := f.IssuerKeys[iss]; ok {
				return key, nil
			}
			return nil, jwt.ErrTokenUnverifiable
		})
	if err != nil {
		return "AADSTS50166", "Request to External OIDC endpoint failed, or the assertion's signature does not verify with the issuer's keys."
	}
	iss, _ := claims.GetIssuer()
	sub, _ := claims.GetSubject()
	aud, _ := claims.GetAudience()
	exp, _ := claims.GetExpirationTime()
	if exp == nil || !exp.After(now) {
		return "AADSTS700024", "Client assertion is not within its valid time range."
	}
	byIssuer := slices.ContainsFunc(f.Federated, func(c FederatedCredential) bool { return c.Issuer == iss })
	if !byIssuer {
		return "AADSTS700211", "No matching federated identity record found for presented assertion issuer '" + iss + "'."
	}
	bySubject := slices.ContainsFunc(f.Federated, func(c FederatedCredential) bool { return c.Issuer == iss && c.Subject == sub })
	if !bySubject {
		return "AADSTS700213", "No matching federated identity record found for presented assertion subject '" + sub +
			"'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."
	}
	if !slices.ContainsFunc(f.Federated, func(c FederatedCredential) bool {
		return c.Issuer == iss && c.Subject == sub && slices.Contains(aud, c.Audience)
	}) {
		return "AADSTS700212", "No matching federated identity record found for presented assertion audience '" + strings.Join(aud, ",") + "'."
	}
	return "", ""
}
