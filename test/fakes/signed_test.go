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
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	clocktesting "k8s.io/utils/clock/testing"
)

var (
	signingKey, _ = rsa.GenerateKey(rand.Reader, 2048)
	otherKey, _   = rsa.GenerateKey(rand.Reader, 2048)
)

// signed is a JWT of claims signed with key by method, with extra headers.
func signed(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims, headers map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range headers {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGitHubAppsVerifyTheAppJWT(t *testing.T) {
	f := NewGitHubApps("Iv23liCLIENT", "42", "99", &signingKey.PublicKey)
	f.Clock = clocktesting.NewFakeClock(fakeNow)
	now := fakeNow.Unix()
	jwtOf := func(key *rsa.PrivateKey, method jwt.SigningMethod, claims jwt.MapClaims) map[string]string {
		return jsonHeaders("Authorization", "Bearer "+signed(t, method, key, claims, nil))
	}
	good := jwt.MapClaims{"iss": "Iv23liCLIENT", "iat": now - 60, "exp": now + 540}
	path := GitHubInstallationTokenPath("99")
	run(t, f, []exchange{
		{name: "client id as iss", path: path, header: jwtOf(signingKey, jwt.SigningMethodRS256, good), status: 201,
			want: map[string]any{"repository_selection": "all"}},
		{name: "app id as iss, selected repositories", path: path, body: `{"repositories":["docs"]}`,
			header: jwtOf(signingKey, jwt.SigningMethodRS256, jwt.MapClaims{"iss": 42, "iat": now, "exp": now + 600}), status: 201,
			want: map[string]any{"repository_selection": "selected"}},
		{name: "no JWT", path: path, header: jsonHeaders(), status: 401},
		{name: "another key", path: path, header: jwtOf(otherKey, jwt.SigningMethodRS256, good), status: 401},
		{name: "PS256", path: path, header: jwtOf(signingKey, jwt.SigningMethodPS256, good), status: 401},
		{name: "another app", path: path, header: jwtOf(signingKey, jwt.SigningMethodRS256, jwt.MapClaims{"iss": "Iv23liOTHER", "iat": now, "exp": now + 60}), status: 401},
		{name: "exp beyond 10 minutes", path: path, header: jwtOf(signingKey, jwt.SigningMethodRS256, jwt.MapClaims{"iss": "42", "iat": now, "exp": now + 660}), status: 401},
		{name: "expired", path: path, header: jwtOf(signingKey, jwt.SigningMethodRS256, jwt.MapClaims{"iss": "42", "iat": now - 700, "exp": now - 100}), status: 401},
		{name: "iat in the future", path: path, header: jwtOf(signingKey, jwt.SigningMethodRS256, jwt.MapClaims{"iss": "42", "iat": now + 300, "exp": now + 500}), status: 401},
		{name: "no exp", path: path, header: jwtOf(signingKey, jwt.SigningMethodRS256, jwt.MapClaims{"iss": "42", "iat": now}), status: 401},
		{name: "another installation", path: GitHubInstallationTokenPath("100"), header: jwtOf(signingKey, jwt.SigningMethodRS256, good), status: 404},
		{name: "permissions within the installation's", path: path, body: `{"permissions":{"contents":"read","issues":"write"}}`,
			header: jwtOf(signingKey, jwt.SigningMethodRS256, good), status: 201},
		{name: "a permission the installation lacks", path: path, body: `{"permissions":{"administration":"read"}}`,
			header: jwtOf(signingKey, jwt.SigningMethodRS256, good), status: 422},
		{name: "a permission above its level", path: path, body: `{"permissions":{"metadata":"write"}}`,
			header: jwtOf(signingKey, jwt.SigningMethodRS256, good), status: 422},
		{name: "an unknown level", path: path, body: `{"permissions":{"contents":"all"}}`,
			header: jwtOf(signingKey, jwt.SigningMethodRS256, good), status: 422},
		{name: "a repository outside the installation", path: path, body: `{"repositories":["secret-repo"]}`,
			header: jwtOf(signingKey, jwt.SigningMethodRS256, good), status: 422},
		{name: "an unknown body field", path: path, body: `{"repos":["docs"]}`,
			header: jwtOf(signingKey, jwt.SigningMethodRS256, good), status: 422},
	})
	if n := len(f.CredentialsReceived()); n != 15 {
		t.Errorf("%d app JWTs remembered for the leak checks, want 15 (every request that carried one to a known installation)", n)
	}
}

func TestGoogleServiceAccountsVerifyTheAssertion(t *testing.T) {
	f := NewGoogleServiceAccounts("robot@p.iam.gserviceaccount.com", "kid-1", &signingKey.PublicKey)
	f.Clock = clocktesting.NewFakeClock(fakeNow)
	now := fakeNow.Unix()
	form := func(assertion string) string {
		return url.Values{"grant_type": {jwtBearerGrant}, "assertion": {assertion}}.Encode()
	}
	headers := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "robot@p.iam.gserviceaccount.com", "aud": GoogleTokenAudience, "scope": "a b", "iat": now, "exp": now + 3600}
		if change != nil {
			change(c)
		}
		return c
	}
	kid := map[string]any{"kid": "kid-1"}
	run(t, f, []exchange{
		{name: "a good assertion", path: GoogleTokenPath, header: headers, body: form(signed(t, jwt.SigningMethodRS256, signingKey, claims(nil), kid)),
			status: 200, want: map[string]any{"token_type": "Bearer", "expires_in": 3600}},
		{name: "another key id", path: GoogleTokenPath, header: headers, body: form(signed(t, jwt.SigningMethodRS256, signingKey, claims(nil), map[string]any{"kid": "kid-2"})), status: 400},
		{name: "another key", path: GoogleTokenPath, header: headers, body: form(signed(t, jwt.SigningMethodRS256, otherKey, claims(nil), kid)), status: 400},
		{name: "another audience", path: GoogleTokenPath, header: headers,
			body: form(signed(t, jwt.SigningMethodRS256, signingKey, claims(func(c jwt.MapClaims) { c["aud"] = "https://example.com/token" }), kid)), status: 400},
		{name: "no scope", path: GoogleTokenPath, header: headers,
			body: form(signed(t, jwt.SigningMethodRS256, signingKey, claims(func(c jwt.MapClaims) { delete(c, "scope") }), kid)), status: 400},
		{name: "longer than an hour", path: GoogleTokenPath, header: headers,
			body: form(signed(t, jwt.SigningMethodRS256, signingKey, claims(func(c jwt.MapClaims) { c["exp"] = now + 3601 }), kid)), status: 400},
		{name: "another grant", path: GoogleTokenPath, header: headers, body: url.Values{"grant_type": {"client_credentials"}}.Encode(), status: 400},
	})
}

