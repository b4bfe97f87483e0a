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
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// stsAnswer is AssumeRoleWithWebIdentity's documented answer, namespace and all.
const stsAnswer = `<?xml version="1.0" encoding="UTF-8"?>
<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:default:app</SubjectFromWebIdentityToken>
    <Credentials>
      <SessionToken>SESSION-CANARY</SessionToken>
      <SecretAccessKey>SECRET-KEY-CANARY</SecretAccessKey>
      <Expiration>2026-03-01T13:00:00Z</Expiration>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
    </Credentials>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/app/s</Arn></AssumedRoleUser>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`

const stsResult = "AssumeRoleWithWebIdentityResponse.AssumeRoleWithWebIdentityResult."

func stsResponseSpec() *v1alpha1.ResponseSpec {
	return &v1alpha1.ResponseSpec{
		Format: v1alpha1.ResponseXML,
		Token:  stsResult + "Credentials.SessionToken",
		Expiry: &v1alpha1.ExpirySpec{Path: stsResult + "Credentials.Expiration", Format: v1alpha1.ExpiryRFC3339},
		Copy: []v1alpha1.CopyField{
			{Key: "AWS_ACCESS_KEY_ID", Path: stsResult + "Credentials.AccessKeyId"},
			{Key: "AWS_SECRET_ACCESS_KEY", Path: stsResult + "Credentials.SecretAccessKey", Secret: true},
		},
		Error: &v1alpha1.ErrorSpec{Code: "ErrorResponse.Error.Code", Message: "ErrorResponse.Error.Message"},
	}
}

