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
	"errors"
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
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// ClusterAccessTokenFinalizer removes a ClusterAccessToken's Secrets and its
// source AccessToken (which revokes the token, when its issuer can) before the
// ClusterAccessToken goes.
const ClusterAccessTokenFinalizer = "tokens.tokenmint.dev/cluster-secrets"

// maxReportedFailures bounds status.failures.
const maxReportedFailures = 10

// clusterSourcePrefix names the source AccessToken (and its Secret) of a
// ClusterAccessToken in the operator namespace.
const clusterSourcePrefix = "cluster-"

// ClusterAccessTokenReconciler serves ClusterAccessTokens. Each has one source
// AccessToken in the operator namespace, owned by it, which mints and renews
// the token exactly like any AccessToken (backoff, refresh, revocation,
// outputs); the reconciler copies the source's Secret, as it is, into a Secret
// of the ClusterAccessToken's name in every selected namespace the issuer
// allows. One mint serves every namespace; a namespace selected later gets the
// current token from the source, without a mint.
type ClusterAccessTokenReconciler struct {
	client.Client
	// APIReader reads what the caches do not hold: a Secret of the wanted name
	// that tokenmint does not manage.
	APIReader client.Reader
	// Metadata reads the metadata cache, which holds every namespace's labels.
	Metadata          client.Reader
	Recorder          events.EventRecorder
	OperatorNamespace string
	// WatchNamespaces, when set, are the only namespaces the manager serves
	// (--watch-namespaces): a selected namespace outside them is reported,
	// never written.
	WatchNamespaces []string
	// Fingerprinter signs the copies' owner proof (see secret.AnnotationOwnerProof).
	Fingerprinter *secret.Fingerprinter
	// ReadOnly writes nothing but ClusterAccessTokens' status (--read-only):
	// no copy, no source AccessToken, no finalizer but its release.
	ReadOnly bool
}

// clusterAccessTokenSource reports whether at is the source AccessToken of a
// ClusterAccessToken: in the operator namespace (where only administrators
// create objects) and controlled by one.
func clusterAccessTokenSource(at *tokensv1alpha1.AccessToken, operatorNamespace string) bool {
	ref := metav1.GetControllerOfNoCopy(at)
	return at.Namespace == operatorNamespace && ref != nil && ref.Kind == "ClusterAccessToken" &&
		ref.APIVersion == tokensv1alpha1.GroupVersion.String()
}

// sourceName is the name of the source AccessToken and of its Secret.
func sourceName(cat *tokensv1alpha1.ClusterAccessToken) string { return clusterSourcePrefix + cat.Name }

// +kubebuilder:rbac:groups=tokens.tokenmint.dev,resources=clusteraccesstokens,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=tokens.tokenmint.dev,resources=clusteraccesstokens/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tokens.tokenmint.dev,resources=clusteraccesstokens/finalizers,verbs=update
//
// The source AccessTokens are created and deleted in the operator namespace
// only: that permission is a Role there (config/rbac/leader_election_role.yaml,
// and the chart's), never cluster-wide.

