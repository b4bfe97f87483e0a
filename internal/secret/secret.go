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
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/ptr"

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

// AnnotationOwnerProof is an HMAC, under the installation's key, of a
// Secret's namespace and name and of the kind and name of the tokenmint object
// it is written for (see OwnerProof). The manager's cache keeps the data of a
// Secret only when it verifies: anyone who writes Secrets can add tokenmint's
// label and an owner reference naming an AccessToken, but only tokenmint can
// compute the proof.
//
// The proof names its owner by name, not by UID, so that it survives a restore
// from backup (which re-creates every object under a new UID): a restored
// Secret still proves that tokenmint wrote it for the AccessToken of that name,
// and is adopted instead of minted again. A proof copied to any other Secret
// (another name or namespace) or naming another owner does not verify.
const AnnotationOwnerProof = "tokens.tokenmint.dev/owner-proof"

// OwnerProof returns the AnnotationOwnerProof value of the Secret
// namespace/name written for the object of kind ownerKind ("AccessToken" or
// "ClusterAccessToken") and name owner. It differs from every token
// fingerprint: the message is prefixed with its purpose.
func (f *Fingerprinter) OwnerProof(namespace, name, ownerKind, owner string) string {
	return f.mac("owner-proof-v2\x00" + namespace + "\x00" + name + "\x00" + ownerKind + "\x00" + owner)
}

// UIDOwnerProof is the proof earlier versions wrote, bound to the owner's UID:
// still accepted by VerifyOwnerProof (the cache keeps the Secret's data), not
// by ProvesOwner, so the controller rewrites the Secret once with OwnerProof.
func (f *Fingerprinter) UIDOwnerProof(namespace, name string, owner types.UID) string {
	return f.mac("owner-proof\x00" + namespace + "\x00" + name + "\x00" + string(owner))
}

func (f *Fingerprinter) mac(msg string) string {
	m := hmac.New(sha256.New, f.key)
	_, _ = m.Write([]byte(msg))
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// ProvesOwner reports whether s carries the proof tokenmint writes for its
// namespace and name and the owner of kind ownerKind and name owner, whatever
// its owner references say (a restore re-creates the owner under a new UID,
// and a backup tool may strip owner references).
func (f *Fingerprinter) ProvesOwner(s *corev1.Secret, ownerKind, owner string) bool {
	if f == nil {
		return false
	}
	got := s.Annotations[AnnotationOwnerProof]
	return got != "" && hmac.Equal([]byte(got), []byte(f.OwnerProof(s.Namespace, s.Name, ownerKind, owner)))
}

// VerifyOwnerProof reports whether s carries the proof tokenmint wrote for
// its namespace, name and controlling owner (an AccessToken or a
// ClusterAccessToken of tokenmint's API group), by the owner's name or, as
// earlier versions wrote it, its UID. A Secret with no owner reference at all
// (retained, or restored by a tool that strips them) is checked against the
// AccessToken its tokenmint label names.
func (f *Fingerprinter) VerifyOwnerProof(s *corev1.Secret) bool {
	if f == nil {
		return false
	}
	got := s.Annotations[AnnotationOwnerProof]
	if got == "" {
		return false
	}
	if len(s.OwnerReferences) == 0 {
		name := s.Labels[tokensv1alpha1.LabelAccessToken]
		return name != "" && f.ProvesOwner(s, "AccessToken", name)
	}
	ref := metav1.GetControllerOfNoCopy(s)
	if ref == nil || (ref.Kind != "AccessToken" && ref.Kind != "ClusterAccessToken") ||
		ref.APIVersion != tokensv1alpha1.GroupVersion.String() {
		return false
	}
	return f.ProvesOwner(s, ref.Kind, ref.Name) ||
		hmac.Equal([]byte(got), []byte(f.UIDOwnerProof(s.Namespace, s.Name, ref.UID)))
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
	// AnnotationPreviousUntil is when the previous token leaves previousKey.
	AnnotationPreviousUntil = "tokens.tokenmint.dev/previous-until"
	// AnnotationInputsIdentity hashes what AnnotationInputsHash hashes but for
	// the UIDs and resourceVersions of the issuer and the credential Secrets,
	// which a restore from backup changes: a restored Secret whose identity
	// matches is adopted with the current inputs, one that does not is renewed.
	AnnotationInputsIdentity = "tokens.tokenmint.dev/inputs-identity"
	// AnnotationRenewalRequest is a hash of the AccessToken's renew annotation
	// value this token answered: status (lastRenewalRequest) is not part of a
	// backup, and without it a restored AccessToken would take its renew
	// annotation for a new request and mint again.
	AnnotationRenewalRequest = "tokens.tokenmint.dev/renewal-request"
	// AnnotationAdopt, set to "true" on an existing Secret by its owner, lets
	// an AccessToken that names it take it over (see Adoptable).
	AnnotationAdopt = "tokens.tokenmint.dev/adopt"
)

// Record is what tokenmint writes beside a token, in the Secret's annotations:
// the Secret alone then says which token it holds and when it was issued, so a
// status write lost to a crash is rebuilt from it instead of minting again.
type Record struct {
	Fingerprint string
	IssuedAt    time.Time
	ExpiresAt   *time.Time
	InputsHash  string
	// PreviousUntil is when the previous token, if the Secret holds one under
	// previousKey, is to be removed.
	PreviousUntil *time.Time
	// OwnerProof is the Secret's AnnotationOwnerProof; empty writes none.
	OwnerProof string
	// InputsIdentity identifies the inputs the token was issued from, without
	// the UIDs and versions a restore from backup changes (see
	// AnnotationInputsIdentity); empty writes none.
	InputsIdentity string
	// RenewalRequest is RenewalRequestHash of the renew annotation value the
	// token answered (see AnnotationRenewalRequest); empty writes none.
	RenewalRequest string
}

// RenewalRequestHash is what a Secret records of a renew annotation value: a
// short hash, since the value is the AccessToken author's and unbounded.
// Empty for an empty value.
func RenewalRequestHash(value string) string {
	if value == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("renewal-request\x00" + value))
	return hex.EncodeToString(sum[:16])
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
	if r.PreviousUntil != nil {
		a[AnnotationPreviousUntil] = r.PreviousUntil.UTC().Format(time.RFC3339)
	}
	if r.OwnerProof != "" {
		a[AnnotationOwnerProof] = r.OwnerProof
	}
	if r.RenewalRequest != "" {
		a[AnnotationRenewalRequest] = r.RenewalRequest
	}
	if r.InputsIdentity != "" {
		a[AnnotationInputsIdentity] = r.InputsIdentity
	}
	return a
}

