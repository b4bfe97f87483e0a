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
	"io"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// listReader lists a fixed set of AccessTokens, copying them into the list as
// the informer cache does with UnsafeDisableDeepCopy.
type listReader struct {
	client.Reader
	items []tokensv1alpha1.AccessToken
}

func (r listReader) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	l, ok := list.(*tokensv1alpha1.AccessTokenList)
	if !ok {
		return nil // no ClusterAccessTokens
	}
	l.Items = make([]tokensv1alpha1.AccessToken, len(r.items))
	copy(l.Items, r.items)
	return nil
}

// storeCache serves AccessTokens from an informer store, as the manager's cache does.
type storeCache struct {
	client.Reader
	cache.Informers
	store toolscache.Store
}

// List lists no ClusterAccessTokens.
func (c storeCache) List(context.Context, client.ObjectList, ...client.ListOption) error { return nil }

type storeInformer struct {
	cache.Informer
	store toolscache.Store
}

func (s storeInformer) GetStore() toolscache.Store { return s.store }

func (c storeCache) GetInformer(context.Context, client.Object, ...cache.InformerGetOption) (cache.Informer, error) {
	return storeInformer{store: c.store}, nil
}

func issuedAccessTokens(n int) []tokensv1alpha1.AccessToken {
	now := time.Now()
	items := make([]tokensv1alpha1.AccessToken, n)
	for i := range items {
		at := &items[i]
		at.Namespace, at.Name = "tokens", fmt.Sprintf("t-%05d", i)
		at.Status.ExpiresAt = &metav1.Time{Time: now.Add(time.Hour)}
		at.Status.RenewalTime = &metav1.Time{Time: now.Add(40 * time.Minute)}
		meta.SetStatusCondition(&at.Status.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue})
	}
	return items
}

// BenchmarkScrapeAccessTokens measures one scrape of the per-AccessToken
// series of 10,000 AccessTokens (memory per scrape: B/op), gathered and
// written in the text format:
//
//	go test ./internal/controller -run '^$' -bench ScrapeAccessTokens -benchmem
func BenchmarkScrapeAccessTokens(b *testing.B) {
	elected := make(chan struct{})
	close(elected)
	store := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	for _, at := range issuedAccessTokens(10000) {
		if err := store.Add(&at); err != nil {
			b.Fatal(err)
		}
	}
	for _, src := range []struct {
		name   string
		reader client.Reader
	}{
		{"informer store", storeCache{store: store}},
		{"list", listReader{items: issuedAccessTokens(10000)}},
	} {
		b.Run(src.name, func(b *testing.B) { benchmarkScrape(b, src.reader, elected) })
	}
}

func benchmarkScrape(b *testing.B, reader client.Reader, elected chan struct{}) {
	c := &accessTokenCollector{}
	c.use(reader, elected)
	for b.Loop() {
		families, err := c.gather()
		if err != nil {
			b.Fatal(err)
		}
		series := 0
		for _, f := range families {
			series += len(f.GetMetric())
			if _, err := expfmt.MetricFamilyToText(io.Discard, f); err != nil {
				b.Fatal(err)
			}
		}
		if series != 40000 {
			b.Fatalf("%d series, want 40000", series)
		}
	}
}
