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
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go/aws-http-auth/credentials"
	"github.com/aws/smithy-go/aws-http-auth/sigv4"
	v4 "github.com/aws/smithy-go/aws-http-auth/v4"
	clocktesting "k8s.io/utils/clock/testing"
)

const (
	ecrKeyID     = "AKIAIOSFODNN7EXAMPLE"
	ecrSecret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	ecrTempKeyID = "ASIAIOSFODNN7EXAMPLE"
	ecrSession   = "FwoGZXIvYXdzEXAMPLEsessiontoken"
)

// ecrCall describes one signed call to the fake; change mutates the signed
// request before it is sent.
type ecrCall struct {
	keyID, secret, session string
	region, service        string
	skew                   time.Duration
	target, contentType    string
	body                   string
	change                 func(*http.Request, *[]byte)
}

func sendECR(t *testing.T, url string, now time.Time, c ecrCall) (int, map[string]any) {
	t.Helper()
	body := []byte(c.body)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if c.target != "-" {
		req.Header.Set("X-Amz-Target", c.target)
	}
	req.Header.Set("Content-Type", c.contentType)
	hash := sha256.Sum256(body)
	err = sigv4.New(func(o *v4.SignerOptions) {
		o.HeaderRules = everyHeader{}
	}).SignRequest(&sigv4.SignRequestInput{Request: req, PayloadHash: hash[:],
		Credentials: credentials.Credentials{AccessKeyID: c.keyID, SecretAccessKey: c.secret, SessionToken: c.session},
		Service:     c.service, Region: c.region, Time: now.Add(c.skew)})
	if err != nil {
		t.Fatal(err)
	}
	if c.change != nil {
		c.change(req, &body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var answer map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, answer
}

type everyHeader struct{}

func (everyHeader) IsSigned(name string) bool { return name != "user-agent" && name != "authorization" }

func TestECR(t *testing.T) {
	clk := clocktesting.NewFakeClock(fakeNow)
	fake := &ECR{Keys: map[string]AWSKey{
		ecrKeyID:     {SecretAccessKey: ecrSecret},
		ecrTempKeyID: {SecretAccessKey: ecrSecret, SessionToken: ecrSession},
	}}
	fake.Clock = clk
	server := Start(t, fake)
	good := func() ecrCall {
		return ecrCall{keyID: ecrKeyID, secret: ecrSecret, region: "us-east-1", service: "ecr",
			target: ECRTarget, contentType: ECRContentType, body: "{}"}
	}

	t.Run("issues a token to a signed call", func(t *testing.T) {
		before := fake.CallsBy(OutcomeIssued)
		status, answer := sendECR(t, server.URL, clk.Now(), good())
		if status != http.StatusOK {
			t.Fatalf("status %d: %v", status, answer)
		}
		data := answer["authorizationData"].([]any)[0].(map[string]any)
		decoded, err := base64.StdEncoding.DecodeString(data["authorizationToken"].(string))
		if err != nil || !strings.HasPrefix(string(decoded), "AWS:ecr-") {
			t.Fatalf("authorizationToken %q is not base64 of AWS:password", data["authorizationToken"])
		}
		want := float64(fakeNow.Add(ECRDefaultLifetime).UnixMilli()) / 1000
		if data["expiresAt"].(float64) != want || data["proxyEndpoint"] != "https://123456789012.dkr.ecr.us-east-1.amazonaws.com" {
			t.Fatalf("answer %v, want expiresAt %v", data, want)
		}
		if fake.CallsBy(OutcomeIssued) != before+1 || !fake.Valid(data["authorizationToken"].(string)) {
			t.Fatalf("the call was not counted or the token not recorded")
		}
	})
	t.Run("accepts temporary credentials with their session token", func(t *testing.T) {
		c := good()
		c.keyID, c.session = ecrTempKeyID, ecrSession
		if status, answer := sendECR(t, server.URL, clk.Now(), c); status != http.StatusOK {
			t.Fatalf("status %d: %v", status, answer)
		}
	})
	t.Run("accepts a signature 4 minutes old", func(t *testing.T) {
		c := good()
		c.skew = -4 * time.Minute
		if status, answer := sendECR(t, server.URL, clk.Now(), c); status != http.StatusOK {
			t.Fatalf("status %d: %v", status, answer)
		}
	})

	refusals := []struct {
		name   string
		change func(*ecrCall)
		status int
		kind   string
	}{
		{"a signed header off by one byte", func(c *ecrCall) {
			c.change = func(r *http.Request, _ *[]byte) {
				r.Header.Set("X-Amz-Target", strings.TrimSuffix(ECRTarget, "n")+"N")
			}
		}, http.StatusForbidden, "InvalidSignatureException"},
		{"a body off by one byte", func(c *ecrCall) {
			c.body = `{"registryIds":["123456789012"]}`
			c.change = func(_ *http.Request, body *[]byte) { *body = []byte(`{"registryIds":["123456789013"]}`) }
		}, http.StatusForbidden, "InvalidSignatureException"},
		{"a path off by one byte", func(c *ecrCall) {
			c.change = func(r *http.Request, _ *[]byte) { r.URL.Path = "/x" }
		}, http.StatusForbidden, "InvalidSignatureException"},
		{"a signature off by one character", func(c *ecrCall) {
			c.change = func(r *http.Request, _ *[]byte) {
				auth := r.Header.Get("Authorization")
				last := auth[len(auth)-1]
				flipped := byte('0')
				if last == '0' {
					flipped = '1'
				}
				r.Header.Set("Authorization", auth[:len(auth)-1]+string(flipped))
			}
		}, http.StatusForbidden, "InvalidSignatureException"},
		{"the wrong secret", func(c *ecrCall) { c.secret = "not-the-secret" }, http.StatusForbidden, "InvalidSignatureException"},
		{"an X-Amz-Date older than 5 minutes", func(c *ecrCall) { c.skew = -5*time.Minute - time.Second }, http.StatusForbidden, "InvalidSignatureException"},
		{"an X-Amz-Date more than 5 minutes ahead", func(c *ecrCall) { c.skew = 5*time.Minute + time.Second }, http.StatusForbidden, "InvalidSignatureException"},
		{"a wrong region in the scope", func(c *ecrCall) { c.region = "us-west-2" }, http.StatusForbidden, "InvalidSignatureException"},
		{"a wrong service in the scope", func(c *ecrCall) { c.service = "sts" }, http.StatusForbidden, "InvalidSignatureException"},
		{"an unknown access key", func(c *ecrCall) { c.keyID = "AKIAUNKNOWNKEY000000" }, http.StatusForbidden, "UnrecognizedClientException"},
		{"temporary credentials without their session token", func(c *ecrCall) { c.keyID = ecrTempKeyID }, http.StatusForbidden, "UnrecognizedClientException"},
		{"a wrong session token", func(c *ecrCall) { c.keyID, c.session = ecrTempKeyID, "other" }, http.StatusForbidden, "UnrecognizedClientException"},
		{"no signature", func(c *ecrCall) {
			c.change = func(r *http.Request, _ *[]byte) { r.Header.Del("Authorization") }
		}, http.StatusForbidden, "MissingAuthenticationTokenException"},
		{"no X-Amz-Target", func(c *ecrCall) { c.target = "-" }, http.StatusBadRequest, "UnknownOperationException"},
		{"another X-Amz-Target", func(c *ecrCall) { c.target = "AmazonEC2ContainerRegistry_V20150921.ListImages" }, http.StatusBadRequest, "UnknownOperationException"},
		{"Content-Type application/json", func(c *ecrCall) { c.contentType = "application/json" }, http.StatusBadRequest, "SerializationException"},
		{"a body that is not a JSON object", func(c *ecrCall) { c.body = "[]" }, http.StatusBadRequest, "SerializationException"},
	}
	for _, tc := range refusals {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			issued := fake.CallsBy(OutcomeIssued)
			c := good()
			tc.change(&c)
			status, answer := sendECR(t, server.URL, clk.Now(), c)
			if status != tc.status || answer["__type"] != tc.kind || answer["message"] == "" {
				t.Fatalf("got %d %v, want %d with __type %s", status, answer, tc.status, tc.kind)
			}
			if fake.CallsBy(OutcomeIssued) != issued {
				t.Fatalf("a refused call issued a token")
			}
		})
	}
}

