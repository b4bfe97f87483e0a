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

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/controlplane"
)

const (
	operatorNamespace = "tokenmint-system"
	// credentialsNamespace is the manager's default --credentials-namespace.
	credentialsNamespace = "tokenmint-credentials"
	tokensNamespace      = "bench-tokens"
	noiseNamespace       = "bench-unrelated"
	issuerName           = "bench"
	credentialSecret     = "bench-endpoint"
	controllerName       = "accesstoken"
	pokeAnnotation       = "bench.tokenmint.dev/poke"
	probeCondition       = "BenchProbe"
)

// options configure a run.
type options struct {
	n            int
	managerArgs  []string
	managerEnv   []string // NAME=value pairs added to the manager's environment
	managerBin   string   // a prebuilt manager; empty builds ./cmd
	lifetime     time.Duration
	tokenSize    int
	creators     int
	noiseSecrets int
	noiseSize    int
	spreadSample int
	settle       time.Duration
	readyTimeout time.Duration
	out          string
	command      string
	logDir       string
	quick        bool   // the smoke test: skip the unrelated Secrets
	sequence     bool   // also time the manager's request sequence as a plain loop
	oldSequence  bool   // and the sequence of f38efc0
	applyLoop    bool   // and the sequence without its read
	loopsOnly    bool   // stop after the plain loops
	rounds       int    // runs of each loop; the fastest is kept
	noFloor      bool   // do not time the floor: one operator round alone
	noProbes     bool   // skip the status-only and no-op reconcile probes
	failover     bool   // measure a standby's takeover from a SIGKILLed leader
	heapProfile  string // where to save the manager's heap profile after settling
	cpuProfile   string // where to save the manager's CPU profile taken while issuing
	apiProfile   string // prefix of the kube-apiserver's CPU profiles taken while the floor and the manager issue
}

// bench is one run: the control plane, the endpoint, the manager, and what was measured.
type bench struct {
	opts       options
	p          *progress
	cp         *controlplane.ControlPlane
	kubeconfig string
	client     client.Client
	apiHTTP    *http.Client
	apiURL     string
	tracker    *tracker
	endpoint   *endpoint
	credential string
	bin        string
	settings   map[string]string // the manager's effective flag values
	mgr        *manager
	dir        string

	events sync.WaitGroup // events the loops send in the background

	mu       sync.Mutex
	requests map[string]float64 // the benchmark's own API requests, "VERB resource"

	r results
}

func (b *bench) count(verb, resource string) {
	b.mu.Lock()
	b.requests[verb+" "+resource]++
	b.mu.Unlock()
}

func (b *bench) ownRequests() map[string]float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]float64, len(b.requests))
	for k, v := range b.requests {
		out[k] = v
	}
	return out
}

// progress prints timestamped progress lines.
type progress struct {
	w     io.Writer
	start time.Time
}

func (p *progress) printf(format string, args ...any) {
	el := time.Since(p.start).Round(time.Second)
	fmt.Fprintf(p.w, "[%3d:%02d] %s\n", int(el.Minutes()), int(el.Seconds())%60, fmt.Sprintf(format, args...))
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = tokensv1alpha1.AddToScheme(s)
	return s
}

// run performs every phase and returns the results.
func run(ctx context.Context, opts options, w io.Writer) (_ *results, err error) {
	b := &bench{opts: opts, p: &progress{w: w, start: time.Now()}, requests: map[string]float64{}}
	b.r.n = opts.n
	b.r.machine = machineInfo()
	b.r.command = opts.command
	b.r.started = time.Now()
	b.p.printf("tokenmint benchmark, N=%d, on %s", opts.n, b.r.machine.summary())
	defer b.teardown()

	if err := b.setup(ctx); err != nil {
		return nil, err
	}
	phases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"floor", b.phaseFloor},
		{"issue", b.phaseIssue},
		{"spread", b.phaseSpread},
		{"status-only writes", b.phaseStatusOnly},
		{"no-op reconciles", b.phasePoke},
		{"restart", b.phaseRestart},
		{"failover", b.phaseFailover},
		{"memory", b.phaseMemory},
	}
	if b.opts.loopsOnly {
		phases = phases[:1]
	}
	if b.opts.noProbes {
		phases = slices.DeleteFunc(phases, func(ph struct {
			name string
			fn   func(context.Context) error
		}) bool {
			return ph.name == "status-only writes" || ph.name == "no-op reconciles"
		})
	}
	for _, ph := range phases {
		if err := ph.fn(ctx); err != nil {
			b.r.loadAfter = loadAverage()
			return &b.r, fmt.Errorf("%s: %w", ph.name, err)
		}
	}
	b.r.finished = time.Now()
	b.r.loadAfter = loadAverage()
	return &b.r, nil
}

