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
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// held says why work on a ClusterAccessToken is held, or nil: the manager is
// read-only, or the ClusterAccessToken is suspended. Read-only comes first, as
// for AccessTokens: it writes even less.
func (r *ClusterAccessTokenReconciler) held(cat *tokensv1alpha1.ClusterAccessToken) *problem {
	switch {
	case r.ReadOnly:
		return &problem{tokensv1alpha1.ReasonReadOnly,
			"the manager is read-only (--read-only): it writes no Secret and no source AccessToken, only this status"}
	case cat.Spec.Suspend:
		return &problem{tokensv1alpha1.ReasonSuspended,
			"spec.suspend is true: the source AccessToken is suspended, so nothing is minted, renewed or revoked, and no Secret is written or deleted"}
	}
	return nil
}

// hold writes the status of a ClusterAccessToken whose work is held (see
// held), and nothing else: no copy is created, updated or deleted, no
// finalizer added, and the source AccessToken is neither created nor changed,
// except that a suspended ClusterAccessToken suspends its source (spec.suspend,
// one write to its own child), so that the source mints, renews and revokes
// nothing either. Ready still follows the source's token; Renewing says why
// nothing happens, and a Normal event marks the transition.
//
// The source is suspended through its spec rather than by having the
// AccessToken controller look at its owner: the AccessToken's own hold then
// serves it unchanged (status, requeue at expiry, resume without a mint while
// the token is valid), and `kubectl get accesstoken` in the operator namespace
// shows the source as suspended too.
func (r *ClusterAccessTokenReconciler) hold(ctx context.Context, cat *tokensv1alpha1.ClusterAccessToken, p *problem) error {
	orig := cat.DeepCopy()
	st := &cat.Status
	st.ObservedGeneration = cat.Generation

	source, err := r.holdSource(ctx, cat, p)
	if err != nil {
		return err
	}
	var sourceSecret *corev1.Secret
	if source != nil {
		mirror(cat, source)
		if sourceSecret, err = r.currentSource(ctx, source); err != nil {
			return err
		}
	}
	set, err := r.targets(ctx, cat)
	if err != nil {
		return err
	}
	copies, err := r.copies(ctx, cat)
	if err != nil {
		return err
	}
	written, kept := 0, 0
	for _, s := range copies {
		switch {
		case slices.Contains(set.write, s.Namespace) && sourceSecret != nil && s.Type == sourceSecret.Type &&
			maps.EqualFunc(s.Data, sourceSecret.Data, bytes.Equal):
			written++
		case slices.Contains(set.keep, s.Namespace):
			kept++
		}
	}
	failures := set.failures
	slices.SortFunc(failures, func(a, b tokensv1alpha1.NamespaceFailure) int { return strings.Compare(a.Name, b.Name) })
	st.Namespaces, st.Written, st.Failing = int32(len(set.write)), int32(written), int32(len(failures))
	st.Failures = failures[:min(len(failures), maxReportedFailures)]

	// Ready as for a ClusterAccessToken at work, except that namespaces may
	// wait for the current token until work resumes.
	if c := clusterReady(cat, source, sourceSecret != nil); c != nil {
		if c.Status == metav1.ConditionTrue && written < len(set.write) {
			c.Status, c.Reason = metav1.ConditionFalse, p.reason
			c.Message = fmt.Sprintf("%d of the %d selected namespaces hold the current token; the others get it once work resumes",
				written, len(set.write))
		}
		meta.SetStatusCondition(&st.Conditions, *c)
	}
	if c := set.closed; c != nil {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionReady,
			Status: metav1.ConditionFalse, Reason: c.reason, ObservedGeneration: cat.Generation,
			Message: fmt.Sprintf("%s: no Secret is written; the %d written before are kept as they are", c.message, kept)})
	}
	prev := meta.FindStatusCondition(orig.Status.Conditions, tokensv1alpha1.ConditionRenewing)
	if prev == nil || prev.Reason != p.reason {
		r.Recorder.Eventf(cat, nil, corev1.EventTypeNormal, p.reason, "Hold", "%s", p.message)
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionRenewing,
		Status: metav1.ConditionFalse, Reason: p.reason, Message: p.message, ObservedGeneration: cat.Generation})
	if equality.Semantic.DeepEqual(orig.Status, cat.Status) {
		return nil
	}
	return r.Status().Patch(ctx, cat, client.MergeFrom(orig))
}

