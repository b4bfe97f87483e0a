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

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/lru"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// maxCachedAudiences is the most audience verdicts kept.
const maxCachedAudiences = 1024

// SetupWithManager registers the controller and the watches that requeue
// AccessTokens when their issuer, a credential Secret or their own Secret changes.
func (r *AccessTokenReconciler) SetupWithManager(mgr ctrl.Manager, credentialSecrets []SourceFactory, namespaces SourceFactory) error {
	if err := setupIndexes(mgr, r.CredentialsNamespace); err != nil {
		return err
	}
	if r.Transports == nil {
		r.Transports = NewTransports(nil)
	}
	if r.credentials == nil {
		r.credentials = newCredentialStore(r.CredentialCacheBytes)
	}
	if r.audiences == nil {
		r.audiences = lru.New(maxCachedAudiences)
	}
	if r.revokedOnDelete == nil {
		r.revokedOnDelete = lru.New(maxRevokedOnDelete)
	}
	if r.fanOut == nil {
		r.fanOut = newFanOut(DefaultFanOutRate, DefaultFanOutBurst)
	}
	if r.attempts == nil {
		r.attempts = lru.New(maxRememberedMints)
	}
	if r.issuerCopies == nil {
		r.issuerCopies = lru.New(maxIssuerCopies)
	}
	if r.Calls == nil {
		r.Calls = NewCalls(DefaultIssuerConcurrency, DefaultNamespaceConcurrency)
	}
	if err := mgr.Add(r.Calls); err != nil {
		return err
	}
	currentCalls.Store(r.Calls)
	opts := controller.Options{MaxConcurrentReconciles: max(1, r.MaxConcurrentReconciles)}
	forPredicates := []predicate.Predicate{predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{})}
	ownPredicates := []predicate.Predicate{predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return !r.ownSecretWrite(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool { return !r.ownSecretWrite(e.ObjectNew) },
	}}
	if r.Shards != nil {
		// Every replica runs this controller for the ranges it holds; the
		// events of the others' ranges are dropped here, and Reconcile
		// checks again (a range may go between event and reconcile).
		opts.NeedLeaderElection = ptr.To(false)
		inShard := predicate.NewPredicateFuncs(r.ownsEventOf)
		forPredicates = append(forPredicates, inShard)
		ownPredicates = append(ownPredicates, inShard)
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&tokensv1alpha1.AccessToken{}, builder.WithPredicates(forPredicates...)).
		Owns(&corev1.Secret{}, builder.WithPredicates(ownPredicates...)).
		Watches(&tokensv1alpha1.TokenIssuer{}, r.fanOut.handler(r.forIssuer(tokensv1alpha1.TokenIssuerKind)),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&tokensv1alpha1.ClusterTokenIssuer{}, r.fanOut.handler(r.forIssuer(tokensv1alpha1.ClusterTokenIssuerKind)),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(opts).
		Named("accesstoken")
	b = b.WatchesRawSource(source.Channel(r.Calls.Events(), &handler.EnqueueRequestForObject{}))
	b = b.WatchesRawSource(r.dueFirst(mgr.GetCache()))
	if r.shardEvents != nil {
		b = b.WatchesRawSource(source.Channel(r.shardEvents, &handler.EnqueueRequestForObject{}))
	}
	for _, src := range credentialSecrets {
		b = b.WatchesRawSource(src(r.fanOut.handler(r.forCredentialSecret)))
	}
	if namespaces != nil {
		b = b.WatchesRawSource(namespaces(handler.EnqueueRequestsFromMapFunc(r.forNamespace)))
	}
	return b.Complete(r)
}

// forIssuer maps an issuer to the AccessTokens that use it.
func (r *AccessTokenReconciler) forIssuer(kind tokensv1alpha1.IssuerKind) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.accessTokensOf(ctx, issuerKey(kind, o.GetNamespace(), o.GetName()))
	}
}

func (r *AccessTokenReconciler) accessTokensOf(ctx context.Context, key string) []reconcile.Request {
	list := &tokensv1alpha1.AccessTokenList{}
	if err := r.List(ctx, list, client.MatchingFields{indexIssuer: key}); err != nil {
		logf.FromContext(ctx).Error(err, "listing AccessTokens of issuer", "issuer", key)
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// forCredentialSecret maps a credential Secret to the AccessTokens of the issuers that read it.
func (r *AccessTokenReconciler) forCredentialSecret(ctx context.Context, o client.Object) []reconcile.Request {
	key := client.ObjectKeyFromObject(o).String()
	var reqs []reconcile.Request
	tis := &tokensv1alpha1.TokenIssuerList{}
	if err := r.List(ctx, tis, client.MatchingFields{indexCredential: key}); err == nil {
		for i := range tis.Items {
			reqs = append(reqs, r.accessTokensOf(ctx, issuerKey(tokensv1alpha1.TokenIssuerKind, tis.Items[i].Namespace, tis.Items[i].Name))...)
		}
	}
	ctis := &tokensv1alpha1.ClusterTokenIssuerList{}
	if err := r.List(ctx, ctis, client.MatchingFields{indexCredential: key}); err == nil {
		for i := range ctis.Items {
			reqs = append(reqs, r.accessTokensOf(ctx, issuerKey(tokensv1alpha1.ClusterTokenIssuerKind, "", ctis.Items[i].Name))...)
		}
	}
	return reqs
}

// forNamespace requeues the AccessTokens of a namespace whose labels changed, as
// a ClusterTokenIssuer's namespace selector may now allow or refuse them.
func (r *AccessTokenReconciler) forNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	list := &tokensv1alpha1.AccessTokenList{}
	if err := r.List(ctx, list, client.InNamespace(o.GetName())); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if list.Items[i].Spec.IssuerRef.Kind == tokensv1alpha1.ClusterTokenIssuerKind {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}
