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

	"github.com/golang-jwt/jwt/v5"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
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

// TestSendKeylessECR: --send on the keyless ECR sample makes the STS step,
// then the ECR call signed with the step's credentials, and shows neither the
// ServiceAccount token, the session's secret and token, ECR's
// authorizationToken nor the password.
func TestSendKeylessECR(t *testing.T) {
	ecr := fakes.NewAWSWebIdentityECR("arn:aws:iam::123456789012:role/ecr-pull")
	s, err := samples.Load("aws-ecr-pull-secret.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PointAt(fakes.Start(t, ecr).URL); err != nil {
		t.Fatal(err)
	}
	saToken, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"sub": "system:serviceaccount:default:ecr-puller", "aud": []string{fakes.STSAudience},
		"exp": time.Now().Add(10 * time.Minute).Unix()}).SignedString(samples.TestKey())
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(s.TokenIssuer, s.ServiceAccounts[0]).
		WithInterceptorFuncs(interceptor.Funcs{SubResourceCreate: func(ctx context.Context, _ client.Client, sub string, obj client.Object, subResource client.Object, _ ...client.SubResourceCreateOption) error {
			tr, ok := subResource.(*authenticationv1.TokenRequest)
			if sub != "token" || !ok || obj.GetName() != "ecr-puller" || len(tr.Spec.Audiences) != 1 || tr.Spec.Audiences[0] != fakes.STSAudience {
				t.Errorf("unexpected create of %s/%s %s", obj.GetNamespace(), obj.GetName(), sub)
				return apierrors.NewBadRequest("unexpected")
			}
			tr.Status.Token = saToken
			return nil
		}}).Build()
	ns := "default"
	flags := genericclioptions.NewConfigFlags(false)
	flags.Namespace = &ns
	for _, format := range []string{"", "json"} {
		t.Run("output="+format, func(t *testing.T) {
			out := &bytes.Buffer{}
			o := &Options{ConfigFlags: flags, IOStreams: genericiooptions.IOStreams{Out: out, ErrOut: out},
				Now: func() time.Time { return time.Now() }, client: c}
			opts := &testOptions{Options: o, send: true, allowPrivateDestinations: true, output: format}
			calls, stsCalls := ecr.Calls(), ecr.STS.AssumeRoleCalls()
			if err := opts.run(context.Background(), "aws-ecr"); err != nil {
				t.Fatalf("run: %v\n%s", err, out)
			}
			if ecr.STS.AssumeRoleCalls() != stsCalls+1 || ecr.Calls() != calls+1 || ecr.CallsBy(fakes.OutcomeIssued) != calls+1 {
				t.Fatalf("STS calls %d, ECR calls %d; want one more of each, both issued", ecr.STS.AssumeRoleCalls(), ecr.Calls())
			}
			text := out.String()
			session := ecr.STS.Issued()[stsCalls]
			issued := ecr.Issued()[calls]
			for _, v := range []string{saToken, session.Value, session.Secrets[0], issued.Value, issued.Request["password"].(string)} {
				if strings.Contains(text, v) {
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
			} else if !strings.Contains(text, "steps[sts].request") || !strings.Contains(text, "The call succeeded") {
				t.Errorf("the report does not show the step and the result:\n%s", text)
			}
		})
	}
}
