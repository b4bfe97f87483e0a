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

// Package secret builds the Secrets tokenmint writes: the token Secret that pods
// mount and the operator's own state Secret, and fingerprints tokens without
// revealing them.
package secret

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// FieldOwner is the server-side apply field manager of everything tokenmint writes.
const FieldOwner = "tokenmint"

// Fingerprinter computes HMAC-SHA256 fingerprints of tokens under an installation's
// key, so that status can identify a token (and notice an edited Secret) without
// holding it, and a leaked status reveals nothing that can be brute-forced offline.
type Fingerprinter struct{ key []byte }

// NewFingerprinter returns a Fingerprinter using key.
func NewFingerprinter(key []byte) *Fingerprinter { return &Fingerprinter{key: key} }

// Fingerprint returns "hmac-sha256:" and the first 128 bits of the HMAC, in hex.
func (f *Fingerprinter) Fingerprint(token []byte) string {
	m := hmac.New(sha256.New, f.key)
	_, _ = m.Write(token)
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// Labels returns the labels tokenmint puts on the Secret of at: the user's labels
// plus the ones that let the manager cache only its own Secrets.
func Labels(at *tokensv1alpha1.AccessToken) map[string]string {
	l := maps.Clone(at.Spec.Secret.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[tokensv1alpha1.LabelManagedBy] = tokensv1alpha1.ManagedByValue
	if len(at.Name) <= 63 { // a label value's limit; the owner reference names it anyway
		l[tokensv1alpha1.LabelAccessToken] = at.Name
	}
	return l
}

// Annotations in which the Secret records which token it holds.
const (
	AnnotationFingerprint = "tokens.tokenmint.dev/token-fingerprint"
	AnnotationIssuedAt    = "tokens.tokenmint.dev/issued-at"
	AnnotationExpiresAt   = "tokens.tokenmint.dev/expires-at"
	AnnotationInputsHash  = "tokens.tokenmint.dev/inputs-hash"
)

// Record is what tokenmint writes beside a token, in the Secret's annotations:
// the Secret alone then says which token it holds and when it was issued, so a
// status write lost to a crash is rebuilt from it instead of minting again.
type Record struct {
	Fingerprint string
	IssuedAt    time.Time
	ExpiresAt   *time.Time
	InputsHash  string
}

func (r Record) annotations() map[string]string {
	a := map[string]string{
		AnnotationFingerprint: r.Fingerprint,
		AnnotationIssuedAt:    r.IssuedAt.UTC().Format(time.RFC3339),
		AnnotationInputsHash:  r.InputsHash,
	}
	if r.ExpiresAt != nil {
		a[AnnotationExpiresAt] = r.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return a
}

// ReadRecord reads the record of a Secret written by tokenmint.
func ReadRecord(s *corev1.Secret) (Record, bool) {
	a := s.Annotations
	issued, err := time.Parse(time.RFC3339, a[AnnotationIssuedAt])
	if a[AnnotationFingerprint] == "" || err != nil {
		return Record{}, false
	}
	r := Record{Fingerprint: a[AnnotationFingerprint], IssuedAt: issued, InputsHash: a[AnnotationInputsHash]}
	if v, ok := a[AnnotationExpiresAt]; ok {
		exp, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return Record{}, false
		}
		r.ExpiresAt = &exp
	}
	return r, true
}

// Desired returns the apply configuration of at's Secret holding data (the token
// under the configured key plus the copied fields) and its record.
func Desired(at *tokensv1alpha1.AccessToken, data map[string][]byte, rec Record) *corev1ac.SecretApplyConfiguration {
	annotations := maps.Clone(at.Spec.Secret.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	maps.Copy(annotations, rec.annotations())
	return corev1ac.Secret(at.Spec.Secret.Name, at.Namespace).
		WithLabels(Labels(at)).
		WithAnnotations(annotations).
		WithType(secretType(at)).
		WithData(data).
		WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(tokensv1alpha1.GroupVersion.String()).
			WithKind("AccessToken").
			WithName(at.Name).
			WithUID(at.UID).
			WithController(true).
			WithBlockOwnerDeletion(true))
}

func secretType(at *tokensv1alpha1.AccessToken) corev1.SecretType {
	if at.Spec.Secret.Type == "" {
		return corev1.SecretTypeOpaque
	}
	return at.Spec.Secret.Type
}

// Key returns the data key of the token in at's Secret.
func Key(at *tokensv1alpha1.AccessToken) string {
	if at.Spec.Secret.Key == "" {
		return "token"
	}
	return at.Spec.Secret.Key
}

// IsOwnedBy reports whether s is controlled by at.
func IsOwnedBy(s *corev1.Secret, at *tokensv1alpha1.AccessToken) bool {
	ref := metav1.GetControllerOf(s)
	return ref != nil && ref.UID == at.UID
}

// Drifted reports whether s, owned by at, differs from what tokenmint wrote in
// anything but the data: type, labels, annotations. Data is checked by fingerprint.
func Drifted(s *corev1.Secret, at *tokensv1alpha1.AccessToken) bool {
	if s.Type != secretType(at) {
		return true
	}
	for k, v := range Labels(at) {
		if s.Labels[k] != v {
			return true
		}
	}
	for k, v := range at.Spec.Secret.Annotations {
		if s.Annotations[k] != v {
			return true
		}
	}
	return false
}
