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

package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

const (
	saCanary   = "sa-token-canary-7f3e"
	googlePool = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/my-pool/providers/my-cluster"
)

// chainedFixture is the Google workload identity sample (a ServiceAccount
// token exchanged at STS, then generateAccessToken with the federated token)
// on a fake client, against the Google fakes. tokenRequest answers the
// caller's TokenRequest.
func chainedFixture(t *testing.T, tokenRequest func(*authenticationv1.TokenRequest) error) (*testOptions, *bytes.Buffer, *fakes.GoogleWorkloadIdentity) {
	t.Helper()
	google := &fakes.GoogleWorkloadIdentity{Audience: googlePool,
		Subjects:        []string{"system:serviceaccount:default:orders-api"},
		ServiceAccounts: []string{"orders@my-project.iam.gserviceaccount.com"}}
	google.Verify = func(token string) (string, bool) {
		return "system:serviceaccount:default:orders-api", token == saCanary
	}
	s, err := samples.Load("google-workload-identity-impersonation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PointAt(fakes.Start(t, google).URL); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(s.TokenIssuer, s.ServiceAccounts[0]).
		WithInterceptorFuncs(interceptor.Funcs{SubResourceCreate: func(ctx context.Context, _ client.Client, sub string, obj client.Object, subResource client.Object, _ ...client.SubResourceCreateOption) error {
			tr, ok := subResource.(*authenticationv1.TokenRequest)
			if sub != "token" || !ok || obj.GetName() != "orders-api" || obj.GetNamespace() != "default" {
				t.Errorf("unexpected create of %s/%s %s", obj.GetNamespace(), obj.GetName(), sub)
				return apierrors.NewBadRequest("unexpected")
			}
			if len(tr.Spec.Audiences) != 1 || tr.Spec.Audiences[0] != "https:"+googlePool {
				t.Errorf("TokenRequest audiences %v", tr.Spec.Audiences)
			}
			return tokenRequest(tr)
		}}).Build()
	ns := "default"
	flags := genericclioptions.NewConfigFlags(false)
	flags.Namespace = &ns
	out := &bytes.Buffer{}
	o := &Options{ConfigFlags: flags, IOStreams: genericiooptions.IOStreams{Out: out, ErrOut: out},
		Now: func() time.Time { return time.Now() }, client: c}
	return &testOptions{Options: o, send: true, allowPrivateDestinations: true, revoke: true,
		params: []string{`lifetime="900s"`}}, out, google
}

func grantToken(tr *authenticationv1.TokenRequest) error {
	tr.Status.Token = saCanary
	return nil
}

// TestSendChainedIssuerShowsEveryStepAndNoValue: --send on an issuer with a
// step and a ServiceAccount token shows each call in order with its status,
// and neither the ServiceAccount token, the intermediate federated token nor
// the final token appears anywhere in the output, text or JSON.
func TestSendChainedIssuerShowsEveryStepAndNoValue(t *testing.T) {
	for _, format := range []string{"", "json"} {
		t.Run("output="+format, func(t *testing.T) {
			opts, out, google := chainedFixture(t, grantToken)
			opts.output = format
			if err := opts.run(context.Background(), "google-orders"); err != nil {
				t.Fatalf("run: %v\n%s", err, out)
			}
			if google.STSCalls() != 1 || google.GenerateCalls() != 1 {
				t.Fatalf("STS calls %d, generateAccessToken calls %d; want 1 and 1", google.STSCalls(), google.GenerateCalls())
			}
			text := out.String()
			canaries := []string{saCanary, google.STSTokens()[0].Value, google.Issued()[0].Value}
			for _, v := range append(canaries, google.CredentialsReceived()...) {
				if v != "" && strings.Contains(text, v) {
					t.Errorf("the output shows a value it must not (%d bytes):\n%s", len(v), text)
				}
			}
			if format == "json" {
				var view TestView
				if err := json.Unmarshal(out.Bytes(), &view); err != nil {
					t.Fatal(err)
				}
				if len(view.Calls) != 2 || view.Calls[0].Call != "steps[sts].request" || view.Calls[1].Call != "request" ||
					view.Calls[0].Status != http.StatusOK || view.Calls[1].Status != http.StatusOK || view.Result == nil {
					t.Errorf("calls %+v, result %v; want the step then the request, both 200", view.Calls, view.Result)
				}
				return
			}
			sts := strings.Index(text, "steps[sts].request")
			request := strings.Index(text, "  request ")
			if !strings.Contains(text, "Calls made, in order:") || sts < 0 || request < sts || !strings.Contains(text, "The call succeeded") {
				t.Errorf("the report does not list the step, then the request:\n%s", text)
			}
		})
	}
}

// TestSendNamesTheFailingStep: a step refused stops the chain; the report
// lists the one call made and names the step.
func TestSendNamesTheFailingStep(t *testing.T) {
	opts, out, google := chainedFixture(t, grantToken)
	google.FailNext(1, fakes.Fault{Status: http.StatusBadRequest, Header: http.Header{"Content-Type": {"application/json"}},
		Body: `{"error":"invalid_grant","error_description":"The given credential is rejected by the attribute condition."}`})
	if err := opts.run(context.Background(), "google-orders"); err == nil {
		t.Fatal("a failed chain must exit non-zero")
	}
	text := out.String()
	if !strings.Contains(text, "step sts: ") || !strings.Contains(text, "invalid_grant") || strings.Contains(text, "  request ") {
		t.Errorf("report:\n%s", text)
	}
	if google.GenerateCalls() != 0 || strings.Contains(text, saCanary) {
		t.Errorf("generateAccessToken calls %d, or the ServiceAccount token shown:\n%s", google.GenerateCalls(), text)
	}
}

// TestSendServiceAccountTokenNeedsTheCallersRights: a caller who may not
// create tokens for the ServiceAccount gets a clear error, and nothing is sent.
func TestSendServiceAccountTokenNeedsTheCallersRights(t *testing.T) {
	opts, _, google := chainedFixture(t, func(*authenticationv1.TokenRequest) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "serviceaccounts/token"}, "orders-api", nil)
	})
	err := opts.run(context.Background(), "google-orders")
	if err == nil || !strings.Contains(err.Error(), "you may not request tokens of ServiceAccount default/orders-api") ||
		!strings.Contains(err.Error(), "create serviceaccounts/token") {
		t.Errorf("error %v, want one saying the caller may not request the ServiceAccount's tokens", err)
	}
	if google.Calls() != 0 {
		t.Errorf("%d calls made without a ServiceAccount token", google.Calls())
	}
}