func (b *bench) setup(ctx context.Context) error {
	var err error
	b.dir, err = os.MkdirTemp("", "tokenmint-bench-")
	if err != nil {
		return err
	}
	if b.opts.logDir == "" {
		b.opts.logDir = b.dir
	} else if err := os.MkdirAll(b.opts.logDir, 0o755); err != nil {
		return err
	}
	b.r.loadBefore = loadAverage()

	b.r.revision = revision(controlplane.RepoRoot())
	if b.opts.managerBin != "" {
		b.bin = b.opts.managerBin
		b.r.revision = b.opts.managerBin
	} else {
		b.p.printf("building the manager (CGO_ENABLED=0 go build ./cmd) at %s", b.r.revision)
		if b.bin, err = buildManager(b.dir); err != nil {
			return err
		}
	}
	if b.settings, err = flagDefaults(b.bin); err != nil {
		return err
	}
	b.r.defaults = map[string]string{}
	for k, v := range b.settings {
		b.r.defaults[k] = v
	}
	applyArgs(b.settings, b.opts.managerArgs)
	b.r.settings = b.settings
	b.r.managerArgs = b.opts.managerArgs
	b.r.managerEnv = b.opts.managerEnv
	b.r.workers, err = strconv.Atoi(b.settings["max-concurrent-reconciles"])
	if err != nil || b.r.workers < 1 {
		return fmt.Errorf("cannot tell the manager's --max-concurrent-reconciles (%q)", b.settings["max-concurrent-reconciles"])
	}

	b.p.printf("starting etcd and kube-apiserver on loopback")
	if b.cp, err = controlplane.Start(controlplane.Options{}); err != nil {
		return err
	}
	b.kubeconfig = filepath.Join(b.dir, "admin.kubeconfig")
	if err := b.cp.WriteKubeconfig(b.kubeconfig); err != nil {
		return err
	}
	cfg := rest.CopyConfig(b.cp.Config)
	cfg.QPS, cfg.Burst = -1, 0 // the benchmark's own client is not rate-limited
	cfg.UserAgent = "tokenmint-bench"
	scheme := newScheme()
	if b.client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	if b.apiHTTP, err = rest.HTTPClientFor(b.cp.Config); err != nil {
		return err
	}
	b.apiURL = strings.TrimSuffix(b.cp.Config.Host, "/") + "/metrics"
	if b.tracker, err = startTracker(ctx, cfg, scheme); err != nil {
		return err
	}

	var c [16]byte
	_, _ = rand.Read(c[:])
	b.credential = hex.EncodeToString(c[:])
	if b.endpoint, err = startEndpoint(b.credential, b.opts.lifetime); err != nil {
		return err
	}
	b.endpoint.tokenSize = b.opts.tokenSize
	b.p.printf("token endpoint at %s (lifetime %s, tokens of %d characters)", b.endpoint.URL, b.opts.lifetime, max(48, b.opts.tokenSize))
	// Renewals come due at about half the lifetime; the phases after
	// issuing wait for a quiet controller, which renewals never leave.
	if guess := time.Duration(b.opts.n/30) * time.Second; guess > b.opts.lifetime/2 {
		b.p.printf("warning: at the manager's default API budget (about 30 tokens a second) issuing %d tokens takes about %s, and renewals of %s tokens start after %s: the run will not settle; pass a longer -lifetime",
			b.opts.n, guess.Round(time.Minute), b.opts.lifetime, (b.opts.lifetime / 2).Round(time.Minute))
	}

	for _, ns := range []string{tokensNamespace, noiseNamespace} {
		if err := b.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	return b.createIssuer(ctx)
}

// createIssuer creates the operator and credentials namespaces, the
// credential Secret and the ClusterTokenIssuer of the endpoint.
func (b *bench) createIssuer(ctx context.Context) error {
	for _, ns := range []string{operatorNamespace, credentialsNamespace} {
		if err := b.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	if err := b.client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: credentialSecret, Namespace: credentialsNamespace},
		Data:       map[string][]byte{"token": []byte(b.credential)},
	}); err != nil {
		return err
	}
	issuer := &tokensv1alpha1.ClusterTokenIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: issuerName},
		Spec: tokensv1alpha1.ClusterTokenIssuerSpec{IssuerSpec: tokensv1alpha1.IssuerSpec{
			AllowInsecureHTTP: true,
			Credentials: []tokensv1alpha1.Credential{{Name: "token",
				SecretKeyRef: &tokensv1alpha1.SecretKeySelector{Name: credentialSecret, Key: "token"}}},
			Request: tokensv1alpha1.RequestSpec{
				URL:  b.endpoint.URL,
				Auth: &tokensv1alpha1.AuthSpec{Bearer: &tokensv1alpha1.ValueSource{Credential: "token"}},
			},
			Response: tokensv1alpha1.ResponseSpec{
				Token:  "access_token",
				Expiry: &tokensv1alpha1.ExpirySpec{Path: "expires_in", Format: tokensv1alpha1.ExpiryRelativeSeconds},
				Error:  &tokensv1alpha1.ErrorSpec{Code: "error"},
			},
		}},
	}
	return b.client.Create(ctx, issuer)
}

// applyArgs folds --name=value and --name value arguments into settings.
func applyArgs(settings map[string]string, args []string) {
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if k, v, ok := strings.Cut(a, "="); ok {
			settings[k] = v
		} else if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			settings[a] = args[i+1]
			i++
		} else {
			settings[a] = "true"
		}
	}
}

func (b *bench) teardown() {
	if b.mgr != nil {
		_ = b.mgr.stop(30 * time.Second)
	}
	if b.endpoint != nil {
		b.endpoint.Stop()
	}
	if b.cp != nil {
		_ = b.cp.Stop()
	}
	if b.dir != "" && b.opts.logDir != b.dir {
		_ = os.RemoveAll(b.dir)
	}
}

func (b *bench) startManager(ctx context.Context) error {
	args := append([]string{"--operator-namespace", operatorNamespace}, b.opts.managerArgs...)
	m, err := startManager(b.bin, b.kubeconfig, filepath.Join(b.opts.logDir, "manager.log"), args, b.opts.managerEnv)
	if err != nil {
		return err
	}
	b.mgr = m
	return m.waitReady(ctx, 60*time.Second)
}

