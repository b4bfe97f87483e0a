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
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/lru"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// Defaults of the limits that keep one tenant from costing another.
const (
	// DefaultIssuerConcurrency is the most calls in flight to one issuer.
	DefaultIssuerConcurrency = 20
	// DefaultNamespaceConcurrency is the most calls in flight for one
	// namespace's AccessTokens, over all issuers.
	DefaultNamespaceConcurrency = 20
	// DefaultIssuerRate and DefaultIssuerBurst are the calls per second (and
	// burst) to one issuer whose spec.rateLimit is not set: what a real
	// identity provider tolerates from one client. GitHub allows an App 5,000
	// requests an hour (under 1.5 a second) and adds secondary limits on
	// bursts; identity providers such as Okta and Entra ID throttle a client's
	// calls to their token endpoints at some hundreds to some thousands a
	// minute, depending on the plan. Twenty a second (1,200 a minute, a
	// twenty-fifth of the earlier default) renews a thousand AccessTokens of
	// one issuer whose tokens live a minute on time; slower providers are
	// given their documented limit in spec.rateLimit.
	DefaultIssuerRate  = 20.0
	DefaultIssuerBurst = 40
	// DefaultKubeAPIQPS and DefaultKubeAPIBurst bound the manager's requests
	// to the Kubernetes API. cert-manager's 20/50 suit certificates renewed
	// every few weeks; a token renewed every few minutes costs two or three
	// requests (its Secret, its status, its state), so a thousand one-minute
	// tokens need about fifty a second. A fifth of the earlier 500/1000.
	DefaultKubeAPIQPS   = 100.0
	DefaultKubeAPIBurst = 200
	// DefaultMinMintInterval is the least time between two mints of one AccessToken.
	DefaultMinMintInterval = 10 * time.Second
	// DefaultMinRenewalInterval is the least time from a token's issue to its
	// scheduled renewal, whatever lifetime the provider answers: a 60-second
	// token's default renewal (at 40 s) is not affected, a token that lives a
	// second is renewed twice a minute, not six times.
	DefaultMinRenewalInterval = 30 * time.Second
	// DefaultForcedRenewalRate and DefaultForcedRenewalBurst limit, per
	// namespace, the mints asked for ahead of schedule (renew annotation, input
	// changes).
	DefaultForcedRenewalRate  = 1.0
	DefaultForcedRenewalBurst = 20
	// DefaultNamespaceMintRate and DefaultNamespaceMintBurst limit, per
	// namespace, every mint that is not a scheduled renewal or a retry: first
	// issues (creations and re-creations), re-issues after a lost Secret, and
	// the mints asked for ahead of schedule. The burst lets a namespace issue
	// its first thousand tokens at once, the rate a hundred a second after
	// that (ten thousand tokens of one namespace are issued in under two
	// minutes). Re-created AccessTokens and mints ahead of schedule also spend
	// the forced-renewal budget, which is what bounds churn.
	DefaultNamespaceMintRate  = 100.0
	DefaultNamespaceMintBurst = 1000
	// DefaultNamespaceWriteBytesPerMinute and DefaultNamespaceWriteBurstBytes
	// limit, per namespace, the bytes the manager writes to Secrets for the
	// namespace's AccessTokens: their Secrets, and their state Secrets in the
	// operator namespace, which no quota of the tenant's covers. A thousand
	// tokens renewed every minute write about 2.5 MiB a minute; the first
	// issue of ten thousand small tokens about 20 MiB.
	DefaultNamespaceWriteBytesPerMinute = 8 << 20
	DefaultNamespaceWriteBurstBytes     = 32 << 20
	// maxLimitedNamespaces bounds the namespaces whose budgets are
	// remembered; the least recently used start afresh.
	maxLimitedNamespaces = 4096
	// maxRememberedMints bounds the AccessTokens whose last mint this
	// process remembers (see AccessTokenReconciler.attempts); entries outlive
	// their AccessToken so that re-creating it does not reset its floor.
	maxRememberedMints = 16384
	// secretOverheadBytes is what a Secret write costs beyond its keys and
	// values: its name, labels, annotations, owner and managed fields.
	secretOverheadBytes = 1024
)

// NamespaceLimiters is a token bucket per namespace, driven by the caller's clock.
type NamespaceLimiters struct {
	rate  rate.Limit
	burst int

	mu       sync.Mutex
	limiters *lru.Cache
}

