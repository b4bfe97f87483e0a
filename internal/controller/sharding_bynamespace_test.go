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
	"sort"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/tokenmint/tokenmint/internal/sharding"
)

// recordingLW is a ListerWatcher that records the options of its lists.
type recordingLW struct {
	inner toolscache.ListerWatcherWithContext
	mu    sync.Mutex
	lists []metav1.ListOptions
}

func (r *recordingLW) ListWithContext(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
	r.mu.Lock()
	r.lists = append(r.lists, o)
	r.mu.Unlock()
	return r.inner.ListWithContext(ctx, o)
}

func (r *recordingLW) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return r.inner.WatchWithContext(ctx, o)
}

func (r *recordingLW) List(o metav1.ListOptions) (runtime.Object, error) {
	return r.ListWithContext(context.Background(), o)
}

func (r *recordingLW) Watch(o metav1.ListOptions) (watch.Interface, error) {
	return r.WatchWithContext(context.Background(), o)
}

func (r *recordingLW) since(n int) []metav1.ListOptions {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]metav1.ListOptions(nil), r.lists[n:]...)
}

var _ = Describe("sharding's lists of a range taken", func() {
	It("read the range namespace by namespace from the API server at one resourceVersion, and get all of it", func() {
		// Ranges enough that the suite's other namespaces hardly ever share
		// a range with these, so that reading by namespace is the cheaper.
		const ranges = 1024
		run := rand.String(6)
		label := "spec.tokenmint.dev/by-namespace"
		byRange := map[int]string{}
		var first, second int
		for i := 0; len(byRange) < 2; i++ {
			ns := fmt.Sprintf("by-ns-%s-%d", run, i)
			rng := sharding.RangeOf(ns, ranges)
			if _, taken := byRange[rng]; taken {
				continue
			}
			byRange[rng] = ns
			if len(byRange) == 1 {
				first = rng
			} else {
				second = rng
			}
		}
		want := map[string]bool{}
		for _, ns := range byRange {
			Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
			for j := range 30 {
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("s-%d", j),
					Labels: map[string]string{label: run}}}
				Expect(k8sClient.Create(ctx, s)).To(Succeed())
				if ns == byRange[second] {
					want[ns+"/"+s.Name] = true
				}
			}
		}

		By("caching one range, then taking the other while watching")
		cs := kubernetes.NewForConfigOrDie(cfg)
		lw := &recordingLW{inner: toolscache.ToListerWatcherWithContext(toolscache.NewFilteredListWatchFromClient(
			cs.CoreV1().RESTClient(), "secrets", metav1.NamespaceAll,
			func(o *metav1.ListOptions) { o.LabelSelector = label + "=" + run }))}
		f := sharding.NewCacheFilter(ranges, nil)
		f.ListNamespacesWith(func(ctx context.Context) ([]string, error) { return listNamespaces(ctx, k8sClient) })
		inf := toolscache.NewSharedIndexInformer(f.Wrap(lw, nil).ListRangesByNamespace(), &corev1.Secret{}, 0, nil)
		f.SetRanges([]int{first})
		ictx, icancel := context.WithCancel(ctx)
		defer icancel()
		go inf.RunWithContext(ictx)
		Eventually(func() bool { return inf.HasSynced() && f.CachedRange(first) }, 30*time.Second, 50*time.Millisecond).Should(BeTrue())
		before := len(lw.since(0))
		f.SetRanges([]int{first, second})
		Eventually(func() bool { return f.CachedRange(second) }, 30*time.Second, 50*time.Millisecond).Should(BeTrue())

		By("having read only the second range's namespace, at the first read's resourceVersion exactly")
		reads := lw.since(before)
		Expect(reads).NotTo(BeEmpty())
		Expect(reads[0].Limit).To(Equal(int64(1)), "the first read gives the snapshot's resourceVersion")
		Expect(reads[1:]).NotTo(BeEmpty())
		for _, o := range reads[1:] {
			Expect(o.ResourceVersionMatch).To(Equal(metav1.ResourceVersionMatchExact))
			Expect(o.FieldSelector).To(HavePrefix("metadata.namespace="))
			Expect(sharding.RangeOf(o.FieldSelector[len("metadata.namespace="):], ranges)).To(Equal(second))
		}

		By("holding every object of the range taken")
		Eventually(func(g Gomega) {
			var got []string
			for _, key := range inf.GetStore().ListKeys() {
				ns, _, _ := toolscache.SplitMetaNamespaceKey(key)
				if ns == byRange[second] {
					got = append(got, key)
				}
			}
			sort.Strings(got)
			g.Expect(got).To(HaveLen(len(want)))
			for _, key := range got {
				g.Expect(want).To(HaveKey(key))
			}
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	})
})
