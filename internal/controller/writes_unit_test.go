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
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/lru"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/secret"
)

func TestRenewalTimeFloor(t *testing.T) {
	issued := time.Unix(10000, 0)
	const floor = 30 * time.Second
	cases := []struct {
		name        string
		lifetime    time.Duration
		renewBefore time.Duration
		// wantAtLeast and wantAtMost bound the renewal after issue (the
		// policy's jitter moves it within).
		wantAtLeast, wantAtMost time.Duration
		shortLived              bool
		saysReadyFalse          bool
	}{
		{name: "a token that lives a second is renewed at the floor", lifetime: time.Second,
			wantAtLeast: floor, wantAtMost: floor, shortLived: true, saysReadyFalse: true},
		{name: "a 60-second token keeps its renewal at about two thirds", lifetime: time.Minute,
			wantAtLeast: 31 * time.Second, wantAtMost: 45 * time.Second},
		{name: "an hour's token is untouched", lifetime: time.Hour,
			wantAtLeast: 31 * time.Minute, wantAtMost: 45 * time.Minute},
		{name: "a policy asking for a renewal sooner than the floor waits for it", lifetime: time.Minute, renewBefore: 55 * time.Second,
			wantAtLeast: floor, wantAtMost: floor, shortLived: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at := object("ns", "a")
			at.UID = "uid-1"
			if c.renewBefore > 0 {
				at.Spec.RenewBefore = &tokensv1alpha1.Duration{Duration: c.renewBefore}
			}
			at.Status.IssuedAt = &metav1.Time{Time: issued}
			at.Status.ExpiresAt = &metav1.Time{Time: issued.Add(c.lifetime)}
			rt := renewalTime(at, floor)
			if rt == nil {
				t.Fatal("no renewal time")
			}
			if d := rt.Sub(issued); d < c.wantAtLeast || d > c.wantAtMost {
				t.Fatalf("renewal %v after issue, want within [%v, %v]", d, c.wantAtLeast, c.wantAtMost)
			}
			if got := shortLived(at, floor); got != c.shortLived {
				t.Fatalf("shortLived %v, want %v", got, c.shortLived)
			}
			if got := strings.Contains(shortLivedMessage(at, floor), "Ready is False"); c.shortLived && got != c.saysReadyFalse {
				t.Fatalf("message %q: says Ready turns False %v, want %v", shortLivedMessage(at, floor), got, c.saysReadyFalse)
			}
			if rt0 := renewalTime(at, 0); c.shortLived && !rt0.Before(rt) {
				t.Fatalf("without a floor the renewal (%v) is not sooner than with one (%v)", rt0, rt)
			}
		})
	}
}

func TestShortLivedTokenIsNeverReadyAfterExpiry(t *testing.T) {
	issued := time.Unix(10000, 0)
	at := object("ns", "a")
	at.Status.IssuedAt = &metav1.Time{Time: issued}
	at.Status.ExpiresAt = &metav1.Time{Time: issued.Add(time.Second)}
	meta.SetStatusCondition(&at.Status.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionRenewing,
		Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonShortLivedToken, Message: shortLivedMessage(at, 30*time.Second)})
	in := &inputs{at: at, secretMatches: true}

	setReady(at, in, issued)
	if c := meta.FindStatusCondition(at.Status.Conditions, tokensv1alpha1.ConditionReady); c.Status != metav1.ConditionTrue {
		t.Fatalf("before expiry: Ready %s (%s)", c.Status, c.Message)
	}
	setReady(at, in, issued.Add(2*time.Second))
	c := meta.FindStatusCondition(at.Status.Conditions, tokensv1alpha1.ConditionReady)
	if c.Status != metav1.ConditionFalse || c.Reason != tokensv1alpha1.ReasonExpired {
		t.Fatalf("after expiry: Ready %s %s", c.Status, c.Reason)
	}
	if !strings.Contains(c.Message, "--min-renewal-interval") {
		t.Fatalf("Ready's message does not say why the token expired before its renewal: %q", c.Message)
	}
	if d := nextWake(at, in, decision{action: actionNone}, issued); d != time.Second {
		t.Fatalf("wakes after %v, want at the expiry to turn Ready False", d)
	}
}

