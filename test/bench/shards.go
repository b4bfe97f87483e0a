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

package main

// The shards mode runs N AccessTokens over several manager processes that
// share the namespaces by hash ranges (--shard-ranges, --leader-elect), and
// moves the ranges about: scale 1 → REPLICAS → 2, a SIGKILL of one replica
// (a replacement starts, as a Deployment would start one), back to REPLICAS
// and a rolling restart. Tokens are short-lived, so renewals happen
// throughout. It checks that every token the endpoint issued reached its
// Secret (no mint twice for one renewal), that no Secret ever held an expired
// token, that a killed replica's ranges were served again within the lease
// duration plus 30 s, that the ranges per replica differ by at most one once
// each phase settles, and the calls in flight at the one issuer across all
// replicas against --issuer-concurrency.
//
//	go run ./test/bench -shards 1000 [-shards-replicas 4 -shards-lifetime 2m]

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/sharding"
	"github.com/tokenmint/tokenmint/test/controlplane"
)

// shardsOptions configure the shards mode.
type shardsOptions struct {
	n             int
	replicas      int
	scaleDown     int
	ranges        int
	namespaces    int
	lifetime      time.Duration
	delay         time.Duration
	settleTimeout time.Duration
	burst         bool
	grace         time.Duration
}

func registerShardsFlags(fs *flag.FlagSet) *shardsOptions {
	o := &shardsOptions{}
	fs.IntVar(&o.n, "shards", 0, "Run this many AccessTokens over several sharing replicas instead (writes bin/bench-shards-<N>.md).")
	fs.IntVar(&o.replicas, "shards-replicas", 4, "Replicas at the largest scale.")
	fs.IntVar(&o.scaleDown, "shards-scale-down", 2, "Replicas after scaling down, before the SIGKILL.")
	fs.IntVar(&o.ranges, "shards-ranges", 16, "The manager's --shard-ranges.")
	fs.IntVar(&o.namespaces, "shards-namespaces", 0, "Namespaces the AccessTokens are spread over (0: N/10, at least 1).")
	fs.DurationVar(&o.lifetime, "shards-lifetime", 2*time.Minute, "Lifetime of the tokens the endpoint issues: short, so that renewals run through every phase.")
	fs.DurationVar(&o.delay, "shards-endpoint-delay", 500*time.Millisecond, "How long the endpoint takes to answer, so that calls overlap and the calls in flight can reach --issuer-concurrency.")
	fs.DurationVar(&o.settleTimeout, "shards-settle-timeout", 3*time.Minute, "Longest wait for the ranges to balance after a phase.")
	fs.DurationVar(&o.grace, "shards-grace", 90*time.Second, "How long a SIGTERMed replica may take to exit before it is killed, as a pod's terminationGracePeriodSeconds (the chart's 90 s); raise it with the manager's --shard-leave-timeout.")
	fs.BoolVar(&o.burst, "shards-burst", true, "At the largest scale, change the issuer (a header added), which re-issues every token at once: the calls in flight at the issuer across all replicas.")
	return o
}

// replica is one manager process.
type replica struct {
	name      string // r1, r2 … in order of start
	id        string // its sharding identity
	m         *manager
	killed    atomic.Bool
	stopped   atomic.Bool
	issued    atomic.Int64 // tokenmint_tokens_issued_total, last scraped
	peakRSS   atomic.Int64
	startedAt time.Time
	// exitNoticed is set once an exit without a stop or a kill was counted.
	exitNoticed atomic.Bool
}

func (r *replica) live() bool { return !r.killed.Load() && !r.stopped.Load() && !r.m.exited() }

// shareRow is one replica's share once a phase settled.
type shareRow struct {
	name, id     string
	leaseRanges  int
	metricRanges float64 // tokenmint_shard_ranges_held; -1 when absent
	tokens       float64 // tokenmint_shard_accesstokens; -1 when absent
	cache        float64 // tokenmint_cache_objects; -1 when absent
	rss          float64
}

// shardsPhase is what one phase measured.
type shardsPhase struct {
	name     string
	settle   time.Duration // from the last process change until balanced
	balanced bool
	counts   string
	shares   []shareRow
}

// stepFigures are the endpoint's figures over one step of the run.
type stepFigures struct {
	name        string
	took        time.Duration
	calls       int
	maxInFlight int64
	maxPerSec   int
}

