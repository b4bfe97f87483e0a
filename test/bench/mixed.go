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

// The mixed mode measures tenant isolation: an honest tenant's short-lived
// tokens must keep being renewed on time while a hostile tenant, in the same
// cluster and served by the same manager, does its worst with what the API
// lets any namespace user do.
//
//	go run ./test/bench -mixed [-mixed-honest 1000 -mixed-duration 10m -mixed-lifetime 90s]

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/controlplane"
)

const (
	honestNamespace  = "honest"
	hostileNamespace = "hostile"
	hostileUser      = "hostile-tenant"
	honestIssuer     = "honest"
	hangIssuer       = "hang"
	bigIssuer        = "big"
	spamIssuer       = "spam"
)

// mixedOptions configure the mixed run.
type mixedOptions struct {
	enabled      bool
	honest       int           // honest AccessTokens
	duration     time.Duration // measured window, after all honest tokens are first Ready
	lifetime     time.Duration // of the honest tokens
	delay        time.Duration // before the honest endpoint answers
	readyTimeout time.Duration // longest wait for all honest tokens to be first Ready
	hanging      int           // AccessTokens on the endpoint that never answers
	big          int           // AccessTokens on the endpoint of ~1 MiB tokens
	bigBytes     int           // size of those tokens
	spam         int           // AccessTokens whose renew annotation is rewritten in a loop
	undecodable  bool          // attempt the undecodable objects
	cost         costOptions   // the cost attacks (mixed_cost.go)
	smoke        bool          // use smokeSizes for the flags not given
}

// registeredMixed is where registerMixedFlags's flags write.
var registeredMixed *mixedOptions

// smokeSizes make a run of about 4 minutes on 2 CPUs (-mixed-smoke): every
// attack, smaller.
var smokeSizes = map[string]string{
	"mixed-honest": "50", "mixed-duration": "1m", "mixed-hanging": "20", "mixed-big": "5", "mixed-renew-spam": "5",
	"mixed-cred-tokens": "50", "mixed-param-tokens": "20", "mixed-short-tokens": "20", "mixed-metrics-conns": "50", "mixed-churn-tokens": "10",
}