func TestWriteBudgets(t *testing.T) {
	now := time.Unix(20000, 0)
	w := NewWriteBudgets(60<<10, 120<<10) // 1 KiB a second, burst 120 KiB
	if d := w.Wait("a", now); d != 0 {
		t.Fatalf("a fresh namespace waits %v", d)
	}
	w.Charge("a", 100<<10, now)
	if d := w.Wait("a", now); d != 0 {
		t.Fatalf("within the burst: waits %v", d)
	}
	w.Charge("a", 50<<10, now) // 30 KiB in debt
	d := w.Wait("a", now)
	if d < 30*time.Second || d > 32*time.Second {
		t.Fatalf("30 KiB in debt at 1 KiB/s: waits %v, want about 30s", d)
	}
	if d := w.Wait("b", now); d != 0 {
		t.Fatalf("another namespace waits %v", d)
	}
	if d := w.Wait("a", now.Add(31*time.Second)); d != 0 {
		t.Fatalf("after the debt is paid: waits %v", d)
	}
	var none *WriteBudgets
	none.Charge("a", 1<<30, now)
	if d := none.Wait("a", now); d != 0 {
		t.Fatalf("no budget: waits %v", d)
	}
	if got := writtenBytes(map[string][]byte{"token": make([]byte, 1000)}); got != 1005+secretOverheadBytes {
		t.Fatalf("writtenBytes %d", got)
	}
}

func TestMintWaitCoversEveryMintANamespaceCauses(t *testing.T) {
	now := time.Unix(30000, 0)
	r := &AccessTokenReconciler{MinMintInterval: 10 * time.Second, Mints: NewNamespaceLimiters(1, 2),
		ForcedRenewals: NewNamespaceLimiters(1, 20), attempts: lru.New(maxRememberedMints)}
	fresh := func(name string) (*tokensv1alpha1.AccessToken, *inputs) {
		at := object("ns", name)
		return at, &inputs{at: at}
	}
	cases := []struct {
		reason string
		spends bool
	}{
		{reasonNotIssued, true},
		{reasonSecretLost, true},
		{"RenewalDue", false},
		{tokensv1alpha1.ReasonRetrying, false},
	}
	for _, c := range cases {
		at, in := fresh("t-" + c.reason)
		if got := spendsMintBudget(at, in, decision{action: actionIssue, reason: c.reason}, now); got != c.spends {
			t.Errorf("%s spends the namespace's mint budget: %v, want %v", c.reason, got, c.spends)
		}
	}

	for i, name := range []string{"a", "b"} {
		at, in := fresh(name)
		if d, why := r.mintWait(at, in, decision{action: actionIssue, reason: reasonNotIssued}, now); d != 0 {
			t.Fatalf("first issue %d within the burst waits %v: %s", i, d, why)
		}
	}
	at, in := fresh("c")
	d, why := r.mintWait(at, in, decision{action: actionIssue, reason: reasonNotIssued}, now)
	if d <= 0 || !strings.Contains(why, "budget of mints") {
		t.Fatalf("a third first issue over a burst of 2: waits %v (%q)", d, why)
	}
	if d, _ := r.mintWait(at, in, decision{action: actionIssue, reason: reasonNotIssued}, now.Add(time.Second)); d != 0 {
		t.Fatalf("a second later: waits %v", d)
	}
	other := object("other", "a")
	if d, _ := r.mintWait(other, &inputs{at: other}, decision{action: actionIssue, reason: reasonNotIssued}, now); d != 0 {
		t.Fatalf("another namespace waits %v", d)
	}
	renewing := object("ns", "renewing")
	renewing.Status.IssuedAt = &metav1.Time{Time: now.Add(-time.Hour)}
	if d, _ := r.mintWait(renewing, &inputs{at: renewing}, decision{action: actionIssue, reason: "RenewalDue"}, now); d != 0 {
		t.Fatalf("a scheduled renewal waits %v for the namespace's mint budget", d)
	}

	// A deleted and re-created AccessToken has an empty status: the floor is
	// remembered by namespace and name.
	r.attempts.Add(types.NamespacedName{Namespace: "other", Name: "recreated"}, mintAttempt{at: now.Add(-4 * time.Second), uid: "old-uid"})
	recreated := object("other", "recreated")
	recreated.UID = "new-uid"
	d, why = r.mintWait(recreated, &inputs{at: recreated}, decision{action: actionIssue, reason: reasonNotIssued}, now)
	if d != 6*time.Second || !strings.Contains(why, "at most once every 10s") {
		t.Fatalf("re-created AccessToken: waits %v (%q), want 6s for the floor", d, why)
	}
}