// shardsResults is what the run measured.
type shardsResults struct {
	command, revision string
	machine           machine
	o                 shardsOptions
	settings          map[string]string
	leaseDuration     time.Duration
	concurrency       int
	minMintInterval   time.Duration
	namespaces        int
	started           time.Time

	issueAll     time.Duration
	burstAll     time.Duration
	burstMissing int
	expiredKeys  []string // a few AccessTokens whose Secret held an expired token, with the gap
	phases       []*shardsPhase
	steps        []stepFigures
	failover     time.Duration
	failoverDone bool
	// failoverCached is from the kill until every live replica's cache had
	// listed every range it holds (tokenmint_shard_ranges_cached); zero
	// when not seen.
	failoverCached time.Duration
	failoverOwned  int
	killedName     string

	account         mintAccount
	managerIssued   int64
	neverIssued     int
	minMints        int
	maxMints        int
	unrenewed       int
	secrets         int
	expiredSecrets  int
	longestGap      time.Duration
	unknownTokens   int
	unexpectedExits int
	maxInFlight     int64
	maxPerSec       int
	peakRSS         []shareRow
	duration        time.Duration
	// handovers is what the replicas logged of the ranges that moved.
	handovers    handovers
	handoversErr error
}

// shardsBench is one run of the shards mode.
type shardsBench struct {
	opts     options
	o        shardsOptions
	p        *progress
	c        client.Client
	kubecfg  string
	bin      string
	dir      string
	args     []string
	ep       *tenantEndpoint
	log      *issueLog
	watch    *secretWatch
	replicas []*replica
	kills    []time.Time
	r        *shardsResults
	// unexpectedExits counts replicas that exited without a stop or a kill.
	unexpectedExits atomic.Int64
}

// runShardsMode runs the shards mode and writes its table.
func runShardsMode(opts options, o shardsOptions) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := mainShards(ctx, opts, o, os.Stdout)
	if res == nil {
		return finishMode("", "", err, "")
	}
	failed := ""
	if err == nil && !res.passed() {
		failed = "a check failed (see the table)"
	}
	return finishMode(reportPath(opts, fmt.Sprintf("bench-shards-%d.md", o.n)), res.markdown(), err, failed)
}

// mainShards runs the shards mode.
func mainShards(ctx context.Context, opts options, o shardsOptions, w io.Writer) (*shardsResults, error) {
	if o.replicas < 2 || o.scaleDown < 1 || o.scaleDown > o.replicas || o.ranges < 1 || o.n < 1 {
		return nil, fmt.Errorf("need -shards ≥ 1, -shards-replicas ≥ 2, 1 ≤ -shards-scale-down ≤ replicas, -shards-ranges ≥ 1")
	}
	if o.namespaces <= 0 {
		o.namespaces = max(1, o.n/10)
	}
	p := &progress{w: w, start: time.Now()}
	r := &shardsResults{command: opts.command, machine: machineInfo(), o: o, revision: revision(controlplane.RepoRoot()),
		namespaces: o.namespaces, started: time.Now()}
	p.printf("shards: %d AccessTokens in %d namespaces, %d ranges, up to %d replicas, on %s", o.n, o.namespaces, o.ranges, o.replicas, r.machine.summary())
	dir, err := os.MkdirTemp("", "tokenmint-bench-shards-")
	if err != nil {
		return nil, err
	}
	if opts.logDir != "" {
		dir = opts.logDir
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	} else {
		defer func() { _ = os.RemoveAll(dir) }()
	}
	bin, cp, kubeconfig, err := startBenchControlPlane(p, opts, dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = cp.Stop() }()
	if r.settings, err = flagDefaults(bin); err != nil {
		return nil, err
	}
	args := append([]string{"--operator-namespace", operatorNamespace, "--leader-elect", fmt.Sprintf("--shard-ranges=%d", o.ranges)}, opts.managerArgs...)
	applyArgs(r.settings, args)
	if r.leaseDuration, err = time.ParseDuration(r.settings["leader-election-lease-duration"]); err != nil {
		return nil, fmt.Errorf("cannot tell the manager's lease duration: %w", err)
	}
	r.concurrency, _ = strconv.Atoi(r.settings["issuer-concurrency"])

	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS, cfg.Burst = -1, 0
	cfg.UserAgent = "tokenmint-bench"
	c, err := client.New(cfg, client.Options{Scheme: newScheme()})
	if err != nil {
		return nil, err
	}
	b := &shardsBench{opts: opts, o: o, p: p, c: c, kubecfg: kubeconfig, bin: bin, dir: dir, args: args, r: r, log: newIssueLog()}
	defer b.stopAll()
	b.ep = &tenantEndpoint{delay: o.delay, lifetime: o.lifetime, log: b.log}
	if err := startTenantEndpoint(b.ep); err != nil {
		return nil, err
	}
	defer b.ep.Stop()
	if b.watch, err = startSecretWatch(ctx, cfg, newScheme(), b.log, b.p); err != nil {
		return nil, err
	}
	if err := b.setup(ctx); err != nil {
		return nil, err
	}
	scrapeCtx, stopScrape := context.WithCancel(ctx)
	defer stopScrape()
	go b.scrapeLoop(scrapeCtx)

	phases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"issue on 1 replica", b.phaseIssue},
		{fmt.Sprintf("scale 1 → %d", o.replicas), func(ctx context.Context) error { return b.scaleTo(ctx, o.replicas) }},
		{"issuer changed: every token re-issued at once", b.phaseBurst},
		{fmt.Sprintf("scale %d → %d", o.replicas, o.scaleDown), func(ctx context.Context) error { return b.scaleTo(ctx, o.scaleDown) }},
		{"SIGKILL of one replica", b.phaseKill},
		{fmt.Sprintf("scale %d → %d", o.scaleDown, o.replicas), func(ctx context.Context) error { return b.scaleTo(ctx, o.replicas) }},
		{"rolling restart", b.phaseRolling},
		{"renewals until every token renewed", b.phaseHold},
	}
	if !o.burst {
		phases = append(phases[:2], phases[3:]...)
	}
	for _, ph := range phases {
		p.printf("phase: %s", ph.name)
		ep := b.beginPhase(ph.name)
		if err := ph.fn(ctx); err != nil {
			for _, rp := range b.replicas {
				b.noticeExit(rp)
			}
			r.unexpectedExits = int(b.unexpectedExits.Load())
			return r, fmt.Errorf("%s: %w", ph.name, err)
		}
		b.endPhase(ep)
	}
	p.printf("stopping every replica (SIGTERM) and accounting")
	end := b.stopAll()
	if err := sleepCtx(ctx, 3*time.Second); err != nil { // the last writes reach the watch
		return r, err
	}
	b.account(end)
	r.handovers, r.handoversErr = readHandovers(b.dir)
	r.duration = time.Since(r.started)
	return r, nil
}

