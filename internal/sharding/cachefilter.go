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
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/watchlist"
	"k8s.io/utils/clock"
)

// CacheFilter narrows informers to the namespaces of the ranges this replica
// holds, on the client side: each informer's lists and watches pass through
// a FilteredListerWatcher that drops the objects of the other ranges before
// they reach the informer's store. When the ranges change, every filtered
// watch ends with 410 Expired, so that its reflector lists again and replaces
// its store: the objects of a range given up leave it, those of a range taken
// enter it (as add events, which queue them).
type CacheFilter struct {
	ranges int
	clock  clock.PassiveClock

	mu  sync.Mutex
	gen uint64
	set map[int]bool
	// added is the generation at which each range of set was added;
	// complete, when every informer had listed it since.
	added    map[int]uint64
	complete map[int]time.Time
	// listers are the informers' ListerWatchers; watches their open watches.
	listers map[*FilteredListerWatcher]struct{}
	watches map[*filteredWatch]struct{}
}

// NewCacheFilter returns a filter of ranges ranges that caches none of them
// yet; clk times when a range became cached.
func NewCacheFilter(ranges int, clk clock.PassiveClock) *CacheFilter {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &CacheFilter{ranges: ranges, clock: clk, gen: 1, set: map[int]bool{}, added: map[int]uint64{},
		complete: map[int]time.Time{}, listers: map[*FilteredListerWatcher]struct{}{}, watches: map[*filteredWatch]struct{}{}}
}

// SetRanges sets the ranges to cache. When ranges are only given up, each
// filtered watch sends delete events for the objects of those ranges its
// informer's store holds, and goes on; when a range is taken, every filtered
// watch ends so that its informer lists again.
func (f *CacheFilter) SetRanges(ranges []int) {
	next := map[int]bool{}
	for _, r := range ranges {
		if r >= 0 && r < f.ranges {
			next[r] = true
		}
	}
	f.mu.Lock()
	if mapsEqual(next, f.set) {
		f.mu.Unlock()
		return
	}
	f.gen++
	for r := range f.set {
		if !next[r] {
			delete(f.added, r)
			delete(f.complete, r)
		}
	}
	for r := range next {
		if !f.set[r] {
			f.added[r] = f.gen
		}
	}
	f.set = next
	gen := f.gen
	watches := make([]*filteredWatch, 0, len(f.watches))
	for w := range f.watches {
		watches = append(watches, w)
	}
	f.mu.Unlock()
	for _, w := range watches {
		w.follow(gen, next)
	}
}

// Ranges returns the ranges cached, sorted.
func (f *CacheFilter) Ranges() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]int, 0, len(f.set))
	for r := range f.set {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Cached reports whether namespace's range is cached by every filtered
// informer (each has listed it since it was added), and since when.
func (f *CacheFilter) Cached(namespace string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.complete[RangeOf(namespace, f.ranges)]
	return t, ok
}

// Wrap returns lw filtered to the ranges cached. scope returns the
// namespace whose range decides whether an object is kept, or true to keep
// it whatever the ranges; nil means the object's own namespace. Objects
// without a namespace are always kept.
func (f *CacheFilter) Wrap(lw toolscache.ListerWatcher, scope func(metav1.Object) (namespace string, always bool)) *FilteredListerWatcher {
	l := &FilteredListerWatcher{filter: f, lw: toolscache.ToListerWatcherWithContext(lw), scope: scope,
		noWatchList: watchlist.DoesClientNotSupportWatchListSemantics(lw)}
	f.mu.Lock()
	f.listers[l] = struct{}{}
	f.mu.Unlock()
	return l
}

// snapshot returns the current generation and ranges.
func (f *CacheFilter) snapshot() (uint64, map[int]bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen, f.set
}

// listed records that l's store now reflects the ranges of generation gen
// (zero: no consistent set), and marks the ranges every informer has listed.
func (f *CacheFilter) listed(l *FilteredListerWatcher, gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l.listGen = gen
	now := f.clock.Now()
	for r := range f.set {
		if _, ok := f.complete[r]; ok {
			continue
		}
		all := true
		for other := range f.listers {
			if other.listGen < f.added[r] {
				all = false
				break
			}
		}
		if all {
			f.complete[r] = now
		}
	}
}

func (f *CacheFilter) listGen(l *FilteredListerWatcher) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return l.listGen
}

