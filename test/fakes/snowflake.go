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
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SnowflakeStatementsPath is the Snowflake SQL API's statements endpoint.
const SnowflakeStatementsPath = "/api/v2/statements"

// Snowflake fakes the Snowflake SQL API's key-pair authentication as its
// documentation ("Using key-pair authentication") describes it: the bearer
// token is a JWT the client signs with RS256 and the user's private key, sent
// with X-Snowflake-Authorization-Token-Type: KEYPAIR_JWT; its iss is
// <ACCOUNT>.<USER>.SHA256:<fingerprint of the public key>, its sub
// <ACCOUNT>.<USER> (account and user upper case), and exp at most an hour
// after iat. The fingerprint must be that of the key registered for the user
// (RSA_PUBLIC_KEY_FP). POST /api/v2/statements answers 200 with a result set
// when the token is valid, 401 with {code, message} when it is not.
type Snowflake struct {
	Base
	// Account and User, upper case.
	Account, User string
	// PublicKey registered for the user.
	PublicKey *rsa.PublicKey

	mu       sync.Mutex
	accepted []string
}

// Accepted lists the distinct tokens the fake accepted, in order.
func (f *Snowflake) Accepted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.accepted...)
}

func (f *Snowflake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.answer)
}

func snowflakeFailure(status int, outcome Outcome, code, message string) reply {
	return reply{status: status, outcome: outcome, body: map[string]any{"code": code, "message": message}}
}

func (f *Snowflake) answer(r *http.Request) reply {
	if r.Method != http.MethodPost || r.URL.Path != SnowflakeStatementsPath {
		return snowflakeFailure(http.StatusNotFound, OutcomeRejected, "390404", "Not found.")
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || r.Header.Get("X-Snowflake-Authorization-Token-Type") != "KEYPAIR_JWT" {
		return snowflakeFailure(http.StatusUnauthorized, OutcomeUnauthorized, "390101", "Authorization header not found in the request data.")
	}
	f.rememberCredential(raw)
	if err := f.check(raw); err != nil {
		return snowflakeFailure(http.StatusUnauthorized, OutcomeUnauthorized, "390144", err.Error())
	}
	f.mu.Lock()
	if len(f.accepted) == 0 || f.accepted[len(f.accepted)-1] != raw {
		f.accepted = append(f.accepted, raw)
	}
	f.mu.Unlock()
	return reply{status: http.StatusOK, outcome: OutcomeIssued, body: map[string]any{
		"code": "090001", "message": "Statement executed successfully.", "data": [][]string{{"1"}},
	}}
}

// check verifies the JWT as Snowflake does.
func (f *Snowflake) check(raw string) error {
	now := f.now()
	claims := jwt.MapClaims{}
	if _, err := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return f.PublicKey, nil }); err != nil {
		return errors.New("JWT token is invalid.")
	}
	der, err := x509.MarshalPKIXPublicKey(f.PublicKey)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(der)
	qualified := f.Account + "." + f.User
	if iss, _ := claims["iss"].(string); iss != qualified+".SHA256:"+base64.StdEncoding.EncodeToString(sum[:]) {
		return errors.New("JWT token is invalid: the issuer is not the user's key fingerprint.")
	}
	if sub, _ := claims["sub"].(string); sub != qualified {
		return errors.New("JWT token is invalid: the subject is not the user.")
	}
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil || iat.After(now.Add(time.Minute)) {
		return errors.New("JWT token is invalid: iat.")
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil || !exp.After(now) || exp.Sub(iat.Time) > time.Hour {
		return errors.New("JWT token has expired or lasts more than an hour.")
	}
	return nil
}