// setup creates the namespaces, the ClusterTokenIssuer and the first replica.
func (b *shardsBench) setup(ctx context.Context) error {
	for _, ns := range []string{operatorNamespace, credentialsNamespace} {
		if err := b.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	b.p.printf("creating %d namespaces", b.o.namespaces)
	for i := range b.o.namespaces {
		if err := b.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: shardNamespace(i)}}); err != nil {
			return err
		}
	}
	issuer := tenantIssuer("", issuerName, b.ep.URL, nil)
	issuer.SetGroupVersionKind(clusterIssuerGVK)
	if err := b.c.Create(ctx, issuer); err != nil {
		return err
	}
	b.p.printf("starting replica 1 (--shard-ranges=%d --leader-elect)", b.o.ranges)
	if _, err := b.startReplica(ctx); err != nil {
		return err
	}
	_, err := b.waitBalanced(ctx, "1 replica")
	return err
}

var clusterIssuerGVK = schema.GroupVersionKind{Group: tokensv1alpha1.GroupVersion.Group, Version: tokensv1alpha1.GroupVersion.Version,
	Kind: string(tokensv1alpha1.ClusterTokenIssuerKind)}

func shardNamespace(i int) string { return fmt.Sprintf("shard-%04d", i) }

var identityRE = regexp.MustCompile(`"identity":\s*"([^"]+)"|identity=("?)([^\s"]+)`)

