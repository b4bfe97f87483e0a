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
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

const (
	// LabelLease marks the Leases of sharding: RoleRange or RoleMember.
	LabelLease = "tokens.tokenmint.dev/shard-lease"
	RoleRange  = "range"
	RoleMember = "member"
	// RangeLeasePrefix and MemberLeasePrefix start the Leases' names.
	RangeLeasePrefix  = "tokenmint-range-"
	MemberLeasePrefix = "tokenmint-member-"
	// AnnotationIncoming, on a member Lease, lists the ranges that replica
	// prepares to take, AnnotationReady those of them it has cached (see
	// Options.HandoverTimeout); AnnotationLeaving marks a replica that is
	// stopping and hands every range it holds over.
	AnnotationIncoming = "tokens.tokenmint.dev/incoming-ranges"
	AnnotationReady    = "tokens.tokenmint.dev/ready-ranges"
	AnnotationLeaving  = "tokens.tokenmint.dev/leaving"
)

// Options configure a Coordinator.
type Options struct {
	// Client reads and writes Leases in Namespace; an uncached client.
	Client    client.Client
	Namespace string
	// Identity names this replica; unique among the replicas.
	Identity string
	// Ranges is the number of hash ranges of namespaces.
	Ranges int
	// LeaseDuration, RenewDeadline and RetryPeriod mean what they mean for
	// leader election: another replica takes a range over once it has seen
	// its Lease unchanged for LeaseDuration; the holder stops taking work for
	// a range it could not renew for RenewDeadline; every RetryPeriod each
	// replica renews what it holds and tries to take what it should.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Clock is the time source; nil means the real one.
	Clock clock.WithTicker
	// InFlight returns the calls to token endpoints waiting or running for the
	// namespaces of a range: a range is released only once it is zero.
	InFlight func(rng int) int
	// Acquired is called, outside any lock, for each range this replica
	// takes, and for each it serves again because a drain was undone: its
	// AccessTokens are to be queued again.
	Acquired func(rng int)
	// Draining, when set, is called, outside any lock, for each range this
	// replica starts to drain: work for it that has not started yet may be
	// dropped, as the replica that takes the range decides again, so that
	// the range is released as soon as its calls already running end.
	Draining func(rng int)
	// Changed is called, outside any lock, with the ranges this replica is
	// to cache, whenever they change: those it holds, draining ones
	// included, and those it prepares to take (see HandoverTimeout). A range
	// taken is there from the Sync that took it on at the latest, a range
	// released leaves it once drained.
	Changed func(ranges []int)
	// HandoverTimeout, when above zero, makes a handover warm: a replica
	// that is to give a range up to another (it holds more than its share,
	// or it is leaving) keeps serving it while the replica that is to take
	// it caches it, and drains it once that replica reports it cached on its
	// member Lease (AnnotationReady), or once HandoverTimeout has passed.
	// Zero drains at once: the next holder lists the range after taking it,
	// and nobody serves it meanwhile.
	HandoverTimeout time.Duration
	// Ready reports whether this replica's cache holds range rng, asked for
	// through Changed: its lists are in. Used with HandoverTimeout.
	Ready func(rng int) bool
	// Shrink, when set, is asked, outside any lock, before a drained range is
	// released, with the number of ranges this replica still holds once it
	// is: the range is released only when Shrink returns true, so that what
	// this replica has in flight fits the share of the ranges it keeps (see
	// Share) before another replica can take the range and raise its own.
	Shrink func(kept int) bool
	// Observed, when set, is called, outside any lock, at the end of every
	// Sync with the Leases of the list that are neither ranges nor members:
	// other state the replicas share, read at no extra cost.
	Observed func(leases []coordinationv1.Lease)
}

// Coordinator holds this replica's share of the ranges. Sync does one round
// of the protocol; Start runs it every RetryPeriod and releases everything on
// stop. Holds answers, for every reconcile, whether a namespace is this
// replica's to serve.
type Coordinator struct {
	opts Options

	mu   sync.RWMutex
	held map[int]*holding
	// observed holds, by Lease name, the record last seen and when this
	// replica first saw it: as in client-go's leader election, a Lease
	// expires LeaseDuration after it was last seen to change, on this
	// replica's clock, whatever the holder's clock wrote into it.
	observed map[string]observation
	members  int
	member   *coordinationv1.Lease
	// reported is what Changed was last called with.
	reported []int
	// warm are the ranges this replica prepares to take: cached ahead of
	// taking them, reported once ready on its member Lease. surplus holds,
	// for each range held that is to go to another replica, when it was
	// first seen to; leaving is set once HandOver was called, and left is
	// closed once it holds nothing more.
	warm     map[int]bool
	surplus  map[int]time.Time
	leaving  bool
	left     chan struct{}
	leftOnce sync.Once
}