func mapsEqual(a, b map[int]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// FilteredListerWatcher is one informer's ListerWatcher, filtered by a
// CacheFilter.
type FilteredListerWatcher struct {
	filter *CacheFilter
	lw     toolscache.ListerWatcherWithContext
	scope  func(metav1.Object) (string, bool)
	// noWatchList is lw's answer: a client that cannot stream lists.
	noWatchList bool
	// held (under mu) mirrors the keys of the informer's store: every
	// object with a namespace this ListerWatcher has given the informer (by
	// its last complete list, then by its watch), with the range it is kept
	// for (-1: kept whatever the ranges). It tells which objects leave the
	// store when ranges are given up, and whether an object that stops
	// being kept is in the store. listing collects the next list's keys.
	mu      sync.Mutex
	held    map[string]int
	listing map[string]int
	// proto is an empty object of the informer's type, for the delete
	// events of objects whose range was given up.
	proto runtime.Object
	// listGen (under filter.mu) is the generation of the ranges the
	// informer's store reflects: that of its last complete list.
	listGen uint64
	// pageGen is the generation of the list being paged; zero when its
	// pages were filtered with different ranges.
	pageGen uint64
}

// IsWatchListSemanticsUnSupported passes on the answer of the wrapped
// ListerWatcher, so that the reflector streams its lists (watch-list) when
// that client can.
func (l *FilteredListerWatcher) IsWatchListSemanticsUnSupported() bool { return l.noWatchList }

// rangeFor returns the range that decides whether obj is kept, -1 when it is
// kept whatever the ranges, and its key ("" for an object without a
// namespace, always kept and never mirrored).
func (l *FilteredListerWatcher) rangeFor(obj runtime.Object) (key string, rng int) {
	m, err := meta.Accessor(obj)
	if err != nil || m.GetNamespace() == "" {
		return "", -1
	}
	ns := m.GetNamespace()
	key = ns + "/" + m.GetName()
	if l.scope != nil {
		var always bool
		if ns, always = l.scope(m); always {
			return key, -1
		}
	}
	return key, RangeOf(ns, l.filter.ranges)
}

func (l *FilteredListerWatcher) keep(obj runtime.Object, set map[int]bool) bool {
	_, rng := l.rangeFor(obj)
	return rng < 0 || set[rng]
}

// remember records that obj (kept) goes to the informer: into the list being
// collected when collecting, else into the mirror of the store.
func (l *FilteredListerWatcher) remember(obj runtime.Object, collecting bool) {
	key, rng := l.rangeFor(obj)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.proto == nil {
		l.proto = emptyLike(obj)
	}
	if key == "" {
		return
	}
	if collecting {
		if l.listing == nil {
			l.listing = map[string]int{}
		}
		l.listing[key] = rng
		return
	}
	if l.held == nil {
		l.held = map[string]int{}
	}
	l.held[key] = rng
}

// forget records that obj left the informer's store (or the list being
// collected); it reports whether it was there.
func (l *FilteredListerWatcher) forget(obj runtime.Object, collecting bool) bool {
	m, err := meta.Accessor(obj)
	if err != nil {
		return false
	}
	key := m.GetNamespace() + "/" + m.GetName()
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := l.held
	if collecting {
		keys = l.listing
	}
	_, ok := keys[key]
	delete(keys, key)
	return ok
}

// startList begins collecting the keys of a new list; listDone makes them the
// mirror of the store, which the list replaces.
func (l *FilteredListerWatcher) startList() {
	l.mu.Lock()
	l.listing = map[string]int{}
	l.mu.Unlock()
}

func (l *FilteredListerWatcher) listDone() {
	l.mu.Lock()
	l.held, l.listing = l.listing, nil
	l.mu.Unlock()
}

// dropRanges removes from the mirror the objects of ranges not in set and
// returns their keys.
func (l *FilteredListerWatcher) dropRanges(set map[int]bool) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for key, rng := range l.held {
		if rng >= 0 && !set[rng] {
			out = append(out, key)
			delete(l.held, key)
		}
	}
	slices.Sort(out)
	return out
}

