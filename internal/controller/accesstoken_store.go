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
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/util/csaupgrade"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// store writes a freshly issued token: state first (so a crash never loses the
// refresh token), then the Secret pods mount, then status.
func (r *AccessTokenReconciler) store(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, d decision, tok *issuer.Token, now time.Time) error {
	var moved *secret.Superseded
	if in.moved && in.state.Token != "" {
		// The token of the issuer the AccessToken moved from: revoked through
		// that issuer, after its own grace period.
		if s, ok := r.movedToken(ctx, in, now); ok {
			moved = &s
		}
	}
	out := secret.Output{Token: tok.Value, Fields: tok.Fields, IssuedAt: tok.IssuedAt.Truncate(time.Second), ExpiresAt: truncated(tok.ExpiresAt)}
	if at.Spec.Secret.PreviousKey != "" && in.secret != nil && in.secretMatches && !tokenExpired(at, now) {
		out.Previous, out.PreviousUntil = string(in.secret.Data[secret.Key(at)]), previousUntil(at, in, now)
		if moved != nil {
			out.PreviousUntil = minTime(out.PreviousUntil, moved.RevokeAt).Truncate(time.Second)
		}
	}
	data, err := secret.Data(at, out)
	if err != nil {
		// CheckOutputs passed before the call: only the size of what the
		// provider answered can be at fault.
		// Terminal: retrying would mint again and again a token that cannot be
		// written, so it waits for a change, with the long backoff.
		return &issuer.Error{Class: issuer.ClassInvalidConfig, Message: "the token cannot be written: " + err.Error()}
	}
	previous := at.Status.TokenFingerprint
	if in.keepsState() || in.moved {
		st := in.state
		switch {
		case st.Token == "", st.Token == tok.Value:
			// Nothing held, or this very token: written to the state by an
			// attempt whose Secret write failed.
		case in.moved:
			if moved != nil {
				st.Superseded = append(st.Superseded, *moved)
				capSuperseded(&st, now)
			}
		case in.spec.Revoke != nil:
			st.Superseded = append(st.Superseded, secret.Superseded{Token: st.Token, ID: st.TokenID,
				RevokeAt: now.Add(revokeGrace(in.spec)), Issuer: in.issuerKey, IssuerUID: string(in.issuerUID)})
			capSuperseded(&st, now)
		}
		st.Issuer, st.IssuerUID, st.IssuerEndpoint = in.issuerKey, string(in.issuerUID), issuerEndpoint(in.spec)
		st.Token, st.Fields, st.TokenID, st.FieldsDropped = "", nil, "", false
		if in.keepsState() {
			st.Token, st.Fields, st.TokenID = tok.Value, tok.Fields, tok.ID
		}
		if tok.RefreshToken != "" {
			st.RefreshToken, st.RefreshTokenExpiresAt = tok.RefreshToken, tok.RefreshTokenExpiresAt
		}
		if err := r.applyState(ctx, at, st); err != nil {
			return err
		}
		in.state, in.stateDirty, in.moved = st, false, false
	}
	rec := secret.Record{
		Fingerprint:    r.Fingerprinter.Fingerprint([]byte(tok.Value)),
		IssuedAt:       out.IssuedAt,
		ExpiresAt:      out.ExpiresAt,
		InputsHash:     in.inputsHash,
		RenewalRequest: secret.RenewalRequestHash(at.Annotations[tokensv1alpha1.AnnotationRenew]),
	}
	if out.Previous != "" {
		rec.PreviousUntil = &out.PreviousUntil
	}
	written, err := r.writeSecret(ctx, at, in, data, rec)
	if err != nil {
		return err
	}
	r.copies.Store(client.ObjectKeyFromObject(at), tokenCopy{uid: at.UID, token: tok.Value, fields: tok.Fields, secretVersion: written})
	in.secret, in.unproven = &corev1.Secret{Data: data}, false
	in.secretMatches = true
	in.previous, in.previousUntil = out.Previous, out.PreviousUntil

	st := &at.Status
	first := st.IssuedAt == nil
	setIssued(at, rec, in.renewalFloor)
	recordHistory(at, rec, issuerRefOf(at), previous, now)
	in.movingFrom = ""
	st.LastRenewalRequest = at.Annotations[tokensv1alpha1.AnnotationRenew]

	reason, verb := tokensv1alpha1.ReasonRenewed, "renewed"
	if first {
		reason, verb = tokensv1alpha1.ReasonIssued, "issued"
	}
	msg := fmt.Sprintf("Token %s (%s)%s", verb, d.message, expiryPhrase(st))
	failing := meta.IsStatusConditionFalse(st.Conditions, tokensv1alpha1.ConditionRenewing)
	condReason, condMsg := reason, msg
	if shortLived(at, in.renewalFloor) {
		// Served, but renewed at the floor: the condition says so, and
		// an event marks the change.
		if prev := meta.FindStatusCondition(st.Conditions, tokensv1alpha1.ConditionRenewing); prev == nil || prev.Reason != tokensv1alpha1.ReasonShortLivedToken {
			r.Recorder.Eventf(at, nil, corev1.EventTypeWarning, tokensv1alpha1.ReasonShortLivedToken, "Issue", "%s", shortLivedMessage(at, in.renewalFloor))
		}
		condReason, condMsg = tokensv1alpha1.ReasonShortLivedToken, msg+"; "+shortLivedMessage(at, in.renewalFloor)
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: tokensv1alpha1.ConditionRenewing, Status: metav1.ConditionTrue, Reason: condReason, Message: condMsg,
		ObservedGeneration: at.Generation,
	})
	switch {
	case failing:
		// Events mark transitions: a routine renewal is in status and metrics,
		// and costs no extra write; recovering from failures is news, and so is
		// the first token.
		r.Recorder.Eventf(at, nil, corev1.EventTypeNormal, reason, "Issue", "%s after failing", msg)
	case first:
		r.Recorder.Eventf(at, nil, corev1.EventTypeNormal, reason, "Issue", "%s", msg)
	}
	warnExpiryUnknown(at, r.Recorder)
	kind, ns, name := splitIssuerKey(in.issuerKey)
	tokensIssued.WithLabelValues(kind, ns, name).Inc()
	auditMint(ctx, in, d.reason, tok, st.TokenFingerprint, previous)
	if r.RenewalEvents && !first && !failing {
		r.Recorder.Eventf(at, nil, corev1.EventTypeNormal, reason, "Issue", "%s", msg)
	}

	if previous != "" && previous != st.TokenFingerprint {
		r.restartTargets(ctx, at, now)
	}
	return nil
}