type holding struct {
	// renewed is when this replica last wrote the Lease successfully.
	renewed time.Time
	// acquired is when this replica took the range.
	acquired time.Time
	// draining is set once the range is to be released: no new work starts
	// for it, and the Lease goes once its calls in flight have ended.
	draining bool
}

type observation struct {
	holder  string
	renew   time.Time
	at      time.Time
	version string
}

// New returns a Coordinator holding nothing yet.
func New(opts Options) (*Coordinator, error) {
	if opts.Ranges < 1 {
		return nil, fmt.Errorf("sharding needs at least one range, got %d", opts.Ranges)
	}
	if opts.Identity == "" || opts.Client == nil || opts.Namespace == "" {
		return nil, errors.New("sharding needs a client, a namespace and an identity")
	}
	if opts.LeaseDuration <= opts.RenewDeadline || opts.RenewDeadline <= opts.RetryPeriod || opts.RetryPeriod <= 0 {
		return nil, errors.New("sharding needs lease duration > renew deadline > retry period > 0")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.InFlight == nil {
		opts.InFlight = func(int) int { return 0 }
	}
	return &Coordinator{opts: opts, held: map[int]*holding{}, observed: map[string]observation{}, warm: map[int]bool{},
		surplus: map[int]time.Time{}, left: make(chan struct{})}, nil
}

// Ranges is the number of ranges.
func (c *Coordinator) Ranges() int { return c.opts.Ranges }

// Identity is this replica's identity.
func (c *Coordinator) Identity() string { return c.opts.Identity }

// RangeOf returns namespace's range.
func (c *Coordinator) RangeOf(namespace string) int { return RangeOf(namespace, c.opts.Ranges) }

// Holds reports whether this replica serves namespace now: it holds the
// range, is not draining it, and renewed its Lease within RenewDeadline. A
// nil Coordinator (sharding off) holds everything.
func (c *Coordinator) Holds(namespace string) bool {
	if c == nil {
		return true
	}
	return c.HoldsRange(c.RangeOf(namespace))
}

// HoldsRange is Holds for a range.
func (c *Coordinator) HoldsRange(rng int) bool {
	now := c.opts.Clock.Now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	h := c.held[rng]
	return h != nil && !h.draining && now.Sub(h.renewed) <= c.opts.RenewDeadline
}

// Owns reports whether this replica holds namespace's range and is not
// giving it up, whether or not its last renewal is recent enough to serve
// (see Holds): a reconcile turned away only because a renewal is late is to
// be tried again, as the range is served again once the renewal lands, and
// nothing else queues its AccessTokens then. A nil Coordinator owns
// everything.
func (c *Coordinator) Owns(namespace string) bool {
	if c == nil {
		return true
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	h := c.held[c.RangeOf(namespace)]
	return h != nil && !h.draining
}

// Recent reports whether this replica took namespace's range less than a
// LeaseDuration ago: its cache may not show yet what the previous holder
// wrote last, so a decision to mint is confirmed against the API server.
func (c *Coordinator) Recent(namespace string) bool {
	if c == nil {
		return false
	}
	now := c.opts.Clock.Now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	h := c.held[c.RangeOf(namespace)]
	return h != nil && now.Sub(h.acquired) < c.opts.LeaseDuration
}

// Serving returns the number of ranges this replica serves now (see
// HoldsRange): a range being drained no longer counts, a range taken counts
// from the moment its Lease is written.
func (c *Coordinator) Serving() int {
	now := c.opts.Clock.Now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, h := range c.held {
		if !h.draining && now.Sub(h.renewed) <= c.opts.RenewDeadline {
			n++
		}
	}
	return n
}

// kept returns the ranges this replica holds, drained or not, other than
// rng: those whose Lease it renewed within RenewDeadline, which no other
// replica can have taken.
func (c *Coordinator) kept(rng int) int {
	now := c.opts.Clock.Now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for r, h := range c.held {
		if r != rng && now.Sub(h.renewed) <= c.opts.RenewDeadline {
			n++
		}
	}
	return n
}

// releasable reports whether a draining range may go: its calls have ended,
// and what is left in flight fits the share of the ranges kept.
func (c *Coordinator) releasable(rng int) bool {
	if c.opts.InFlight(rng) != 0 {
		return false
	}
	return c.opts.Shrink == nil || c.opts.Shrink(c.kept(rng))
}

// Held returns the ranges this replica serves now, sorted.
func (c *Coordinator) Held() []int {
	var out []int
	for rng := range c.opts.Ranges {
		if c.HoldsRange(rng) {
			out = append(out, rng)
		}
	}
	return out
}

// Incoming returns the ranges this replica prepares to take (see
// Options.HandoverTimeout), sorted.
func (c *Coordinator) Incoming() []int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return sortedRanges(c.warm)
}

// Members returns the number of live replicas seen at the last Sync.
func (c *Coordinator) Members() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.members
}