func TestEntraIDVerifiesTheClientAssertion(t *testing.T) {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Unix(0, 0), NotAfter: time.Unix(4_000_000_000, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &signingKey.PublicKey, signingKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	f := NewEntraID("tenant", "client", cert)
	f.Clock = clocktesting.NewFakeClock(fakeNow)
	now := fakeNow.Unix()
	sum := sha256.Sum256(der)
	x5t := map[string]any{"x5t#S256": base64.RawURLEncoding.EncodeToString(sum[:])}
	claims := func(jti string, change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "client", "sub": "client", "aud": f.Audience, "jti": jti, "nbf": now, "iat": now, "exp": now + 600}
		if change != nil {
			change(c)
		}
		return c
	}
	form := func(assertion string, scope string) string {
		return url.Values{"client_id": {"client"}, "scope": {scope}, "grant_type": {"client_credentials"},
			"client_assertion_type": {clientAssertionType}, "client_assertion": {assertion}}.Encode()
	}
	headers := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	first := signed(t, jwt.SigningMethodPS256, signingKey, claims("one", nil), x5t)
	path := EntraTokenPath("tenant")
	run(t, f, []exchange{
		{name: "a good assertion", path: path, header: headers, body: form(first, "https://graph.microsoft.com/.default"), status: 200,
			want: map[string]any{"token_type": "Bearer"}},
		{name: "the same jti again", path: path, header: headers, body: form(first, "https://graph.microsoft.com/.default"), status: 401},
		{name: "no thumbprint", path: path, header: headers, body: form(signed(t, jwt.SigningMethodPS256, signingKey, claims("two", nil), nil), "x/.default"), status: 401},
		{name: "another key", path: path, header: headers, body: form(signed(t, jwt.SigningMethodPS256, otherKey, claims("three", nil), x5t), "x/.default"), status: 401},
		{name: "no nbf", path: path, header: headers,
			body: form(signed(t, jwt.SigningMethodPS256, signingKey, claims("four", func(c jwt.MapClaims) { delete(c, "nbf") }), x5t), "x/.default"), status: 401},
		{name: "another audience", path: path, header: headers,
			body: form(signed(t, jwt.SigningMethodPS256, signingKey, claims("five", func(c jwt.MapClaims) { c["aud"] = "https://example.com" }), x5t), "x/.default"), status: 401},
		{name: "iss is not the client", path: path, header: headers,
			body: form(signed(t, jwt.SigningMethodPS256, signingKey, claims("six", func(c jwt.MapClaims) { c["iss"] = "other" }), x5t), "x/.default"), status: 401},
		{name: "a scope without /.default", path: path, header: headers, body: form(signed(t, jwt.SigningMethodPS256, signingKey, claims("seven", nil), x5t), "User.Read"), status: 400},
		{name: "no jti", path: path, header: headers, body: form(signed(t, jwt.SigningMethodPS256, signingKey, claims("", nil), x5t), "x/.default"), status: 401},
	})
}