// profileAPI starts a CPU profile of kube-apiserver over the next d when
// -api-cpu-profile is set, written to <prefix>-<phase>.pb.gz; the returned
// function waits for it.
func (b *bench) profileAPI(ctx context.Context, phase string, d time.Duration) func() error {
	if b.opts.apiProfile == "" {
		return func() error { return nil }
	}
	path := fmt.Sprintf("%s-%s.pb.gz", b.opts.apiProfile, phase)
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(b.cp.Config.Host, "/"), int(d.Seconds()))
	done := make(chan error, 1)
	go func() { done <- saveProfile(ctx, b.apiHTTP, url, path) }()
	return func() error {
		if err := <-done; err != nil {
			return fmt.Errorf("kube-apiserver profile: %w", err)
		}
		b.p.printf("%s: kube-apiserver CPU profile of the first %s written to %s", phase, d, path)
		return nil
	}
}

func (b *bench) apiMetrics(ctx context.Context) (scrape, error) {
	return fetchMetrics(ctx, b.apiHTTP, b.apiURL)
}

// snapshot is every counter the benchmark reads, at one moment.
type snapshot struct {
	at       time.Time
	mgr      scrape
	api      scrape
	own      map[string]float64
	calls    int64
	cpu      float64
	apiCPU   float64
	etcdCPU  float64 // of apiCPU
	benchCPU float64 // this process: the loops, the creators, the tracker, the endpoint
	mem      memory
	workqLen float64
}

func (b *bench) snapshot(ctx context.Context) (*snapshot, error) {
	s := &snapshot{at: time.Now(), own: b.ownRequests(), calls: b.endpoint.Calls(),
		benchCPU: procCPUSeconds(os.Getpid())}
	s.apiCPU, s.etcdCPU = controlPlaneCPU()
	var err error
	if s.api, err = b.apiMetrics(ctx); err != nil {
		return nil, err
	}
	if b.mgr != nil && !b.mgr.exited() {
		if s.mgr, err = b.mgr.metrics(ctx); err != nil {
			return nil, err
		}
		s.cpu = b.mgr.cpuSeconds()
		s.mem, _ = b.mgr.memory()
		s.workqLen = s.mgr.sum("workqueue_depth", "name", controllerName)
	}
	return s, nil
}

// waitQuiet waits until the controller has nothing to do: an empty queue, no
// busy worker, and no new reconcile for a while.
func (b *bench) waitQuiet(ctx context.Context, still time.Duration, timeout time.Duration) (scrape, error) {
	deadline := time.Now().Add(timeout)
	var last float64 = -1
	var since time.Time
	for time.Now().Before(deadline) {
		scraped := time.Now()
		m, err := b.mgr.metrics(ctx)
		if err != nil {
			return nil, err
		}
		pause := pollPause(time.Since(scraped), 250*time.Millisecond)
		total := m.sum("controller_runtime_reconcile_total", "controller", controllerName)
		busy := m.sum("workqueue_depth", "name", controllerName) + m.sum("controller_runtime_active_workers", "controller", controllerName)
		if busy > 0 || total != last {
			last, since = total, time.Now()
		} else if time.Since(since) >= still {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
	}
	return nil, fmt.Errorf("the controller did not settle within %s", timeout)
}

// --- 1. the floor ---------------------------------------------------------

// loopResult is one plain loop's run.
type loopResult struct {
	loop     loop
	runs     int
	slowest  time.Duration // of the runs not kept
	elapsed  time.Duration
	calls    int64
	apiCPU   float64
	etcdCPU  float64
	benchCPU float64
	own      map[string]float64
}

func (b *bench) phaseFloor(ctx context.Context) error {
	if b.opts.noFloor {
		b.p.printf("floor: not timed (-floor=false)")
		return nil
	}
	// Warm the apiserver up (its handlers, caches and connections) on a fifth
	// of N, so that the first timed loop is not the one paying for it.
	if _, err := b.runLoop(ctx, loopFloor, min(max(b.opts.n/5, 10), 500), "bench-warmup"); err != nil {
		return err
	}
	loops := []loop{loopFloor}
	if b.opts.sequence {
		loops = append(loops, loopSequence)
	}
	if b.opts.oldSequence {
		loops = append(loops, loopOldSequence)
	}
	if b.opts.applyLoop {
		loops = append(loops, loopApply)
	}
	// Each loop runs `rounds` times, interleaved, and keeps its fastest run:
	// other work on the machine only ever slows a loop down. With the manager
	// measured too, the floor runs once here and then after each of the
	// operator's runs (phaseIssue).
	best := map[loop]*loopResult{}
	for round := range max(1, b.opts.rounds) {
		for _, l := range loops {
			if l == loopFloor && round > 0 && !b.opts.loopsOnly {
				continue
			}
			profiled := func() error { return nil }
			if round == 0 && l == loopFloor {
				profiled = b.profileAPI(ctx, "floor", 30*time.Second)
			}
			lr, err := b.runLoop(ctx, l, b.opts.n, fmt.Sprintf("%s-%d", loopNamespace(l), round+1))
			if err != nil {
				return err
			}
			if err := profiled(); err != nil {
				return err
			}
			lr.runs = 1
			if prev := best[l]; prev != nil {
				lr.runs += prev.runs
				lr.slowest = max(prev.slowest, prev.elapsed)
				if prev.elapsed < lr.elapsed {
					lr.slowest = max(lr.slowest, lr.elapsed)
					lr.elapsed, lr.calls, lr.apiCPU, lr.etcdCPU, lr.benchCPU, lr.own = prev.elapsed, prev.calls, prev.apiCPU, prev.etcdCPU, prev.benchCPU, prev.own
				}
			}
			best[l] = lr
		}
	}
	for _, l := range loops {
		b.r.loops = append(b.r.loops, best[l])
	}
	f := best[loopFloor]
	b.r.floorTime, b.r.floorCalls, b.r.floorAPICPU, b.r.floorEtcdCPU = f.elapsed, f.calls, f.apiCPU, f.etcdCPU
	b.r.floorTimes = []time.Duration{f.elapsed}
	return nil
}

func loopNamespace(l loop) string { return "bench-" + l.String() }

// runLoop times loop l over N fresh AccessTokens, created as the operator's are,
// with the manager not running, then deletes what it made.
func (b *bench) runLoop(ctx context.Context, l loop, n int, ns string) (*loopResult, error) {
	workers := b.r.workers
	b.p.printf("%s: %d tokens in %s, %d workers, unlimited client QPS (the manager is not running)", l, n, ns, workers)
	if err := b.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return nil, err
	}
	before, err := b.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	ch := make(chan *tokensv1alpha1.AccessToken, n)
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- b.floor(ctx, l, workers, ch) }()
	if err := b.createTokens(ctx, ns, n, ch); err != nil {
		return nil, err
	}
	close(ch)
	if err := <-errc; err != nil {
		return nil, err
	}
	last, err := b.tracker.waitReady(ctx, ns, n, start, b.opts.readyTimeout, b.p)
	if err != nil {
		return nil, err
	}
	b.events.Wait()
	after, err := b.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	lr := &loopResult{loop: l, elapsed: last.Sub(start), calls: after.calls - before.calls, apiCPU: after.apiCPU - before.apiCPU,
		etcdCPU: after.etcdCPU - before.etcdCPU, benchCPU: after.benchCPU - before.benchCPU, own: map[string]float64{}}
	for k, v := range after.own {
		if d := v - before.own[k]; d != 0 {
			lr.own[k] = d
		}
	}
	b.p.printf("%s: %d tokens in %s Ready in %s (%.0f/s)", l, n, ns, lr.elapsed.Round(time.Millisecond), float64(n)/lr.elapsed.Seconds())

	// Remove the loop's objects so that the manager never sees them.
	for _, o := range []client.Object{&tokensv1alpha1.AccessToken{}, &corev1.Secret{}, &eventsv1.Event{}} {
		if err := b.client.DeleteAllOf(ctx, o, client.InNamespace(ns)); err != nil {
			return nil, err
		}
	}
	return lr, nil
}

