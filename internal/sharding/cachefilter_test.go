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
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	toolscache "k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

const testRanges = 4

// namespaceIn returns the i-th namespace name (of a fixed pattern) whose
// range is rng.
func namespaceIn(t *testing.T, rng, i int) string {
	t.Helper()
	for n := 0; n < 10000; n++ {
		ns := fmt.Sprintf("team-%d", n)
		if RangeOf(ns, testRanges) == rng {
			if i == 0 {
				return ns
			}
			i--
		}
	}
	t.Fatalf("no namespace in range %d", rng)
	return ""
}

func testSecret(ns, name string, labels map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, ResourceVersion: "1"}}
}

// keepLabelled keeps what carries the label "always", whatever its range,
// and puts what carries "owner" in that namespace's range.
func keepLabelled(m metav1.Object) (string, bool) {
	if owner := m.GetLabels()["owner"]; owner != "" {
		return owner, false
	}
	return m.GetNamespace(), m.GetLabels()["always"] == "true"
}

type fakeLW struct {
	mu       sync.Mutex
	list     *corev1.SecretList
	watches  chan *watch.FakeWatcher
	opts     []metav1.ListOptions
	failList bool
	// refuseExact answers a list at a resourceVersion exactly as the API
	// server does once that version is compacted: 410 Gone.
	refuseExact bool
	// gate, when set, holds the lists of ranges taken until it is closed.
	gate     chan struct{}
	lastList *corev1.SecretList
}

// options returns the options of every list and watch so far.
func (l *fakeLW) options() []metav1.ListOptions {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.opts)
}

func newFakeLW(items ...*corev1.Secret) *fakeLW {
	l := &fakeLW{list: &corev1.SecretList{ListMeta: metav1.ListMeta{ResourceVersion: "10"}}, watches: make(chan *watch.FakeWatcher, 8)}
	for _, s := range items {
		l.list.Items = append(l.list.Items, *s)
	}
	return l
}

func (l *fakeLW) List(opts metav1.ListOptions) (runtime.Object, error) {
	l.mu.Lock()
	gate := l.gate
	l.opts = append(l.opts, opts)
	l.mu.Unlock()
	if gate != nil && opts.Limit == loadPageSize {
		<-gate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failList {
		return nil, apierrors.NewServiceUnavailable("list refused")
	}
	if l.refuseExact && opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact {
		return nil, apierrors.NewResourceExpired("too old resource version")
	}
	l.lastList = l.list.DeepCopy()
	if sel, err := fields.ParseSelector(opts.FieldSelector); err == nil && opts.FieldSelector != "" {
		// As the API server: the one field every kind can be selected by.
		if ns, ok := sel.RequiresExactMatch("metadata.namespace"); ok {
			kept := l.lastList.Items[:0]
			for _, s := range l.lastList.Items {
				if s.Namespace == ns {
					kept = append(kept, s)
				}
			}
			l.lastList.Items = kept
		}
	}
	return l.lastList, nil
}

// inLastList reports whether obj is an element of the last list returned.
func (l *fakeLW) inLastList(obj runtime.Object) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.lastList.Items {
		if obj == runtime.Object(&l.lastList.Items[i]) {
			return true
		}
	}
	return false
}

func (l *fakeLW) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.opts = append(l.opts, opts)
	w := watch.NewFakeWithChanSize(16, false)
	l.watches <- w
	return w, nil
}

func names(list runtime.Object) []string {
	var out []string
	for _, s := range list.(*corev1.SecretList).Items {
		out = append(out, s.Namespace+"/"+s.Name)
	}
	slices.Sort(out)
	return out
}

func next(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return watch.Event{}
}