func TestOAuth2ServerVerifiesClientAssertions(t *testing.T) {
	const token = "/oauth2/default/v1/token"
	f := &OAuth2Server{TokenPath: token, AssertionKeys: map[string]crypto.PublicKey{"client": &signingKey.PublicKey},
		Audience: "https://idp.example.com" + token}
	f.Clock = clocktesting.NewFakeClock(fakeNow)
	now := fakeNow.Unix()
	claims := func(jti string, change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "client", "sub": "client", "aud": f.Audience, "jti": jti, "iat": now, "exp": now + 300}
		if change != nil {
			change(c)
		}
		return c
	}
	form := func(assertion string) string {
		return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {clientAssertionType}, "client_assertion": {assertion}}.Encode()
	}
	headers := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	first := signed(t, jwt.SigningMethodRS256, signingKey, claims("1", nil), nil)
	run(t, f, []exchange{
		{name: "a good assertion", path: token, header: headers, body: form(first), status: 200, want: map[string]any{"token_type": "Bearer"}},
		{name: "the same jti again", path: token, header: headers, body: form(first), status: 401},
		{name: "another key", path: token, header: headers, body: form(signed(t, jwt.SigningMethodRS256, otherKey, claims("2", nil), nil)), status: 401},
		{name: "sub is not iss", path: token, header: headers,
			body: form(signed(t, jwt.SigningMethodRS256, signingKey, claims("3", func(c jwt.MapClaims) { c["sub"] = "other" }), nil)), status: 401},
		{name: "another audience", path: token, header: headers,
			body: form(signed(t, jwt.SigningMethodRS256, signingKey, claims("4", func(c jwt.MapClaims) { c["aud"] = "https://idp.example.com" }), nil)), status: 401},
		{name: "exp more than an hour ahead", path: token, header: headers,
			body: form(signed(t, jwt.SigningMethodRS256, signingKey, claims("5", func(c jwt.MapClaims) { c["exp"] = now + 3700 }), nil)), status: 401},
		{name: "no jti", path: token, header: headers, body: form(signed(t, jwt.SigningMethodRS256, signingKey, claims("", nil), nil)), status: 401},
		{name: "an assertion and a secret", path: token, header: headers,
			body: form(signed(t, jwt.SigningMethodRS256, signingKey, claims("6", nil), nil)) + "&client_secret=x", status: 400},
		{name: "HS256 with the public key as secret", path: token, header: headers,
			body: form(signed(t, jwt.SigningMethodHS256, []byte("secret"), claims("7", nil), nil)), status: 401},
	})
}

