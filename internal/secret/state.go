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

package secret

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// Labels and annotations of state Secrets.
const (
	// LabelComponent tells tokenmint's own Secrets apart.
	LabelComponent = "tokens.tokenmint.dev/component"
	// ComponentState is the LabelComponent value of state Secrets.
	ComponentState = "state"
	// LabelAccessTokenUID holds the UID of the AccessToken a state Secret
	// belongs to: informative only (the name and AnnotationAccessToken
	// identify it), and set again after a restore gives the AccessToken a new UID.
	LabelAccessTokenUID = "tokens.tokenmint.dev/access-token-uid"
	// AnnotationAccessToken holds "<namespace>/<name>" of that AccessToken.
	AnnotationAccessToken = "tokens.tokenmint.dev/access-token"
	// AnnotationSecret holds the name of that AccessToken's token Secret: while
	// a Secret of that name proves it was written for an AccessToken of that
	// name, the AccessToken is expected back (restored from backup), and its
	// state is not removed as an orphan.
	AnnotationSecret = "tokens.tokenmint.dev/secret"
)

const stateKey = "state.json"

// State is what tokenmint keeps about an AccessToken that pods must not see: the
// refresh token, and what it needs to revoke tokens later. It lives in a Secret in
// the operator's namespace, written only for issuers that return a refresh token
// or can revoke, so that other tokens cost no extra write.
type State struct {
	// Issuer ("kind/namespace/name") and IssuerUID identify the issuer that
	// minted everything below: none of it is ever sent to another issuer.
	Issuer    string `json:"issuer,omitempty"`
	IssuerUID string `json:"issuerUID,omitempty"`
	// IssuerEndpoint hashes where that issuer sends tokens (its URLs and the
	// CA it trusts): an issuer of the same kind and name with another UID is
	// taken as the same one, restored from backup, only when it matches.
	IssuerEndpoint string `json:"issuerEndpoint,omitempty"`
	// Token is the current token, kept so an edited or deleted Secret can be
	// restored without minting a new one.
	Token string `json:"token,omitempty"`
	// Fields are the copied fields written beside the token.
	Fields map[string]string `json:"fields,omitempty"`
	// RefreshToken is the last refresh token the endpoint returned.
	RefreshToken string `json:"refreshToken,omitempty"`
	// RefreshTokenExpiresAt is when RefreshToken expires, if known.
	RefreshTokenExpiresAt *time.Time `json:"refreshTokenExpiresAt,omitempty"`
	// TokenID is the provider's id of the current token, for revocation.
	TokenID string `json:"tokenID,omitempty"`
	// Superseded are replaced tokens waiting to be revoked.
	Superseded []Superseded `json:"superseded,omitempty"`
	// TokenNotAfter is when the steps' results the current token was
	// obtained with expire: an extension (refreshExtends) never goes past it.
	TokenNotAfter *time.Time `json:"tokenNotAfter,omitempty"`
	// TokenFinal is true when the current token cannot be extended any more
	// (an extension refused, or granting less time than before): the next
	// renewal replaces it.
	TokenFinal bool `json:"tokenFinal,omitempty"`
	// FieldsDropped is true when Fields were left out to bound the state:
	// Token then serves revocation, not restoring a lost Secret.
	FieldsDropped bool `json:"fieldsDropped,omitempty"`
}

// Superseded is a replaced token waiting for revocation.
type Superseded struct {
	Token    string    `json:"token,omitempty"`
	ID       string    `json:"id,omitempty"`
	RevokeAt time.Time `json:"revokeAt"`
	// Attempts counts failed revocations; the token is dropped after a few.
	Attempts int `json:"attempts,omitempty"`
	// Issuer and IssuerUID identify the issuer that minted the token, the
	// only one it is ever sent to: another than State's after the
	// AccessToken moved to another issuer. Empty in states written before
	// they were recorded: State's issuer then.
	Issuer    string `json:"issuer,omitempty"`
	IssuerUID string `json:"issuerUID,omitempty"`
}

// StatePrefix starts the name of every state Secret.
const StatePrefix = "tokenmint-state-"

