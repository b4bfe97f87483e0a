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
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/watchlist"
	"k8s.io/utils/clock"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// CacheFilter narrows informers to the namespaces of the ranges this replica
// holds, on the client side: each informer's lists and watches pass through
// a FilteredListerWatcher that drops the objects of the other ranges before
// they reach the informer's store. When the ranges change, each running
// watch follows them without a new list of everything: the objects of a
// range given up leave the store as delete events, those of a range taken
// are listed apart and enter it as add events, which queue them.
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
	// namespaces, when set, lists the cluster's namespaces from the API
	// server: the ranges taken can then be listed namespace by namespace
	// (see ListRangesByNamespace).
	namespaces func(context.Context) ([]string, error)
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

// SetRanges sets the ranges to cache. Each running filtered watch follows:
// the objects of ranges given up leave its informer's store by delete
// events, those of ranges taken are listed and enter it by add events, and
// the watch goes on (see filteredWatch).
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

// ListNamespacesWith gives the filter a way to list the cluster's
// namespaces from the API server (not from a cache, which may lag), so that
// the ListerWatchers made with ListRangesByNamespace can list a range taken
// namespace by namespace. Call it before the informers start.
func (f *CacheFilter) ListNamespacesWith(list func(context.Context) ([]string, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.namespaces = list
}

func (f *CacheFilter) namespaceLister() func(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.namespaces
}

// Ranges returns the ranges cached, sorted.
func (f *CacheFilter) Ranges() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedRanges(f.set)
}

// CachedRanges returns how many of the ranges cached every filtered informer
// has listed: the ranges this replica can serve from its cache.
func (f *CacheFilter) CachedRanges() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.complete)
}

// CachedRange reports whether range rng is cached by every filtered
// informer: each has listed it since it was asked for.
func (f *CacheFilter) CachedRange(rng int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.complete[rng]
	return ok
}

