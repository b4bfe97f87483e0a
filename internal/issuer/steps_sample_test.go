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
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
)

const googlePoolProvider = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/my-pool/providers/my-cluster"

func TestSampleGoogleWorkloadIdentityImpersonation(t *testing.T) {
	fake := &fakes.GoogleWorkloadIdentity{Audience: googlePoolProvider,
		Subjects:        []string{"system:serviceaccount:default:orders-api"},
		ServiceAccounts: []string{"orders@my-project.iam.gserviceaccount.com"}}
	fake.Verify = func(token string) (string, bool) {
		return "system:serviceaccount:default:orders-api", token == "sa-token-canary"
	}
	run := startSample(t, "google-workload-identity-impersonation.yaml", fake, &fake.Base)
	sa := *FindCredential(run.call.Spec, "kubernetes").ServiceAccountToken
	if sa.Audience != "https:"+googlePoolProvider {
		t.Errorf("the ServiceAccount token's audience %q is not the pool provider's default allowed audience", sa.Audience)
	}
	run.call.ServiceAccountTokens = map[v1alpha1.ServiceAccountTokenSource]string{sa: "sa-token-canary"}
	run.call.StepScope = "TokenIssuer/default/google-orders/uid|default"
	run.call.Parameters = map[string]apiextensionsv1.JSON{"lifetime": raw(`"900s"`)}
	start := run.clock.Now()

	// A one-hour federated token serves four 15-minute service account tokens.
	for i := range 4 {
		token := run.issue(t)
		if !fake.Valid(token.Value) {
			t.Fatalf("mint %d: token %q is not one generateAccessToken issued", i, token.Value)
		}
		wantTime(t, "ExpiresAt", token.ExpiresAt, run.clock.Now().Add(15*time.Minute))
		if len(token.Fields) != 0 {
			t.Errorf("fields %v: nothing of the step may reach the Secret", token.Fields)
		}
		run.clock.Step(15 * time.Minute)
	}
	if fake.STSCalls() != 1 || fake.GenerateCalls() != 4 {
		t.Fatalf("STS calls = %d, generateAccessToken calls = %d; want 1 and 4", fake.STSCalls(), fake.GenerateCalls())
	}
	// At 60m the federated token is past 80% of its life: a new exchange.
	token := run.issue(t)
	if fake.STSCalls() != 2 {
		t.Errorf("STS calls = %d after the federated token aged, want 2", fake.STSCalls())
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, run.clock.Now().Add(15*time.Minute))
	if got := fake.STSTokens()[1].IssuedAt; !got.Equal(start.Add(time.Hour)) {
		t.Errorf("second exchange at %v", got)
	}

	// Other parameters need their own exchange; and the final token cannot
	// outlive the federated token it was minted with.
	fake.SetLifetime(30 * time.Minute)
	run.call.Parameters = map[string]apiextensionsv1.JSON{"lifetime": raw(`"3600s"`)}
	token = run.issue(t)
	if fake.STSCalls() != 3 {
		t.Errorf("STS calls = %d after the parameters changed, want 3", fake.STSCalls())
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, run.clock.Now().Add(30*time.Minute))
}

func TestSampleGoogleWorkloadIdentityStepFailure(t *testing.T) {
	fake := &fakes.GoogleWorkloadIdentity{Audience: googlePoolProvider,
		Subjects:        []string{"system:serviceaccount:default:someone-else"},
		ServiceAccounts: []string{"orders@my-project.iam.gserviceaccount.com"}}
	fake.Verify = func(token string) (string, bool) {
		return "system:serviceaccount:default:orders-api", token == "sa-token-canary"
	}
	run := startSample(t, "google-workload-identity-impersonation.yaml", fake, &fake.Base)
	sa := *FindCredential(run.call.Spec, "kubernetes").ServiceAccountToken
	run.call.ServiceAccountTokens = map[v1alpha1.ServiceAccountTokenSource]string{sa: "sa-token-canary"}
	_, err := run.engine.Issue(context.Background(), run.call)
	e := asError(t, err)
	if !strings.HasPrefix(err.Error(), "step sts: ") || e.Code != "invalid_grant" || e.Class != ClassPermanent {
		t.Errorf("error %q (class %s, code %q), want step sts: invalid_grant, Permanent by the OAuth2 preset", err, e.Class, e.Code)
	}
	if fake.GenerateCalls() != 0 {
		t.Errorf("generateAccessToken was called %d times after the exchange failed", fake.GenerateCalls())
	}
	if strings.Contains(err.Error(), "sa-token-canary") {
		t.Errorf("the subject token leaked: %q", err)
	}
}

const stsRole = "arn:aws:iam::123456789012:role/orders-api"

