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
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
)

var awsKeyRef = v1alpha1.SecretKeySelector{Name: "aws", Key: "AWS_SECRET_ACCESS_KEY"}
var awsSessionRef = v1alpha1.SecretKeySelector{Name: "aws", Key: "AWS_SESSION_TOKEN"}

// presignedIssuer is an awsPresignedURL issuer reading its secret (and
// session token, when session is set) from a Secret.
func presignedIssuer(id string, session bool, p v1alpha1.AWSPresignedURL) *v1alpha1.IssuerSpec {
	spec := &v1alpha1.IssuerSpec{Credentials: []v1alpha1.Credential{{Name: "secret", SecretKeyRef: &awsKeyRef}}}
	p.AccessKeyID = literal(id)
	p.SecretAccessKey = v1alpha1.ValueSource{Credential: "secret"}
	if session {
		spec.Credentials = append(spec.Credentials, v1alpha1.Credential{Name: "session", SecretKeyRef: &awsSessionRef})
		p.SessionToken = &v1alpha1.ValueSource{Credential: "session"}
	}
	spec.AWSPresignedURL = &p
	return spec
}

func issuePresigned(t *testing.T, now time.Time, spec *v1alpha1.IssuerSpec, secrets map[v1alpha1.SecretKeySelector]string, pc *ProviderClock) *Token {
	t.Helper()
	token, err := (&Engine{Clock: clocktesting.NewFakeClock(now)}).Issue(context.Background(),
		Call{Spec: spec, Secrets: secrets, ProviderClock: pc})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return token
}

// TestRDSTokenKnownGood is the signing_works vector of the AWS SDK for
// Rust's RDS auth token (the same URL the AWS CLI's generate-db-auth-token
// writes): byte for byte.
func TestRDSTokenKnownGood(t *testing.T) {
	now := time.Unix(1724709600, 0)
	spec := presignedIssuer("akid", false, v1alpha1.AWSPresignedURL{Region: "us-east-1",
		RDS: &v1alpha1.AWSRDSToken{Host: "prod-instance.us-east-1.rds.amazonaws.com", Port: 3306, User: "peccy"}})
	token := issuePresigned(t, now, spec, map[v1alpha1.SecretKeySelector]string{awsKeyRef: "secret"}, nil)
	const want = "prod-instance.us-east-1.rds.amazonaws.com:3306/?Action=connect&DBUser=peccy&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=akid%2F20240826%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20240826T220000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=dd0cba843009474347af724090233265628ace491ea17ce3eb3da098b983ad89"
	if token.Value != want {
		t.Errorf("token\n got %s\nwant %s", token.Value, want)
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, now.Add(15*time.Minute))
}

// TestRDSTokenVerified: a token with a session token is accepted by an
// independent verifier for 15 minutes, and not a second longer.
func TestRDSTokenVerified(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	spec := presignedIssuer("ASIAIOSFODNN7EXAMPLE", true, v1alpha1.AWSPresignedURL{Region: "eu-west-1",
		RDS: &v1alpha1.AWSRDSToken{Host: "orders.cluster-abc.eu-west-1.rds.amazonaws.com", Port: 5432, User: "app_user"}})
	secrets := map[v1alpha1.SecretKeySelector]string{awsKeyRef: "rds-secret", awsSessionRef: "rds/session+token=="}
	token := issuePresigned(t, now, spec, secrets, nil)
	if strings.Contains(token.Value, "://") || !strings.HasPrefix(token.Value, "orders.cluster-abc.eu-west-1.rds.amazonaws.com:5432/?Action=connect&DBUser=app_user&") {
		t.Fatalf("token %s is not host:port/?Action=connect&DBUser=... without a scheme", token.Value)
	}
	u, err := url.Parse("https://" + token.Value)
	if err != nil {
		t.Fatal(err)
	}
	verifier := fakes.SigV4Verifier{Region: "eu-west-1", Service: "rds-db",
		Keys: map[string]fakes.AWSKey{"ASIAIOSFODNN7EXAMPLE": {SecretAccessKey: "rds-secret", SessionToken: "rds/session+token=="}}}
	if _, failure := verifier.VerifyPresigned(u, http.Header{}, now.Add(15*time.Minute), 0); failure != nil {
		t.Fatalf("refused within 15 minutes: %v", failure)
	}
	if _, failure := verifier.VerifyPresigned(u, http.Header{}, now.Add(15*time.Minute+time.Second), 0); failure == nil {
		t.Fatalf("accepted after 15 minutes")
	}
	verifier.Keys["ASIAIOSFODNN7EXAMPLE"] = fakes.AWSKey{SecretAccessKey: "other", SessionToken: "rds/session+token=="}
	if _, failure := verifier.VerifyPresigned(u, http.Header{}, now, 0); failure == nil || failure.Type != "SignatureDoesNotMatch" {
		t.Fatalf("a token signed with another secret: %v", failure)
	}
}

