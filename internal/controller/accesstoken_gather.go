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
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// inputs is everything a decision about one AccessToken depends on.
type inputs struct {
	at        *tokensv1alpha1.AccessToken
	issuerKey string
	// readOnly is the manager's --read-only (see held).
	readOnly  bool
	issuerUID types.UID
	// spec is the issuer's spec; nil when the issuer cannot be used (see problem).
	spec    *tokensv1alpha1.IssuerSpec
	problem *problem
	// secretsNamespace is where the issuer's credential Secrets live.
	secretsNamespace string
	// guarded is true when calls go through the private-destination dial guard.
	guarded bool
	// secret is the AccessToken's own Secret; nil when it does not exist.
	secret *corev1.Secret
	// foreign is true when a Secret of that name exists but tokenmint does not own it.
	foreign bool
	// reown is true when the Secret proves it was written for this
	// AccessToken (see secret.ProvesOwner) but its owner reference names
	// another UID, or none: it was restored from backup, or retained. Its
	// owner reference is set to this AccessToken before anything else is
	// written to it (see reownSecret).
	reown bool
	// adopting is true when the Secret is someone else's, marked for this
	// AccessToken to take over (see secret.Adoptable): its token is not
	// used, a new one is minted into it.
	adopting bool
	// unproven is true when the Secret lacks a valid owner proof, so that the
	// cache holds none of its data: it is rewritten with one.
	unproven bool
	// secretMatches is true when the Secret holds the token status fingerprints.
	secretMatches bool
	// secretRecord is the Secret's own record of its token, when it matches the
	// token the Secret holds.
	secretRecord *secret.Record
	// previous is the previous token the Secret holds under previousKey, and
	// previousUntil when it is to be removed; empty when it holds none.
	previous      string
	previousUntil time.Time
	// state is the operator's state for the token (refresh token, revocation).
	state secret.State
	// stateMatches is true when state holds the token status fingerprints.
	stateMatches bool
	// inputsHash identifies everything the token is issued from.
	inputsHash string
	// namespaceLabels are the labels of the AccessToken's namespace that the
	// issuer's parameters are bound to (fromNamespaceLabel).
	namespaceLabels map[string]string
	// renewalFloor is the least time from a token's issue to its scheduled
	// renewal (see renewalTime).
	renewalFloor time.Duration
	// stateDirty is set when state changed and is not yet written.
	stateDirty bool
	// moved is true when state was written for another issuer than the one
	// spec.issuerRef names: its tokens are revoked only through their own
	// issuer, and its refresh token is dropped (see accesstoken_move.go).
	moved bool
	// movingFrom names the issuer of the current token when spec.issuerRef
	// names another that has not issued one yet; empty otherwise.
	movingFrom string
	// others holds the inputs of the issuers that minted superseded tokens
	// before the AccessToken moved, by issuer key and UID (see revokerFor).
	others map[string]*inputs
	// stateMoved names the state Secret an earlier version wrote under the
	// AccessToken's UID (see secret.UIDStateName): removed once the state is
	// written under its name.
	stateMoved string
	// inputsIdentity is inputsHash without the UIDs and versions a restore
	// changes (see secret.AnnotationInputsIdentity).
	inputsIdentity string
	// cachesBehind is true when a restored Secret is to be taken back but the
	// caches do not yet show the issuer and credential Secrets the apiserver
	// holds (see AccessTokenReconciler.cachesBehind).
	cachesBehind bool
}

// tokenCopy is the last token this process wrote for an AccessToken.
type tokenCopy struct {
	uid    types.UID
	token  string
	fields map[string]string
	// secretVersion is the resourceVersion of the Secret this process wrote last.
	secretVersion string
}

// problem is why an AccessToken cannot be served right now.
type problem struct{ reason, message string }

func (in *inputs) keepsState() bool {
	return in.spec != nil && (in.spec.Revoke != nil || in.spec.Response.RefreshToken != nil || in.spec.RefreshExtends)
}