func (r *ClusterAccessTokenReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cat := &tokensv1alpha1.ClusterAccessToken{}
	if err := r.Get(ctx, req.NamespacedName, cat); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !cat.DeletionTimestamp.IsZero() {
		if r.ReadOnly {
			return ctrl.Result{}, r.releaseReadOnly(ctx, cat)
		}
		return ctrl.Result{}, r.finalize(ctx, cat)
	}
	if p := r.held(cat); p != nil {
		return ctrl.Result{}, r.hold(ctx, cat, p)
	}
	if !controllerutil.ContainsFinalizer(cat, ClusterAccessTokenFinalizer) {
		patch := client.MergeFromWithOptions(cat.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(cat, ClusterAccessTokenFinalizer)
		if err := r.Patch(ctx, cat, patch); err != nil {
			return ctrl.Result{}, err
		}
	}
	orig := cat.DeepCopy()
	st := &cat.Status
	st.ObservedGeneration = cat.Generation

	source, err := r.ensureSource(ctx, cat)
	if err != nil {
		return ctrl.Result{}, err
	}
	var sourceSecret *corev1.Secret
	if source != nil {
		mirror(cat, source)
		sourceSecret, err = r.currentSource(ctx, source)
		if err != nil {
			return ctrl.Result{}, err
		}
	}

	set, err := r.targets(ctx, cat)
	if err != nil {
		return ctrl.Result{}, err
	}
	targets, failures := set.write, set.failures
	written := 0
	if sourceSecret != nil {
		for _, ns := range targets {
			if err := r.writeCopy(ctx, cat, sourceSecret, ns); err != nil {
				failures = append(failures, tokensv1alpha1.NamespaceFailure{Name: ns, Message: err.Error()})
				continue
			}
			written++
		}
	}
	kept, err := r.removeStale(ctx, cat, append(slices.Clone(targets), set.keep...))
	if err != nil {
		return ctrl.Result{}, err
	}

	slices.SortFunc(failures, func(a, b tokensv1alpha1.NamespaceFailure) int { return strings.Compare(a.Name, b.Name) })
	st.Namespaces, st.Written, st.Failing = int32(len(targets)), int32(written), int32(len(failures))
	st.Failures = failures[:min(len(failures), maxReportedFailures)]
	setClusterReady(cat, source, sourceSecret != nil)
	r.resume(orig, cat)
	if c := set.closed; c != nil {
		meta.SetStatusCondition(&cat.Status.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionReady,
			Status: metav1.ConditionFalse, Reason: c.reason, ObservedGeneration: cat.Generation,
			Message: fmt.Sprintf("%s: no Secret is written; the %d written before are kept as they are", c.message, kept)})
	}
	if len(failures) > 0 && orig.Status.Failing == 0 {
		r.Recorder.Eventf(cat, nil, corev1.EventTypeWarning, "NamespacesFailing", "Write",
			"%d namespaces could not be written, first %s: %s", len(failures), failures[0].Name, failures[0].Message)
	}
	if !equality.Semantic.DeepEqual(orig.Status, cat.Status) {
		if err := r.Status().Patch(ctx, cat, client.MergeFrom(orig)); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// ensureSource creates or updates the source AccessToken; nil when another
// object holds its name.
func (r *ClusterAccessTokenReconciler) ensureSource(ctx context.Context, cat *tokensv1alpha1.ClusterAccessToken) (*tokensv1alpha1.AccessToken, error) {
	want := tokensv1alpha1.AccessTokenSpec{
		IssuerRef:     tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: cat.Spec.IssuerRef.Name},
		Parameters:    cat.Spec.Parameters,
		Secret:        *cat.Spec.Secret.DeepCopy(),
		RenewalPolicy: cat.Spec.RenewalPolicy,
		Suspend:       cat.Spec.Suspend, // false here; a hold sets it (see holdSource)
	}
	want.Secret.Name = sourceName(cat)
	at := &tokensv1alpha1.AccessToken{}
	err := r.Get(ctx, types.NamespacedName{Namespace: r.OperatorNamespace, Name: sourceName(cat)}, at)
	switch {
	case apierrors.IsNotFound(err):
		held, err := r.sourceHeldBack(ctx, cat)
		if err != nil || held != "" {
			if held != "" {
				meta.SetStatusCondition(&cat.Status.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionReady,
					Status: metav1.ConditionFalse, Reason: reasonSourceHeldBack, ObservedGeneration: cat.Generation,
					Message: fmt.Sprintf("the source AccessToken %s/%s is not created again: %s", r.OperatorNamespace, sourceName(cat), held)})
			}
			return nil, err
		}
		at = &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: r.OperatorNamespace, Name: sourceName(cat)}, Spec: want}
		if renew := cat.Annotations[tokensv1alpha1.AnnotationRenew]; renew != "" {
			// A new AccessToken records the request with its first mint.
			at.Annotations = map[string]string{tokensv1alpha1.AnnotationRenew: renew}
		}
		if err := controllerutil.SetControllerReference(cat, at, r.Scheme()); err != nil {
			return nil, err
		}
		if err := r.Create(ctx, at); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating the source AccessToken: %w", err)
		}
		return at, nil
	case err != nil:
		return nil, err
	case !metav1.IsControlledBy(at, cat):
		meta.SetStatusCondition(&cat.Status.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionReady,
			Status: metav1.ConditionFalse, Reason: tokensv1alpha1.ReasonSecretNotOwned, ObservedGeneration: cat.Generation,
			Message: fmt.Sprintf("AccessToken %s/%s exists and is not this ClusterAccessToken's", r.OperatorNamespace, sourceName(cat))})
		return nil, nil
	}
	// A renewal asked of the ClusterAccessToken (its renew annotation) is
	// asked of the source, which serves it as any AccessToken does.
	renew := cat.Annotations[tokensv1alpha1.AnnotationRenew]
	forward := renew != "" && at.Annotations[tokensv1alpha1.AnnotationRenew] != renew
	if !equality.Semantic.DeepEqual(at.Spec, want) || forward {
		patch := client.MergeFrom(at.DeepCopy())
		at.Spec = want
		if forward {
			if at.Annotations == nil {
				at.Annotations = map[string]string{}
			}
			at.Annotations[tokensv1alpha1.AnnotationRenew] = renew
		}
		if err := r.Patch(ctx, at, patch); err != nil {
			return nil, fmt.Errorf("updating the source AccessToken: %w", err)
		}
	}
	return at, nil
}

