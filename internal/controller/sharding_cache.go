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
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/internal/sharding"
)

// filterCache narrows the manager's cache of AccessTokens and of tokenmint's
// own Secrets to the namespaces of the ranges this replica holds, with
// sharding on (see sharding.CacheFilter and docs/sharding.md). The other
// informers, cluster-scoped objects and issuers included, stay whole; with
// sharding off nothing changes.
func (c *Config) filterCache(opts *cache.Options) {
	if c.ShardRanges <= 0 {
		return
	}
	var clk clock.PassiveClock = clock.RealClock{}
	if c.Clock != nil {
		clk = c.Clock
	}
	f := sharding.NewCacheFilter(c.ShardRanges, clk)
	c.cacheRanges = f
	opts.NewInformer = func(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
		switch obj.(type) {
		case *tokensv1alpha1.AccessToken:
			// Holding no range yet, a replica keeps only the operator
			// namespace's AccessTokens: its first list reads that
			// namespace only, not every AccessToken of the cluster.
			// A range taken is read namespace by namespace where that is
			// cheaper than reading every AccessToken.
			flw := f.Wrap(lw, c.accessTokenScope).FirstListOnlyIn(c.OperatorNamespace).ListRangesByNamespace()
			return toolscache.NewSharedIndexInformer(flw, obj, resync, indexers)
		case *corev1.Secret:
			// ClusterAccessTokens' copies, kept whatever the ranges, may be
			// in any namespace: the first list reads every Secret. A range
			// taken is read namespace by namespace where that is cheaper,
			// with the operator namespace, which holds state Secrets of
			// AccessTokens of every range.
			flw := f.Wrap(lw, c.secretScope).ListRangesByNamespace(c.OperatorNamespace)
			return toolscache.NewSharedIndexInformer(flw, obj, resync, indexers)
		default:
			return toolscache.NewSharedIndexInformer(lw, obj, resync, indexers)
		}
	}
}

// accessTokenScope keeps the operator namespace's AccessTokens, the sources
// of ClusterAccessTokens, which the leader's ClusterAccessToken controller
// reads whatever the ranges; the others go with their namespace.
func (c *Config) accessTokenScope(m metav1.Object) (string, bool) {
	return m.GetNamespace(), m.GetNamespace() == c.OperatorNamespace
}

// secretScope: a state Secret goes with its AccessToken's namespace; the
// other Secrets of the operator namespace (the fingerprint key, the sources'
// token Secrets) and of the credentials namespace, and ClusterAccessTokens'
// copies (the leader's) are kept; the others go with their namespace.
func (c *Config) secretScope(m metav1.Object) (string, bool) {
	switch ns := m.GetNamespace(); {
	case ns == c.OperatorNamespace:
		if m.GetLabels()[secret.LabelComponent] == secret.ComponentState {
			if owner, _, ok := strings.Cut(m.GetAnnotations()[secret.AnnotationAccessToken], "/"); ok && owner != "" {
				return owner, false
			}
		}
		return ns, true
	case ns == c.credentialsNamespace():
		return ns, true
	case m.GetLabels()[tokensv1alpha1.LabelClusterAccessToken] != "":
		return ns, true
	default:
		return ns, false
	}
}

// ownsEventOf reports whether an event of o is this replica's to queue: its
// range is held and not being given up. A range whose last renewal is late
// (Holds false, Owns true) keeps its events: Reconcile tries them again until
// the renewal lands, as nothing else would queue them then; dropped here, an
// AccessToken created meanwhile would wait for its range to move.
func (r *AccessTokenReconciler) ownsEventOf(o client.Object) bool {
	return r.Shards.Owns(o.GetNamespace())
}

// cacheMayLag reports whether this replica's cache may not hold yet every
// object of namespace: its range is not cached by every filtered informer
// yet, or became so less than a lease duration ago (what it shows then was
// listed, but the previous holder's last writes may still be on their way).
func (r *AccessTokenReconciler) cacheMayLag(namespace string) bool {
	if r.CacheRanges == nil {
		return false
	}
	since, ok := r.CacheRanges.Cached(namespace)
	return !ok || r.Clock.Now().Sub(since) < r.CacheSettle
}

// existsLive reports whether the apiserver holds the AccessToken key that
// the cache does not show: a range taken and not yet in this replica's
// cache is not a deleted AccessToken.
func (r *AccessTokenReconciler) existsLive(ctx context.Context, key types.NamespacedName) (bool, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(tokensv1alpha1.GroupVersion.WithKind("AccessToken"))
	switch err := r.APIReader.Get(ctx, key, m); {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	default:
		return false, err
	}
}

// uncachedRanges reads Secrets of the namespaces whose range this replica
// does not cache from the apiserver: the issuers' controller, which runs on
// the leader for every namespace, looks up tokenmint's own Secrets there
// (one can be another issuer's credential).
type uncachedRanges struct {
	client.Client
	live   client.Reader
	filter *sharding.CacheFilter
	// always are the namespaces cached whatever the ranges.
	always map[string]bool
}

func (c uncachedRanges) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.Secret); ok && key.Namespace != "" && !c.always[key.Namespace] {
		if _, cached := c.filter.Cached(key.Namespace); !cached {
			return c.live.Get(ctx, key, obj, opts...)
		}
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// cacheReaderFor returns cl, or, with the cache narrowed to ranges, cl
// reading the Secrets of the other ranges from live.
func (c *Config) cacheReaderFor(cl client.Client, live client.Reader) client.Client {
	if c.cacheRanges == nil {
		return cl
	}
	return uncachedRanges{Client: cl, live: live, filter: c.cacheRanges,
		always: map[string]bool{c.OperatorNamespace: true, c.credentialsNamespace(): true}}
}

// cacheObjects exports how many AccessTokens and Secrets this replica's
// cache holds, with sharding on or off: with it on, each replica's share.
var (
	currentCache     atomic.Pointer[client.Reader]
	cacheObjectsDesc = prometheus.NewDesc("tokenmint_cache_objects",
		"Objects this replica's cache holds, by kind: with --shard-ranges, those of the ranges it holds (and the operator's namespaces).",
		[]string{"kind"}, nil)
)

type cacheCollector struct{}

func (cacheCollector) Describe(ch chan<- *prometheus.Desc) { ch <- cacheObjectsDesc }

func (cacheCollector) Collect(ch chan<- prometheus.Metric) {
	reader := currentCache.Load()
	if reader == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, k := range []struct {
		kind string
		obj  client.Object
		list client.ObjectList
	}{
		{"AccessToken", &tokensv1alpha1.AccessToken{}, &tokensv1alpha1.AccessTokenList{}},
		{"Secret", &corev1.Secret{}, &corev1.SecretList{}},
	} {
		if n, ok := cachedCount(ctx, *reader, k.obj, k.list); ok {
			ch <- prometheus.MustNewConstMetric(cacheObjectsDesc, prometheus.GaugeValue, float64(n), k.kind)
		}
	}
}

// cachedCount counts the cache's objects of obj's kind: the keys of its
// informer's store, or a list without copies.
func cachedCount(ctx context.Context, reader client.Reader, obj client.Object, list client.ObjectList) (int, bool) {
	if informers, ok := reader.(cache.Informers); ok {
		inf, err := informers.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
		if err != nil {
			return 0, false
		}
		if s, ok := inf.(interface{ GetStore() toolscache.Store }); ok {
			return len(s.GetStore().ListKeys()), true
		}
	}
	if err := reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return 0, false
	}
	return meta.LenList(list), true
}

func init() {
	metrics.Registry.MustRegister(cacheCollector{})
}