func TestFilteredListKeepsHeldRangesOnly(t *testing.T) {
	in0, in1, in2 := namespaceIn(t, 0, 0), namespaceIn(t, 1, 0), namespaceIn(t, 2, 0)
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	f := NewCacheFilter(testRanges, clk)
	lw := newFakeLW(testSecret(in0, "a", nil), testSecret(in1, "b", nil), testSecret(in2, "c", nil),
		testSecret(in2, "pinned", map[string]string{"always": "true"}), testSecret("", "cluster", nil),
		testSecret(in2, "owned", map[string]string{"owner": in1}))
	flw := f.Wrap(lw, keepLabelled)

	list, err := flw.List(metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(list), []string{"/cluster", in2 + "/pinned"}; !slices.Equal(got, want) {
		t.Fatalf("holding nothing: listed %v, want %v", got, want)
	}
	if _, ok := f.Cached(in0); ok {
		t.Fatal("range 0 cached before it was held")
	}

	f.SetRanges([]int{0, 1})
	if _, ok := f.Cached(in0); ok {
		t.Fatal("range 0 cached before the informer listed it")
	}
	clk.SetTime(time.Unix(2000, 0))
	list, err = flw.List(metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/cluster", in0 + "/a", in1 + "/b", in2 + "/owned", in2 + "/pinned"}
	slices.Sort(want)
	if got := names(list); !slices.Equal(got, want) {
		t.Fatalf("holding 0 and 1: listed %v, want %v", got, want)
	}
	if at, ok := f.Cached(in1); !ok || !at.Equal(time.Unix(2000, 0)) {
		t.Fatalf("range 1 cached = %v at %v, want true at the list", ok, at)
	}
	if _, ok := f.Cached(in2); ok {
		t.Fatal("range 2 is not held but reported cached")
	}
}

func TestFilteredListOfTwoInformersIsCachedOnceBothListed(t *testing.T) {
	in0 := namespaceIn(t, 0, 0)
	f := NewCacheFilter(testRanges, nil)
	a, b := f.Wrap(newFakeLW(testSecret(in0, "a", nil)), nil), f.Wrap(newFakeLW(), nil)
	f.SetRanges([]int{0})
	if _, err := a.List(metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Cached(in0); ok {
		t.Fatal("range cached while one informer has not listed it yet")
	}
	if _, err := b.List(metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Cached(in0); !ok {
		t.Fatal("range not cached once both informers listed it")
	}
	// Given up and taken again: listed again before it counts as cached.
	f.SetRanges(nil)
	if n := f.CachedRanges(); n != 0 {
		t.Fatalf("%d ranges cached holding none", n)
	}
	f.SetRanges([]int{0})
	if _, ok := f.Cached(in0); ok {
		t.Fatal("range taken again reported cached before a new list")
	}
	if n := f.CachedRanges(); n != 0 {
		t.Fatalf("%d ranges cached before the range taken again is listed", n)
	}
}

func TestFilteredListPagedAcrossAChangeKeepsItsFirstRanges(t *testing.T) {
	in0, in1 := namespaceIn(t, 0, 0), namespaceIn(t, 1, 0)
	f := NewCacheFilter(testRanges, nil)
	lw := newFakeLW(testSecret(in0, "a", nil), testSecret(in1, "b", nil))
	flw := f.Wrap(lw, nil)
	f.SetRanges([]int{0})
	lw.list.Continue = "more"
	if _, err := flw.List(metav1.ListOptions{Limit: 1}); err != nil {
		t.Fatal(err)
	}
	f.SetRanges([]int{0, 1})
	lw.list.Continue = ""
	list, err := flw.List(metav1.ListOptions{Limit: 1, Continue: "more"})
	if err != nil {
		t.Fatal(err)
	}
	// Every page is filtered with the ranges of the first: the list is
	// one of range 0, consistent, and range 0 is cached.
	if got := names(list); !slices.Equal(got, []string{in0 + "/a"}) {
		t.Fatalf("last page %v, want range 0's only", got)
	}
	if _, ok := f.Cached(in0); !ok {
		t.Fatal("range 0 not cached after a list of it")
	}
	if _, ok := f.Cached(in1); ok {
		t.Fatal("range 1, taken during the list, reported cached")
	}
	// The watch after it loads range 1 with a list of its own.
	lists := len(lw.options())
	w, err := flw.Watch(metav1.ListOptions{ResourceVersion: "10"})
	if err != nil {
		t.Fatal(err)
	}
	<-lw.watches
	if ev := next(t, w); ev.Type != watch.Added || ev.Object.(*corev1.Secret).Name != "b" {
		t.Fatalf("after the list: %v, want range 1's Secret added", ev.Type)
	}
	if ev := next(t, w); ev.Type != watch.Bookmark || ev.Object.(*corev1.Secret).ResourceVersion != "10" {
		t.Fatalf("after the objects added: %v, want a bookmark back at the watch's resourceVersion 10", ev.Type)
	}
	if opts := lw.options(); len(opts) != lists+2 || opts[lists+1].Limit != loadPageSize || opts[lists+1].ResourceVersion != "" {
		t.Fatalf("list options %+v, want a watch then a consistent paged list", opts[lists:])
	}
	waitCached(t, f, in1)
	w.Stop()
}

// waitCached waits until namespace's range is cached.
func waitCached(t *testing.T, f *CacheFilter, namespace string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, ok := f.Cached(namespace); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's range never cached", namespace)
		}
	}
}

func TestFilteredWatchDropsOtherRangesAndExpiresOnChange(t *testing.T) {
	in0, in1 := namespaceIn(t, 0, 0), namespaceIn(t, 1, 0)
	f := NewCacheFilter(testRanges, nil)
	lw := newFakeLW()
	flw := f.Wrap(lw, keepLabelled)
	f.SetRanges([]int{0})

	// A watch before any list of these ranges ends at once.
	w, err := flw.Watch(metav1.ListOptions{ResourceVersion: "10"})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, w); ev.Type != watch.Error {
		t.Fatalf("watch before a list: %v, want an error", ev.Type)
	}
	if len(lw.options()) != 0 {
		t.Fatal("a watch doomed to end reached the apiserver")
	}

	if _, err := flw.List(metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err = flw.Watch(metav1.ListOptions{ResourceVersion: "10"})
	if err != nil {
		t.Fatal(err)
	}
	inner := <-lw.watches
	inner.Add(testSecret(in1, "other", nil))
	inner.Add(testSecret(in0, "mine", nil))
	if ev := next(t, w); ev.Type != watch.Added || ev.Object.(*corev1.Secret).Name != "mine" {
		t.Fatalf("first event passed: %v %s, want the added Secret of range 0", ev.Type, ev.Object.(*corev1.Secret).Name)
	}
	// An object kept by a label that loses it, while the store holds it,
	// leaves the store; one the store does not hold is dropped.
	pinned := testSecret(in1, "pinned", map[string]string{"always": "true"})
	inner.Add(pinned)
	if ev := next(t, w); ev.Type != watch.Added || ev.Object.(*corev1.Secret).Name != "pinned" {
		t.Fatalf("labelled Secret of another range: %v, want added", ev.Type)
	}
	inner.Modify(testSecret(in1, "other", nil))
	inner.Delete(testSecret(in1, "other", nil))
	inner.Modify(testSecret(in1, "pinned", nil))
	if ev := next(t, w); ev.Type != watch.Deleted || ev.Object.(*corev1.Secret).Name != "pinned" {
		t.Fatalf("Secret that lost its label: %v %s, want it deleted", ev.Type, ev.Object.(*corev1.Secret).Name)
	}
	inner.Action(watch.Bookmark, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "12"}})
	if ev := next(t, w); ev.Type != watch.Bookmark {
		t.Fatalf("bookmark: %v, want it passed on", ev.Type)
	}

	// A list that fails to load a range taken ends the watch with 410
	// Expired: the informer lists everything again.
	lw.failList = true
	f.SetRanges([]int{0, 1})
	ev := next(t, w)
	if ev.Type != watch.Error {
		t.Fatalf("after a failed list of a range taken: %v, want an error", ev.Type)
	}
	if st, ok := ev.Object.(*metav1.Status); !ok || st.Code != http.StatusGone || st.Reason != metav1.StatusReasonExpired {
		t.Fatalf("error %v, want 410 Expired", ev.Object)
	}
	if _, ok := <-w.ResultChan(); ok {
		t.Fatal("watch still open after it expired")
	}
	if !inner.IsStopped() {
		t.Fatal("the watch on the apiserver was not stopped")
	}
	// Setting the same ranges again ends nothing.
	lw.failList = false
	if _, err := flw.List(metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	w, _ = flw.Watch(metav1.ListOptions{ResourceVersion: "12"})
	inner = <-lw.watches
	f.SetRanges([]int{1, 0})
	inner.Add(testSecret(in1, "new", nil))
	if ev := next(t, w); ev.Type != watch.Added {
		t.Fatalf("after setting the same ranges: %v, want the watch going on", ev.Type)
	}
	w.Stop()
}

func TestFilteredWatchListMarksCachedAtTheInitialEventsBookmark(t *testing.T) {
	in0, in1 := namespaceIn(t, 0, 0), namespaceIn(t, 1, 0)
	f := NewCacheFilter(testRanges, nil)
	lw := newFakeLW()
	flw := f.Wrap(lw, nil)
	f.SetRanges([]int{0})
	w, err := flw.Watch(metav1.ListOptions{SendInitialEvents: ptr.To(true), AllowWatchBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	inner := <-lw.watches
	inner.Add(testSecret(in1, "other", nil))
	inner.Add(testSecret(in0, "mine", nil))
	if ev := next(t, w); ev.Object.(*corev1.Secret).Name != "mine" {
		t.Fatalf("initial event %s passed, want only range 0's", ev.Object.(*corev1.Secret).Name)
	}
	if _, ok := f.Cached(in0); ok {
		t.Fatal("cached before the initial events ended")
	}
	inner.Action(watch.Bookmark, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "11",
		Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}})
	next(t, w)
	// Recorded once the bookmark is passed on (the informer replaces its
	// store when it receives it), so shortly after the test reads it.
	waitCached(t, f, in0)
	// The stream read every object of the kind: what a list of a range
	// taken namespace by namespace is weighed against.
	if n := flw.total.Load(); n != 2 {
		t.Fatalf("the stream counted %d objects of the kind, want 2", n)
	}
	w.Stop()
}

// secretFixture is a fake clientset holding three Secrets in each range
// (want lists their keys by range), and a ListerWatcher over it that counts
// its lists and watches.
type secretFixture struct {
	cs             *fake.Clientset
	lw             toolscache.ListerWatcher
	want           map[int][]string
	lists, watches atomic.Int32
}

func newSecretFixture(t *testing.T) *secretFixture {
	var objs []runtime.Object
	fx := &secretFixture{want: map[int][]string{}}
	for rng := range testRanges {
		for i := range 3 {
			ns := namespaceIn(t, rng, i)
			objs = append(objs, testSecret(ns, "s", nil))
			fx.want[rng] = append(fx.want[rng], ns+"/s")
		}
	}
	fx.cs = fake.NewClientset(objs...)
	fx.lw = toolscache.ToListWatcherWithWatchListSemantics(&toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			fx.lists.Add(1)
			return fx.cs.CoreV1().Secrets("").List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			fx.watches.Add(1)
			return fx.cs.CoreV1().Secrets("").Watch(ctx, o)
		},
	}, fx.cs)
	return fx
}

