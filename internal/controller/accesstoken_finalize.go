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
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// RevokeFinalizer is set on AccessTokens whose issuer can revoke, so the current
// token is revoked when the AccessToken is deleted.
const RevokeFinalizer = "tokens.tokenmint.dev/revoke"

// revokeOnDeleteTimeout bounds how long deletion waits for revocation: after it,
// the finalizer is removed whatever the provider says, so deletion never blocks for ever.
const revokeOnDeleteTimeout = 2 * time.Minute

// finalize revokes the current token (and any superseded ones) of a deleted
// AccessToken, then lets it go. The revocation calls run outside the reconcile
// workers; failures, and failures to gather what revocation needs, are retried
// for a bounded time, unless the issuer that would revoke is gone (see
// revokerGone): then nothing can revoke, and the AccessToken is let go at once.
func (r *AccessTokenReconciler) finalize(ctx context.Context, at *tokensv1alpha1.AccessToken) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(at, RevokeFinalizer) {
		return ctrl.Result{}, nil
	}
	first, _ := r.deletions.LoadOrStore(at.UID, r.Clock.Now())
	giveUp := first.(time.Time).Add(revokeOnDeleteTimeout)
	in, err := r.gather(ctx, at, true)
	if err != nil {
		if r.Clock.Now().Before(giveUp) {
			return ctrl.Result{}, fmt.Errorf("gathering what revocation needs: %w", err)
		}
		r.Recorder.Eventf(at, nil, corev1.EventTypeWarning, tokensv1alpha1.ReasonRevokeFailed, "Revoke",
			"Could not read what revoking the token needs within %s; letting the AccessToken go", revokeOnDeleteTimeout)
		return ctrl.Result{}, r.release(ctx, at)
	}
	var pending []secret.Superseded
	if revokesOnDelete(at) {
		// Each through the issuer that minted it: the current token may
		// still be that of an issuer the AccessToken is moving from.
		cur := secret.Superseded{Token: in.state.Token, ID: in.state.TokenID, Issuer: in.state.Issuer, IssuerUID: in.state.IssuerUID}
		for _, s := range append(slices.Clone(in.state.Superseded), cur) {
			if s.Token != "" && revocable(in, s) {
				pending = append(pending, s)
			}
		}
	}
	if len(pending) == 0 {
		return ctrl.Result{}, r.release(ctx, at)
	}
	if err := r.deleteSecretBeforeRevoking(ctx, at); err != nil {
		return ctrl.Result{}, err
	}
	r.configureRate(in)
	r.Calls.Submit(at, in.issuerKey, func(jctx context.Context) (ctrl.Result, error) {
		jctx, cancel := context.WithTimeout(context.WithoutCancel(jctx), actTimeout(in.spec)*time.Duration(min(len(pending), 4)))
		defer cancel()
		done := true
		var gone []string
		for _, s := range pending {
			key := revokedKey(at.UID, s.Token)
			if r.revokedOnDelete != nil && r.revokedOnDeleteHas(key) {
				continue
			}
			if err := r.revokeAudited(jctx, in, s, revokeDeletion); err != nil {
				// The inputs may have been read before the issuer's deletion
				// reached the cache: whether it is gone is asked of the
				// apiserver, and only then is the token given up.
				if name, ok, gerr := r.revokerGone(jctx, in, s); gerr == nil && ok {
					if !slices.Contains(gone, name) {
						gone = append(gone, name)
					}
					continue
				}
				logf.FromContext(jctx).Info("revoking token of deleted AccessToken failed", "error", err.Error())
				done = false
				continue
			}
			if r.revokedOnDelete != nil {
				r.revokedOnDelete.Add(key, true)
			}
		}
		if !done && r.Clock.Now().Before(giveUp) {
			return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
		}
		for _, name := range gone {
			r.Recorder.Eventf(at, nil, corev1.EventTypeWarning, tokensv1alpha1.ReasonRevokeFailed, "Revoke",
				"%s, which would revoke the token, is gone: nothing was revoked; letting the AccessToken go", name)
		}
		if !done {
			r.Recorder.Eventf(at, nil, corev1.EventTypeWarning, tokensv1alpha1.ReasonRevokeFailed, "Revoke",
				"Could not revoke the token within %s; letting the AccessToken go", revokeOnDeleteTimeout)
		}
		return ctrl.Result{}, r.release(jctx, at)
	})
	return ctrl.Result{}, nil
}