// NeedLeaderElection: every replica runs its share.
func (c *Coordinator) NeedLeaderElection() bool { return false }

// Start syncs every RetryPeriod until ctx ends, then drains and releases
// every range and removes this replica's member Lease.
func (c *Coordinator) Start(ctx context.Context) error {
	log := logf.FromContext(ctx).WithName("sharding")
	ticker := c.opts.Clock.NewTicker(c.opts.RetryPeriod)
	defer ticker.Stop()
	for {
		if err := c.Sync(ctx); err != nil && ctx.Err() == nil {
			log.Error(err, "syncing shard leases")
		}
		select {
		case <-ctx.Done():
			c.stop(log)
			return nil
		case <-ticker.C():
		}
	}
}

// stop drains every range, waiting for its calls in flight up to
// RenewDeadline (on the real clock: the manager is shutting down), and
// releases the Leases of those drained. A range whose calls still run is
// left to expire: its next holder waits LeaseDuration.
func (c *Coordinator) stop(log interface{ Error(error, string, ...any) }) {
	c.mu.Lock()
	var began []int
	for rng, h := range c.held {
		if !h.draining {
			began = append(began, rng)
		}
		h.draining = true
	}
	c.mu.Unlock()
	c.reportDraining(began)
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.RenewDeadline)
	defer cancel()
	for {
		c.mu.RLock()
		ranges := make([]int, 0, len(c.held))
		for rng := range c.held {
			ranges = append(ranges, rng)
		}
		c.mu.RUnlock()
		for _, rng := range ranges {
			if c.releasable(rng) {
				if err := c.release(ctx, rng); err != nil {
					log.Error(err, "releasing range lease", "range", rng)
					c.forget(rng)
				}
			}
		}
		c.mu.RLock()
		left := len(c.held)
		c.mu.RUnlock()
		if left == 0 || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	c.reportChanged()
	member := c.memberLease()
	if err := client.IgnoreNotFound(c.opts.Client.Delete(ctx, member)); err != nil {
		log.Error(err, "removing member lease")
	}
}

// Stop is stop for tests: drain and release now.
func (c *Coordinator) Stop(ctx context.Context) {
	c.stop(logf.FromContext(ctx))
}

