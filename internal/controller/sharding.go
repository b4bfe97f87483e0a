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
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tokenmint/tokenmint/internal/sharding"
)

// ShardIdentity returns a replica identity for sharding: the host (pod)
// name and a random suffix, so that a restarted pod of the same name is a
// new member and never mistakes its predecessor's Leases for its own.
func ShardIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "tokenmint"
	}
	host = strings.ToLower(host)
	if len(host) > 40 {
		host = host[:40]
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return strings.Trim(host, ".-") + "-" + hex.EncodeToString(b)
}

// setupSharding starts this replica's share of the ranges when
// cfg.ShardRanges > 0: a Coordinator that holds range Leases next to the
// leader's, and whose ranges, once taken, queue their AccessTokens on the
// returned channel. The per-issuer limits of calls and limiters become this
// replica's share of them, in proportion to the ranges it serves, and the
// pauses after a 429 are shared through the issuers' pause Leases. It returns
// nils when sharding is off.
func (c *Config) setupSharding(ctx context.Context, mgr ctrl.Manager, calls *Calls, limiters *IssuerLimiters, clk clock.Clock) (*sharding.Coordinator, chan event.GenericEvent, error) {
	if c.ShardRanges <= 0 {
		return nil, nil, nil
	}
	// The Leases have a client of their own, apart from the controllers'
	// shared token bucket, as leader election has: renewing never waits
	// behind reconciles. One Sync lists once and writes each Lease held.
	lc := rest.CopyConfig(mgr.GetConfig())
	lc.RateLimiter = nil
	lc.QPS, lc.Burst = float32(max(20, 2*c.ShardRanges)), max(40, 4*c.ShardRanges)
	leases, err := client.New(lc, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return nil, nil, err
	}
	if c.cacheRanges != nil && len(c.WatchNamespaces) == 0 {
		// Ranges taken are listed namespace by namespace where cheaper;
		// the namespaces are read from the API server, as a cache may lag
		// the snapshot the lists are read at.
		reader := mgr.GetAPIReader()
		c.cacheRanges.ListNamespacesWith(func(ctx context.Context) ([]string, error) {
			return listNamespaces(ctx, reader)
		})
	}
	identity := c.ShardIdentity
	if identity == "" {
		identity = ShardIdentity()
	}
	events := make(chan event.GenericEvent, 1024)
	ranges := c.ShardRanges
	calls.AllReplicas = true
	var ticking clock.WithTicker = clock.RealClock{}
	if t, ok := clk.(clock.WithTicker); ok {
		ticking = t
	}
	if c.ShardClock != nil {
		ticking = c.ShardClock
	}
	// The share of each per-issuer limit follows the ranges served: it drops
	// as soon as a range starts draining, and grows only once a range is
	// taken. A range is released once the calls in flight to every issuer
	// fit the share of the ranges kept, so that the replicas' shares add up
	// to at most the limit at every moment (see docs/sharding.md).
	var co *sharding.Coordinator
	calls.Share = func(limit int) int { return sharding.Share(limit, co.Serving(), ranges) }
	limiters.Share = func() (int, int) { return co.Serving(), ranges }
	board := &PauseBoard{Client: leases, Namespace: c.OperatorNamespace, Identity: identity, Clock: clk, Limiters: limiters,
		MinPause: c.RetryPeriod, Budget: NewNamespaceLimiters(pausePublishRate, pausePublishBurst)}
	limiters.Pauses = board
	co, err = sharding.New(sharding.Options{
		Client: leases, Namespace: c.OperatorNamespace, Identity: identity, Ranges: ranges,
		LeaseDuration: c.LeaseDuration, RenewDeadline: c.RenewDeadline, RetryPeriod: c.RetryPeriod,
		Clock: ticking,
		InFlight: func(rng int) int {
			return calls.InFlight(func(ns string) bool { return sharding.RangeOf(ns, ranges) == rng })
		},
		Acquired: func(rng int) {
			calls.Kick()
			go enqueueRange(ctx, mgr.GetCache(), rng, ranges, events)
		},
		// The calls of a range being released that wait their turn would
		// only hold its handover up (and spend the issuer's rate doing
		// nothing): the replica that takes the range decides again.
		Draining: func(rng int) {
			n := calls.DropWaiting(func(ns string) bool { return sharding.RangeOf(ns, ranges) == rng })
			logf.FromContext(ctx).Info("releasing a range: its calls not started are left to its next holder", "range", rng, "dropped", n)
		},
		// The cache holds the ranges held, draining ones included (their
		// calls in flight still read and write their objects), and those
		// this replica is to take, listed while their holder still serves
		// them.
		Changed: func(ranges []int) {
			if c.cacheRanges != nil {
				c.cacheRanges.SetRanges(ranges)
			}
		},
		HandoverTimeout: c.ShardHandoverTimeout,
		Ready: func(rng int) bool {
			return c.cacheRanges == nil || c.cacheRanges.CachedRange(rng)
		},
		Shrink: func(kept int) bool { return calls.MostRunning() <= sharding.Share(calls.PerIssuer, kept, ranges) },
		Observed: func(leases []coordinationv1.Lease) {
			board.Observed(ctx, leases)
			// A range wanted again after a drain began counts again.
			calls.Kick()
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sharding: %w", err)
	}
	if err := mgr.Add(co); err != nil {
		return nil, nil, err
	}
	if c.shards != nil {
		c.shards.Store(co)
	}
	currentShards.Store(&shardGauges{shards: co, filter: c.cacheRanges, reader: mgr.GetCache(), perIssuer: calls.PerIssuer})
	logf.FromContext(ctx).Info("sharding the namespaced work", "ranges", ranges, "identity", identity)
	if calls.PerIssuer < ranges {
		logf.FromContext(ctx).Info("--issuer-concurrency is below --shard-ranges: a replica whose ranges bring less than one call slot waits for ranges to move before it calls an issuer",
			"issuerConcurrency", calls.PerIssuer, "ranges", ranges)
	}
	return co, events, nil
}

// HandOverShards, with sharding on, hands this replica's ranges over before
// the manager stops: the others list them while this replica still serves
// them, for ShardLeaveTimeout at most (see sharding.Coordinator.HandOver).
// The manager's stop then releases what is left. With sharding off, or
// before Setup, it returns at once.
func (c *Config) HandOverShards() {
	if c.shards == nil || c.ShardLeaveTimeout <= 0 {
		return
	}
	co := c.shards.Load()
	if co == nil {
		return
	}
	log := logf.Log.WithName("sharding")
	log.Info("handing the ranges over before stopping", "ranges", co.Held(), "timeout", c.ShardLeaveTimeout.String())
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), c.ShardLeaveTimeout)
	defer cancel()
	co.HandOver(ctx)
	log.Info("stopping", "rangesLeft", co.Held(), "seconds", time.Since(start).Round(time.Millisecond).Seconds())
}

