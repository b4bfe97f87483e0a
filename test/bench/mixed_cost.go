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

// The cost attacks of the mixed mode: what one namespace can make the shared
// manager spend (API reads, memory, writes, TokenReviews, a shared provider's
// mints), each run by the hostile tenant beside the honest one and measured
// from outside the manager: the apiserver's request counters, the manager's
// resident memory, a watch of the Secrets written, and the endpoints' own
// counts.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

const (
	credIssuer    = "cred"
	bigParamIssue = "bigparam"
	shortIssuer   = "short"
	churnIssuer   = "shared" // a ClusterTokenIssuer

	// Each cost attack runs in a namespace of its own, the hostile user's too:
	// the attacks of the hostile namespace (an endpoint that never answers
	// holds that namespace's calls in flight) would otherwise hide what each
	// one costs, and per-namespace budgets apply to each alone.
	nsCred  = "hostile-cred"
	nsParam = "hostile-param"
	nsShort = "hostile-short"
	nsChurn = "hostile-churn"
)

// costOptions size the cost attacks; 0 turns one off.
type costOptions struct {
	credTokens   int           // AccessTokens on the issuer naming many credential Secrets
	credSecrets  int           // credential Secrets it tries to name
	credEvery    time.Duration // one of them annotated this often
	paramTokens  int           // AccessTokens carrying a big parameter
	paramBytes   int           // its size tried first
	restart      bool          // restart the manager after the hostile tenant is set up
	shortTokens  int           // AccessTokens on the expires_in: 1 endpoint
	shortBytes   int           // size of its tokens and refresh tokens
	shortCopies  int           // copied fields per answer
	shortCopyLen int           // characters per copied field
	metricsConns int           // connections sending GET /metrics with random bearer tokens
	metricsAuth  bool          // run the manager's metrics endpoint with authentication (HTTPS)
	churnTokens  int           // hostile AccessTokens on a ClusterTokenIssuer, deleted and re-created in a loop
	churnHonest  int           // honest AccessTokens on the same ClusterTokenIssuer
}

func registerCostFlags(fs *flag.FlagSet, c *costOptions) {
	fs.IntVar(&c.credTokens, "mixed-cred-tokens", 200, "Mixed: hostile AccessTokens on an issuer naming as many credential Secrets as it is let, one of them annotated every -mixed-cred-every (0: none).")
	fs.IntVar(&c.credSecrets, "mixed-cred-secrets", 288, "Mixed: credential Secrets that issuer tries to name (fewer if refused: then the most the manager takes, 16).")
	fs.DurationVar(&c.credEvery, "mixed-cred-every", 10*time.Second, "Mixed: how often one credential Secret is annotated.")
	fs.IntVar(&c.paramTokens, "mixed-param-tokens", 200, "Mixed: hostile AccessTokens carrying a parameter as large as admission takes (0: none).")
	fs.IntVar(&c.paramBytes, "mixed-param-bytes", 900_000, "Mixed: size of that parameter tried first (halved while refused).")
	fs.BoolVar(&c.restart, "mixed-restart", true, "Mixed: restart the manager once the hostile tenant is set up, before the honest one, and report its memory after.")
	fs.IntVar(&c.shortTokens, "mixed-short-tokens", 50, "Mixed: hostile AccessTokens on an endpoint answering expires_in: 1 with large tokens, whose revoke fails (0: none).")
	fs.IntVar(&c.shortBytes, "mixed-short-bytes", 15<<10, "Mixed: size of those tokens and of their refresh token.")
	fs.IntVar(&c.shortCopies, "mixed-short-copies", 32, "Mixed: fields of those answers copied into the Secret.")
	fs.IntVar(&c.shortCopyLen, "mixed-short-copy-bytes", 4000, "Mixed: characters of each copied field.")
	fs.IntVar(&c.metricsConns, "mixed-metrics-conns", 200, "Mixed: connections sending GET /metrics to the manager with random bearer tokens for the window (0: none).")
	fs.BoolVar(&c.metricsAuth, "mixed-metrics-auth", true, "Mixed: run the manager's metrics endpoint as the chart does, on HTTPS with authentication (--metrics-secure=true).")
	fs.IntVar(&c.churnTokens, "mixed-churn-tokens", 20, "Mixed: hostile AccessTokens on a ClusterTokenIssuer, deleted and re-created in a loop for the window (0: none).")
	fs.IntVar(&c.churnHonest, "mixed-churn-honest", 4, "Mixed: honest AccessTokens on the same ClusterTokenIssuer.")
}