// startReplica starts one more manager process and waits until it is ready
// and has told its sharding identity.
func (b *shardsBench) startReplica(ctx context.Context) (*replica, error) {
	k := len(b.replicas) + 1
	logPath := filepath.Join(b.dir, fmt.Sprintf("replica-%d.log", k))
	m, err := startManager(b.bin, b.kubecfg, logPath, b.args, b.opts.managerEnv)
	if err != nil {
		return nil, err
	}
	rp := &replica{name: fmt.Sprintf("r%d", k), m: m, startedAt: time.Now()}
	b.replicas = append(b.replicas, rp)
	if err := m.waitReady(ctx, 2*time.Minute); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Minute)
	for rp.id == "" {
		out, _ := os.ReadFile(logPath)
		if mm := identityRE.FindSubmatch(out); mm != nil {
			rp.id = string(mm[1]) + string(mm[3])
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("replica %s did not log its sharding identity; see %s", rp.name, logPath)
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
	return rp, nil
}

// liveReplicas lists the replicas running, in order of start.
func (b *shardsBench) liveReplicas() []*replica {
	var out []*replica
	for _, rp := range b.replicas {
		if rp.live() {
			out = append(out, rp)
		}
	}
	return out
}

func liveIDs(rs []*replica) []string {
	ids := make([]string, len(rs))
	for i, rp := range rs {
		ids[i] = rp.id
	}
	return ids
}

// stopReplica SIGTERMs one replica and waits for its exit, after a last
// scrape of its mints.
func (b *shardsBench) stopReplica(ctx context.Context, rp *replica) {
	b.scrape(ctx, rp)
	rp.stopped.Store(true)
	if err := rp.m.stop(b.o.grace); err != nil {
		b.p.printf("  %s: %v", rp.name, err)
	}
}

// stopAll SIGTERMs every replica still running, at once, and returns when the
// last exited.
func (b *shardsBench) stopAll() time.Time {
	var wg sync.WaitGroup
	for _, rp := range b.liveReplicas() {
		wg.Go(func() { b.stopReplica(context.Background(), rp) })
	}
	wg.Wait()
	return time.Now()
}

// rangeHolders reads the range Leases.
func (b *shardsBench) rangeHolders(ctx context.Context) (map[int]rangeHolder, error) {
	l := &coordinationv1.LeaseList{}
	if err := b.c.List(ctx, l, client.InNamespace(operatorNamespace), client.MatchingLabels{sharding.LabelLease: sharding.RoleRange}); err != nil {
		return nil, err
	}
	out := map[int]rangeHolder{}
	for _, lease := range l.Items {
		n, err := strconv.Atoi(strings.TrimPrefix(lease.Name, sharding.RangeLeasePrefix))
		if err != nil {
			continue
		}
		h := rangeHolder{}
		if lease.Spec.HolderIdentity != nil {
			h.holder = *lease.Spec.HolderIdentity
		}
		if lease.Spec.RenewTime != nil {
			h.renew = lease.Spec.RenewTime.Time
		}
		out[n] = h
	}
	return out, nil
}

// waitBalanced polls the range Leases until the live replicas hold every
// range, balanced, on three polls in a row; it records the shares then. A
// phase that does not settle within -shards-settle-timeout is recorded as
// unbalanced, and the run goes on.
func (b *shardsBench) waitBalanced(ctx context.Context, phase string) (*shardsPhase, error) {
	start := time.Now()
	lastPrint := start
	good := 0
	ph := &shardsPhase{name: phase}
	for {
		live := b.liveReplicas()
		holders, err := b.rangeHolders(ctx)
		if err != nil {
			return nil, err
		}
		bal := balanceOf(holders, liveIDs(live), b.o.ranges, b.r.leaseDuration, time.Now())
		ph.counts = bal.describe(liveIDs(live))
		if bal.ok {
			good++
		} else {
			good = 0
		}
		if good >= 3 || time.Since(start) > b.o.settleTimeout {
			ph.balanced, ph.settle = good >= 3, time.Since(start)
			ph.shares = b.shares(ctx, live, bal)
			b.p.printf("  %s: ranges per replica %s after %.1f s%s", phase, ph.counts, ph.settle.Seconds(), map[bool]string{true: "", false: " (NOT balanced)"}[ph.balanced])
			return ph, nil
		}
		if time.Since(lastPrint) >= 10*time.Second {
			lastPrint = time.Now()
			b.p.printf("  waiting for balance: ranges per replica %s; %s", ph.counts, b.status())
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return nil, err
		}
	}
}

// status is a short line of progress.
func (b *shardsBench) status() string {
	has, _ := b.watch.counts(time.Time{})
	return fmt.Sprintf("%d calls, %d in flight, %d Secrets with a token", b.ep.answered.Load(), b.ep.inFlight.Load(), has)
}

// shares reads each live replica's metrics and memory.
func (b *shardsBench) shares(ctx context.Context, live []*replica, bal balance) []shareRow {
	var rows []shareRow
	for _, rp := range live {
		row := shareRow{name: rp.name, id: rp.id, leaseRanges: bal.counts[rp.id], metricRanges: -1, tokens: -1, cache: -1}
		if s, err := rp.m.metrics(ctx, "tokenmint_shard_ranges_held", "tokenmint_shard_accesstokens", "tokenmint_cache_objects"); err == nil {
			row.metricRanges = metricOr(s, "tokenmint_shard_ranges_held")
			row.tokens = metricOr(s, "tokenmint_shard_accesstokens")
			row.cache = metricOr(s, "tokenmint_cache_objects")
		}
		if mem, err := rp.m.memory(); err == nil {
			row.rss = mem.rss
		}
		rows = append(rows, row)
	}
	return rows
}

// metricOr sums the series of a metric, or returns -1 when the replica does
// not export it.
func metricOr(s scrape, name string) float64 {
	if _, ok := s[name]; !ok {
		return -1
	}
	return s.sum(name)
}

// scrape reads one replica's mints and memory.
func (b *shardsBench) scrape(ctx context.Context, rp *replica) {
	if !rp.live() {
		return
	}
	if s, err := rp.m.metrics(ctx, "tokenmint_tokens_issued_total"); err == nil {
		if _, ok := s["tokenmint_tokens_issued_total"]; ok {
			rp.issued.Store(int64(s.sum("tokenmint_tokens_issued_total")))
		}
	}
	if mem, err := rp.m.memory(); err == nil && int64(mem.rss) > rp.peakRSS.Load() {
		rp.peakRSS.Store(int64(mem.rss))
	}
}

// scrapeLoop scrapes every live replica every 2 s.
func (b *shardsBench) scrapeLoop(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, rp := range b.replicas {
			b.noticeExit(rp)
		}
		for _, rp := range b.liveReplicas() {
			b.scrape(ctx, rp)
		}
	}
}

