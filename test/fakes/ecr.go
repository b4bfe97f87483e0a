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
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strconv"
	"time"
)

const (
	// ECRTarget is the X-Amz-Target of ECR's GetAuthorizationToken.
	ECRTarget = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
	// ECRContentType is the content type of AWS's JSON 1.1 protocol.
	ECRContentType = "application/x-amz-json-1.1"
	// ECRDefaultLifetime is the lifetime of ECR authorization tokens.
	ECRDefaultLifetime = 12 * time.Hour
)

// ECR fakes Amazon ECR's GetAuthorizationToken as the ECR API reference
// describes it: POST / with X-Amz-Target ECRTarget, Content-Type
// application/x-amz-json-1.1, a JSON object body, signed with AWS Signature
// Version 4 for service ecr in Region. It verifies the signature itself
// (SigV4Verifier: the canonical request rebuilt from what it received, the
// X-Amz-Date within 5 minutes of its clock, the credential scope, the access
// key and the session token of temporary credentials) and refuses in AWS's
// JSON error envelope {"__type", "message"} with AWS's status. Success is
// {"authorizationData": [{"authorizationToken": base64("AWS:" + password),
// "expiresAt": epoch seconds with milliseconds, "proxyEndpoint"}]}. The
// issued token's Value is the authorizationToken; Request["password"] is the
// password. Default lifetime 12h.
type ECR struct {
	Base
	// Keys are the access keys ECR knows, by access key id.
	Keys map[string]AWSKey
	// Lookup, when set, is asked for a key Keys does not hold (temporary
	// credentials another fake issued).
	Lookup func(accessKeyID string) (AWSKey, bool)
	// Region of the registry; default us-east-1.
	Region string
	// ProxyEndpoint is the registry URL answered; default
	// https://123456789012.dkr.ecr.<region>.amazonaws.com.
	ProxyEndpoint string
}

func (f *ECR) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.answer)
}

// ECRPassword is the password of an authorization token ECR issued, and
// when the token expires on the fake's clock.
type ECRPassword struct {
	Password  string
	ExpiresAt time.Time
}

// Passwords returns the password of every authorization token issued so far,
// oldest first.
func (f *ECR) Passwords() []ECRPassword {
	var out []ECRPassword
	for _, t := range f.Issued() {
		out = append(out, ECRPassword{Password: ecrPassword(t), ExpiresAt: t.ExpiresAt})
	}
	return out
}

// ValidPassword reports whether password is the password of an authorization
// token this fake issued that has not expired, as the account's registry
// checks the Basic credentials AWS:<password> a pull presents. A new token
// does not end the ones issued before: each lives until its expiresAt.
func (f *ECR) ValidPassword(password string) bool {
	if password == "" {
		return false
	}
	t, ok := f.token(func(t *IssuedToken) bool { return ecrPassword(*t) == password })
	return ok && !t.Revoked && f.now().Before(t.ExpiresAt)
}

func ecrPassword(t IssuedToken) string {
	p, _ := t.Request["password"].(string)
	return p
}

func (f *ECR) region() string {
	if f.Region == "" {
		return "us-east-1"
	}
	return f.Region
}

func ecrFailure(e *AWSError, outcome Outcome) reply {
	return reply{status: e.Status, outcome: outcome, body: e.Body(),
		header: http.Header{"X-Amzn-Errortype": {e.Type}}}
}

func (f *ECR) answer(r *http.Request) reply {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 64<<10))
	if err != nil {
		return ecrFailure(awsErr(http.StatusBadRequest, "SerializationException", "the body could not be read"), OutcomeRejected)
	}
	keys := f.Keys
	if f.Lookup != nil {
		keys = maps.Clone(f.Keys)
		if keys == nil {
			keys = map[string]AWSKey{}
		}
		if a, err := parseAuthorization(r.Header.Get("Authorization")); err == nil {
			if key, ok := f.Lookup(a.accessKeyID); ok {
				keys[a.accessKeyID] = key
			}
		}
	}
	verifier := SigV4Verifier{Keys: keys, Region: f.region(), Service: "ecr"}
	if _, failure := verifier.Verify(r, body, f.now()); failure != nil {
		outcome := OutcomeUnauthorized
		if failure.Status == http.StatusBadRequest {
			outcome = OutcomeRejected
		}
		return ecrFailure(failure, outcome)
	}
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		return ecrFailure(awsErr(http.StatusNotFound, "UnknownOperationException", "POST / only"), OutcomeRejected)
	case r.Header.Get("X-Amz-Target") != ECRTarget:
		return ecrFailure(awsErr(http.StatusBadRequest, "UnknownOperationException", "the X-Amz-Target names no ECR operation this fake serves"), OutcomeRejected)
	case !hasContentType(r, ECRContentType):
		return ecrFailure(awsErr(http.StatusBadRequest, "SerializationException", "Content-Type must be "+ECRContentType), OutcomeRejected)
	}
	var input map[string]any
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&input); err != nil || input == nil {
		return ecrFailure(awsErr(http.StatusBadRequest, "SerializationException", "the body must be a JSON object"), OutcomeRejected)
	}
	now := f.now()
	expires := now.Add(f.lifetime(ECRDefaultLifetime))
	password := randomToken("ecr-", 24)
	token := base64.StdEncoding.EncodeToString([]byte("AWS:" + password))
	f.record(IssuedToken{Value: token, IssuedAt: now, ExpiresAt: expires, Request: map[string]any{"password": password}})
	endpoint := f.ProxyEndpoint
	if endpoint == "" {
		endpoint = "https://123456789012.dkr.ecr." + f.region() + ".amazonaws.com"
	}
	// ECR writes expiresAt as epoch seconds with a fraction.
	expiresAt := json.Number(strconv.FormatFloat(float64(expires.UnixMilli())/1000, 'f', 3, 64))
	return reply{status: http.StatusOK, outcome: OutcomeIssued, body: map[string]any{
		"authorizationData": []map[string]any{{
			"authorizationToken": token,
			"expiresAt":          expiresAt,
			"proxyEndpoint":      endpoint,
		}},
	}}
}