// applySmoke sets the smoke sizes of the flags of fs not set on the command line.
func applySmoke(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for k, v := range smokeSizes {
		if !set[k] {
			if err := fs.Set(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func registerMixedFlags(fs *flag.FlagSet) *mixedOptions {
	mo := &mixedOptions{}
	registeredMixed = mo
	fs.BoolVar(&mo.enabled, "mixed", false, "Measure tenant isolation instead: an honest tenant's renewals beside a hostile tenant (writes bin/bench-mixed.md).")
	fs.IntVar(&mo.honest, "mixed-honest", 1000, "Mixed: the honest tenant's AccessTokens.")
	fs.DurationVar(&mo.duration, "mixed-duration", 10*time.Minute, "Mixed: the measured window, from when all honest AccessTokens are first Ready.")
	fs.DurationVar(&mo.lifetime, "mixed-lifetime", 90*time.Second, "Mixed: lifetime of the honest tokens (expires_in).")
	fs.DurationVar(&mo.delay, "mixed-delay", 250*time.Millisecond, "Mixed: how long the honest endpoint takes to answer.")
	fs.DurationVar(&mo.readyTimeout, "mixed-ready-timeout", 10*time.Minute, "Mixed: longest wait for all honest AccessTokens to be first Ready; the window starts then regardless.")
	fs.IntVar(&mo.hanging, "mixed-hanging", 100, "Mixed: hostile AccessTokens on an endpoint that never answers (0: none).")
	fs.IntVar(&mo.big, "mixed-big", 20, "Mixed: hostile AccessTokens on an endpoint of nearly 1 MiB tokens (0: none).")
	fs.IntVar(&mo.bigBytes, "mixed-big-bytes", 1_000_000, "Mixed: size of those tokens in bytes.")
	fs.IntVar(&mo.spam, "mixed-renew-spam", 20, "Mixed: hostile AccessTokens whose tokens.tokenmint.dev/renew annotation a loop rewrites as fast as it can (0: none).")
	fs.BoolVar(&mo.undecodable, "mixed-undecodable", true, "Mixed: attempt undecodable objects (maxAge: 30d, renewBefore: 1x, timeout: 1h).")
	registerCostFlags(fs, &mo.cost)
	fs.BoolVar(&mo.smoke, "mixed-smoke", false, "Mixed: the smoke size, about 4 minutes on 2 CPUs (-mixed-honest 50 -mixed-duration 1m, every attack smaller); flags given explicitly win.")
	return mo
}

// mainMixed runs the mixed mode from main and returns the exit code.
func mainMixed(opts options, mo mixedOptions) int {
	if mo.smoke {
		if err := applySmoke(flag.CommandLine); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 2
		}
		mo = *registeredMixed // the flags just set wrote there
	}
	outSet := false
	flag.Visit(func(f *flag.Flag) { outSet = outSet || f.Name == "out" })
	if !outSet {
		opts.out = filepath.Join(controlplane.RepoRoot(), "bin", "bench-mixed.md")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := runMixed(ctx, opts, mo, os.Stdout)
	if res != nil {
		md := res.markdown()
		fmt.Println()
		fmt.Println(md)
		if err == nil {
			werr := os.MkdirAll(filepath.Dir(opts.out), 0o755)
			if werr == nil {
				werr = os.WriteFile(opts.out, []byte(md), 0o644)
			}
			if werr != nil {
				fmt.Fprintln(os.Stderr, werr)
			} else {
				fmt.Printf("Written to %s\n", opts.out)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

// mixedBench is one mixed run.
type mixedBench struct {
	opts       options
	mo         mixedOptions
	p          *progress
	cp         *controlplane.ControlPlane
	kubeconfig string
	cfg        *rest.Config  // the administrator's
	client     client.Client // cluster administrator, the honest tenant's and the benchmark's
	hostile    client.Client // the hostile tenant: a namespace user, under API priority and fairness
	bin        string
	mgr        *manager
	dir        string

	log                                *issueLog
	honestEP, hangEP, bigEP, spamEP    *tenantEndpoint
	watch                              *honestWatch
	spamStop                           context.CancelFunc
	spamDone                           sync.WaitGroup
	spamPatches, spamErrors            atomic.Int64
	spamStarted, spamEnded             time.Time
	spamFirstErr                       atomic.Value
	rssSamples                         []float64
	honestNames, hangNames, spamTokens []string
	cost                               costRun
	readyExpired                       map[string]time.Duration // honest AccessTokens seen Ready=True past their expiry, longest

	r mixedResults
}

// run performs the mixed run and returns what it measured.
func runMixed(ctx context.Context, opts options, mo mixedOptions, w io.Writer) (_ *mixedResults, err error) {
	m := &mixedBench{opts: opts, mo: mo, p: &progress{w: w, start: time.Now()}, log: newIssueLog()}
	m.r = mixedResults{mo: mo, command: opts.command, machine: machineInfo(), started: time.Now(), loadBefore: loadAverage()}
	m.p.printf("tokenmint mixed-tenant benchmark: %d honest AccessTokens (%s tokens, endpoint answers in %s), window %s, on %s",
		mo.honest, mo.lifetime, mo.delay, mo.duration, m.r.machine.summary())
	defer m.teardown()

	if err := m.setup(ctx); err != nil {
		return nil, err
	}
	phases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"hostile tenant", m.phaseHostile},
		{"hostile tenant's cost attacks", m.phaseCost},
		{"honest tenant", m.phaseHonest},
		{"window", m.phaseWindow},
	}
	for _, ph := range phases {
		if err := ph.fn(ctx); err != nil {
			m.finish()
			return &m.r, fmt.Errorf("%s: %w", ph.name, err)
		}
	}
	m.finish()
	return &m.r, nil
}

func (m *mixedBench) setup(ctx context.Context) error {
	var err error
	if m.dir, err = os.MkdirTemp("", "tokenmint-bench-mixed-"); err != nil {
		return err
	}
	if m.opts.logDir == "" {
		m.opts.logDir = m.dir
	} else if err := os.MkdirAll(m.opts.logDir, 0o755); err != nil {
		return err
	}
	m.r.logDir = m.opts.logDir
	if v, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "dist", "chart", "values.yaml")); err == nil {
		m.r.chartLimit, m.r.chartLimitBytes, _ = chartMemoryLimit(v)
	}

	m.r.revision = revision(controlplane.RepoRoot())
	if m.opts.managerBin != "" {
		m.bin, m.r.revision = m.opts.managerBin, m.opts.managerBin
	} else {
		m.p.printf("building the manager (CGO_ENABLED=0 go build ./cmd) at %s", m.r.revision)
		if m.bin, err = buildManager(m.dir); err != nil {
			return err
		}
	}
	settings, err := flagDefaults(m.bin)
	if err != nil {
		return err
	}
	m.r.defaults = map[string]string{}
	for k, v := range settings {
		m.r.defaults[k] = v
	}
	// TokenIssuers may call loopback only when the manager allows private
	// destinations; the endpoints of both tenants are on 127.0.0.1.
	m.r.managerArgs = append(append([]string{"--allow-private-destinations"}, m.managerCostArgs()...), m.opts.managerArgs...)
	applyArgs(settings, m.r.managerArgs)
	m.r.settings, m.r.managerEnv = settings, m.opts.managerEnv

	m.p.printf("starting etcd and kube-apiserver on loopback (the first build of them takes a while)")
	if m.cp, err = controlplane.Start(controlplane.Options{}); err != nil {
		return err
	}
	m.kubeconfig = filepath.Join(m.dir, "admin.kubeconfig")
	if err := m.cp.WriteKubeconfig(m.kubeconfig); err != nil {
		return err
	}
	scheme := newScheme()
	cfg := rest.CopyConfig(m.cp.Config)
	cfg.QPS, cfg.Burst = -1, 0
	cfg.UserAgent = "tokenmint-bench"
	m.cfg = cfg
	if m.client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	// The hostile tenant is an ordinary user with full rights on tokenmint's
	// kinds in its own namespace only: its requests go through RBAC and API
	// priority and fairness as a real tenant's would. It has no client-side
	// rate limit.
	hcfg := rest.CopyConfig(cfg)
	hcfg.Impersonate = rest.ImpersonationConfig{UserName: hostileUser, Groups: []string{"system:authenticated"}}
	hcfg.UserAgent = "hostile-tenant"
	if m.hostile, err = client.New(hcfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	for _, ns := range []string{operatorNamespace, honestNamespace} {
		if err := m.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	if err := m.tenantNamespace(ctx, hostileNamespace); err != nil {
		return err
	}

	m.honestEP = &tenantEndpoint{delay: m.mo.delay, lifetime: m.mo.lifetime, log: m.log}
	m.hangEP = &tenantEndpoint{hang: true, lifetime: time.Hour}
	m.bigEP = &tenantEndpoint{lifetime: m.mo.lifetime, tokenBytes: m.mo.bigBytes}
	m.spamEP = &tenantEndpoint{lifetime: time.Hour}
	for _, e := range []*tenantEndpoint{m.honestEP, m.hangEP, m.bigEP, m.spamEP} {
		if err := startTenantEndpoint(e); err != nil {
			return err
		}
	}
	if err := m.setupCost(ctx); err != nil {
		return err
	}
	m.r.bigBody = bigAnswerSize(m.mo.bigBytes, m.mo.lifetime)
	m.p.printf("endpoints: honest %s, never answers %s, ~1 MiB tokens %s (bodies of %d bytes), renew spam %s",
		m.honestEP.URL, m.hangEP.URL, m.bigEP.URL, m.r.bigBody, m.spamEP.URL)

	if m.watch, err = startHonestWatch(ctx, cfg, scheme, honestNamespace, m.log); err != nil {
		return err
	}

	m.p.printf("starting the manager: %s", strings.Join(m.r.managerArgs, " "))
	if m.mgr, err = startManager(m.bin, m.kubeconfig, filepath.Join(m.opts.logDir, "manager.log"), m.managerArgs(), m.opts.managerEnv); err != nil {
		return err
	}
	return m.mgr.waitReady(ctx, 60*time.Second)
}

// tenantNamespace creates the namespace ns, where the hostile tenant is an
// ordinary user with full rights on tokenmint's kinds and on Secrets (as a
// namespace's owner is), and nothing else.
func (m *mixedBench) tenantNamespace(ctx context.Context, ns string) error {
	if err := m.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	if err := m.client.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: hostileUser, Namespace: ns},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{tokensv1alpha1.GroupVersion.Group}, Resources: []string{"*"}, Verbs: []string{"*"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		},
	}); err != nil {
		return err
	}
	return m.client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: hostileUser, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: hostileUser},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: hostileUser}},
	})
}