// noticeExit records a replica that exited without being stopped or killed
// (leader election lost, say), once.
func (b *shardsBench) noticeExit(rp *replica) {
	if rp.killed.Load() || rp.stopped.Load() || rp.exitNoticed.Load() || !rp.m.exited() {
		return
	}
	rp.exitNoticed.Store(true)
	b.unexpectedExits.Add(1)
	b.p.printf("  %s exited on its own; see %s", rp.name, rp.m.log.Name())
}

type phaseStart struct {
	name  string
	start time.Time
}

// beginPhase resets the endpoint's most calls in flight.
func (b *shardsBench) beginPhase(name string) phaseStart {
	b.ep.maxInFlight.Store(b.ep.inFlight.Load())
	return phaseStart{name: name, start: time.Now()}
}

// endPhase records the endpoint's figures over the phase on the phases it added.
func (b *shardsBench) endPhase(ps phaseStart) {
	now := time.Now()
	stamps := b.log.times(ps.start, now)
	maxIn := b.ep.maxInFlight.Load()
	b.r.maxInFlight = max(b.r.maxInFlight, maxIn)
	perSec := maxInAnySecond(stamps)
	b.r.maxPerSec = max(b.r.maxPerSec, perSec)
	b.r.steps = append(b.r.steps, stepFigures{name: ps.name, took: now.Sub(ps.start), calls: len(stamps), maxInFlight: maxIn, maxPerSec: perSec})
}

// record adds a settled phase.
func (b *shardsBench) record(ph *shardsPhase) { b.r.phases = append(b.r.phases, ph) }

// phaseIssue creates the AccessTokens on one replica and waits until every
// Secret holds a token.
func (b *shardsBench) phaseIssue(ctx context.Context) error {
	start := time.Now()
	if err := b.createTokens(ctx); err != nil {
		return err
	}
	b.p.printf("  %d AccessTokens created in %.1f s", b.o.n, time.Since(start).Seconds())
	missing, err := b.waitTokens(ctx, time.Time{}, start, "issued")
	if err != nil {
		return err
	}
	if missing > 0 {
		b.explainMissing(ctx)
		return fmt.Errorf("%d AccessTokens never issued", missing)
	}
	b.r.issueAll = time.Since(start)
	b.p.printf("  all %d issued in %.1f s", b.o.n, b.r.issueAll.Seconds())
	ph, err := b.waitBalanced(ctx, "issue on 1 replica")
	if err != nil {
		return err
	}
	b.record(ph)
	return nil
}

// explainMissing tells, for the AccessTokens whose Secret the benchmark's
// watch never saw with a token, what the API server holds: whether the
// manager never wrote the token or the watch missed it.
func (b *shardsBench) explainMissing(ctx context.Context) {
	seen := b.watch.sequences()
	list := &corev1.SecretList{}
	if err := b.c.List(ctx, list, client.HasLabels{tokensv1alpha1.LabelAccessToken}); err != nil {
		b.p.printf("  listing the token Secrets: %v", err)
		return
	}
	inSecret := map[string]string{}
	for _, s := range list.Items {
		if tok := string(s.Data["token"]); tok != "" {
			inSecret[s.Namespace+"/"+strings.TrimSuffix(s.Name, "-token")] = tok
		}
	}
	shown := 0
	for i := range b.o.n {
		name := tokenName(i)
		if len(seen[name]) > 0 {
			continue
		}
		key := shardNamespace(i%b.o.namespaces) + "/" + name
		what := "no token in its Secret at the API server"
		if tok, ok := inSecret[key]; ok {
			if _, known := b.log.lookup(tok); known {
				what = "its Secret holds a token the endpoint issued: the watch missed it"
			} else {
				what = "its Secret holds a token the endpoint never issued"
			}
		}
		b.p.printf("  %s: %s", key, what)
		if shown++; shown == 20 {
			break
		}
	}
}