// costResults is what the cost attacks measured.
type costResults struct {
	credNamed     int
	credRefused   string // why the larger number was refused
	secretGETs    float64
	secretGETsErr string

	paramBytes     int
	paramRefused   []string
	paramRSSPeak   float64
	restartRSSPeak float64
	restartRSSEnd  float64
	restartReady   time.Duration
	restarted      bool
	restartErr     string

	shortMints, shortRevokes int64
	shortBody                int
	shortWrites, shortBytes  int64
	stateWrites, stateBytes  int64
	largestState             int64
	shortRefused             string

	metricsRequests int64
	metricsStatus   map[int]int64
	metricsErrors   int64
	tokenReviews    float64

	churnLoops, churnErrors int64
	churnMints, sharedMints int64
	churnFirstErr           string
	apiSecretsBefore        float64
	apiReviewsBefore        float64
}

// costRun holds the cost attacks' moving parts.
type costRun struct {
	credEP, paramEP, churnEP *tenantEndpoint
	short                    *shortEndpoint
	credNames                []string
	credStop                 context.CancelFunc
	loops                    sync.WaitGroup
	loopCtx                  context.Context
	loopCancel               context.CancelFunc
	writes                   *writeWatch
	metricsReq, metricsErr   atomic.Int64
	metricsStatusMu          sync.Mutex
	metricsStatus            map[int]int64
	churnLoops, churnErrs    atomic.Int64
	churnFirstErr            atomic.Value
	churnMints, sharedMints  atomic.Int64
	windowOn                 atomic.Bool
	shortMintsAtWindow       int64
}

// --- endpoints ---------------------------------------------------------------

// shortEndpoint answers every token call with expires_in: 1, a large token, a
// large refresh token and many large fields to copy, and fails every revoke.
type shortEndpoint struct {
	URL, RevokeURL string
	body           func() []byte
	mints, revokes atomic.Int64
	srv            *http.Server
}

func startShortEndpoint(tokenBytes, copies, copyLen int) (*shortEndpoint, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &shortEndpoint{URL: fmt.Sprintf("http://%s/token", l.Addr()), RevokeURL: fmt.Sprintf("http://%s/revoke", l.Addr())}
	fields := strings.Builder{}
	for i := range copies {
		fmt.Fprintf(&fields, `,"f%02d":%q`, i, strings.Repeat("c", copyLen))
	}
	pad := func() string {
		var b [16]byte
		_, _ = rand.Read(b[:])
		s := hex.EncodeToString(b[:])
		return s + strings.Repeat("x", max(0, tokenBytes-len(s)))
	}
	e.body = func() []byte {
		return []byte(`{"access_token":"` + pad() + `","refresh_token":"` + pad() + `","token_type":"Bearer","expires_in":1` + fields.String() + `}`)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if _, err := w.Write(e.body()); err == nil {
			e.mints.Add(1)
		}
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, _ *http.Request) {
		e.revokes.Add(1)
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	})
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.srv.Serve(l) }()
	return e, nil
}

func (e *shortEndpoint) Stop() {
	if e != nil && e.srv != nil {
		_ = e.srv.Close()
	}
}

// --- setup, before the honest tenant ---------------------------------------------

func (m *mixedBench) setupCost(ctx context.Context) error {
	c := &m.cost
	var err error
	c.loopCtx, c.loopCancel = context.WithCancel(context.Background())
	c.metricsStatus = map[int]int64{}
	for _, ns := range []string{nsCred, nsParam, nsShort, nsChurn} {
		if err := m.tenantNamespace(ctx, ns); err != nil {
			return err
		}
	}
	c.credEP = &tenantEndpoint{lifetime: time.Hour}
	c.paramEP = &tenantEndpoint{lifetime: time.Hour}
	c.churnEP = &tenantEndpoint{lifetime: m.mo.lifetime, onMint: func(subject string) {
		if !c.windowOn.Load() {
			return
		}
		if strings.HasPrefix(subject, "churn-") {
			c.churnMints.Add(1)
		} else {
			c.sharedMints.Add(1)
		}
	}}
	for _, e := range []*tenantEndpoint{c.credEP, c.paramEP, c.churnEP} {
		if err := startTenantEndpoint(e); err != nil {
			return err
		}
	}
	co := m.mo.cost
	if c.short, err = startShortEndpoint(co.shortBytes, co.shortCopies, co.shortCopyLen); err != nil {
		return err
	}
	m.r.cost.shortBody = len(c.short.body())
	return nil
}

func (m *mixedBench) teardownCost() {
	c := &m.cost
	if c.loopCancel != nil {
		c.loopCancel()
		c.loops.Wait()
	}
	if c.writes != nil {
		c.writes.stop()
	}
	for _, e := range []*tenantEndpoint{c.credEP, c.paramEP, c.churnEP} {
		if e != nil {
			e.Stop()
		}
	}
	c.short.Stop()
}