func TestReCreatedAccessTokensSpendTheForcedBudget(t *testing.T) {
	now := time.Unix(30000, 0)
	r := &AccessTokenReconciler{MinMintInterval: 10 * time.Second, Mints: NewNamespaceLimiters(100, 1000),
		ForcedRenewals: NewNamespaceLimiters(1, 2), attempts: lru.New(maxRememberedMints)}
	first := decision{action: actionIssue, reason: reasonNotIssued}
	// Three AccessTokens minted for long ago under other UIDs, re-created now.
	for i, name := range []string{"a", "b", "c"} {
		key := types.NamespacedName{Namespace: "churn", Name: name}
		r.attempts.Add(key, mintAttempt{at: now.Add(-time.Minute), uid: types.UID("old-" + name)})
		at := object("churn", name)
		at.UID = types.UID("new-" + name)
		d, why := r.mintWait(at, &inputs{at: at}, first, now)
		if i < 2 && d != 0 {
			t.Fatalf("re-creation %d within the forced burst of 2 waits %v (%s)", i, d, why)
		}
		if i == 2 && (d <= 0 || !strings.Contains(why, "ahead of schedule")) {
			t.Fatalf("a third re-creation over the forced burst: waits %v (%q)", d, why)
		}
	}
	// A first issue of a new name, and a retry of the same object's failed
	// first issue, spend only the generous budget.
	fresh := object("churn", "new")
	if d, why := r.mintWait(fresh, &inputs{at: fresh}, first, now); d != 0 {
		t.Fatalf("a new AccessToken waits %v (%s) for the churn of others", d, why)
	}
	r.attempts.Add(types.NamespacedName{Namespace: "churn", Name: "retry"}, mintAttempt{at: now.Add(-time.Minute), uid: "same"})
	retry := object("churn", "retry")
	retry.UID = "same"
	if d, why := r.mintWait(retry, &inputs{at: retry}, first, now); d != 0 {
		t.Fatalf("a retried first issue waits %v (%s)", d, why)
	}
}

func TestMintWaitsForTheNamespaceWriteBudget(t *testing.T) {
	now := time.Unix(40000, 0)
	r := &AccessTokenReconciler{Writes: NewWriteBudgets(1<<20, 4<<20)}
	at := object("ns", "a")
	at.Status.IssuedAt = &metav1.Time{Time: now.Add(-time.Hour)}
	r.Writes.Charge("ns", 4<<20, now)
	if d, _ := r.mintWait(at, &inputs{at: at}, decision{action: actionIssue, reason: "RenewalDue"}, now); d != 0 {
		t.Fatalf("at the burst, not in debt: waits %v", d)
	}
	r.Writes.Charge("ns", 512<<10, now)
	d, why := r.mintWait(at, &inputs{at: at}, decision{action: actionIssue, reason: "RenewalDue"}, now)
	if d < 30*time.Second || d > 32*time.Second || !strings.Contains(why, "1 MiB a minute, burst 4 MiB") {
		t.Fatalf("512 KiB in debt at 1 MiB a minute: waits %v (%q), want about 30s", d, why)
	}
	other := object("other", "a")
	other.Status.IssuedAt = at.Status.IssuedAt
	if d, _ := r.mintWait(other, &inputs{at: other}, decision{action: actionIssue, reason: "RenewalDue"}, now); d != 0 {
		t.Fatalf("another namespace waits %v", d)
	}
}

