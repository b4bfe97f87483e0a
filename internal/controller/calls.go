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
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// Calls runs the work that talks to token endpoints (minting, revoking) away
// from the reconcile workers, which every AccessToken of the cluster shares: a
// reconcile that must call an endpoint hands the call to Calls and returns at
// once. Calls bounds the calls in flight per issuer and per namespace, and
// serves each issuer's waiting AccessTokens round robin by namespace, so that a
// slow or silent endpoint costs its own issuer's slots only, and one namespace's
// many AccessTokens on a shared ClusterTokenIssuer cannot starve another's.
//
// Each AccessToken has at most one job, waiting or running. When it ends, its
// result is kept for the AccessToken's next reconcile and the AccessToken is
// queued again through Events.
type Calls struct {
	// PerIssuer is the most calls in flight to one issuer.
	PerIssuer int
	// PerNamespace is the most calls in flight for one namespace's
	// AccessTokens, over all issuers.
	PerNamespace int
	// Gate, when set, paces each issuer's dispatch: a job starts only when
	// Gate admits it (see IssuerLimiters.Admit), so that the issuer's rate is
	// shared in the namespaces' turns. Clock times the next try.
	Gate  CallGate
	Clock clock.WithDelayedExecution
	// AllReplicas runs calls on every replica, not only the leader: with
	// sharding, each replica calls for the ranges it holds.
	AllReplicas bool
	// Share, when set, is this replica's part of PerIssuer (with sharding,
	// in proportion to the ranges it serves; see sharding.Share): no job
	// starts for an issuer while that many run. Kick dispatches again when
	// it grows.
	Share func(limit int) int

	mu sync.Mutex
	// jobs holds every AccessToken's job from submission until its result is taken.
	jobs map[types.NamespacedName]*job
	// issuers holds the waiting and running jobs by issuer.
	issuers map[string]*issuerQueue
	// namespaces counts running jobs by namespace.
	namespaces map[string]int
	running    sync.WaitGroup
	// ctx is cancelled when the manager stops: no new job starts after it.
	ctx context.Context
	// started is set by Start: jobs queued before wait for it.
	started bool
	stopped bool

	events chan event.GenericEvent
}

type job struct {
	key       types.NamespacedName
	namespace string
	obj       client.Object
	// inputs identifies what the job was decided on (see inputs.inputsHash).
	inputs string
	run    func(context.Context) (ctrl.Result, error)
	// asked is set when the object was to be reconciled while its job ran.
	asked   bool
	started bool
	done    bool
	result  ctrl.Result
	err     error
}

// CallGate admits a job to an issuer at now, or says how long until it may.
type CallGate interface {
	Admit(issuer string, now time.Time) time.Duration
}

// issuerQueue is one issuer's waiting jobs, by namespace, and the order in
// which namespaces take turns.
type issuerQueue struct {
	running int
	waiting map[string][]*job
	turns   []string
	// gated is set while a timer waits to dispatch again after Gate refused.
	gated bool
}

// NewCalls returns a Calls; limits below one are raised to one.
func NewCalls(perIssuer, perNamespace int) *Calls {
	return &Calls{
		PerIssuer: max(1, perIssuer), PerNamespace: max(1, perNamespace),
		jobs: map[types.NamespacedName]*job{}, issuers: map[string]*issuerQueue{}, namespaces: map[string]int{},
		events: make(chan event.GenericEvent, 1024),
		ctx:    context.Background(),
	}
}

// Events delivers the AccessTokens whose job ended.
func (c *Calls) Events() <-chan event.GenericEvent { return c.events }

