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
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestAWSSTS(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	webIdentity := func(aud string, exp time.Time) string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "system:serviceaccount:ns:app", "aud": aud, "exp": exp.Unix()}).SignedString(key)
		return s
	}
	role := "arn:aws:iam::123456789012:role/app"
	f := &AWSSTS{Roles: []string{role}}
	f.Clock = clocktesting.NewFakePassiveClock(fakeNow)
	good := func() url.Values {
		return url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {STSVersion}, "RoleArn": {role},
			"RoleSessionName": {"app-session"}, "WebIdentityToken": {webIdentity(STSAudience, fakeNow.Add(time.Hour))}}
	}
	with := func(change func(url.Values)) url.Values { v := good(); change(v); return v }
	tests := []struct {
		name   string
		get    bool
		form   url.Values
		status int
		code   string // "" for success
	}{
		{"POST form", false, good(), 200, ""},
		{"GET query", true, good(), 200, ""},
		{"duration at the minimum", false, with(func(v url.Values) { v.Set("DurationSeconds", "900") }), 200, ""},
		{"no action", false, with(func(v url.Values) { v.Del("Action") }), 400, "MissingAction"},
		{"another action", false, with(func(v url.Values) { v.Set("Action", "AssumeRole") }), 400, "InvalidAction"},
		{"another version", false, with(func(v url.Values) { v.Set("Version", "2012-01-01") }), 400, "InvalidAction"},
		{"no role", false, with(func(v url.Values) { v.Del("RoleArn") }), 400, "MissingParameter"},
		{"malformed role", false, with(func(v url.Values) { v.Set("RoleArn", "arn:aws:iam::12345:role/app") }), 400, "ValidationError"},
		{"unknown role", false, with(func(v url.Values) { v.Set("RoleArn", "arn:aws:iam::123456789012:role/other") }), 403, "AccessDenied"},
		{"short session name", false, with(func(v url.Values) { v.Set("RoleSessionName", "a") }), 400, "ValidationError"},
		{"session name with a space", false, with(func(v url.Values) { v.Set("RoleSessionName", "a b") }), 400, "ValidationError"},
		{"duration too short", false, with(func(v url.Values) { v.Set("DurationSeconds", "899") }), 400, "ValidationError"},
		{"duration too long", false, with(func(v url.Values) { v.Set("DurationSeconds", "43201") }), 400, "ValidationError"},
		{"wrong audience", false, with(func(v url.Values) { v.Set("WebIdentityToken", webIdentity("other", fakeNow.Add(time.Hour))) }), 400, "InvalidIdentityToken"},
		{"expired", false, with(func(v url.Values) { v.Set("WebIdentityToken", webIdentity(STSAudience, fakeNow.Add(-time.Second))) }), 400, "ExpiredToken"},
		{"not a JWT", false, with(func(v url.Values) { v.Set("WebIdentityToken", "abcdefgh") }), 400, "InvalidIdentityToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r *http.Request
			if tt.get {
				r = httptest.NewRequest(http.MethodGet, "/?"+tt.form.Encode(), nil)
			} else {
				r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.form.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			w := httptest.NewRecorder()
			f.ServeHTTP(w, r)
			body, _ := io.ReadAll(w.Result().Body)
			if w.Code != tt.status || w.Header().Get("Content-Type") != "text/xml" {
				t.Fatalf("status %d (%s), want %d: %s", w.Code, w.Header().Get("Content-Type"), tt.status, body)
			}
			if tt.code != "" {
				var e struct {
					XMLName   xml.Name
					Error     struct{ Type, Code, Message string }
					RequestID string `xml:"RequestId"`
				}
				if err := xml.Unmarshal(body, &e); err != nil || e.XMLName.Space != STSNamespace || e.XMLName.Local != "ErrorResponse" ||
					e.Error.Type != "Sender" || e.Error.Code != tt.code || e.Error.Message == "" || e.RequestID == "" {
					t.Errorf("error answer %s (%v), want code %s", body, err, tt.code)
				}
				return
			}
			var ok struct {
				XMLName xml.Name
				Result  struct {
					Credentials struct{ AccessKeyId, SecretAccessKey, SessionToken, Expiration string }
				} `xml:"AssumeRoleWithWebIdentityResult"`
			}
			if err := xml.Unmarshal(body, &ok); err != nil || ok.XMLName.Space != STSNamespace || ok.XMLName.Local != "AssumeRoleWithWebIdentityResponse" {
				t.Fatalf("answer %s (%v)", body, err)
			}
			c := ok.Result.Credentials
			exp, err := time.Parse(time.RFC3339, c.Expiration)
			if err != nil || !strings.HasPrefix(c.AccessKeyId, "ASIA") || len(c.SecretAccessKey) != 40 || !f.Valid(c.SessionToken) {
				t.Errorf("credentials %+v", c)
			}
			want := fakeNow.Add(time.Hour)
			if tt.form.Get("DurationSeconds") == "900" {
				want = fakeNow.Add(15 * time.Minute)
			}
			if !exp.Equal(want) {
				t.Errorf("expiration %v, want %v", exp, want)
			}
		})
	}
	if f.Calls() != len(tests) || f.CallsBy(OutcomeIssued) != 3 || len(f.Issued()) != 3 || len(f.Issued()[0].Secrets) != 1 {
		t.Errorf("calls %d, issued %d", f.Calls(), f.CallsBy(OutcomeIssued))
	}
}