func TestIssuerLimitersPauseTheNamespaceFirst(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(50000, 0))
	l := NewIssuerLimiters(1000, 1000, clk)
	limited := &issuer.Error{Class: issuer.ClassRateLimited, RetryAfter: time.Minute, Message: "slow down"}
	paused := func(ns string) bool { return l.Wait(t.Context(), "cti", ns) != nil }

	l.Observe("cti", "churn", limited, clk.Now())
	if !paused("churn") {
		t.Fatal("the namespace that got the 429 is not paused")
	}
	if paused("honest") {
		t.Fatal("another namespace is paused by one namespace's 429")
	}
	if l.Wait(t.Context(), "other-issuer", "churn") != nil {
		t.Fatal("the namespace is paused on another issuer")
	}

	clk.Step(2 * time.Minute)
	if paused("churn") {
		t.Fatal("still paused after Retry-After")
	}
	l.Observe("cti", "churn", limited, clk.Now())
	clk.Step(time.Second)
	l.Observe("cti", "honest", limited, clk.Now())
	if !paused("third") {
		t.Fatal("429s for two namespaces at once do not pause the issuer")
	}
	clk.Step(2 * time.Minute)
	if paused("third") || paused("churn") {
		t.Fatal("still paused after Retry-After")
	}
	l.Observe("cti", "churn", &issuer.Error{Class: issuer.ClassRetryable, RetryAfter: time.Minute}, clk.Now())
	if paused("churn") {
		t.Fatal("a failure other than a 429 pauses")
	}
}

func TestMakingRoomLeavesFailingRevocationsToTheirBackoff(t *testing.T) {
	now := time.Unix(60000, 0)
	st := secret.State{}
	for range maxSuperseded {
		st.Superseded = append(st.Superseded, secret.Superseded{Token: "t", RevokeAt: now.Add(time.Hour)})
	}
	st.Superseded[0].Attempts, st.Superseded[0].RevokeAt = 2, now.Add(2*time.Minute)
	capSupersededTo(&st, now, maxSuperseded-2)
	if !st.Superseded[0].RevokeAt.Equal(now.Add(2 * time.Minute)) {
		t.Fatalf("a failing revocation was brought forward: %v", st.Superseded[0].RevokeAt)
	}
	if !st.Superseded[1].RevokeAt.Equal(now) {
		t.Fatalf("the oldest untried revocation is not brought forward: %v", st.Superseded[1].RevokeAt)
	}
	if !st.Superseded[2].RevokeAt.After(now) {
		t.Fatal("more than needed brought forward")
	}
}

// Many AccessTokens of one namespace waiting for its mint budget come back
// each at its own time, and each mints at its first return: the reconciles
// grow with the AccessTokens, not with their square.
func TestWaitingMintsComeBackOneAfterAnother(t *testing.T) {
	start := time.Unix(60000, 0)
	const waiting = 200
	r := &AccessTokenReconciler{MinMintInterval: 10 * time.Second, Mints: NewNamespaceLimiters(10, 1),
		attempts: lru.New(maxRememberedMints)}
	first := decision{action: actionIssue, reason: reasonNotIssued}
	minted := map[string]time.Time{}
	reconciles := reconcileCrowd(t, r, start, crowd(waiting, nil), first, "budget of mints",
		func(at *tokensv1alpha1.AccessToken, now time.Time) {
			if _, twice := minted[at.Name]; twice {
				t.Fatalf("%s minted twice", at.Name)
			}
			minted[at.Name] = now
		})
	if len(minted) != waiting {
		t.Fatalf("%d of %d minted", len(minted), waiting)
	}
	if reconciles > 2*waiting {
		t.Fatalf("%d reconciles for %d AccessTokens waiting for one budget, want at most two each", reconciles, waiting)
	}
	// The budget holds: at 10 a second with a burst of 1, the last of 200
	// mints 19.9 s after the first.
	var last time.Time
	for _, at := range minted {
		if at.After(last) {
			last = at
		}
	}
	if got := last.Sub(start); got < 19*time.Second || got > 20*time.Second {
		t.Fatalf("the last mint came %v after the first, want about 19.9s", got)
	}
	if n := countSlots(r); n != 0 {
		t.Fatalf("%d slots kept after every mint went", n)
	}

	// A slot is its AccessToken's: one re-created under the same name waits
	// for a slot of its own, and a mint no longer due gives its slot up.
	busy := object("crowd", "busy")
	busy.UID = "old"
	if d, _ := r.mintWait(busy, &inputs{at: busy}, first, last); d <= 0 {
		t.Fatal("the budget is spent: a new first issue must wait")
	}
	again := busy.DeepCopy()
	again.UID = "new"
	d1, _ := r.mintWait(busy, &inputs{at: busy}, first, last)
	d2, _ := r.mintWait(again, &inputs{at: again}, first, last)
	if d2 <= d1 {
		t.Fatalf("a re-created AccessToken waits %v, not after the slot of the one it replaced (%v)", d2, d1)
	}
	renewal := decision{action: actionIssue, reason: "RenewalDue"}
	again.Status.IssuedAt = &metav1.Time{Time: last.Add(-time.Hour)}
	if d, _ := r.mintWait(again, &inputs{at: again}, renewal, last); d != 0 {
		t.Fatalf("a scheduled renewal waits %v", d)
	}
	if n := countSlots(r); n != 0 {
		t.Fatalf("%d slots kept for mints no longer due", n)
	}
}

