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
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/lru"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
)

// IssuerReconciler reports whether a TokenIssuer or ClusterTokenIssuer is usable:
// its configuration is valid and every credential Secret key it names exists.
type IssuerReconciler struct {
	client.Client
	// APIReader reads credential Secrets, whose values are never cached.
	APIReader client.Reader
	// Metadata is the metadata-only cache of Secrets; when set, a Secret whose
	// version did not change since it was last read is not read again.
	Metadata             client.Reader
	Kind                 tokensv1alpha1.IssuerKind
	CredentialsNamespace string
	// Health, when set, tells what the last call to the issuer's endpoint said.
	Health   *IssuerHealth
	Recorder events.EventRecorder
	// Clocks, when set, holds the issuers' measured clocks, for ClockSkew.
	Clocks *ProviderClocks

	// known holds, by "namespace/name", the secretKeys last read.
	known *lru.Cache
}

// +kubebuilder:rbac:groups=tokens.tokenmint.dev,resources=tokenissuers;clustertokenissuers,verbs=get;list;watch
// +kubebuilder:rbac:groups=tokens.tokenmint.dev,resources=tokenissuers/status;clustertokenissuers/status,verbs=get;update;patch

// Reconcile validates the issuer and writes its Ready condition.
func (r *IssuerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj, spec, status, ns := r.newObject()
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.Clocks.Forget(issuerKey(r.Kind, req.Namespace, req.Name))
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if ns == "" {
		ns = obj.GetNamespace()
	}
	orig := status.DeepCopy()

	cond := metav1.Condition{Type: tokensv1alpha1.ConditionReady, ObservedGeneration: obj.GetGeneration(),
		Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonValid, Message: "configuration is valid and its credential Secrets exist"}
	if err := issuer.Validate(spec); err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, tokensv1alpha1.ReasonInvalidConfig, err.Error()
	} else if missing, err := r.missingCredentials(ctx, spec, ns); err != nil {
		return ctrl.Result{}, err
	} else if len(missing) > 0 {
		cond.Status, cond.Reason = metav1.ConditionFalse, tokensv1alpha1.ReasonSecretMissing
		cond.Message = "missing in namespace " + ns + ": " + strings.Join(missing, ", ")
	}
	prev := meta.FindStatusCondition(orig.Conditions, tokensv1alpha1.ConditionReady)
	if cond.Status == metav1.ConditionTrue {
		if st, ok := r.Health.State(r.Kind, obj); ok && st.reason != "" {
			cond.Status, cond.Reason = metav1.ConditionFalse, st.reason
			cond.Message = fmt.Sprintf("the last call to the endpoint, at %s, failed: %s", st.since.UTC().Format(time.RFC3339), st.message)
		} else if ok {
			cond.Message = "configuration is valid, its credential Secrets exist, and the endpoint accepted the last call"
		} else if prev != nil && prev.Status == metav1.ConditionTrue && prev.Reason == cond.Reason && prev.ObservedGeneration == cond.ObservedGeneration {
			// No call since this process started (a restart, a new
			// leader): what the last one said stands, and nothing is
			// written for a restart.
			cond.Message = prev.Message
		}
	}
	// An event marks each change of Ready's reason, and an issuer whose
	// first known state is already False (its first status may come after
	// the first call's failure).
	if r.Recorder != nil && ((prev == nil && cond.Status == metav1.ConditionFalse) || (prev != nil && prev.Reason != cond.Reason)) {
		switch {
		case cond.Status == metav1.ConditionFalse:
			r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, cond.Reason, "Validate", "%s", cond.Message)
		case prev.Status == metav1.ConditionFalse:
			r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, tokensv1alpha1.ReasonEndpointRecovered, "Validate", "%s", cond.Message)
		}
	}
	meta.SetStatusCondition(&status.Conditions, cond)
	r.Clocks.setClockSkew(r.Kind, obj, status, r.Recorder)
	status.ObservedGeneration = obj.GetGeneration()
	if equality.Semantic.DeepEqual(orig, status) {
		return ctrl.Result{}, nil
	}
	if err := r.Status().Update(ctx, obj); err != nil {
		return ctrl.Result{}, fmt.Errorf("updating issuer status: %w", err)
	}
	return ctrl.Result{}, nil
}

// newObject returns an empty issuer of r's kind, pointers into its spec and
// status, and the namespace its credentials live in ("" for its own).
func (r *IssuerReconciler) newObject() (client.Object, *tokensv1alpha1.IssuerSpec, *tokensv1alpha1.IssuerStatus, string) {
	if r.Kind == tokensv1alpha1.ClusterTokenIssuerKind {
		o := &tokensv1alpha1.ClusterTokenIssuer{}
		return o, &o.Spec.IssuerSpec, &o.Status, r.CredentialsNamespace
	}
	o := &tokensv1alpha1.TokenIssuer{}
	return o, &o.Spec, &o.Status, ""
}