// tombstone returns an object of the informer's type named by key, at
// resourceVersion rv, for a delete event: the store deletes by key.
func (l *FilteredListerWatcher) tombstone(key, rv string) runtime.Object {
	l.mu.Lock()
	proto := l.proto
	l.mu.Unlock()
	obj := proto.DeepCopyObject()
	m, err := meta.Accessor(obj)
	if err == nil {
		ns, name, _ := strings.Cut(key, "/")
		m.SetNamespace(ns)
		m.SetName(name)
		m.SetResourceVersion(rv)
	}
	return obj
}

// emptyLike returns an empty object of obj's type, with its kind.
func emptyLike(obj runtime.Object) runtime.Object {
	t := reflect.TypeOf(obj)
	if t.Kind() != reflect.Pointer {
		return obj.DeepCopyObject()
	}
	out, ok := reflect.New(t.Elem()).Interface().(runtime.Object)
	if !ok {
		return obj.DeepCopyObject()
	}
	out.GetObjectKind().SetGroupVersionKind(obj.GetObjectKind().GroupVersionKind())
	return out
}

// List lists through ListWithContext.
func (l *FilteredListerWatcher) List(options metav1.ListOptions) (runtime.Object, error) {
	return l.ListWithContext(context.Background(), options)
}

// Watch watches through WatchWithContext.
func (l *FilteredListerWatcher) Watch(options metav1.ListOptions) (watch.Interface, error) {
	return l.WatchWithContext(context.Background(), options)
}

// ListWithContext lists and keeps the objects of the ranges cached. A list
// whose last page is returned makes the informer's store reflect them.
func (l *FilteredListerWatcher) ListWithContext(ctx context.Context, options metav1.ListOptions) (runtime.Object, error) {
	gen, set := l.filter.snapshot()
	if options.Continue == "" {
		l.pageGen = gen
		l.startList()
	} else if l.pageGen != gen {
		l.pageGen = 0
	}
	list, err := l.lw.ListWithContext(ctx, options)
	if err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	kept := items[:0]
	for _, o := range items {
		if l.keep(o, set) {
			kept = append(kept, o)
			l.remember(o, true)
		}
	}
	if err := meta.SetList(list, kept); err != nil {
		return nil, err
	}
	if m, err := meta.ListAccessor(list); err == nil && m.GetContinue() == "" {
		l.listDone()
		l.filter.listed(l, l.pageGen)
	}
	return list, nil
}

// WatchWithContext watches and passes on the events of the objects kept. A
// watch that does not start with its own list (sendInitialEvents) while the
// store reflects other ranges than the current ones ends at once with 410
// Expired: the reflector lists again.
func (l *FilteredListerWatcher) WatchWithContext(ctx context.Context, options metav1.ListOptions) (watch.Interface, error) {
	gen, set := l.filter.snapshot()
	listing := options.SendInitialEvents != nil && *options.SendInitialEvents
	if !listing && l.filter.listGen(l) != gen {
		return expiredWatch(), nil
	}
	if listing {
		l.startList()
	}
	inner, err := l.lw.WatchWithContext(ctx, options)
	if err != nil {
		return nil, err
	}
	w := &filteredWatch{l: l, inner: inner, gen: gen, set: set, listing: listing, lastRV: options.ResourceVersion,
		out: make(chan watch.Event), stop: make(chan struct{}), expired: make(chan struct{}), narrowed: make(chan struct{}, 1)}
	l.filter.mu.Lock()
	l.filter.watches[w] = struct{}{}
	changed := l.filter.gen != gen
	l.filter.mu.Unlock()
	if changed {
		w.expire()
	}
	go w.run()
	return w, nil
}

// expiredStatus is what a watch ended by a change of ranges reports.
func expiredStatus() *metav1.Status {
	return &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusGone, Reason: metav1.StatusReasonExpired,
		Message: "the ranges of namespaces cached changed: list again"}
}

func expiredWatch() watch.Interface {
	w := watch.NewFakeWithChanSize(1, false)
	w.Error(expiredStatus())
	return w
}