// Sync does one round: renew this replica's member Lease, read every shard
// Lease, renew the ranges held, release the surplus once drained, and take
// free or expired ranges up to this replica's share. With HandoverTimeout,
// a range that is to move is drained only once the replica that is to take
// it has it cached, and that replica caches it meanwhile.
func (c *Coordinator) Sync(ctx context.Context) error {
	now := c.opts.Clock.Now()
	log := logf.FromContext(ctx).WithName("sharding")
	var errs []error
	// A member Lease that cannot be written does not stop the ranges'
	// renewals: it only lets the others count this replica out.
	ready := c.readyRanges()
	if err := c.renewMember(ctx, now, ready); err != nil {
		errs = append(errs, err)
	}
	list := &coordinationv1.LeaseList{}
	if err := c.opts.Client.List(ctx, list, client.InNamespace(c.opts.Namespace), client.HasLabels{LabelLease}); err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing shard leases: %w", err))...)
	}
	ranges := map[int]*coordinationv1.Lease{}
	var live []string
	var stale []*coordinationv1.Lease
	var others []coordinationv1.Lease
	// holders are the replicas holding each range whose Lease has not
	// expired; readyOf the ranges each live member has cached ahead.
	holders := map[int]string{}
	readyOf := map[string]map[int]bool{c.opts.Identity: ready}
	incomingOf := map[string]map[int]bool{c.opts.Identity: c.incomingSet()}

	c.mu.Lock()
	seen := map[string]bool{}
	for i := range list.Items {
		l := &list.Items[i]
		seen[l.Name] = true
		expired := c.observeLocked(l, now)
		holder := ptr.Deref(l.Spec.HolderIdentity, "")
		switch l.Labels[LabelLease] {
		case RoleMember:
			switch {
			case holder == c.opts.Identity:
			case holder != "" && !expired:
				if l.Annotations[AnnotationLeaving] != "true" {
					live = append(live, holder)
					readyOf[holder] = parseRanges(l.Annotations[AnnotationReady], c.opts.Ranges)
					incomingOf[holder] = parseRanges(l.Annotations[AnnotationIncoming], c.opts.Ranges)
				}
			case expired:
				stale = append(stale, l)
			}
		case RoleRange:
			if rng, ok := c.rangeOfLease(l.Name); ok {
				ranges[rng] = l
				if !expired {
					holders[rng] = holder
				}
			}
		default:
			others = append(others, *l)
		}
	}
	for name := range c.observed {
		if !seen[name] {
			delete(c.observed, name)
		}
	}
	c.members = len(live) + 1
	if !c.leaving {
		live = append(live, c.opts.Identity)
	}
	targets := Targets(live, c.opts.Ranges)
	target := targets[c.opts.Identity]
	var plan map[int]string
	if c.opts.HandoverTimeout > 0 {
		plan = handoverPlan(targets, holders, incomingOf, c.opts.Ranges)
	}
	c.mu.Unlock()

	// Renew what is held; a Lease gone or taken by another is lost. The
	// writes go together: one after the other, a round holding many ranges
	// would take as many round trips, and on a slow API server the last
	// renewals would land after the renew deadline.
	var renewing sync.WaitGroup
	var renewMu sync.Mutex
	var late []int
	var gap time.Duration
	for _, rng := range c.heldRanges() {
		renewing.Go(func() {
			since, err := c.renew(ctx, rng, ranges[rng], now)
			renewMu.Lock()
			defer renewMu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if since > c.opts.RenewDeadline {
				late = append(late, rng)
				gap = max(gap, since)
			}
		})
	}
	renewing.Wait()
	if len(late) > 0 {
		slices.Sort(late)
		log.Info("range leases renewed after the renew deadline: their AccessTokens waited meanwhile",
			"ranges", late, "sinceLastRenewal", gap.Round(time.Millisecond).String())
	}
	var began, resumed []int
	var want int
	if plan == nil {
		began, resumed, want = c.rebalance(target)
	} else {
		began, resumed, want = c.handOver(log, now, target, plan, readyOf)
	}
	c.reportDraining(began)

	for _, rng := range c.heldRanges() {
		if c.isDraining(rng) && c.releasable(rng) {
			if err := c.release(ctx, rng); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// A range served again after its drain was undone is queued again as
	// one taken: its AccessTokens were turned away while it drained.
	acquired := resumed
	for _, rng := range c.acquireOrder(plan) {
		if want <= 0 {
			break
		}
		if c.isHeld(rng) || c.reservedForAnother(rng, plan, readyOf, now) {
			continue
		}
		ok, err := c.acquire(ctx, rng, ranges[rng], now)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			acquired = append(acquired, rng)
			want--
		}
	}
	for _, l := range stale {
		// A replica killed without releasing: its member Lease goes.
		if err := client.IgnoreNotFound(c.opts.Client.Delete(ctx, l, client.Preconditions{ResourceVersion: &l.ResourceVersion})); err != nil &&
			!apierrors.IsConflict(err) {
			errs = append(errs, err)
		}
	}
	c.setWarm(plan)
	c.reportChanged()
	for _, rng := range acquired {
		if c.opts.Acquired != nil {
			c.opts.Acquired(rng)
		}
	}
	if c.opts.Observed != nil {
		c.opts.Observed(others)
	}
	c.mu.Lock()
	if c.leaving && len(c.held) == 0 {
		c.leftOnce.Do(func() { close(c.left) })
	}
	c.mu.Unlock()
	return errors.Join(errs...)
}