// onEveryShard runs r on every replica when sharding is on (the metadata
// cache that the AccessToken controller watches), and only on the leader,
// as before, when it is off.
func (c *Config) onEveryShard(r manager.Runnable) manager.Runnable {
	if c.ShardRanges <= 0 {
		return r
	}
	return everyReplica{r}
}

type everyReplica struct{ manager.Runnable }

func (everyReplica) NeedLeaderElection() bool { return false }

// enqueueRange queues every AccessToken of range rng, which this replica
// has just taken: their watch events came while another replica held it.
func enqueueRange(ctx context.Context, reader client.Reader, rng, ranges int, events chan<- event.GenericEvent) {
	items, err := cachedAccessTokens(ctx, reader)
	if err != nil {
		logf.FromContext(ctx).Error(err, "listing the AccessTokens of a range taken", "range", rng)
		return
	}
	for _, at := range items {
		if sharding.RangeOf(at.Namespace, ranges) != rng {
			continue
		}
		select {
		case events <- event.GenericEvent{Object: at}:
		case <-ctx.Done():
			return
		}
	}
}

// shardGauges exports this replica's share: the ranges it serves and the
// AccessTokens in them. Nothing is exported with sharding off.
type shardGauges struct {
	shards *sharding.Coordinator
	// filter is what the cache holds (nil: the cache is not narrowed).
	filter    *sharding.CacheFilter
	reader    client.Reader
	perIssuer int
}

