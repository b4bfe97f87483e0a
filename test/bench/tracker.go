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

package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// tracker watches every AccessToken and notes when each first turned Ready, so
// that the operator and the floor are timed by the same observer.
type tracker struct {
	cache.Cache
	mu    sync.Mutex
	ready map[string]map[string]time.Time // namespace -> name -> first seen Ready
}

func startTracker(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) (*tracker, error) {
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		return nil, err
	}
	t := &tracker{Cache: c, ready: map[string]map[string]time.Time{}}
	inf, err := c.GetInformer(ctx, &tokensv1alpha1.AccessToken{})
	if err != nil {
		return nil, err
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { t.observe(o) },
		UpdateFunc: func(_, o any) { t.observe(o) },
		DeleteFunc: func(o any) {
			if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			if at, ok := o.(*tokensv1alpha1.AccessToken); ok {
				t.mu.Lock()
				delete(t.ready[at.Namespace], at.Name)
				t.mu.Unlock()
			}
		},
	}); err != nil {
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the benchmark's AccessToken cache did not sync")
	}
	return t, nil
}

func (t *tracker) observe(o any) {
	at, ok := o.(*tokensv1alpha1.AccessToken)
	if !ok || !meta.IsStatusConditionTrue(at.Status.Conditions, tokensv1alpha1.ConditionReady) {
		return
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	ns := t.ready[at.Namespace]
	if ns == nil {
		ns = map[string]time.Time{}
		t.ready[at.Namespace] = ns
	}
	if _, seen := ns[at.Name]; !seen {
		ns[at.Name] = now
	}
}

// readyIn returns how many AccessTokens of ns are Ready, and when the last turned so.
func (t *tracker) readyIn(ns string) (int, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var last time.Time
	for _, at := range t.ready[ns] {
		if at.After(last) {
			last = at
		}
	}
	return len(t.ready[ns]), last
}

// waitReady waits until n AccessTokens of ns are Ready, printing progress, and
// returns when the last one turned Ready.
func (t *tracker) waitReady(ctx context.Context, ns string, n int, start time.Time, timeout time.Duration, p *progress) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	lastPrint := time.Now()
	for {
		got, last := t.readyIn(ns)
		if got >= n {
			return last, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("only %d of %d AccessTokens in %s Ready after %s", got, n, ns, timeout)
		}
		if time.Since(lastPrint) >= 5*time.Second {
			el := time.Since(start).Seconds()
			p.printf("  %s: %d/%d Ready after %.0f s (%.0f/s)", ns, got, n, el, float64(got)/el)
			lastPrint = time.Now()
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (t *tracker) list(ctx context.Context, ns string) ([]tokensv1alpha1.AccessToken, error) {
	l := &tokensv1alpha1.AccessTokenList{}
	if err := t.List(ctx, l, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	return l.Items, nil
}