// waitTokens waits until every AccessToken's Secret received a token at or
// after since, and returns how many did not within the timeout.
func (b *shardsBench) waitTokens(ctx context.Context, since, start time.Time, what string) (int, error) {
	timeout := b.o.settleTimeout + time.Duration(b.o.n)*100*time.Millisecond
	// No token for this long ends the wait: long enough for the benchmark's
	// own watch to list every Secret again (about 3 minutes at 100,000 on a
	// loaded control plane).
	stall := max(time.Minute, time.Duration(b.o.n)*2*time.Millisecond)
	lastPrint := time.Now()
	lastGot, lastMove := -1, time.Now()
	for {
		_, got := b.watch.counts(since)
		if got >= b.o.n {
			return 0, nil
		}
		if got != lastGot {
			lastGot, lastMove = got, time.Now()
		}
		if time.Since(start) > timeout || time.Since(lastMove) > stall {
			b.p.printf("  %d of %d tokens %s after %s, none for %s; going on", got, b.o.n, what,
				time.Since(start).Round(time.Second), time.Since(lastMove).Round(time.Second))
			return b.o.n - got, nil
		}
		if time.Since(lastPrint) >= 10*time.Second {
			lastPrint = time.Now()
			b.p.printf("  %d/%d %s; %s", got, b.o.n, what, b.status())
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// createTokens creates the AccessTokens, spread over the namespaces.
func (b *shardsBench) createTokens(ctx context.Context) error {
	idx := make(chan int)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	var created atomic.Int64
	for range max(1, b.opts.creators) {
		wg.Go(func() {
			for i := range idx {
				at := tenantToken(shardNamespace(i%b.o.namespaces), tokenName(i), issuerName,
					map[string]any{"issuerRef": map[string]any{"kind": string(tokensv1alpha1.ClusterTokenIssuerKind), "name": issuerName}})
				if err := b.c.Create(ctx, at); err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("creating AccessToken %s: %w", at.GetName(), err))
					continue
				}
				created.Add(1)
			}
		})
	}
	lastPrint := time.Now()
	for i := range b.o.n {
		if time.Since(lastPrint) >= 10*time.Second {
			lastPrint = time.Now()
			_, got := b.watch.counts(time.Time{})
			b.p.printf("  %d/%d AccessTokens created, %d issued", created.Load(), b.o.n, got)
		}
		select {
		case idx <- i:
		case <-ctx.Done():
		}
	}
	close(idx)
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return err
	}
	return ctx.Err()
}

// scaleTo starts or SIGTERMs replicas (the newest first) until n run, and
// waits for the ranges to balance.
func (b *shardsBench) scaleTo(ctx context.Context, n int) error {
	live := b.liveReplicas()
	for i := len(live) - 1; i >= n; i-- {
		b.p.printf("  SIGTERM %s", live[i].name)
		b.stopReplica(ctx, live[i])
	}
	for i := len(live); i < n; i++ {
		rp, err := b.startReplica(ctx)
		if err != nil {
			return err
		}
		b.p.printf("  started %s (%s)", rp.name, rp.id)
	}
	ph, err := b.waitBalanced(ctx, fmt.Sprintf("%d → %d replicas", len(live), n))
	if err != nil {
		return err
	}
	b.record(ph)
	return nil
}

// phaseBurst changes the issuer (a header added to its request), which
// re-issues every token at once: every replica calls the one issuer together.
func (b *shardsBench) phaseBurst(ctx context.Context) error {
	issuer := &unstructured.Unstructured{}
	issuer.SetGroupVersionKind(clusterIssuerGVK)
	if err := b.c.Get(ctx, client.ObjectKey{Name: issuerName}, issuer); err != nil {
		return err
	}
	start := time.Now()
	if err := unstructured.SetNestedSlice(issuer.Object, []any{map[string]any{"name": "X-Bench-Round", "value": "2"}}, "spec", "request", "headers"); err != nil {
		return err
	}
	if err := b.c.Update(ctx, issuer); err != nil {
		return err
	}
	missing, err := b.waitTokens(ctx, start, start, "re-issued")
	if err != nil {
		return err
	}
	b.r.burstMissing = missing
	b.r.burstAll = time.Since(start)
	b.p.printf("  %d of %d re-issued in %.1f s, at most %d calls in flight", b.o.n-missing, b.o.n, b.r.burstAll.Seconds(), b.ep.maxInFlight.Load())
	ph, err := b.waitBalanced(ctx, fmt.Sprintf("issuer changed, %d replicas", len(b.liveReplicas())))
	if err != nil {
		return err
	}
	b.record(ph)
	return nil
}

