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

// Adoption: a Secret restored from backup or retained, which tokenmint wrote
// for an AccessToken of the same name and namespace, is taken back with its
// token (see inputs.reown); its state is found again by name, and is only ever
// sent to the issuer that produced it (see sameIssuer).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// reownSecret points the controller reference of a Secret written for an
// AccessToken of at's name (restored from backup, or retained) at at, and
// gives it the owner proof by name, in one write. An apply cannot do it: it
// would add the new reference beside the old one, and a Secret has one
// controller. The patch fails if the Secret changed since it was read.
func (r *AccessTokenReconciler) reownSecret(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs) error {
	refs := []metav1.OwnerReference{{
		APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: "AccessToken", Name: at.Name, UID: at.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}}
	for _, ref := range in.secret.OwnerReferences {
		if !ptr.Deref(ref.Controller, false) {
			refs = append(refs, ref)
		}
	}
	annotations := map[string]string{
		secret.AnnotationOwnerProof: r.Fingerprinter.OwnerProof(at.Namespace, at.Spec.Secret.Name, "AccessToken", at.Name),
	}
	if hash, ok := restoredInputsHash(in); ok {
		// The Secret's record then says what status is rebuilt from: a
		// reconcile that reads the Secret before its status write shows
		// adopts the same.
		annotations[secret.AnnotationInputsHash] = hash
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": in.secret.ResourceVersion,
		"ownerReferences": refs,
		"annotations":     annotations,
	}})
	if err != nil {
		return err
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: at.Namespace, Name: at.Spec.Secret.Name}}
	if err := r.Patch(ctx, s, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(secret.FieldOwner)); err != nil {
		return fmt.Errorf("taking back Secret %s/%s: %w", at.Namespace, at.Spec.Secret.Name, err)
	}
	in.reown, in.unproven = false, false
	in.secret.OwnerReferences, in.secret.ResourceVersion = s.OwnerReferences, s.ResourceVersion
	r.Recorder.Eventf(at, nil, corev1.EventTypeNormal, reasonSecretAdopted, "Adopt",
		"Secret %s, written by tokenmint for an AccessToken of this name, now belongs to this one", at.Spec.Secret.Name)
	return nil
}

// reasonSecretAdopted marks a Secret taken back after a restore.
const reasonSecretAdopted = "SecretAdopted"

// sameIssuer reports whether state recorded by st was minted by the issuer
// of key, uid and endpoint (see issuerEndpoint), to which alone its refresh
// token and tokens may be sent. The same object (same UID) is the same
// issuer, whatever its spec says now (an admin may change its URL). An issuer
// of the same kind and name with another UID is the same one restored from
// backup only when it sends tokens where the recorded one did: someone who
// deletes an issuer and creates another of that name pointing elsewhere gets
// none of the old refresh tokens or tokens.
func sameIssuer(st secret.State, key string, uid types.UID, endpoint string) bool {
	if st.Issuer != key || uid == "" {
		return false
	}
	return st.IssuerUID == string(uid) || st.IssuerEndpoint != "" && st.IssuerEndpoint == endpoint
}

// issuerEndpoint hashes where an issuer sends tokens and refresh tokens: the
// URLs of its calls and the CA bundle it trusts for them. Empty without spec.
func issuerEndpoint(spec *tokensv1alpha1.IssuerSpec) string {
	if spec == nil {
		return ""
	}
	urls := []string{spec.Request.URL, "", ""}
	if spec.Refresh != nil {
		urls[1] = spec.Refresh.URL
	}
	if spec.Revoke != nil {
		urls[2] = spec.Revoke.URL
	}
	raw, _ := json.Marshal(struct {
		URLs     []string
		CABundle []byte `json:",omitempty"`
	}{urls, spec.CABundle})
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}

// restoredCandidate reports whether s's owner references are those of a
// Secret written for at before at got its UID: none (retained, or stripped by
// a backup tool), or a controller reference to an AccessToken of at's name.
func restoredCandidate(s *corev1.Secret, at *tokensv1alpha1.AccessToken) bool {
	if len(s.OwnerReferences) == 0 {
		return true
	}
	ref := metav1.GetControllerOfNoCopy(s)
	return ref != nil && ref.Kind == "AccessToken" && ref.APIVersion == tokensv1alpha1.GroupVersion.String() &&
		ref.Name == at.Name && ref.UID != at.UID
}

// inputsIdentity is hashInputs without what a restore from backup changes:
// the issuer's UID and the credential Secrets' UIDs and versions (their names
// stay). A Secret restored with the identity of the current inputs was issued
// from them, as far as anything kept in the cluster can tell.
func inputsIdentity(at *tokensv1alpha1.AccessToken, in *inputs) string {
	raw, _ := json.Marshal(struct {
		Issuer          string
		Spec            *tokensv1alpha1.IssuerSpec
		Parameters      any
		Secret          string
		Key             string
		Credentials     []string
		NamespaceLabels map[string]string `json:",omitempty"`
	}{in.issuerKey, in.spec, at.Spec.Parameters, at.Spec.Secret.Name, secret.Key(at), credentialKeys(in.spec, in.secretsNamespace), in.namespaceLabels})
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}

// cachesBehind reports whether the manager's caches do not yet show the
// issuer and the credential Secrets the apiserver holds. Status rebuilt from a
// restored Secret takes the hash of the current inputs, which holds their UIDs
// and versions: taken from caches that still show the objects deleted before
// the restore, or none, it would differ from the next reconcile's, and mint.
func (r *AccessTokenReconciler) cachesBehind(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs) (bool, error) {
	m := &metav1.PartialObjectMetadata{}
	key := types.NamespacedName{Namespace: at.Namespace, Name: at.Spec.IssuerRef.Name}
	kind := at.Spec.IssuerRef.Kind
	if kind == tokensv1alpha1.ClusterTokenIssuerKind {
		key.Namespace = ""
	} else {
		kind = tokensv1alpha1.TokenIssuerKind
	}
	m.SetGroupVersionKind(tokensv1alpha1.GroupVersion.WithKind(string(kind)))
	if err := r.APIReader.Get(ctx, key, m); err != nil {
		return true, client.IgnoreNotFound(err)
	}
	if m.UID != in.issuerUID {
		return true, nil
	}
	for _, k := range credentialKeys(in.spec, in.secretsNamespace) {
		ns, name, _ := strings.Cut(k, "/")
		key := types.NamespacedName{Namespace: ns, Name: name}
		uid, rv, found, err := r.cachedSecretVersion(ctx, key)
		if err != nil {
			return true, err
		}
		live := secretMetadata()
		err = r.APIReader.Get(ctx, key, live)
		if client.IgnoreNotFound(err) != nil {
			return true, err
		}
		if found != (err == nil) || found && (uid != live.UID || rv != live.ResourceVersion) {
			return true, nil
		}
	}
	return false, nil
}

// restoredInputsHash is the inputs hash a Secret taken back (see
// inputs.reown) is recorded with: the current inputs' when the Secret records
// their identity (it was issued from them, before the restore changed their
// UIDs and versions); ok is false otherwise, and the Secret's own record
// stands (the inputs changed, and the token is renewed).
func restoredInputsHash(in *inputs) (string, bool) {
	rec := in.secretRecord
	if !in.reown || rec == nil || rec.InputsIdentity == "" || rec.InputsIdentity != in.inputsIdentity {
		return "", false
	}
	return in.inputsHash, true
}