// StateName returns the name of the state Secret of at: a hash of its
// namespace and name, so that an AccessToken restored from backup under a new
// UID finds its state (a refresh token, tokens still to revoke) again.
func StateName(at *tokensv1alpha1.AccessToken) string {
	sum := sha256.Sum256([]byte(at.Namespace + "/" + at.Name))
	return StatePrefix + hex.EncodeToString(sum[:20])
}

// UIDStateName is the name earlier versions gave the state Secret of at, by
// its UID: read when the state is not found under StateName, and moved there.
func UIDStateName(at *tokensv1alpha1.AccessToken) string {
	return StatePrefix + string(at.UID)
}

// MaxStateBytes bounds the encoded state of one AccessToken, and the state
// Secrets the manager's cache holds. A token and a refresh token of up to 16
// KiB each (issuer.MaxTokenBytes) fit; superseded tokens and copied fields
// take the rest, and give way when they do not fit (see Bound).
const MaxStateBytes = 64 << 10

// Bound returns st within MaxStateBytes encoded, and what it left out: first
// the oldest superseded tokens (which are then not revoked, and expire on
// their own), then the copied fields with the current token's restore copy
// (Restorable is then false, so a lost Secret is re-issued), then the current
// token itself (not revoked when the AccessToken is deleted) and last the
// refresh token. An honest provider's state (tokens of a few KiB) is never cut.
func (st State) Bound() (State, []string) {
	var dropped []string
	size := func(s State) int {
		raw, _ := json.Marshal(s)
		return len(raw)
	}
	if size(st) <= MaxStateBytes {
		return st, nil
	}
	st.Superseded = slices.Clone(st.Superseded)
	n := 0
	for len(st.Superseded) > 0 && size(st) > MaxStateBytes {
		st.Superseded = st.Superseded[1:]
		n++
	}
	if n > 0 {
		dropped = append(dropped, fmt.Sprintf("%d superseded tokens", n))
	}
	if len(st.Superseded) == 0 {
		st.Superseded = nil
	}
	if size(st) > MaxStateBytes && len(st.Fields) > 0 {
		st.Fields, st.FieldsDropped = nil, true
		dropped = append(dropped, "copied fields")
	}
	if size(st) > MaxStateBytes && st.Token != "" {
		st.Token, st.TokenID, st.Fields, st.FieldsDropped = "", "", nil, false
		dropped = append(dropped, "current token")
	}
	if size(st) > MaxStateBytes && st.RefreshToken != "" {
		st.RefreshToken, st.RefreshTokenExpiresAt = "", nil
		dropped = append(dropped, "refresh token")
	}
	return st, dropped
}

// Restorable reports whether st holds a complete copy of the current token
// and its copied fields, to restore a lost Secret without minting.
func (st State) Restorable() bool {
	return st.Token != "" && !st.FieldsDropped
}

// DesiredState returns the apply configuration of at's state Secret in
// namespace, with st bounded to MaxStateBytes (see Bound).
func DesiredState(at *tokensv1alpha1.AccessToken, namespace string, st State) (*corev1ac.SecretApplyConfiguration, error) {
	st, _ = st.Bound()
	raw, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encoding state: %w", err)
	}
	if len(raw) > MaxStateBytes {
		return nil, fmt.Errorf("state holds %d bytes, more than %d", len(raw), MaxStateBytes)
	}
	return corev1ac.Secret(StateName(at), namespace).
		WithLabels(map[string]string{
			tokensv1alpha1.LabelManagedBy: tokensv1alpha1.ManagedByValue,
			LabelComponent:                ComponentState,
			LabelAccessTokenUID:           string(at.UID),
		}).
		WithAnnotations(map[string]string{AnnotationAccessToken: at.Namespace + "/" + at.Name, AnnotationSecret: at.Spec.Secret.Name}).
		WithType(corev1.SecretTypeOpaque).
		WithData(map[string][]byte{stateKey: raw}), nil
}

// DecodeState reads a state Secret. A nil Secret is an empty state.
func DecodeState(s *corev1.Secret) (State, error) {
	var st State
	if s == nil || len(s.Data[stateKey]) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(s.Data[stateKey], &st); err != nil {
		return State{}, fmt.Errorf("state Secret %s/%s is corrupt: %w", s.Namespace, s.Name, err)
	}
	return st, nil
}