// holdSource reads the source AccessToken of a held ClusterAccessToken; nil
// when there is none to mirror (Ready then says why). It never creates one:
// a missing source stays missing until work resumes. A suspended
// ClusterAccessToken suspends its source, and changes nothing else of it.
func (r *ClusterAccessTokenReconciler) holdSource(ctx context.Context, cat *tokensv1alpha1.ClusterAccessToken, p *problem) (*tokensv1alpha1.AccessToken, error) {
	at := &tokensv1alpha1.AccessToken{}
	err := r.Get(ctx, types.NamespacedName{Namespace: r.OperatorNamespace, Name: sourceName(cat)}, at)
	switch {
	case apierrors.IsNotFound(err):
		meta.SetStatusCondition(&cat.Status.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionReady,
			Status: metav1.ConditionFalse, Reason: p.reason, ObservedGeneration: cat.Generation,
			Message: fmt.Sprintf("no token: the source AccessToken %s/%s does not exist, and is not created while work is held",
				r.OperatorNamespace, sourceName(cat))})
		return nil, nil
	case err != nil:
		return nil, err
	case !metav1.IsControlledBy(at, cat):
		meta.SetStatusCondition(&cat.Status.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionReady,
			Status: metav1.ConditionFalse, Reason: tokensv1alpha1.ReasonSecretNotOwned, ObservedGeneration: cat.Generation,
			Message: fmt.Sprintf("AccessToken %s/%s exists and is not this ClusterAccessToken's", r.OperatorNamespace, sourceName(cat))})
		return nil, nil
	}
	if p.reason == tokensv1alpha1.ReasonSuspended && !at.Spec.Suspend {
		patch := client.MergeFromWithOptions(at.DeepCopy(), client.MergeFromWithOptimisticLock{})
		at.Spec.Suspend = true
		if err := r.Patch(ctx, at, patch); err != nil {
			return nil, fmt.Errorf("suspending the source AccessToken: %w", err)
		}
	}
	return at, nil
}

// resume marks, on the first reconcile after a hold ends, that work resumed:
// the Renewing condition, mirrored from the source, may still say the source
// is held until the source's own reconcile catches up.
func (r *ClusterAccessTokenReconciler) resume(orig, cat *tokensv1alpha1.ClusterAccessToken) {
	if prev := meta.FindStatusCondition(orig.Status.Conditions, tokensv1alpha1.ConditionRenewing); prev != nil && isHoldReason(prev.Reason) {
		r.Recorder.Eventf(cat, nil, corev1.EventTypeNormal, tokensv1alpha1.ReasonResumed, "Resume", "work on the ClusterAccessToken resumed")
	}
	if c := meta.FindStatusCondition(cat.Status.Conditions, tokensv1alpha1.ConditionRenewing); c != nil && isHoldReason(c.Reason) {
		meta.SetStatusCondition(&cat.Status.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionRenewing,
			Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonResumed, ObservedGeneration: cat.Generation,
			Message: "work on the ClusterAccessToken resumed"})
	}
}

// releaseReadOnly lets a deleted ClusterAccessToken go on a read-only manager:
// its token belongs to the active cluster, so its copies and source are
// neither deleted nor revoked by the manager; only the finalizer is removed,
// so that a deletion synced from the active cluster does not hang. Kubernetes'
// garbage collector then removes what the ClusterAccessToken owns, as it does
// an AccessToken's Secret; the source's own finalizer is released the same way
// without a revocation.
func (r *ClusterAccessTokenReconciler) releaseReadOnly(ctx context.Context, cat *tokensv1alpha1.ClusterAccessToken) error {
	if !controllerutil.ContainsFinalizer(cat, ClusterAccessTokenFinalizer) {
		return nil
	}
	patch := client.MergeFromWithOptions(cat.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(cat, ClusterAccessTokenFinalizer)
	return client.IgnoreNotFound(r.Patch(ctx, cat, patch))
}