func countSlots(r *AccessTokenReconciler) int {
	n := 0
	r.mintSlots.Range(func(any, any) bool { n++; return true })
	return n
}

// AccessTokens of a namespace in debt of its write budget are given turns
// one after another: each writes at its first turn, the budget holds on
// average, and the reconciles grow with the AccessTokens, not their square.
func TestWritersWaitingForADebtTakeTurns(t *testing.T) {
	start := time.Unix(70000, 0)
	const waiting, size = 200, 3 << 10
	// 60 KiB a minute: 1 KiB a second, burst 8 KiB.
	r := &AccessTokenReconciler{Writes: NewWriteBudgets(60<<10, 8<<10), Clock: clocktesting.NewFakeClock(start)}
	data := map[string][]byte{"token": make([]byte, size-secretOverheadBytes-len("token"))}
	debtor := object("crowd", "debtor")
	r.chargeWrite(debtor, data)
	r.chargeWrite(debtor, data)
	r.chargeWrite(debtor, data) // 1 KiB in debt
	renewal := decision{action: actionIssue, reason: "RenewalDue"}
	issued := &metav1.Time{Time: start.Add(-time.Hour)}
	var last time.Time
	reconciles := reconcileCrowd(t, r, start, crowd(waiting, issued), renewal, "budget of bytes",
		func(at *tokensv1alpha1.AccessToken, now time.Time) {
			// The call's own check after waiting for its issuer lets it go too.
			if d := r.writeWait(at, now); d != 0 {
				t.Fatalf("%s, at its turn, is sent back by the call for %v", at.Name, d)
			}
			r.Clock = clocktesting.NewFakeClock(now)
			r.chargeWrite(at, data)
			last = now
		})
	if reconciles > 2*waiting {
		t.Fatalf("%d reconciles for %d AccessTokens waiting for one namespace's write budget, want at most two each", reconciles, waiting)
	}
	// 200 writes of 3 KiB at 1 KiB a second: about 600 s, and not much less.
	if got := last.Sub(start); got < 580*time.Second || got > 620*time.Second {
		t.Fatalf("the last write came %v after the first, want about 600s", got)
	}
	n := 0
	r.writeSlots.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d turns kept after every write", n)
	}
}

// crowd returns n AccessTokens of one namespace, issued at issued (nil: never).
func crowd(n int, issued *metav1.Time) []*tokensv1alpha1.AccessToken {
	out := make([]*tokensv1alpha1.AccessToken, 0, n)
	for i := range n {
		at := object("crowd", fmt.Sprintf("t-%03d", i))
		at.UID = types.UID(fmt.Sprint("uid-", i))
		at.Status.IssuedAt = issued
		out = append(out, at)
	}
	return out
}

// reconcileCrowd reconciles ats, all due at start, each again after the wait
// mintWait gives it (whose reason must name budget), and calls mint at the
// time it may mint; it returns the reconciles made.
func reconcileCrowd(t *testing.T, r *AccessTokenReconciler, start time.Time, ats []*tokensv1alpha1.AccessToken, d decision,
	budget string, mint func(*tokensv1alpha1.AccessToken, time.Time)) int {
	t.Helper()
	type due struct {
		at   *tokensv1alpha1.AccessToken
		when time.Time
	}
	var queue []due
	for _, at := range ats {
		queue = append(queue, due{at, start})
	}
	reconciles := 0
	for len(queue) > 0 {
		slices.SortStableFunc(queue, func(a, b due) int { return a.when.Compare(b.when) })
		next := queue[0]
		queue = queue[1:]
		reconciles++
		wait, why := r.mintWait(next.at, &inputs{at: next.at}, d, next.when)
		if wait > 0 {
			if !strings.Contains(why, budget) {
				t.Fatalf("%s waits %v: %q", next.at.Name, wait, why)
			}
			queue = append(queue, due{next.at, next.when.Add(wait)})
			continue
		}
		mint(next.at, next.when)
	}
	return reconciles
}