// managerCostArgs are the manager flags the cost attacks need.
func (m *mixedBench) managerCostArgs() []string {
	if m.mo.cost.metricsConns > 0 && m.mo.cost.metricsAuth {
		return []string{"--metrics-secure=true"}
	}
	return nil
}

// phaseCost sets up the hostile tenant's cost attacks (before the honest
// tenant), then restarts the manager if asked.
func (m *mixedBench) phaseCost(ctx context.Context) error {
	co, r := m.mo.cost, &m.r.cost
	if co.credTokens > 0 {
		if err := m.setupCredStorm(ctx); err != nil {
			return err
		}
	}
	if co.paramTokens > 0 {
		if err := m.setupBigParams(ctx); err != nil {
			return err
		}
	}
	if co.shortTokens > 0 {
		spec := map[string]any{
			"response": map[string]any{"token": "access_token",
				"expiry":       map[string]any{"path": "expires_in", "format": "RelativeSeconds"},
				"refreshToken": map[string]any{"path": "refresh_token"},
				"copy":         shortCopies(co.shortCopies)},
			"revoke": map[string]any{"url": m.cost.short.RevokeURL, "method": "POST",
				"body": map[string]any{"form": []any{map[string]any{"name": "token", "issued": "AccessToken"}}}},
		}
		if err := m.hostile.Create(ctx, tenantIssuer(nsShort, shortIssuer, m.cost.short.URL, spec)); err != nil {
			r.shortRefused = shortErr(err)
			return fmt.Errorf("creating TokenIssuer %s: %w", shortIssuer, err)
		}
		if _, err := m.createAll(ctx, m.hostile, nsShort, "short", shortIssuer, co.shortTokens); err != nil {
			return err
		}
		m.p.printf("  (g) %d AccessTokens on an endpoint answering expires_in: 1 with %d-byte answers, revoke failing", co.shortTokens, r.shortBody)
	}
	if co.churnTokens > 0 {
		u := tenantIssuer("", churnIssuer, m.cost.churnEP.URL, map[string]any{
			"allowedNamespaces": map[string]any{"names": []any{honestNamespace, nsChurn}}})
		u.SetKind("ClusterTokenIssuer")
		if err := m.client.Create(ctx, u); err != nil {
			return fmt.Errorf("creating ClusterTokenIssuer %s: %w", churnIssuer, err)
		}
		m.p.printf("  (i) ClusterTokenIssuer %q, for %s and %s", churnIssuer, honestNamespace, nsChurn)
	}
	if co.restart && (co.paramTokens > 0 || co.credTokens > 0) {
		m.restartManager(ctx)
	}
	return nil
}

func shortCopies(n int) []any {
	out := make([]any, n)
	for i := range n {
		out[i] = map[string]any{"key": fmt.Sprintf("f%02d", i), "path": fmt.Sprintf("f%02d", i)}
	}
	return out
}

// credIssuerSpec names n credential Secrets, and the request's JSON body
// sends each credential. Up to 16 (the most the manager takes) are one
// Secret key each, so that tokens are minted; beyond, as many as the CRD lets
// one issuer name: its at most 16 credentials are signed JWTs whose key,
// certificate, key id, issuer, subject and up to 16 claims each read another
// Secret (21 each, 336 at most).
func credIssuerSpec(url string, names []string) map[string]any {
	ref := func(n string) map[string]any { return map[string]any{"name": n, "key": "v"} }
	fromSecret := func(n string) map[string]any { return map[string]any{"secretKeyRef": ref(n)} }
	var credentials, fields []any
	fields = append(fields, map[string]any{"path": "subject", "parameter": "subject"})
	for i := 0; i < len(names) && len(names) <= 16; i++ {
		name := fmt.Sprintf("key-%02d", i)
		credentials = append(credentials, map[string]any{"name": name, "secretKeyRef": ref(names[i])})
		fields = append(fields, map[string]any{"path": name, "credential": name})
	}
	for i := 0; i < len(names) && len(names) > 16; {
		jwt := map[string]any{"algorithm": "RS256", "privateKey": fromSecret(names[i])}
		i++
		for _, field := range []string{"certificate", "keyID", "issuer", "subject"} {
			if i < len(names) {
				jwt[field] = fromSecret(names[i])
				i++
			}
		}
		var claims []any
		for ; i < len(names) && len(claims) < 16; i++ {
			claims = append(claims, map[string]any{"name": "c" + strconv.Itoa(i), "secretKeyRef": ref(names[i])})
		}
		if len(claims) > 0 {
			jwt["claims"] = claims
		}
		name := fmt.Sprintf("jwt-%02d", len(credentials))
		credentials = append(credentials, map[string]any{"name": name, "signedJWT": jwt})
		fields = append(fields, map[string]any{"path": name, "credential": name})
	}
	return map[string]any{
		"credentials": credentials,
		"request":     map[string]any{"url": url, "method": "POST", "body": map[string]any{"json": fields}},
	}
}