// NewNamespaceLimiters allows perSecond events with burst per namespace.
func NewNamespaceLimiters(perSecond float64, burst int) *NamespaceLimiters {
	return &NamespaceLimiters{rate: rate.Limit(perSecond), burst: max(1, burst), limiters: lru.New(maxLimitedNamespaces)}
}

func (l *NamespaceLimiters) limiter(namespace string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.limiters.Get(namespace)
	if !ok {
		v = rate.NewLimiter(l.rate, l.burst)
		l.limiters.Add(namespace, v)
	}
	return v.(*rate.Limiter)
}

// Take spends one event of namespace's budget at now, or returns how long to
// wait for one (spending nothing).
func (l *NamespaceLimiters) Take(namespace string, now time.Time) time.Duration {
	res := l.limiter(namespace).ReserveN(now, 1)
	if !res.OK() {
		return time.Minute
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d
	}
	return 0
}

// WriteBudgets is a budget of bytes per namespace: every write is charged
// after it happens (the namespace's balance may go below zero by what the
// writes in flight add), and a namespace in debt waits until its balance is
// back to zero.
type WriteBudgets struct {
	limits *NamespaceLimiters

	mu sync.Mutex
	// turns holds, by namespace, the average size of its writes and the next
	// turn free for a writer waiting for its debt to be paid (see Turn).
	turns *lru.Cache
}

// writeTurns is what WriteBudgets.Turn keeps of a namespace.
type writeTurns struct {
	next time.Time
	avg  float64
}

// NewWriteBudgets allows perMinute bytes a minute with a burst of burst bytes
// per namespace.
func NewWriteBudgets(perMinute, burst int64) *WriteBudgets {
	burst = max(burst, perMinute/60, 1)
	return &WriteBudgets{limits: NewNamespaceLimiters(float64(perMinute)/60, int(burst)), turns: lru.New(maxLimitedNamespaces)}
}

// Charge counts n bytes written for namespace at now.
func (w *WriteBudgets) Charge(namespace string, n int, now time.Time) {
	if w == nil || n <= 0 {
		return
	}
	// A reservation never cancelled is a debt paid back at the budget's rate.
	w.limits.limiter(namespace).ReserveN(now, min(n, w.limits.burst))
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.turnsOf(namespace)
	if t.avg == 0 {
		t.avg = float64(n)
	} else {
		t.avg += (float64(n) - t.avg) / 8
	}
}

func (w *WriteBudgets) turnsOf(namespace string) *writeTurns {
	v, ok := w.turns.Get(namespace)
	if !ok {
		v = &writeTurns{}
		w.turns.Add(namespace, v)
	}
	return v.(*writeTurns)
}

