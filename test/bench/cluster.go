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

// The cluster mode measures a ClusterAccessToken: one token written to N
// namespaces must cost one call to the endpoint and N Secret writes, on first
// issue and on every renewal, and a namespace that appears later must get the
// current token without a call.
//
//	go run ./test/bench -cluster 100

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/controlplane"
)

const clusterTokenName = "shared"

// clusterResults is what the cluster run measured.
type clusterResults struct {
	command, revision  string
	machine            machine
	n                  int
	firstAll           time.Duration // ClusterAccessToken created to every Secret written
	firstCalls         int64
	firstWrites        int64
	renewAll           time.Duration // renewal requested to every Secret holding the new token
	renewCalls         int64
	renewWrites        int64
	lateNamespace      time.Duration // a namespace created to its Secret written
	lateCalls          int64
	statusWritten      int32
	statusNamespaces   int32
	namespacesCreation time.Duration
}

func (r *clusterResults) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# ClusterAccessToken: one token, %d namespaces\n\n", r.n)
	fmt.Fprintf(&b, "`%s` at %s on %s.\n\n", r.command, r.revision, r.machine.summary())
	fmt.Fprintf(&b, "| step | time | calls to the endpoint | Secret writes |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| first token, to all %d namespaces | %.1f s | %d | %d |\n", r.n, r.firstAll.Seconds(), r.firstCalls, r.firstWrites)
	fmt.Fprintf(&b, "| renewal (annotation), to all %d namespaces | %.1f s | %d | %d |\n", r.n, r.renewAll.Seconds(), r.renewCalls, r.renewWrites)
	fmt.Fprintf(&b, "| a namespace created later | %.1f s | %d | 1 |\n", r.lateNamespace.Seconds(), r.lateCalls)
	fmt.Fprintf(&b, "\nStatus after: %d namespaces selected, %d written. Creating the %d namespaces beforehand took %.1f s.\n",
		r.statusNamespaces, r.statusWritten, r.n, r.namespacesCreation.Seconds())
	return b.String()
}

// runClusterMode runs the cluster mode and writes its table.
func runClusterMode(opts options, n int) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := mainCluster(ctx, opts, n, os.Stdout)
	if res == nil {
		return finishMode("", "", err, "")
	}
	return finishMode(reportPath(opts, fmt.Sprintf("bench-cluster-%d.md", n)), res.markdown(), err, "")
}

// reportPath is where a mode writes its table: -out, else bin/name.
func reportPath(opts options, name string) string {
	if opts.out != "" {
		return opts.out
	}
	return filepath.Join(controlplane.RepoRoot(), "bin", name)
}

// finishMode prints a mode's table (md; none when out is empty), writes it
// to out, and returns the mode's exit code: 1 when the mode failed (err),
// when its table cannot be written, or when failed names a check it failed.
func finishMode(out, md string, err error, failed string) int {
	code := 0
	if out != "" {
		fmt.Println()
		fmt.Println(md)
		if werr := writeReport(out, md); werr != nil {
			fmt.Fprintln(os.Stderr, werr)
			code = 1
		}
	}
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	case failed != "":
		fmt.Fprintln(os.Stderr, "bench:", failed)
		return 1
	}
	return code
}

// writeReport writes a mode's Markdown table to out, making its directory.
func writeReport(out, md string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Printf("Written to %s\n", out)
	return nil
}

// startBenchControlPlane builds the manager (unless opts names a binary) and
// starts a control plane on loopback, with an administrator's kubeconfig in
// dir. The caller stops the control plane.
func startBenchControlPlane(p *progress, opts options, dir string) (bin string, cp *controlplane.ControlPlane, kubeconfig string, err error) {
	bin = opts.managerBin
	if bin == "" {
		p.printf("building the manager (CGO_ENABLED=0 go build ./cmd)")
		if bin, err = buildManager(dir); err != nil {
			return "", nil, "", err
		}
	}
	p.printf("starting etcd and kube-apiserver on loopback")
	if cp, err = controlplane.Start(controlplane.Options{}); err != nil {
		return "", nil, "", err
	}
	kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := cp.WriteKubeconfig(kubeconfig); err != nil {
		_ = cp.Stop()
		return "", nil, "", err
	}
	return bin, cp, kubeconfig, nil
}