// missingCredentials lists "secret/key" references that do not resolve. The
// Secrets are looked at one at a time, and only the names of the keys asked
// for are kept (see secretKeys).
func (r *IssuerReconciler) missingCredentials(ctx context.Context, spec *tokensv1alpha1.IssuerSpec, ns string) ([]string, error) {
	var names []string
	wanted := map[string][]string{}
	for _, ref := range issuer.SecretRefs(spec) {
		if _, ok := wanted[ref.Name]; !ok {
			names = append(names, ref.Name)
		}
		wanted[ref.Name] = append(wanted[ref.Name], ref.Key)
	}
	var missing []string
	for _, name := range names {
		has, found, err := r.secretKeys(ctx, types.NamespacedName{Namespace: ns, Name: name}, wanted[name])
		if err != nil {
			return nil, err
		}
		if !found {
			missing = append(missing, "Secret "+name)
			continue
		}
		for _, k := range wanted[name] {
			if !has[k] {
				missing = append(missing, fmt.Sprintf("key %q of Secret %s", k, name))
			}
		}
	}
	return missing, nil
}

// maxKnownSecretKeys bounds the Secrets whose key names the issuer reconciler
// remembers.
const maxKnownSecretKeys = 4096

// secretKeys is which of a Secret's keys an issuer asked about it holds, at
// one version.
type secretKeys struct {
	uid             types.UID
	resourceVersion string
	has             map[string]bool
}

// secretKeys reports which of keys the Secret key holds, and whether it
// exists. While the metadata cache shows the version last looked at, the
// answer comes from memory; otherwise the Secret is read, the presence of the
// keys noted, and the Secret (values and all) dropped at once. A credential
// Secret annotated again and again is thus read once per change, not once per
// Secret the issuer names.
func (r *IssuerReconciler) secretKeys(ctx context.Context, key types.NamespacedName, keys []string) (map[string]bool, bool, error) {
	var uid types.UID
	var rv string
	var cached bool
	if r.Metadata != nil {
		var err error
		if uid, rv, cached, err = cachedSecretVersion(ctx, r.Metadata, r.Client, key); err != nil {
			return nil, false, fmt.Errorf("reading credential Secret metadata: %w", err)
		}
	}
	if cached && r.known != nil {
		if v, ok := r.known.Get(key.String()); ok {
			k := v.(secretKeys)
			if k.uid == uid && (k.resourceVersion == rv || newer(k.resourceVersion, rv)) && knowsAll(k.has, keys) {
				return k.has, true, nil
			}
		}
	}
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, key, s); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, false, fmt.Errorf("reading credential Secret: %w", err)
		}
		if r.known != nil {
			r.known.Remove(key.String())
		}
		return nil, false, nil
	}
	has := make(map[string]bool, len(keys))
	if r.known != nil {
		// Keys other issuers asked about at this version stay known.
		if v, ok := r.known.Get(key.String()); ok && v.(secretKeys).uid == s.UID && v.(secretKeys).resourceVersion == s.ResourceVersion {
			maps.Copy(has, v.(secretKeys).has)
		}
	}
	for _, k := range keys {
		_, has[k] = s.Data[k]
	}
	if r.known != nil {
		r.known.Add(key.String(), secretKeys{uid: s.UID, resourceVersion: s.ResourceVersion, has: has})
	}
	return has, true, nil
}

func knowsAll(has map[string]bool, keys []string) bool {
	for _, k := range keys {
		if _, ok := has[k]; !ok {
			return false
		}
	}
	return true
}

// SetupWithManager registers the controller; credentialSecrets watch Secrets
// (the metadata of others', tokenmint's own in full) so that a created or
// changed credential re-evaluates.
func (r *IssuerReconciler) SetupWithManager(mgr ctrl.Manager, credentialSecrets []SourceFactory) error {
	if r.known == nil {
		r.known = lru.New(maxKnownSecretKeys)
	}
	obj, _, _, _ := r.newObject()
	b := ctrl.NewControllerManagedBy(mgr).
		For(obj, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named(strings.ToLower(string(r.Kind)))
	for _, src := range credentialSecrets {
		b = b.WatchesRawSource(src(handler.EnqueueRequestsFromMapFunc(r.forCredentialSecret)))
	}
	if r.Health != nil {
		b = b.WatchesRawSource(source.Channel(r.Health.Events(r.Kind), &handler.EnqueueRequestForObject{}))
	}
	return b.Complete(r)
}

func (r *IssuerReconciler) forCredentialSecret(ctx context.Context, o client.Object) []reconcile.Request {
	key := client.ObjectKeyFromObject(o).String()
	var reqs []reconcile.Request
	if r.Kind == tokensv1alpha1.ClusterTokenIssuerKind {
		list := &tokensv1alpha1.ClusterTokenIssuerList{}
		if err := r.List(ctx, list, client.MatchingFields{indexCredential: key}); err == nil {
			for i := range list.Items {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
			}
		}
		return reqs
	}
	list := &tokensv1alpha1.TokenIssuerList{}
	if err := r.List(ctx, list, client.MatchingFields{indexCredential: key}); err == nil {
		for i := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}
