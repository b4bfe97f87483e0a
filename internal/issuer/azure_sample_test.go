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
	"crypto"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
)

const clusterIssuer = "https://oidc.example.com/clusters/prod"

// federatedJWT is a ServiceAccount token as a cluster with the given issuer signs it.
func federatedJWT(t *testing.T, issuer, subject, audience string, exp time.Time) string {
	t.Helper()
	signed, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": issuer, "sub": subject, "aud": []string{audience}, "exp": exp.Unix(), "iat": exp.Add(-10 * time.Minute).Unix(),
	}).SignedString(testRSAKey)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func TestSampleAzureWorkloadIdentity(t *testing.T) {
	fake := fakes.NewEntraID("11111111-2222-3333-4444-555555555555", "00001111-aaaa-2222-bbbb-3333cccc4444", testCertificate())
	fake.Federated = []fakes.FederatedCredential{{Issuer: clusterIssuer,
		Subject: "system:serviceaccount:default:orders-api", Audience: "api://AzureADTokenExchange"}}
	fake.IssuerKeys = map[string]crypto.PublicKey{clusterIssuer: &testRSAKey.PublicKey}
	run := startSample(t, "azure-workload-identity.yaml", fake, &fake.Base)
	sa := *FindCredential(run.call.Spec, "service-account-token").ServiceAccountToken
	if sa.Audience != "api://AzureADTokenExchange" || sa.ServiceAccountName != "orders-api" {
		t.Fatalf("ServiceAccount token source %+v", sa)
	}
	exp := run.clock.Now().Add(10 * time.Minute)
	withToken := func(token string) Call {
		call := run.call
		call.ServiceAccountTokens = map[v1alpha1.ServiceAccountTokenSource]string{sa: token}
		return call
	}

	good := federatedJWT(t, clusterIssuer, "system:serviceaccount:default:orders-api", "api://AzureADTokenExchange", exp)
	token, err := run.engine.Issue(context.Background(), withToken(good))
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if !fake.Valid(token.Value) {
		t.Fatalf("token %q is not one the fake issued", token.Value)
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, run.clock.Now().Add(time.Hour))
	if got := fake.Issued()[0].Request["scope"]; got != "https://management.azure.com/.default" {
		t.Errorf("scope sent: %v", got)
	}

	for _, tt := range []struct {
		name, token, aadsts string
	}{
		{"another ServiceAccount", federatedJWT(t, clusterIssuer, "system:serviceaccount:default:someone-else", "api://AzureADTokenExchange", exp), "AADSTS700213"},
		{"another audience", federatedJWT(t, clusterIssuer, "system:serviceaccount:default:orders-api", "https://kubernetes.default.svc", exp), "AADSTS700212"},
		{"another cluster", federatedJWT(t, "https://oidc.example.com/clusters/dev", "system:serviceaccount:default:orders-api", "api://AzureADTokenExchange", exp), "AADSTS50166"},
		{"an expired token", federatedJWT(t, clusterIssuer, "system:serviceaccount:default:orders-api", "api://AzureADTokenExchange", run.clock.Now().Add(-time.Minute)), "AADSTS700024"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := fake.Calls()
			_, err := run.engine.Issue(context.Background(), withToken(tt.token))
			e := asError(t, err)
			if e.Class != ClassPermanent || e.Code != "invalid_client" || !strings.Contains(err.Error(), tt.aadsts) {
				t.Errorf("error %q (class %s, code %q), want Permanent invalid_client with %s", err, e.Class, e.Code, tt.aadsts)
			}
			if strings.Contains(err.Error(), tt.token) {
				t.Errorf("the ServiceAccount token leaked into %q", err)
			}
			if fake.Calls()-calls != 1 {
				t.Errorf("%d calls, want 1", fake.Calls()-calls)
			}
		})
	}
}
