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
	"strings"
	"testing"
	"time"

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
