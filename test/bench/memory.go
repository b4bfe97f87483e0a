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

// The memory-attack mode measures what a tenant's writes cost the manager's
// memory: AccessTokens carrying the largest parameters admission lets through,
// and Secrets carrying tokenmint's label and a forged controller reference
// naming those AccessTokens, with the largest data the apiserver stores. It
// reports the manager's resident memory (VmRSS, and the peak VmHWM) before,
// while and after they are created, and again after a restart, when the
// manager lists them all at once. The chart's memory limit is 256 MiB.
//
//	go run ./test/bench -memory-attack [-memory-attack-n 200 -memory-attack-size 900000]

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/controlplane"
)

// memoryAttackOptions are the memory-attack mode's flags.
type memoryAttackOptions struct {
	enabled bool
	n       int // AccessTokens, and as many forged Secrets
	size    int // characters of each AccessToken's parameter, bytes of each Secret's data
	settle  time.Duration
}

func registerMemoryAttackFlags(fs *flag.FlagSet) *memoryAttackOptions {
	o := &memoryAttackOptions{}
	fs.BoolVar(&o.enabled, "memory-attack", false, "Measure the manager's memory under a tenant's largest writes instead (writes bin/bench-memory-attack.md).")
	fs.IntVar(&o.n, "memory-attack-n", 200, "AccessTokens with large parameters, and as many Secrets with a forged owner reference.")
	fs.IntVar(&o.size, "memory-attack-size", 900_000, "Characters of each AccessToken's parameter, and bytes of each forged Secret's data.")
	fs.DurationVar(&o.settle, "memory-attack-settle", 30*time.Second, "How long the manager settles before its memory is read.")
	return o
}

const attackNamespace = "attacker"

// memoryResults is what the memory-attack run measured, in bytes.
type memoryResults struct {
	command, revision, machine string
	o                          memoryAttackOptions
	admitted, refused          int
	idle                       memory
	created                    memory // after the AccessTokens and Secrets, settled
	restarted                  memory // after a restart, settled
	honestReady                bool
	restarts                   int
	honestAfter                string
}

func mibOf(b float64) string { return fmt.Sprintf("%.0f MiB", b/(1<<20)) }

func (r *memoryResults) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Manager memory under a tenant's largest writes\n\n")
	fmt.Fprintf(&b, "`%s` at %s on %s.\n\n", r.command, r.revision, r.machine)
	fmt.Fprintf(&b, "Namespace %q: %d AccessTokens each with one parameter of %d characters (%d admitted, %d refused), "+
		"and %d Secrets labelled %s=%s with a forged controller reference to one of them and %d bytes of data. "+
		"The chart's memory limit is 256 MiB.\n\n",
		attackNamespace, r.o.n, r.o.size, r.admitted, r.refused, r.o.n, tokensv1alpha1.LabelManagedBy, tokensv1alpha1.ManagedByValue, r.o.size)
	fmt.Fprintf(&b, "| step | VmRSS | peak (VmHWM) |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| started, idle | %s | %s |\n", mibOf(r.idle.rss), mibOf(r.idle.hwm))
	fmt.Fprintf(&b, "| attack created, settled %s | %s | %s |\n", r.o.settle, mibOf(r.created.rss), mibOf(r.created.hwm))
	fmt.Fprintf(&b, "| restarted, settled %s | %s | %s |\n", r.o.settle, mibOf(r.restarted.rss), mibOf(r.restarted.hwm))
	fmt.Fprintf(&b, "\nHonest AccessToken in another namespace Ready after the restart: %v (%s). Manager exits: %d.\n",
		r.honestReady, r.honestAfter, r.restarts)
	return b.String()
}

func runMemoryAttackMode(opts options, o memoryAttackOptions) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := mainMemoryAttack(ctx, opts, o, os.Stdout)
	if res == nil {
		return finishMode("", "", err, "")
	}
	return finishMode(reportPath(opts, "bench-memory-attack.md"), res.markdown(), err, "")
}