// reasonSourceHeldBack is the Ready reason of a ClusterAccessToken whose
// missing source AccessToken is not created again.
const reasonSourceHeldBack = "SourceHeldBack"

// sourceHeldBack says why a missing source AccessToken must not be created
// again, or "". During an uninstall the source goes while its
// ClusterAccessToken, or the operator namespace, is going too: a new source
// would mint a token that nothing revokes, and keep the namespace terminating.
// The cache may not show the ClusterAccessToken's deletion yet, so it is read
// from the API server; creations are rare.
func (r *ClusterAccessTokenReconciler) sourceHeldBack(ctx context.Context, cat *tokensv1alpha1.ClusterAccessToken) (string, error) {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	switch err := r.Metadata.Get(ctx, types.NamespacedName{Name: r.OperatorNamespace}, ns); {
	case apierrors.IsNotFound(err):
		return fmt.Sprintf("the operator namespace %q does not exist", r.OperatorNamespace), nil
	case err != nil:
		return "", fmt.Errorf("reading the operator namespace: %w", err)
	case !ns.DeletionTimestamp.IsZero():
		return fmt.Sprintf("the operator namespace %q is being deleted", r.OperatorNamespace), nil
	}
	live := &tokensv1alpha1.ClusterAccessToken{}
	switch err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(cat), live); {
	case apierrors.IsNotFound(err):
		return "the ClusterAccessToken is being deleted", nil
	case err != nil:
		return "", err
	case !live.DeletionTimestamp.IsZero() || live.UID != cat.UID:
		return "the ClusterAccessToken is being deleted", nil
	}
	return "", nil
}

// currentSource returns the source Secret when it holds the token the source
// AccessToken reports: only a current token is copied.
func (r *ClusterAccessTokenReconciler) currentSource(ctx context.Context, at *tokensv1alpha1.AccessToken) (*corev1.Secret, error) {
	if at.Status.TokenFingerprint == "" {
		return nil, nil
	}
	s := &corev1.Secret{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: at.Namespace, Name: at.Spec.Secret.Name}, s); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if !r.Fingerprinter.VerifyOwnerProof(s) && len(s.Data) == 0 {
		// Written before Secrets carried the owner proof: the cache holds
		// none of its data until the AccessToken rewrites it.
		s = &corev1.Secret{}
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: at.Namespace, Name: at.Spec.Secret.Name}, s); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
	}
	rec, ok := secret.ReadRecord(s)
	if !ok || rec.Fingerprint != at.Status.TokenFingerprint || !metav1.IsControlledBy(s, at) {
		return nil, nil
	}
	return s, nil
}

// targetSet is where a ClusterAccessToken's Secret goes.
type targetSet struct {
	// write are the selected namespaces the issuer allows, sorted.
	write []string
	// keep are selected namespaces whose Secrets, written before, are kept
	// but not written: every selected namespace while closed.
	keep []string
	// failures are the selected namespaces not written, and why.
	failures []tokensv1alpha1.NamespaceFailure
	// closed says why no namespace is allowed at all: the issuer is gone, or
	// it binds parameters to each namespace's labels.
	closed *problem
}