// managerArgs are the manager's flags, at its start and restart.
func (m *mixedBench) managerArgs() []string {
	return append([]string{"--operator-namespace", operatorNamespace}, m.r.managerArgs...)
}

func (m *mixedBench) teardown() {
	m.teardownCost()
	if m.spamStop != nil {
		m.spamStop()
		m.spamDone.Wait()
	}
	if m.hangEP != nil && m.hangEP.stop != nil {
		m.hangEP.stopOnce.Do(func() { close(m.hangEP.stop) }) // release the calls held open
	}
	if m.mgr != nil {
		_ = m.mgr.stop(30 * time.Second)
	}
	for _, e := range []*tenantEndpoint{m.honestEP, m.hangEP, m.bigEP, m.spamEP} {
		if e != nil {
			e.Stop()
		}
	}
	if m.cp != nil {
		_ = m.cp.Stop()
	}
	if m.dir != "" && m.opts.logDir != m.dir {
		_ = os.RemoveAll(m.dir)
	}
}

// --- objects ----------------------------------------------------------------

var (
	issuerGVK = schema.GroupVersionKind{Group: tokensv1alpha1.GroupVersion.Group, Version: tokensv1alpha1.GroupVersion.Version, Kind: "TokenIssuer"}
	tokenGVK  = schema.GroupVersionKind{Group: tokensv1alpha1.GroupVersion.Group, Version: tokensv1alpha1.GroupVersion.Version, Kind: "AccessToken"}
)

