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
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
)

// TestSigV4Payload: the payload hash is the body's, in the header when asked,
// or UNSIGNED-PAYLOAD; the independent verifier accepts each, and a body
// changed after signing only when the payload is unsigned.
func TestSigV4Payload(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name             string
		header, unsigned bool
	}{
		{"hashed", false, false},
		{"hashed, in X-Amz-Content-Sha256", true, false},
		{"unsigned", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(`{"a":1}`)
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "https://s3.example.com/bucket/key", strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			values, creds := sigV4Values("AKIDEXAMPLE", "secret", "", now)
			spec := &v1alpha1.AWSSigV4{AWSCredentials: *creds, Region: "us-east-1", Service: "s3",
				ContentSHA256Header: tc.header, UnsignedPayload: tc.unsigned}
			if err := signAWSSigV4(req, body, spec, values, &redactor{}); err != nil {
				t.Fatal(err)
			}
			got := req.Header.Get("X-Amz-Content-Sha256")
			switch {
			case !tc.header && got != "":
				t.Errorf("X-Amz-Content-Sha256 %q sent unasked", got)
			case tc.header && !tc.unsigned && len(got) != 64:
				t.Errorf("X-Amz-Content-Sha256 %q is not a SHA-256", got)
			case tc.unsigned && got != fakes.UnsignedPayload:
				t.Errorf("X-Amz-Content-Sha256 %q, want UNSIGNED-PAYLOAD", got)
			}
			if !values.timed {
				t.Errorf("a signed request is not marked as carrying the time")
			}
			verifier := fakes.SigV4Verifier{Region: "us-east-1", Service: "s3", Keys: map[string]fakes.AWSKey{"AKIDEXAMPLE": {SecretAccessKey: "secret"}}}
			if _, failure := verifier.Verify(req, body, now); failure != nil {
				t.Fatalf("refused: %v", failure)
			}
			_, failure := verifier.Verify(req, []byte(`{"a":2}`), now)
			if tc.unsigned != (failure == nil) {
				t.Errorf("a changed body: %v", failure)
			}
		})
	}
}

func TestSigV4Validation(t *testing.T) {
	good := func() *v1alpha1.IssuerSpec {
		id := "AKIDEXAMPLE"
		return &v1alpha1.IssuerSpec{
			Credentials: []v1alpha1.Credential{{Name: "secret", SecretKeyRef: &awsKeyRef}},
			Request: v1alpha1.RequestSpec{URL: "https://api.ecr.us-east-1.amazonaws.com/", Auth: &v1alpha1.AuthSpec{AWSSigV4: &v1alpha1.AWSSigV4{
				AWSCredentials: v1alpha1.AWSCredentials{AccessKeyID: v1alpha1.ValueSource{Value: &id}, SecretAccessKey: v1alpha1.ValueSource{Credential: "secret"}},
				Region:         "us-east-1", Service: "ecr"}},
				Body: &v1alpha1.BodySpec{JSONContentType: "application/x-amz-json-1.1"}},
			Response: v1alpha1.ResponseSpec{Token: "authorizationData.0.authorizationToken"},
		}
	}
	if err := Validate(good()); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if refs := SecretRefs(good()); len(refs) != 1 || refs[0] != awsKeyRef {
		t.Errorf("SecretRefs = %v: the secret access key is not read", refs)
	}
	cases := []struct {
		name   string
		change func(*v1alpha1.IssuerSpec)
		want   string
	}{
		{"a literal secret", func(s *v1alpha1.IssuerSpec) { s.Request.Auth.AWSSigV4.SecretAccessKey = literal("inline") }, "secretAccessKey must be a credential"},
		{"a literal session token", func(s *v1alpha1.IssuerSpec) { s.Request.Auth.AWSSigV4.SessionToken = ptrTo(literal("inline")) }, "sessionToken must be a credential"},
		{"an undeclared credential", func(s *v1alpha1.IssuerSpec) {
			s.Request.Auth.AWSSigV4.SecretAccessKey = v1alpha1.ValueSource{Credential: "nope"}
		}, "auth.awsSigV4.secretAccessKey: credential \"nope\" is not declared"},
		{"X-Amz-Date listed", func(s *v1alpha1.IssuerSpec) {
			s.Request.Headers = []v1alpha1.Header{{Name: "X-Amz-Date", ValueSource: literal("x")}}
		}, "X-Amz-Date is set by awsSigV4 signing"},
		{"a service with a slash", func(s *v1alpha1.IssuerSpec) { s.Request.Auth.AWSSigV4.Service = "ecr/x" }, "service must be"},
		{"bearer too", func(s *v1alpha1.IssuerSpec) { s.Request.Auth.Bearer = ptrTo(literal("x")) }, "exactly one of bearer, basic or awsSigV4"},
		{"jsonContentType with a form", func(s *v1alpha1.IssuerSpec) {
			s.Request.Body.Form = []v1alpha1.FormField{{Name: "a", ValueSource: literal("b")}}
		}, "jsonContentType is for JSON bodies"},
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

func ptrTo[T any](v T) *T { return &v }