func (m *mixedBench) setupCredStorm(ctx context.Context) error {
	co, r, c := m.mo.cost, &m.r.cost, &m.cost
	for i := range co.credSecrets {
		name := fmt.Sprintf("cred-%03d", i)
		err := m.hostile.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: nsCred},
			StringData: map[string]string{"v": "credential-" + strconv.Itoa(i)}})
		if err != nil {
			return fmt.Errorf("creating Secret %s: %w", name, err)
		}
		c.credNames = append(c.credNames, name)
	}
	tryNamed := []int{co.credSecrets}
	if co.credSecrets > 16 {
		tryNamed = append(tryNamed, 16)
	}
	for _, n := range tryNamed {
		obj := tenantIssuer(nsCred, credIssuer, c.credEP.URL, credIssuerSpec(c.credEP.URL, c.credNames[:n]))
		err := m.hostile.Create(ctx, obj)
		if err != nil {
			if !apierrors.IsInvalid(err) && !apierrors.IsRequestEntityTooLargeError(err) {
				return fmt.Errorf("creating TokenIssuer %s: %w", credIssuer, err)
			}
			r.credRefused = fmt.Sprintf("%d refused at admission: %s", n, shortErr(err))
			m.p.printf("  (e) TokenIssuer naming %d Secrets refused: %s", n, shortErr(err))
			continue
		}
		// Admitted: does the manager take it?
		if reason, msg := m.issuerVerdict(ctx, credIssuer, 20*time.Second); reason == tokensv1alpha1.ReasonInvalidConfig && n != tryNamed[len(tryNamed)-1] {
			r.credRefused = fmt.Sprintf("%d admitted, then refused by the manager (%s: %s)", n, reason, msg)
			m.p.printf("  (e) TokenIssuer naming %d Secrets: %s", n, r.credRefused)
			if err := m.hostile.Delete(ctx, obj); err != nil {
				return err
			}
			if err := waitGone(ctx, m.hostile, obj); err != nil {
				return err
			}
			continue
		}
		r.credNamed = n
		break
	}
	if r.credNamed == 0 {
		return fmt.Errorf("no TokenIssuer %s was admitted", credIssuer)
	}
	if _, err := m.createAll(ctx, m.hostile, nsCred, "cred", credIssuer, co.credTokens); err != nil {
		return err
	}
	m.p.printf("  (e) %d AccessTokens on a TokenIssuer naming %d credential Secrets; one annotated every %s from the window", co.credTokens, r.credNamed, co.credEvery)
	return nil
}

// issuerVerdict waits for the TokenIssuer's Ready condition and returns its reason.
func (m *mixedBench) issuerVerdict(ctx context.Context, name string, timeout time.Duration) (string, string) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ti := &tokensv1alpha1.TokenIssuer{}
		if err := m.client.Get(ctx, types.NamespacedName{Namespace: nsCred, Name: name}, ti); err == nil {
			if c := meta.FindStatusCondition(ti.Status.Conditions, tokensv1alpha1.ConditionReady); c != nil && (c.ObservedGeneration == 0 || c.ObservedGeneration == ti.Generation) {
				msg := c.Message
				if len(msg) > 120 {
					msg = msg[:117] + "..."
				}
				return c.Reason, strings.ReplaceAll(msg, "|", "/")
			}
		}
		select {
		case <-ctx.Done():
			return "", ""
		case <-time.After(200 * time.Millisecond):
		}
	}
	return "", "no verdict within " + timeout.String()
}

func waitGone(ctx context.Context, c client.Client, obj client.Object) error {
	for range 300 {
		err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object))
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s still there after 30 s", obj.GetName())
}

