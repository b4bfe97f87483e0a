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

// The rotation mode measures a credential rotation behind a ClusterTokenIssuer
// with N AccessTokens: the credential Secret changes (the endpoint accepts the
// old and the new credential, as providers let them overlap), every token is
// re-issued, and the run reports the most calls the endpoint saw in any second
// against the issuer's rateLimit, the time until every token carries the new
// credential, against the issuer's reissueWindow, and the tokens that expired
// meanwhile (there must be none).
//
//	go run ./test/bench -rotation 1000 [-rotation-window 5m -rotation-rate 10 -rotation-lifetime 10m]

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/controlplane"
)

// rotationOptions configure the rotation mode.
type rotationOptions struct {
	n        int
	window   time.Duration
	rate     int
	lifetime time.Duration
	wait     time.Duration
}

func registerRotationFlags(fs *flag.FlagSet) *rotationOptions {
	o := &rotationOptions{}
	fs.IntVar(&o.n, "rotation", 0, "Measure a credential rotation behind a ClusterTokenIssuer with this many AccessTokens instead (writes bin/bench-rotation-<N>.md).")
	fs.DurationVar(&o.window, "rotation-window", 5*time.Minute, "The issuer's spec.reissueWindow (0s: every token re-issued at once, paced by the rate only).")
	fs.IntVar(&o.rate, "rotation-rate", 10, "The issuer's spec.rateLimit, in calls a second (burst the same, at most 10).")
	fs.DurationVar(&o.lifetime, "rotation-lifetime", 10*time.Minute, "Lifetime of the tokens the endpoint issues: with the default window, some tokens are due for renewal before their point in it.")
	fs.DurationVar(&o.wait, "rotation-after", 30*time.Second, "How long after every token is Ready the credential changes.")
	return o
}

// rotationResults is what the rotation run measured.
type rotationResults struct {
	command, revision string
	machine           machine
	o                 rotationOptions
	firstIssue        time.Duration
	pending           int           // AccessTokens showing status.reissueAfter after the change
	pendingMin        time.Duration // their earliest reissueAfter, from the change
	pendingMax        time.Duration // their latest
	allRenewed        time.Duration // change to every token carrying the new inputs
	calls             int           // calls to the endpoint from the change to then
	maxPerSecond      int           // most calls in any one second (sliding)
	perMinute         []int         // calls in each minute after the change
	expired           int           // AccessTokens seen with an expired token
	notReady          int           // AccessTokens seen not Ready
	refused           int64         // calls the endpoint refused (a wrong credential)
}

func (r *rotationResults) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Credential rotation: %d AccessTokens behind one ClusterTokenIssuer\n\n", r.o.n)
	fmt.Fprintf(&b, "`%s` at %s on %s.\n\n", r.command, r.revision, r.machine.summary())
	fmt.Fprintf(&b, "Issuer: `rateLimit: {calls: %d, period: 1s}`, `reissueWindow: %s`; tokens live %s; the manager's own defaults.\n\n",
		r.o.rate, r.o.window, r.o.lifetime)
	fmt.Fprintf(&b, "| measure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| first issue of all %d | %.1f s |\n", r.o.n, r.firstIssue.Seconds())
	fmt.Fprintf(&b, "| AccessTokens showing a pending re-issue (`status.reissueAfter`) | %d, due %.0f s to %.0f s after the change |\n", r.pending, r.pendingMin.Seconds(), r.pendingMax.Seconds())
	fmt.Fprintf(&b, "| time until every token is re-issued | %.1f s (window %s) |\n", r.allRenewed.Seconds(), r.o.window)
	fmt.Fprintf(&b, "| calls to the endpoint meanwhile | %d |\n", r.calls)
	fmt.Fprintf(&b, "| most calls in any one second | %d (the issuer's rate: %d) |\n", r.maxPerSecond, r.o.rate)
	fmt.Fprintf(&b, "| calls per minute after the change | %s |\n", joinInts(r.perMinute))
	fmt.Fprintf(&b, "| AccessTokens seen with an expired token | %d |\n", r.expired)
	fmt.Fprintf(&b, "| AccessTokens seen not Ready | %d |\n", r.notReady)
	fmt.Fprintf(&b, "| calls refused by the endpoint | %d |\n", r.refused)
	return b.String()
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

