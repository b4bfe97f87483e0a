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
	"slices"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// byNamespaceFixture is a cluster of two namespaces per range with perNs
// Secrets each, one more namespace of range 1 without any, and the operator
// namespace "ops": a Secret kept whatever the ranges and a state Secret of an
// AccessToken of range 1.
type byNamespaceFixture struct {
	f          *CacheFilter
	lw         *fakeLW
	flw        *FilteredListerWatcher
	w          watch.Interface
	namespaces []string
	// nsListedAt is how many lists and watches lw had seen when the
	// namespaces were first listed (-1: never).
	nsListedAt atomic.Int64
	before     int
}

func newByNamespaceFixture(t *testing.T, perNs int) *byNamespaceFixture {
	t.Helper()
	fx := &byNamespaceFixture{f: NewCacheFilter(testRanges, nil)}
	fx.nsListedAt.Store(-1)
	var secrets []*corev1.Secret
	for rng := range testRanges {
		for i := range 2 {
			ns := namespaceIn(t, rng, i)
			fx.namespaces = append(fx.namespaces, ns)
			for j := range perNs {
				secrets = append(secrets, secretAt(ns, fmt.Sprintf("s%d", j), "3"))
			}
		}
	}
	fx.namespaces = append(fx.namespaces, namespaceIn(t, 1, 2), "ops", "creds")
	secrets = append(secrets, testSecret("ops", "pinned", map[string]string{"always": "true"}),
		testSecret("ops", "state", map[string]string{"owner": namespaceIn(t, 1, 0)}))
	fx.lw = newFakeLW(secrets...)
	fx.f.ListNamespacesWith(func(context.Context) ([]string, error) {
		fx.nsListedAt.CompareAndSwap(-1, int64(len(fx.lw.options())))
		return fx.namespaces, nil
	})
	fx.flw = fx.f.Wrap(fx.lw, keepLabelled).ListRangesByNamespace("ops")
	fx.f.SetRanges([]int{0})
	fx.w, _ = listAndWatch(t, fx.flw, fx.lw)
	t.Cleanup(fx.w.Stop)
	fx.lw.mu.Lock()
	fx.lw.list.ResourceVersion = "20"
	fx.lw.mu.Unlock()
	fx.before = len(fx.lw.options())
	return fx
}

// takeRange1 takes range 1 and returns the objects its list added to the
// store, once the range is cached.
func (fx *byNamespaceFixture) takeRange1(t *testing.T) []string {
	t.Helper()
	fx.f.SetRanges([]int{0, 1})
	var added []string
	for ev := next(t, fx.w); ev.Type != watch.Bookmark; ev = next(t, fx.w) {
		s, _ := ev.Object.(*corev1.Secret)
		if ev.Type != watch.Added || s == nil {
			t.Fatalf("taking range 1: %v %+v, want objects added", ev.Type, ev.Object)
		}
		added = append(added, s.Namespace+"/"+s.Name)
	}
	waitCached(t, fx.f, namespaceIn(t, 1, 0))
	slices.Sort(added)
	return added
}

// wantRange1 is every object of range 1: its namespaces' and its state Secret.
func (fx *byNamespaceFixture) wantRange1(t *testing.T, perNs int) []string {
	want := []string{"ops/state"}
	for i := range 2 {
		for j := range perNs {
			want = append(want, fmt.Sprintf("%s/s%d", namespaceIn(t, 1, i), j))
		}
	}
	slices.Sort(want)
	return want
}

// TestRangeTakenIsListedNamespaceByNamespace: a range taken reads only its
// namespaces (and the operator namespace, whose state Secrets go with their
// AccessToken's range), each at the resourceVersion of one consistent read
// made before the namespaces were listed, and gets every object of the range.
func TestRangeTakenIsListedNamespaceByNamespace(t *testing.T) {
	fx := newByNamespaceFixture(t, 30)
	if got, want := fx.takeRange1(t), fx.wantRange1(t, 30); !slices.Equal(got, want) {
		t.Fatalf("range 1 added %d objects %v,\nwant %d %v", len(got), got, len(want), want)
	}
	opts := fx.lw.options()[fx.before:]
	if len(opts) == 0 || opts[0].Limit != 1 || opts[0].ResourceVersion != "" || opts[0].FieldSelector != "" {
		t.Fatalf("first read %+v, want a consistent read of one object", opts)
	}
	if at := fx.nsListedAt.Load(); at != int64(fx.before+1) {
		t.Fatalf("namespaces listed after %d reads, want right after the consistent read (%d): a namespace made between them would be missed", at, fx.before+1)
	}
	var read []string
	for _, o := range opts[1:] {
		if o.ResourceVersion != "20" || o.ResourceVersionMatch != metav1.ResourceVersionMatchExact {
			t.Fatalf("read %+v, want each namespace at the consistent read's resourceVersion exactly", o)
		}
		read = append(read, o.FieldSelector)
	}
	want := []string{"metadata.namespace=ops"}
	for i := range 3 {
		want = append(want, "metadata.namespace="+namespaceIn(t, 1, i))
	}
	slices.Sort(read)
	slices.Sort(want)
	if !slices.Equal(read, want) {
		t.Fatalf("read %v, want range 1's namespaces and the operator namespace only: %v", read, want)
	}
}

// A namespace that cannot be read at the snapshot (compacted since) makes
// the range be read by a list of everything, which still gets all of it.
func TestRangeListedByNamespaceFallsBackToAListOfEverything(t *testing.T) {
	fx := newByNamespaceFixture(t, 30)
	fx.lw.mu.Lock()
	fx.lw.refuseExact = true
	fx.lw.mu.Unlock()
	if got, want := fx.takeRange1(t), fx.wantRange1(t, 30); !slices.Equal(got, want) {
		t.Fatalf("range 1 added %v, want %v", got, want)
	}
	opts := fx.lw.options()
	if last := opts[len(opts)-1]; last.FieldSelector != "" || last.Limit != loadPageSize || last.ResourceVersion != "" {
		t.Fatalf("last read %+v, want a consistent list of everything", last)
	}
}

// With few objects per namespace, a list of every object reads less than
// one list per namespace: the range is read so.
func TestFewObjectsPerNamespaceAreListedWhole(t *testing.T) {
	fx := newByNamespaceFixture(t, 1)
	if got, want := fx.takeRange1(t), fx.wantRange1(t, 1); !slices.Equal(got, want) {
		t.Fatalf("range 1 added %v, want %v", got, want)
	}
	for _, o := range fx.lw.options()[fx.before:] {
		if o.FieldSelector != "" {
			t.Fatalf("read %q: with 1 object per namespace, want a list of everything", o.FieldSelector)
		}
	}
}