func (m *mixedBench) setupBigParams(ctx context.Context) error {
	co, r := m.mo.cost, &m.r.cost
	spec := map[string]any{"parameters": []any{
		map[string]any{"name": "subject", "type": "String", "required": true},
		map[string]any{"name": "blob", "type": "String"},
	}}
	if err := m.hostile.Create(ctx, tenantIssuer(nsParam, bigParamIssue, m.cost.paramEP.URL, spec)); err != nil {
		return fmt.Errorf("creating TokenIssuer %s: %w", bigParamIssue, err)
	}
	// The largest size admitted, halving from the one asked for.
	size := co.paramBytes
	for size >= 1024 {
		obj := tenantToken(nsParam, "param-00000", bigParamIssue, map[string]any{
			"parameters": map[string]any{"subject": "param-00000", "blob": strings.Repeat("p", size)}})
		err := m.hostile.Create(ctx, obj)
		if err == nil {
			break
		}
		if !apierrors.IsInvalid(err) && !apierrors.IsRequestEntityTooLargeError(err) && !apierrors.IsBadRequest(err) {
			return fmt.Errorf("creating AccessToken with a %d-character parameter: %w", size, err)
		}
		r.paramRefused = append(r.paramRefused, fmt.Sprintf("%d (%s)", size, shortErr(err)))
		m.p.printf("  (f) AccessToken with a %d-character parameter refused: %s", size, shortErr(err))
		size /= 2
	}
	if size < 1024 {
		return fmt.Errorf("no AccessToken with a parameter of 1,024 characters or more was admitted")
	}
	r.paramBytes = size
	blob := strings.Repeat("p", size)
	stop := m.sampleRSS(&r.paramRSSPeak)
	names := make(chan string)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range max(1, m.opts.creators) {
		wg.Go(func() {
			for n := range names {
				if err := m.hostile.Create(ctx, tenantToken(nsParam, n, bigParamIssue, map[string]any{
					"parameters": map[string]any{"subject": n, "blob": blob}})); err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("creating AccessToken %s: %w", n, err))
				}
			}
		})
	}
	for i := 1; i < co.paramTokens; i++ {
		names <- fmt.Sprintf("param-%05d", i)
	}
	close(names)
	wg.Wait()
	time.Sleep(5 * time.Second) // let the manager take them in
	stop()
	if err, ok := firstErr.Load().(error); ok {
		return err
	}
	m.p.printf("  (f) %d AccessTokens with a %d-character parameter; manager RSS peak while created %s", co.paramTokens, size, mib(r.paramRSSPeak))
	return nil
}

