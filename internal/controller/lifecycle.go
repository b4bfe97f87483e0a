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
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// actionHold: nothing is called and nothing but status is written, because
// the AccessToken is suspended or the manager is read-only.
const actionHold action = "Hold"

// held decides whether work on an AccessToken is held: it comes before every
// other check, so that no decision that would call or write is ever made.
func held(in *inputs, _ time.Time) (decision, bool) {
	switch {
	case in.readOnly:
		return decision{actionHold, tokensv1alpha1.ReasonReadOnly,
			"the manager is read-only (--read-only): it mints, renews, revokes and writes nothing but status"}, true
	case in.at.Spec.Suspend:
		return decision{actionHold, tokensv1alpha1.ReasonSuspended,
			"spec.suspend is true: nothing is minted, renewed or revoked, and the Secret is left as it is"}, true
	}
	return decision{}, false
}

// isHoldReason reports whether a Renewing reason is one that held sets.
func isHoldReason(reason string) bool {
	return reason == tokensv1alpha1.ReasonSuspended || reason == tokensv1alpha1.ReasonReadOnly
}

// hold writes the status of an AccessToken whose work is held (see held):
// Ready still follows the token's expiry, Renewing says why nothing happens.
// It makes no call and writes neither the Secret, nor the state, nor the
// AccessToken's metadata. A Normal event marks the transition.
func (r *AccessTokenReconciler) hold(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, d decision, now time.Time) (ctrl.Result, error) {
	orig := at.DeepCopy()
	prev := meta.FindStatusCondition(at.Status.Conditions, tokensv1alpha1.ConditionRenewing)
	if prev == nil || prev.Reason != d.reason {
		r.Recorder.Eventf(at, nil, corev1.EventTypeNormal, d.reason, "Hold", "%s", d.message)
	}
	meta.SetStatusCondition(&at.Status.Conditions, metav1.Condition{
		Type: tokensv1alpha1.ConditionRenewing, Status: metav1.ConditionFalse, Reason: d.reason, Message: d.message,
		ObservedGeneration: at.Generation,
	})
	setReady(at, in, now)
	at.Status.ObservedGeneration = at.Generation
	if err := r.writeStatus(ctx, orig, at); err != nil {
		return ctrl.Result{}, err
	}
	// Come back when the token expires, to turn Ready False; a change of the
	// AccessToken (un-suspending it) queues it anyway.
	if exp := at.Status.ExpiresAt; exp != nil && now.Before(exp.Time) {
		return ctrl.Result{RequeueAfter: max(exp.Sub(now), time.Second)}, nil
	}
	return ctrl.Result{}, nil
}

// resume marks, on the first decision after a hold ends, that work resumed;
// the action that follows (a renewal, a failure) may set Renewing again.
func (r *AccessTokenReconciler) resume(at *tokensv1alpha1.AccessToken) {
	prev := meta.FindStatusCondition(at.Status.Conditions, tokensv1alpha1.ConditionRenewing)
	if prev == nil || !isHoldReason(prev.Reason) {
		return
	}
	r.Recorder.Eventf(at, nil, corev1.EventTypeNormal, tokensv1alpha1.ReasonResumed, "Resume", "work on the AccessToken resumed")
	meta.SetStatusCondition(&at.Status.Conditions, metav1.Condition{
		Type: tokensv1alpha1.ConditionRenewing, Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonResumed,
		Message: "work on the AccessToken resumed", ObservedGeneration: at.Generation,
	})
}

// releaseReadOnly lets a deleted AccessToken go on a read-only manager: its
// token belongs to the active cluster, so nothing is revoked and its state is
// left; only the finalizer is removed, so that deletion does not hang.
func (r *AccessTokenReconciler) releaseReadOnly(ctx context.Context, at *tokensv1alpha1.AccessToken) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(at, RevokeFinalizer) {
		return ctrl.Result{}, nil
	}
	patch := client.MergeFromWithOptions(at.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(at, RevokeFinalizer)
	return ctrl.Result{}, client.IgnoreNotFound(r.Patch(ctx, at, patch))
}

// revokesOnDelete reports whether deleting at revokes its tokens (spec.revocationPolicy).
func revokesOnDelete(at *tokensv1alpha1.AccessToken) bool {
	return at.Spec.RevocationPolicy != tokensv1alpha1.RevocationPolicyNone
}

// retainsSecret reports whether at's Secret outlives it (spec.secretDeletionPolicy).
func retainsSecret(at *tokensv1alpha1.AccessToken) bool {
	return at.Spec.SecretDeletionPolicy == tokensv1alpha1.SecretDeletionPolicyRetain
}

// wantsFinalizer reports whether at needs the finalizer: its deletion revokes
// through an issuer that can revoke, or its Secret is retained (the owner
// reference must go before the AccessToken does).
func wantsFinalizer(at *tokensv1alpha1.AccessToken, in *inputs) bool {
	return (in.spec != nil && in.spec.Revoke != nil && revokesOnDelete(at)) || retainsSecret(at)
}

// retainSecret removes at's owner reference from its Secret when the Secret is
// retained, so that Kubernetes' garbage collector leaves it when at goes.
func (r *AccessTokenReconciler) retainSecret(ctx context.Context, at *tokensv1alpha1.AccessToken) error {
	if !retainsSecret(at) {
		return nil
	}
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: at.Namespace, Name: at.Spec.Secret.Name}, s); err != nil {
		return client.IgnoreNotFound(err)
	}
	var refs []metav1.OwnerReference
	for _, ref := range s.OwnerReferences {
		if ref.UID != at.UID {
			refs = append(refs, ref)
		}
	}
	if len(refs) == len(s.OwnerReferences) {
		return nil
	}
	patch := client.MergeFromWithOptions(s.DeepCopy(), client.MergeFromWithOptimisticLock{})
	s.OwnerReferences = refs
	if err := r.Patch(ctx, s, patch); err != nil {
		return client.IgnoreNotFound(err)
	}
	r.Recorder.Eventf(at, nil, corev1.EventTypeNormal, "SecretRetained", "Delete",
		"Secret %q is retained (secretDeletionPolicy: Retain): it no longer belongs to the AccessToken", s.Name)
	return nil
}