// tenantIssuer is a TokenIssuer for one of the tenant endpoints, written as
// plain JSON so that it can carry values the Go types would not (and does not
// depend on how they spell durations). Every AccessToken names itself in the
// request body, through the parameter subject.
func tenantIssuer(ns, name, url string, spec map[string]any) *unstructured.Unstructured {
	s := map[string]any{
		"allowInsecureHTTP": true,
		"request": map[string]any{"url": url, "method": "POST",
			"body": map[string]any{"json": []any{map[string]any{"path": "subject", "parameter": "subject"}}}},
		"parameters": []any{map[string]any{"name": "subject", "type": "String", "required": true}},
		"response": map[string]any{"token": "access_token",
			"expiry": map[string]any{"path": "expires_in", "format": "RelativeSeconds"},
			"error":  map[string]any{"code": "error"}},
	}
	for k, v := range spec {
		s[k] = v
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": s}}
	u.SetGroupVersionKind(issuerGVK)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

// tenantToken is an AccessToken of issuer, writing to the Secret <name>-token.
func tenantToken(ns, name, issuer string, spec map[string]any) *unstructured.Unstructured {
	s := map[string]any{
		"issuerRef":  map[string]any{"kind": "TokenIssuer", "name": issuer},
		"secret":     map[string]any{"name": name + "-token"},
		"parameters": map[string]any{"subject": name},
	}
	for k, v := range spec {
		s[k] = v
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": s}}
	u.SetGroupVersionKind(tokenGVK)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

// createAll creates the AccessTokens named prefix-00000 ... with c, `creators`
// at a time, and returns their names.
func (m *mixedBench) createAll(ctx context.Context, c client.Client, ns, prefix, issuer string, n int) ([]string, error) {
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	idx := make(chan int)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range max(1, m.opts.creators) {
		wg.Go(func() {
			for i := range idx {
				if err := c.Create(ctx, tenantToken(ns, names[i], issuer, nil)); err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("creating AccessToken %s/%s: %w", ns, names[i], err))
				}
			}
		})
	}
	for i := range n {
		select {
		case idx <- i:
		case <-ctx.Done():
		}
	}
	close(idx)
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return nil, err
	}
	return names, ctx.Err()
}

// --- hostile tenant ---------------------------------------------------------------

func (m *mixedBench) phaseHostile(ctx context.Context) error {
	m.p.printf("hostile tenant (as user %s, in namespace %s)", hostileUser, hostileNamespace)
	var err error
	// (a) an endpoint that never answers, with the longest timeout admitted.
	if m.mo.hanging > 0 {
		for _, t := range []string{"1h", "60s"} {
			err = m.hostile.Create(ctx, tenantIssuer(hostileNamespace, hangIssuer, m.hangEP.URL, map[string]any{"timeout": t}))
			if err == nil {
				m.r.hangTimeout = t
				break
			}
			if !apierrors.IsInvalid(err) {
				return fmt.Errorf("creating TokenIssuer %s: %w", hangIssuer, err)
			}
			m.r.hangRefused = append(m.r.hangRefused, t)
			m.p.printf("  TokenIssuer %s with timeout %s refused: %s", hangIssuer, t, shortErr(err))
		}
		if err != nil {
			return fmt.Errorf("creating TokenIssuer %s: %w", hangIssuer, err)
		}
		if m.hangNames, err = m.createAll(ctx, m.hostile, hostileNamespace, "hang", hangIssuer, m.mo.hanging); err != nil {
			return err
		}
		m.p.printf("  (a) %d AccessTokens on an endpoint that never answers, timeout %s", m.mo.hanging, m.r.hangTimeout)
	}
	// (b) tokens of nearly 1 MiB.
	if m.mo.big > 0 {
		if err := m.hostile.Create(ctx, tenantIssuer(hostileNamespace, bigIssuer, m.bigEP.URL, nil)); err != nil {
			return fmt.Errorf("creating TokenIssuer %s: %w", bigIssuer, err)
		}
		if _, err := m.createAll(ctx, m.hostile, hostileNamespace, "big", bigIssuer, m.mo.big); err != nil {
			return err
		}
		m.p.printf("  (b) %d AccessTokens on an endpoint of %d-byte tokens (%d-byte answers, lifetime %s)", m.mo.big, m.mo.bigBytes, m.r.bigBody, m.mo.lifetime)
	}
	// (c) a fast issuer of its own, and renewals asked for as fast as the API takes them.
	if m.mo.spam > 0 || m.mo.undecodable {
		if err := m.hostile.Create(ctx, tenantIssuer(hostileNamespace, spamIssuer, m.spamEP.URL, nil)); err != nil {
			return fmt.Errorf("creating TokenIssuer %s: %w", spamIssuer, err)
		}
	}
	if m.mo.spam > 0 {
		if m.spamTokens, err = m.createAll(ctx, m.hostile, hostileNamespace, "spam", spamIssuer, m.mo.spam); err != nil {
			return err
		}
		sctx, cancel := context.WithCancel(ctx)
		m.spamStop = cancel
		m.spamStarted = time.Now()
		m.spamDone.Go(func() { m.spamLoop(sctx) })
		m.p.printf("  (c) %d AccessTokens whose %s annotation a loop rewrites as fast as it can", m.mo.spam, tokensv1alpha1.AnnotationRenew)
	}
	// (d) objects the Go types cannot decode.
	if m.mo.undecodable {
		attempts := []struct {
			what string
			obj  *unstructured.Unstructured
		}{
			{"AccessToken with maxAge: 30d", tenantToken(hostileNamespace, "bad-maxage", spamIssuer, map[string]any{"maxAge": "30d"})},
			{"AccessToken with renewBefore: 1x", tenantToken(hostileNamespace, "bad-renewbefore", spamIssuer, map[string]any{"renewBefore": "1x"})},
			{"TokenIssuer with timeout: 1h", tenantIssuer(hostileNamespace, "bad-timeout", m.spamEP.URL, map[string]any{"timeout": "1h"})},
		}
		for _, a := range attempts {
			err := m.hostile.Create(ctx, a.obj)
			ad := admission{what: a.what, admitted: err == nil}
			if err != nil {
				ad.reason = shortErr(err)
			}
			m.r.undecodable = append(m.r.undecodable, ad)
			m.p.printf("  (d) %s: %s", a.what, ad.verdict())
		}
	}
	return nil
}

// spamLoop sets the renew annotation of the spam AccessTokens, one after the
// other, to a new value each time, until ctx ends.
func (m *mixedBench) spamLoop(ctx context.Context) {
	objs := make([]*unstructured.Unstructured, len(m.spamTokens))
	for i, n := range m.spamTokens {
		objs[i] = &unstructured.Unstructured{}
		objs[i].SetGroupVersionKind(tokenGVK)
		objs[i].SetNamespace(hostileNamespace)
		objs[i].SetName(n)
	}
	for i := 0; ctx.Err() == nil; i++ {
		patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, tokensv1alpha1.AnnotationRenew, strconv.Itoa(i))
		if err := m.hostile.Patch(ctx, objs[i%len(objs)], client.RawPatch(types.MergePatchType, patch)); err != nil {
			if ctx.Err() != nil {
				break
			}
			m.spamErrors.Add(1)
			m.spamFirstErr.CompareAndSwap(nil, shortErr(err))
			continue
		}
		m.spamPatches.Add(1)
	}
	m.spamEnded = time.Now()
}