// sampleRSS records the manager's peak RSS every 200 ms until the returned
// function is called.
func (m *mixedBench) sampleRSS(peak *float64) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if mem, err := m.mgr.memory(); err == nil && mem.rss > *peak {
				*peak = mem.rss
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// restartManager stops the manager (SIGTERM) and starts it again with the
// same flags, then records its RSS for 20 s after it is ready.
func (m *mixedBench) restartManager(ctx context.Context) {
	r := &m.r.cost
	m.p.printf("  restarting the manager with the hostile tenant in place")
	_ = m.mgr.stop(30 * time.Second)
	start := time.Now()
	mgr, err := startManager(m.bin, m.kubeconfig, m.mgr.log.Name(), m.managerArgs(), m.opts.managerEnv)
	if err != nil {
		r.restartErr = err.Error()
		return
	}
	m.mgr = mgr
	r.restarted = true
	stop := m.sampleRSS(&r.restartRSSPeak)
	if err := mgr.waitReady(ctx, 60*time.Second); err != nil {
		r.restartErr = err.Error()
	}
	r.restartReady = time.Since(start)
	select {
	case <-ctx.Done():
	case <-time.After(20 * time.Second):
	}
	stop()
	if mem, err := mgr.memory(); err == nil {
		r.restartRSSEnd = mem.rss
	}
	m.p.printf("  manager restarted: ready after %s; RSS peak in its first 20 s %s, then %s", r.restartReady.Round(time.Millisecond), mib(r.restartRSSPeak), mib(r.restartRSSEnd))
}

// --- the window ----------------------------------------------------------------

// startCostWindow starts the loops that run through the window.
func (m *mixedBench) startCostWindow(ctx context.Context) error {
	co, c, r := m.mo.cost, &m.cost, &m.r.cost
	if co.churnTokens > 0 {
		for i := range co.churnHonest {
			n := fmt.Sprintf("shared-%05d", i)
			if err := m.client.Create(ctx, churnToken(honestNamespace, n)); err != nil {
				return fmt.Errorf("creating AccessToken %s: %w", n, err)
			}
		}
	}
	var err error
	if c.writes, err = startWriteWatch(ctx, m.cfg); err != nil {
		return err
	}
	if s, err := m.apiserverMetrics(ctx); err == nil {
		r.apiSecretsBefore = s.sum("apiserver_request_total", "resource", "secrets", "verb", "GET")
		r.apiReviewsBefore = s.sum("apiserver_request_total", "resource", "tokenreviews")
	} else {
		r.secretGETsErr = shortErr(err)
	}
	c.shortMintsAtWindow = c.short.mints.Load()
	c.windowOn.Store(true)
	lctx := c.loopCtx
	if co.credTokens > 0 && len(c.credNames) > 0 {
		named := c.credNames[:r.credNamed]
		c.loops.Go(func() {
			t := time.NewTicker(co.credEvery)
			defer t.Stop()
			for i := 0; ; i++ {
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: named[i%len(named)], Namespace: nsCred}}
				patch := fmt.Appendf(nil, `{"metadata":{"annotations":{"bench/touched":%q}}}`, strconv.Itoa(i))
				_ = m.hostile.Patch(lctx, s, client.RawPatch(types.MergePatchType, patch))
				select {
				case <-lctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	if co.metricsConns > 0 {
		m.startMetricsFlood(lctx)
	}
	if co.churnTokens > 0 {
		for i := range co.churnTokens {
			name := fmt.Sprintf("churn-%05d", i)
			c.loops.Go(func() { m.churnLoop(lctx, name) })
		}
	}
	return nil
}

func churnToken(ns, name string) *unstructured.Unstructured {
	return tenantToken(ns, name, churnIssuer, map[string]any{"issuerRef": map[string]any{"kind": "ClusterTokenIssuer", "name": churnIssuer}})
}

// churnLoop creates the AccessToken, waits for its token to be issued or 2 s,
// deletes it, waits for it to be gone, and again, until ctx ends.
func (m *mixedBench) churnLoop(ctx context.Context, name string) {
	c := &m.cost
	fail := func(err error) {
		c.churnErrs.Add(1)
		c.churnFirstErr.CompareAndSwap(nil, shortErr(err))
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	for ctx.Err() == nil {
		obj := churnToken(nsChurn, name)
		if err := m.hostile.Create(ctx, obj); err != nil {
			if ctx.Err() == nil {
				fail(err)
			}
			continue
		}
		// Until the manager has issued its token (or 2 s), read on the
		// AccessToken, not the Secret: attack (e) counts Secret GETs.
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			at := &tokensv1alpha1.AccessToken{}
			if m.hostile.Get(ctx, client.ObjectKeyFromObject(obj), at) == nil && at.Status.ExpiresAt != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := m.hostile.Delete(context.Background(), obj); err != nil && !apierrors.IsNotFound(err) {
			fail(err)
			continue
		}
		if err := waitGone(context.Background(), m.hostile, obj); err != nil {
			fail(err)
			continue
		}
		c.churnLoops.Add(1)
	}
}

// startMetricsFlood opens C connections that send GET /metrics with a new
// random bearer token each time until ctx ends.
func (m *mixedBench) startMetricsFlood(ctx context.Context) {
	c := &m.cost
	url := m.mgr.metricsURL
	if m.mo.cost.metricsAuth {
		url = strings.Replace(url, "http://", "https://", 1)
	}
	for range m.mo.cost.metricsConns {
		c.loops.Go(func() {
			hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
				TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the manager's self-signed certificate, on loopback
				MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}}
			defer hc.CloseIdleConnections()
			for ctx.Err() == nil {
				var b [24]byte
				_, _ = rand.Read(b[:])
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				req.Header.Set("Authorization", "Bearer "+hex.EncodeToString(b[:]))
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						c.metricsErr.Add(1)
						time.Sleep(100 * time.Millisecond)
					}
					continue
				}
				_ = resp.Body.Close()
				c.metricsReq.Add(1)
				c.metricsStatusMu.Lock()
				c.metricsStatus[resp.StatusCode]++
				c.metricsStatusMu.Unlock()
			}
		})
	}
}

// finishCost stops the window's loops and gathers the figures.
func (m *mixedBench) finishCost(ctx context.Context) {
	c, r := &m.cost, &m.r.cost
	if c.loopCancel == nil {
		return
	}
	c.windowOn.Store(false)
	c.loopCancel()
	c.loops.Wait()
	r.metricsRequests, r.metricsErrors = c.metricsReq.Load(), c.metricsErr.Load()
	c.metricsStatusMu.Lock()
	r.metricsStatus = c.metricsStatus
	c.metricsStatusMu.Unlock()
	r.churnLoops, r.churnErrors = c.churnLoops.Load(), c.churnErrs.Load()
	if e, ok := c.churnFirstErr.Load().(string); ok {
		r.churnFirstErr = e
	}
	r.churnMints, r.sharedMints = c.churnMints.Load(), c.sharedMints.Load()
	if c.short != nil {
		r.shortMints, r.shortRevokes = c.short.mints.Load()-c.shortMintsAtWindow, c.short.revokes.Load()
	}
	if c.writes != nil {
		w := c.writes
		w.mu.Lock()
		r.shortWrites, r.shortBytes = w.shortWrites, w.shortBytes
		r.stateWrites, r.stateBytes, r.largestState = w.stateWrites, w.stateBytes, w.largestState
		w.mu.Unlock()
		w.stop()
		c.writes = nil
	}
	if r.secretGETsErr == "" {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if s, err := m.apiserverMetrics(ctx); err == nil {
			r.secretGETs = s.sum("apiserver_request_total", "resource", "secrets", "verb", "GET") - r.apiSecretsBefore
			r.tokenReviews = s.sum("apiserver_request_total", "resource", "tokenreviews") - r.apiReviewsBefore
		} else {
			r.secretGETsErr = shortErr(err)
		}
	}
}

// apiserverMetrics reads kube-apiserver's /metrics as the administrator.
func (m *mixedBench) apiserverMetrics(ctx context.Context) (scrape, error) {
	hc, err := rest.HTTPClientFor(m.cfg)
	if err != nil {
		return nil, err
	}
	return fetchMetrics(ctx, hc, strings.TrimSuffix(m.cfg.Host, "/")+"/metrics")
}

// --- Secrets written ---------------------------------------------------------------

// writeWatch sums the data of every new version of a Secret in the namespace
// of the short-lived flood and in the operator namespace (the state Secrets,
// of every tenant) once it is on.
type writeWatch struct {
	stopCh                  chan struct{}
	once                    sync.Once
	mu                      sync.Mutex
	on                      bool
	shortWrites, shortBytes int64
	stateWrites, stateBytes int64
	largestState            int64
}

func secretBytes(s *corev1.Secret) int64 {
	var n int64
	for k, v := range s.Data {
		n += int64(len(k) + len(v))
	}
	return n
}

func startWriteWatch(ctx context.Context, cfg *rest.Config) (*writeWatch, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	w := &writeWatch{stopCh: make(chan struct{})}
	var synced []toolscache.InformerSynced
	for _, ns := range []string{nsShort, operatorNamespace} {
		f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
		inf := f.Core().V1().Secrets().Informer()
		// Keep only what is needed to tell a new version: sizes are taken in the handler.
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { w.observe(ns, nil, o) },
			UpdateFunc: func(old, o any) { w.observe(ns, old, o) },
		}); err != nil {
			return nil, err
		}
		synced = append(synced, inf.HasSynced)
		f.Start(w.stopCh)
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil, fmt.Errorf("the Secret watch did not sync")
	}
	w.mu.Lock()
	w.on = true
	w.mu.Unlock()
	return w, nil
}