// mainCluster runs the cluster mode.
func mainCluster(ctx context.Context, opts options, n int, w io.Writer) (*clusterResults, error) {
	p := &progress{w: w, start: time.Now()}
	r := &clusterResults{command: opts.command, machine: machineInfo(), n: n, revision: revision(controlplane.RepoRoot())}
	dir, err := os.MkdirTemp("", "tokenmint-bench-cluster-")
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
	cs, err := kubernetes.NewForConfig(cfg)
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

	p.printf("creating %d namespaces labelled bench=cluster", n)
	started := time.Now()
	for i := range n {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("team-%04d", i), Labels: map[string]string{"bench": "cluster"}}}
		if err := c.Create(ctx, ns); err != nil {
			return nil, err
		}
	}
	r.namespacesCreation = time.Since(started)

	writes, stopWatch, err := countSecretWrites(ctx, cs)
	if err != nil {
		return nil, err
	}
	defer stopWatch()
	mgr, err := startManager(bin, kubeconfig, filepath.Join(dir, "manager.log"),
		[]string{"--operator-namespace", operatorNamespace}, opts.managerEnv)
	if err != nil {
		return nil, err
	}
	defer func() { _ = mgr.stop(30 * time.Second) }()
	if err := mgr.waitReady(ctx, 60*time.Second); err != nil {
		return nil, err
	}

	cat := &tokensv1alpha1.ClusterAccessToken{ObjectMeta: metav1.ObjectMeta{Name: clusterTokenName},
		Spec: tokensv1alpha1.ClusterAccessTokenSpec{
			IssuerRef:  tokensv1alpha1.ClusterIssuerReference{Name: issuerName},
			Secret:     tokensv1alpha1.SecretTemplate{Name: "shared-token"},
			Namespaces: tokensv1alpha1.TargetNamespaces{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"bench": "cluster"}}},
		}}
	p.printf("creating the ClusterAccessToken")
	started = time.Now()
	if err := c.Create(ctx, cat); err != nil {
		return nil, err
	}
	fp, err := waitAllWritten(ctx, c, n, "")
	if err != nil {
		return nil, err
	}
	r.firstAll, r.firstCalls, r.firstWrites = time.Since(started), ep.Calls(), writes.Load()
	p.printf("all %d written in %.1f s: %d calls, %d Secret writes", n, r.firstAll.Seconds(), r.firstCalls, r.firstWrites)

	// A token is never minted twice within the manager's --min-mint-interval
	// (10 s by default): wait that out, so that the renewal measures the fan-out.
	p.printf("waiting out the floor between two mints of one token")
	if err := sleepCtx(ctx, 11*time.Second); err != nil {
		return nil, err
	}
	p.printf("renewing through the source AccessToken's renew annotation")
	source := &tokensv1alpha1.AccessToken{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "cluster-" + clusterTokenName}, source); err != nil {
		return nil, err
	}
	patch := client.MergeFrom(source.DeepCopy())
	if source.Annotations == nil {
		source.Annotations = map[string]string{}
	}
	source.Annotations[tokensv1alpha1.AnnotationRenew] = "bench"
	started = time.Now()
	if err := c.Patch(ctx, source, patch); err != nil {
		return nil, err
	}
	if _, err := waitAllWritten(ctx, c, n, fp); err != nil {
		return nil, err
	}
	r.renewAll, r.renewCalls, r.renewWrites = time.Since(started), ep.Calls()-r.firstCalls, writes.Load()-r.firstWrites
	p.printf("renewed in all %d in %.1f s: %d calls, %d Secret writes", n, r.renewAll.Seconds(), r.renewCalls, r.renewWrites)

	p.printf("creating one more namespace")
	calls := ep.Calls()
	started = time.Now()
	late := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-late", Labels: map[string]string{"bench": "cluster"}}}
	if err := c.Create(ctx, late); err != nil {
		return nil, err
	}
	for {
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: late.Name, Name: "shared-token"}, s); err == nil {
			break
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
	r.lateNamespace, r.lateCalls = time.Since(started), ep.Calls()-calls
	if err := c.Get(ctx, client.ObjectKeyFromObject(cat), cat); err != nil {
		return nil, err
	}
	r.statusNamespaces, r.statusWritten = cat.Status.Namespaces, cat.Status.Written
	return r, nil
}

// waitAllWritten waits until n Secrets of the ClusterAccessToken hold one
// token other than the one of fingerprint not, and returns its fingerprint.
func waitAllWritten(ctx context.Context, c client.Client, n int, not string) (string, error) {
	for {
		list := &corev1.SecretList{}
		if err := c.List(ctx, list, client.MatchingLabels{tokensv1alpha1.LabelClusterAccessToken: clusterTokenName}); err != nil {
			return "", err
		}
		counts := map[string]int{}
		for _, s := range list.Items {
			counts[s.Annotations["tokens.tokenmint.dev/token-fingerprint"]]++
		}
		for fp, k := range counts {
			if fp != "" && fp != not && k >= n {
				return fp, nil
			}
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return "", err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// countSecretWrites counts creations and updates of the ClusterAccessToken's
// Secrets, as a watch sees them.
func countSecretWrites(ctx context.Context, cs kubernetes.Interface) (*atomic.Int64, func(), error) {
	w, err := cs.CoreV1().Secrets("").Watch(ctx, metav1.ListOptions{LabelSelector: tokensv1alpha1.LabelClusterAccessToken + "=" + clusterTokenName})
	if err != nil {
		return nil, nil, err
	}
	var n atomic.Int64
	go func() {
		for ev := range w.ResultChan() {
			if ev.Type == watch.Added || ev.Type == watch.Modified {
				n.Add(1)
			}
		}
	}()
	return &n, w.Stop, nil
}
