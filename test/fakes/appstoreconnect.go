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
	"crypto/ecdsa"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AppStoreConnectAudience is the aud every App Store Connect API token carries.
const AppStoreConnectAudience = "appstoreconnect-v1"

// AppStoreConnect fakes the App Store Connect API's authentication as its
// documentation ("Generating tokens for API requests") describes it. There is
// no token endpoint: every request carries, as its bearer token, a JWT the
// team signs itself with ES256 and its API key, with the header's kid the key
// id and typ JWT, and the claims iss (the issuer id), iat, exp (tokens that
// expire more than 20 minutes after they were issued are refused) and aud
// appstoreconnect-v1. GET /v1/apps answers 200 with a JSON:API document when
// the token is valid, and 401 NOT_AUTHORIZED with the errors envelope when it
// is not.
type AppStoreConnect struct {
	Base
	// IssuerID is the team's issuer id, the iss of its tokens.
	IssuerID string
	// Keys are the team's API keys by key id.
	Keys map[string]*ecdsa.PublicKey

	mu       sync.Mutex
	accepted []string
}

// NewAppStoreConnect returns a fake for one team with one API key.
func NewAppStoreConnect(issuerID, keyID string, key *ecdsa.PublicKey) *AppStoreConnect {
	return &AppStoreConnect{IssuerID: issuerID, Keys: map[string]*ecdsa.PublicKey{keyID: key}}
}

func (f *AppStoreConnect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.answer)
}

// Accepted lists the distinct tokens the fake accepted, in order.
func (f *AppStoreConnect) Accepted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.accepted...)
}

func appStoreFailure(status int, outcome Outcome, code, title, detail string) reply {
	return reply{status: status, outcome: outcome, body: map[string]any{
		"errors": []map[string]any{{"status": http.StatusText(status), "code": code, "title": title, "detail": detail}},
	}}
}

func (f *AppStoreConnect) answer(r *http.Request) reply {
	if r.Method != http.MethodGet || r.URL.Path != "/v1/apps" {
		return appStoreFailure(http.StatusNotFound, OutcomeRejected, "NOT_FOUND",
			"The specified resource does not exist", "The path provided does not match a defined resource type.")
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return appStoreFailure(http.StatusUnauthorized, OutcomeUnauthorized, "NOT_AUTHORIZED",
			"Authentication credentials are missing or invalid.", "Provide a properly configured and signed bearer token.")
	}
	f.rememberCredential(raw)
	if err := f.check(raw); err != nil {
		return appStoreFailure(http.StatusUnauthorized, OutcomeUnauthorized, "NOT_AUTHORIZED",
			"Authentication credentials are missing or invalid.", err.Error())
	}
	f.mu.Lock()
	if len(f.accepted) == 0 || f.accepted[len(f.accepted)-1] != raw {
		f.accepted = append(f.accepted, raw)
	}
	f.mu.Unlock()
	return reply{status: http.StatusOK, outcome: OutcomeIssued, body: map[string]any{
		"data": []map[string]any{{"type": "apps", "id": "1234567890", "attributes": map[string]any{"name": "Example", "bundleId": "com.example.app"}}},
	}}
}

// check verifies a token the way the API does: ES256, a known kid, typ JWT,
// the signature, iss, aud, and a lifetime of at most 20 minutes that has begun
// and not ended.
func (f *AppStoreConnect) check(raw string) error {
	now := f.now()
	claims := jwt.MapClaims{}
	token, err := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			key := f.Keys[kid]
			if key == nil {
				return nil, errors.New("unknown key id")
			}
			return key, nil
		})
	if err != nil {
		return errors.New("Provide a properly configured and signed bearer token, and make sure that it has not expired.")
	}
	if typ, _ := token.Header["typ"].(string); typ != "JWT" {
		return errors.New("The token's header must have typ JWT.")
	}
	if iss, _ := claims["iss"].(string); iss != f.IssuerID {
		return errors.New("The token's issuer is not known.")
	}
	if aud, _ := claims["aud"].(string); aud != AppStoreConnectAudience {
		return errors.New("The token's audience must be appstoreconnect-v1.")
	}
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil || iat.After(now.Add(time.Minute)) {
		return errors.New("The token's iat is missing or in the future.")
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil || !exp.After(now) {
		return errors.New("The token has expired.")
	}
	if exp.Sub(iat.Time) > 20*time.Minute || exp.Sub(now) > 20*time.Minute {
		return errors.New("Tokens that expire more than 20 minutes into the future are not valid.")
	}
	return nil
}