func TestAppStoreConnectVerifiesTheTeamsJWT(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := NewAppStoreConnect("69a6de70-aaaa-47e3-e053-5b8c7c11a4d1", "2X9R4HXF34", &ecKey.PublicKey)
	f.Clock = clocktesting.NewFakeClock(fakeNow)
	now := fakeNow.Unix()
	good := jwt.MapClaims{"iss": "69a6de70-aaaa-47e3-e053-5b8c7c11a4d1", "iat": now, "exp": now + 1200, "aud": AppStoreConnectAudience}
	with := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range good {
			c[k] = v
		}
		change(c)
		return c
	}
	bearer := func(method jwt.SigningMethod, key any, claims jwt.MapClaims, kid string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + signed(t, method, key, claims, map[string]any{"kid": kid})}
	}
	get := func(name string, header map[string]string, status int) exchange {
		return exchange{name: name, method: http.MethodGet, path: "/v1/apps", header: header, status: status}
	}
	run(t, f, []exchange{
		get("a valid token", bearer(jwt.SigningMethodES256, ecKey, good, "2X9R4HXF34"), 200),
		get("no token", nil, 401),
		get("an unknown kid", bearer(jwt.SigningMethodES256, ecKey, good, "OTHERKEYID"), 401),
		get("another key", bearer(jwt.SigningMethodES256, otherEC, good, "2X9R4HXF34"), 401),
		get("RS256", bearer(jwt.SigningMethodRS256, signingKey, good, "2X9R4HXF34"), 401),
		get("another issuer", bearer(jwt.SigningMethodES256, ecKey, with(func(c jwt.MapClaims) { c["iss"] = "other" }), "2X9R4HXF34"), 401),
		get("another audience", bearer(jwt.SigningMethodES256, ecKey, with(func(c jwt.MapClaims) { c["aud"] = "appstoreconnect-v2" }), "2X9R4HXF34"), 401),
		get("a lifetime of 21 minutes", bearer(jwt.SigningMethodES256, ecKey, with(func(c jwt.MapClaims) { c["exp"] = now + 1260 }), "2X9R4HXF34"), 401),
		get("expired", bearer(jwt.SigningMethodES256, ecKey, with(func(c jwt.MapClaims) { c["iat"], c["exp"] = now-1300, now-100 }), "2X9R4HXF34"), 401),
		get("no iat", bearer(jwt.SigningMethodES256, ecKey, with(func(c jwt.MapClaims) { delete(c, "iat") }), "2X9R4HXF34"), 401),
		{name: "another path", method: http.MethodGet, path: "/v1/builds", header: bearer(jwt.SigningMethodES256, ecKey, good, "2X9R4HXF34"), status: 404},
	})
	if got := len(f.Accepted()); got != 1 {
		t.Errorf("accepted %d tokens, want 1", got)
	}
}

func TestVaultKubernetesAuthLogsInReviewedServiceAccounts(t *testing.T) {
	f := &VaultKubernetesAuth{
		Roles: map[string]VaultRole{"billing": {BoundServiceAccountNames: []string{"billing"}, BoundServiceAccountNamespaces: []string{"team-a"},
			Audience: "vault", TokenTTL: time.Hour}},
		Verify: func(token, audience string) (string, string, bool) {
			if audience != "vault" {
				return "", "", false
			}
			ns, name, ok := strings.Cut(token, "/")
			return ns, name, ok
		},
	}
	f.Clock = clocktesting.NewFakeClock(fakeNow)
	login := func(name, body string, status int) exchange {
		return exchange{name: name, path: VaultKubernetesLoginPath, body: body, header: jsonHeaders(), status: status}
	}
	run(t, f, []exchange{
		login("the bound ServiceAccount", `{"role":"billing","jwt":"team-a/billing"}`, 200),
		login("no role", `{"jwt":"team-a/billing"}`, 400),
		login("no jwt", `{"role":"billing"}`, 400),
		login("an unknown role", `{"role":"admin","jwt":"team-a/billing"}`, 400),
		login("a token Vault does not accept", `{"role":"billing","jwt":"garbage"}`, 403),
		login("another ServiceAccount", `{"role":"billing","jwt":"team-a/default"}`, 403),
		login("another namespace", `{"role":"billing","jwt":"team-b/billing"}`, 403),
		login("not JSON", `role=billing`, 400),
	})
	issued := f.Issued()
	if len(issued) != 1 || !issued[0].ExpiresAt.Equal(fakeNow.Add(time.Hour)) || !strings.HasPrefix(issued[0].Value, "hvs.") {
		t.Fatalf("issued %+v", issued)
	}
	run(t, f, []exchange{
		{name: "revoke without a token", path: VaultRevokeSelfPath, status: 403},
		{name: "revoke-self", path: VaultRevokeSelfPath, header: map[string]string{"X-Vault-Token": issued[0].Value}, status: 204},
		{name: "revoke-self again", path: VaultRevokeSelfPath, header: map[string]string{"X-Vault-Token": issued[0].Value}, status: 403},
	})
	if f.Valid(issued[0].Value) {
		t.Error("the token is still valid after revoke-self")
	}
}