// --- honest tenant ----------------------------------------------------------------

func (m *mixedBench) phaseHonest(ctx context.Context) error {
	n := m.mo.honest
	if err := m.client.Create(ctx, tenantIssuer(honestNamespace, honestIssuer, m.honestEP.URL, nil)); err != nil {
		return fmt.Errorf("creating TokenIssuer %s: %w", honestIssuer, err)
	}
	m.p.printf("honest tenant: creating %d AccessTokens in %s", n, honestNamespace)
	start := time.Now()
	var err error
	if m.honestNames, err = m.createAll(ctx, m.client, honestNamespace, "h", honestIssuer, n); err != nil {
		return err
	}
	m.r.honestCreate = time.Since(start)
	got, last, err := m.watch.waitReady(ctx, n, start, m.mo.readyTimeout, m.p, m.hostileStatus)
	if err != nil {
		return err
	}
	m.r.readyCount = got
	if got >= n {
		m.r.firstIssue = last.Sub(start)
		m.p.printf("honest tenant: all %d AccessTokens Ready %s after the first was created (%.0f/s)", n, m.r.firstIssue.Round(time.Millisecond), float64(n)/m.r.firstIssue.Seconds())
	} else {
		m.r.firstIssue = time.Since(start)
		m.p.printf("honest tenant: only %d of %d AccessTokens Ready after %s; the window starts anyway", got, n, m.mo.readyTimeout)
	}
	return nil
}