// gather reads what the decision needs. With live false it reads caches only
// (plus a live read of the state Secret when the cache lags behind this
// process's own write); with live true it reads the AccessToken's Secret and
// state from the apiserver, so that a decision to mint is never made on a cache
// that lags behind tokenmint's own writes. Credential Secrets are never read
// here: their versions come from the watch-fed caches (see credentialVersions),
// whatever live says, so that the cost of a reconcile does not grow with the
// Secrets an issuer names.
func (r *AccessTokenReconciler) gather(ctx context.Context, at *tokensv1alpha1.AccessToken, live bool) (*inputs, error) {
	in := &inputs{at: at, issuerKey: accessTokenIssuerKey(at), renewalFloor: r.MinRenewalInterval, readOnly: r.ReadOnly}
	var reader client.Reader = r.Client
	if live {
		reader = r.APIReader
	}
	var err error
	in.spec, in.issuerUID, in.problem, err = r.gatherIssuer(ctx, at, in)
	if err != nil {
		return nil, err
	}
	if p := specProblem(at); p != nil {
		in.spec, in.problem = nil, p
	}
	if in.spec != nil && in.problem == nil {
		// Refused before any of its Secrets is looked at.
		if err := issuer.CheckCredentialSecrets(in.spec); err != nil {
			in.spec, in.problem = nil, &problem{tokensv1alpha1.ReasonInvalidConfig, err.Error()}
		}
	}
	if in.spec != nil && in.problem == nil {
		if err := secret.CheckOutputs(at, copyKeys(in.spec)); err != nil {
			in.spec, in.problem = nil, &problem{tokensv1alpha1.ReasonInvalidConfig, fmt.Sprintf(
				"the Secret cannot be written as spec.secret asks with this issuer: %v", err)}
		}
	}
	if err := r.gatherSecret(ctx, reader, at, in); err != nil {
		return nil, err
	}
	if from, moving := movingFrom(at); moving {
		in.movingFrom = describeIssuer(from)
	}
	if in.keepsState() || r.stateCached(ctx, at) {
		// A state of another issuer is read too: the tokens it minted wait
		// there for their revocation.
		if err := r.gatherState(ctx, reader, live, at, in); err != nil {
			return nil, err
		}
	}
	if in.reown && in.spec != nil && in.spec.Revoke != nil && in.secretRecord != nil && !in.stateHolds(r.Fingerprinter, in.secretRecord.Fingerprint) {
		if !live {
			// The cache may not show a state restored with the Secret yet.
			in.state, in.stateDirty, in.stateMoved = secret.State{}, false, ""
			if err := r.gatherState(ctx, r.APIReader, true, at, in); err != nil {
				return nil, err
			}
		}
		if !in.stateHolds(r.Fingerprinter, in.secretRecord.Fingerprint) {
			// A token tokenmint may have revoked (when its AccessToken was
			// deleted, along with its state) is never taken back: the Secret
			// is this AccessToken's to write, not its token to serve.
			in.secretRecord = nil
		}
	}
	if !in.secretMatches && !in.stateMatches {
		// The copy this process kept of the token it wrote last restores an edited
		// or deleted Secret without minting, with no state Secret to write.
		if c, ok := r.copies.Load(client.ObjectKeyFromObject(at)); ok {
			c := c.(tokenCopy)
			if c.uid == at.UID && r.Fingerprinter.Fingerprint([]byte(c.token)) == at.Status.TokenFingerprint {
				in.state.Token, in.state.Fields, in.stateMatches = c.token, c.fields, true
			}
		}
	}
	if in.spec != nil {
		versions, err := r.credentialVersions(ctx, in)
		if err != nil {
			return nil, err
		}
		in.inputsHash = hashInputs(at, in, versions)
		in.inputsIdentity = inputsIdentity(at, in)
		if in.reown && in.secretRecord != nil && in.problem == nil {
			if in.cachesBehind, err = r.cachesBehind(ctx, at, in); err != nil {
				return nil, err
			}
		}
	}
	return in, nil
}