// targets lists the selected namespaces the issuer allows, and reports the
// others. Without the issuer, allowedNamespaces cannot be read: no namespace
// is allowed (fail closed), and the Secrets written before are kept as they
// are, so that a deleted and re-created issuer does not take tokens away from
// running workloads, while no namespace gets one it did not have.
func (r *ClusterAccessTokenReconciler) targets(ctx context.Context, cat *tokensv1alpha1.ClusterAccessToken) (targetSet, error) {
	var set targetSet
	var allowed *tokensv1alpha1.AllowedNamespaces
	name := cat.Spec.IssuerRef.Name
	cti := &tokensv1alpha1.ClusterTokenIssuer{}
	switch err := r.Get(ctx, types.NamespacedName{Name: name}, cti); {
	case apierrors.IsNotFound(err):
		set.closed = &problem{tokensv1alpha1.ReasonIssuerNotFound,
			fmt.Sprintf("ClusterTokenIssuer %q not found, so no namespace is allowed", name)}
	case err != nil:
		return set, err
	default:
		allowed = cti.Spec.AllowedNamespaces
		if keys := issuer.NamespaceLabelKeys(&cti.Spec.IssuerSpec); len(keys) > 0 {
			set.closed = &problem{tokensv1alpha1.ReasonIssuerNotAllowed, fmt.Sprintf(
				"ClusterTokenIssuer %q binds parameters to labels of the namespace asking (%q), so one token cannot serve several namespaces", name, keys)}
		}
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	if err := r.Metadata.List(ctx, list); err != nil {
		return set, fmt.Errorf("listing namespaces: %w", err)
	}
	for _, ns := range list.Items {
		sel := cat.Spec.Namespaces
		if !ns.DeletionTimestamp.IsZero() || !selected(sel.Names, sel.Selector, ns.Name, ns.Labels) {
			continue
		}
		fail := func(message string) {
			set.failures = append(set.failures, tokensv1alpha1.NamespaceFailure{Name: ns.Name, Message: message})
		}
		switch {
		case len(r.WatchNamespaces) > 0 && !slices.Contains(r.WatchNamespaces, ns.Name):
			fail("the manager does not serve this namespace (--watch-namespaces)")
		case set.closed != nil:
			fail(set.closed.message)
			set.keep = append(set.keep, ns.Name)
		case allowed != nil && !selected(allowed.Names, allowed.Selector, ns.Name, ns.Labels):
			fail(fmt.Sprintf("ClusterTokenIssuer %q does not allow this namespace", name))
		default:
			set.write = append(set.write, ns.Name)
		}
	}
	slices.Sort(set.write)
	return set, nil
}

// copyLabels are the labels of a ClusterAccessToken's Secrets.
func copyLabels(cat *tokensv1alpha1.ClusterAccessToken) map[string]string {
	l := maps.Clone(cat.Spec.Secret.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[tokensv1alpha1.LabelManagedBy] = tokensv1alpha1.ManagedByValue
	l[tokensv1alpha1.LabelClusterAccessToken] = cat.Name
	return l
}

// copyAnnotations are the user's annotations and the source's record.
func copyAnnotations(cat *tokensv1alpha1.ClusterAccessToken, src *corev1.Secret) map[string]string {
	a := maps.Clone(cat.Spec.Secret.Annotations)
	if a == nil {
		a = map[string]string{}
	}
	for _, k := range recordAnnotations {
		if v, ok := src.Annotations[k]; ok {
			a[k] = v
		}
	}
	return a
}

// recordAnnotations are the source Secret's record, copied to every copy.
var recordAnnotations = []string{secret.AnnotationFingerprint, secret.AnnotationIssuedAt, secret.AnnotationExpiresAt, secret.AnnotationPreviousUntil}

var errNotOwnedCopy = errors.New("a Secret of that name exists and is not this ClusterAccessToken's; tokenmint will not take it over")

// writeCopy makes the Secret in ns hold what the source holds. A Secret of
// that name tokenmint does not own there is left alone.
func (r *ClusterAccessTokenReconciler) writeCopy(ctx context.Context, cat *tokensv1alpha1.ClusterAccessToken, src *corev1.Secret, ns string) error {
	name := cat.Spec.Secret.Name
	labels, annotations := copyLabels(cat), copyAnnotations(cat, src)
	annotations[secret.AnnotationOwnerProof] = r.Fingerprinter.OwnerProof(ns, name, "ClusterAccessToken", cat.Name)
	create := func() error {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, Annotations: annotations},
			Type: src.Type, Data: src.Data}
		if err := controllerutil.SetControllerReference(cat, s, r.Scheme()); err != nil {
			return err
		}
		err := r.Create(ctx, s, client.FieldOwner(secret.FieldOwner))
		if apierrors.IsAlreadyExists(err) {
			return errNotOwnedCopy
		}
		return err
	}
	cur := &corev1.Secret{}
	err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, cur)
	switch {
	case apierrors.IsNotFound(err):
		// Not in the cache of tokenmint's Secrets. The metadata cache holds
		// the others: someone else's Secret of that name is reported without
		// a write; otherwise create, which still fails if one appeared since.
		if r.Metadata.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, secretMetadata()) == nil {
			return errNotOwnedCopy
		}
		return create()
	case err != nil:
		return err
	case !metav1.IsControlledBy(cur, cat):
		return errNotOwnedCopy
	}
	if cur.Type != src.Type {
		// The type of a Secret cannot change: delete it and create it again
		// (the cache may still show the deleted one: never read it back). A
		// deletion still in progress fails the create; the next reconcile
		// tries again.
		if err := r.Delete(ctx, cur); client.IgnoreNotFound(err) != nil {
			return err
		}
		if err := create(); !errors.Is(err, errNotOwnedCopy) {
			return err
		}
		return errors.New("the Secret of the former type is still being deleted")
	}
	// The copy is tokenmint's alone: one update (checked against its
	// resourceVersion) writes the new data and drops keys the source no
	// longer has.
	updated := cur.DeepCopy()
	updated.ManagedFields = nil // the cache's are a marker, not the real ones
	updated.Data = src.Data
	if updated.Labels == nil {
		updated.Labels = map[string]string{}
	}
	maps.Copy(updated.Labels, labels)
	for _, k := range recordAnnotations {
		delete(updated.Annotations, k)
	}
	if updated.Annotations == nil {
		updated.Annotations = map[string]string{}
	}
	maps.Copy(updated.Annotations, annotations)
	if maps.EqualFunc(cur.Data, src.Data, bytes.Equal) && maps.Equal(cur.Labels, updated.Labels) &&
		maps.Equal(cur.Annotations, updated.Annotations) {
		return nil
	}
	return r.Update(ctx, updated, client.FieldOwner(secret.FieldOwner))
}