func sortedRanges(set map[int]bool) []int {
	out := make([]int, 0, len(set))
	for r := range set {
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

// listed records that l's store now reflects set, the ranges of generation
// gen, and marks the ranges every informer has listed.
func (f *CacheFilter) listed(l *FilteredListerWatcher, gen uint64, set map[int]bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l.listGen, l.listSet = gen, set
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

// stored returns the generation and ranges l's store reflects.
func (f *CacheFilter) stored(l *FilteredListerWatcher) (uint64, map[int]bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return l.listGen, l.listSet
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
	// skip (under mu) holds, for ranges loaded into a running watch by a
	// list, the list's resourceVersion: the watch's events of those ranges
	// up to it are older than what the store holds, and are dropped.
	skip map[int]string
	// listGen and listSet (under filter.mu) are the generation and the
	// ranges the informer's store reflects (zero: none yet).
	listGen uint64
	listSet map[int]bool
	// pageGen and pageSet are the ranges the list being paged filters with,
	// from its first page to its last.
	pageGen uint64
	pageSet map[int]bool
	// onlyIn, when set, are the namespaces that hold every object kept
	// whatever the ranges (see FirstListOnlyIn).
	onlyIn []string
	// carried (under mu) is what a watch that ended left of the ranges it
	// was listing, for the next watch to take on.
	carried *carriedLoad
	// byNamespace lists a range taken namespace by namespace when that
	// reads less than a list of every object; alsoIn are namespaces read
	// whole each time, whose objects scope may put in any range.
	byNamespace bool
	alsoIn      []string
	// total is how many objects of the kind the last list of all of them
	// read (0: none yet), to weigh a list by namespace against it; paged
	// counts them over the pages of the informer's list.
	total atomic.Int64
	paged int
}

// carriedLoad is the listing of ranges taken that outlives the watch that
// started it: the API server ends a watch after 5 to 10 minutes, and a list
// of every object of a kind can take longer than that on a busy control
// plane; restarted by each new watch, it would never end. The next watch
// (which resumes where the reflector's resourceVersion is) takes on the
// ranges being listed, the list running and the events held back; any it
// delivers again are ordered against the list like the others.
type carriedLoad struct {
	loading, queued map[int]bool
	inFlight        bool
	buffer          []watch.Event
	loaded          chan loadResult
	cancel          context.CancelFunc
}

// carry keeps c for the next watch, dropping what an earlier one left.
func (l *FilteredListerWatcher) carry(c *carriedLoad) {
	l.mu.Lock()
	old := l.carried
	l.carried = c
	l.mu.Unlock()
	if old != nil && old.cancel != nil {
		old.cancel()
	}
}

// takeCarried returns what the last watch left, once.
func (l *FilteredListerWatcher) takeCarried() *carriedLoad {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.carried
	l.carried = nil
	return c
}

// FirstListOnlyIn makes a list made while no range is cached (a new
// replica's first, before it holds anything) read only namespaces, where
// every object this ListerWatcher keeps whatever the ranges lives (scope
// never keeps an object of another namespace whatever the ranges): a list
// of all objects would keep none of the others. The namespaces are read one
// after the other at the first one's resourceVersion, so that the list is
// one snapshot the watch follows on from. The informer then lists rather
// than streams (watch-list), as a stream cannot be narrowed this way.
func (l *FilteredListerWatcher) FirstListOnlyIn(namespaces ...string) *FilteredListerWatcher {
	l.onlyIn = slices.Clone(namespaces)
	return l
}

// ListRangesByNamespace makes the lists of ranges taken read only the
// namespaces of those ranges, one list each (and the namespaces of alsoIn
// whole: scope may put an object of those in any range; of the others it
// must put every object in its own namespace's range), rather than every
// object of the kind, when that is cheaper: with the filter's namespace
// lister (ListNamespacesWith), and when the namespaces to read, weighed at
// namespaceListCost objects each, are fewer than the objects of the kind.
// The namespaces are read at one resourceVersion, so that the lists are one
// snapshot, as a list of everything is.
func (l *FilteredListerWatcher) ListRangesByNamespace(alsoIn ...string) *FilteredListerWatcher {
	l.byNamespace, l.alsoIn = true, slices.Clone(alsoIn)
	return l
}

// IsWatchListSemanticsUnSupported passes on the answer of the wrapped
// ListerWatcher, so that the reflector streams its lists (watch-list) when
// that client can.
func (l *FilteredListerWatcher) IsWatchListSemanticsUnSupported() bool {
	return l.noWatchList || l.onlyIn != nil
}

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
	l.rememberKey(obj, key, rng, collecting)
}

// rememberKey is remember with obj's key and range already known: once an
// object is sent to the informer it is the informer's (its transforms
// change it), and is not read again.
func (l *FilteredListerWatcher) rememberKey(obj runtime.Object, key string, rng int, collecting bool) {
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
	l.listing, l.skip = map[string]int{}, nil
	l.mu.Unlock()
	// A list of every range replaces the store: what a watch left listing
	// is in it.
	l.carry(nil)
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
	if options.Continue == "" || l.pageSet == nil {
		l.pageGen, l.pageSet = l.filter.snapshot()
		l.startList()
	}
	set := l.pageSet
	var list runtime.Object
	var err error
	// whole: the list reads every object of the kind (counted for total).
	whole := false
	switch {
	case len(set) == 0 && l.onlyIn != nil && options.Continue == "":
		list, err = l.listOnlyIn(ctx, options)
	case options.Limit == 0 && options.Continue == "" && options.ResourceVersion != "" && options.ResourceVersion != "0":
		list, err = l.listInPages(ctx, options, set)
	default:
		list, err = l.lw.ListWithContext(ctx, options)
		whole = options.FieldSelector == "" && options.LabelSelector == ""
	}
	if err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	if options.Continue == "" {
		l.paged = 0
	}
	l.paged += len(items)
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
		if whole {
			l.total.Store(int64(l.paged))
		}
		l.listDone()
		l.filter.listed(l, l.pageGen, set)
		l.pageSet = nil
	}
	return list, nil
}

// listInPages reads page by page a list asked for whole from a
// resourceVersion (the reflector relists so, without a limit, so that the
// API server's watch cache answers in one response; its other lists are
// paged), and returns the objects of set's ranges in one list at the first
// page's resourceVersion. One response of every object of the kind must
// reach the replica within the API server's request timeout (a minute by
// default): at 100,000 AccessTokens on a busy control plane it did not, the
// connection was cut, and the reflector tried again for ever while the
// replica served none of its ranges. Pages also keep only the replica's
// share in memory, not the whole list. A list whose continue token expires
// fails as a list does; the reflector lists again.
func (l *FilteredListerWatcher) listInPages(ctx context.Context, options metav1.ListOptions, set map[int]bool) (runtime.Object, error) {
	o := options
	o.Limit = loadPageSize
	if o.ResourceVersion != "" && o.ResourceVersionMatch == "" {
		// What the reflector's resourceVersion means without a limit.
		o.ResourceVersionMatch = metav1.ResourceVersionMatchNotOlderThan
	}
	var out runtime.Object
	var kept []runtime.Object
	read := 0
	err := l.eachPage(ctx, o, func(page runtime.Object, _ metav1.ListInterface, items []runtime.Object) {
		read += len(items)
		for _, obj := range items {
			if l.keep(obj, set) {
				kept = append(kept, obj)
			}
		}
		if out == nil {
			out = page
		}
	})
	if err != nil {
		return nil, err
	}
	if options.FieldSelector == "" && options.LabelSelector == "" {
		l.total.Store(int64(read))
	}
	return oneList(out, kept, "")
}

// eachPage lists with o page by page, to the last, and calls visit with
// each page, its list metadata and its objects, each with memory of its own
// (an element of the page would keep the whole page alive, every range's
// objects, in the cache). The pages after the first continue at its
// resourceVersion.
func (l *FilteredListerWatcher) eachPage(ctx context.Context, o metav1.ListOptions, visit func(page runtime.Object, m metav1.ListInterface, items []runtime.Object)) error {
	for {
		page, err := l.lw.ListWithContext(ctx, o)
		if err != nil {
			return err
		}
		items, err := meta.ExtractListWithAlloc(page)
		if err != nil {
			return err
		}
		m, err := meta.ListAccessor(page)
		if err != nil {
			return err
		}
		visit(page, m, items)
		if o.Continue = m.GetContinue(); o.Continue == "" {
			return nil
		}
		o.ResourceVersion, o.ResourceVersionMatch = "", ""
	}
}

// oneList makes out, the first page of a list, hold items as the whole
// list: no continue, and at resourceVersion rv when rv is set.
func oneList(out runtime.Object, items []runtime.Object, rv string) (runtime.Object, error) {
	if err := meta.SetList(out, items); err != nil {
		return nil, err
	}
	m, err := meta.ListAccessor(out)
	if err != nil {
		return nil, err
	}
	if rv != "" {
		m.SetResourceVersion(rv)
	}
	m.SetContinue("")
	return out, nil
}

// listOnlyIn lists the namespaces of onlyIn, the first with options, the
// others at the first's resourceVersion exactly, and returns their objects
// in one list at that resourceVersion.
func (l *FilteredListerWatcher) listOnlyIn(ctx context.Context, options metav1.ListOptions) (runtime.Object, error) {
	var out runtime.Object
	var items []runtime.Object
	rv := ""
	for i, ns := range l.onlyIn {
		o := options
		o.FieldSelector = fields.OneTermEqualSelector("metadata.namespace", ns).String()
		if options.FieldSelector != "" {
			o.FieldSelector = options.FieldSelector + "," + o.FieldSelector
		}
		if i > 0 {
			o.ResourceVersion, o.ResourceVersionMatch = rv, metav1.ResourceVersionMatchExact
		}
		err := l.eachPage(ctx, o, func(page runtime.Object, m metav1.ListInterface, objs []runtime.Object) {
			items = append(items, objs...)
			if out == nil {
				out, rv = page, m.GetResourceVersion()
			}
		})
		if err != nil && i > 0 {
			// The snapshot cannot be read (compacted since, say): a list of
			// everything, as without onlyIn.
			return l.lw.ListWithContext(ctx, options)
		}
		if err != nil {
			return nil, err
		}
	}
	if out == nil {
		return l.lw.ListWithContext(ctx, options)
	}
	return oneList(out, items, rv)
}

// WatchWithContext watches and passes on the events of the objects kept. A
// watch that does not start with its own list (sendInitialEvents) starts
// from the ranges the informer's store reflects, and follows the ranges from
// there (see follow); one before any list ends at once with 410 Expired: the
// reflector lists.
func (l *FilteredListerWatcher) WatchWithContext(ctx context.Context, options metav1.ListOptions) (watch.Interface, error) {
	gen, set := l.filter.snapshot()
	listing := options.SendInitialEvents != nil && *options.SendInitialEvents
	if !listing {
		if gen, set = l.filter.stored(l); gen == 0 {
			return expiredWatch(), nil
		}
	} else {
		l.startList()
	}
	inner, err := l.lw.WatchWithContext(ctx, options)
	if err != nil {
		return nil, err
	}
	w := &filteredWatch{l: l, inner: inner, gen: gen, set: set, applied: gen, loading: map[int]bool{}, queued: map[int]bool{},
		wantGen: gen, want: set, listing: listing, lastRV: options.ResourceVersion,
		countable: options.FieldSelector == "" && options.LabelSelector == "",
		out:       make(chan watch.Event), stop: make(chan struct{}), expired: make(chan struct{}),
		changed: make(chan struct{}, 1), loaded: make(chan loadResult, 1)}
	if c := l.takeCarried(); c != nil && !listing {
		w.loading, w.queued, w.inFlight, w.buffer, w.loaded, w.loadCancel = c.loading, c.queued, c.inFlight, c.buffer, c.loaded, c.cancel
	} else if c != nil && c.cancel != nil {
		c.cancel()
	}
	l.filter.mu.Lock()
	l.filter.watches[w] = struct{}{}
	gen, set = l.filter.gen, l.filter.set
	l.filter.mu.Unlock()
	w.follow(gen, set)
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

// maxBuffered bounds the events a watch holds back while it lists ranges
// taken. When the buffer is full, only the last event of each object is
// kept (what the store needs once the list is in); when that leaves more than
// three quarters of it, the watch ends and the informer lists everything
// again.
const maxBuffered = 10000

// loadPageSize is the page size of the lists of ranges taken.
const loadPageSize = 500

// loadResult is a list of ranges taken: the objects of those ranges and the
// list's resourceVersion.
type loadResult struct {
	ranges map[int]bool
	objs   []runtime.Object
	rv     string
	err    error
	// listed is how many objects the list read, of every range; took how
	// long it ran; namespaces how many namespaces it read one by one (0:
	// it read every object of the kind).
	listed     int
	took       time.Duration
	kind       string
	namespaces int
}

// filteredWatch passes on the events of the ranges its informer's store
// holds, and follows the ranges as they change: the objects of ranges given
// up leave the store by delete events; the objects of ranges taken are
// listed apart and enter it by add events, while the watch goes on for the
// other ranges. The store is never replaced, so the ranges kept are served
// all along, and a list is never thrown away because the ranges changed
// again meanwhile.
type filteredWatch struct {
	l     *FilteredListerWatcher
	inner watch.Interface
	// loadCancel cancels the list of ranges taken running, if any.
	loadCancel context.CancelFunc

	// Owned by run: gen and set are the generation and ranges the store
	// reflects; applied the generation set and loading were last moved to;
	// loading the ranges taken and being listed (their events are
	// held in buffer meanwhile), queued those to list once the list running
	// ends; listing is set until the initial events of a watch-list end;
	// lastRV is the resourceVersion of the last event from the API server.
	gen      uint64
	set      map[int]bool
	applied  uint64
	loading  map[int]bool
	queued   map[int]bool
	inFlight bool
	buffer   []watch.Event
	listing  bool
	// streamed counts the objects of the initial events (of every range),
	// for the ListerWatcher's total; countable when the watch selects none.
	streamed  int
	countable bool
	lastRV    string

	// mu guards want and wantGen, the newest ranges asked for; changed
	// tells run.
	mu      sync.Mutex
	wantGen uint64
	want    map[int]bool
	changed chan struct{}
	loaded  chan loadResult

	out      chan watch.Event
	stop     chan struct{}
	stopOnce sync.Once
	expired  chan struct{}
	expOnce  sync.Once
}

func (w *filteredWatch) ResultChan() <-chan watch.Event { return w.out }

func (w *filteredWatch) Stop() { w.stopOnce.Do(func() { close(w.stop) }) }

func (w *filteredWatch) expire() { w.expOnce.Do(func() { close(w.expired) }) }

// follow asks the watch to move to set, the ranges of generation gen.
func (w *filteredWatch) follow(gen uint64, set map[int]bool) {
	w.mu.Lock()
	if gen <= w.wantGen {
		w.mu.Unlock()
		return
	}
	w.wantGen, w.want = gen, set
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *filteredWatch) wanted() (uint64, map[int]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wantGen, w.want
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
	relist := false
	defer func() {
		w.inner.Stop()
		w.l.filter.mu.Lock()
		delete(w.l.filter.watches, w)
		w.l.filter.mu.Unlock()
		w.handOff(relist)
		close(w.out)
	}()
	for {
		select {
		case <-w.stop:
			return
		case <-w.expired:
			relist = true
			w.send(watch.Event{Type: watch.Error, Object: expiredStatus()})
			return
		case <-w.changed:
			if !w.apply() {
				return
			}
		case res := <-w.loaded:
			if !w.inject(res) {
				return
			}
		case ev, ok := <-w.inner.ResultChan():
			if !ok {
				return
			}
			if ev.Type != watch.Error {
				if m, err := meta.Accessor(ev.Object); err == nil && m.GetResourceVersion() != "" {
					w.lastRV = m.GetResourceVersion()
					w.l.passed(w.lastRV)
				}
			}
			if !w.pass(ev) {
				return
			}
		}
	}
}

// handOff leaves the ranges being listed to the next watch (see
// carriedLoad), unless the informer lists everything again (relist).
func (w *filteredWatch) handOff(relist bool) {
	if relist || len(w.loading) == 0 {
		if w.inFlight && w.loadCancel != nil {
			w.loadCancel()
		}
		return
	}
	w.l.carry(&carriedLoad{loading: w.loading, queued: w.queued, inFlight: w.inFlight, buffer: w.buffer,
		loaded: w.loaded, cancel: w.loadCancel})
}

// apply moves the watch towards the ranges asked for: the objects of ranges
// given up leave the store (delete events at the watch's resourceVersion;
// the store deletes by key), ranges taken are queued to be listed.
func (w *filteredWatch) apply() bool {
	if w.listing {
		return true // once the initial events have ended
	}
	wantGen, want := w.wanted()
	set := make(map[int]bool, len(want))
	for r := range w.set {
		if want[r] {
			set[r] = true
		}
	}
	w.set = set
	for r := range w.loading {
		if !want[r] {
			delete(w.loading, r)
			delete(w.queued, r)
		}
	}
	if len(w.buffer) > 0 {
		kept := w.buffer[:0]
		for _, ev := range w.buffer {
			if _, rng := w.l.rangeFor(ev.Object); w.loading[rng] {
				kept = append(kept, ev)
			}
		}
		w.buffer = kept
	}
	for _, key := range w.l.dropRanges(set) {
		if !w.send(watch.Event{Type: watch.Deleted, Object: w.l.tombstone(key, w.lastRV)}) {
			return false
		}
	}
	for r := range want {
		if !set[r] && !w.loading[r] {
			w.loading[r], w.queued[r] = true, true
		}
	}
	w.applied = wantGen
	w.startLoad()
	w.settled()
	return true
}

// settled records the ranges the store reflects once nothing is loading:
// those of the generation last applied (a newer one may be waiting in
// changed, and is not reflected yet).
func (w *filteredWatch) settled() {
	if len(w.loading) == 0 && !w.listing {
		w.gen = w.applied
		w.l.filter.listed(w.l, w.gen, w.set)
	}
}

// startLoad lists the ranges queued, unless a list is running.
func (w *filteredWatch) startLoad() {
	if w.inFlight || len(w.queued) == 0 {
		return
	}
	ranges := w.queued
	w.queued, w.inFlight = map[int]bool{}, true
	// The list belongs to no watch: it goes on when this one ends (see
	// handOff), and its result waits for the watch that takes it on.
	ctx, cancel := context.WithCancel(context.Background())
	w.loadCancel = cancel
	loaded := w.loaded
	go func() {
		defer cancel()
		res := w.l.listRanges(ctx, ranges)
		select {
		case loaded <- res:
		case <-ctx.Done():
		}
	}()
}

// inject adds the objects of ranges taken to the store, then the events of
// those ranges held back while they were listed that are newer than the
// list, and serves them from then on.
func (w *filteredWatch) inject(res loadResult) bool {
	w.inFlight = false
	log := logf.Log.WithName("cache").WithValues("kind", res.kind, "ranges", sortedRanges(res.ranges))
	if _, err := resourceversion.CompareResourceVersion(res.rv, res.rv); res.err != nil || err != nil {
		// Without a list, or a resourceVersion to order it against the
		// watch's events, the informer lists everything again.
		if err == nil {
			err = res.err
		}
		log.Error(err, "listing the ranges taken failed: the cache lists everything again")
		w.expire()
		return true
	}
	log.Info("ranges taken listed into the cache", "kept", len(res.objs), "listed", res.listed,
		"namespaces", res.namespaces, "seconds", res.took.Round(time.Millisecond).Seconds())
	// A range given up and taken again while the list ran is listed again:
	// the events of the meantime were not held back for it.
	ranges := map[int]bool{}
	for r := range res.ranges {
		if w.loading[r] && !w.queued[r] {
			ranges[r] = true
		}
	}
	sent := false
	for _, obj := range res.objs {
		if key, rng := w.l.rangeFor(obj); ranges[rng] {
			w.l.rememberKey(obj, key, rng, false)
			if !w.send(watch.Event{Type: watch.Added, Object: obj}) {
				return false
			}
			sent = true
		}
	}
	set := make(map[int]bool, len(w.set)+len(ranges))
	for r := range w.set {
		set[r] = true
	}
	for r := range ranges {
		set[r] = true
		delete(w.loading, r)
		w.l.skipUpTo(r, res.rv)
	}
	w.set = set
	held := w.buffer[:0]
	var replay []watch.Event
	for _, ev := range w.buffer {
		if _, rng := w.l.rangeFor(ev.Object); ranges[rng] {
			replay = append(replay, ev)
		} else {
			held = append(held, ev)
		}
	}
	w.buffer = held
	for _, ev := range replay {
		if !w.pass(ev) {
			return false
		}
	}
	// The added objects moved the reflector's resourceVersion to theirs,
	// which may be ahead of this watch's: bring it back, so that a watch
	// started after this one misses no event of the other ranges.
	if sent && w.lastRV != "" {
		if !w.send(watch.Event{Type: watch.Bookmark, Object: w.l.tombstone("/", w.lastRV)}) {
			return false
		}
	}
	w.startLoad()
	w.settled()
	return true
}

// pass sends ev on when its object is kept; an object that is not kept any
// more but is in the store is sent as deleted. Events of ranges being listed
// are held back; those of ranges just listed that are not newer than the
// list are dropped.
func (w *filteredWatch) pass(ev watch.Event) bool {
	var key string
	rng := -1
	if w.listing && ev.Type == watch.Added {
		w.streamed++
	}
	switch ev.Type {
	case watch.Added, watch.Modified, watch.Deleted:
		key, rng = w.l.rangeFor(ev.Object)
		if rng >= 0 && w.loading[rng] {
			if len(w.buffer) >= maxBuffered {
				w.buffer = lastOfEach(w.l, w.buffer)
				if len(w.buffer) > maxBuffered*3/4 {
					logf.Log.WithName("cache").Info("too many changes of the ranges taken while they are listed: the cache lists everything again",
						"kind", kindOf(ev.Object), "objects", len(w.buffer))
					w.expire()
					return true
				}
			}
			w.buffer = append(w.buffer, ev)
			return true
		}
		if rng >= 0 && w.l.stale(rng, ev.Object) {
			return true
		}
	}
	kept := rng < 0 || w.set[rng]
	switch ev.Type {
	case watch.Added:
		if !kept {
			return true
		}
		w.l.rememberKey(ev.Object, key, rng, w.listing)
	case watch.Modified:
		if !kept {
			if !w.l.forget(ev.Object, w.listing) {
				return true
			}
			ev.Type = watch.Deleted
		} else {
			w.l.rememberKey(ev.Object, key, rng, w.listing)
		}
	case watch.Deleted:
		if !w.l.forget(ev.Object, w.listing) && !kept {
			return true
		}
	case watch.Bookmark:
		ended := false
		if m, err := meta.Accessor(ev.Object); err == nil {
			ended = m.GetAnnotations()[metav1.InitialEventsAnnotationKey] == "true"
		}
		if !w.send(ev) {
			return false
		}
		if w.listing {
			if ended {
				if w.countable {
					w.l.total.Store(int64(w.streamed))
				}
				w.listing = false
				w.l.listDone()
				w.l.filter.listed(w.l, w.gen, w.set)
				return w.apply()
			}
		}
		return true
	}
	return w.send(ev)
}

// lastOfEach keeps, in order, the last of events for each object: the
// state the store is to reach once the list that holds them back is in.
func lastOfEach(l *FilteredListerWatcher, events []watch.Event) []watch.Event {
	seen := make(map[string]bool, len(events))
	keep := make([]bool, len(events))
	n := 0
	for i := len(events) - 1; i >= 0; i-- {
		key, _ := l.rangeFor(events[i].Object)
		if !seen[key] {
			seen[key], keep[i] = true, true
			n++
		}
	}
	out := make([]watch.Event, 0, max(n, maxBuffered))
	for i, ev := range events {
		if keep[i] {
			out = append(out, ev)
		}
	}
	return out
}

// kindOf names obj's type for a log line: Secret, AccessToken.
func kindOf(obj runtime.Object) string {
	t := reflect.TypeOf(obj)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return ""
	}
	return strings.TrimSuffix(t.Name(), "List")
}

// listRanges lists the objects of ranges, page by page, from the API
// server (a consistent read, so not older than any event seen): namespace by
// namespace where that is cheaper (see ListRangesByNamespace), else every
// object of the kind, keeping those of ranges.
func (l *FilteredListerWatcher) listRanges(ctx context.Context, ranges map[int]bool) (res loadResult) {
	start := l.filter.clock.Now()
	defer func() { res.took = l.filter.clock.Since(start) }()
	if l.byNamespace {
		if byNs, ok := l.listRangesByNamespace(ctx, ranges); ok {
			return byNs
		}
	}
	res.ranges = ranges
	err := l.eachPage(ctx, metav1.ListOptions{Limit: loadPageSize}, func(page runtime.Object, m metav1.ListInterface, items []runtime.Object) {
		res.listed += len(items)
		res.objs = l.appendInRanges(res.objs, items, ranges)
		if res.rv == "" {
			res.kind, res.rv = kindOf(page), m.GetResourceVersion()
		}
	})
	if err != nil {
		res.err = err
		return res
	}
	l.total.Store(int64(res.listed))
	return res
}

// namespaceListCost is what one list request is weighed at, in objects
// read, when listing a range's namespaces one by one is weighed against a
// list of every object: each request is authenticated, authorized and
// queued by the API server apart, an object is encoded, sent and decoded.
const namespaceListCost = 20

// listRangesByNamespace lists the objects of ranges namespace by namespace:
// a consistent read of one object gives the resourceVersion to read every
// namespace at exactly (one snapshot, not older than any event seen), then
// the namespaces are listed from the API server (after that read, so that
// every namespace of the snapshot is among them; a namespace made later
// brings its objects by watch events, newer than the snapshot), and each of
// ranges' is read. It reports false, having read little, when there is no
// namespace lister, the number of objects of the kind is not known yet, or
// reading namespace by namespace would cost more than a list of everything;
// and false when a read fails (the snapshot compacted, say): the caller
// lists everything then.
func (l *FilteredListerWatcher) listRangesByNamespace(ctx context.Context, ranges map[int]bool) (res loadResult, ok bool) {
	listNamespaces := l.filter.namespaceLister()
	if listNamespaces == nil {
		return res, false
	}
	log := logf.Log.WithName("cache").WithValues("ranges", sortedRanges(ranges))
	probe, err := l.lw.ListWithContext(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		log.Info("cannot read the resourceVersion to list the ranges taken at: listing every object", "error", err.Error())
		return res, false
	}
	pm, err := meta.ListAccessor(probe)
	if err != nil || pm.GetResourceVersion() == "" {
		return res, false
	}
	total := int(l.total.Load())
	if n := pm.GetRemainingItemCount(); n != nil {
		total = meta.LenList(probe) + int(*n)
	}
	all, err := listNamespaces(ctx)
	if err != nil {
		log.Info("cannot list the namespaces of the ranges taken: listing every object", "error", err.Error())
		return res, false
	}
	seen := make(map[string]bool, len(l.alsoIn))
	var namespaces []string
	for _, ns := range l.alsoIn {
		if !seen[ns] {
			seen[ns] = true
			namespaces = append(namespaces, ns)
		}
	}
	for _, ns := range all {
		if !seen[ns] && ranges[RangeOf(ns, l.filter.ranges)] {
			seen[ns] = true
			namespaces = append(namespaces, ns)
		}
	}
	if total == 0 || len(namespaces)*namespaceListCost >= total {
		return res, false
	}
	res.ranges, res.rv, res.kind, res.namespaces = ranges, pm.GetResourceVersion(), kindOf(probe), len(namespaces)
	for _, ns := range namespaces {
		o := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.namespace", ns).String(),
			Limit: loadPageSize, ResourceVersion: res.rv, ResourceVersionMatch: metav1.ResourceVersionMatchExact}
		err := l.eachPage(ctx, o, func(_ runtime.Object, _ metav1.ListInterface, items []runtime.Object) {
			res.listed += len(items)
			res.objs = l.appendInRanges(res.objs, items, ranges)
		})
		if err != nil {
			log.Info("cannot read a namespace of the ranges taken at the snapshot: listing every object", "namespace", ns, "error", err.Error())
			return loadResult{}, false
		}
	}
	return res, true
}