// phaseKill SIGKILLs the oldest replica (the leader, most likely), follows
// its ranges until others serve them, then starts a replacement.
func (b *shardsBench) phaseKill(ctx context.Context) error {
	live := b.liveReplicas()
	victim := live[0]
	b.scrape(ctx, victim)
	holders, err := b.rangeHolders(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	victim.killed.Store(true) // before the kill: the scrape loop must not count its exit
	if err := victim.m.cmd.Process.Kill(); err != nil {
		return err
	}
	b.kills = append(b.kills, now)
	f := newFailover(victim.id, now, holders)
	b.r.failoverOwned, b.r.killedName = len(f.pending), victim.name
	b.p.printf("  SIGKILL %s, which held %d ranges", victim.name, len(f.pending))
	limit := b.r.leaseDuration + 30*time.Second
	lastPrint := now
	for {
		holders, err := b.rangeHolders(ctx)
		if err != nil {
			return err
		}
		f.observe(holders, time.Now())
		if ok, d := f.done(); ok {
			b.r.failoverDone, b.r.failover = true, d
			b.p.printf("  its ranges held again %.1f s after the kill", d.Seconds())
			break
		}
		if time.Since(now) > limit+time.Minute {
			b.p.printf("  %d of its ranges still not served %s after the kill", len(f.pending), time.Since(now).Round(time.Second))
			break
		}
		if time.Since(lastPrint) >= 10*time.Second {
			lastPrint = time.Now()
			b.p.printf("  %d of its ranges not served yet; %s", len(f.pending), b.status())
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	if b.r.failoverDone {
		if d, ok := b.waitCached(ctx, now, limit+time.Minute); ok {
			b.r.failoverCached = d
			b.p.printf("  every range held is in its holder's cache %.1f s after the kill", d.Seconds())
		} else {
			b.p.printf("  ranges held but not cached %s after the kill; going on", time.Since(now).Round(time.Second))
		}
	}
	ph, err := b.waitBalanced(ctx, fmt.Sprintf("after SIGKILL, %d replicas", len(b.liveReplicas())))
	if err != nil {
		return err
	}
	b.record(ph)
	b.p.printf("  starting a replacement")
	rp, err := b.startReplica(ctx)
	if err != nil {
		return err
	}
	ph, err = b.waitBalanced(ctx, fmt.Sprintf("replacement %s started, %d replicas", rp.name, len(b.liveReplicas())))
	if err != nil {
		return err
	}
	b.record(ph)
	return nil
}

// waitCached waits until every live replica's cache has listed each range
// it holds (tokenmint_shard_ranges_cached equals tokenmint_shard_ranges_held)
// and returns how long after since that was, or false after timeout.
func (b *shardsBench) waitCached(ctx context.Context, since time.Time, timeout time.Duration) (time.Duration, bool) {
	for time.Since(since) <= timeout {
		all := true
		for _, rp := range b.liveReplicas() {
			s, err := rp.m.metrics(ctx, "tokenmint_shard_ranges_cached", "tokenmint_shard_ranges_held")
			if err != nil || metricOr(s, "tokenmint_shard_ranges_cached") != metricOr(s, "tokenmint_shard_ranges_held") {
				all = false
				break
			}
		}
		if all {
			return time.Since(since), true
		}
		// As often as the scrape loop.
		if err := sleepCtx(ctx, 2*time.Second); err != nil {
			return 0, false
		}
	}
	return 0, false
}

// phaseRolling SIGTERMs each replica in turn and starts its successor,
// waiting for balance each time.
func (b *shardsBench) phaseRolling(ctx context.Context) error {
	for _, old := range b.liveReplicas() {
		b.p.printf("  SIGTERM %s", old.name)
		b.stopReplica(ctx, old)
		rp, err := b.startReplica(ctx)
		if err != nil {
			return err
		}
		ph, err := b.waitBalanced(ctx, fmt.Sprintf("rolling: %s replaced by %s", old.name, rp.name))
		if err != nil {
			return err
		}
		b.record(ph)
	}
	return nil
}

// phaseHold lets the replicas renew until every AccessToken has renewed at
// least once on time alone, so that every token's renewal is checked.
func (b *shardsBench) phaseHold(ctx context.Context) error {
	// A token issued just before now renews about two thirds of a lifetime
	// later: a lifetime and a minute are enough for every one.
	deadline := time.Now().Add(b.o.lifetime + time.Minute)
	lastPrint := time.Now()
	last, lastMove := -1, time.Now()
	for {
		unrenewed := b.unrenewed()
		if unrenewed == 0 {
			b.p.printf("  every AccessToken has renewed at least once")
			return nil
		}
		if unrenewed != last {
			last, lastMove = unrenewed, time.Now()
		}
		if time.Now().After(deadline) || time.Since(lastMove) > 2*time.Minute {
			b.p.printf("  %d AccessTokens not renewed yet, none for %s; stopping anyway", unrenewed, time.Since(lastMove).Round(time.Second))
			return nil
		}
		if time.Since(lastPrint) >= 10*time.Second {
			lastPrint = time.Now()
			b.p.printf("  %d AccessTokens not renewed yet; %s", unrenewed, b.status())
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return err
		}
	}
}

// unrenewed counts the AccessTokens whose Secret has not yet held a token
// renewed on time alone: one beyond the first and the one the burst asked for.
func (b *shardsBench) unrenewed() int {
	want := 2
	if b.o.burst {
		want = 3
	}
	seqs := b.watch.sequences()
	n := 0
	for i := range b.o.n {
		if len(seqs[tokenName(i)]) < want {
			n++
		}
	}
	return n
}

// account checks the mints and the Secrets over the whole run, until end.
func (b *shardsBench) account(end time.Time) {
	r := b.r
	mints := b.log.mints()
	stored := b.watch.storedTokens()
	r.minMintInterval = b.minMintInterval()
	r.account = accountMints(mints, stored, b.kills, 5*time.Second+b.o.delay, b.o.delay+time.Second, r.closeWithin())
	perAT := map[string]int{}
	for _, m := range mints {
		perAT[m.subject]++
	}
	r.minMints = -1
	for i := range b.o.n {
		k := perAT[tokenName(i)]
		if k == 0 {
			r.neverIssued++
		}
		if r.minMints < 0 || k < r.minMints {
			r.minMints = k
		}
		r.maxMints = max(r.maxMints, k)
	}
	for _, rp := range b.replicas {
		r.managerIssued += rp.issued.Load()
		r.peakRSS = append(r.peakRSS, shareRow{name: rp.name, id: rp.id, rss: float64(rp.peakRSS.Load())})
	}
	seqs := b.watch.sequences()
	r.secrets = len(seqs)
	for key, seq := range seqs {
		gaps := expiryGaps(key, seq, end)
		if len(gaps) > 0 {
			r.expiredSecrets++
			if len(r.expiredKeys) < 5 {
				g := gaps[0]
				r.expiredKeys = append(r.expiredKeys, fmt.Sprintf("%s from %s for %s", key,
					g.from.Sub(r.started).Round(time.Second), g.to.Sub(g.from).Round(time.Second)))
			}
		}
		for _, g := range gaps {
			r.longestGap = max(r.longestGap, g.to.Sub(g.from))
		}
	}
	r.unrenewed = b.unrenewed()
	r.unknownTokens = b.watch.unknown()
	for _, rp := range b.replicas {
		b.noticeExit(rp)
	}
	r.unexpectedExits = int(b.unexpectedExits.Load())
}

func (b *shardsBench) minMintInterval() time.Duration {
	d, err := time.ParseDuration(b.r.settings["min-mint-interval"])
	if err != nil {
		return 0
	}
	return d
}

// times lists when the endpoint issued tokens within [from, to].
func (l *issueLog) times(from, to time.Time) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Time
	for _, seq := range l.bySubject {
		for _, h := range seq {
			if !h.at.Before(from) && !h.at.After(to) {
				out = append(out, h.at)
			}
		}
	}
	return out
}

// mints lists every token the endpoint issued.
func (l *issueLog) mints() []mint {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]mint, 0, len(l.byToken))
	for tok, i := range l.byToken {
		out = append(out, mint{subject: i.subject, token: tok, at: i.at})
	}
	return out
}

