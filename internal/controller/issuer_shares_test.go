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
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/sharding"
	"github.com/tokenmint/tokenmint/test/fakes"
)

// limitedIssuer is one ClusterTokenIssuer on one provider fake, for
// AccessTokens in namespaces served by different replicas.
type limitedIssuer struct {
	name string
	fake *fakes.TransactionAPI
}

func newLimitedIssuer() *limitedIssuer {
	s := &limitedIssuer{name: "shared-" + rand.String(6), fake: fakes.NewTransactionAPI(canaryAuthToken)}
	s.fake.Clock = clk
	s.fake.Lifetime = time.Hour
	url := serveFake(s.fake, &s.fake.Base)
	spec := transactionsSpec(url)
	// The longest timeout: the specs hold calls while ranges move.
	spec.Timeout = &tokensv1alpha1.Duration{Duration: time.Minute}
	renameSecretRefs(&spec, "-"+s.name)
	cred := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cable-auth-" + s.name, Namespace: credentialsNamespace},
		StringData: map[string]string{"token": canaryAuthToken}}
	Expect(k8sClient.Create(ctx, cred)).To(Succeed())
	DeferCleanup(k8sClient.Delete, ctx, cred)
	cti := &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: s.name},
		Spec: tokensv1alpha1.ClusterTokenIssuerSpec{IssuerSpec: spec}}
	Expect(k8sClient.Create(ctx, cti)).To(Succeed())
	DeferCleanup(k8sClient.Delete, ctx, cti)
	return s
}

// accessToken creates an AccessToken on the shared issuer in namespace ns.
func (s *limitedIssuer) accessToken(ns, name string) *tokensv1alpha1.AccessToken {
	at := &tokensv1alpha1.AccessToken{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: tokensv1alpha1.AccessTokenSpec{
			IssuerRef: tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: s.name},
			Secret:    tokensv1alpha1.SecretTemplate{Name: name + "-token"},
		},
	}
	Expect(k8sClient.Create(ctx, at)).To(Succeed())
	return at
}

// namespaceIn creates a namespace whose range holders gives to holder.
func namespaceIn(holders map[int]string, holder string) string {
	for {
		ns := "s-" + rand.String(6)
		if holders[sharding.RangeOf(ns, shardRanges)] == holder {
			Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
			return ns
		}
	}
}

// shardedReplicas runs sharded replicas of ids instead of the suite's manager.
func shardedReplicas(leases *clocktesting.FakeClock, ids ...string) []*runningManager {
	mgr.stop()
	var out []*runningManager
	for _, id := range ids {
		out = append(out, startShardedManager(id, leases))
	}
	DeferCleanup(func() {
		for _, r := range out {
			r.stop()
		}
		mgr = startManager()
	})
	return out
}

// waitBalanced steps the Leases' clock until the ranges are held as want
// says. It steps the manager's clock a second each time too: a range is
// released only once its calls waiting have gone, and AccessTokens left by
// earlier specs may wait for their issuer's rate on that clock.
func waitBalanced(leases *clocktesting.FakeClock, want map[string]int) map[int]string {
	var holders map[int]string
	Eventually(func(g Gomega) {
		_ = stepLeases(leases)
		clk.Step(time.Second)
		holders = rangeHolders(g)
		g.Expect(holders).To(HaveLen(shardRanges))
		g.Expect(countByHolder(holders)).To(Equal(want))
	}, 60*time.Second, 500*time.Millisecond).Should(Succeed())
	return holders
}