// appendInRanges appends to objs the objects of items whose range is in
// ranges (not those kept whatever the ranges: the informer has them).
func (l *FilteredListerWatcher) appendInRanges(objs, items []runtime.Object, ranges map[int]bool) []runtime.Object {
	for _, o := range items {
		if _, rng := l.rangeFor(o); rng >= 0 && ranges[rng] {
			objs = append(objs, o)
		}
	}
	return objs
}

// skipUpTo drops the events of range rng up to resourceVersion rv.
func (l *FilteredListerWatcher) skipUpTo(rng int, rv string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.skip == nil {
		l.skip = map[int]string{}
	}
	l.skip[rng] = rv
}

// passed records that the watch reached rv: no later event is at or before
// it, so the ranges listed at or before rv need no skipping any more.
func (l *FilteredListerWatcher) passed(rv string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for r, upTo := range l.skip {
		if c, err := resourceversion.CompareResourceVersion(rv, upTo); err != nil || c > 0 {
			delete(l.skip, r)
		}
	}
}

// stale reports whether obj's event is not newer than the list that loaded
// its range.
func (l *FilteredListerWatcher) stale(rng int, obj runtime.Object) bool {
	l.mu.Lock()
	upTo, ok := l.skip[rng]
	l.mu.Unlock()
	if !ok {
		return false
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return false
	}
	c, err := resourceversion.CompareResourceVersion(m.GetResourceVersion(), upTo)
	return err == nil && c <= 0
}