// removeStale deletes this ClusterAccessToken's Secrets outside keep, and
// counts those it keeps.
func (r *ClusterAccessTokenReconciler) removeStale(ctx context.Context, cat *tokensv1alpha1.ClusterAccessToken, keep []string) (int, error) {
	copies, err := r.copies(ctx, cat)
	if err != nil {
		return 0, err
	}
	var errs []error
	kept := 0
	for _, s := range copies {
		if slices.Contains(keep, s.Namespace) {
			kept++
			continue
		}
		if err := r.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
			errs = append(errs, err)
		}
	}
	return kept, errors.Join(errs...)
}

// copies lists the Secrets this ClusterAccessToken wrote, from the cache.
func (r *ClusterAccessTokenReconciler) copies(ctx context.Context, cat *tokensv1alpha1.ClusterAccessToken) ([]*corev1.Secret, error) {
	list := &corev1.SecretList{}
	if err := r.List(ctx, list, client.MatchingLabels{tokensv1alpha1.LabelClusterAccessToken: cat.Name}); err != nil {
		return nil, err
	}
	var out []*corev1.Secret
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], cat) {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}

// finalize deletes the Secrets and the source AccessToken, then lets the
// ClusterAccessToken go. The source's own finalizer revokes the token.
func (r *ClusterAccessTokenReconciler) finalize(ctx context.Context, cat *tokensv1alpha1.ClusterAccessToken) error {
	if !controllerutil.ContainsFinalizer(cat, ClusterAccessTokenFinalizer) {
		return nil
	}
	if _, err := r.removeStale(ctx, cat, nil); err != nil {
		return err
	}
	at := &tokensv1alpha1.AccessToken{}
	err := r.Get(ctx, types.NamespacedName{Namespace: r.OperatorNamespace, Name: sourceName(cat)}, at)
	if err == nil && metav1.IsControlledBy(at, cat) {
		if err := r.Delete(ctx, at); client.IgnoreNotFound(err) != nil {
			return err
		}
	} else if client.IgnoreNotFound(err) != nil {
		return err
	}
	patch := client.MergeFromWithOptions(cat.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(cat, ClusterAccessTokenFinalizer)
	return client.IgnoreNotFound(r.Patch(ctx, cat, patch))
}

// mirror copies the source AccessToken's token status.
func mirror(cat *tokensv1alpha1.ClusterAccessToken, at *tokensv1alpha1.AccessToken) {
	st, src := &cat.Status, at.Status
	st.IssuedAt, st.ExpiresAt, st.RenewalTime = src.IssuedAt, src.ExpiresAt, src.RenewalTime
	st.FailedAttempts, st.TokenFingerprint = src.FailedAttempts, src.TokenFingerprint
	if c := meta.FindStatusCondition(src.Conditions, tokensv1alpha1.ConditionRenewing); c != nil {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: c.Type, Status: c.Status, Reason: c.Reason,
			Message: c.Message, ObservedGeneration: cat.Generation})
	}
}

