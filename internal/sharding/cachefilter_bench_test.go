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

package sharding

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	toolscache "k8s.io/client-go/tools/cache"
)

// BenchmarkInformerHeap measures the live heap an informer's store of
// token-sized Secrets takes, caching every range or one of four:
//
//	go test ./internal/sharding/ -run '^$' -bench InformerHeap -benchtime 1x
func BenchmarkInformerHeap(b *testing.B) {
	const secrets, namespaces = 20000, 400
	for _, held := range [][]int{nil, {0}} {
		name := "all"
		if held != nil {
			name = "one-of-4"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				objs := make([]k8sruntime.Object, 0, secrets)
				for i := range secrets {
					objs = append(objs, &corev1.Secret{
						ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("team-%d", i%namespaces), Name: fmt.Sprintf("token-%d", i),
							Labels: map[string]string{"app.kubernetes.io/managed-by": "tokenmint"}},
						Data: map[string][]byte{"token": make([]byte, 1024)},
					})
				}
				cs := fake.NewClientset(objs...)
				objs = nil
				before := liveHeap()
				lw := toolscache.ToListWatcherWithWatchListSemantics(&toolscache.ListWatch{
					ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (k8sruntime.Object, error) {
						return cs.CoreV1().Secrets("").List(ctx, o)
					},
					WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
						return cs.CoreV1().Secrets("").Watch(ctx, o)
					},
				}, cs)
				var informerLW toolscache.ListerWatcher = lw
				if held != nil {
					f := NewCacheFilter(4, nil)
					f.SetRanges(held)
					informerLW = f.Wrap(lw, nil)
				}
				inf := toolscache.NewSharedIndexInformer(informerLW, &corev1.Secret{}, 0, toolscache.Indexers{})
				ctx, cancel := context.WithCancel(context.Background())
				go inf.Run(ctx.Done())
				if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
					b.Fatal("informer did not sync")
				}
				after := liveHeap()
				b.ReportMetric(float64(len(inf.GetStore().ListKeys())), "objects")
				b.ReportMetric(float64(after-before)/(1<<20), "heap-MiB")
				cancel()
				runtime.KeepAlive(cs)
			}
		})
	}
}

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