func (m *mixedBench) hostileStatus() string {
	s := fmt.Sprintf("hostile endpoint calls: never-answers %d (%d held open), ~1 MiB %d, renew-spam %d (%d patches)",
		m.hangEP.calls.Load(), m.hangEP.inFlight.Load(), m.bigEP.calls.Load(), m.spamEP.calls.Load(), m.spamPatches.Load())
	if m.mgr != nil {
		if mem, err := m.mgr.memory(); err == nil {
			s += "; manager RSS " + mib(mem.rss)
		}
	}
	return s
}

// --- window --------------------------------------------------------------------

func (m *mixedBench) phaseWindow(ctx context.Context) error {
	m.r.windowStart = time.Now()
	end := m.r.windowStart.Add(m.mo.duration)
	m.p.printf("window: measuring for %s", m.mo.duration)
	m.r.callsAtWindowStart = m.honestEP.calls.Load()
	if err := m.startCostWindow(ctx); err != nil {
		return err
	}
	lastPrint := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			m.r.windowEnd = time.Now()
			return ctx.Err()
		case <-tick.C:
		}
		if m.mgr.exited() {
			if m.r.managerExited == "" {
				m.r.managerExited = fmt.Sprintf("exited %s into the window; see %s", time.Since(m.r.windowStart).Round(time.Second), m.mgr.log.Name())
				m.p.printf("window: the manager %s", m.r.managerExited)
			}
		} else if mem, err := m.mgr.memory(); err == nil {
			m.rssSamples = append(m.rssSamples, mem.rss)
		}
		m.checkReadyExpired(ctx)
		if time.Since(lastPrint) >= 30*time.Second {
			lastPrint = time.Now()
			s := summarizeRenewals(m.watch.secretSequences(), m.honestNames, m.r.windowStart, time.Now())
			m.p.printf("  window %s/%s: honest renewals on time %d of %d (late %d, missing %d), smallest lead %s; %s",
				time.Since(m.r.windowStart).Round(time.Second), m.mo.duration, s.onTime, s.due, s.late, s.missing, fmtLead(s), m.hostileStatus())
		}
	}
	m.r.windowEnd = end
	return nil
}