func TestSnowflakeVerifiesTheKeyPairJWT(t *testing.T) {
	f := &Snowflake{Account: "MYORG-ACCT", User: "SVC", PublicKey: &signingKey.PublicKey}
	f.Clock = clocktesting.NewFakeClock(fakeNow)
	now := fakeNow.Unix()
	der, _ := x509.MarshalPKIXPublicKey(&signingKey.PublicKey)
	sum := sha256.Sum256(der)
	fp := "SHA256:" + base64.StdEncoding.EncodeToString(sum[:])
	good := jwt.MapClaims{"iss": "MYORG-ACCT.SVC." + fp, "sub": "MYORG-ACCT.SVC", "iat": now, "exp": now + 3540}
	with := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range good {
			c[k] = v
		}
		change(c)
		return c
	}
	call := func(name string, method jwt.SigningMethod, key any, claims jwt.MapClaims, tokenType string, status int) exchange {
		return exchange{name: name, path: SnowflakeStatementsPath, status: status, header: map[string]string{
			"Authorization": "Bearer " + signed(t, method, key, claims, nil), "X-Snowflake-Authorization-Token-Type": tokenType}}
	}
	run(t, f, []exchange{
		call("a valid token", jwt.SigningMethodRS256, signingKey, good, "KEYPAIR_JWT", 200),
		call("without the token type", jwt.SigningMethodRS256, signingKey, good, "", 401),
		call("another key", jwt.SigningMethodRS256, otherKey, good, "KEYPAIR_JWT", 401),
		call("another key's fingerprint", jwt.SigningMethodRS256, signingKey, with(func(c jwt.MapClaims) { c["iss"] = "MYORG-ACCT.SVC.SHA256:AAAA" }), "KEYPAIR_JWT", 401),
		call("a lower-case user", jwt.SigningMethodRS256, signingKey, with(func(c jwt.MapClaims) { c["sub"] = "myorg-acct.svc" }), "KEYPAIR_JWT", 401),
		call("two hours", jwt.SigningMethodRS256, signingKey, with(func(c jwt.MapClaims) { c["exp"] = now + 7200 }), "KEYPAIR_JWT", 401),
		call("PS256", jwt.SigningMethodPS256, signingKey, good, "KEYPAIR_JWT", 401),
	})
	if len(f.Accepted()) != 1 {
		t.Errorf("accepted %d tokens, want 1", len(f.Accepted()))
	}
}