// rebalance drains the ranges held beyond target at once (the highest
// first), or stops draining those wanted again, and returns the ranges it
// began and stopped draining and how many ranges are to be taken.
func (c *Coordinator) rebalance(target int) (began, resumed []int, want int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var active, draining []int
	for rng, h := range c.held {
		if h.draining {
			draining = append(draining, rng)
		} else {
			active = append(active, rng)
		}
	}
	slices.Sort(active)
	slices.Sort(draining)
	for len(active) > target {
		last := active[len(active)-1]
		c.held[last].draining = true
		began = append(began, last)
		active = active[:len(active)-1]
	}
	for len(active) < target && len(draining) > 0 {
		rng := draining[0]
		draining = draining[1:]
		c.held[rng].draining = false
		resumed = append(resumed, rng)
		active = append(active, rng)
	}
	return began, resumed, target - len(active)
}

// handOver is rebalance for warm handovers: of the ranges held beyond
// target (the highest, as every replica reckons them in handoverPlan), it
// drains each once the replica that is to take it reports it cached, or
// once HandoverTimeout has passed since it was first to go, and keeps
// serving the others meanwhile.
func (c *Coordinator) handOver(log logr.Logger, now time.Time, target int, plan map[int]string,
	readyOf map[string]map[int]bool) (began, resumed []int, want int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	held := slices.Sorted(maps.Keys(c.held))
	active := 0
	for i, rng := range held {
		h := c.held[rng]
		if i < target {
			delete(c.surplus, rng)
			if h.draining {
				h.draining = false
				resumed = append(resumed, rng)
			}
			active++
			continue
		}
		if h.draining {
			continue
		}
		since, ok := c.surplus[rng]
		if !ok {
			since = now
			c.surplus[rng] = now
		}
		to := plan[rng]
		switch waited := now.Sub(since); {
		case to == "":
			// Nobody is to take it (a leaving replica that is the last):
			// waiting would change nothing.
		case readyOf[to][rng]:
			log.Info("handing a range over: the replica that takes it has it cached", "range", rng, "to", to,
				"waited", waited.Round(time.Millisecond).String())
		case waited >= c.opts.HandoverTimeout:
			log.Info("handing a range over before the replica that takes it has it cached (--shard-handover-timeout)",
				"range", rng, "to", to, "waited", waited.Round(time.Millisecond).String())
		default:
			active++
			continue
		}
		h.draining = true
		delete(c.surplus, rng)
		began = append(began, rng)
	}
	for rng := range c.surplus {
		if c.held[rng] == nil {
			delete(c.surplus, rng)
		}
	}
	return began, resumed, target - active
}

// handoverPlan returns, for the ranges that are to change hands, the live
// member that is to take each: every replica computes the same plan from
// the same Leases. The ranges to move are the free ones and those held
// beyond their holder's target (the highest of each holder's; every range of
// a holder without a target: leaving or gone). Each goes first to a member
// below its target that prepares to take it already (incomingOf, from the
// member Leases: the plan it last saw), so that a plan changed by a replica
// joining keeps the lists already made; the rest fill the members below
// their target in sorted order of ranges and of members, which keeps the
// plan the same while ranges move along it.
func handoverPlan(targets map[string]int, holders map[int]string, incomingOf map[string]map[int]bool, ranges int) map[int]string {
	members := make([]string, 0, len(targets))
	for m := range targets {
		members = append(members, m)
	}
	slices.Sort(members)
	count := map[string]int{}
	byHolder := map[string][]int{}
	for rng, h := range holders {
		count[h]++
		byHolder[h] = append(byHolder[h], rng)
	}
	var moving []int
	for rng := range ranges {
		if _, ok := holders[rng]; !ok {
			moving = append(moving, rng)
		}
	}
	for h, rs := range byHolder {
		slices.Sort(rs)
		if t := targets[h]; len(rs) > t {
			moving = append(moving, rs[t:]...)
		}
	}
	slices.Sort(moving)
	plan := map[int]string{}
	var queue []int
	for _, rng := range moving {
		for _, m := range members {
			if incomingOf[m][rng] && count[m] < targets[m] {
				plan[rng] = m
				count[m]++
				break
			}
		}
		if _, ok := plan[rng]; !ok {
			queue = append(queue, rng)
		}
	}
	i := 0
	for _, m := range members {
		for count[m] < targets[m] && i < len(queue) {
			plan[queue[i]] = m
			count[m]++
			i++
		}
	}
	return plan
}

