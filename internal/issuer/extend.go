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
	"errors"
	"maps"
	"net/http"
	"time"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// HeldToken is the token an AccessToken holds, offered for extension by an
// issuer whose refresh extends its token (refreshExtends), such as a Vault
// lease renewed by its id.
type HeldToken struct {
	// Value and ID are the token and its id (response.tokenID).
	Value, ID string
	// Fields are the copied fields written beside it; an extension keeps them.
	Fields map[string]string
	// IssuedAt and ExpiresAt are the token's current lifetime: an extension
	// that grants less is the last one.
	IssuedAt  time.Time
	ExpiresAt *time.Time
	// NotAfter is the earliest expiry of the steps' results the token was
	// obtained with (Token.NotAfter): no extension goes past it.
	NotAfter *time.Time
}

// shortenedExtension is how much less time than the token had before an
// extension may grant and still not be the last: a provider's rounding is
// not a lease reaching its maximum TTL.
const shortenedExtension = 0.9

// extendOrReplace extends the held token through the refresh request and,
// when the provider refuses the extension, obtains a new token through the
// primary request, once.
func (e *Engine) extendOrReplace(ctx context.Context, c Call, parameters map[string]any, red *redactor) (*Token, error) {
	token, err := e.extend(ctx, c, parameters, red)
	if err == nil {
		return token, nil
	}
	if !refreshRejected(err) {
		// A 5xx or 429 says nothing about the held token: it stays, and so
		// does the load on the provider.
		return nil, permanentUnlessRefresh(err)
	}
	// The held token cannot be extended (revoked, expired, not renewable):
	// replaced through the primary request, once.
	token, err = e.primary(ctx, c, parameters, red)
	if err != nil {
		var ie *Error
		if errors.As(err, &ie) {
			ie.RefreshRejected = true
		}
		return nil, permanentUnlessRefresh(err)
	}
	token.RefreshRejected = true
	return withDefaultLifetime(c.Spec, token), nil
}

// extend sends the refresh request with the held token and its id, and
// reads only the new expiry from the answer.
func (e *Engine) extend(ctx context.Context, c Call, parameters map[string]any, red *redactor) (_ *Token, err error) {
	held := c.Held
	red.add(held.Value)
	if usesSteps(c.Spec, callRefresh) {
		keys, stepErr := e.runSteps(ctx, &c, parameters, red)
		if stepErr != nil {
			return nil, stepErr
		}
		defer func() { e.forgetRefused(keys, err) }()
	}
	issued := map[v1alpha1.IssuedValue]string{v1alpha1.IssuedAccessToken: held.Value}
	if held.ID != "" {
		issued[v1alpha1.IssuedTokenID] = held.ID
	}
	a, sentAt, err := e.exchange(ctx, c, callRefresh, c.Spec.Refresh, parameters, issued, red)
	if err != nil {
		return nil, err
	}
	response := &c.Spec.Response
	if a.status < 200 || a.status > 299 {
		return nil, endpointError(response, a, sentAt, red)
	}
	doc, err := decodeAnswer(response, a, red)
	if err != nil {
		return nil, &Error{Class: ClassInvalidResponse, Message: "the extension's response is not JSON"}
	}
	if err := checkSuccess(response, a, doc, sentAt, red); err != nil {
		return nil, err
	}
	expiresAt, err := readExpiry(doc, response.Expiry, held.Value, sentAt, a.offset)
	if err != nil {
		return nil, invalidResponse("the extended token's expiry: %v", err)
	}
	if held.NotAfter != nil && held.NotAfter.Before(expiresAt) {
		expiresAt = *held.NotAfter
	}
	token := &Token{Value: held.Value, ID: held.ID, Fields: maps.Clone(held.Fields), IssuedAt: sentAt,
		ExpiresAt: &expiresAt, NotAfter: held.NotAfter, Extended: true, Refreshed: true}
	if held.ExpiresAt != nil {
		before := held.ExpiresAt.Sub(held.IssuedAt)
		token.Final = float64(expiresAt.Sub(sentAt)) < shortenedExtension*float64(before)
	}
	return token, nil
}

// forgetRefused drops the step results a call used when the call was refused
// for its credentials: a login token revoked early is obtained afresh next
// time.
func (e *Engine) forgetRefused(keys []string, err error) {
	var ie *Error
	if errors.As(err, &ie) && (ie.Class == ClassUnauthorized ||
		ie.StatusCode == http.StatusUnauthorized || ie.StatusCode == http.StatusForbidden) {
		e.forget(keys)
	}
}