// PreviousUntil reads when the previous token a Secret holds under
// previousKey is to be removed; ok is false when it records none.
func PreviousUntil(s *corev1.Secret) (until time.Time, ok bool) {
	until, err := time.Parse(time.RFC3339, s.Annotations[AnnotationPreviousUntil])
	return until, err == nil
}

// ReadRecord reads the record of a Secret written by tokenmint.
func ReadRecord(s *corev1.Secret) (Record, bool) {
	a := s.Annotations
	issued, err := time.Parse(time.RFC3339, a[AnnotationIssuedAt])
	if a[AnnotationFingerprint] == "" || err != nil {
		return Record{}, false
	}
	r := Record{Fingerprint: a[AnnotationFingerprint], IssuedAt: issued, InputsHash: a[AnnotationInputsHash],
		InputsIdentity: a[AnnotationInputsIdentity], RenewalRequest: a[AnnotationRenewalRequest]}
	if v, ok := a[AnnotationExpiresAt]; ok {
		exp, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return Record{}, false
		}
		r.ExpiresAt = &exp
	}
	return r, true
}

// Desired is the Secret tokenmint applies for at: the token data, the user's
// labels, annotations and type, the record of the token, and an owner reference
// (so the Secret is garbage-collected with the AccessToken).
func Desired(at *tokensv1alpha1.AccessToken, data map[string][]byte, rec Record) *corev1ac.SecretApplyConfiguration {
	return corev1ac.Secret(at.Spec.Secret.Name, at.Namespace).
		WithLabels(Labels(at)).
		WithAnnotations(annotations(at, rec)).
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

// New is the Secret Desired describes, to create where none exists: a create
// fails when a Secret of that name appeared meanwhile, where an apply would
// take it over.
func New(at *tokensv1alpha1.AccessToken, data map[string][]byte, rec Record) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        at.Spec.Secret.Name,
			Namespace:   at.Namespace,
			Labels:      Labels(at),
			Annotations: annotations(at, rec),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion:         tokensv1alpha1.GroupVersion.String(),
				Kind:               "AccessToken",
				Name:               at.Name,
				UID:                at.UID,
				Controller:         ptr.To(true),
				BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Type: secretType(at),
		Data: data,
	}
}

func annotations(at *tokensv1alpha1.AccessToken, rec Record) map[string]string {
	a := maps.Clone(at.Spec.Secret.Annotations)
	if a == nil {
		a = map[string]string{}
	}
	maps.Copy(a, rec.annotations())
	return a
}