func TestXMLAnswer(t *testing.T) {
	spec := stsResponseSpec()
	red := &redactor{}
	token, err := readToken(spec, answer{status: 200, body: []byte(stsAnswer), offset: 30 * time.Second}, testNow, red)
	if err != nil {
		t.Fatal(err)
	}
	if token.Value != "SESSION-CANARY" {
		t.Errorf("token %q", token.Value)
	}
	// The provider's clock runs 30s ahead: its 13:00:00 is 12:59:30 here.
	wantTime(t, "ExpiresAt", token.ExpiresAt, time.Date(2026, 3, 1, 12, 59, 30, 0, time.UTC))
	wantFields(t, token.Fields, map[string]string{"AWS_ACCESS_KEY_ID": "ASIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "SECRET-KEY-CANARY"})
	if got := red.redact("echo SECRET-KEY-CANARY ASIAEXAMPLE SESSION-CANARY"); got != "echo [redacted] ASIAEXAMPLE [redacted]" {
		t.Errorf("the secret copy and the token must be registered as credentials, the key id not: %q", got)
	}

	// The documented error envelope, read with the same paths.
	_, err = readToken(spec, answer{status: 400, body: []byte(`<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Incorrect token audience</Message></Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>`)}, testNow, &redactor{})
	if e := asError(t, err); e.Code != "InvalidIdentityToken" || e.Message != "Incorrect token audience" || e.StatusCode != 400 {
		t.Errorf("error %+v", e)
	}

	// A 200 that reports failure, checked with equals on text.
	success := &v1alpha1.ResponseSpec{Format: v1alpha1.ResponseXML, Token: "R.Token",
		Success: &v1alpha1.SuccessSpec{Path: "R.Ok", Equals: raw(`true`)}}
	if _, err := read(success, 200, `<R><Ok>true</Ok><Token>t</Token></R>`); err != nil {
		t.Errorf("equals true must match the text true: %v", err)
	}
	if _, err := read(success, 200, `<R><Ok>false</Ok><Token>t</Token></R>`); err == nil {
		t.Error("Ok false was taken for success")
	}
}

func TestXMLRefusals(t *testing.T) {
	const canary = "BODY-CANARY-77"
	spec := &v1alpha1.ResponseSpec{Format: v1alpha1.ResponseXML, Token: "R.T"}
	tests := []struct {
		name, body, want string
	}{
		{"doctype", `<?xml version="1.0"?><!DOCTYPE R [<!ENTITY x "` + canary + `">]><R><T>&x;</T></R>`, "DTD"},
		{"external entity", `<!DOCTYPE R SYSTEM "file:///etc/passwd"><R><T>` + canary + `</T></R>`, "DTD"},
		{"directive inside", `<R><!ENTITY x "y"><T>` + canary + `</T></R>`, "DTD"},
		{"undeclared entity", `<R><T>&` + canary + `;</T></R>`, "not well-formed"},
		{"too deep", strings.Repeat("<R>", maxXMLDepth+1) + canary + strings.Repeat("</R>", maxXMLDepth+1), "too deep"},
		{"two roots", `<R><T>a</T></R><R><T>` + canary + `</T></R>`, "after the XML document's root"},
		{"trailing text", `<R><T>a</T></R>` + canary, "after the XML document's root"},
		{"other encoding", `<?xml version="1.0" encoding="ISO-8859-1"?><R><T>` + canary + `</T></R>`, "not well-formed"},
		{"mismatched", `<R><T>` + canary + `</X></R>`, "not well-formed"},
		{"JSON", `{"R":{"T":"` + canary + `"}}`, "not XML"},
		{"empty", ``, "not XML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := read(spec, 200, tt.body)
			e := asError(t, err)
			if e.Class != ClassInvalidResponse || !strings.Contains(e.Error(), tt.want) {
				t.Errorf("error %q (%s), want InvalidResponse with %q", e.Error(), e.Class, tt.want)
			}
			if strings.Contains(e.Error(), canary) {
				t.Errorf("the error quotes the body: %q", e.Error())
			}
		})
	}
	// A predefined entity and a character reference are text, not expansion.
	token, err := read(spec, 200, `<R><T>a&amp;b&#x41;</T></R>`)
	if err != nil || token.Value != "a&bA" {
		t.Errorf("got %v, %v", token, err)
	}
	// Namespaced elements are reached by local name; repeated ones are lists.
	token, err = read(&v1alpha1.ResponseSpec{Format: v1alpha1.ResponseXML, Token: "R.T.1",
		Copy: []v1alpha1.CopyField{{Key: "ns", Path: "R.N"}}}, 200, `<a:R xmlns:a="urn:x"><a:T>one</a:T><a:T>two</a:T><N>plain</N></a:R>`)
	if err != nil || token.Value != "two" || token.Fields["ns"] != "plain" {
		t.Errorf("got %+v, %v", token, err)
	}
}

func TestFormAnswer(t *testing.T) {
	spec := &v1alpha1.ResponseSpec{Format: v1alpha1.ResponseForm, Token: "access_token",
		Expiry: &v1alpha1.ExpirySpec{Path: "expires_in", Format: v1alpha1.ExpiryRelativeSeconds},
		Copy:   []v1alpha1.CopyField{{Key: "scope", Path: "scope"}, {Key: "second", Path: "scope.1"}}}
	token, err := read(spec, 200, "access_token=tok%2Fen&expires_in=3600&scope=a&scope=b+c\n")
	if err != nil {
		t.Fatal(err)
	}
	if token.Value != "tok/en" {
		t.Errorf("token %q", token.Value)
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, testNow.Add(time.Hour))
	wantFields(t, token.Fields, map[string]string{"scope": `["a","b c"]`, "second": "b c"})
	for _, body := range []string{"access_token=%zz", "access_token=a;b=c"} {
		if _, err := read(spec, 200, body); err == nil || !strings.Contains(err.Error(), "form-encoded") {
			t.Errorf("%q: got %v, want a refusal naming the format", body, err)
		}
	}
	// A form error answer (GitHub's OAuth endpoints answer that way).
	spec.Error = &v1alpha1.ErrorSpec{Code: "error", Message: "error_description"}
	_, err = read(spec, 400, "error=bad_verification_code&error_description=The+code+is+wrong")
	if e := asError(t, err); e.Code != "bad_verification_code" || e.Message != "The code is wrong" {
		t.Errorf("error %+v", e)
	}
}

func TestHTTPDateAndFractionalExpiry(t *testing.T) {
	inAnHour := testNow.Add(time.Hour)
	tests := []struct {
		name   string
		format v1alpha1.ExpiryFormat
		value  string // JSON
		offset time.Duration
		want   time.Time // zero: refused
	}{
		{"HTTP date", v1alpha1.ExpiryHTTPDate, `"Sun, 01 Mar 2026 13:00:00 GMT"`, 0, inAnHour},
		{"HTTP date on a clock 1m ahead", v1alpha1.ExpiryHTTPDate, `"Sun, 01 Mar 2026 13:00:00 GMT"`, time.Minute, inAnHour.Add(-time.Minute)},
		{"RFC 850 date", v1alpha1.ExpiryHTTPDate, `"Sunday, 01-Mar-26 13:00:00 GMT"`, 0, inAnHour},
		{"asctime date", v1alpha1.ExpiryHTTPDate, `"Sun Mar  1 13:00:00 2026"`, 0, inAnHour},
		{"HTTP date as a number", v1alpha1.ExpiryHTTPDate, `1772370000`, 0, time.Time{}},
		{"not an HTTP date", v1alpha1.ExpiryHTTPDate, `"2026-03-01T13:00:00Z"`, 0, time.Time{}},
		{"fractional seconds", v1alpha1.ExpiryUnixSeconds, `1772370000.25`, 0, inAnHour.Add(250 * time.Millisecond)},
		{"exponent", v1alpha1.ExpiryUnixSeconds, `1.77237e9`, 0, inAnHour},
		{"fractional seconds on a clock 1m ahead", v1alpha1.ExpiryUnixSeconds, `1772370000.5`, time.Minute, inAnHour.Add(-time.Minute + 500*time.Millisecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &v1alpha1.ResponseSpec{Token: "t", Expiry: &v1alpha1.ExpirySpec{Path: "e", Format: tt.format}}
			token, err := readToken(spec, answer{status: 200, body: []byte(`{"t":"x","e":` + tt.value + `}`), offset: tt.offset}, testNow, &redactor{})
			if tt.want.IsZero() {
				if err == nil {
					t.Errorf("accepted, expiry %v", token.ExpiresAt)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantTime(t, "ExpiresAt", token.ExpiresAt, tt.want)
		})
	}
}

func TestTransforms(t *testing.T) {
	tests := []struct {
		name  string
		value string
		t     v1alpha1.ValueTransform
		want  string // "": refused
		err   string
	}{
		{"standard padded", "QVdTOnBhc3M=", v1alpha1.ValueTransform{Base64: v1alpha1.Base64Standard}, "AWS:pass", ""},
		{"standard unpadded", "QVdTOnBhc3M", v1alpha1.ValueTransform{Base64: v1alpha1.Base64Standard}, "AWS:pass", ""},
		{"url alphabet", "Pz8-Pw", v1alpha1.ValueTransform{Base64: v1alpha1.Base64URL}, "??>?", ""},
		{"url alphabet refused by standard", "Pz8-Pw", v1alpha1.ValueTransform{Base64: v1alpha1.Base64Standard}, "", "not base64 (Standard alphabet)"},
		{"not base64", "not base64!", v1alpha1.ValueTransform{Base64: v1alpha1.Base64Standard}, "", "not base64"},
		{"not text", "//79", v1alpha1.ValueTransform{Base64: v1alpha1.Base64Standard}, "", "UTF-8"},
		{"before", "AWS:pa:ss", v1alpha1.ValueTransform{Before: ":"}, "AWS", ""},
		{"after", "AWS:pa:ss", v1alpha1.ValueTransform{After: ":"}, "pa:ss", ""},
		{"decode then after", "QVdTOnBhc3M=", v1alpha1.ValueTransform{Base64: v1alpha1.Base64Standard, After: ":"}, "pass", ""},
		{"no separator", "AWSpass", v1alpha1.ValueTransform{After: ":"}, "", `no ":"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := transform(tt.value, &tt.t)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), tt.value) {
					t.Errorf("got %q, %v; want an error with %q that does not quote the value", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	// A failed transform names the path, never the value.
	spec := &v1alpha1.ResponseSpec{Token: "t", TokenTransform: &v1alpha1.ValueTransform{Base64: v1alpha1.Base64Standard}}
	_, err := read(spec, 200, `{"t":"SECRET CANARY!"}`)
	if err == nil || !strings.Contains(err.Error(), `token at "t" is not base64`) || strings.Contains(err.Error(), "CANARY") {
		t.Errorf("error %v", err)
	}
	spec = &v1alpha1.ResponseSpec{Token: "t", Copy: []v1alpha1.CopyField{{Key: "k", Path: "c", Secret: true, Transform: &v1alpha1.ValueTransform{After: "="}}}}
	_, err = read(spec, 200, `{"t":"x","c":"SECRET-CANARY"}`)
	if err == nil || !strings.Contains(err.Error(), `response.copy[k]: the value at "c" holds no "="`) || strings.Contains(err.Error(), "CANARY") {
		t.Errorf("error %v", err)
	}
	_, err = read(spec, 200, `{"t":"x","c":{"n":1}}`)
	if err == nil || !strings.Contains(err.Error(), "not a string to transform") {
		t.Errorf("error %v", err)
	}
}

// TestECRAnswerToDockerConfigJSON reads an ECR GetAuthorizationToken answer
// (authorizationToken is base64 of "AWS:<password>", expiresAt fractional
// unix seconds) into the .dockerconfigjson of an image pull Secret.
func TestECRAnswerToDockerConfigJSON(t *testing.T) {
	const body = `{"authorizationData":[{"authorizationToken":"QVdTOnBhc3M=","expiresAt":1767225600.123,"proxyEndpoint":"https://123.dkr.ecr.eu-west-1.amazonaws.com"}]}`
	const data = "authorizationData.0."
	spec := &v1alpha1.ResponseSpec{
		Token:          data + "authorizationToken",
		TokenTransform: &v1alpha1.ValueTransform{Base64: v1alpha1.Base64Standard, After: ":"},
		Expiry:         &v1alpha1.ExpirySpec{Path: data + "expiresAt", Format: v1alpha1.ExpiryUnixSeconds},
		Copy: []v1alpha1.CopyField{{Key: "username", Path: data + "authorizationToken",
			Transform: &v1alpha1.ValueTransform{Base64: v1alpha1.Base64Standard, Before: ":"}}},
	}
	if err := Validate(&v1alpha1.IssuerSpec{Request: v1alpha1.RequestSpec{URL: "https://api.ecr.eu-west-1.amazonaws.com/"}, Response: *spec}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 12, 31, 12, 0, 0, 0, time.UTC)
	red := &redactor{}
	token, err := readToken(spec, answer{status: 200, body: []byte(body)}, now, red)
	if err != nil {
		t.Fatal(err)
	}
	wantTime(t, "ExpiresAt", token.ExpiresAt, time.Date(2026, 1, 1, 0, 0, 0, 123e6, time.UTC))
	if token.Value != "pass" || token.Fields["username"] != "AWS" {
		t.Fatalf("token %q, username %q", token.Value, token.Fields["username"])
	}
	if red.redact("QVdTOnBhc3M= pass") != "[redacted] [redacted]" {
		t.Error("the token, raw and decoded, must be registered as a credential")
	}

	at := &v1alpha1.AccessToken{Spec: v1alpha1.AccessTokenSpec{Secret: v1alpha1.SecretTemplate{
		Name: "ecr-pull", Type: "kubernetes.io/dockerconfigjson",
		DockerConfigJSON: &v1alpha1.DockerConfigJSONOutput{Registries: []string{"123.dkr.ecr.eu-west-1.amazonaws.com"},
			Username: v1alpha1.OutputUsername{Copy: "username"}},
	}}}
	out, err := secret.Data(at, secret.Output{Token: token.Value, Fields: token.Fields, IssuedAt: now, ExpiresAt: token.ExpiresAt})
	if err != nil {
		t.Fatal(err)
	}
	var config struct {
		Auths map[string]struct{ Username, Password, Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(out[".dockerconfigjson"], &config); err != nil {
		t.Fatal(err)
	}
	entry, ok := config.Auths["123.dkr.ecr.eu-west-1.amazonaws.com"]
	if !ok || len(config.Auths) != 1 || entry.Username != "AWS" || entry.Password != "pass" || entry.Auth != "QVdTOnBhc3M=" {
		t.Errorf(".dockerconfigjson = %s", out[".dockerconfigjson"])
	}
}

// TestSecretCopyOfStepRedacted: a step's secret copy, sent on by the request
// and echoed back by a provider, is masked in the error, whether the step ran
// for this call or its result was kept from an earlier one.
func TestSecretCopyOfStepRedacted(t *testing.T) {
	const secretKey = "STEP-SECRET-CANARY"
	fail := false
	ep := startEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/step" {
			_, _ = fmt.Fprintf(w, `{"token":"step-token","expires_in":3600,"key":%q}`, secretKey)
			return
		}
		if fail {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, `{"message":"key %s refused"}`, r.Header.Get("X-Key"))
			return
		}
		_, _ = fmt.Fprint(w, `{"access_token":"final"}`)
	})
	spec := tokenSpec(ep.URL + "/final")
	spec.Steps = []v1alpha1.IssuerStep{{Name: "s", Request: v1alpha1.RequestSpec{URL: ep.URL + "/step"},
		Response: v1alpha1.ResponseSpec{Token: "token", Expiry: &v1alpha1.ExpirySpec{Path: "expires_in", Format: v1alpha1.ExpiryRelativeSeconds},
			Copy: []v1alpha1.CopyField{{Key: "key", Path: "key", Secret: true}}}}}
	spec.Credentials = []v1alpha1.Credential{{Name: "key", Step: &v1alpha1.StepSource{Name: "s", Value: "key"}}}
	spec.Request.Headers = []v1alpha1.Header{{Name: "X-Key", ValueSource: v1alpha1.ValueSource{Credential: "key"}}}
	spec.Response.Error = &v1alpha1.ErrorSpec{Message: "message"}
	if err := Validate(spec); err != nil {
		t.Fatal(err)
	}
	engine := testEngine()
	call := Call{Spec: spec, HTTPClient: testClient(t), StepScope: "test"}
	if _, err := engine.Issue(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	fail = true
	for i := range 2 { // the step's result is kept after the first failure too
		_, err := engine.Issue(context.Background(), call)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Error(), "key [redacted] refused") || strings.Contains(e.Error(), secretKey) {
			t.Errorf("call %d: error %v, want the echoed key masked", i, err)
		}
	}
}

// FuzzXMLPaths feeds arbitrary bodies and paths to the XML reader: it never
// panics, refuses with one of its own errors (which quote nothing of the
// body), never accepts a document holding a directive (<!DOCTYPE>,
// <!ENTITY>), nests no deeper than maxXMLDepth, and yields no text longer
// than the body.
func FuzzXMLPaths(f *testing.F) {
	f.Add([]byte(stsAnswer), stsResult+"Credentials.SessionToken")
	f.Add([]byte(`<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>`), "ErrorResponse.Error.Code")
	f.Add([]byte(`<!DOCTYPE R [<!ENTITY x "y">]><R>&x;</R>`), "R")
	f.Add([]byte(`<R><T>1</T><T>2</T><![CDATA[<x>]]><!-- c --></R>`), "R.T.1")
	f.Add([]byte(`<a:R xmlns:a="urn:x" b="c">&amp;&#65;</a:R>`), "R")
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		doc, err := decodeXML(body)
		if err != nil {
			known := []error{errNotXML, errXMLSyntax, errXMLDirective, errXMLDepth, errXMLTrailing}
			if !slices.ContainsFunc(known, func(k error) bool { return errors.Is(err, k) }) {
				t.Fatalf("error %q is not one of the reader's own", err)
			}
			return
		}
		d := xml.NewDecoder(bytes.NewReader(body))
		d.Strict = false
		for {
			tok, err := d.Token()
			if err != nil {
				break
			}
			if _, ok := tok.(xml.Directive); ok {
				t.Fatalf("accepted a document with a directive: %q", body)
			}
		}
		if depth := nesting(doc); depth > maxXMLDepth+1 {
			t.Fatalf("nesting %d", depth)
		}
		checkLeaves(t, doc, len(body))
		if value, ok := lookup(doc, path); ok {
			_ = text(value)
		}
	})
}

func nesting(v any) int {
	deepest := 0
	switch node := v.(type) {
	case map[string]any:
		for _, child := range node {
			deepest = max(deepest, nesting(child))
		}
		return deepest + 1
	case []any:
		for _, child := range node {
			deepest = max(deepest, nesting(child))
		}
		return deepest // a list is a repeated element, not a level
	}
	return 0
}

func checkLeaves(t *testing.T, v any, limit int) {
	switch node := v.(type) {
	case map[string]any:
		for _, child := range node {
			checkLeaves(t, child, limit)
		}
	case []any:
		for _, child := range node {
			checkLeaves(t, child, limit)
		}
	case string:
		if len(node) > limit {
			t.Fatalf("a text of %d bytes from a body of %d", len(node), limit)
		}
	default:
		t.Fatalf("unexpected %T in a decoded XML document", v)
	}
}