func (w *writeWatch) observe(ns string, old, o any) {
	s, ok := o.(*corev1.Secret)
	if !ok {
		return
	}
	if p, ok := old.(*corev1.Secret); ok && p.ResourceVersion == s.ResourceVersion {
		return
	}
	n := secretBytes(s)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.on {
		return
	}
	if ns == operatorNamespace {
		w.stateWrites++
		w.stateBytes += n
		w.largestState = max(w.largestState, n)
		return
	}
	w.shortWrites++
	w.shortBytes += n
}

func (w *writeWatch) stop() { w.once.Do(func() { close(w.stopCh) }) }

// --- report ------------------------------------------------------------------------

func perMinute(n int64, d time.Duration) string {
	if d <= 0 {
		return "n/a"
	}
	return mib(float64(n)*60/d.Seconds()) + "/min"
}

func (r *mixedResults) costChecks(add func(item, measure, target, result, met string)) {
	co, c := r.mo.cost, r.cost
	w := r.window()
	if w <= 0 {
		return
	}
	if co.credTokens > 0 {
		named := fmt.Sprintf("%d", c.credNamed)
		if c.credRefused != "" {
			named += " (" + c.credRefused + ")"
		}
		res := fmt.Sprintf("%.0f (%.1f/s)", c.secretGETs, c.secretGETs/w.Seconds())
		if c.secretGETsErr != "" {
			res = "not read: " + c.secretGETsErr
		}
		add("hostile e", fmt.Sprintf("Credential-annotate storm: one TokenIssuer naming %s credential Secrets, %d AccessTokens on it, one Secret annotated every %s: "+
			"GETs of Secrets the apiserver served in the window (every client; the benchmark reads Secrets by watch only)",
			named, co.credTokens, co.credEvery), "", res, "")
	}
	if co.paramTokens > 0 {
		size := fmt.Sprintf("%d", c.paramBytes)
		if len(c.paramRefused) > 0 {
			size += " (refused: " + strings.Join(c.paramRefused, "; ") + ")"
		}
		add("hostile f", fmt.Sprintf("Big parameters: %d AccessTokens with a parameter of %s characters: manager RSS peak while they were created", co.paramTokens, size),
			"≤ chart limit", mib(c.paramRSSPeak), mark(r.chartLimitBytes > 0 && c.paramRSSPeak <= r.chartLimitBytes))
	}
	if c.restarted || c.restartErr != "" {
		res := fmt.Sprintf("ready after %.1f s; peak %s, %s after 20 s", c.restartReady.Seconds(), mib(c.restartRSSPeak), mib(c.restartRSSEnd))
		if c.restartErr != "" {
			res = "**" + c.restartErr + "**"
		}
		add("hostile f", "Manager restarted (SIGTERM, same flags) with the hostile tenant in place, before the honest tenant: RSS in its first 20 s", "≤ chart limit", res,
			mark(c.restartErr == "" && r.chartLimitBytes > 0 && c.restartRSSPeak <= r.chartLimitBytes))
	}
	if co.shortTokens > 0 {
		add("hostile g", fmt.Sprintf("Short-lived flood: %d AccessTokens on an endpoint answering expires_in: 1 (%d-byte answers: %d-byte token and refresh token, %d copied fields of %d characters), revoke failing: mints in the window (revokes tried)",
			co.shortTokens, c.shortBody, co.shortBytes, co.shortCopies, co.shortCopyLen), "",
			fmt.Sprintf("%d (%.2f/s); %d", c.shortMints, float64(c.shortMints)/w.Seconds(), c.shortRevokes), "")
		add("hostile g", fmt.Sprintf("Secret data written in the window (sum of each new version's data, seen by a watch): namespace %s; state Secrets in the operator namespace, of every tenant (largest)", nsShort), "",
			fmt.Sprintf("%s in %d writes (%s); %s in %d writes (%s; largest %s)",
				mib(float64(c.shortBytes)), c.shortWrites, perMinute(c.shortBytes, w),
				mib(float64(c.stateBytes)), c.stateWrites, perMinute(c.stateBytes, w), kib(c.largestState)), "")
	}
	if co.metricsConns > 0 {
		var st []string
		for _, code := range slices.Sorted(maps.Keys(c.metricsStatus)) {
			st = append(st, fmt.Sprintf("%d ×%d", code, c.metricsStatus[code]))
		}
		mode := "plain HTTP, no authentication"
		if co.metricsAuth {
			mode = "HTTPS with authentication, as the chart runs it"
		}
		add("hostile h", fmt.Sprintf("Metrics flood: %d connections sending GET /metrics with random bearer tokens (%s): requests (rate; answers; errors); TokenReviews the apiserver served in the window", co.metricsConns, mode), "",
			fmt.Sprintf("%d (%.0f/s; %s; %d errors); %.0f TokenReviews (%.2f/s)", c.metricsRequests, float64(c.metricsRequests)/w.Seconds(), strings.Join(st, ", "), c.metricsErrors,
				c.tokenReviews, c.tokenReviews/w.Seconds()), "")
	}
	if co.churnTokens > 0 {
		res := fmt.Sprintf("%d (%.2f/s) vs %d; %d delete-and-recreate rounds", c.churnMints, float64(c.churnMints)/w.Seconds(), c.sharedMints, c.churnLoops)
		if c.churnErrors > 0 {
			res += fmt.Sprintf(" (%d errors, first: %s)", c.churnErrors, c.churnFirstErr)
		}
		add("hostile i", fmt.Sprintf("Delete-and-recreate: %d hostile AccessTokens on a ClusterTokenIssuer, each deleted and re-created in a loop: mints for them in the window vs for the %d honest ones on the same issuer", co.churnTokens, co.churnHonest), "", res, "")
	}
}