// waitStore waits until inf's store holds exactly the Secrets of the ranges
// held (fx.want's, as the test has added to it).
func (fx *secretFixture) waitStore(ctx context.Context, t *testing.T, inf toolscache.SharedIndexInformer, held ...int) {
	t.Helper()
	var keys []string
	for _, r := range held {
		keys = append(keys, fx.want[r]...)
	}
	slices.Sort(keys)
	var got []string
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		got = inf.GetStore().ListKeys()
		slices.Sort(got)
		return slices.Equal(got, keys), nil
	})
	if err != nil {
		t.Fatalf("holding %v: store %v, want %v", held, got, keys)
	}
}

// TestInformerFollowsTheRanges runs a real informer over a fake clientset:
// after each change of ranges its store holds exactly the Secrets of the
// ranges held, and objects leave and enter it through delete and add events.
func TestInformerFollowsTheRanges(t *testing.T) {
	fx := newSecretFixture(t)
	cs, want := fx.cs, fx.want
	f := NewCacheFilter(testRanges, nil)
	flw := f.Wrap(fx.lw, nil)
	inf := toolscache.NewSharedIndexInformer(flw, &corev1.Secret{}, 0, toolscache.Indexers{})
	deleted := make(chan string, 64)
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{DeleteFunc: func(o any) {
		if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
			o = d.Obj
		}
		if s, ok := o.(*corev1.Secret); ok {
			deleted <- s.Namespace + "/" + s.Name
		}
	}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inf.Run(ctx.Done())

	expect := func(held ...int) {
		t.Helper()
		fx.waitStore(ctx, t, inf, held...)
		for _, r := range held {
			waitCached(t, f, namespaceIn(t, r, 0))
		}
	}
	expect()
	f.SetRanges([]int{1, 3})
	expect(1, 3)
	// An object created in a range held arrives by the watch; one in
	// another range does not.
	for _, s := range []*corev1.Secret{testSecret(namespaceIn(t, 1, 5), "late", nil), testSecret(namespaceIn(t, 2, 5), "late", nil)} {
		s.ResourceVersion = "" // as the API server refuses one on create
		if _, err := cs.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	want[1] = append(want[1], namespaceIn(t, 1, 5)+"/late")
	want[2] = append(want[2], namespaceIn(t, 2, 5)+"/late")
	expect(1, 3)
	f.SetRanges([]int{2})
	expect(2)
	got := map[string]bool{}
	for len(got) < len(want[1])+len(want[3]) {
		select {
		case k := <-deleted:
			got[k] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("delete events for ranges given up: %v", got)
		}
	}
	for _, k := range append(slices.Clone(want[1]), want[3]...) {
		if !got[k] {
			t.Fatalf("no delete event for %s", k)
		}
	}
}

// TestRangesGivenUpLeaveTheStoreWithoutAList runs a real informer over a fake
// clientset: ranges only given up leave its store by delete events on the
// running watch, without a new list or watch, and the objects that arrived
// by that watch leave with them; taking a range lists again.
func TestRangesGivenUpLeaveTheStoreWithoutAList(t *testing.T) {
	fx := newSecretFixture(t)
	cs, want, lists, watches, lw := fx.cs, fx.want, &fx.lists, &fx.watches, fx.lw
	f := NewCacheFilter(testRanges, nil)
	// The scope reads labels, and the informer's transform writes them, as
	// the manager's do: an object handed to the informer is not read
	// again (the race detector says otherwise).
	inf := toolscache.NewSharedIndexInformer(f.Wrap(lw, keepLabelled), &corev1.Secret{}, 0, toolscache.Indexers{})
	if err := inf.SetTransform(func(o any) (any, error) {
		if s, ok := o.(*corev1.Secret); ok {
			s.Labels = map[string]string{"transformed": "true"}
		}
		return o, nil
	}); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan *corev1.Secret, 64)
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{DeleteFunc: func(o any) {
		if s, ok := o.(*corev1.Secret); ok {
			deleted <- s
		}
	}}); err != nil {
		t.Fatal(err)
	}
	f.SetRanges([]int{0, 1, 3})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inf.Run(ctx.Done())

	expect := func(held ...int) {
		t.Helper()
		fx.waitStore(ctx, t, inf, held...)
	}
	expect(0, 1, 3)
	// Objects that arrive by the watch, in a range about to be given up.
	late := testSecret(namespaceIn(t, 3, 5), "late", nil)
	late.ResourceVersion = ""
	if _, err := cs.CoreV1().Secrets(late.Namespace).Create(ctx, late, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want[3] = append(want[3], late.Namespace+"/late")
	expect(0, 1, 3)
	listsBefore, watchesBefore := lists.Load(), watches.Load()

	f.SetRanges([]int{1})
	expect(1)
	got := map[string]bool{}
	for len(got) < len(want[0])+len(want[3]) {
		select {
		case s := <-deleted:
			got[s.Namespace+"/"+s.Name] = true
			if s.ResourceVersion == "" {
				t.Errorf("delete event for %s/%s without a resourceVersion: the reflector would resume from none", s.Namespace, s.Name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("delete events for ranges given up: %v", got)
		}
	}
	for _, k := range append(slices.Clone(want[0]), want[3]...) {
		if !got[k] {
			t.Fatalf("no delete event for %s", k)
		}
	}
	if l, w := lists.Load()-listsBefore, watches.Load()-watchesBefore; l != 0 || w != 0 {
		t.Fatalf("giving ranges up made %d lists and %d watches, want none", l, w)
	}
	if _, ok := f.Cached(namespaceIn(t, 1, 0)); !ok {
		t.Fatal("the range kept is no longer reported cached")
	}
	// The watch goes on with the range kept, and drops the others.
	for _, s := range []*corev1.Secret{testSecret(namespaceIn(t, 0, 6), "after", nil), testSecret(namespaceIn(t, 1, 6), "after", nil)} {
		s.ResourceVersion = "" // as the API server refuses one on create
		if _, err := cs.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	want[0] = append(want[0], namespaceIn(t, 0, 6)+"/after")
	want[1] = append(want[1], namespaceIn(t, 1, 6)+"/after")
	expect(1)

	// Taking a range lists again.
	f.SetRanges([]int{1, 2})
	expect(1, 2)
	if lists.Load() == listsBefore {
		t.Fatal("taking a range did not list again")
	}
	if _, ok := f.Cached(namespaceIn(t, 2, 0)); !ok {
		t.Fatal("the range taken is not cached after its list")
	}
}

func TestFilteredWatchDeletesWhatItGaveUpAtItsLatestVersion(t *testing.T) {
	in0, in1, in2 := namespaceIn(t, 0, 0), namespaceIn(t, 1, 0), namespaceIn(t, 2, 0)
	f := NewCacheFilter(testRanges, nil)
	lw := newFakeLW(testSecret(in0, "listed", nil), testSecret(in1, "kept", nil))
	flw := f.Wrap(lw, keepLabelled)
	f.SetRanges([]int{0, 1})
	w, inner := listAndWatch(t, flw, lw)
	watched := testSecret(in0, "watched", nil)
	watched.ResourceVersion = "11"
	inner.Add(watched)
	if ev := next(t, w); ev.Type != watch.Added {
		t.Fatalf("event %v, want added", ev.Type)
	}
	pinned := testSecret(in0, "pinned", map[string]string{"always": "true"})
	pinned.ResourceVersion = "12"
	inner.Add(pinned)
	next(t, w)
	other := testSecret(in2, "other", nil)
	other.ResourceVersion = "13"
	inner.Add(other) // dropped, but the watch is at 13 now

	f.SetRanges([]int{1})
	var got []string
	for range 2 {
		ev := next(t, w)
		s := ev.Object.(*corev1.Secret)
		if ev.Type != watch.Deleted || s.ResourceVersion != "13" {
			t.Fatalf("after giving range 0 up: %v %s at %q, want deleted at 13", ev.Type, s.Name, s.ResourceVersion)
		}
		got = append(got, s.Namespace+"/"+s.Name)
	}
	if want := []string{in0 + "/listed", in0 + "/watched"}; !slices.Equal(got, want) {
		t.Fatalf("deleted %v, want %v (what is kept whatever the ranges stays)", got, want)
	}
	if _, ok := f.Cached(in1); !ok {
		t.Fatal("range 1 no longer cached")
	}
	// A later watch needs no new list: the store reflects the ranges once
	// the deletes are sent.
	for deadline := time.Now().Add(5 * time.Second); f.listGen(flw) != 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the store reflects generation %d after the deletes, want 3", f.listGen(flw))
		}
	}
	w.Stop()
	w, err := flw.Watch(metav1.ListOptions{ResourceVersion: "13"})
	if err != nil {
		t.Fatal(err)
	}
	inner = <-lw.watches
	inner.Add(testSecret(in1, "new", nil))
	if ev := next(t, w); ev.Type != watch.Added {
		t.Fatalf("watch after giving a range up: %v, want it going on", ev.Type)
	}
	w.Stop()
}

func TestFilteredWatchStillListingFollowsTheRangesOnceItsInitialEventsEnd(t *testing.T) {
	in0, in1 := namespaceIn(t, 0, 0), namespaceIn(t, 1, 0)
	f := NewCacheFilter(testRanges, nil)
	lw := newFakeLW()
	flw := f.Wrap(lw, nil)
	f.SetRanges([]int{0, 1})
	w, err := flw.Watch(metav1.ListOptions{SendInitialEvents: ptr.To(true), AllowWatchBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	inner := <-lw.watches
	inner.Add(testSecret(in0, "mine", nil))
	next(t, w)
	// The informer replaces its store at the end of the initial events:
	// deleting from it now would not reach what replaces it, and ending
	// the watch would throw the list away.
	f.SetRanges([]int{1})
	inner.Add(testSecret(in1, "also", nil))
	if ev := next(t, w); ev.Type != watch.Added || ev.Object.(*corev1.Secret).Name != "also" {
		t.Fatalf("initial event after the change: %v, want it passed", ev.Type)
	}
	inner.Action(watch.Bookmark, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "11",
		Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}})
	if ev := next(t, w); ev.Type != watch.Bookmark {
		t.Fatalf("%v, want the bookmark", ev.Type)
	}
	if ev := next(t, w); ev.Type != watch.Deleted || ev.Object.(*corev1.Secret).Name != "mine" || ev.Object.(*corev1.Secret).ResourceVersion != "11" {
		t.Fatalf("after the initial events: %v, want range 0's Secret deleted at 11", ev.Type)
	}
	waitCached(t, f, in1)
	w.Stop()
}

// waitLoads waits until lw has been asked for n lists of ranges taken.
// takeRange1WhileWatching lists lw holding range 0 (at resourceVersion 10),
// watches from there, then takes range 1, whose list (at 20) waits for the
// gate returned, once it has started.
func takeRange1WhileWatching(t *testing.T, f *CacheFilter, lw *fakeLW) (watch.Interface, *watch.FakeWatcher, chan struct{}, *FilteredListerWatcher) {
	t.Helper()
	lw.list.ResourceVersion = "10"
	flw := f.Wrap(lw, nil)
	f.SetRanges([]int{0})
	w, inner := listAndWatch(t, flw, lw)
	gate := make(chan struct{})
	lw.mu.Lock()
	lw.gate = gate
	lw.list.ResourceVersion = "20"
	lw.mu.Unlock()
	f.SetRanges([]int{0, 1})
	waitLoads(t, lw, 1)
	return w, inner, gate, flw
}

// listAndWatch lists flw, then watches it from resourceVersion 10, and
// returns the watch and lw's watch under it.
func listAndWatch(t *testing.T, flw *FilteredListerWatcher, lw *fakeLW) (watch.Interface, *watch.FakeWatcher) {
	t.Helper()
	if _, err := flw.List(metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := flw.Watch(metav1.ListOptions{ResourceVersion: "10"})
	if err != nil {
		t.Fatal(err)
	}
	return w, <-lw.watches
}

func waitLoads(t *testing.T, lw *fakeLW, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		got := 0
		for _, o := range lw.options() {
			if o.Limit == loadPageSize {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lists of ranges taken, want %d", got, n)
		}
	}
}

func secretAt(ns, name, rv string) *corev1.Secret {
	s := testSecret(ns, name, nil)
	s.ResourceVersion = rv
	return s
}

func expectEvent(t *testing.T, w watch.Interface, typ watch.EventType, name, rv string) {
	t.Helper()
	ev := next(t, w)
	s, _ := ev.Object.(*corev1.Secret)
	if ev.Type != typ || s == nil || s.Name != name || s.ResourceVersion != rv {
		t.Fatalf("event %v %+v, want %v %q at %q", ev.Type, ev.Object, typ, name, rv)
	}
}

// TestRangeTakenIsLoadedIntoTheRunningWatch: while a range taken is listed,
// the ranges kept are served; its events that arrive meanwhile are held back
// and, once its objects are added, those newer than the list pass and the
// others are dropped, as are older ones that arrive later.
func TestRangeTakenIsLoadedIntoTheRunningWatch(t *testing.T) {
	in0, in1 := namespaceIn(t, 0, 0), namespaceIn(t, 1, 0)
	f := NewCacheFilter(testRanges, nil)
	lw := newFakeLW(secretAt(in0, "a", "3"), secretAt(in1, "b", "5"))
	w, inner, gate, _ := takeRange1WhileWatching(t, f, lw)
	inner.Modify(secretAt(in1, "b", "15")) // older than the list: dropped
	inner.Add(secretAt(in1, "c", "25"))    // newer: passes after the list
	inner.Add(secretAt(in0, "x", "26"))    // a range kept: served at once
	expectEvent(t, w, watch.Added, "x", "26")
	if _, ok := f.Cached(in1); ok {
		t.Fatal("range 1 cached before its list")
	}
	if n := f.CachedRanges(); n != 1 {
		t.Fatalf("%d ranges cached while range 1 is listed, want 1 (range 0)", n)
	}
	close(gate)
	ev := next(t, w)
	if s, _ := ev.Object.(*corev1.Secret); ev.Type != watch.Added || s == nil || s.Name != "b" {
		t.Fatalf("after the list: %v %+v, want b added", ev.Type, ev.Object)
	}
	if lw.inLastList(ev.Object) {
		t.Fatal("the object added is an element of the list's page: it would keep the whole page in memory")
	}
	expectEvent(t, w, watch.Added, "c", "25")
	expectEvent(t, w, watch.Bookmark, "", "26")
	waitCached(t, f, in1)
	if n := f.CachedRanges(); n != 2 {
		t.Fatalf("%d ranges cached once range 1 is listed, want 2", n)
	}
	inner.Modify(secretAt(in1, "b", "18")) // older than the list, late
	inner.Modify(secretAt(in1, "b", "30"))
	expectEvent(t, w, watch.Modified, "b", "30")

	// A range taken, given up and taken again while its list runs: an
	// event of the meantime is not lost (the watch lists the range again,
	// or held the event back when it saw no change).
	in2 := namespaceIn(t, 2, 0)
	gate = make(chan struct{})
	lw.mu.Lock()
	lw.gate = gate
	lw.list.Items = append(lw.list.Items, *secretAt(in2, "d", "31"))
	lw.list.ResourceVersion = "32"
	lw.mu.Unlock()
	f.SetRanges([]int{0, 1, 2})
	waitLoads(t, lw, 2)
	f.SetRanges([]int{0, 1})
	inner.Add(secretAt(in2, "e", "33"))
	lw.mu.Lock()
	lw.list.Items = append(lw.list.Items, *secretAt(in2, "e", "33"))
	lw.list.ResourceVersion = "34"
	lw.mu.Unlock()
	f.SetRanges([]int{0, 1, 2})
	close(gate)
	seen := map[string]bool{}
	for !seen["d"] || !seen["e"] {
		ev := next(t, w)
		if s, ok := ev.Object.(*corev1.Secret); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
			seen[s.Name] = true
		}
	}
	for ev := next(t, w); ev.Type != watch.Bookmark; ev = next(t, w) {
	}
	waitCached(t, f, in2)
	w.Stop()
}

// The events held back while a range is listed are bounded by the objects
// that change, not by how often they change: a full buffer keeps the last
// event of each object, and only a buffer of that many objects still ends
// the watch (the informer then lists everything again).
func TestHeldBackEventsKeepTheLastOfEachObject(t *testing.T) {
	in0, in1 := namespaceIn(t, 0, 0), namespaceIn(t, 1, 0)
	f := NewCacheFilter(testRanges, nil)
	lw := newFakeLW(secretAt(in1, "a", "5"))
	w, inner, gate, _ := takeRange1WhileWatching(t, f, lw)
	inner.Add(secretAt(in0, "kept", "101")) // a range kept: served at once
	expectEvent(t, w, watch.Added, "kept", "101")
	// Three objects of the range being listed change 5,000 times each (from
	// a goroutine: a watch that ends stops reading them).
	const rv = 101 + 15000
	go func() {
		// A watch that ends stops its source, whose sends then panic: the
		// test reports the end instead.
		defer func() { _ = recover() }()
		n := 101
		for range 5000 {
			for _, name := range []string{"a", "b", "c"} {
				n++
				inner.Modify(secretAt(in1, name, strconv.Itoa(n)))
			}
		}
		close(gate)
	}()
	// The list's object, the events held back (the last of each object at
	// least), a bookmark; then the events the watch had not read yet when
	// the list came in.
	last := map[string]string{}
	replayed, bookmark := 0, false
	for !bookmark || last["c"] != strconv.Itoa(rv) {
		ev := next(t, w)
		switch s, _ := ev.Object.(*corev1.Secret); {
		case ev.Type == watch.Error:
			t.Fatalf("the watch ended after 15,000 changes of 3 objects: %+v", ev.Object)
		case ev.Type == watch.Bookmark:
			bookmark = true
		case s != nil:
			last[s.Name] = s.ResourceVersion
			if !bookmark {
				replayed++
			}
		}
	}
	if replayed > maxBuffered+1 {
		t.Fatalf("%d events passed with the list, want at most the buffer's %d and the list's object", replayed, maxBuffered)
	}
	if want := map[string]string{"a": strconv.Itoa(rv - 2), "b": strconv.Itoa(rv - 1), "c": strconv.Itoa(rv)}; !maps.Equal(last, want) {
		t.Fatalf("after the list: %v, want the last version of each %v", last, want)
	}
	waitCached(t, f, in1)

	// As many objects as the buffer holds, each changed once, end the watch.
	in2 := namespaceIn(t, 2, 0)
	gate = make(chan struct{})
	lw.mu.Lock()
	lw.gate = gate
	lw.mu.Unlock()
	f.SetRanges([]int{0, 1, 2})
	waitLoads(t, lw, 2)
	done := make(chan watch.Event, 1)
	go func() {
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				done <- ev
				return
			}
		}
		close(done)
	}()
	go func() {
		for i := range maxBuffered + 1 {
			inner.Add(secretAt(in2, fmt.Sprintf("n%d", i), strconv.Itoa(rv+1+i)))
		}
	}()
	select {
	case ev, ok := <-done:
		if !ok {
			t.Fatal("the watch closed without an error")
		}
		if st, _ := ev.Object.(*metav1.Status); st == nil || st.Code != http.StatusGone {
			t.Fatalf("the watch ended with %+v, want 410 Expired", ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a buffer of more objects than it holds did not end the watch")
	}
	close(gate)
}

// TestFirstListReadsOnlyTheNamespacesKeptWhateverTheRanges: holding no
// range, a list reads only the namespaces FirstListOnlyIn names, as one
// snapshot; holding ranges, it reads everything again.
func TestFirstListReadsOnlyTheNamespacesKeptWhateverTheRanges(t *testing.T) {
	in0, in1 := namespaceIn(t, 0, 0), namespaceIn(t, 1, 0)
	opsScope := func(m metav1.Object) (string, bool) {
		if owner := m.GetLabels()["owner"]; owner != "" {
			return owner, false
		}
		return m.GetNamespace(), m.GetNamespace() == "ops" || m.GetNamespace() == "creds"
	}
	f := NewCacheFilter(testRanges, nil)
	lw := newFakeLW(testSecret(in0, "a", nil), testSecret(in1, "b", nil), testSecret("ops", "pinned", nil),
		testSecret("ops", "state", map[string]string{"owner": in1}), testSecret("creds", "key", nil))
	flw := f.Wrap(lw, opsScope).FirstListOnlyIn("ops", "creds")
	if !flw.IsWatchListSemanticsUnSupported() {
		t.Fatal("a narrowed first list cannot be streamed, yet watch-list is offered")
	}

	list, err := flw.List(metav1.ListOptions{ResourceVersion: "0", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(list), []string{"creds/key", "ops/pinned"}; !slices.Equal(got, want) {
		t.Fatalf("holding nothing: listed %v, want %v", got, want)
	}
	if m, _ := meta.ListAccessor(list); m.GetResourceVersion() != "10" || m.GetContinue() != "" {
		t.Fatalf("list at %q, continue %q; want the first read's resourceVersion and no continue", m.GetResourceVersion(), m.GetContinue())
	}
	opts := lw.options()
	if len(opts) != 2 {
		t.Fatalf("%d reads, want one per namespace: %+v", len(opts), opts)
	}
	if opts[0].FieldSelector != "metadata.namespace=ops" || opts[0].ResourceVersion != "0" {
		t.Fatalf("first read %+v, want the operator namespace with the informer's options", opts[0])
	}
	if opts[1].FieldSelector != "metadata.namespace=creds" || opts[1].ResourceVersion != "10" ||
		opts[1].ResourceVersionMatch != metav1.ResourceVersionMatchExact {
		t.Fatalf("second read %+v, want the credentials namespace at the first read's resourceVersion exactly", opts[1])
	}

	f.SetRanges([]int{1})
	list, err = flw.List(metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"creds/key", in1 + "/b", "ops/pinned", "ops/state"}
	slices.Sort(want)
	if got := names(list); !slices.Equal(got, want) {
		t.Fatalf("holding range 1: listed %v, want %v", got, want)
	}
	if last := lw.options()[len(lw.options())-1]; last.FieldSelector != "" {
		t.Fatalf("holding range 1, the list read %q only", last.FieldSelector)
	}
	if _, ok := f.Cached(in1); !ok {
		t.Fatal("range 1 not cached after a list of everything")
	}
}

// TestListOfARangeTakenOutlivesTheWatch: the API server ends a watch after
// 5 to 10 minutes, and a list of every object can take longer: the next
// watch takes the list running and the events held back on, rather than
// starting the list again (it would never end), and the range gets cached.
func TestListOfARangeTakenOutlivesTheWatch(t *testing.T) {
	in0, in1 := namespaceIn(t, 0, 0), namespaceIn(t, 1, 0)
	f := NewCacheFilter(testRanges, nil)
	lw := newFakeLW(secretAt(in0, "a", "3"), secretAt(in1, "b", "5"))
	w, inner, gate, flw := takeRange1WhileWatching(t, f, lw)
	inner.Add(secretAt(in1, "c", "25")) // held back: newer than the list
	inner.Add(secretAt(in0, "x", "26"))
	expectEvent(t, w, watch.Added, "x", "26")
	// The API server ends the watch; the reflector watches again from the
	// last resourceVersion it saw.
	inner.Stop()
	for range w.ResultChan() {
	}
	w2, err := flw.Watch(metav1.ListOptions{ResourceVersion: "26"})
	if err != nil {
		t.Fatal(err)
	}
	inner2 := <-lw.watches
	close(gate)
	expectEvent(t, w2, watch.Added, "b", "5")
	expectEvent(t, w2, watch.Added, "c", "25") // held back by the first watch
	expectEvent(t, w2, watch.Bookmark, "", "26")
	waitCached(t, f, in1)
	inner2.Modify(secretAt(in1, "c", "28"))
	expectEvent(t, w2, watch.Modified, "c", "28")
	loads := 0
	for _, o := range lw.options() {
		if o.Limit == loadPageSize {
			loads++
		}
	}
	if loads != 1 {
		t.Fatalf("range 1 listed %d times, want once: the new watch took the list on", loads)
	}
	w2.Stop()
}

// pagedLW serves a list in pages of its Limit, continuing by offset, and
// refuses a list asked for whole: a response of every object that does not
// reach the client within the API server's request timeout.
type pagedLW struct {
	items []corev1.Secret
	opts  []metav1.ListOptions
}

func (l *pagedLW) List(opts metav1.ListOptions) (runtime.Object, error) {
	l.opts = append(l.opts, opts)
	if opts.Limit == 0 {
		return nil, apierrors.NewTimeoutError("the list did not reach the client in time", 0)
	}
	from := 0
	if opts.Continue != "" {
		if opts.ResourceVersion != "" || opts.ResourceVersionMatch != "" {
			return nil, apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
		}
		from, _ = strconv.Atoi(opts.Continue)
	}
	to := min(from+int(opts.Limit), len(l.items))
	list := &corev1.SecretList{ListMeta: metav1.ListMeta{ResourceVersion: "20"}, Items: slices.Clone(l.items[from:to])}
	if to < len(l.items) {
		list.Continue = strconv.Itoa(to)
	}
	return list, nil
}

func (l *pagedLW) Watch(metav1.ListOptions) (watch.Interface, error) {
	return watch.NewFake(), nil
}

// The reflector relists from a resourceVersion without a limit, so that the
// watch cache answers in one response; the filter reads it in pages instead
// and hands the informer one list of its ranges' objects.
func TestRelistAskedForWholeIsReadInPages(t *testing.T) {
	f := NewCacheFilter(testRanges, nil)
	lw := &pagedLW{}
	want := []string{}
	for i := range loadPageSize + 10 {
		ns := namespaceIn(t, i%testRanges, i/testRanges)
		lw.items = append(lw.items, *testSecret(ns, "s", nil))
		if i%testRanges == 0 {
			want = append(want, ns+"/s")
		}
	}
	flw := f.Wrap(lw, nil)
	f.SetRanges([]int{0})
	list, err := flw.List(metav1.ListOptions{ResourceVersion: "15"})
	if err != nil {
		t.Fatalf("a relist asked for whole: %v", err)
	}
	if got := names(list); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("listed %d objects, want range 0's %d", len(got), len(want))
	}
	m, err := meta.ListAccessor(list)
	if err != nil || m.GetResourceVersion() != "20" || m.GetContinue() != "" {
		t.Fatalf("list metadata rv %q continue %q (%v), want the first page's rv and no continue", m.GetResourceVersion(), m.GetContinue(), err)
	}
	if len(lw.opts) != 2 || lw.opts[0].Limit != loadPageSize ||
		lw.opts[0].ResourceVersion != "15" || lw.opts[0].ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan {
		t.Fatalf("list options %+v, want two pages, the first not older than the reflector's resourceVersion", lw.opts)
	}
	if _, ok := f.Cached(namespaceIn(t, 0, 0)); !ok {
		t.Fatal("range 0 not cached after the list")
	}
}
