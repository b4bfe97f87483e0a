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
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// workDue reports whether at, as cached, has work due at now: a deletion, a
// spec change not acted on, a renewal asked for and not served, no token, or
// a renewal or expiry passed. Every other AccessToken's reconcile after a
// start is a no-op.
func workDue(at *tokensv1alpha1.AccessToken, now time.Time) bool {
	st := &at.Status
	switch {
	case !at.DeletionTimestamp.IsZero(), st.ObservedGeneration != at.Generation, st.TokenFingerprint == "":
		return true
	case at.Annotations[tokensv1alpha1.AnnotationRenew] != "" && at.Annotations[tokensv1alpha1.AnnotationRenew] != st.LastRenewalRequest:
		return true
	case st.RenewalTime != nil && !now.Before(st.RenewalTime.Time), st.ExpiresAt != nil && !now.Before(st.ExpiresAt.Time):
		return true
	}
	return false
}

// dueFirst is a source that, once the cache has synced, queues at the
// normal priority the AccessTokens with work due (see workDue). A starting
// replica's first list queues every AccessToken at low priority: with a
// hundred thousand, a renewal due or asked for waited behind all of them,
// a minute after a failover. The work queue keeps the higher of two
// priorities, so these go first whatever the order the two came in.
func (r *AccessTokenReconciler) dueFirst(c cache.Cache) source.Source {
	return source.Func(func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		go func() {
			if !c.WaitForCacheSync(ctx) {
				return
			}
			n := r.queueDue(ctx, c, q)
			logf.FromContext(ctx).Info("AccessTokens with work due queued first", "count", n)
		}()
		return nil
	})
}

// queueDue queues the AccessTokens of reader with work due, at the normal
// priority, and returns how many.
func (r *AccessTokenReconciler) queueDue(ctx context.Context, reader client.Reader, q workqueue.TypedRateLimitingInterface[reconcile.Request]) int {
	list := &tokensv1alpha1.AccessTokenList{}
	if err := reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		logf.FromContext(ctx).Error(err, "listing AccessTokens with work due")
		return 0
	}
	pq, prioritized := q.(priorityqueue.PriorityQueue[reconcile.Request])
	now := r.Clock.Now()
	n := 0
	for i := range list.Items {
		at := &list.Items[i]
		if !workDue(at, now) || !r.Shards.Owns(at.Namespace) {
			continue
		}
		req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(at)}
		if prioritized {
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(0)}, req)
		} else {
			q.Add(req)
		}
		n++
	}
	return n
}