var eksURLPattern = regexp.MustCompile(`^https://sts\.us-east-1\.amazonaws\.com/\?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20260301%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20260301T120500Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=[0-9a-f]{64}$`)

// TestEKSToken: the token is aws-iam-authenticator's: k8s-aws-v1. and the
// unpadded base64url of the pre-signed GetCallerIdentity URL, its query in
// the same order, X-Amz-Expires=60, the cluster name signed as
// x-k8s-aws-id, dated on the provider's clock, valid 14 minutes. EKS (here
// the verifier) accepts it for that cluster for 15 minutes, not for another.
func TestEKSToken(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pc := NewProviderClock(true)
	header := http.Header{"Date": {now.Add(5 * time.Minute).Format(http.TimeFormat)}}
	pc.Observe(header, now, now)
	spec := presignedIssuer("AKIAIOSFODNN7EXAMPLE", false, v1alpha1.AWSPresignedURL{Region: "us-east-1",
		EKS: &v1alpha1.AWSEKSToken{ClusterName: "prod-cluster"}})
	token := issuePresigned(t, now, spec, map[v1alpha1.SecretKeySelector]string{awsKeyRef: "eks-secret"}, pc)
	encoded, ok := strings.CutPrefix(token.Value, "k8s-aws-v1.")
	if !ok || strings.Contains(encoded, "=") {
		t.Fatalf("token %s is not k8s-aws-v1. and unpadded base64url", token.Value)
	}
	raw, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil {
		t.Fatal(err)
	}
	// X-Amz-Date is the provider's time, 5 minutes (and half a second,
	// the Date header's resolution) ahead.
	if !eksURLPattern.Match(raw) {
		t.Fatalf("URL %s is not aws-iam-authenticator's", raw)
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, now.Add(14*time.Minute))
	u, err := url.Parse(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	verifier := fakes.SigV4Verifier{Region: "us-east-1", Service: "sts",
		Keys: map[string]fakes.AWSKey{"AKIAIOSFODNN7EXAMPLE": {SecretAccessKey: "eks-secret"}}}
	cluster := http.Header{"X-K8s-Aws-Id": {"prod-cluster"}}
	providerNow := now.Add(5 * time.Minute)
	if _, failure := verifier.VerifyPresigned(u, cluster, providerNow.Add(15*time.Minute), 15*time.Minute); failure != nil {
		t.Fatalf("refused: %v", failure)
	}
	if _, failure := verifier.VerifyPresigned(u, http.Header{"X-K8s-Aws-Id": {"other-cluster"}}, providerNow, 15*time.Minute); failure == nil {
		t.Fatalf("accepted for another cluster")
	}
	if _, failure := verifier.VerifyPresigned(u, cluster, providerNow.Add(15*time.Minute+time.Second), 15*time.Minute); failure == nil {
		t.Fatalf("accepted after 15 minutes")
	}
}

func TestPresignedValidation(t *testing.T) {
	good := func() *v1alpha1.IssuerSpec {
		return presignedIssuer("AKIAIOSFODNN7EXAMPLE", false, v1alpha1.AWSPresignedURL{Region: "us-east-1",
			EKS: &v1alpha1.AWSEKSToken{ClusterName: "prod"}})
	}
	if err := Validate(good()); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if refs := SecretRefs(good()); len(refs) != 1 || refs[0] != awsKeyRef {
		t.Errorf("SecretRefs = %v, want the secret access key's", refs)
	}
	cases := []struct {
		name   string
		change func(*v1alpha1.IssuerSpec)
		want   string
	}{
		{"a literal secret", func(s *v1alpha1.IssuerSpec) { s.AWSPresignedURL.SecretAccessKey = literal("inline") }, "must be a credential"},
		{"both eks and rds", func(s *v1alpha1.IssuerSpec) {
			s.AWSPresignedURL.RDS = &v1alpha1.AWSRDSToken{Host: "db", Port: 5432, User: "u"}
		}, "exactly one of eks or rds"},
		{"a bad region", func(s *v1alpha1.IssuerSpec) { s.AWSPresignedURL.Region = "US_EAST" }, "region must be"},
		{"a step credential without the step", func(s *v1alpha1.IssuerSpec) {
			s.Credentials[0] = v1alpha1.Credential{Name: "secret", Step: &v1alpha1.StepSource{Name: "sts"}}
		}, `step "sts" is not one of the issuer's steps`},
		{"a ServiceAccount token as the secret", func(s *v1alpha1.IssuerSpec) {
			s.Credentials[0] = v1alpha1.Credential{Name: "secret", ServiceAccountToken: &v1alpha1.ServiceAccountTokenSource{ServiceAccountName: "app", Audience: "sts.amazonaws.com"}}
		}, "must be a secretKeyRef or an earlier step's value"},
		{"a revoke request", func(s *v1alpha1.IssuerSpec) {
			s.Revoke = &v1alpha1.RequestSpec{URL: "https://sts.amazonaws.com/"}
		}, "makes no call of its own"},
		{"an undeclared credential", func(s *v1alpha1.IssuerSpec) {
			s.AWSPresignedURL.SecretAccessKey = v1alpha1.ValueSource{Credential: "nope"}
		}, "not declared"},
		{"a response", func(s *v1alpha1.IssuerSpec) { s.Response.Token = "token" }, "response has no meaning"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := good()
			tc.change(spec)
			if err := Validate(spec); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestPresignedErrorsNameNoSecret: a token that cannot be made says why
// without the secret or the session token.
func TestPresignedErrorsNameNoSecret(t *testing.T) {
	spec := presignedIssuer("not an id", true, v1alpha1.AWSPresignedURL{Region: "us-east-1",
		EKS: &v1alpha1.AWSEKSToken{ClusterName: "prod"}})
	secrets := map[v1alpha1.SecretKeySelector]string{awsKeyRef: "canary-secret-81c2", awsSessionRef: "canary-session-77ab"}
	_, err := (&Engine{}).Issue(context.Background(), Call{Spec: spec, Secrets: secrets})
	if e := asError(t, err); e.Class != ClassInvalidConfig || !strings.Contains(err.Error(), "accessKeyID is not an access key id") {
		t.Fatalf("error %v, want an invalid access key id", err)
	}
	if strings.Contains(err.Error(), "canary-") {
		t.Errorf("the error %q names a credential", err)
	}
}

// presignedFromKeylessECR is the keyless ECR sample's issuer with its STS
// step, making an EKS token signed by the step's temporary credentials
// instead of calling ECR.
func presignedFromKeylessECR(t *testing.T) (*sampleRun, *fakes.AWSWebIdentityECR) {
	t.Helper()
	run, fake := startKeylessECR(t)
	spec := run.call.Spec.DeepCopy()
	creds := spec.Request.Auth.AWSSigV4.AWSCredentials
	spec.Request, spec.Response = v1alpha1.RequestSpec{}, v1alpha1.ResponseSpec{}
	spec.AWSPresignedURL = &v1alpha1.AWSPresignedURL{AWSCredentials: creds, Region: "us-east-1",
		EKS: &v1alpha1.AWSEKSToken{ClusterName: "prod"}}
	if err := Validate(spec); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if MakesNoCall(spec) {
		t.Fatalf("MakesNoCall: the step makes a call")
	}
	run.call.Spec = spec
	return run, fake
}

// TestEKSTokenFromWebIdentityStep: an EKS token signed with the temporary
// credentials of the STS web identity step, which is reused while its
// session lasts; the token ends with the session when that comes first.
func TestEKSTokenFromWebIdentityStep(t *testing.T) {
	run, fake := presignedFromKeylessECR(t)
	fake.STS.SetLifetime(10 * time.Minute) // the role's sessions are shorter than the token's 14 minutes
	start := run.clock.Now()

	token := run.issue(t)
	if fake.STS.AssumeRoleCalls() != 1 || fake.Calls() != 0 {
		t.Fatalf("STS calls %d, ECR calls %d; want one STS call and nothing else", fake.STS.AssumeRoleCalls(), fake.Calls())
	}
	session := fake.STS.Issued()[0]
	keyID := session.Request["accessKeyId"].(string)
	verifier := fakes.SigV4Verifier{Region: "us-east-1", Service: "sts", Keys: map[string]fakes.AWSKey{
		keyID: {SecretAccessKey: session.Secrets[0], SessionToken: session.Value}}}
	verifyWith := func(verifier fakes.SigV4Verifier, token *Token, now time.Time) *fakes.AWSError {
		t.Helper()
		encoded, ok := strings.CutPrefix(token.Value, EKSTokenPrefix)
		if !ok {
			t.Fatalf("token %s is no EKS token", token.Value)
		}
		raw, err := base64.RawURLEncoding.DecodeString(encoded)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(string(raw))
		if err != nil {
			t.Fatal(err)
		}
		_, failure := verifier.VerifyPresigned(u, http.Header{"X-K8s-Aws-Id": {"prod"}}, now, 15*time.Minute)
		return failure
	}
	verify := func(token *Token, now time.Time) *fakes.AWSError { return verifyWith(verifier, token, now) }
	if failure := verify(token, run.clock.Now()); failure != nil {
		t.Fatalf("STS refuses the URL: %v", failure)
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, start.Add(10*time.Minute))
	wantTime(t, "ExpiresAt", token.ExpiresAt, session.ExpiresAt)

	// Signed by another session's secret, the URL is refused: the step's
	// values are what signs it.
	wrong := fakes.SigV4Verifier{Region: "us-east-1", Service: "sts", Keys: map[string]fakes.AWSKey{
		keyID: {SecretAccessKey: "another-secret", SessionToken: session.Value}}}
	if verifyWith(wrong, token, run.clock.Now()) == nil {
		t.Fatalf("a URL checked against another secret was accepted")
	}

	// Two minutes later: a new URL, the same session.
	run.clock.Step(2 * time.Minute)
	second := run.issue(t)
	if fake.STS.AssumeRoleCalls() != 1 {
		t.Fatalf("%d STS calls: the session was not reused", fake.STS.AssumeRoleCalls())
	}
	if second.Value == token.Value {
		t.Errorf("the URL was not signed again")
	}
	if failure := verify(second, run.clock.Now()); failure != nil {
		t.Fatalf("STS refuses the second URL: %v", failure)
	}
	wantTime(t, "ExpiresAt", second.ExpiresAt, session.ExpiresAt)

	// Sessions longer than the token: the token's 14 minutes.
	fake.STS.SetLifetime(0)
	run.clock.Step(9 * time.Minute) // past the first session
	sa := *FindCredential(run.call.Spec, "kubernetes").ServiceAccountToken
	run.call.ServiceAccountTokens = map[v1alpha1.ServiceAccountTokenSource]string{sa: serviceAccountJWT(t, sa.Audience, run.clock.Now())}
	third := run.issue(t)
	if fake.STS.AssumeRoleCalls() != 2 {
		t.Fatalf("%d STS calls, want a new session", fake.STS.AssumeRoleCalls())
	}
	wantTime(t, "ExpiresAt", third.ExpiresAt, run.clock.Now().Add(14*time.Minute))
	// The URL carries the session token (X-Amz-Security-Token), as AWS's
	// pre-signed URLs do, never the secret access key.
	for _, tok := range []*Token{token, second, third} {
		for _, s := range fake.STS.Issued() {
			if strings.Contains(tok.Value, s.Secrets[0]) {
				t.Errorf("a token holds the secret access key of a session")
			}
		}
	}
}

// TestEKSTokenStepFailure: STS refusing the role fails step sts, and no
// token is made.
func TestEKSTokenStepFailure(t *testing.T) {
	run, fake := presignedFromKeylessECR(t)
	fake.STS.Roles = nil
	_, err := run.engine.Issue(context.Background(), run.call)
	e := asError(t, err)
	if e.Step != "sts" || e.Code != "AccessDenied" {
		t.Fatalf("error %q: step %q, code %q; want step sts refused with AccessDenied", err, e.Step, e.Code)
	}
}
