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
	"errors"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// maxSuperseded is the most replaced tokens kept waiting for revocation: when
// renewals outpace the grace period, the oldest are revoked at once.
const maxSuperseded = 8

// capSuperseded brings the oldest superseded tokens' revocation forward to now
// when more than maxSuperseded wait, and forgets those beyond twice that (whose
// revocation kept failing), oldest first.
func capSuperseded(st *secret.State, now time.Time) {
	capSupersededTo(st, now, maxSuperseded)
}

// capSupersededTo is capSuperseded with limit tokens left waiting. A token
// whose revocation failed keeps its own retry time.
func capSupersededTo(st *secret.State, now time.Time, limit int) {
	if n := len(st.Superseded) - 2*maxSuperseded; n > 0 {
		st.Superseded = slices.Clone(st.Superseded[n:])
	}
	for i := 0; i < len(st.Superseded)-limit; i++ {
		if st.Superseded[i].Attempts == 0 && st.Superseded[i].RevokeAt.After(now) {
			st.Superseded[i].RevokeAt = now
		}
	}
}

// revocationDue reports whether a superseded token's grace period is over.
func revocationDue(in *inputs, now time.Time) bool {
	for _, s := range in.state.Superseded {
		if !now.Before(s.RevokeAt) && revocable(in, s) && !in.secretHolds(s.Token) {
			return true
		}
	}
	return false
}

// revokeSuperseded revokes replaced tokens whose grace period is over, and
// writes the state if anything in it changed and is not written yet.
func (r *AccessTokenReconciler) revokeSuperseded(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, now time.Time) error {
	err := r.revokeDue(ctx, at, in, now)
	if in.stateDirty {
		if werr := r.writeState(ctx, at, in); werr != nil {
			return werr
		}
		in.stateDirty = false
	}
	return err
}

// revokeDue revokes replaced tokens whose grace period is over and records
// the outcome in in.state, marking it dirty, without writing it: a mint that
// follows writes it once, with its new token.
func (r *AccessTokenReconciler) revokeDue(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, now time.Time) error {
	if len(in.state.Superseded) == 0 {
		return nil
	}
	var keep []secret.Superseded
	changed := false
	var errs []error
	for _, s := range in.state.Superseded {
		if now.Before(s.RevokeAt) || (in.previous != "" && in.previous == s.Token) || !revocable(in, s) || in.secretHolds(s.Token) {
			// Not yet; or pods may still read it under previousKey, which is
			// emptied first (previousUntil is never after RevokeAt); or the
			// Secret still holds it, its replacement not written (a failed
			// write): revoked once the Secret no longer does.
			keep = append(keep, s)
			continue
		}
		changed = true
		if err := r.revokeAudited(ctx, in, s, revokeSuperseded); err != nil {
			errs = append(errs, err)
			s.Attempts++
			var unreachable *revokerError
			if errors.As(err, &unreachable) && s.Attempts == 1 {
				// Said at once: the issuer that minted it is the only one
				// it may be sent to.
				r.Recorder.Eventf(at, nil, corev1.EventTypeWarning, tokensv1alpha1.ReasonRevokeFailed, "Revoke",
					"Cannot revoke a superseded token: %s", unreachable.Error())
			}
			if s.Attempts < maxRevokeAttempts {
				s.RevokeAt = now.Add(time.Duration(s.Attempts) * time.Minute)
				keep = append(keep, s)
			} else {
				r.Recorder.Eventf(at, nil, corev1.EventTypeWarning, tokensv1alpha1.ReasonRevokeFailed, "Revoke",
					"Gave up revoking a superseded token after %d attempts", s.Attempts)
			}
			continue
		}
		recordRevoked(at, r.Fingerprinter.Fingerprint([]byte(s.Token)), now)
		r.Recorder.Eventf(at, nil, corev1.EventTypeNormal, tokensv1alpha1.ReasonRevoked, "Revoke", "Superseded token revoked")
	}
	if !changed {
		return nil
	}
	in.state.Superseded = keep
	in.stateDirty = true
	return errors.Join(errs...)
}

