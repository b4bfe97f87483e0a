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
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// ecrSecret is the secret access key the samples' Secret holds in tests.
var ecrSecret = samples.Credential("aws-ecr-user", "AWS_SECRET_ACCESS_KEY")

func ecrFake() *fakes.ECR {
	return &fakes.ECR{Keys: map[string]fakes.AWSKey{samples.AWSAccessKeyID: {SecretAccessKey: ecrSecret}}}
}

func TestSampleAWSECR(t *testing.T) {
	fake := ecrFake()
	run := startSample(t, "aws-ecr-pull-secret-access-key.yaml", fake, &fake.Base)
	fake.SetLifetime(12*time.Hour + 250*time.Millisecond) // a fractional expiresAt
	token := run.issue(t)
	if !fake.Valid(token.Value) || fake.CallsBy(fakes.OutcomeIssued) != 1 || fake.Calls() != 1 {
		t.Fatalf("token %q: issued calls %d of %d, want one valid token from one call", token.Value, fake.CallsBy(fakes.OutcomeIssued), fake.Calls())
	}
	decoded, err := base64.StdEncoding.DecodeString(token.Value)
	if err != nil || !strings.HasPrefix(string(decoded), "AWS:") {
		t.Errorf("the token is not ECR's base64 of AWS:password")
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, run.clock.Now().Add(12*time.Hour+250*time.Millisecond))
	wantFields(t, token.Fields, map[string]string{"proxyEndpoint": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"})
}

// TestSampleAWSECRProviderClock: a signature is dated on the provider's
// clock. ECR 10 minutes ahead refuses the first signature as expired; its
// Date header teaches the engine the offset, and the request is signed and
// sent once more on ECR's time; the next mint is dated right at once.
func TestSampleAWSECRProviderClock(t *testing.T) {
	fake := ecrFake()
	run := startSample(t, "aws-ecr-pull-secret-access-key.yaml", fake, &fake.Base)
	fake.SetSkew(10 * time.Minute)
	run.call.ProviderClock = NewProviderClock(true)
	token := run.issue(t)
	if !fake.Valid(token.Value) || fake.CallsBy(fakes.OutcomeUnauthorized) != 1 || fake.CallsBy(fakes.OutcomeIssued) != 1 {
		t.Fatalf("unauthorized %d, issued %d: want one refusal, then one token", fake.CallsBy(fakes.OutcomeUnauthorized), fake.CallsBy(fakes.OutcomeIssued))
	}
	run.issue(t)
	if fake.CallsBy(fakes.OutcomeUnauthorized) != 1 || fake.CallsBy(fakes.OutcomeIssued) != 2 {
		t.Fatalf("the second mint was not signed on the provider's clock")
	}
}

// TestSampleAWSECRRefusedNamesNoSecret: ECR's refusal is reported with its
// __type and message, and neither the secret access key nor the session
// token appears in the error.
func TestSampleAWSECRRefusedNamesNoSecret(t *testing.T) {
	const session = "canary-session-token-4f1c9e"
	fake := &fakes.ECR{Keys: map[string]fakes.AWSKey{samples.AWSAccessKeyID: {SecretAccessKey: "another-secret", SessionToken: session}}}
	run := startSample(t, "aws-ecr-pull-secret-access-key.yaml", fake, &fake.Base)
	run.call.Spec.Credentials = append(run.call.Spec.Credentials, v1alpha1.Credential{Name: "session-token",
		SecretKeyRef: &v1alpha1.SecretKeySelector{Name: "aws-ecr-user", Key: "AWS_SESSION_TOKEN"}})
	run.call.Spec.Request.Auth.AWSSigV4.SessionToken = &v1alpha1.ValueSource{Credential: "session-token"}
	run.call.Secrets[v1alpha1.SecretKeySelector{Name: "aws-ecr-user", Key: "AWS_SESSION_TOKEN"}] = session
	_, err := run.engine.Issue(context.Background(), run.call)
	e := asError(t, err)
	if e.Class != ClassUnauthorized || e.Code != "InvalidSignatureException" {
		t.Errorf("error %q: class %s, code %q, want Unauthorized InvalidSignatureException", err, e.Class, e.Code)
	}
	for _, canary := range []string{ecrSecret, session} {
		if strings.Contains(err.Error(), canary) || strings.Contains(e.Message, canary) {
			t.Errorf("the error %q names a credential", err)
		}
	}
	if fake.Calls() != 1 {
		t.Errorf("calls = %d, want 1", fake.Calls())
	}
}

// TestAWSSigV4FollowsNoRedirect: a signed request is never replayed at
// another URL, even on the same host.
func TestAWSSigV4FollowsNoRedirect(t *testing.T) {
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	s := loadSample(t, "aws-ecr-pull-secret-access-key.yaml")
	pointAt(t, s.issuer, srv.URL)
	client, err := NewHTTPClient(TransportConfig{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&Engine{}).Issue(context.Background(), Call{Spec: s.issuer, Secrets: s.secretValues(t), HTTPClient: client})
	if err == nil || !strings.Contains(err.Error(), "a signed request follows no redirect") || calls != 1 {
		t.Fatalf("error %v after %d calls, want the redirect refused after one", err, calls)
	}
}

// TestAWSSigV4Rendered: kubectl tokenmint test shows the signed request with
// the secret and session token masked, and without the signature, which
// could be replayed for minutes.
func TestAWSSigV4Rendered(t *testing.T) {
	s := loadSample(t, "aws-ecr-pull-secret-access-key.yaml")
	secrets := s.secretValues(t)
	rendered, err := (&Engine{}).Render(Call{Spec: s.issuer, Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	var auth string
	for _, h := range rendered.Headers {
		if h.Name == "Authorization" {
			auth = h.Value
		}
	}
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=") || !strings.HasSuffix(auth, "Signature=<signature>") ||
		!strings.Contains(auth, "/us-east-1/ecr/aws4_request, SignedHeaders=accept;content-type;host;x-amz-date;x-amz-target,") {
		t.Errorf("Authorization %q", auth)
	}
	for _, v := range secrets {
		if strings.Contains(auth, v) && v != samples.AWSAccessKeyID {
			t.Errorf("a credential is shown: %q", auth)
		}
	}
}

const ecrPullRole = "arn:aws:iam::123456789012:role/ecr-pull"

// startKeylessECR runs the keyless ECR sample against the STS and ECR fakes,
// with a ServiceAccount token for STS's audience.
func startKeylessECR(t *testing.T) (*sampleRun, *fakes.AWSWebIdentityECR) {
	t.Helper()
	fake := fakes.NewAWSWebIdentityECR(ecrPullRole)
	run := startSample(t, "aws-ecr-pull-secret.yaml", fake, &fake.Base)
	sa := *FindCredential(run.call.Spec, "kubernetes").ServiceAccountToken
	if sa.Audience != fakes.STSAudience {
		t.Errorf("the ServiceAccount token's audience %q is not STS's", sa.Audience)
	}
	run.call.ServiceAccountTokens = map[v1alpha1.ServiceAccountTokenSource]string{sa: serviceAccountJWT(t, sa.Audience, run.clock.Now())}
	run.call.StepScope = "TokenIssuer/default/aws-ecr/uid|default"
	return run, fake
}

// TestSampleAWSECRKeyless: the web identity step's temporary credentials (its
// copied access key id and secret, and its token, the session token) sign
// the ECR call; the token is the password of ECR's authorizationToken; the
// step is reused while its session is valid, and the pull Secret never
// outlives the session.
func TestSampleAWSECRKeyless(t *testing.T) {
	run, fake := startKeylessECR(t)
	if run.token.Spec.Secret.Type != "kubernetes.io/dockerconfigjson" || run.token.Spec.Secret.DockerConfigJSON == nil ||
		run.token.Spec.Secret.DockerConfigJSON.Username.Value != "AWS" {
		t.Errorf("the AccessToken writes no dockerconfigjson Secret for the user AWS: %+v", run.token.Spec.Secret)
	}
	fake.SetLifetime(15 * time.Minute) // ECR's token ends before the one-hour session
	start := run.clock.Now()

	token := run.issue(t)
	if fake.STS.AssumeRoleCalls() != 1 || fake.Calls() != 1 || fake.CallsBy(fakes.OutcomeIssued) != 1 {
		t.Fatalf("STS calls %d, ECR calls %d (%d issued); want one of each", fake.STS.AssumeRoleCalls(), fake.Calls(), fake.CallsBy(fakes.OutcomeIssued))
	}
	issued := fake.Issued()[0]
	if token.Value != issued.Request["password"] {
		t.Errorf("the token is not the password ECR issued")
	}
	if decoded, err := base64.StdEncoding.DecodeString(issued.Value); err != nil || string(decoded) != "AWS:"+token.Value {
		t.Errorf("ECR's authorizationToken is not base64 of AWS:<token>")
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, start.Add(15*time.Minute))
	wantFields(t, token.Fields, map[string]string{})

	// The renewal at 12 minutes reuses the session: no second STS call.
	run.clock.Step(12 * time.Minute)
	token = run.issue(t)
	if fake.STS.AssumeRoleCalls() != 1 || fake.CallsBy(fakes.OutcomeIssued) != 2 {
		t.Fatalf("STS calls %d, ECR tokens %d; want 1 and 2", fake.STS.AssumeRoleCalls(), fake.CallsBy(fakes.OutcomeIssued))
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, run.clock.Now().Add(15*time.Minute))

	// ECR's 12 hours outlast the session: the token ends with the session.
	fake.SetLifetime(0)
	token = run.issue(t)
	session := fake.STS.Issued()[0]
	wantTime(t, "ExpiresAt", token.ExpiresAt, session.ExpiresAt)
	if !session.ExpiresAt.Equal(start.Add(time.Hour)) || fake.STS.AssumeRoleCalls() != 1 {
		t.Errorf("session ends %v after %d STS calls", session.ExpiresAt, fake.STS.AssumeRoleCalls())
	}

	// ECR refusing the session's key: the error names neither secret.
	fake.ECR.Lookup = func(string) (fakes.AWSKey, bool) {
		return fakes.AWSKey{SecretAccessKey: "other", SessionToken: session.Value}, true
	}
	_, err := run.engine.Issue(context.Background(), run.call)
	e := asError(t, err)
	if e.Class != ClassUnauthorized || e.Code != "InvalidSignatureException" {
		t.Errorf("error %q: class %s, code %q, want Unauthorized InvalidSignatureException", err, e.Class, e.Code)
	}
	for _, canary := range []string{session.Secrets[0], session.Value} {
		if strings.Contains(err.Error(), canary) || strings.Contains(e.Message, canary) {
			t.Errorf("the error %q names a credential", err)
		}
	}
}

// TestSampleAWSECRKeylessStepFailure: STS refusing the role fails step sts;
// ECR gets no call.
func TestSampleAWSECRKeylessStepFailure(t *testing.T) {
	run, fake := startKeylessECR(t)
	fake.STS.Roles = nil
	_, err := run.engine.Issue(context.Background(), run.call)
	e := asError(t, err)
	if !strings.HasPrefix(err.Error(), "step sts: ") || e.Code != "AccessDenied" || e.Class != ClassPermanent {
		t.Errorf("error %q (class %s, code %q), want step sts: AccessDenied, Permanent by the AWS preset", err, e.Class, e.Code)
	}
	if fake.Calls() != 0 || fake.STS.AssumeRoleCalls() != 1 {
		t.Errorf("ECR calls %d, STS calls %d; want 0 and 1", fake.Calls(), fake.STS.AssumeRoleCalls())
	}
}

// TestSampleAWSECRKeylessSignsWithTheStep: the sample signs its
// ECR call with the sts step's credentials alone: it reads no Secret.
func TestSampleAWSECRKeylessSignsWithTheStep(t *testing.T) {
	s := loadSample(t, "aws-ecr-pull-secret.yaml")
	sig := s.issuer.Request.Auth.AWSSigV4
	if sig == nil || sig.SessionToken == nil || FindCredential(s.issuer, sig.SessionToken.Credential).Step == nil ||
		FindCredential(s.issuer, sig.SecretAccessKey.Credential).Step == nil || FindCredential(s.issuer, sig.AccessKeyID.Credential).Step == nil {
		t.Fatalf("the ECR call is not signed with the sts step's credentials")
	}
	if len(SecretRefs(s.issuer)) != 0 || len(s.secrets) != 0 {
		t.Errorf("the keyless sample reads Secrets")
	}
	// kubectl tokenmint test renders the ECR call before any step ran: the
	// step's values stand in, shown by name.
	rendered, err := (&Engine{}).Render(Call{Spec: s.issuer})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	var auth, session string
	for _, h := range rendered.Headers {
		switch h.Name {
		case "Authorization":
			auth = h.Value
		case "X-Amz-Security-Token":
			session = h.Value
		}
	}
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=<AWS_ACCESS_KEY_ID of step sts>/") || session != "<token of step sts>" {
		t.Errorf("Authorization %q, X-Amz-Security-Token %q", auth, session)
	}
}