// CreatedByUpdate reports whether s still carries the field ownership of the
// create that wrote it first (an Update entry of tokenmint's, which the cache
// keeps without its fields; see TrimManagedFields). Apply cannot remove a field
// such an entry owns: it is converted to apply ownership before an apply that
// leaves a field out.
func CreatedByUpdate(s *corev1.Secret) bool {
	for _, m := range s.ManagedFields {
		if m.Manager == FieldOwner && m.Operation == metav1.ManagedFieldsOperationUpdate && m.Subresource == "" {
			return true
		}
	}
	return false
}

// LeavesOut reports whether applying data and rec for at would leave out a
// label, an annotation or a data key that s has: fields that only an apply
// owning them all can remove. The owner proof, which every write carries, is
// not counted, nor is the inputs identity, which every write carries too.
func LeavesOut(s *corev1.Secret, at *tokensv1alpha1.AccessToken, data map[string][]byte, rec Record) bool {
	labels, ann := Labels(at), annotations(at, rec)
	for k := range s.Labels {
		if _, ok := labels[k]; !ok {
			return true
		}
	}
	for k := range s.Annotations {
		if _, ok := ann[k]; !ok && k != AnnotationOwnerProof && k != AnnotationInputsIdentity {
			return true
		}
	}
	for k := range s.Data {
		if _, ok := data[k]; !ok {
			return true
		}
	}
	return false
}

// TrimManagedFields is the cache transform for tokenmint's Secrets: of the
// managed fields it keeps only the marker CreatedByUpdate looks for, without
// its field set (one copy shared by every Secret), and the strings Secrets
// share are stored once (InternMeta).
func TrimManagedFields(in any) (any, error) {
	s, ok := in.(*corev1.Secret)
	if !ok {
		return in, nil
	}
	created := false
	for _, m := range s.ManagedFields {
		if m.Manager == FieldOwner && m.Operation == metav1.ManagedFieldsOperationUpdate && m.Subresource == "" {
			created = true
		}
	}
	s.ManagedFields = nil
	if created {
		s.ManagedFields = createdByUpdate
	}
	InternMeta(&s.ObjectMeta)
	s.Type = Intern(s.Type)
	return s, nil
}

// createdByUpdate is the managed fields TrimManagedFields leaves on a Secret
// that tokenmint created: cached objects are read, never written, so one copy
// serves them all.
var createdByUpdate = []metav1.ManagedFieldsEntry{{Manager: FieldOwner, Operation: metav1.ManagedFieldsOperationUpdate}}

// Intern returns the one stored copy of s: the caches keep tens of thousands of
// objects whose strings are mostly the same few words.
func Intern[S ~string](s S) S {
	if s == "" {
		return ""
	}
	return S(unique.Make(string(s)).Value())
}

// InternMap replaces m's keys and the values that recur (see internValue) by their
// stored copies, in place.
func InternMap(m map[string]string) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for _, k := range keys {
		v := m[k]
		delete(m, k)
		if internValue(k) {
			v = Intern(v)
		}
		m[Intern(k)] = v
	}
}

// internValue reports whether the values of a label or annotation key recur
// across objects: not the names and fingerprints that identify one object.
func internValue(key string) bool {
	switch key {
	case tokensv1alpha1.LabelAccessToken, AnnotationFingerprint, AnnotationInputsHash, AnnotationOwnerProof, AnnotationInputsIdentity,
		AnnotationRenewalRequest:
		return false
	}
	return true
}

// InternMeta stores once the strings of m that recur across objects: the
// namespace, label and annotation keys (and values that recur), and owner
// references' kinds and API versions.
func InternMeta(m *metav1.ObjectMeta) {
	m.Namespace = Intern(m.Namespace)
	InternMap(m.Labels)
	InternMap(m.Annotations)
	for i := range m.OwnerReferences {
		r := &m.OwnerReferences[i]
		r.APIVersion, r.Kind = Intern(r.APIVersion), Intern(r.Kind)
	}
	for i := range m.Finalizers {
		m.Finalizers[i] = Intern(m.Finalizers[i])
	}
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

// Adoptable reports whether s, a Secret no AccessToken owns, may be taken
// over by at: its owner marked it with AnnotationAdopt "true", no other
// object controls it, and its type is the one at writes (a Secret's type
// cannot change, and tokenmint never writes a type Kubernetes acts on but the
// ones spec.secret.type allows).
func Adoptable(s *corev1.Secret, at *tokensv1alpha1.AccessToken) bool {
	return s.Annotations[AnnotationAdopt] == "true" && metav1.GetControllerOfNoCopy(s) == nil &&
		(s.Type == secretType(at) || s.Type == "" && secretType(at) == corev1.SecretTypeOpaque)
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