// stateCached reports whether at has a state Secret, as the cache or this
// process's own last write shows: the state of an issuer the AccessToken has
// moved from is read even when the current issuer keeps none.
func (r *AccessTokenReconciler) stateCached(ctx context.Context, at *tokensv1alpha1.AccessToken) bool {
	if v, ok := r.stateVersions.Load(client.ObjectKeyFromObject(at)); ok && v.(writtenStatus).uid == at.UID {
		return true
	}
	// The typed cache holds tokenmint's own Secrets, state Secrets included.
	s := &corev1.Secret{}
	return r.Client.Get(ctx, types.NamespacedName{Namespace: r.OperatorNamespace, Name: secret.StateName(at)}, s) == nil
}

// stateHolds reports whether the state holds the token of fingerprint fp.
func (in *inputs) stateHolds(f *secret.Fingerprinter, fp string) bool {
	return in.state.Token != "" && f.Fingerprint([]byte(in.state.Token)) == fp
}

// gatherState reads the AccessToken's state Secret: under its name, or under
// the UID an earlier version named it by (moved at the next write). State
// minted by another issuer is dropped (see sameIssuer).
func (r *AccessTokenReconciler) gatherState(ctx context.Context, reader client.Reader, live bool, at *tokensv1alpha1.AccessToken, in *inputs) error {
	s := &corev1.Secret{}
	key := types.NamespacedName{Namespace: r.OperatorNamespace, Name: secret.StateName(at)}
	err := reader.Get(ctx, key, s)
	if v, ok := r.stateVersions.Load(client.ObjectKeyFromObject(at)); !live && (ok && v.(writtenStatus).uid == at.UID &&
		(err != nil || s.ResourceVersion != v.(writtenStatus).resourceVersion) || err == nil && len(s.Data) == 0) {
		// The cache has not caught up with this process's last write, or
		// holds a state written before states were bounded, larger than
		// secret.MaxStateBytes, without its data.
		s = &corev1.Secret{}
		err = r.APIReader.Get(ctx, key, s)
	}
	if apierrors.IsNotFound(err) {
		key.Name = secret.UIDStateName(at)
		s = &corev1.Secret{}
		if err = reader.Get(ctx, key, s); err == nil && len(s.Data) == 0 {
			s = &corev1.Secret{}
			err = r.APIReader.Get(ctx, key, s)
		}
		if err == nil {
			in.stateMoved = key.Name
		}
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("reading state Secret: %w", err)
	}
	if in.state, err = secret.DecodeState(s); err != nil {
		return err
	}
	endpoint := issuerEndpoint(in.spec)
	switch {
	case in.state.Issuer == "" && in.spec != nil:
		// Written before state recorded its issuer (and before issuerRef
		// could change): taken as this issuer's, and stamped so that the
		// next write records it.
		in.state.Issuer, in.state.IssuerUID, in.state.IssuerEndpoint = in.issuerKey, string(in.issuerUID), endpoint
	case in.state.Issuer == "" || in.issuerUID == "":
		// No issuer to compare with (it is not found): kept as it is.
	case in.state.Issuer != in.issuerKey:
		// Minted by the issuer spec.issuerRef named before a move: its
		// refresh token is never sent to this one, dropped and forgotten at
		// the next write; its tokens are revoked through their own issuer
		// only (see accesstoken_move.go).
		in.moved = true
		in.state.RefreshToken, in.state.RefreshTokenExpiresAt = "", nil
	case !sameIssuer(in.state, in.issuerKey, in.issuerUID, endpoint):
		// Another issuer under the same name (one deleted and created again
		// elsewhere by someone else, say): its refresh token and tokens are
		// never sent to this one. They are dropped, and forgotten at the
		// next write.
		in.state, in.stateMoved = secret.State{}, ""
		return nil
	}
	// Every superseded token names its issuer from here on; those of this
	// issuer restored under a new UID follow it.
	in.state.Superseded = slices.Clone(in.state.Superseded)
	for i := range in.state.Superseded {
		sup := &in.state.Superseded[i]
		if sup.Issuer == "" {
			sup.Issuer, sup.IssuerUID = in.state.Issuer, in.state.IssuerUID
		}
		if !in.moved && in.issuerUID != "" && sup.Issuer == in.issuerKey && sup.IssuerUID == in.state.IssuerUID {
			sup.IssuerUID = string(in.issuerUID)
		}
	}
	if !in.moved && in.issuerUID != "" && (in.state.IssuerUID != string(in.issuerUID) || in.state.IssuerEndpoint != endpoint ||
		in.stateMoved != "" || s.Labels[secret.LabelAccessTokenUID] != string(at.UID)) {
		// Restored from backup (new UIDs), or written by an earlier version:
		// written once more under this AccessToken's name, UID and issuer.
		in.state.IssuerUID, in.state.IssuerEndpoint = string(in.issuerUID), endpoint
		in.stateDirty = true
	}
	in.stateMatches = in.state.Restorable() &&
		r.Fingerprinter.Fingerprint([]byte(in.state.Token)) == at.Status.TokenFingerprint
	return nil
}

