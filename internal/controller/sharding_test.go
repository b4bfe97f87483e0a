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
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/sharding"
)

const shardRanges = 16

// shardCaches holds each sharded replica's cache, by identity.
var shardCaches = map[string]cache.Cache{}

// liveShards names the sharded replicas running now.
var liveShards = map[string]bool{}

// stepLeases moves the Leases' clock on by one retry period, but only once
// every running replica has begun a round at the current time (its member
// Lease renewed at it): however slow the machine, no replica falls more than
// a round behind the clock, as none would on a real one, so none sees
// another's Leases expire only because that one had no time to renew them.
// Called from a polling function, it leaves the clock alone until then, and
// reports whether it moved it.
func stepLeases(leases *clocktesting.FakeClock) bool {
	now := leases.Now().Truncate(time.Microsecond)
	for id := range liveShards {
		l := &coordinationv1.Lease{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: sharding.MemberLeaseName(id)}, l); err != nil ||
			l.Spec.RenewTime == nil || l.Spec.RenewTime.Time.Before(now) {
			return false
		}
	}
	leases.Step(2 * time.Second)
	return true
}

// startShardedManager starts a replica with sharding on, as cmd/main.go
// does with --leader-elect and --shard-ranges, its range Leases timed by
// leases.
func startShardedManager(identity string, leases *clocktesting.FakeClock) *runningManager {
	conf := testConfig()
	conf.ShardRanges, conf.ShardIdentity, conf.ShardClock = shardRanges, identity, leases
	conf.LeaseDuration, conf.RenewDeadline, conf.RetryPeriod = 15*time.Second, 10*time.Second, 2*time.Second
	// Warm handovers, as by default: a range moves only once the replica
	// that takes it has it cached, which the specs' minute of stepping
	// the Leases' clock (2 s a step) never reaches without.
	conf.ShardHandoverTimeout = DefaultShardHandoverTimeout
	m, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme.Scheme,
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		Cache:                         conf.CacheOptions(),
		Controller:                    config.Controller{SkipNameValidation: ptr.To(true)},
		LeaderElection:                true,
		LeaderElectionID:              "tokenmint-sharding-spec",
		LeaderElectionNamespace:       operatorNamespace,
		LeaderElectionReleaseOnCancel: true,
		// Every line a replica logs says which one wrote it.
		Logger: logf.Log.WithName(identity),
	})
	Expect(err).NotTo(HaveOccurred())
	mctx, mcancel := context.WithCancel(logf.IntoContext(ctx, logf.Log.WithName(identity)))
	Expect(Setup(mctx, m, conf)).To(Succeed())
	shardCaches[identity] = m.GetCache()
	rm := &runningManager{cancel: mcancel, done: make(chan struct{}), shard: identity}
	liveShards[identity] = true
	go func() {
		defer GinkgoRecover()
		defer close(rm.done)
		Expect(m.Start(mctx)).To(Succeed())
	}()
	return rm
}

// rangeHolders returns the holder of each range Lease that has one.
func rangeHolders(g Gomega) map[int]string {
	list := &coordinationv1.LeaseList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(operatorNamespace),
		client.MatchingLabels{sharding.LabelLease: sharding.RoleRange})).To(Succeed())
	out := map[int]string{}
	for _, l := range list.Items {
		for rng := range shardRanges {
			if l.Name == sharding.RangeLeaseName(rng) && ptr.Deref(l.Spec.HolderIdentity, "") != "" {
				out[rng] = *l.Spec.HolderIdentity
			}
		}
	}
	return out
}

// cachedShare returns, of the namespaces of envs, those whose AccessTokens
// and whose token Secrets the cache of identity holds.
func cachedShare(g Gomega, identity string, envs []*env) (tokens, secrets map[string]bool) {
	ours := map[string]bool{}
	for _, e := range envs {
		ours[e.ns] = true
	}
	c := shardCaches[identity]
	tokens, secrets = map[string]bool{}, map[string]bool{}
	ats := &tokensv1alpha1.AccessTokenList{}
	g.Expect(c.List(ctx, ats)).To(Succeed())
	for _, at := range ats.Items {
		if ours[at.Namespace] {
			tokens[at.Namespace] = true
		}
	}
	ss := &corev1.SecretList{}
	g.Expect(c.List(ctx, ss)).To(Succeed())
	for _, s := range ss.Items {
		if ours[s.Namespace] && s.Name == "sharded-token" {
			secrets[s.Namespace] = true
		}
	}
	return tokens, secrets
}