// Start runs until ctx ends, then waits for the jobs in flight to finish
// (each is bounded by its own timeout), so that a token minted before a
// shutdown is written before the manager exits. Waiting jobs are dropped:
// their AccessTokens are reconciled again by the next leader.
func (c *Calls) Start(ctx context.Context) error {
	c.mu.Lock()
	c.ctx, c.started = ctx, true
	c.dispatchLocked()
	c.mu.Unlock()
	<-ctx.Done()
	c.mu.Lock()
	c.stopped = true
	for _, q := range c.issuers {
		q.waiting, q.turns = map[string][]*job{}, nil
	}
	c.mu.Unlock()
	c.running.Wait()
	return nil
}

// NeedLeaderElection: only the leader calls endpoints, unless AllReplicas.
func (c *Calls) NeedLeaderElection() bool { return !c.AllReplicas }

// InFlight counts the jobs waiting or running for the namespaces match
// accepts; once stopped, only those running (the waiting ones are dropped).
func (c *Calls) InFlight(match func(namespace string) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, j := range c.jobs {
		if !j.done && (j.started || !c.stopped) && match(j.namespace) {
			n++
		}
	}
	return n
}

// DropWaiting forgets the jobs not started yet of the namespaces match
// accepts, as if they had never been submitted, and returns how many: with
// sharding, their range is being released, and the replica that takes it
// decides again. Jobs running are left to end.
func (c *Calls) DropWaiting(match func(namespace string) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for name, q := range c.issuers {
		kept := q.turns[:0]
		for _, ns := range q.turns {
			if !match(ns) {
				kept = append(kept, ns)
				continue
			}
			for _, j := range q.waiting[ns] {
				delete(c.jobs, j.key)
				n++
			}
			delete(q.waiting, ns)
		}
		q.turns = kept
		if q.running == 0 && len(q.turns) == 0 {
			delete(c.issuers, name)
		}
	}
	return n
}

// MostRunning returns the most jobs running for one issuer: with sharding,
// a range is released only once it fits the share of the ranges kept.
func (c *Calls) MostRunning() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, q := range c.issuers {
		n = max(n, q.running)
	}
	return n
}

// Kick dispatches the waiting jobs again: the share grew.
func (c *Calls) Kick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dispatchLocked()
}

// perIssuerLocked is the most jobs this replica runs for one issuer now.
func (c *Calls) perIssuerLocked() int {
	if c.Share == nil {
		return c.PerIssuer
	}
	return c.Share(c.PerIssuer)
}

// Busy reports whether key has a job waiting or running, and remembers that
// it was asked (see Take).
func (c *Calls) Busy(key types.NamespacedName) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	j, ok := c.jobs[key]
	if ok && !j.done {
		j.asked = true
	}
	return ok && !j.done
}

// Finished is what Take returns of a finished job.
type Finished struct {
	// Result and Err are what the job returned.
	Result ctrl.Result
	Err    error
	// Asked tells whether something asked for a reconcile of the object while
	// the job ran.
	Asked bool
	// Object is the object the job was submitted with.
	Object client.Object
	// Inputs is what the job was submitted with (SubmitFor); empty for Submit.
	Inputs string
}

// Take returns and forgets key's finished job, if any.
func (c *Calls) Take(key types.NamespacedName) (Finished, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	j, ok := c.jobs[key]
	if !ok || !j.done {
		return Finished{}, false
	}
	delete(c.jobs, key)
	return Finished{Result: j.result, Err: j.err, Asked: j.asked, Object: j.obj, Inputs: j.inputs}, true
}

// Forget drops the finished result of key, if any (its object is gone).
func (c *Calls) Forget(key types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if j, ok := c.jobs[key]; ok && j.done {
		delete(c.jobs, key)
	}
}

// Submit queues run for obj, counted against issuer and obj's namespace. It
// returns false when obj already has a job.
func (c *Calls) Submit(obj client.Object, issuer string, run func(context.Context) (ctrl.Result, error)) bool {
	return c.SubmitFor(obj, issuer, "", run)
}