// setClusterReady sets Ready: True when the source holds a valid token and
// every selected namespace holds it.
func setClusterReady(cat *tokensv1alpha1.ClusterAccessToken, source *tokensv1alpha1.AccessToken, haveToken bool) {
	if c := clusterReady(cat, source, haveToken); c != nil {
		meta.SetStatusCondition(&cat.Status.Conditions, *c)
	}
}

// clusterReady is the Ready condition setClusterReady sets; nil without a source.
func clusterReady(cat *tokensv1alpha1.ClusterAccessToken, source *tokensv1alpha1.AccessToken, haveToken bool) *metav1.Condition {
	if source == nil {
		return nil // ensureSource said why
	}
	c := metav1.Condition{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionFalse, ObservedGeneration: cat.Generation}
	st := cat.Status
	ready := meta.FindStatusCondition(source.Status.Conditions, tokensv1alpha1.ConditionReady)
	switch {
	case !haveToken || ready == nil:
		c.Reason, c.Message = tokensv1alpha1.ReasonPending, "no token has been issued yet"
		if ready != nil && ready.Message != "" {
			c.Message += ": " + ready.Message
		}
	case ready.Status != metav1.ConditionTrue:
		c.Reason, c.Message = ready.Reason, ready.Message
	case st.Failing > 0:
		c.Reason = "NamespacesFailing"
		c.Message = fmt.Sprintf("%d namespaces could not be written; see status.failures", st.Failing)
	default:
		c.Status, c.Reason = metav1.ConditionTrue, tokensv1alpha1.ReasonTokenValid
		c.Message = fmt.Sprintf("the Secret of each of the %d selected namespaces holds a valid token", st.Namespaces)
	}
	return &c
}

// SetupWithManager watches ClusterAccessTokens, their source AccessTokens and
// Secrets, their issuers and every namespace.
func (r *ClusterAccessTokenReconciler) SetupWithManager(mgr ctrl.Manager, namespaces SourceFactory) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&tokensv1alpha1.ClusterAccessToken{}).
		Owns(&corev1.Secret{}).
		Owns(&tokensv1alpha1.AccessToken{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.forSourceSecret)).
		Watches(&tokensv1alpha1.ClusterTokenIssuer{}, handler.EnqueueRequestsFromMapFunc(r.all),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("clusteraccesstoken")
	if namespaces != nil {
		b = b.WatchesRawSource(namespaces(handler.EnqueueRequestsFromMapFunc(r.all)))
	}
	return b.Complete(r)
}

// forSourceSecret maps a source Secret to its ClusterAccessToken.
func (r *ClusterAccessTokenReconciler) forSourceSecret(_ context.Context, o client.Object) []reconcile.Request {
	ref := metav1.GetControllerOfNoCopy(o)
	if o.GetNamespace() != r.OperatorNamespace || ref == nil || ref.Kind != "AccessToken" ||
		len(ref.Name) <= len(clusterSourcePrefix) || ref.Name[:len(clusterSourcePrefix)] != clusterSourcePrefix {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: ref.Name[len(clusterSourcePrefix):]}}}
}

// all enqueues every ClusterAccessToken: there are few, and a namespace or an
// issuer change may concern any of them.
func (r *ClusterAccessTokenReconciler) all(ctx context.Context, _ client.Object) []reconcile.Request {
	list := &tokensv1alpha1.ClusterAccessTokenList{}
	if err := r.List(ctx, list); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, cat := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: cat.Name}})
	}
	return reqs
}