// expectCachedShares checks that each replica's cache holds the
// AccessTokens and Secrets of exactly the namespaces of its ranges.
func expectCachedShares(envs []*env, identities ...string) {
	Eventually(func(g Gomega) {
		holders := rangeHolders(g)
		for _, id := range identities {
			want := map[string]bool{}
			for _, e := range envs {
				if holders[sharding.RangeOf(e.ns, shardRanges)] == id {
					want[e.ns] = true
				}
			}
			tokens, secrets := cachedShare(g, id, envs)
			g.Expect(tokens).To(Equal(want), "AccessTokens cached by %s", id)
			g.Expect(secrets).To(Equal(want), "token Secrets cached by %s", id)
		}
	}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
}

func countByHolder(holders map[int]string) map[string]int {
	out := map[string]int{}
	for _, h := range holders {
		out[h]++
	}
	return out
}

var _ = Describe("sharding", func() {
	It("splits the ranges between two replicas, issues each token once, and hands a stopped replica's ranges over without minting again", func() {
		By("running two sharded replicas instead of the suite's manager")
		mgr.stop()
		leases := clocktesting.NewFakeClock(time.Now())
		a := startShardedManager("replica-a", leases)
		b := startShardedManager("replica-b", leases)
		stopped := map[*runningManager]bool{}
		var c *runningManager
		DeferCleanup(func() {
			for _, r := range []*runningManager{a, b, c} {
				if r != nil && !stopped[r] {
					r.stop()
				}
			}
			mgr = startManager()
		})
		step := func() { _ = stepLeases(leases) }

		Eventually(func(g Gomega) {
			step()
			holders := rangeHolders(g)
			g.Expect(holders).To(HaveLen(shardRanges))
			g.Expect(countByHolder(holders)).To(Equal(map[string]int{"replica-a": 8, "replica-b": 8}))
		}, 60*time.Second, 500*time.Millisecond).Should(Succeed())

		By("issuing AccessTokens in namespaces of both replicas' ranges")
		var envs []*env
		var tokens []*tokensv1alpha1.AccessToken
		for range 10 {
			e := newEnv()
			envs = append(envs, e)
			tokens = append(tokens, e.accessToken("sharded"))
		}
		served := map[string]bool{}
		holders := rangeHolders(Default)
		for _, at := range tokens {
			waitReady(at)
			served[holders[sharding.RangeOf(at.Namespace, shardRanges)]] = true
		}
		Expect(served).To(HaveLen(2), "the namespaces all fell into one replica's ranges")
		for i, e := range envs {
			settle(tokens[i])
			Expect(e.fake.Issued()).To(HaveLen(1), "namespace %s", e.ns)
		}

		By("caching in each replica only the AccessTokens and Secrets of its ranges")
		expectCachedShares(envs, "replica-a", "replica-b")
		for _, id := range []string{"replica-a", "replica-b"} {
			tokens, _ := cachedShare(Default, id, envs)
			Expect(len(tokens)).To(BeNumerically("<", len(envs)), "%s caches every namespace", id)
		}

		By("stopping replica b: its ranges move to a, which takes them at once")
		b.stop()
		stopped[b] = true
		Eventually(func(g Gomega) {
			step()
			holders := rangeHolders(g)
			g.Expect(holders).To(HaveLen(shardRanges))
			g.Expect(countByHolder(holders)).To(Equal(map[string]int{"replica-a": shardRanges}))
		}, 60*time.Second, 500*time.Millisecond).Should(Succeed())
		By("filling a's cache with the ranges it took")
		expectCachedShares(envs, "replica-a")
		for i, e := range envs {
			poke(tokens[i])
			settle(tokens[i])
			Expect(e.fake.Issued()).To(HaveLen(1), "a valid token of %s was minted again after the handover", e.ns)
		}

		By("renewing every token, once, on the remaining replica")
		latest := clk.Now()
		for _, at := range tokens {
			if t := get(at).Status.RenewalTime.Time; t.After(latest) {
				latest = t
			}
		}
		clk.SetTime(latest.Add(time.Second))
		for i, e := range envs {
			poke(tokens[i])
			Eventually(func() int { return len(e.fake.Issued()) }, 20*time.Second).Should(Equal(2), "namespace %s", e.ns)
		}
		for i, e := range envs {
			settle(tokens[i])
			Expect(e.fake.Issued()).To(HaveLen(2), "namespace %s renewed more than once", e.ns)
			s, err := secretOf(tokens[i])
			Expect(err).NotTo(HaveOccurred())
			Expect(string(s.Data["token"])).To(Equal(e.fake.Issued()[1].Value))
		}

		By("starting replica c: a keeps serving while c lists its half of the ranges, then drains and gives them to c, whose objects leave a's cache for c's")
		c = startShardedManager("replica-c", leases)
		Eventually(func(g Gomega) {
			step()
			holders := rangeHolders(g)
			g.Expect(holders).To(HaveLen(shardRanges))
			g.Expect(countByHolder(holders)).To(Equal(map[string]int{"replica-a": 8, "replica-c": 8}))
		}, 60*time.Second, 500*time.Millisecond).Should(Succeed())
		expectCachedShares(envs, "replica-a", "replica-c")
		for i, e := range envs {
			poke(tokens[i])
			settle(tokens[i])
			Expect(e.fake.Issued()).To(HaveLen(2), "a valid token of %s was minted again after moving to c", e.ns)
		}
	})
})