// runRotationMode runs the rotation mode and writes its table.
func runRotationMode(opts options, o rotationOptions) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := mainRotation(ctx, opts, o, os.Stdout)
	if res == nil {
		return finishMode("", "", err, "")
	}
	failed := ""
	if err == nil && res.expired > 0 {
		failed = "tokens expired during the rotation"
	}
	return finishMode(reportPath(opts, fmt.Sprintf("bench-rotation-%d.md", o.n)), res.markdown(), err, failed)
}

// mainRotation runs the rotation mode.
func mainRotation(ctx context.Context, opts options, o rotationOptions, w io.Writer) (*rotationResults, error) {
	p := &progress{w: w, start: time.Now()}
	r := &rotationResults{command: opts.command, machine: machineInfo(), o: o, revision: revision(controlplane.RepoRoot())}
	dir, err := os.MkdirTemp("", "tokenmint-bench-rotation-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	bin, cp, kubeconfig, err := startBenchControlPlane(p, opts, dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = cp.Stop() }()
	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS, cfg.Burst = -1, 0
	c, err := client.New(cfg, client.Options{Scheme: newScheme()})
	if err != nil {
		return nil, err
	}
	oldCredential, newCredential := randomCredential(), randomCredential()
	ep, err := startEndpoint(oldCredential, o.lifetime)
	if err != nil {
		return nil, err
	}
	defer ep.Stop()
	b := &bench{opts: opts, client: c, endpoint: ep, credential: oldCredential, p: p, requests: map[string]float64{}}
	if err := b.createIssuer(ctx); err != nil {
		return nil, err
	}
	issuer := &tokensv1alpha1.ClusterTokenIssuer{}
	if err := c.Get(ctx, client.ObjectKey{Name: issuerName}, issuer); err != nil {
		return nil, err
	}
	issuer.Spec.RateLimit = &tokensv1alpha1.RateLimit{Calls: int32(o.rate), Period: &tokensv1alpha1.Duration{Duration: time.Second},
		Burst: ptr.To(int32(min(o.rate, 10)))}
	if o.window > 0 {
		issuer.Spec.ReissueWindow = &tokensv1alpha1.Duration{Duration: o.window}
	}
	if err := c.Update(ctx, issuer); err != nil {
		return nil, err
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tokensNamespace}}); err != nil {
		return nil, err
	}
	mgr, err := startManager(bin, kubeconfig, filepath.Join(dir, "manager.log"),
		[]string{"--operator-namespace", operatorNamespace}, opts.managerEnv)
	if err != nil {
		return nil, err
	}
	defer func() { _ = mgr.stop(30 * time.Second) }()
	if err := mgr.waitReady(ctx, 60*time.Second); err != nil {
		return nil, err
	}

	p.printf("creating %d AccessTokens", o.n)
	started := time.Now()
	b.opts.creators = max(1, b.opts.creators)
	if err := b.createTokens(ctx, tokensNamespace, o.n, nil); err != nil {
		return nil, err
	}
	for {
		items, err := listTokens(ctx, c)
		if err != nil {
			return nil, err
		}
		ready := 0
		for _, at := range items {
			if meta.IsStatusConditionTrue(at.Status.Conditions, tokensv1alpha1.ConditionReady) {
				ready++
			}
		}
		if ready == o.n {
			break
		}
		if time.Since(started) > opts.readyTimeout {
			return nil, fmt.Errorf("%d of %d AccessTokens Ready after %s", ready, o.n, opts.readyTimeout)
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return nil, err
		}
	}
	r.firstIssue = time.Since(started)
	p.printf("all %d Ready in %.1f s; the credential changes in %s", o.n, r.firstIssue.Seconds(), o.wait)
	if err := sleepCtx(ctx, o.wait); err != nil {
		return nil, err
	}
	items, err := listTokens(ctx, c)
	if err != nil {
		return nil, err
	}
	before := map[string]string{}
	for _, at := range items {
		before[at.Name] = at.Status.InputsHash
	}

	p.printf("rotating the credential (the endpoint accepts the old and the new one)")
	ep.accept(newCredential)
	refused := ep.refused.Load()
	cred := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: credentialsNamespace, Name: credentialSecret}, cred); err != nil {
		return nil, err
	}
	cred.Data = map[string][]byte{"token": []byte(newCredential)}
	ep.recordCalls()
	rotated := time.Now()
	if err := c.Update(ctx, cred); err != nil {
		return nil, err
	}
	expired, notReady := map[string]bool{}, map[string]bool{}
	pendingSeen := map[string]time.Time{}
	deadline := rotated.Add(o.window + o.lifetime + 5*time.Minute)
	for {
		items, err := listTokens(ctx, c)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		renewed := 0
		for _, at := range items {
			st := at.Status
			if st.ExpiresAt != nil && !now.Before(st.ExpiresAt.Time) {
				expired[at.Name] = true
			}
			if !meta.IsStatusConditionTrue(st.Conditions, tokensv1alpha1.ConditionReady) {
				notReady[at.Name] = true
			}
			if st.ReissueAfter != nil {
				if _, seen := pendingSeen[at.Name]; !seen {
					pendingSeen[at.Name] = st.ReissueAfter.Time
				}
			}
			if st.InputsHash != before[at.Name] {
				renewed++
			}
		}
		if renewed == o.n {
			r.allRenewed = now.Sub(rotated)
			break
		}
		if now.After(deadline) {
			return nil, fmt.Errorf("%d of %d tokens re-issued %s after the change", renewed, o.n, now.Sub(rotated).Round(time.Second))
		}
		if n := int(now.Sub(rotated) / (30 * time.Second)); renewed > 0 && now.Sub(rotated)%(30*time.Second) < time.Second {
			p.printf("%d s after the change: %d of %d re-issued", n*30, renewed, o.n)
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return nil, err
		}
	}
	stamps := ep.callTimes()
	r.calls = len(stamps)
	r.maxPerSecond = maxInAnySecond(stamps)
	r.perMinute = callsPerMinute(stamps, rotated)
	r.expired, r.notReady = len(expired), len(notReady)
	r.refused = ep.refused.Load() - refused
	r.pending = len(pendingSeen)
	for _, t := range pendingSeen {
		d := t.Sub(rotated)
		if r.pendingMin == 0 || d < r.pendingMin {
			r.pendingMin = d
		}
		r.pendingMax = max(r.pendingMax, d)
	}
	p.printf("all %d re-issued in %.1f s: %d calls, at most %d in a second, %d expired", o.n, r.allRenewed.Seconds(), r.calls, r.maxPerSecond, r.expired)
	return r, nil
}

func randomCredential() string {
	var c [16]byte
	_, _ = rand.Read(c[:])
	return hex.EncodeToString(c[:])
}

func listTokens(ctx context.Context, c client.Client) ([]tokensv1alpha1.AccessToken, error) {
	l := &tokensv1alpha1.AccessTokenList{}
	if err := c.List(ctx, l, client.InNamespace(tokensNamespace)); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// maxInAnySecond is the most of stamps that fall in any one second.
func maxInAnySecond(stamps []time.Time) int {
	s := slices.Clone(stamps)
	slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })
	most, j := 0, 0
	for i := range s {
		for s[i].Sub(s[j]) >= time.Second {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}

// callsPerMinute counts stamps in each minute from start.
func callsPerMinute(stamps []time.Time, start time.Time) []int {
	var out []int
	for _, t := range stamps {
		m := int(t.Sub(start) / time.Minute)
		if m < 0 {
			continue
		}
		for len(out) <= m {
			out = append(out, 0)
		}
		out[m]++
	}
	return out
}