func mainMemoryAttack(ctx context.Context, opts options, o memoryAttackOptions, w io.Writer) (*memoryResults, error) {
	p := &progress{w: w, start: time.Now()}
	r := &memoryResults{command: opts.command, machine: machineInfo().summary(), o: o, revision: revision(controlplane.RepoRoot())}
	dir, err := os.MkdirTemp("", "tokenmint-bench-memory-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	logDir := dir
	if opts.logDir != "" {
		logDir = opts.logDir
	}
	bin, cp, kubeconfig, err := startBenchControlPlane(p, opts, dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = cp.Stop() }()
	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS, cfg.Burst = -1, 0
	cfg.Timeout = 2 * time.Minute
	c, err := client.New(cfg, client.Options{Scheme: newScheme()})
	if err != nil {
		return nil, err
	}
	ep, err := startEndpoint("bench-credential", opts.lifetime)
	if err != nil {
		return nil, err
	}
	defer ep.Stop()
	b := &bench{opts: opts, client: c, endpoint: ep, credential: "bench-credential", p: p}
	if err := b.createIssuer(ctx); err != nil {
		return nil, err
	}
	for _, ns := range []string{attackNamespace, "honest"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return nil, err
		}
	}

	args := append([]string{"--operator-namespace", operatorNamespace}, opts.managerArgs...)
	start := func() (*manager, error) {
		mgr, err := startManager(bin, kubeconfig, filepath.Join(logDir, "manager.log"), args, opts.managerEnv)
		if err != nil {
			return nil, err
		}
		return mgr, mgr.waitReady(ctx, 5*time.Minute)
	}
	mgr, err := start()
	defer func() { _ = mgr.stop(30 * time.Second) }()
	if err != nil {
		return nil, err
	}
	honest := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Name: "canary", Namespace: "honest"},
		Spec: tokensv1alpha1.AccessTokenSpec{
			IssuerRef: tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: issuerName},
			Secret:    tokensv1alpha1.SecretTemplate{Name: "canary-token"}}}
	if err := c.Create(ctx, honest); err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, 10*time.Second); err != nil {
		return nil, err
	}
	if r.idle, err = mgr.memory(); err != nil {
		return nil, err
	}
	p.printf("idle: VmRSS %s", mibOf(r.idle.rss))

	p.printf("creating %d AccessTokens with a %d-character parameter, and %d forged Secrets", o.n, o.size, o.n)
	value, _ := json.Marshal(strings.Repeat("p", o.size))
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	work := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				at := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("big-%04d", i), Namespace: attackNamespace},
					Spec: tokensv1alpha1.AccessTokenSpec{
						IssuerRef:  tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: issuerName},
						Parameters: map[string]apiextensionsv1.JSON{"description": {Raw: value}},
						Secret:     tokensv1alpha1.SecretTemplate{Name: fmt.Sprintf("big-%04d-token", i)}}}
				err := c.Create(ctx, at)
				mu.Lock()
				if err != nil {
					r.refused++
				} else {
					r.admitted++
				}
				mu.Unlock()
				uid := at.UID
				if uid == "" {
					uid = "00000000-0000-0000-0000-000000000000"
				}
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("forged-%04d", i), Namespace: attackNamespace,
					Labels: map[string]string{tokensv1alpha1.LabelManagedBy: tokensv1alpha1.ManagedByValue},
					OwnerReferences: []metav1.OwnerReference{{APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: "AccessToken",
						Name: at.Name, UID: uid, Controller: ptr.To(true)}}},
					Data: map[string][]byte{"blob": []byte(strings.Repeat("s", o.size))}}
				if err := c.Create(ctx, s); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("creating forged Secret: %w", err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range o.n {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return r, firstErr
	}
	p.printf("%d AccessTokens admitted, %d refused; settling %s", r.admitted, r.refused, o.settle)
	if err := sleepCtx(ctx, o.settle); err != nil {
		return r, err
	}
	if mgr.exited() {
		r.restarts++
		return r, fmt.Errorf("the manager exited under the attack; see %s", mgr.log.Name())
	}
	if r.created, err = mgr.memory(); err != nil {
		return r, err
	}
	p.printf("after the attack: VmRSS %s, peak %s", mibOf(r.created.rss), mibOf(r.created.hwm))

	p.printf("restarting the manager")
	if err := mgr.stop(30 * time.Second); err != nil {
		return r, err
	}
	if mgr, err = start(); err != nil {
		return r, err
	}
	if err := sleepCtx(ctx, o.settle); err != nil {
		return r, err
	}
	if mgr.exited() {
		r.restarts++
		return r, fmt.Errorf("the manager exited after the restart; see %s", mgr.log.Name())
	}
	if r.restarted, err = mgr.memory(); err != nil {
		return r, err
	}
	p.printf("after the restart: VmRSS %s, peak %s", mibOf(r.restarted.rss), mibOf(r.restarted.hwm))
	if err := c.Get(ctx, client.ObjectKeyFromObject(honest), honest); err != nil {
		return r, err
	}
	ready := conditionOf(honest.Status.Conditions, tokensv1alpha1.ConditionReady)
	r.honestReady = ready != nil && ready.Status == metav1.ConditionTrue
	if ready != nil {
		r.honestAfter = ready.Reason
	}
	return r, nil
}

func conditionOf(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}