// SubmitFor is Submit for a job decided on inputs (a hash of what the token
// is issued from), which Take returns with its result: whoever takes it can
// tell whether they changed meanwhile.
func (c *Calls) SubmitFor(obj client.Object, issuer, inputs string, run func(context.Context) (ctrl.Result, error)) bool {
	key := client.ObjectKeyFromObject(obj)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.jobs[key]; ok || c.stopped {
		return false
	}
	j := &job{key: key, namespace: key.Namespace, obj: obj, inputs: inputs, run: run}
	c.jobs[key] = j
	q := c.issuers[issuer]
	if q == nil {
		q = &issuerQueue{waiting: map[string][]*job{}}
		c.issuers[issuer] = q
	}
	if len(q.waiting[j.namespace]) == 0 {
		q.turns = append(q.turns, j.namespace)
	}
	q.waiting[j.namespace] = append(q.waiting[j.namespace], j)
	c.dispatchLocked()
	return true
}

// Waiting returns the number of jobs waiting and running, for metrics and tests.
func (c *Calls) Waiting() (waiting, running int) {
	if c == nil {
		return 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, q := range c.issuers {
		running += q.running
		for _, w := range q.waiting {
			waiting += len(w)
		}
	}
	return waiting, running
}

// dispatchLocked starts every waiting job the limits allow: for each issuer
// with free slots, namespaces take turns, skipping those at their own limit.
func (c *Calls) dispatchLocked() {
	if c.stopped || !c.started {
		return
	}
	limit := c.perIssuerLocked()
	for name, q := range c.issuers {
		if q.gated {
			continue
		}
		for q.running < limit && len(q.turns) > 0 {
			started := false
			for i := 0; i < len(q.turns); i++ {
				ns := q.turns[i]
				if c.namespaces[ns] >= c.PerNamespace {
					continue
				}
				if c.Gate != nil {
					if wait := c.Gate.Admit(name, c.clock().Now()); wait > 0 {
						c.dispatchAfterLocked(q, wait)
						break
					}
				}
				j := q.waiting[ns][0]
				q.waiting[ns] = q.waiting[ns][1:]
				// The namespace goes to the back of the line, or leaves it.
				q.turns = append(q.turns[:i], q.turns[i+1:]...)
				if len(q.waiting[ns]) > 0 {
					q.turns = append(q.turns, ns)
				} else {
					delete(q.waiting, ns)
				}
				c.startLocked(q, j, name)
				started = true
				break
			}
			if !started {
				break
			}
		}
		if q.running == 0 && len(q.turns) == 0 {
			delete(c.issuers, name)
		}
	}
}

func (c *Calls) clock() clock.WithDelayedExecution {
	if c.Clock == nil {
		return clock.RealClock{}
	}
	return c.Clock
}

// dispatchAfterLocked dispatches again after wait, once per issuer queue.
func (c *Calls) dispatchAfterLocked(q *issuerQueue, wait time.Duration) {
	if q.gated {
		return
	}
	q.gated = true
	// In a goroutine of its own: a fake clock runs the function while it
	// holds its lock, which dispatching needs to read the time.
	c.clock().AfterFunc(wait, func() {
		go func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			q.gated = false
			c.dispatchLocked()
		}()
	})
}

func (c *Calls) startLocked(q *issuerQueue, j *job, issuer string) {
	j.started = true
	q.running++
	c.namespaces[j.namespace]++
	c.running.Add(1)
	ctx := c.ctx
	if c.Gate != nil {
		ctx = withAdmitted(ctx, issuer)
	}
	go func() {
		defer c.running.Done()
		result, err := j.run(ctx)
		c.mu.Lock()
		q.running--
		if c.namespaces[j.namespace]--; c.namespaces[j.namespace] <= 0 {
			delete(c.namespaces, j.namespace)
		}
		j.done, j.result, j.err, j.run = true, result, err, nil
		c.dispatchLocked()
		c.mu.Unlock()
		select {
		case c.events <- event.GenericEvent{Object: j.obj}:
		case <-ctx.Done():
		}
	}()
}