func TestVaultDatabaseLeases(t *testing.T) {
	clock := clocktesting.NewFakeClock(fakeNow)
	f := &VaultKubernetesAuth{
		Roles: map[string]VaultRole{"app": {BoundServiceAccountNames: []string{"app"}, BoundServiceAccountNamespaces: []string{"default"},
			TokenTTL: 90 * time.Minute}},
		Verify:        func(token, _ string) (string, string, bool) { return "default", "app", token == "sa" },
		DatabaseRoles: map[string]VaultDatabaseRole{"app": {DefaultTTL: 5 * time.Minute, MaxTTL: time.Hour}},
	}
	f.Clock = clock
	run(t, f, []exchange{{name: "login", path: VaultKubernetesLoginPath, body: `{"role":"app","jwt":"sa"}`, header: jsonHeaders(), status: 200}})
	vaultToken := f.Issued()[0].Value
	withToken := jsonHeaders("X-Vault-Token", vaultToken)
	run(t, f, []exchange{
		{name: "read without a token", method: http.MethodGet, path: VaultDatabaseCredsPrefix + "app", status: 403, want: map[string]any{"errors": []string{"permission denied"}}},
		{name: "read with a wrong token", method: http.MethodGet, path: VaultDatabaseCredsPrefix + "app", header: jsonHeaders("X-Vault-Token", "hvs.nope"), status: 403},
		{name: "an unknown role", method: http.MethodGet, path: VaultDatabaseCredsPrefix + "admin", header: withToken, status: 400, want: map[string]any{"errors": []string{"unknown role: admin"}}},
		{name: "read", method: http.MethodGet, path: VaultDatabaseCredsPrefix + "app", header: withToken, status: 200,
			want: map[string]any{"lease_duration": 300, "renewable": true}},
	})
	lease := f.Leases()[0]
	if !strings.HasPrefix(lease.ID, "database/creds/app/") || !f.LeaseLive(lease.Password) || f.Reads() != 1 {
		t.Fatalf("lease %+v, reads %d", lease, f.Reads())
	}
	renew := func(name, id string, increment int, header map[string]string, status int, want map[string]any) exchange {
		return exchange{name: name, method: http.MethodPut, path: VaultLeaseRenewPath, header: header,
			body: fmt.Sprintf(`{"lease_id":%q,"increment":%d}`, id, increment), status: status, want: want}
	}
	clock.Step(200 * time.Second)
	run(t, f, []exchange{
		renew("renew without a token", lease.ID, 300, jsonHeaders(), 403, nil),
		renew("renew an unknown lease", "database/creds/app/nope", 300, withToken, 400, map[string]any{"errors": []string{"lease not found"}}),
		renew("renew", lease.ID, 300, withToken, 200, map[string]any{"lease_id": lease.ID, "lease_duration": 300, "data": nil}),
	})
	if got := f.Leases()[0].ExpiresAt; !got.Equal(fakeNow.Add(500 * time.Second)) {
		t.Errorf("renewed to %v, want 300s after the renewal", got)
	}
	// Renewed every 200s; near the max TTL a renewal is capped, with a warning.
	for clock.Now().Before(fakeNow.Add(3200 * time.Second)) {
		clock.Step(200 * time.Second)
		if status, body, _ := send(f, renew("", lease.ID, 300, withToken, 200, nil)); status != 200 || fmt.Sprint(body["lease_duration"]) != "300" {
			t.Fatalf("renewal at %v: %d %v", clock.Now().Sub(fakeNow), status, body)
		}
	}
	clock.Step(200 * time.Second)
	status, body, _ := send(f, renew("capped", lease.ID, 300, withToken, 200, nil))
	if status != 200 || fmt.Sprint(body["lease_duration"]) != "200" || fmt.Sprint(body["warnings"]) == "[]" {
		t.Errorf("capped renewal: %d %v", status, body)
	}
	// Expired: not found.
	clock.Step(201 * time.Second)
	run(t, f, []exchange{renew("renew an expired lease", lease.ID, 300, withToken, 400, map[string]any{"errors": []string{"lease not found"}})})
	if f.LeaseLive(lease.Password) || len(f.LiveLeases()) != 0 {
		t.Error("an expired lease is live")
	}

	// A new lease, revoked: renewing it is refused; revoking is idempotent.
	renewals := f.Renewals()
	run(t, f, []exchange{{name: "read again", method: http.MethodGet, path: VaultDatabaseCredsPrefix + "app", header: withToken, status: 200}})
	second := f.Leases()[1]
	revoke := exchange{name: "revoke", method: http.MethodPut, path: VaultLeaseRevokePath, header: withToken,
		body: fmt.Sprintf(`{"lease_id":%q}`, second.ID), status: 204}
	run(t, f, []exchange{
		{name: "revoke without a token", method: http.MethodPut, path: VaultLeaseRevokePath, body: fmt.Sprintf(`{"lease_id":%q}`, second.ID), status: 403},
		revoke,
		renew("renew a revoked lease", second.ID, 300, withToken, 400, map[string]any{"errors": []string{"lease not found"}}),
	})
	revoke.name = "revoke again"
	run(t, f, []exchange{revoke})
	if f.LeaseLive(second.Password) || f.Revocations() != 2 || f.Renewals() != renewals || renewals != 17 {
		t.Errorf("live %v, revocations %d, renewals %d", f.LeaseLive(second.Password), f.Revocations(), f.Renewals())
	}

	// A lease ends with the token that created it; an expired token is refused.
	run(t, f, []exchange{{name: "read a third", method: http.MethodGet, path: VaultDatabaseCredsPrefix + "app", header: withToken, status: 200}})
	third := f.Leases()[2]
	clock.SetTime(f.Issued()[0].ExpiresAt)
	if f.LeaseLive(third.Password) {
		t.Error("a lease outlived its token")
	}
	run(t, f, []exchange{{name: "read with an expired token", method: http.MethodGet, path: VaultDatabaseCredsPrefix + "app", header: withToken,
		status: 403, want: map[string]any{"errors": []string{"permission denied"}}}})
}