func (r *AccessTokenReconciler) gatherIssuer(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs) (*tokensv1alpha1.IssuerSpec, types.UID, *problem, error) {
	name := at.Spec.IssuerRef.Name
	if at.Spec.IssuerRef.Kind == tokensv1alpha1.ClusterTokenIssuerKind {
		obj, err := r.sharedIssuer(ctx, types.NamespacedName{Name: name}, &tokensv1alpha1.ClusterTokenIssuer{})
		if err != nil {
			if apierrors.IsNotFound(err) {
				return nil, "", &problem{tokensv1alpha1.ReasonIssuerNotFound, fmt.Sprintf("ClusterTokenIssuer %q not found", name)}, nil
			}
			return nil, "", nil, err
		}
		cti := obj.(*tokensv1alpha1.ClusterTokenIssuer)
		// The source of a ClusterAccessToken lives in the operator namespace;
		// the namespaces it is copied to are checked against allowedNamespaces.
		allowed := clusterAccessTokenSource(at, r.OperatorNamespace)
		if !allowed {
			var err error
			if allowed, err = r.namespaceAllowed(ctx, cti.Spec.AllowedNamespaces, at.Namespace); err != nil {
				return nil, "", nil, err
			}
		}
		if !allowed {
			return nil, "", &problem{tokensv1alpha1.ReasonIssuerNotAllowed,
				fmt.Sprintf("ClusterTokenIssuer %q does not allow namespace %q", name, at.Namespace)}, nil
		}
		in.secretsNamespace = r.CredentialsNamespace
		if p := issuerDurations(&cti.Spec.IssuerSpec); p != nil {
			return nil, cti.UID, p, nil
		}
		if p, err := r.bindNamespace(ctx, at, &cti.Spec.IssuerSpec, in); p != nil || err != nil {
			return nil, cti.UID, p, err
		}
		return &cti.Spec.IssuerSpec, cti.UID, nil, nil
	}
	obj, err := r.sharedIssuer(ctx, types.NamespacedName{Namespace: at.Namespace, Name: name}, &tokensv1alpha1.TokenIssuer{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "", &problem{tokensv1alpha1.ReasonIssuerNotFound,
				fmt.Sprintf("TokenIssuer %q not found in namespace %q", name, at.Namespace)}, nil
		}
		return nil, "", nil, err
	}
	ti := obj.(*tokensv1alpha1.TokenIssuer)
	in.secretsNamespace = at.Namespace
	in.guarded = !r.AllowPrivateDestinations
	if p := issuerDurations(&ti.Spec); p != nil {
		return nil, ti.UID, p, nil
	}
	if keys := issuer.NamespaceLabelKeys(&ti.Spec); len(keys) > 0 {
		return nil, ti.UID, &problem{tokensv1alpha1.ReasonInvalidConfig,
			"fromNamespaceLabel is for ClusterTokenIssuers: a TokenIssuer serves only its own namespace"}, nil
	}
	return &ti.Spec, ti.UID, nil, nil
}

// issuerCopy is the copy of an issuer the AccessTokens that use it share, of
// one version of it.
type issuerCopy struct {
	resourceVersion string
	uid             types.UID
	obj             client.Object
}

// issuerMemo is the key of an issuer's shared copy: no string is built for
// it on every reconcile.
type issuerMemo struct {
	cluster bool
	key     types.NamespacedName
}

// maxIssuerCopies bounds the issuers whose shared copy is kept; the least
// recently used are copied again when next read.
const maxIssuerCopies = 1024