// Turn returns, for a writer of namespace, when it may write: now unless the
// namespace is in debt (ok false). A namespace's writers waiting for its debt
// are given turns one after another: the first once the debt is paid, each
// next one the time the budget takes to earn the namespace's average write
// after the one before. Were all told the time the debt is paid, all would
// come back together, a few would write, and the others would be in debt
// again and wait again, reconciled over and over by the workers all
// namespaces share.
func (w *WriteBudgets) Turn(namespace string, now time.Time) (time.Time, bool) {
	wait := w.Wait(namespace, now)
	if wait == 0 {
		return now, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.turnsOf(namespace)
	turn := now.Add(wait)
	if t.next.After(turn) {
		turn = t.next
	}
	each := max(t.avg, secretOverheadBytes) / float64(w.limits.rate)
	t.next = turn.Add(time.Duration(each * float64(time.Second)))
	return turn, true
}

// Wait returns how long namespace must wait before writing again: zero unless
// it is in debt.
func (w *WriteBudgets) Wait(namespace string, now time.Time) time.Duration {
	if w == nil {
		return 0
	}
	tokens := w.limits.limiter(namespace).TokensAt(now)
	if tokens >= 0 {
		return 0
	}
	return time.Duration(-tokens/float64(w.limits.rate)*float64(time.Second)).Round(time.Second) + time.Second
}

// Describe names the budget for messages.
func (w *WriteBudgets) Describe() string {
	return fmt.Sprintf("%s a minute, burst %s", byteSize(int64(float64(w.limits.rate)*60)), byteSize(int64(w.limits.burst)))
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// writtenBytes is what a Secret write of data costs a namespace's budget.
func writtenBytes(data map[string][]byte) int {
	n := secretOverheadBytes
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}

// chargeWrite counts a Secret write of data for at's namespace.
func (r *AccessTokenReconciler) chargeWrite(at *tokensv1alpha1.AccessToken, data map[string][]byte) {
	r.Writes.Charge(at.Namespace, writtenBytes(data), r.Clock.Now())
	r.writeSlots.Delete(types.NamespacedName{Namespace: at.Namespace, Name: at.Name})
}

// writeSlotGrace is how long a turn to write (see writeWait) is kept once it
// came without a write: a mint that failed, say, waits for a turn of its own
// after that.
const writeSlotGrace = time.Minute

// writeWait returns how long at must wait before its namespace's write budget
// lets it write: zero unless the namespace is in debt, and then until the turn
// it is given (see WriteBudgets.Turn). The turn is kept until its write is
// charged, so that the check before the mint and the one the call makes after
// waiting for its issuer both let it go.
func (r *AccessTokenReconciler) writeWait(at *tokensv1alpha1.AccessToken, now time.Time) time.Duration {
	if r.Writes == nil {
		return 0
	}
	key := types.NamespacedName{Namespace: at.Namespace, Name: at.Name}
	if v, ok := r.writeSlots.Load(key); ok {
		if slot := v.(mintSlot); slot.uid == at.UID && now.Before(slot.at.Add(writeSlotGrace)) {
			return max(0, slot.at.Sub(now))
		}
		r.writeSlots.Delete(key)
	}
	turn, inDebt := r.Writes.Turn(at.Namespace, now)
	if !inDebt {
		return 0
	}
	r.writeSlots.Store(key, mintSlot{uid: at.UID, at: turn})
	return turn.Sub(now)
}

// forgetSlots drops the turns at key was given in its namespace's budgets.
func (r *AccessTokenReconciler) forgetSlots(key types.NamespacedName) {
	r.mintSlots.Delete(key)
	r.writeSlots.Delete(key)
}

// mintWait returns how long a mint decided by d must wait, and why: a
// namespace that has written its budget of bytes waits; one AccessToken is
// minted at most once per MinMintInterval, whatever asks (the last attempt is
// known from status, and from this process's memory for attempts whose status
// write is not seen yet or whose AccessToken was deleted and created again);
// and mints that are not scheduled renewals or retries spend their
// namespace's mint budget, those asked for ahead of schedule its forced
// renewal budget as well.
func (r *AccessTokenReconciler) mintWait(at *tokensv1alpha1.AccessToken, in *inputs, d decision, now time.Time) (time.Duration, string) {
	if wait := r.writeWait(at, now); wait > 0 {
		return wait, fmt.Sprintf("namespace %q has used its budget of bytes written to Secrets (%s)", at.Namespace, r.Writes.Describe())
	}
	if r.usableUnwritten(at, in, now) != nil {
		// Not a mint: the write of a token already minted, retried.
		return 0, ""
	}
	var last time.Time
	later := func(t time.Time) {
		if t.After(last) {
			last = t
		}
	}
	st := at.Status
	if st.IssuedAt != nil {
		later(st.IssuedAt.Time)
	}
	if st.LastFailureTime != nil {
		later(st.LastFailureTime.Time)
	}
	recreated := false
	if r.attempts != nil {
		if v, ok := r.attempts.Get(types.NamespacedName{Namespace: at.Namespace, Name: at.Name}); ok {
			later(v.(mintAttempt).at)
			recreated = v.(mintAttempt).uid != at.UID
		}
	}
	if !last.IsZero() && r.MinMintInterval > 0 {
		if wait := last.Add(r.MinMintInterval).Sub(now); wait > 0 {
			return wait, fmt.Sprintf("one AccessToken is minted at most once every %s", r.MinMintInterval)
		}
	}
	var budgets []*NamespaceLimiters
	if r.Mints != nil && spendsMintBudget(at, in, d, now) {
		budgets = append(budgets, r.Mints)
	}
	// A first issue of an AccessToken that this process minted for under
	// another UID is a re-creation: churn the namespace causes, which spends
	// the strict budget of mints ahead of schedule, not the generous one of
	// first issues.
	if r.ForcedRenewals != nil && (aheadOfSchedule(at, in, d, now) || (recreated && d.reason == reasonNotIssued)) {
		budgets = append(budgets, r.ForcedRenewals)
	}
	if wait, refused := r.reserveMint(at, now, budgets); wait > 0 {
		if refused == r.Mints {
			return wait, fmt.Sprintf("namespace %q has used its budget of mints other than scheduled renewals (first issues, re-issues, renewals asked for)", at.Namespace)
		}
		return wait, fmt.Sprintf("namespace %q has used its budget of renewals ahead of schedule and of re-created AccessTokens", at.Namespace)
	}
	return 0, ""
}

// mintSlot is the time a waiting mint of one AccessToken (uid) was given in
// its namespace's budgets, and the budget that made it wait.
type mintSlot struct {
	uid     types.UID
	at      time.Time
	refused *NamespaceLimiters
}

// reserveMint spends one event of at's namespace's budgets for its mint. When
// they have none left, the mint is given the time of the next event free in
// each, spent for it now, and waits for it: the AccessTokens that wait for one
// namespace's budget come back one after another, each at its own time. Were
// nothing spent while waiting, every waiting AccessToken would come back at
// the next free moment, one of them would have it and the others would wait
// again: reconciles (the workers all namespaces share) growing with the
// square of the waiting AccessTokens. A slot whose mint is no longer due is
// dropped (see Reconcile); the events it spent are lost to its namespace
// only.
func (r *AccessTokenReconciler) reserveMint(at *tokensv1alpha1.AccessToken, now time.Time, budgets []*NamespaceLimiters) (time.Duration, *NamespaceLimiters) {
	key := types.NamespacedName{Namespace: at.Namespace, Name: at.Name}
	if len(budgets) == 0 {
		r.mintSlots.Delete(key)
		return 0, nil
	}
	if v, ok := r.mintSlots.Load(key); ok {
		if slot := v.(mintSlot); slot.uid == at.UID {
			if wait := slot.at.Sub(now); wait > 0 {
				return wait, slot.refused
			}
			r.mintSlots.Delete(key)
			return 0, nil
		}
	}
	wait, refused := reserveAll(at.Namespace, now, budgets...)
	if wait > 0 {
		r.mintSlots.Store(key, mintSlot{uid: at.UID, at: now.Add(wait), refused: refused})
	}
	return wait, refused
}

// reserveAll spends one event of namespace's budget in each of ls, at now or
// at the time the next event is free, and returns how long until the last of
// them and which budget that is.
func reserveAll(namespace string, now time.Time, ls ...*NamespaceLimiters) (time.Duration, *NamespaceLimiters) {
	var wait time.Duration
	var refused *NamespaceLimiters
	var taken []*rate.Reservation
	for _, l := range ls {
		res := l.limiter(namespace).ReserveN(now, 1)
		if !res.OK() {
			for _, t := range taken {
				t.CancelAt(now)
			}
			return time.Minute, l
		}
		taken = append(taken, res)
		if d := res.DelayFrom(now); d > wait {
			wait, refused = d, l
		}
	}
	return wait, refused
}

// mintAttempt is when this process last started a mint for an AccessToken's
// namespace and name, and for which object (UID): it outlives the object, so
// that deleting and re-creating an AccessToken neither resets its floor nor
// passes for a first issue.
type mintAttempt struct {
	at  time.Time
	uid types.UID
}

// spendsMintBudget reports whether a mint decided by d is one its namespace
// causes, rather than one its tokens' schedule does: a first issue (a new or
// re-created AccessToken, or one whose first issue failed), a re-issue after
// its Secret was lost, or a mint ahead of schedule. Scheduled renewals and
// retries are bounded per AccessToken by the renewal floor and the backoff.
func spendsMintBudget(at *tokensv1alpha1.AccessToken, in *inputs, d decision, now time.Time) bool {
	switch d.reason {
	case reasonNotIssued, reasonSecretLost:
		return true
	}
	return aheadOfSchedule(at, in, d, now)
}

// aheadOfSchedule reports whether a mint is asked for by the AccessToken's
// namespace ahead of schedule: the renew annotation, or a change of inputs the
// namespace made (its AccessToken, or a TokenIssuer it owns). A mint that is
// due anyway (first issue, lost Secret, retry, renewal time) is not, and
// neither is a change of a ClusterTokenIssuer or of its credentials, which are
// the administrator's.
func aheadOfSchedule(at *tokensv1alpha1.AccessToken, in *inputs, d decision, now time.Time) bool {
	switch d.reason {
	case reasonRenewalRequested:
	case reasonInputsChanged, reasonIssuerChanged:
		if at.Spec.IssuerRef.Kind == tokensv1alpha1.ClusterTokenIssuerKind && at.Generation == at.Status.ObservedGeneration {
			return false
		}
	default:
		return false
	}
	for _, c := range []check{notIssued, secretLost, retryDue, renewalDue} {
		if due, ok := c(in, now); ok && due.action == actionIssue {
			return false
		}
	}
	return true
}
