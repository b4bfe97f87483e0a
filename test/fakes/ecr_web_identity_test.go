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
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	clocktesting "k8s.io/utils/clock/testing"
)

// TestAWSWebIdentityECR: ECR accepts exactly the temporary credentials the
// STS issued, while they are valid, and nothing else.
func TestAWSWebIdentityECR(t *testing.T) {
	role := "arn:aws:iam::123456789012:role/ecr-pull"
	f := NewAWSWebIdentityECR(role)
	clk := clocktesting.NewFakeClock(fakeNow)
	f.Clock = clk
	srv := Start(t, f)

	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	webIdentity, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "system:serviceaccount:ns:app",
		"aud": STSAudience, "exp": fakeNow.Add(time.Hour).Unix()}).SignedString(key)
	form := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {STSVersion}, "RoleArn": {role},
		"RoleSessionName": {"ecr-pull"}, "WebIdentityToken": {webIdentity}, "DurationSeconds": {"900"}}
	resp, err := http.Post(srv.URL+"/", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	sessions := f.STS.Issued()
	if resp.StatusCode != http.StatusOK || len(sessions) != 1 || f.STS.AssumeRoleCalls() != 1 || f.Calls() != 0 {
		t.Fatalf("STS answered %d with %d sessions; ECR calls %d", resp.StatusCode, len(sessions), f.Calls())
	}
	if !sessions[0].IssuedAt.Equal(fakeNow) {
		t.Errorf("STS answered at %v, not on the fake's clock", sessions[0].IssuedAt)
	}
	session := ecrCall{keyID: sessions[0].Request["accessKeyId"].(string), secret: sessions[0].Secrets[0], session: sessions[0].Value,
		region: "us-east-1", service: "ecr", target: ECRTarget, contentType: ECRContentType, body: "{}"}

	if status, answer := sendECR(t, srv.URL, clk.Now(), session); status != http.StatusOK || len(f.Issued()) != 1 {
		t.Fatalf("the session's credentials: %d %v", status, answer)
	}
	for name, c := range map[string]ecrCall{
		"another secret":        {keyID: session.keyID, secret: "x" + session.secret, session: session.session},
		"no session token":      {keyID: session.keyID, secret: session.secret},
		"another session token": {keyID: session.keyID, secret: session.secret, session: session.session + "x"},
		"an unknown key":        {keyID: "ASIAUNKNOWNKEY000000", secret: session.secret, session: session.session},
	} {
		c.region, c.service, c.target, c.contentType, c.body = "us-east-1", "ecr", ECRTarget, ECRContentType, "{}"
		if status, _ := sendECR(t, srv.URL, clk.Now(), c); status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, status)
		}
	}
	clk.Step(15 * time.Minute) // the session's end
	if status, _ := sendECR(t, srv.URL, clk.Now(), session); status != http.StatusForbidden {
		t.Errorf("expired session credentials: status %d, want 403", status)
	}
	if len(f.Issued()) != 1 || f.STS.AssumeRoleCalls() != 1 {
		t.Errorf("ECR tokens %d, STS calls %d; want 1 and 1", len(f.Issued()), f.STS.AssumeRoleCalls())
	}
}