// reservedForAnother reports whether free range rng is to go to another
// live member that has it cached: this replica leaves it to that one, unless
// it has been free for a LeaseDuration.
func (c *Coordinator) reservedForAnother(rng int, plan map[int]string, readyOf map[string]map[int]bool, now time.Time) bool {
	to := plan[rng]
	if to == "" || to == c.opts.Identity || !readyOf[to][rng] {
		return false
	}
	c.mu.RLock()
	o, ok := c.observed[RangeLeaseName(rng)]
	c.mu.RUnlock()
	return !ok || now.Sub(o.at) <= c.opts.LeaseDuration
}

// setWarm makes the ranges plan gives this replica that it does not hold
// the ranges it prepares to take.
func (c *Coordinator) setWarm(plan map[int]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.warm)
	for rng, to := range plan {
		if to == c.opts.Identity && c.held[rng] == nil {
			c.warm[rng] = true
		}
	}
}

// incomingSet returns a copy of the ranges this replica prepares to take.
func (c *Coordinator) incomingSet() map[int]bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return maps.Clone(c.warm)
}

// readyRanges returns the ranges this replica prepares to take that its
// cache holds.
func (c *Coordinator) readyRanges() map[int]bool {
	c.mu.RLock()
	warm := make([]int, 0, len(c.warm))
	for rng := range c.warm {
		warm = append(warm, rng)
	}
	c.mu.RUnlock()
	out := map[int]bool{}
	for _, rng := range warm {
		if c.opts.Ready != nil && c.opts.Ready(rng) {
			out[rng] = true
		}
	}
	return out
}

// HandOver makes this replica leave: it takes nothing more, and each Sync
// hands the ranges it holds over as warm handovers do (the replica that is
// to take a range caches it first), until it holds nothing or ctx ends. The
// caller then stops the manager, whose stop releases what is left.
func (c *Coordinator) HandOver(ctx context.Context) {
	c.leave()
	select {
	case <-c.left:
	case <-ctx.Done():
	}
}

// leave marks this replica as leaving (see HandOver).
func (c *Coordinator) leave() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leaving = true
	if len(c.held) == 0 {
		c.leftOnce.Do(func() { close(c.left) })
	}
}

// parseRanges reads a comma-separated list of ranges, ignoring what is not
// one.
func parseRanges(s string, ranges int) map[int]bool {
	out := map[int]bool{}
	for f := range strings.SplitSeq(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n >= 0 && n < ranges {
			out[n] = true
		}
	}
	return out
}

// formatRanges writes set as a sorted comma-separated list.
func formatRanges(set map[int]bool) string {
	parts := make([]string, 0, len(set))
	for _, rng := range sortedRanges(set) {
		parts = append(parts, strconv.Itoa(rng))
	}
	return strings.Join(parts, ",")
}

// reportDraining calls Draining for each range of began.
func (c *Coordinator) reportDraining(began []int) {
	if c.opts.Draining == nil {
		return
	}
	for _, rng := range began {
		c.opts.Draining(rng)
	}
}

// reportChanged calls Changed when the ranges to cache (held, and those
// this replica prepares to take) differ from those it was last called with.
func (c *Coordinator) reportChanged() {
	if c.opts.Changed == nil {
		return
	}
	c.mu.Lock()
	set := make(map[int]bool, len(c.held)+len(c.warm))
	for rng := range c.held {
		set[rng] = true
	}
	for rng := range c.warm {
		set[rng] = true
	}
	cached := sortedRanges(set)
	same := slices.Equal(cached, c.reported) && c.reported != nil
	c.reported = cached
	c.mu.Unlock()
	if !same {
		c.opts.Changed(cached)
	}
}

// observeLocked records l's record and reports whether it has expired: seen
// unchanged for LeaseDuration, or released (no holder).
func (c *Coordinator) observeLocked(l *coordinationv1.Lease, now time.Time) bool {
	holder := ptr.Deref(l.Spec.HolderIdentity, "")
	var renew time.Time
	if l.Spec.RenewTime != nil {
		renew = l.Spec.RenewTime.Time
	}
	o, ok := c.observed[l.Name]
	if !ok || o.holder != holder || !o.renew.Equal(renew) {
		o = observation{holder: holder, renew: renew, at: now}
	}
	o.version = l.ResourceVersion
	c.observed[l.Name] = o
	return holder == "" || now.Sub(o.at) > c.opts.LeaseDuration
}

func (c *Coordinator) rangeOfLease(name string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(name, RangeLeasePrefix))
	if err != nil || !strings.HasPrefix(name, RangeLeasePrefix) || n < 0 || n >= c.opts.Ranges {
		return 0, false
	}
	return n, true
}

