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
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Defaults of the pace at which a change of one object queues the
// AccessTokens that depend on it (an issuer, a credential Secret), per
// namespace of those AccessTokens.
const (
	DefaultFanOutRate  = 20.0
	DefaultFanOutBurst = 200
)

// fanOut paces, per namespace, the reconciles that one object's change fans
// out to (every AccessToken of an issuer, for a change of the issuer or of one
// of its credential Secrets): a namespace that rewrites such an object again
// and again spends its own budget, and its AccessTokens wait in the queue
// until their turn, while other namespaces' reconciles and status writes go
// ahead. A reconcile already waiting its turn is not charged again.
//
// The pace is the workqueue's, in real time, as its own rate limiters are.
type fanOut struct {
	limits *NamespaceLimiters

	mu sync.Mutex
	// waiting holds, by AccessToken, when its paced reconcile is due.
	waiting map[types.NamespacedName]time.Time
	now     func() time.Time
}

func newFanOut(perSecond float64, burst int) *fanOut {
	return &fanOut{limits: NewNamespaceLimiters(perSecond, burst),
		waiting: map[types.NamespacedName]time.Time{}, now: time.Now}
}

// delay returns how long the reconcile of key waits, charging its namespace
// unless one is already waiting.
func (f *fanOut) delay(key types.NamespacedName) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if due, ok := f.waiting[key]; ok && now.Before(due) {
		return 0, false
	}
	if len(f.waiting) > 4*maxLimitedNamespaces {
		for k, due := range f.waiting {
			if !now.Before(due) {
				delete(f.waiting, k)
			}
		}
	}
	d := f.limits.limiter(key.Namespace).ReserveN(now, 1).DelayFrom(now)
	if d > 0 {
		f.waiting[key] = now.Add(d)
	} else {
		delete(f.waiting, key)
	}
	return d, true
}

// handler maps an object to the AccessTokens that depend on it and queues
// them at their namespaces' pace.
func (f *fanOut) handler(fn handler.MapFunc) handler.EventHandler {
	enqueue := func(ctx context.Context, o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		for _, req := range fn(ctx, o) {
			d, queue := f.delay(req.NamespacedName)
			switch {
			case !queue:
			case d > 0:
				q.AddAfter(req, d)
			default:
				q.Add(req)
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.ObjectNew, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q)
		},
	}
}