func kib(n int64) string { return fmt.Sprintf("%.0f KiB", float64(n)/1024) }

// costSummary describes the cost attacks run, for the report's preamble.
func (r *mixedResults) costSummary() string {
	co := r.mo.cost
	var parts []string
	if co.credTokens > 0 {
		parts = append(parts, fmt.Sprintf("(e) in `%s`, a TokenIssuer naming %d credential Secrets (%d tried), %d AccessTokens on it, one Secret annotated every %s through the window",
			nsCred, r.cost.credNamed, co.credSecrets, co.credTokens, co.credEvery))
	}
	if co.paramTokens > 0 {
		parts = append(parts, fmt.Sprintf("(f) in `%s`, %d AccessTokens with a %d-character parameter (%d tried)", nsParam, co.paramTokens, r.cost.paramBytes, co.paramBytes))
	}
	if r.cost.restarted {
		parts = append(parts, "then a restart of the manager")
	}
	if co.shortTokens > 0 {
		parts = append(parts, fmt.Sprintf("(g) in `%s`, %d AccessTokens on an endpoint answering expires_in: 1 with %d-byte answers, revoke failing", nsShort, co.shortTokens, r.cost.shortBody))
	}
	if co.metricsConns > 0 {
		parts = append(parts, fmt.Sprintf("(h) %d connections sending GET /metrics with random bearer tokens through the window", co.metricsConns))
	}
	if co.churnTokens > 0 {
		parts = append(parts, fmt.Sprintf("(i) in `%s`, %d AccessTokens on a ClusterTokenIssuer shared with %d honest ones, deleted and re-created in a loop through the window", nsChurn, co.churnTokens, co.churnHonest))
	}
	if len(parts) == 0 {
		return "\n"
	}
	return "- Cost attacks of the hostile tenant: " + strings.Join(parts, "; ") + ".\n\n"
}
