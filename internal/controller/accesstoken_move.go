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
	"context"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// Moving an AccessToken to another issuer (a change of spec.issuerRef) keeps
// the current token in the Secret until the new issuer has issued one: the
// old issuer renews nothing meanwhile, and a failure of the new one keeps the
// old token for as long as it is valid. Once the new token is written, the
// old one joins the superseded tokens, stamped with the issuer that minted
// it, and is revoked through that issuer after its revokeGracePeriod. The old
// issuer's refresh token is dropped at once: no token, refresh token or id is
// ever sent to an issuer that did not produce it.

// reasonIssuerChanged re-issues at once after spec.issuerRef changed.
const reasonIssuerChanged = "IssuerChanged"

// maxHistory is the most tokens status.history lists.
const maxHistory = 5

// issuerRefOf is the AccessToken's issuerRef with its default kind.
func issuerRefOf(at *tokensv1alpha1.AccessToken) tokensv1alpha1.IssuerReference {
	ref := at.Spec.IssuerRef
	if ref.Kind == "" {
		ref.Kind = tokensv1alpha1.TokenIssuerKind
	}
	return ref
}

// describeIssuer names an issuer for a message: TokenIssuer "a".
func describeIssuer(ref tokensv1alpha1.IssuerReference) string {
	if ref.Kind == "" {
		ref.Kind = tokensv1alpha1.TokenIssuerKind
	}
	return fmt.Sprintf("%s %q", ref.Kind, ref.Name)
}

// tokenIssuer is the issuer that minted the current token, as status.history
// records it; ok is false when the history does not know the token.
func tokenIssuer(at *tokensv1alpha1.AccessToken) (ref tokensv1alpha1.IssuerReference, ok bool) {
	fp := at.Status.TokenFingerprint
	if fp == "" {
		return ref, false
	}
	for _, h := range at.Status.History {
		if h.Fingerprint == fp {
			return h.Issuer, true
		}
	}
	return ref, false
}

// movingFrom reports the issuer the current token came from when it is not
// the one spec.issuerRef names: the AccessToken is moving to another issuer.
func movingFrom(at *tokensv1alpha1.AccessToken) (tokensv1alpha1.IssuerReference, bool) {
	from, ok := tokenIssuer(at)
	if !ok {
		return from, false
	}
	if from.Kind == "" {
		from.Kind = tokensv1alpha1.TokenIssuerKind
	}
	return from, from != issuerRefOf(at)
}

// recordHistory puts the token just written at the head of status.history,
// marks the one it replaced (fingerprint replaced) and keeps maxHistory.
func recordHistory(at *tokensv1alpha1.AccessToken, rec secret.Record, ref tokensv1alpha1.IssuerReference, replaced string, now time.Time) {
	st := &at.Status
	if len(st.History) > 0 && st.History[0].Fingerprint == rec.Fingerprint {
		// The same token, extended (refreshExtends): its entry follows its expiry.
		if rec.ExpiresAt != nil {
			st.History[0].ExpiresAt = &metav1.Time{Time: *rec.ExpiresAt}
		}
		return
	}
	h := make([]tokensv1alpha1.TokenHistoryEntry, 0, maxHistory)
	e := tokensv1alpha1.TokenHistoryEntry{Fingerprint: rec.Fingerprint, Issuer: ref, IssuedAt: metav1.Time{Time: rec.IssuedAt}}
	if rec.ExpiresAt != nil {
		e.ExpiresAt = &metav1.Time{Time: *rec.ExpiresAt}
	}
	h = append(h, e)
	for _, old := range st.History {
		if len(h) == maxHistory {
			break
		}
		if old.Fingerprint == rec.Fingerprint {
			continue
		}
		if old.Fingerprint == replaced && replaced != "" && old.ReplacedAt == nil {
			old.ReplacedAt = &metav1.Time{Time: now.Truncate(time.Second)}
		}
		h = append(h, old)
	}
	st.History = h
}

// recordRevoked sets revokedAt on the history entry of fingerprint, if listed.
func recordRevoked(at *tokensv1alpha1.AccessToken, fingerprint string, now time.Time) {
	for i := range at.Status.History {
		if h := &at.Status.History[i]; h.Fingerprint == fingerprint && h.RevokedAt == nil {
			h.RevokedAt = &metav1.Time{Time: now.Truncate(time.Second)}
		}
	}
}

// ownedByCurrent reports whether s was minted by the issuer spec.issuerRef
// names now (the issuer in holds).
func ownedByCurrent(in *inputs, s secret.Superseded) bool {
	return s.Issuer == "" || (s.Issuer == in.issuerKey && s.IssuerUID == string(in.issuerUID))
}