// --- 1 and 2. issue -------------------------------------------------------

func (b *bench) phaseIssue(ctx context.Context) error {
	b.p.printf("starting the manager: %s", strings.Join(b.opts.managerArgs, " "))
	if err := b.startManager(ctx); err != nil {
		return err
	}
	// The operator issues `rounds` times, each time into fresh AccessTokens,
	// and the floor runs after each (with the manager stopped), so that every
	// operator run lies between two floor runs: the machine's speed drifts
	// over minutes, and a run is compared with the floor runs either side of
	// it. The last round's AccessTokens stay for the phases that follow.
	rounds := max(1, b.opts.rounds)
	if b.opts.noFloor {
		rounds = 1 // rounds are compared with the floor runs either side
	}
	// The control plane's CPU of the floor runs either side of the last
	// round, to set beside that round's.
	prevAPI, prevEtcd := b.r.floorAPICPU, b.r.floorEtcdCPU
	for i := range rounds {
		last := i == rounds-1
		ns := tokensNamespace
		if !last {
			ns = fmt.Sprintf("%s-%d", tokensNamespace, i+1)
			if err := b.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				return err
			}
		}
		if err := b.issueRound(ctx, ns, i, rounds); err != nil {
			return err
		}
		if b.opts.noFloor {
			// One round (see rounds above): its AccessTokens stay, and the
			// manager that issued them serves the phases that follow.
			if _, err := b.waitReconciled(ctx, "issue"); err != nil {
				return err
			}
			if _, err := b.waitQuiet(ctx, 3*time.Second, 10*time.Minute); err != nil {
				return err
			}
			break
		}
		b.p.printf("floor: stopping the manager to time the floor again after the operator")
		if err := b.mgr.stop(60 * time.Second); err != nil {
			return fmt.Errorf("stopping the manager: %w", err)
		}
		lr, err := b.runLoop(ctx, loopFloor, b.opts.n, fmt.Sprintf("%s-%d", loopNamespace(loopFloor), i+2))
		if err != nil {
			return err
		}
		b.r.floorTimes = append(b.r.floorTimes, lr.elapsed)
		if last {
			b.r.floorAPICPU, b.r.floorEtcdCPU = (prevAPI+lr.apiCPU)/2, (prevEtcd+lr.etcdCPU)/2
		}
		prevAPI, prevEtcd = lr.apiCPU, lr.etcdCPU
		if !last {
			// Removed while the manager is stopped: it never sees them again.
			for _, o := range []client.Object{&tokensv1alpha1.AccessToken{}, &corev1.Secret{}, &eventsv1.Event{}} {
				if err := b.client.DeleteAllOf(ctx, o, client.InNamespace(ns)); err != nil {
					return err
				}
			}
		}
		b.p.printf("starting the manager again")
		if err := b.startManager(ctx); err != nil {
			return err
		}
		if last {
			// Its first reconciles of every AccessToken must not count in the
			// phases that follow.
			if _, err := b.waitReconciled(ctx, "issue"); err != nil {
				return err
			}
		}
		if _, err := b.waitQuiet(ctx, 3*time.Second, 10*time.Minute); err != nil {
			return err
		}
	}
	if !b.opts.noFloor {
		b.p.printf("issue: operator / floor by round: %s; median %.2f", b.r.roundRatios(), b.r.ratio())
	}
	return nil
}