var _ = Describe("per-issuer limits with sharding", func() {
	It("keeps the calls in flight to a shared issuer within its limit over all replicas, while ranges move", func() {
		leases := clocktesting.NewFakeClock(time.Now())
		shardedReplicas(leases, "limits-a")
		holders := waitBalanced(leases, map[string]int{"limits-a": shardRanges})

		By("a slow provider holding every call until the spec lets it go, counting those in flight")
		s := newLimitedIssuer()
		held := &inFlight{}
		// A call ends when the spec sends on release (or closes it); one the
		// client gave up on issues nothing.
		release := make(chan struct{})
		var closed atomic.Bool
		s.fake.SetFaultHook(func(r *http.Request) *fakes.Fault {
			held.enter()
			defer held.now.Add(-1)
			select {
			case <-release:
				return nil
			case <-r.Context().Done():
				return &fakes.Fault{Status: http.StatusServiceUnavailable}
			}
		})
		DeferCleanup(func() {
			if closed.CompareAndSwap(false, true) {
				close(release)
			}
		})
		var namespaces []string
		var tokens []*tokensv1alpha1.AccessToken
		for i := range 12 {
			ns := namespaceIn(holders, "limits-a")
			namespaces = append(namespaces, ns)
			for j := range 6 {
				tokens = append(tokens, s.accessToken(ns, fmt.Sprintf("t%d-%d", i, j)))
			}
		}
		By("one replica with every range has the whole limit in flight, no more")
		Eventually(held.now.Load, 20*time.Second).Should(BeEquivalentTo(DefaultIssuerConcurrency))
		Consistently(held.now.Load, time.Second, 50*time.Millisecond).Should(BeEquivalentTo(DefaultIssuerConcurrency))

		By("a second replica: half the ranges move while calls end one at a time")
		startedB := startShardedManager("limits-b", leases)
		DeferCleanup(startedB.stop)
		stopReleasing := make(chan struct{})
		releasing := make(chan struct{})
		var stopOnce sync.Once
		stop := func() { stopOnce.Do(func() { close(stopReleasing); <-releasing }) }
		DeferCleanup(stop) // before release is closed
		go func() {
			defer GinkgoRecover()
			defer close(releasing)
			t := time.NewTicker(150 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stopReleasing:
					return
				case <-t.C:
					// One call in flight ends, if any is.
					select {
					case release <- struct{}{}:
					default:
					}
				}
			}
		}()
		holders = waitBalanced(leases, map[string]int{"limits-a": 8, "limits-b": 8})
		stop()
		Expect(held.most.Load()).To(BeNumerically("<=", DefaultIssuerConcurrency), "more calls in flight than the issuer's limit")

		By("balanced, with more than its share waiting on each replica: each fills its share, 10 of 20, no more")
		for _, replica := range []string{"limits-a", "limits-b"} {
			ns := namespaceIn(holders, replica)
			namespaces = append(namespaces, ns)
			for j := range 11 {
				tokens = append(tokens, s.accessToken(ns, fmt.Sprintf("more-%d", j)))
			}
		}
		// One replica alone may have 10 in flight: 20 needs both.
		Eventually(held.now.Load, 20*time.Second).Should(BeEquivalentTo(DefaultIssuerConcurrency))
		Consistently(held.now.Load, 2*time.Second, 50*time.Millisecond).Should(BeEquivalentTo(DefaultIssuerConcurrency))
		served := map[string]bool{}
		for _, ns := range namespaces {
			served[holders[sharding.RangeOf(ns, shardRanges)]] = true
		}
		Expect(served).To(HaveLen(2), "the namespaces all stayed in one replica's ranges")

		By("every call let go: every token issued once, never more than the limit in flight")
		if closed.CompareAndSwap(false, true) {
			close(release)
		}
		for _, at := range tokens {
			waitReady(at)
		}
		Expect(s.fake.Issued()).To(HaveLen(len(tokens)))
		Expect(held.most.Load()).To(BeNumerically("<=", DefaultIssuerConcurrency))
	})

	It("stops every replica calling an issuer that asked to slow down on one", func() {
		leases := clocktesting.NewFakeClock(time.Now())
		shardedReplicas(leases, "pause-a", "pause-b")
		holders := waitBalanced(leases, map[string]int{"pause-a": 8, "pause-b": 8})
		s := newLimitedIssuer()
		var limited atomic.Bool
		limited.Store(true)
		s.fake.SetFaultHook(func(*http.Request) *fakes.Fault {
			if !limited.Load() {
				return nil
			}
			return &fakes.Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"60"}},
				Body: `{"message":"slow down"}`}
		})

		By("429 with Retry-After: 60 for two namespaces on replica a: a pauses the whole issuer and writes it down")
		paused := clk.Now()
		for i, ns := range []string{namespaceIn(holders, "pause-a"), namespaceIn(holders, "pause-a")} {
			at := s.accessToken(ns, "limited")
			Eventually(func() *metav1.Time { return get(at).Status.LastFailureTime }, 20*time.Second).ShouldNot(BeNil())
			Expect(s.fake.Calls()).To(Equal(i + 1))
		}
		lease := &coordinationv1.Lease{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace,
				Name: PauseLeaseName(issuerKey(tokensv1alpha1.ClusterTokenIssuerKind, "", s.name))}, lease)).To(Succeed())
			g.Expect(lease.Annotations[AnnotationIssuerPausedUntil]).NotTo(BeEmpty())
		}, 20*time.Second).Should(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, lease)
		Expect(lease.Spec.HolderIdentity).To(HaveValue(Equal("pause-a")))
		until, err := time.Parse(time.RFC3339Nano, lease.Annotations[AnnotationIssuerPausedUntil])
		Expect(err).NotTo(HaveOccurred())
		Expect(until).To(BeTemporally("~", paused.Add(time.Minute), 2*time.Second))

		By("replica b reads it with the sharding Leases; the provider would answer now, but b does not call")
		for range 3 {
			Eventually(func() bool { return stepLeases(leases) }, 20*time.Second, 100*time.Millisecond).Should(BeTrue())
		}
		limited.Store(false)
		other := s.accessToken(namespaceIn(holders, "pause-b"), "elsewhere")
		Eventually(func() *metav1.Time { return get(other).Status.LastFailureTime }, 20*time.Second).ShouldNot(BeNil())
		Consistently(s.fake.Calls, 2*time.Second, 100*time.Millisecond).Should(Equal(2), "replica b called an issuer paused by a")
		Expect(renewing(other).Reason).To(Equal(tokensv1alpha1.ReasonRateLimited))

		By("once the minute has passed on the clock, b calls again")
		clk.Step(time.Minute + 5*time.Second)
		poke(other)
		waitReady(other)
		Expect(s.fake.Calls()).To(Equal(3))
		Expect(s.fake.Issued()).To(HaveLen(1))
	})
})