// acquireOrder starts at a place of its own for each identity, so that
// replicas starting together mostly try different ranges first; the ranges
// plan gives this replica come first.
func (c *Coordinator) acquireOrder(plan map[int]string) []int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(c.opts.Identity))
	start := int(h.Sum32() % uint32(c.opts.Ranges))
	out := make([]int, 0, c.opts.Ranges)
	for i := range c.opts.Ranges {
		if rng := (start + i) % c.opts.Ranges; plan[rng] == c.opts.Identity {
			out = append(out, rng)
		}
	}
	for i := range c.opts.Ranges {
		if rng := (start + i) % c.opts.Ranges; plan[rng] != c.opts.Identity {
			out = append(out, rng)
		}
	}
	return out
}

func (c *Coordinator) heldRanges() []int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Sorted(maps.Keys(c.held))
}

func (c *Coordinator) isHeld(rng int) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.held[rng] != nil
}

func (c *Coordinator) isDraining(rng int) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	h := c.held[rng]
	return h != nil && h.draining
}

func (c *Coordinator) forget(rng int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.held, rng)
}

// RangeLeaseName names range rng's Lease.
func RangeLeaseName(rng int) string { return RangeLeasePrefix + strconv.Itoa(rng) }

// MemberLeaseName names the member Lease of identity.
func MemberLeaseName(identity string) string { return MemberLeasePrefix + identity }

func (c *Coordinator) memberLease() *coordinationv1.Lease {
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: MemberLeaseName(c.opts.Identity), Namespace: c.opts.Namespace,
		Labels: map[string]string{LabelLease: RoleMember}}}
}

func (c *Coordinator) leaseSeconds() *int32 {
	return ptr.To(int32(c.opts.LeaseDuration.Round(time.Second) / time.Second))
}

// renewMember creates or renews this replica's member Lease, with the
// ranges it has cached ahead (ready) and whether it is leaving.
func (c *Coordinator) renewMember(ctx context.Context, now time.Time, ready map[int]bool) error {
	c.mu.RLock()
	cur := c.member
	c.mu.RUnlock()
	if cur == nil {
		cur = c.memberLease()
		if err := c.opts.Client.Get(ctx, client.ObjectKeyFromObject(cur), cur); err != nil {
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("reading member lease: %w", err)
			}
			cur = c.memberLease()
			c.annotateMember(cur, ready)
			cur.Spec = coordinationv1.LeaseSpec{HolderIdentity: ptr.To(c.opts.Identity), LeaseDurationSeconds: c.leaseSeconds(),
				AcquireTime: ptr.To(metav1.NewMicroTime(now)), RenewTime: ptr.To(metav1.NewMicroTime(now))}
			if err := c.opts.Client.Create(ctx, cur); err != nil {
				return fmt.Errorf("creating member lease: %w", err)
			}
			c.setMember(cur)
			return nil
		}
	}
	next := cur.DeepCopy()
	c.annotateMember(next, ready)
	next.Spec.HolderIdentity = ptr.To(c.opts.Identity)
	next.Spec.LeaseDurationSeconds = c.leaseSeconds()
	next.Spec.RenewTime = ptr.To(metav1.NewMicroTime(now))
	if err := c.opts.Client.Update(ctx, next); err != nil {
		c.setMember(nil) // read it again next time
		return fmt.Errorf("renewing member lease: %w", err)
	}
	c.setMember(next)
	return nil
}

// annotateMember writes ready and the leaving mark into l's annotations.
func (c *Coordinator) annotateMember(l *coordinationv1.Lease, ready map[int]bool) {
	c.mu.RLock()
	leaving := c.leaving
	c.mu.RUnlock()
	setAnnotation(l, AnnotationIncoming, formatRanges(c.incomingSet()))
	setAnnotation(l, AnnotationReady, formatRanges(ready))
	if leaving {
		setAnnotation(l, AnnotationLeaving, "true")
	} else {
		setAnnotation(l, AnnotationLeaving, "")
	}
}

// setAnnotation sets key to value on l, or removes it when value is empty.
func setAnnotation(l *coordinationv1.Lease, key, value string) {
	if value == "" {
		delete(l.Annotations, key)
		return
	}
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[key] = value
}

func (c *Coordinator) setMember(l *coordinationv1.Lease) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.member = l
}