// issueRound creates N AccessTokens in ns with the manager running and times
// them until all are Ready. The costs of the last round are the ones reported.
func (b *bench) issueRound(ctx context.Context, ns string, i, rounds int) error {
	if _, err := b.waitQuiet(ctx, time.Second, 60*time.Second); err != nil {
		return err
	}
	n := b.opts.n
	before, err := b.snapshot(ctx)
	if err != nil {
		return err
	}
	b.p.printf("issue, round %d of %d: creating %d AccessTokens in %s", i+1, rounds, n, ns)
	start := time.Now()
	profiled := make(chan error, 1)
	if b.opts.cpuProfile != "" && i == 0 {
		go func() { profiled <- b.mgr.saveCPUProfile(ctx, 30*time.Second, b.opts.cpuProfile) }()
	} else {
		profiled <- nil
	}
	apiProfiled := func() error { return nil }
	if i == 0 {
		apiProfiled = b.profileAPI(ctx, "issue", 30*time.Second)
	}
	if err := b.createTokens(ctx, ns, n, nil); err != nil {
		return err
	}
	created := time.Since(start)
	b.p.printf("issue: %d AccessTokens created in %s", n, created.Round(time.Millisecond))
	lastReady, err := b.tracker.waitReady(ctx, ns, n, start, b.opts.readyTimeout, b.p)
	if err != nil {
		return err
	}
	elapsed := lastReady.Sub(start)
	b.r.issueTimes = append(b.r.issueTimes, elapsed)
	if err := <-profiled; err != nil {
		return err
	}
	if err := apiProfiled(); err != nil {
		return err
	}
	if b.opts.cpuProfile != "" && i == 0 {
		b.p.printf("issue: CPU profile of the first 30 s written to %s (go tool pprof -top %s)", b.opts.cpuProfile, b.opts.cpuProfile)
	}
	b.p.printf("issue: %d tokens Ready in %s (%.0f/s); waiting for the controller to settle",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	if _, err := b.waitQuiet(ctx, 3*time.Second, 10*time.Minute); err != nil {
		return err
	}
	after, err := b.snapshot(ctx)
	if err != nil {
		return err
	}
	c := diffCosts(before, after, n)
	b.p.printf("issue: %.0f endpoint calls, %.2f writes and %.2f reads per token, %.2f reconciles per token",
		c.calls, c.writes/float64(n), c.reads/float64(n), c.reconciles/float64(n))
	if i == rounds-1 {
		b.r.issue, b.r.issueCreate, b.r.issueTime, b.r.issuePeakRSS = c, created, elapsed, after.mem.hwm
	}
	return nil
}

// costs is what one phase cost, from the counters.
type costs struct {
	calls      float64
	writes     float64            // by the manager, from its client metrics
	reads      float64            // GET (get, list and watch) by the manager
	byMethod   map[string]float64 // the manager's requests by method
	byResource map[string]float64 // apiserver requests by verb and resource, less the benchmark's own
	reconciles float64
	issued     float64
	cpu        float64
	apiCPU     float64
	etcdCPU    float64
	benchCPU   float64
	elapsed    time.Duration
	hist       *sparse
	// endpointSum and endpointCount are the calls' total duration and number.
	endpointSum, endpointCount float64
}

func isWrite(method string) bool {
	switch method {
	case "POST", "PUT", "PATCH", "DELETE", "APPLY", "DELETECOLLECTION":
		return true
	}
	return false
}

func diffCosts(before, after *snapshot, n int) *costs {
	c := &costs{calls: float64(after.calls - before.calls), byMethod: map[string]float64{}, byResource: map[string]float64{},
		cpu: after.cpu - before.cpu, apiCPU: after.apiCPU - before.apiCPU, etcdCPU: after.etcdCPU - before.etcdCPU,
		benchCPU: after.benchCPU - before.benchCPU, elapsed: after.at.Sub(before.at)}
	var bm map[string]float64
	if before.mgr != nil {
		bm = before.mgr.by("rest_client_requests_total", []string{"method"})
	}
	for method, v := range after.mgr.by("rest_client_requests_total", []string{"method"}) {
		d := v - bm[method]
		if d == 0 {
			continue
		}
		c.byMethod[method] = d
		if isWrite(method) {
			c.writes += d
		} else {
			c.reads += d
		}
	}
	keys := []string{"verb", "resource", "subresource"}
	ba := before.api.by("apiserver_request_total", keys)
	for k, v := range after.api.by("apiserver_request_total", keys) {
		f := strings.Fields(k)
		if len(f) < 2 {
			continue // non-resource requests (/metrics, /healthz ...)
		}
		key := f[0] + " " + f[1]
		if len(f) > 2 {
			key += "/" + f[2]
		}
		c.byResource[key] += v - ba[k]
	}
	for k, v := range after.own {
		c.byResource[k] -= v - before.own[k]
	}
	for k, v := range c.byResource {
		if math.Abs(v) < 0.5 {
			delete(c.byResource, k)
		}
	}
	tot := func(s scrape) float64 {
		if s == nil {
			return 0
		}
		return s.sum("controller_runtime_reconcile_total", "controller", controllerName)
	}
	c.reconciles = tot(after.mgr) - tot(before.mgr)
	issued := func(s scrape) float64 {
		if s == nil {
			return 0
		}
		return s.sum("tokenmint_tokens_issued_total")
	}
	c.issued = issued(after.mgr) - issued(before.mgr)
	if h, err := after.mgr.histogram("tokenmint_issuer_request_duration_seconds"); err == nil {
		c.endpointSum, c.endpointCount = h.sum, h.count
		if before.mgr != nil {
			if hb, err := before.mgr.histogram("tokenmint_issuer_request_duration_seconds"); err == nil {
				c.endpointSum -= hb.sum
				c.endpointCount -= hb.count
			}
		}
	}
	if h, err := after.mgr.histogram("controller_runtime_reconcile_time_seconds", "controller", controllerName); err == nil {
		var hb *sparse
		if before.mgr != nil {
			hb, _ = before.mgr.histogram("controller_runtime_reconcile_time_seconds", "controller", controllerName)
		}
		c.hist = h.minus(hb)
	}
	return c
}

// --- 5. spread ----------------------------------------------------------------

func (b *bench) phaseSpread(ctx context.Context) error {
	items, err := b.tracker.list(ctx, tokensNamespace)
	if err != nil {
		return err
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	sp := spreadOf(items, b.opts.spreadSample)
	if sp == nil {
		return fmt.Errorf("no issued AccessToken to measure")
	}
	b.r.spread = sp
	b.p.printf("spread: %d tokens, renewal %.1f%% of the lifetime wide, busiest minute %.2f × the mean; at most %d renewals in one second of the wall clock",
		sp.sample, sp.widthFraction*100, sp.peakOverMean, sp.maxPerSecond)
	return nil
}

type spread struct {
	sample        int
	lifetime      time.Duration
	minOffset     time.Duration
	maxOffset     time.Duration
	widthFraction float64
	minutes       int
	peak          int
	peakOverMean  float64
	maxPerSecond  int // over every token, of the real renewal times
	issueWindow   time.Duration
}

// spreadOf measures, for the first `sample` tokens, when each renews relative to
// when it was issued: as if all had been issued in the same second.
func spreadOf(items []tokensv1alpha1.AccessToken, sample int) *spread {
	var offsets []time.Duration
	sp := &spread{}
	perSecond := map[int64]int{}
	var first, last time.Time
	for i := range items {
		st := items[i].Status
		if st.IssuedAt == nil || st.RenewalTime == nil || st.ExpiresAt == nil {
			continue
		}
		perSecond[st.RenewalTime.Unix()]++
		if first.IsZero() || st.IssuedAt.Before(&metav1.Time{Time: first}) {
			first = st.IssuedAt.Time
		}
		if st.IssuedAt.After(last) {
			last = st.IssuedAt.Time
		}
		if len(offsets) < sample {
			offsets = append(offsets, st.RenewalTime.Sub(st.IssuedAt.Time))
			sp.lifetime = st.ExpiresAt.Sub(st.IssuedAt.Time)
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	sort.Slice(offsets, func(i, j int) bool { return offsets[i] < offsets[j] })
	sp.sample = len(offsets)
	sp.minOffset, sp.maxOffset = offsets[0], offsets[len(offsets)-1]
	sp.widthFraction = float64(sp.maxOffset-sp.minOffset) / float64(sp.lifetime)
	sp.minutes = int((sp.maxOffset-sp.minOffset)/time.Minute) + 1
	bins := make([]int, sp.minutes)
	for _, o := range offsets {
		bins[int((o-sp.minOffset)/time.Minute)]++
	}
	for _, c := range bins {
		sp.peak = max(sp.peak, c)
	}
	sp.peakOverMean = float64(sp.peak) / (float64(sp.sample) / float64(sp.minutes))
	for _, c := range perSecond {
		sp.maxPerSecond = max(sp.maxPerSecond, c)
	}
	sp.issueWindow = last.Sub(first)
	return sp
}

// --- 6. status-only writes trigger nothing --------------------------------------

func (b *bench) phaseStatusOnly(ctx context.Context) error {
	n := b.opts.n
	b.p.printf("status-only: adding a %s condition to every AccessToken's status, then removing it", probeCondition)
	before, err := b.snapshot(ctx)
	if err != nil {
		return err
	}
	now := metav1.Now().UTC().Format(time.RFC3339)
	err = b.forEach(ctx, func(at *tokensv1alpha1.AccessToken) error {
		add, _ := json.Marshal([]map[string]any{{"op": "add", "path": "/status/conditions/-", "value": map[string]any{
			"type": probeCondition, "status": "True", "reason": "Probe", "lastTransitionTime": now,
			"message": "a status-only write by the benchmark"}}})
		if err := b.client.Status().Patch(ctx, at, client.RawPatch(types.JSONPatchType, add)); err != nil {
			return err
		}
		b.count("PATCH", "accesstokens/status")
		i := len(at.Status.Conditions) - 1
		if i < 0 || at.Status.Conditions[i].Type != probeCondition {
			return fmt.Errorf("%s: the probe condition is not last", at.Name)
		}
		remove, _ := json.Marshal([]map[string]any{
			{"op": "test", "path": fmt.Sprintf("/status/conditions/%d/type", i), "value": probeCondition},
			{"op": "remove", "path": fmt.Sprintf("/status/conditions/%d", i)}})
		if err := b.client.Status().Patch(ctx, at, client.RawPatch(types.JSONPatchType, remove)); err != nil {
			return err
		}
		b.count("PATCH", "accesstokens/status")
		return nil
	})
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // let the manager's informer receive the last events
	if _, err := b.waitQuiet(ctx, 3*time.Second, 5*time.Minute); err != nil {
		return err
	}
	after, err := b.snapshot(ctx)
	if err != nil {
		return err
	}
	b.r.statusOnly = diffCosts(before, after, n)
	b.r.statusWrites = 2 * n
	b.p.printf("status-only: %d status writes caused %.0f reconciles", 2*n, b.r.statusOnly.reconciles)
	return nil
}

// forEach runs fn on every AccessToken of the tokens namespace, with as many
// goroutines as the manager has workers.
func (b *bench) forEach(ctx context.Context, fn func(*tokensv1alpha1.AccessToken) error) error {
	items, err := b.tracker.list(ctx, tokensNamespace)
	if err != nil {
		return err
	}
	ch := make(chan *tokensv1alpha1.AccessToken)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range b.r.workers {
		wg.Go(func() {
			for at := range ch {
				if err := fn(at); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	for i := range items {
		ch <- &items[i]
	}
	close(ch)
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return err
	}
	return nil
}

// --- 6. no-op reconciles --------------------------------------------------------

func (b *bench) phasePoke(ctx context.Context) error {
	n := b.opts.n
	b.p.printf("no-op: changing an unrelated annotation on every AccessToken (each triggers one reconcile that must do nothing)")
	before, err := b.snapshot(ctx)
	if err != nil {
		return err
	}
	stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
	err = b.forEach(ctx, func(at *tokensv1alpha1.AccessToken) error {
		patch := []byte(`{"metadata":{"annotations":{"` + pokeAnnotation + `":"` + stamp + `"}}}`)
		if err := b.client.Patch(ctx, at, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return err
		}
		b.count("PATCH", "accesstokens")
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := b.waitQuiet(ctx, 3*time.Second, 5*time.Minute); err != nil {
		return err
	}
	after, err := b.snapshot(ctx)
	if err != nil {
		return err
	}
	b.r.poke = diffCosts(before, after, n)
	b.p.printf("no-op: %.0f reconciles, median %s, %.0f writes, %.0f endpoint calls",
		b.r.poke.reconciles, fmtSeconds(b.r.poke.hist.quantile(0.5)), b.r.poke.writes, b.r.poke.calls)
	return nil
}

// --- 3. restart -----------------------------------------------------------------

func (b *bench) phaseRestart(ctx context.Context) error {
	n := b.opts.n
	b.p.printf("restart: SIGTERM to the manager")
	stopStart := time.Now()
	if err := b.mgr.stop(60 * time.Second); err != nil {
		return fmt.Errorf("stopping the manager: %w", err)
	}
	b.r.stopTime = time.Since(stopStart)
	before, err := b.snapshot(ctx)
	if err != nil {
		return err
	}
	b.p.printf("restart: manager stopped in %s; starting it again", b.r.stopTime.Round(time.Millisecond))
	args := append([]string{"--operator-namespace", operatorNamespace}, b.opts.managerArgs...)
	m, err := startManager(b.bin, b.kubeconfig, filepath.Join(b.opts.logDir, "manager.log"), args, b.opts.managerEnv)
	if err != nil {
		return err
	}
	b.mgr = m
	if b.r.restartTime, err = b.waitReconciled(ctx, "restart"); err != nil {
		return err
	}
	b.p.printf("restart: %d AccessTokens reconciled, queue empty, %s after the process started", n, b.r.restartTime.Round(time.Millisecond))
	if _, err := b.waitQuiet(ctx, 3*time.Second, 5*time.Minute); err != nil {
		return err
	}
	after, err := b.snapshot(ctx)
	if err != nil {
		return err
	}
	before.mgr = nil // a new process: its counters start at zero
	b.r.restart = diffCosts(before, after, n)
	b.p.printf("restart: %.0f endpoint calls, %.0f writes%s, %.0f reads; no-op reconcile median %s",
		b.r.restart.calls, b.r.restart.writes, writesNamed(b.r.restart), b.r.restart.reads, fmtSeconds(b.r.restart.hist.quantile(0.5)))
	return nil
}

// waitReconciled waits until a manager just started has reconciled every one
// of the N AccessTokens and its queue is empty, and returns how long after the
// process started that was.
func (b *bench) waitReconciled(ctx context.Context, phase string) (time.Duration, error) {
	m, n := b.mgr, b.opts.n
	deadline := m.started.Add(b.opts.readyTimeout)
	var reconciled float64
	lastPrint := time.Now()
	for {
		if m.exited() {
			return 0, fmt.Errorf("the manager exited; see %s", m.log.Name())
		}
		scraped := time.Now()
		s, err := m.metrics(ctx)
		pause := pollPause(time.Since(scraped), 50*time.Millisecond)
		if err == nil {
			reconciled = s.sum("controller_runtime_reconcile_total", "controller", controllerName)
			depth := s.sum("workqueue_depth", "name", controllerName)
			if reconciled >= float64(n) && depth == 0 {
				return time.Since(m.started), nil
			}
			if time.Since(lastPrint) > 5*time.Second {
				b.p.printf("  %s: %.0f reconciled, queue %.0f", phase, reconciled, depth)
				lastPrint = time.Now()
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %.0f of %d AccessTokens reconciled %s after the manager started", reconciled, n, b.opts.readyTimeout)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(pause):
		}
	}
}

// pollPause is how long to wait before scraping the manager again after a
// scrape that took took: at least floor, and four times the scrape, so that
// the benchmark's own scrapes (all the per-AccessToken series: about a second
// of the manager's CPU at 100,000) take at most a fifth of its time.
func pollPause(took, floor time.Duration) time.Duration {
	return max(floor, 4*took)
}

// --- 4. memory ------------------------------------------------------------------

// scrapeInterval is how often the chart's ServiceMonitor has Prometheus scrape
// the manager: while settling, the benchmark scrapes as often, because a scrape
// of every per-AccessToken series is part of the manager's steady state.
const scrapeInterval = 30 * time.Second

// settled is the manager's memory after settling.
type settled struct {
	rss    float64 // median resident memory over one scrape interval
	rssMax float64 // highest resident memory over that interval
	file   float64 // of it, pages mapped from files (the binary), last reading
	// heap figures from the scrape that starts the interval
	heap, heapInuse, heapHeld float64
	series, tokenmintSeries   int
}

// settledMemory lets the manager settle, scraping its metrics every
// scrapeInterval, then reads its resident memory every second over one more
// interval (no longer than the settling), which starts with a scrape.
func (b *bench) settledMemory(ctx context.Context) (settled, error) {
	b.p.printf("memory: letting the manager settle for %s, scraping its metrics every %s", b.opts.settle, scrapeInterval)
	var st settled
	wait := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	for end := time.Now().Add(b.opts.settle); time.Now().Before(end); {
		if _, err := b.mgr.metrics(ctx); err != nil {
			return st, err
		}
		if err := wait(min(scrapeInterval, time.Until(end))); err != nil {
			return st, err
		}
	}
	m, err := b.mgr.metrics(ctx)
	if err != nil {
		return st, err
	}
	st.heap = m.sum("go_memstats_heap_alloc_bytes")
	st.heapInuse = m.sum("go_memstats_heap_inuse_bytes")
	st.heapHeld = m.sum("go_memstats_heap_sys_bytes") - m.sum("go_memstats_heap_released_bytes")
	for name, mf := range m {
		st.series += len(mf.GetMetric())
		if strings.HasPrefix(name, "tokenmint_") {
			st.tokenmintSeries += len(mf.GetMetric())
		}
	}
	var rss []float64
	for range int(min(scrapeInterval, max(b.opts.settle, time.Second)) / time.Second) {
		mem, err := b.mgr.memory()
		if err != nil {
			return st, err
		}
		rss, st.file = append(rss, mem.rss), mem.file
		if err := wait(time.Second); err != nil {
			return st, err
		}
	}
	st.rss, st.rssMax = median(rss), slices.Max(rss)
	return st, nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func (b *bench) phaseMemory(ctx context.Context) error {
	var err error
	if b.r.mem, err = b.settledMemory(ctx); err != nil {
		return err
	}
	b.p.printf("memory: RSS %s (at most %s), Go heap %s", mib(b.r.mem.rss), mib(b.r.mem.rssMax), mib(b.r.mem.heap))
	if b.opts.heapProfile != "" {
		if err := b.mgr.saveHeapProfile(ctx, b.opts.heapProfile); err != nil {
			return err
		}
		b.p.printf("memory: heap profile written to %s (go tool pprof -sample_index=inuse_space -top %s)", b.opts.heapProfile, b.opts.heapProfile)
	}
	if b.opts.quick || b.opts.noiseSecrets == 0 {
		return nil
	}
	b.p.printf("memory: adding %d unrelated Secrets of %d KiB in %s", b.opts.noiseSecrets, b.opts.noiseSize/1024, noiseNamespace)
	idx := make(chan int)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range 8 {
		wg.Go(func() {
			data := make([]byte, b.opts.noiseSize)
			for i := range idx {
				_, _ = rand.Read(data)
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("unrelated-%05d", i), Namespace: noiseNamespace},
					Data: map[string][]byte{"blob": data}}
				if err := b.client.Create(ctx, s); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
				b.count("POST", "secrets")
			}
		})
	}
	for i := range b.opts.noiseSecrets {
		idx <- i
	}
	close(idx)
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return err
	}
	if b.r.noiseMem, err = b.settledMemory(ctx); err != nil {
		return err
	}
	b.r.noise = true
	b.p.printf("memory: with the unrelated Secrets, RSS %s (%+.1f%%), Go heap %s (%+.1f%%)",
		mib(b.r.noiseMem.rss), pct(b.r.noiseMem.rss, b.r.mem.rss), mib(b.r.noiseMem.heap), pct(b.r.noiseMem.heap, b.r.mem.heap))
	return nil
}

func pct(after, before float64) float64 { return (after/before - 1) * 100 }

func mib(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }

func fmtSeconds(s float64) string {
	switch {
	case math.IsNaN(s):
		return "n/a"
	case s < 1e-3:
		return fmt.Sprintf("%.0f µs", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.2f ms", s*1e3)
	}
	return fmt.Sprintf("%.2f s", s)
}