// serviceAccountJWT is a ServiceAccount token as the TokenRequest API makes
// one: an RS256 JWT for audience, expiring in ten minutes.
func serviceAccountJWT(t *testing.T, audience string, now time.Time) string {
	t.Helper()
	token, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:default:orders-api",
		"aud": []string{audience}, "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}).SignedString(testRSAKey)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestSampleAWSSTSWebIdentity(t *testing.T) {
	fake := &fakes.AWSSTS{Roles: []string{stsRole}}
	run := startSample(t, "aws-sts-web-identity.yaml", fake, &fake.Base)
	sa := *FindCredential(run.call.Spec, "kubernetes").ServiceAccountToken
	if sa.Audience != fakes.STSAudience {
		t.Errorf("the ServiceAccount token's audience %q is not STS's", sa.Audience)
	}
	saToken := serviceAccountJWT(t, sa.Audience, run.clock.Now())
	run.call.ServiceAccountTokens = map[v1alpha1.ServiceAccountTokenSource]string{sa: saToken}
	if key := run.token.Spec.Secret.Key; key != "AWS_SESSION_TOKEN" {
		t.Errorf("the token is written under %q", key)
	}

	token := run.issue(t)
	issued := fake.Issued()
	if fake.Calls() != 1 || fake.AssumeRoleCalls() != 1 || len(issued) != 1 {
		t.Fatalf("calls %d, issued %d; want one", fake.Calls(), len(issued))
	}
	if !fake.Valid(token.Value) {
		t.Errorf("the token is not the session token STS issued")
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, run.clock.Now().Add(time.Hour))
	wantFields(t, token.Fields, map[string]string{
		"AWS_ACCESS_KEY_ID":     issued[0].Request["accessKeyId"].(string),
		"AWS_SECRET_ACCESS_KEY": issued[0].Secrets[0],
	})
	if issued[0].Request["roleSessionName"] != "tokenmint-orders-api" || issued[0].Request["subject"] != "system:serviceaccount:default:orders-api" {
		t.Errorf("request %v", issued[0].Request)
	}

	// DurationSeconds travels: a 15-minute session.
	run.call.Parameters = map[string]apiextensionsv1.JSON{"durationSeconds": raw(`900`)}
	token = run.issue(t)
	wantTime(t, "ExpiresAt", token.ExpiresAt, run.clock.Now().Add(15*time.Minute))
	// Below STS's minimum, the parameter's own bounds refuse it before any call.
	run.call.Parameters = map[string]apiextensionsv1.JSON{"durationSeconds": raw(`899`)}
	if _, err := run.engine.Issue(context.Background(), run.call); err == nil || fake.Calls() != 2 {
		t.Errorf("DurationSeconds 899: %v after %d calls, want a refusal without a call", err, fake.Calls())
	}
}

func TestSampleAWSSTSWebIdentityRefusals(t *testing.T) {
	fake := &fakes.AWSSTS{Roles: []string{stsRole}}
	run := startSample(t, "aws-sts-web-identity.yaml", fake, &fake.Base)
	sa := *FindCredential(run.call.Spec, "kubernetes").ServiceAccountToken
	tests := []struct {
		name     string
		token    string
		class    Class
		code     string
		message  string
		mutation func(*v1alpha1.IssuerSpec)
	}{
		{name: "wrong audience", token: serviceAccountJWT(t, "https://kubernetes.default.svc", run.clock.Now()),
			class: ClassPermanent, code: "InvalidIdentityToken", message: "Incorrect token audience"},
		{name: "expired token", token: serviceAccountJWT(t, fakes.STSAudience, run.clock.Now().Add(-time.Hour)),
			class: ClassRetryable, code: "ExpiredToken"},
		{name: "not a JWT", token: "not-a-jwt", class: ClassPermanent, code: "InvalidIdentityToken"},
		{name: "a role STS does not trust for the token", token: serviceAccountJWT(t, fakes.STSAudience, run.clock.Now()),
			class: ClassPermanent, code: "AccessDenied", mutation: func(s *v1alpha1.IssuerSpec) {
				s.Request.Body.Form[2].Value = ptr("arn:aws:iam::123456789012:role/someone-else")
			}},
		{name: "a malformed session name", token: serviceAccountJWT(t, fakes.STSAudience, run.clock.Now()),
			class: ClassPermanent, code: "ValidationError", mutation: func(s *v1alpha1.IssuerSpec) {
				s.Request.Body.Form[3].Value = ptr("no spaces allowed")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call := run.call
			if tt.mutation != nil {
				spec := *run.call.Spec
				spec.Request.Body = &v1alpha1.BodySpec{Form: slices.Clone(run.call.Spec.Request.Body.Form)}
				tt.mutation(&spec)
				call.Spec = &spec
			}
			call.ServiceAccountTokens = map[v1alpha1.ServiceAccountTokenSource]string{sa: tt.token}
			_, err := run.engine.Issue(context.Background(), call)
			e := asError(t, err)
			if e.Class != tt.class || e.Code != tt.code || !strings.Contains(e.Message, tt.message) {
				t.Errorf("error %q (class %s, code %q), want %s %s %q", e, e.Class, e.Code, tt.class, tt.code, tt.message)
			}
			if strings.Contains(err.Error(), tt.token) {
				t.Errorf("the web identity token leaked: %q", err)
			}
		})
	}
	if len(fake.Issued()) != 0 {
		t.Errorf("STS issued %d sessions to refused calls", len(fake.Issued()))
	}
}