// The registry of the account takes AWS:<password> for as long as the
// authorization token lives, and a later token does not end an earlier one.
func TestECRPasswordsValidUntilTheirExpiry(t *testing.T) {
	clk := clocktesting.NewFakeClock(fakeNow)
	fake := &ECR{Keys: map[string]AWSKey{ecrKeyID: {SecretAccessKey: ecrSecret}}}
	fake.Clock = clk
	fake.Lifetime = time.Minute
	server := Start(t, fake)
	issue := func() string {
		t.Helper()
		status, answer := sendECR(t, server.URL, clk.Now(), ecrCall{keyID: ecrKeyID, secret: ecrSecret, region: "us-east-1",
			service: "ecr", target: ECRTarget, contentType: ECRContentType, body: "{}"})
		if status != http.StatusOK {
			t.Fatalf("status %d: %v", status, answer)
		}
		decoded, err := base64.StdEncoding.DecodeString(answer["authorizationData"].([]any)[0].(map[string]any)["authorizationToken"].(string))
		if err != nil {
			t.Fatal(err)
		}
		password, ok := strings.CutPrefix(string(decoded), "AWS:")
		if !ok {
			t.Fatalf("authorizationToken is not base64 of AWS:password")
		}
		return password
	}

	first := issue()
	clk.Step(30 * time.Second)
	second := issue()
	passwords := fake.Passwords()
	if len(passwords) != 2 || passwords[0].Password != first || passwords[1].Password != second ||
		!passwords[0].ExpiresAt.Equal(fakeNow.Add(time.Minute)) || !passwords[1].ExpiresAt.Equal(fakeNow.Add(90*time.Second)) {
		t.Fatalf("Passwords() = %d entries, want the two issued with their expiry", len(passwords))
	}
	for _, tc := range []struct {
		name     string
		password string
		want     bool
	}{
		{"the first password, still valid beside the second", first, true},
		{"the second password", second, true},
		{"a password never issued", "ecr-never-issued", false},
		{"the empty password", "", false},
		{"the authorization token itself, not its password", fake.Issued()[0].Value, false},
	} {
		if got := fake.ValidPassword(tc.password); got != tc.want {
			t.Errorf("%s: ValidPassword = %t, want %t", tc.name, got, tc.want)
		}
	}
	clk.Step(30 * time.Second) // the first token's expiresAt
	if fake.ValidPassword(first) {
		t.Errorf("the first password is still valid at its token's expiry")
	}
	if !fake.ValidPassword(second) {
		t.Errorf("the second password expired with the first")
	}
}