// revocable reports whether s is to be revoked: through the current issuer
// when it can revoke, or through the other issuer that minted it (which, when
// it is gone or cannot revoke, fails and is given up after maxRevokeAttempts).
func revocable(in *inputs, s secret.Superseded) bool {
	if ownedByCurrent(in, s) {
		return in.spec != nil && in.spec.Revoke != nil
	}
	return true
}

// revokerFor returns the inputs to revoke s with: in itself for a token of the
// current issuer, else those of the issuer that minted it, never another.
func (r *AccessTokenReconciler) revokerFor(ctx context.Context, in *inputs, s secret.Superseded) (*inputs, error) {
	if ownedByCurrent(in, s) {
		return in, nil
	}
	if in.others == nil {
		in.others = map[string]*inputs{}
	}
	key := s.Issuer + "@" + s.IssuerUID
	if o, ok := in.others[key]; ok {
		return o, nil
	}
	o, err := r.issuerInputs(ctx, in.at, s.Issuer, types.UID(s.IssuerUID))
	if err != nil {
		return nil, err
	}
	if o.spec.Revoke == nil {
		kind, _, name := splitIssuerKey(s.Issuer)
		return nil, &issuer.Error{Class: issuer.ClassInvalidConfig, Message: fmt.Sprintf(
			"%s %q, which minted the token, has no revoke request: the token cannot be revoked", kind, name)}
	}
	in.others[key] = o
	return o, nil
}

// issuerInputs gathers what a revocation through the issuer of key and uid
// needs, for a token the AccessToken at holds from before it moved. An issuer
// that is gone, was created again (another UID) or cannot be used is an
// error: its tokens are sent nowhere. Only the parameters that issuer
// declares are passed on (those of the current spec: the ones the token was
// minted with are not kept).
func (r *AccessTokenReconciler) issuerInputs(ctx context.Context, at *tokensv1alpha1.AccessToken, key string, uid types.UID) (*inputs, error) {
	kind, _, name := splitIssuerKey(key)
	other := at.DeepCopy()
	other.Spec.IssuerRef = tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.IssuerKind(kind), Name: name}
	other.Spec.Parameters = nil
	o := &inputs{at: other, issuerKey: key, renewalFloor: r.MinRenewalInterval, readOnly: r.ReadOnly}
	gone := &issuer.Error{Class: issuer.ClassInvalidConfig, Message: fmt.Sprintf(
		"%s %q, which minted the token, is gone, was created again or cannot be used: the token cannot be revoked", kind, name)}
	if accessTokenIssuerKey(other) != key {
		return nil, gone
	}
	spec, gotUID, p, err := r.gatherIssuer(ctx, other, o)
	if err != nil {
		return nil, err
	}
	if p != nil || spec == nil || gotUID != uid {
		return nil, gone
	}
	other.Spec.Parameters = declaredParameters(spec, at.Spec.Parameters)
	o.spec, o.issuerUID = spec, gotUID
	return o, nil
}

// declaredParameters keeps the parameters spec declares and does not bind to
// a namespace label.
func declaredParameters(spec *tokensv1alpha1.IssuerSpec, params map[string]apiextensionsv1.JSON) map[string]apiextensionsv1.JSON {
	var out map[string]apiextensionsv1.JSON
	for i := range spec.Parameters {
		d := &spec.Parameters[i]
		if v, ok := params[d.Name]; ok && d.FromNamespaceLabel == "" {
			if out == nil {
				out = map[string]apiextensionsv1.JSON{}
			}
			out[d.Name] = v
		}
	}
	return out
}

// revokeGrace is an issuer's revokeGracePeriod, 5 minutes when unset.
func revokeGrace(spec *tokensv1alpha1.IssuerSpec) time.Duration {
	if spec != nil && spec.RevokeGracePeriod != nil {
		return spec.RevokeGracePeriod.Duration
	}
	return 5 * time.Minute
}

// movedToken is the superseded entry for the token that the issuer of
// in.state minted and a token of the current issuer now replaces, revoked
// through its own issuer after that issuer's grace period; ok is false when
// that issuer exists and cannot revoke (the token then expires on its own).
// An issuer that is gone gets the default grace period: its revocation fails
// and is given up as any other, with an event.
func (r *AccessTokenReconciler) movedToken(ctx context.Context, in *inputs, now time.Time) (secret.Superseded, bool) {
	s := secret.Superseded{Token: in.state.Token, ID: in.state.TokenID, Issuer: in.state.Issuer, IssuerUID: in.state.IssuerUID}
	var spec *tokensv1alpha1.IssuerSpec
	if o, err := r.issuerInputs(ctx, in.at, s.Issuer, types.UID(s.IssuerUID)); err == nil {
		if o.spec.Revoke == nil {
			return s, false
		}
		spec = o.spec
	}
	s.RevokeAt = now.Add(revokeGrace(spec))
	return s, true
}