var (
	currentShards   atomic.Pointer[shardGauges]
	shardRangesDesc = prometheus.NewDesc("tokenmint_shard_ranges_held",
		"Hash ranges of namespaces this replica serves (with --shard-ranges).", nil, nil)
	shardCachedDesc = prometheus.NewDesc("tokenmint_shard_ranges_cached",
		"Hash ranges whose AccessTokens and Secrets this replica's cache has listed since it took them (with --shard-ranges): below tokenmint_shard_ranges_held while a range taken is being loaded.", nil, nil)
	shardIncomingDesc = prometheus.NewDesc("tokenmint_shard_ranges_incoming",
		"Hash ranges this replica is to take from another and caches meanwhile, while their holder still serves them (with --shard-ranges and --shard-handover-timeout).", nil, nil)
	shardTokensDesc = prometheus.NewDesc("tokenmint_shard_accesstokens",
		"AccessTokens in the namespaces of the ranges this replica serves (with --shard-ranges).", nil, nil)
	shardConcurrencyDesc = prometheus.NewDesc("tokenmint_shard_issuer_concurrency",
		"Calls in flight this replica may have to one issuer: its share of --issuer-concurrency (with --shard-ranges).", nil, nil)
	shardRateDesc = prometheus.NewDesc("tokenmint_shard_issuer_rate_share",
		"Part of each issuer's rate and burst this replica may use: the ranges it serves over all ranges (with --shard-ranges).", nil, nil)
)

type shardCollector struct{}

func (shardCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- shardRangesDesc
	ch <- shardCachedDesc
	ch <- shardIncomingDesc
	ch <- shardTokensDesc
	ch <- shardConcurrencyDesc
	ch <- shardRateDesc
}

func (shardCollector) Collect(ch chan<- prometheus.Metric) {
	g := currentShards.Load()
	if g == nil {
		return
	}
	held := g.shards.Held()
	ch <- prometheus.MustNewConstMetric(shardRangesDesc, prometheus.GaugeValue, float64(len(held)))
	ch <- prometheus.MustNewConstMetric(shardIncomingDesc, prometheus.GaugeValue, float64(len(g.shards.Incoming())))
	if g.filter != nil {
		cached := 0
		for _, rng := range held {
			if g.filter.CachedRange(rng) {
				cached++
			}
		}
		ch <- prometheus.MustNewConstMetric(shardCachedDesc, prometheus.GaugeValue, float64(cached))
	}
	ranges := g.shards.Ranges()
	ch <- prometheus.MustNewConstMetric(shardConcurrencyDesc, prometheus.GaugeValue,
		float64(sharding.Share(g.perIssuer, len(held), ranges)))
	ch <- prometheus.MustNewConstMetric(shardRateDesc, prometheus.GaugeValue, float64(len(held))/float64(ranges))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	items, err := cachedAccessTokens(ctx, g.reader)
	if err != nil {
		return
	}
	n := 0
	for _, at := range items {
		if g.shards.Holds(at.Namespace) {
			n++
		}
	}
	ch <- prometheus.MustNewConstMetric(shardTokensDesc, prometheus.GaugeValue, float64(n))
}

func init() {
	metrics.Registry.MustRegister(shardCollector{})
}

// listNamespaces returns the names of every namespace, read from the API
// server page by page, metadata only.
func listNamespaces(ctx context.Context, reader client.Reader) ([]string, error) {
	var names []string
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	opts := []client.ListOption{client.Limit(500)}
	for {
		if err := reader.List(ctx, list, opts...); err != nil {
			return nil, err
		}
		for i := range list.Items {
			names = append(names, list.Items[i].Name)
		}
		if list.Continue == "" {
			return names, nil
		}
		opts = []client.ListOption{client.Limit(500), client.Continue(list.Continue)}
	}
}