type filteredWatch struct {
	l     *FilteredListerWatcher
	inner watch.Interface

	// mu guards gen, set and listing: the ranges the watch passes (the
	// newest asked for) and whether it still streams its initial list.
	// narrowed tells run that set lost ranges, whose objects it must
	// delete from the store.
	mu       sync.Mutex
	gen      uint64
	set      map[int]bool
	listing  bool
	narrowed chan struct{}
	// lastRV is the resourceVersion of the last event from the API server
	// (run's own), given to the delete events run makes.
	lastRV string

	out      chan watch.Event
	stop     chan struct{}
	stopOnce sync.Once
	expired  chan struct{}
	expOnce  sync.Once
}

func (w *filteredWatch) ResultChan() <-chan watch.Event { return w.out }

func (w *filteredWatch) Stop() { w.stopOnce.Do(func() { close(w.stop) }) }

func (w *filteredWatch) expire() { w.expOnce.Do(func() { close(w.expired) }) }

// follow moves the watch to the ranges of generation gen: when they only
// drop ranges of the watch's and its initial list has ended, run deletes the
// objects of those ranges from the store and the watch goes on; otherwise it
// ends with 410 Expired, and the informer lists again.
func (w *filteredWatch) follow(gen uint64, next map[int]bool) {
	w.mu.Lock()
	if gen <= w.gen {
		w.mu.Unlock()
		return
	}
	narrow := !w.listing
	for r := range next {
		if !w.set[r] {
			narrow = false
		}
	}
	if narrow {
		w.gen, w.set = gen, next
	}
	w.mu.Unlock()
	if !narrow {
		w.expire()
		return
	}
	select {
	case w.narrowed <- struct{}{}:
	default:
	}
}

func (w *filteredWatch) ranges() (uint64, map[int]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gen, w.set
}

// narrow sends a delete event for each object of the store whose range the
// watch no longer passes, then records that the store reflects the watch's
// ranges.
func (w *filteredWatch) narrow() bool {
	gen, set := w.ranges()
	for _, key := range w.l.dropRanges(set) {
		if !w.send(watch.Event{Type: watch.Deleted, Object: w.l.tombstone(key, w.lastRV)}) {
			return false
		}
	}
	w.l.filter.listed(w.l, gen)
	return true
}

func (w *filteredWatch) send(ev watch.Event) bool {
	select {
	case w.out <- ev:
		return true
	case <-w.stop:
		return false
	}
}

func (w *filteredWatch) run() {
	defer func() {
		w.inner.Stop()
		w.l.filter.mu.Lock()
		delete(w.l.filter.watches, w)
		w.l.filter.mu.Unlock()
		close(w.out)
	}()
	for {
		select {
		case <-w.stop:
			return
		case <-w.expired:
			w.send(watch.Event{Type: watch.Error, Object: expiredStatus()})
			return
		case <-w.narrowed:
			if !w.narrow() {
				return
			}
		case ev, ok := <-w.inner.ResultChan():
			if !ok {
				return
			}
			if ev.Type != watch.Error {
				if m, err := meta.Accessor(ev.Object); err == nil && m.GetResourceVersion() != "" {
					w.lastRV = m.GetResourceVersion()
				}
			}
			if !w.pass(ev) {
				return
			}
		}
	}
}

// pass sends ev on when its object is kept; an object that is not kept any
// more but is in the store is sent as deleted.
func (w *filteredWatch) pass(ev watch.Event) bool {
	w.mu.Lock()
	gen, set, listing := w.gen, w.set, w.listing
	w.mu.Unlock()
	switch ev.Type {
	case watch.Added:
		if !w.l.keep(ev.Object, set) {
			return true
		}
		w.l.remember(ev.Object, listing)
	case watch.Modified:
		if !w.l.keep(ev.Object, set) {
			if !w.l.forget(ev.Object, listing) {
				return true
			}
			ev.Type = watch.Deleted
		} else {
			w.l.remember(ev.Object, listing)
		}
	case watch.Deleted:
		if !w.l.forget(ev.Object, listing) && !w.l.keep(ev.Object, set) {
			return true
		}
	case watch.Bookmark:
		if !w.send(ev) {
			return false
		}
		if listing {
			if m, err := meta.Accessor(ev.Object); err == nil && m.GetAnnotations()[metav1.InitialEventsAnnotationKey] == "true" {
				w.mu.Lock()
				w.listing = false
				w.mu.Unlock()
				w.l.listDone()
				w.l.filter.listed(w.l, gen)
			}
		}
		return true
	}
	return w.send(ev)
}