// revokerGone reports whether the issuer that would revoke s (the one that
// minted it) is gone, as the apiserver shows it, never a cache that may lag
// behind it: not found, or another issuer under its name (another UID) that
// is not the same one restored from backup (see sameIssuer). name describes
// it for an event. An issuer that exists is never gone, whatever it lacks.
func (r *AccessTokenReconciler) revokerGone(ctx context.Context, in *inputs, s secret.Superseded) (name string, gone bool, err error) {
	key, uid := s.Issuer, s.IssuerUID
	if key == "" {
		key, uid = in.issuerKey, string(in.issuerUID)
	}
	kind, namespace, n := splitIssuerKey(key)
	var obj client.Object
	var spec *tokensv1alpha1.IssuerSpec
	switch tokensv1alpha1.IssuerKind(kind) {
	case tokensv1alpha1.ClusterTokenIssuerKind:
		cti := &tokensv1alpha1.ClusterTokenIssuer{}
		obj, spec = cti, &cti.Spec.IssuerSpec
	case tokensv1alpha1.TokenIssuerKind:
		ti := &tokensv1alpha1.TokenIssuer{}
		obj, spec = ti, &ti.Spec
	default:
		return "", false, nil
	}
	name = describeIssuer(tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.IssuerKind(kind), Name: n})
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: n}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return name, true, nil
		}
		return "", false, err
	}
	if uid == "" || string(obj.GetUID()) == uid {
		return "", false, nil
	}
	if key == in.state.Issuer && uid == in.state.IssuerUID && sameIssuer(in.state, key, obj.GetUID(), issuerEndpoint(spec)) {
		return "", false, nil
	}
	return name, true, nil
}

// release deletes the state of a deleted AccessToken and removes its finalizer.
func (r *AccessTokenReconciler) release(ctx context.Context, at *tokensv1alpha1.AccessToken) error {
	if err := r.retainSecret(ctx, at); err != nil {
		return err
	}
	if err := r.deleteState(ctx, at); err != nil {
		return err
	}
	r.stateVersions.Delete(client.ObjectKeyFromObject(at))
	// The optimistic lock makes the patch fail, rather than drop another
	// controller's finalizer, if the list changed since it was read.
	patch := client.MergeFromWithOptions(at.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(at, RevokeFinalizer)
	if err := r.Patch(ctx, at, patch); client.IgnoreNotFound(err) != nil {
		return err
	}
	r.deletions.Delete(at.UID)
	return nil
}

// ensureFinalizer adds the revoke finalizer only when the issuer can revoke
// and deletion revokes, or the Secret is retained (see wantsFinalizer); it
// removes it when revocationPolicy None leaves it nothing to do.
func (r *AccessTokenReconciler) ensureFinalizer(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs) error {
	want := wantsFinalizer(at, in)
	has := controllerutil.ContainsFinalizer(at, RevokeFinalizer)
	if want == has || (!want && revokesOnDelete(at)) {
		return nil
	}
	patch := client.MergeFromWithOptions(at.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if !want {
		controllerutil.RemoveFinalizer(at, RevokeFinalizer)
		if err := r.Patch(ctx, at, patch); err != nil {
			return fmt.Errorf("removing finalizer: %w", err)
		}
		return nil
	}
	controllerutil.AddFinalizer(at, RevokeFinalizer)
	if err := r.Patch(ctx, at, patch); err != nil {
		return fmt.Errorf("adding finalizer: %w", err)
	}
	return nil
}

// deleteSecretBeforeRevoking deletes the Secret of a deleted AccessToken whose
// Secret goes with it (secretDeletionPolicy Delete) before its token is
// revoked, rather than leaving it to the garbage collector after the
// AccessToken is gone: credentials are never revoked while a Secret pods
// mount still holds them (a Vault lease's database user would be dropped
// under a pod still using it). Only a Secret the AccessToken controls is
// deleted, and only that very object.
func (r *AccessTokenReconciler) deleteSecretBeforeRevoking(ctx context.Context, at *tokensv1alpha1.AccessToken) error {
	if retainsSecret(at) {
		return nil
	}
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: at.Namespace, Name: at.Spec.Secret.Name}, s); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(s, at) {
		return nil
	}
	if err := r.Delete(ctx, s, client.Preconditions{UID: &s.UID}); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting Secret %s before revoking its token: %w", s.Name, err)
	}
	return nil
}

// maxRevokedOnDelete is the most revocations of deleted AccessTokens' tokens
// remembered.
const maxRevokedOnDelete = 4096

// revokedOnDeleteKey names a token revoked for a deleted AccessToken by a
// digest of the token, not the token itself.
type revokedOnDeleteKey struct {
	uid   types.UID
	token [sha256.Size]byte
}

func revokedKey(uid types.UID, token string) revokedOnDeleteKey {
	return revokedOnDeleteKey{uid: uid, token: sha256.Sum256([]byte(token))}
}

func (r *AccessTokenReconciler) revokedOnDeleteHas(key revokedOnDeleteKey) bool {
	_, ok := r.revokedOnDelete.Get(key)
	return ok
}