const maxRevokeAttempts = 5

// secretHolds reports whether the Secret pods mount holds token as its
// token: it is never revoked while it does.
func (in *inputs) secretHolds(token string) bool {
	return token != "" && in.secret != nil && in.at != nil && string(in.secret.Data[secret.Key(in.at)]) == token
}

// revoke sends s to the issuer that minted it, and to no other.
func (r *AccessTokenReconciler) revoke(ctx context.Context, in *inputs, s secret.Superseded) error {
	call, err := r.buildCall(ctx, in)
	if err != nil {
		return err
	}
	call.RefreshToken = ""
	if r.Limiters != nil {
		if err := r.Limiters.Wait(ctx, in.issuerKey, in.at.Namespace); err != nil {
			return err
		}
	}
	return r.Tokens.Revoke(ctx, call, s.Token, s.ID)
}

// deleteState removes the state Secret of at, if any, under its name or the
// UID an earlier version named it by.
func (r *AccessTokenReconciler) deleteState(ctx context.Context, at *tokensv1alpha1.AccessToken) error {
	for _, name := range []string{secret.StateName(at), secret.UIDStateName(at)} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.OperatorNamespace}}
		if err := r.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// orphanStateGrace is how long a state Secret whose AccessToken is gone is
// kept before it is removed. A restore re-creates objects in an order of its
// own, often the operator namespace (and so the state Secrets) long before the
// AccessTokens and their Secrets; the grace lets them find their state. An
// AccessToken deleted the usual way removes its state itself, at once.
const orphanStateGrace = time.Hour

// deleteOrphanState removes the state Secret of an AccessToken that has been
// gone for orphanStateGrace, unless its token Secret is still there and proves
// it was written for an AccessToken of that name: a restore from backup is
// re-creating them, and the AccessToken will be back (a Secret the garbage
// collector then deletes queues this again). It returns when to look again.
func (r *AccessTokenReconciler) deleteOrphanState(ctx context.Context, key types.NamespacedName) (time.Duration, error) {
	list := &corev1.SecretList{}
	if err := r.List(ctx, list, client.InNamespace(r.OperatorNamespace),
		client.MatchingLabels{secret.LabelComponent: secret.ComponentState}); err != nil {
		return 0, err
	}
	var orphans []*corev1.Secret
	for i := range list.Items {
		s := &list.Items[i]
		if s.Annotations[secret.AnnotationAccessToken] != key.String() {
			continue
		}
		if name := s.Annotations[secret.AnnotationSecret]; name != "" {
			tok := &corev1.Secret{}
			err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: name}, tok)
			if err == nil && r.Fingerprinter.ProvesOwner(tok, "AccessToken", key.Name) {
				continue
			}
			if client.IgnoreNotFound(err) != nil {
				return 0, err
			}
		}
		orphans = append(orphans, s)
	}
	if len(orphans) == 0 {
		r.orphans.Delete(key)
		return 0, nil
	}
	now := r.Clock.Now()
	seen, _ := r.orphans.LoadOrStore(key, now)
	if wait := orphanStateGrace - now.Sub(seen.(time.Time)); wait > 0 {
		return wait, nil
	}
	for _, s := range orphans {
		if err := r.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
			return 0, err
		}
	}
	r.orphans.Delete(key)
	return 0, nil
}

// writeState writes in.state; a state left with nothing to do, for an issuer
// that keeps none (its superseded tokens were another issuer's), is deleted.
func (r *AccessTokenReconciler) writeState(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs) error {
	if !in.keepsState() && in.spec != nil && !in.moved && len(in.state.Superseded) == 0 {
		if err := r.deleteState(ctx, at); err != nil {
			return err
		}
		r.stateVersions.Delete(client.ObjectKeyFromObject(at))
		return nil
	}
	return r.applyState(ctx, at, in.state)
}