// sharedIssuer returns the issuer key, of cur's type, read from the cache:
// one copy of each version of it, shared by every AccessToken that reads it
// and never written to. A copy per AccessToken would be kept by each call
// waiting its turn: about a kilobyte each, a hundred megabytes for a backlog
// of a hundred thousand (the first issue of as many AccessTokens, a re-issue
// of all after an issuer change).
func (r *AccessTokenReconciler) sharedIssuer(ctx context.Context, key types.NamespacedName, cur client.Object) (client.Object, error) {
	if r.issuerCopies == nil {
		return cur, r.Get(ctx, key, cur)
	}
	// Not copied: cur shares what the cache holds, and is only read here.
	if err := r.Get(ctx, key, cur, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	_, cluster := cur.(*tokensv1alpha1.ClusterTokenIssuer)
	memo := issuerMemo{cluster: cluster, key: key}
	if v, ok := r.issuerCopies.Get(memo); ok {
		if c := v.(issuerCopy); c.resourceVersion == cur.GetResourceVersion() && c.uid == cur.GetUID() {
			return c.obj, nil
		}
	}
	shared := cur.DeepCopyObject().(client.Object)
	r.issuerCopies.Add(memo, issuerCopy{resourceVersion: cur.GetResourceVersion(), uid: cur.GetUID(), obj: shared})
	return shared, nil
}

// specProblem reports a field of the AccessToken that cannot be used: a
// duration stored before the apiserver validated them, reported here and never
// in the way of decoding the other AccessTokens.
func specProblem(at *tokensv1alpha1.AccessToken) *problem {
	if n, ok := droppedParameters(at); ok {
		return &problem{tokensv1alpha1.ReasonInvalidSpec, fmt.Sprintf(
			"parameters hold %d bytes, more than the %d tokenmint reads", n, MaxParametersBytes)}
	}
	if err := errors.Join(at.Spec.MaxAge.Check("spec.maxAge"), at.Spec.RenewBefore.Check("spec.renewBefore")); err != nil {
		return &problem{tokensv1alpha1.ReasonInvalidSpec, err.Error()}
	}
	return nil
}

// issuerDurations reports an issuer's duration that could not be parsed.
func issuerDurations(spec *tokensv1alpha1.IssuerSpec) *problem {
	if err := errors.Join(spec.Timeout.Check("timeout"), spec.RevokeGracePeriod.Check("revokeGracePeriod")); err != nil {
		return &problem{tokensv1alpha1.ReasonInvalidConfig, "the issuer's " + err.Error()}
	}
	return nil
}

// namespaceAllowed evaluates a ClusterTokenIssuer's allowedNamespaces.
func (r *AccessTokenReconciler) namespaceAllowed(ctx context.Context, allowed *tokensv1alpha1.AllowedNamespaces, ns string) (bool, error) {
	if allowed == nil || slices.Contains(allowed.Names, ns) {
		return true, nil
	}
	if allowed.Selector == nil {
		return false, nil
	}
	nsMeta := &metav1.PartialObjectMetadata{}
	nsMeta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := r.Metadata.Get(ctx, types.NamespacedName{Name: ns}, nsMeta); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return selected(allowed.Names, allowed.Selector, ns, nsMeta.Labels), nil
}

// selected reports whether the namespace ns with labels nsLabels is among
// names or matches selector. An invalid selector selects nothing.
func selected(names []string, selector *metav1.LabelSelector, ns string, nsLabels map[string]string) bool {
	if slices.Contains(names, ns) {
		return true
	}
	if selector == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	return err == nil && sel.Matches(labels.Set(nsLabels))
}

// gatherSecret finds the AccessToken's Secret and whether tokenmint owns it.
func (r *AccessTokenReconciler) gatherSecret(ctx context.Context, reader client.Reader, at *tokensv1alpha1.AccessToken, in *inputs) error {
	key := types.NamespacedName{Namespace: at.Namespace, Name: at.Spec.Secret.Name}
	s := &corev1.Secret{}
	// The cache holds only tokenmint's Secrets: a foreign Secret of that name is
	// invisible to it, and found by the live read that precedes every write.
	err := reader.Get(ctx, key, s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading Secret %s: %w", key, err)
	}
	in.foreign, in.reown, in.adopting, in.unproven = false, false, false, false
	if !secret.IsOwnedBy(s, at) {
		if restoredCandidate(s, at) && !r.Fingerprinter.ProvesOwner(s, "AccessToken", at.Name) && reader != r.APIReader {
			// The cache keeps no annotations of a Secret whose proof it
			// cannot check (one restored without owner references or a
			// label naming its AccessToken): read once from the apiserver.
			live := &corev1.Secret{}
			if err := r.APIReader.Get(ctx, key, live); err != nil {
				if apierrors.IsNotFound(err) {
					return nil
				}
				return fmt.Errorf("reading Secret %s: %w", key, err)
			}
			s = live
		}
		switch {
		case restoredCandidate(s, at) && r.Fingerprinter.ProvesOwner(s, "AccessToken", at.Name):
			// tokenmint wrote it for this AccessToken before a restore (or a
			// re-creation) gave it a new UID.
			in.reown = true
			if len(s.Data) == 0 && reader != r.APIReader {
				if err := r.APIReader.Get(ctx, key, s); err != nil {
					return client.IgnoreNotFound(err)
				}
			}
		case secret.Adoptable(s, at):
			// Its owner marked it to be taken over: a new token is minted
			// into it (the one it holds has no record tokenmint can trust).
			in.secret, in.adopting = s, true
			return nil
		default:
			in.foreign = true
			return nil
		}
	}
	if !r.Fingerprinter.ProvesOwner(s, "AccessToken", at.Name) {
		// Written before Secrets carried the owner proof by name (or under
		// another key): the cache may hold no data of it. Read once from the
		// apiserver; the Secret is rewritten with the proof (see
		// secretDrifted).
		in.unproven = !in.reown
		if len(s.Data) == 0 {
			s = &corev1.Secret{}
			if err := r.APIReader.Get(ctx, key, s); err != nil {
				if apierrors.IsNotFound(err) {
					return nil
				}
				return fmt.Errorf("reading Secret %s: %w", key, err)
			}
			if !secret.IsOwnedBy(s, at) && !in.reown {
				in.foreign, in.unproven = true, false
				return nil
			}
		}
	}
	in.secret = s
	tok, ok := s.Data[secret.Key(at)]
	if !ok {
		return nil
	}
	fp := r.Fingerprinter.Fingerprint(tok)
	in.secretMatches = at.Status.TokenFingerprint != "" && fp == at.Status.TokenFingerprint
	if pk := at.Spec.Secret.PreviousKey; pk != "" && len(s.Data[pk]) > 0 {
		in.previous = string(s.Data[pk])
		in.previousUntil, _ = secret.PreviousUntil(s) // none recorded: remove it now
	}
	if rec, ok := secret.ReadRecord(s); ok && rec.Fingerprint == fp {
		in.secretRecord = &rec
	}
	return nil
}

// credentialVersions returns "namespace/name@uid/resourceVersion" of every
// credential Secret the issuer reads, from the watch-fed caches; neither
// values nor the apiserver are read here.
//
// A cache may lag behind a version of a Secret that readCredentials read from
// the apiserver for the last mint, whose inputs hash records that version: the
// later of the two is taken, so that a lagging cache never looks like a
// change of inputs (which would mint again). A change the cache does not show
// yet is acted on when it shows it: its watch event queues the AccessTokens of
// the issuers that read the Secret.
func (r *AccessTokenReconciler) credentialVersions(ctx context.Context, in *inputs) ([]string, error) {
	var versions []string
	for _, k := range credentialKeys(in.spec, in.secretsNamespace) {
		ns, name, _ := strings.Cut(k, "/")
		uid, rv, found, err := r.cachedSecretVersion(ctx, types.NamespacedName{Namespace: ns, Name: name})
		if err != nil {
			return nil, fmt.Errorf("reading credential Secret metadata: %w", err)
		}
		if c, ok := r.credentials.get(k); ok && found && c.uid == uid && newer(c.resourceVersion, rv) {
			rv = c.resourceVersion
		}
		versions = append(versions, credentialVersion(k, uid, rv))
	}
	return versions, nil
}

// cachedSecretVersion returns a Secret's UID and resourceVersion from the
// caches: the metadata cache holds every Secret but tokenmint's own, which the
// typed cache holds (one of them may be another issuer's credential). found is
// false when neither holds it.
func (r *AccessTokenReconciler) cachedSecretVersion(ctx context.Context, key types.NamespacedName) (uid types.UID, rv string, found bool, err error) {
	return cachedSecretVersion(ctx, r.Metadata, r.Client, key)
}

// cachedSecretVersion reads a Secret's UID and resourceVersion from the
// metadata cache, else from the typed cache (tokenmint's own Secrets).
func cachedSecretVersion(ctx context.Context, metadata, typed client.Reader, key types.NamespacedName) (uid types.UID, rv string, found bool, err error) {
	m := secretMetadata()
	err = metadata.Get(ctx, key, m)
	if err == nil {
		return m.UID, m.ResourceVersion, true, nil
	}
	if !apierrors.IsNotFound(err) {
		return "", "", false, err
	}
	s := &corev1.Secret{}
	if err := typed.Get(ctx, key, s); err != nil {
		return "", "", false, client.IgnoreNotFound(err)
	}
	return s.UID, s.ResourceVersion, true, nil
}

// secretMetadata is an empty PartialObjectMetadata of a Secret, to read into.
func secretMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

func credentialVersion(key string, uid types.UID, resourceVersion string) string {
	return key + "@" + string(uid) + "/" + resourceVersion
}

// hashInputs hashes what the token is issued from: the issuer (identity and
// spec), the AccessToken's parameters and target, the versions of the
// credential Secrets, and the namespace labels parameters are bound to (left
// out when there are none, so that the hash of other tokens stays as it was).
// The issuer's pace of calls (rateLimit) and of re-issues (reissueWindow) is
// not what a token is issued from: changing them re-issues nothing.
func hashInputs(at *tokensv1alpha1.AccessToken, in *inputs, versions []string) string {
	spec := in.spec
	if spec != nil && (spec.RateLimit != nil || spec.ReissueWindow != nil) {
		c := *spec
		c.RateLimit, c.ReissueWindow = nil, nil
		spec = &c
	}
	raw, _ := json.Marshal(struct {
		Issuer          string
		IssuerUID       types.UID
		Spec            *tokensv1alpha1.IssuerSpec
		Parameters      any
		Secret          string
		Key             string
		Credentials     []string
		NamespaceLabels map[string]string `json:",omitempty"`
	}{in.issuerKey, in.issuerUID, spec, at.Spec.Parameters, at.Spec.Secret.Name, secret.Key(at), versions, in.namespaceLabels})
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}

// copyKeys lists the Secret keys of the fields an issuer copies.
func copyKeys(spec *tokensv1alpha1.IssuerSpec) []string {
	keys := make([]string, 0, len(spec.Response.Copy))
	for _, c := range spec.Response.Copy {
		keys = append(keys, c.Key)
	}
	return keys
}

// output is what the Secret should hold at now, from the token it holds (or,
// when it lost it, the state's copy). ok is false when neither is known.
func (in *inputs) output(now time.Time) (out secret.Output, ok bool) {
	at := in.at
	switch {
	case in.secret != nil && in.secretMatches:
		out.Token = string(in.secret.Data[secret.Key(at)])
		out.Fields = map[string]string{}
		if in.spec != nil {
			for _, k := range copyKeys(in.spec) {
				if v, ok := in.secret.Data[k]; ok {
					out.Fields[k] = string(v)
				}
			}
		}
		if in.previous != "" && now.Before(in.previousUntil) {
			out.Previous, out.PreviousUntil = in.previous, in.previousUntil
		}
	case in.stateMatches:
		out.Token, out.Fields = in.state.Token, in.state.Fields
	default:
		return secret.Output{}, false
	}
	if st := at.Status; st.IssuedAt != nil {
		out.IssuedAt = st.IssuedAt.Time
		if st.ExpiresAt != nil {
			exp := st.ExpiresAt.Time
			out.ExpiresAt = &exp
		}
	}
	return out, true
}