func expiryPhrase(st *tokensv1alpha1.AccessTokenStatus) string {
	s := ""
	if st.ExpiresAt != nil {
		s += "; expires " + st.ExpiresAt.UTC().Format(time.RFC3339)
	}
	if st.RenewalTime != nil {
		s += "; next renewal " + st.RenewalTime.UTC().Format(time.RFC3339)
	}
	return s
}

// DefaultPreviousKeyFor is how long previousKey holds a replaced token when
// previousKeyFor is not set.
const DefaultPreviousKeyFor = 5 * time.Minute

// previousUntil is when the token a renewal at now replaces leaves
// previousKey: after previousKeyFor, when it expires, or when it is revoked,
// whichever comes first (whole seconds, as the Secret records it).
func previousUntil(at *tokensv1alpha1.AccessToken, in *inputs, now time.Time) time.Time {
	until := now.Add(DefaultPreviousKeyFor)
	if f := at.Spec.Secret.PreviousKeyFor; f != nil && f.Duration > 0 {
		until = now.Add(f.Duration)
	}
	if exp := at.Status.ExpiresAt; exp != nil && exp.Before(&metav1.Time{Time: until}) {
		until = exp.Time
	}
	if in.spec != nil && in.spec.Revoke != nil {
		until = minTime(until, now.Add(revokeGrace(in.spec)))
	}

	return until.Truncate(time.Second)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// errSecretTaken is returned when a Secret of the wanted name appeared between
// the decision to mint and the write: the token minted is not written.
var errSecretTaken = errors.New("a Secret of that name was created by someone else meanwhile; the token obtained for it was discarded")

// writeSecret writes the AccessToken's Secret and returns the resourceVersion
// written. A Secret known not to exist (in.secret is nil, and the caches or a
// live read showed no other of that name) is created; one that exists is
// applied.
func (r *AccessTokenReconciler) writeSecret(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, data map[string][]byte, rec secret.Record) (string, error) {
	name := types.NamespacedName{Namespace: at.Namespace, Name: at.Spec.Secret.Name}
	rec.OwnerProof = r.Fingerprinter.OwnerProof(at.Namespace, at.Spec.Secret.Name, "AccessToken", at.Name)
	rec.InputsIdentity = in.inputsIdentity
	if rec.RenewalRequest == "" {
		// A rewrite of the token status knows: the request it answered.
		rec.RenewalRequest = secret.RenewalRequestHash(at.Status.LastRenewalRequest)
	}
	if in.reown {
		if err := r.reownSecret(ctx, at, in); err != nil {
			return "", err
		}
	}
	if in.secret == nil {
		s := secret.New(at, data, rec)
		err := r.Create(ctx, s, client.FieldOwner(secret.FieldOwner))
		if err == nil {
			r.chargeWrite(at, data)
			return s.ResourceVersion, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("creating Secret %s: %w", name, err)
		}
		// Created meanwhile: by this process (a write no cache shows yet), or
		// by someone else.
		if err := r.gatherSecret(ctx, r.APIReader, at, in); err != nil {
			return "", err
		}
		if in.foreign {
			return "", fmt.Errorf("writing Secret %s: %w", name, errSecretTaken)
		}
	}
	if in.secret != nil && secret.CreatedByUpdate(in.secret) && secret.LeavesOut(in.secret, at, data, rec) {
		// The create's ownership would keep what this apply leaves out.
		if err := r.upgradeOwnership(ctx, name); err != nil {
			return "", err
		}
	}
	desired := secret.Desired(at, data, rec)
	if err := r.Apply(ctx, desired, client.FieldOwner(secret.FieldOwner), client.ForceOwnership); err != nil {
		return "", fmt.Errorf("writing Secret %s: %w", name, err)
	}
	r.chargeWrite(at, data)
	if in.adopting {
		r.Recorder.Eventf(at, nil, corev1.EventTypeNormal, reasonSecretAdopted, "Adopt",
			"Secret %s, marked %s, now belongs to this AccessToken", at.Spec.Secret.Name, secret.AnnotationAdopt)
		in.adopting = false
	}
	return ptr.Deref(desired.ResourceVersion, ""), nil
}

// upgradeOwnership hands the fields tokenmint's create owns to its apply, so
// that an apply can remove them.
func (r *AccessTokenReconciler) upgradeOwnership(ctx context.Context, name types.NamespacedName) error {
	// Metadata only: the managed fields are all it needs, not the token.
	live := secretMetadata()
	if err := r.APIReader.Get(ctx, name, live); err != nil {
		return client.IgnoreNotFound(err)
	}
	return upgradeToApply(ctx, r.Client, live)
}

// upgradeToApply converts the managed fields of live, a Secret tokenmint
// created, to apply ownership.
func upgradeToApply(ctx context.Context, c client.Client, live *metav1.PartialObjectMetadata) error {
	patch, err := csaupgrade.UpgradeManagedFieldsPatch(live, sets.New(secret.FieldOwner), secret.FieldOwner)
	if err != nil || patch == nil {
		return err
	}
	if err := c.Patch(ctx, live, client.RawPatch(types.JSONPatchType, patch)); err != nil {
		return fmt.Errorf("handing Secret %s/%s's fields to server-side apply: %w", live.Namespace, live.Name, err)
	}
	return nil
}

// secretMayExist reports whether the metadata cache shows a Secret of the
// AccessToken's Secret name (true as well when it cannot tell). It is asked
// when the typed cache, which holds tokenmint's own Secrets, shows none: the
// metadata cache holds all others.
func (r *AccessTokenReconciler) secretMayExist(ctx context.Context, at *tokensv1alpha1.AccessToken) bool {
	m := secretMetadata()
	err := r.Metadata.Get(ctx, types.NamespacedName{Namespace: at.Namespace, Name: at.Spec.Secret.Name}, m)
	return !apierrors.IsNotFound(err)
}

// ownSecretWrite reports whether a Secret event is for the version this
// process wrote last: it changes nothing the reconcile that wrote it did not
// already know, so it is not worth another reconcile.
func (r *AccessTokenReconciler) ownSecretWrite(o client.Object) bool {
	ref := metav1.GetControllerOfNoCopy(o)
	if ref == nil || ref.Kind != "AccessToken" {
		return false
	}
	c, ok := r.copies.Load(types.NamespacedName{Namespace: o.GetNamespace(), Name: ref.Name})
	return ok && c.(tokenCopy).uid == ref.UID && c.(tokenCopy).secretVersion != "" &&
		c.(tokenCopy).secretVersion == o.GetResourceVersion()
}

func (r *AccessTokenReconciler) applyState(ctx context.Context, at *tokensv1alpha1.AccessToken, st secret.State) error {
	ac, err := secret.DesiredState(at, r.OperatorNamespace, st)
	if err != nil {
		return err
	}
	if err := r.Apply(ctx, ac, client.FieldOwner(secret.FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("writing state Secret: %w", err)
	}
	r.chargeWrite(at, ac.Data)
	r.stateVersions.Store(client.ObjectKeyFromObject(at), writtenStatus{at.UID, ptr.Deref(ac.ResourceVersion, "")})
	return nil
}

// restore rewrites the Secret without minting: from the Secret's own data when only
// its metadata drifted, or from the state Secret's copy when the data was lost.
func (r *AccessTokenReconciler) restore(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, d decision) error {
	out, _ := in.output(r.Clock.Now())
	data, err := secret.Data(at, out)
	if err != nil {
		return &issuer.Error{Class: issuer.ClassInvalidConfig, Message: "the Secret cannot be written: " + err.Error()}
	}
	rec := recordOf(at)
	if out.Previous != "" {
		rec.PreviousUntil = &out.PreviousUntil
	}
	if in.secret != nil && in.secret.Type != "" && in.secret.Type != secretTypeOf(at) {
		// The type of a Secret cannot change: delete it and write it again.
		if err := r.Delete(ctx, in.secret); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("replacing Secret of a different type: %w", err)
		}
	}
	written, err := r.writeSecret(ctx, at, in, data, rec)
	if err != nil {
		return err
	}
	if c, ok := r.copies.Load(client.ObjectKeyFromObject(at)); ok && c.(tokenCopy).uid == at.UID {
		c := c.(tokenCopy)
		c.secretVersion = written
		r.copies.Store(client.ObjectKeyFromObject(at), c)
	}
	if d.reason != reasonTemplateChanged && d.reason != reasonOwnerProof {
		r.Recorder.Eventf(at, nil, corev1.EventTypeNormal, "SecretRestored", "Restore",
			"Secret %s restored without minting a new token", at.Spec.Secret.Name)
	}
	in.secret, in.unproven = &corev1.Secret{Data: data}, false
	in.secretMatches = true
	in.previous, in.previousUntil = out.Previous, out.PreviousUntil
	return nil
}

func secretTypeOf(at *tokensv1alpha1.AccessToken) corev1.SecretType {
	if at.Spec.Secret.Type == "" {
		return corev1.SecretTypeOpaque
	}
	return at.Spec.Secret.Type
}