// finish gathers what the run measured, whatever phase it reached.
func (m *mixedBench) finish() {
	if m.spamStop != nil {
		m.spamStop()
		m.spamDone.Wait()
		m.spamStop = nil
	}
	r := &m.r
	r.finished = time.Now()
	r.loadAfter = loadAverage()
	if !r.windowStart.IsZero() {
		if r.windowEnd.IsZero() {
			r.windowEnd = time.Now()
		}
		m.finishCost(context.Background())
		r.readyExpired = len(m.readyExpired)
		for _, d := range m.readyExpired {
			r.readyExpiredLongest = max(r.readyExpiredLongest, d)
		}
		r.inSecret = summarizeRenewals(m.watch.secretSequences(), m.honestNames, r.windowStart, r.windowEnd)
		r.atEndpoint = summarizeRenewals(m.log.sequences(), m.honestNames, r.windowStart, r.windowEnd)
		r.honestIssuedInWindow = m.log.issuedBetween(r.windowStart, r.windowEnd)
		r.honestCallsInWindow = m.honestEP.calls.Load() - r.callsAtWindowStart
	}
	if m.watch != nil {
		r.notReadyEver, r.notReadyAfter, r.notReadyReasons = m.watch.notReadySummary()
		r.wrongSecret, r.unknownTokens = m.watch.anomalies()
	}
	if m.honestEP != nil {
		r.honestCalls = m.honestEP.calls.Load()
		r.hangCalls, r.hangConns, r.hangMaxInFlight = m.hangEP.calls.Load(), m.hangEP.conns.Load(), m.hangEP.maxInFlight.Load()
		r.bigCalls, r.bigAnswered = m.bigEP.calls.Load(), m.bigEP.answered.Load()
		r.spamCalls = m.spamEP.calls.Load()
	}
	r.spamPatches, r.spamErrors = m.spamPatches.Load(), m.spamErrors.Load()
	if e, ok := m.spamFirstErr.Load().(string); ok {
		r.spamFirstErr = e
	}
	if !m.spamStarted.IsZero() && !m.spamEnded.IsZero() {
		r.spamFor = m.spamEnded.Sub(m.spamStarted)
	}
	if len(m.rssSamples) > 0 {
		r.rssMedian, r.rssPeak, r.rssSamples = median(m.rssSamples), slices.Max(m.rssSamples), len(m.rssSamples)
	}
	if m.mgr != nil && !m.mgr.exited() {
		if mem, err := m.mgr.memory(); err == nil {
			r.hwm = mem.hwm
		}
	}
}

// checkReadyExpired notes every honest AccessToken whose status says
// Ready=True while the expiry it names has passed.
func (m *mixedBench) checkReadyExpired(ctx context.Context) {
	var list tokensv1alpha1.AccessTokenList
	if err := m.watch.List(ctx, &list, client.InNamespace(honestNamespace)); err != nil {
		return
	}
	now := time.Now()
	for i := range list.Items {
		at := &list.Items[i]
		c := meta.FindStatusCondition(at.Status.Conditions, tokensv1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue || at.Status.ExpiresAt == nil || now.Before(at.Status.ExpiresAt.Time) {
			continue
		}
		if m.readyExpired == nil {
			m.readyExpired = map[string]time.Duration{}
		}
		m.readyExpired[at.Name] = max(m.readyExpired[at.Name], now.Sub(at.Status.ExpiresAt.Time))
	}
}

func shortErr(err error) string {
	var se apierrors.APIStatus
	s := err.Error()
	if errors.As(err, &se) {
		s = se.Status().Message
	}
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return strings.ReplaceAll(s, "|", "/")
}

func fmtLead(s renewalSummary) string {
	if s.renewed == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f s", s.minLead.Seconds())
}