// renew writes a new renew time into a held range's Lease, and returns how
// long before now it was renewed last. A Lease gone or held by another is
// lost at once; one that cannot be written is lost once RenewDeadline has
// passed since the last renewal.
func (c *Coordinator) renew(ctx context.Context, rng int, l *coordinationv1.Lease, now time.Time) (time.Duration, error) {
	if l == nil || ptr.Deref(l.Spec.HolderIdentity, "") != c.opts.Identity {
		c.forget(rng)
		return 0, nil
	}
	next := l.DeepCopy()
	next.Spec.RenewTime = ptr.To(metav1.NewMicroTime(now))
	next.Spec.LeaseDurationSeconds = c.leaseSeconds()
	if err := c.opts.Client.Update(ctx, next); err != nil {
		c.mu.Lock()
		if h := c.held[rng]; h != nil && now.Sub(h.renewed) > c.opts.RenewDeadline {
			delete(c.held, rng)
		}
		c.mu.Unlock()
		return 0, fmt.Errorf("renewing range lease %d: %w", rng, err)
	}
	var since time.Duration
	landed := c.opts.Clock.Now()
	c.mu.Lock()
	if h := c.held[rng]; h != nil {
		since = landed.Sub(h.renewed)
		h.renewed = now
	}
	c.observed[next.Name] = observation{holder: c.opts.Identity, renew: now, at: now, version: next.ResourceVersion}
	c.mu.Unlock()
	return since, nil
}

// acquire takes range rng's Lease when it is missing, released, or expired.
// Writes carry the resourceVersion read, so two replicas never both win.
func (c *Coordinator) acquire(ctx context.Context, rng int, l *coordinationv1.Lease, now time.Time) (bool, error) {
	spec := coordinationv1.LeaseSpec{HolderIdentity: ptr.To(c.opts.Identity), LeaseDurationSeconds: c.leaseSeconds(),
		AcquireTime: ptr.To(metav1.NewMicroTime(now)), RenewTime: ptr.To(metav1.NewMicroTime(now))}
	var written *coordinationv1.Lease
	if l == nil {
		spec.LeaseTransitions = ptr.To[int32](0)
		written = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: RangeLeaseName(rng), Namespace: c.opts.Namespace,
			Labels: map[string]string{LabelLease: RoleRange}}, Spec: spec}
		if err := c.opts.Client.Create(ctx, written); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return false, nil
			}
			return false, fmt.Errorf("creating range lease %d: %w", rng, err)
		}
	} else {
		c.mu.RLock()
		o, seen := c.observed[l.Name]
		c.mu.RUnlock()
		holder := ptr.Deref(l.Spec.HolderIdentity, "")
		if !seen || (holder != "" && now.Sub(o.at) <= c.opts.LeaseDuration) {
			return false, nil
		}
		written = l.DeepCopy()
		spec.LeaseTransitions = ptr.To(ptr.Deref(l.Spec.LeaseTransitions, 0) + 1)
		written.Spec = spec
		if err := c.opts.Client.Update(ctx, written); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				return false, nil
			}
			return false, fmt.Errorf("taking range lease %d: %w", rng, err)
		}
	}
	c.mu.Lock()
	c.held[rng] = &holding{renewed: now, acquired: now}
	c.observed[written.Name] = observation{holder: c.opts.Identity, renew: now, at: now, version: written.ResourceVersion}
	c.mu.Unlock()
	return true, nil
}

// release gives a drained range's Lease up as client-go's leader election
// does: no holder, a one-second duration, so that the next replica takes it
// at once.
func (c *Coordinator) release(ctx context.Context, rng int) error {
	now := c.opts.Clock.Now()
	l := &coordinationv1.Lease{}
	if err := c.opts.Client.Get(ctx, client.ObjectKey{Namespace: c.opts.Namespace, Name: RangeLeaseName(rng)}, l); err != nil {
		c.forget(rng)
		return client.IgnoreNotFound(err)
	}
	if ptr.Deref(l.Spec.HolderIdentity, "") != c.opts.Identity {
		c.forget(rng)
		return nil
	}
	// No new work starts for a draining range; the Lease is no longer ours
	// from here on, even if the write below fails (it then expires).
	c.forget(rng)
	l.Spec.HolderIdentity = ptr.To("")
	l.Spec.LeaseDurationSeconds = ptr.To[int32](1)
	l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(now))
	l.Spec.AcquireTime = ptr.To(metav1.NewMicroTime(now))
	if err := c.opts.Client.Update(ctx, l); err != nil {
		return fmt.Errorf("releasing range lease %d: %w", rng, err)
	}
	return nil
}
