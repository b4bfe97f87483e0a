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

package controller

import (
	"errors"
	"time"

	"github.com/tokenmint/tokenmint/internal/issuer"
)

// permanentRecheck is the wait after a failure an issuer's rules call
// Permanent: the same inputs are tried again only this rarely, in case the
// provider's side changed; a change of the AccessToken, its issuer or a
// credential is tried at once.
const permanentRecheck = time.Hour

// dropRejectedRefreshToken forgets a refresh token the provider refused, so
// that the next attempt starts with the first request instead of offering it
// again: after a failed call the state is written with the attempt, after a
// successful one store writes it with the new token (and its refresh token,
// if it brought one).
func dropRejectedRefreshToken(in *inputs, err error, tok *issuer.Token) {
	rejected := tok != nil && tok.RefreshRejected
	if ie := (*issuer.Error)(nil); errors.As(err, &ie) && ie.RefreshRejected {
		rejected = true
	}
	if rejected && err != nil && in.spec != nil && in.spec.RefreshExtends && in.state.Token != "" && !in.state.TokenFinal {
		// The held token could not be extended, and nothing replaced it
		// yet: the next attempt replaces it rather than asking again.
		in.state.TokenFinal, in.stateDirty = true, true
	}
	if !rejected || in.state.RefreshToken == "" {
		return
	}
	in.state.RefreshToken, in.state.RefreshTokenExpiresAt = "", nil
	if err != nil && in.keepsState() {
		in.stateDirty = true
	}
}