// secretWatch records, for every AccessToken's Secret, each token it came to
// hold, when, and its expiry from the endpoint's log.
type secretWatch struct {
	log *issueLog

	mu       sync.Mutex
	seqs     map[string][]held // by AccessToken name
	last     map[string]string
	stored   map[string]bool
	unknowns int
}

func startSecretWatch(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, log *issueLog, p *progress) (*secretWatch, error) {
	req, err := labels.NewRequirement(tokensv1alpha1.LabelAccessToken, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: {Label: labels.NewSelector().Add(*req)}},
		// A watch that ends lists every Secret again: while it does, no
		// Secret moves, so say so rather than let a stall look like tokens
		// never written.
		DefaultWatchErrorHandler: func(_ context.Context, _ *toolscache.Reflector, err error) {
			p.printf("  the benchmark's Secret watch restarts (it lists every Secret again): %v", err)
		}})
	if err != nil {
		return nil, err
	}
	w := &secretWatch{log: log, seqs: map[string][]held{}, last: map[string]string{}, stored: map[string]bool{}}
	inf, err := c.GetInformer(ctx, &corev1.Secret{})
	if err != nil {
		return nil, err
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.observe(o) },
		UpdateFunc: func(_, o any) { w.observe(o) },
	}); err != nil {
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the benchmark's Secret watch did not sync")
	}
	return w, nil
}

func (w *secretWatch) observe(o any) {
	s, ok := o.(*corev1.Secret)
	if !ok {
		return
	}
	tok := string(s.Data["token"])
	if tok == "" {
		return
	}
	now := time.Now()
	rec, known := w.log.lookup(tok)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !known || s.Name != rec.subject+"-token" {
		w.unknowns++
		return
	}
	if w.last[rec.subject] == tok {
		return
	}
	w.last[rec.subject] = tok
	w.stored[tok] = true
	w.seqs[rec.subject] = append(w.seqs[rec.subject], held{at: now, expiry: rec.expiry})
}

// counts returns how many Secrets hold a token, and how many received one at
// or after since.
func (w *secretWatch) counts(since time.Time) (has, after int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, seq := range w.seqs {
		if len(seq) == 0 {
			continue
		}
		has++
		if !seq[len(seq)-1].at.Before(since) {
			after++
		}
	}
	return has, after
}

func (w *secretWatch) sequences() map[string][]held {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string][]held, len(w.seqs))
	for k, v := range w.seqs {
		out[k] = append([]held(nil), v...)
	}
	return out
}

func (w *secretWatch) storedTokens() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]bool, len(w.stored))
	for k := range w.stored {
		out[k] = true
	}
	return out
}

func (w *secretWatch) unknown() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.unknowns
}
