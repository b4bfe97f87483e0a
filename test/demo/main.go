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

// Command demo runs tokenmint end to end on this machine: a local control plane
// (or the cluster of $KUBECONFIG with -use-kubeconfig), a fake of every supported
// provider on loopback, the manager, and one AccessToken per provider with
// short-lived tokens, shown live as they are issued and renewed. Ctrl-C stops
// everything and removes what the demo created.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/controller"
	"github.com/tokenmint/tokenmint/test/controlplane"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

const (
	demoNamespace        = "tokenmint-demo"
	operatorNamespace    = "tokenmint-system"
	credentialsNamespace = "tokenmint-credentials"
)

func main() {
	lifetime := 2 * time.Minute
	// The lifetime is checked as it is parsed, so that a refused value fails
	// the flag parsing itself (the docs test runs it with every documented
	// -lifetime).
	flag.Func("lifetime", "lifetime of the tokens the fake providers issue, 1m or more (default 2m)", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		if err := checkLifetime(d); err != nil {
			return err
		}
		lifetime = d
		return nil
	})
	useKubeconfig := flag.Bool("use-kubeconfig", false, "run against the cluster of $KUBECONFIG instead of a local control plane")
	duration := flag.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, lifetime, *useKubeconfig, *duration); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// minLifetime is the shortest lifetime the demo's fakes may issue: a provider
// that reports no expiry is renewed at the AccessToken's maxAge, which admission
// keeps at one minute or more.
const minLifetime = time.Minute

// checkLifetime refuses a -lifetime the demo's AccessTokens could not be
// admitted with.
func checkLifetime(lifetime time.Duration) error {
	if lifetime < minLifetime {
		return fmt.Errorf("-lifetime %s is shorter than %s, the shortest maxAge an AccessToken may ask for (the provider without an expiry is renewed at maxAge)", lifetime, minLifetime)
	}
	return nil
}

func step(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// demo is everything the demo started, for the display and for cleanup.
type demo struct {
	client    client.Client
	dir       string
	providers map[string]*fakes.Base // by AccessToken name
	created   []client.Object
}

// run starts everything, watches until ctx ends (or for duration once
// watching, if set), then cleans up.
func run(ctx context.Context, lifetime time.Duration, useKubeconfig bool, duration time.Duration) error {
	dir, err := os.MkdirTemp("", "tokenmint-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logPath := filepath.Join(dir, "manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	ctrl.SetLogger(zap.New(zap.WriteTo(logFile)))
	// The manager and the fakes outlive the watch: on a real cluster, cleanup
	// needs them to let the AccessTokens go (revocation, finalizers).
	background, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()

	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)

	cfg, kubectl, stopCluster, err := cluster(useKubeconfig, dir, scheme)
	if err != nil {
		return err
	}
	defer stopCluster()

	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	d := &demo{client: c, dir: dir, providers: map[string]*fakes.Base{}}
	// Cleanup runs on a fresh context: the demo's own is cancelled by Ctrl-C.
	defer d.cleanup(context.Background(), useKubeconfig)

	for _, ns := range []string{operatorNamespace, credentialsNamespace, demoNamespace} {
		if err := d.create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, false); err != nil {
			return err
		}
	}

	step("starting a fake of each provider on 127.0.0.1, issuing tokens that live %s", lifetime)
	for _, p := range samples.Providers {
		url, base, err := serveFake(background, p, lifetime)
		if err != nil {
			return err
		}
		s, err := samples.Load(p.File)
		if err != nil {
			return err
		}
		if err := s.PointAt(url); err != nil {
			return err
		}
		s.FillCredentials()
		s.Place(demoNamespace, credentialsNamespace, "")
		if s.Spec().Response.Expiry == nil {
			// This provider reports no expiry: renew at the demo's lifetime.
			s.AccessToken.Spec.MaxAge = &tokensv1alpha1.Duration{Duration: lifetime}
		}
		s.AccessToken.Spec.RenewBefore = nil
		d.providers[s.AccessToken.Name] = base
		for _, o := range s.Objects() {
			if err := d.create(ctx, o, true); err != nil {
				return err
			}
		}
		step("  %-26s %s -> %s", p.Name, p.File, url)
	}

	step("starting the tokenmint manager (logs: %s)", logPath)
	if err := startManager(background, cfg, scheme); err != nil {
		return err
	}
	if kubectl != "" {
		step("in another terminal: %s --kubeconfig %s get accesstokens -n %s",
			kubectl, filepath.Join(dir, "kubeconfig"), demoNamespace)
	}
	step("watching; Ctrl-C stops the demo and cleans up")
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	return d.watch(ctx)
}

// cluster returns a config for the cluster of $KUBECONFIG, or starts a local
// control plane and writes a kubeconfig for it into dir.
func cluster(useKubeconfig bool, dir string, scheme *runtime.Scheme) (*rest.Config, string, func(), error) {
	if useKubeconfig && nodeRequested() {
		return nil, "", nil, errNodeNeedsLocalControlPlane
	}
	if useKubeconfig {
		cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
		if err != nil {
			return nil, "", nil, fmt.Errorf("reading $KUBECONFIG: %w", err)
		}
		step("using the cluster at %s; installing the CRDs", cfg.Host)
		if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
			Scheme: scheme, Paths: []string{filepath.Join(controlplane.RepoRoot(), "config", "crd", "bases")},
		}); err != nil {
			return nil, "", nil, fmt.Errorf("installing CRDs: %w", err)
		}
		return cfg, "kubectl", func() {}, nil
	}
	step("building (first time only, about eight minutes) or reusing kube-apiserver, etcd and kubectl")
	if _, err := controlplane.Assets(); err != nil {
		return nil, "", nil, err
	}
	step("starting etcd and kube-apiserver on 127.0.0.1 and installing the CRDs")
	cp, err := controlplane.Start(controlplane.Options{APIServerFlags: nodeAPIServerFlags()})
	if err != nil {
		return nil, "", nil, err
	}
	stopNode, err := startNode(cp) // with -node
	if err != nil {
		_ = cp.Stop()
		return nil, "", nil, err
	}
	stop := func() {
		stopNode()
		step("stopping the control plane")
		_ = cp.Stop()
	}
	if err := cp.WriteKubeconfig(filepath.Join(dir, "kubeconfig")); err != nil {
		stop()
		return nil, "", nil, err
	}
	return cp.Config, cp.Kubectl(), stop, nil
}

// serveFake starts p's fake on 127.0.0.1 until ctx ends.
func serveFake(ctx context.Context, p samples.Provider, lifetime time.Duration) (string, *fakes.Base, error) {
	fake, base := p.NewFake()
	base.Lifetime = lifetime
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	go func() {
		<-ctx.Done()
		fake.Close()
		_ = srv.Close()
	}()
	return "http://" + l.Addr().String(), base, nil
}

func startManager(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) error {
	conf := controller.Config{
		OperatorNamespace:        operatorNamespace,
		CredentialsNamespace:     credentialsNamespace,
		AllowPrivateDestinations: true, // the fakes listen on 127.0.0.1
		MaxConcurrentReconciles:  4,
		FingerprintKeySecret:     "tokenmint-fingerprint-key",
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  conf.CacheOptions(),
	})
	if err != nil {
		return err
	}
	if err := controller.Setup(ctx, mgr, conf); err != nil {
		return err
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	return nil
}

// create creates o, replacing an object of the same name left by an earlier run.
func (d *demo) create(ctx context.Context, o client.Object, track bool) error {
	err := d.client.Create(ctx, o)
	if apierrors.IsAlreadyExists(err) && track {
		old := o.DeepCopyObject().(client.Object)
		if err := d.client.Get(ctx, client.ObjectKeyFromObject(o), old); err != nil {
			return err
		}
		o.SetResourceVersion(old.GetResourceVersion())
		err = d.client.Update(ctx, o)
	}
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
	}
	if track {
		d.created = append(d.created, o)
	}
	return nil
}

// cleanup deletes what the demo created on a real cluster; a local control
// plane is simply stopped.
func (d *demo) cleanup(ctx context.Context, realCluster bool) {
	if !realCluster {
		return
	}
	step("deleting the demo's objects")
	for i := len(d.created) - 1; i >= 0; i-- {
		_ = d.client.Delete(ctx, d.created[i])
	}
	// The manager still runs: it revokes what it can and lets the AccessTokens go.
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		list := &tokensv1alpha1.AccessTokenList{}
		if err := d.client.List(ctx, list, client.InNamespace(demoNamespace)); err != nil || len(list.Items) == 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	_ = d.client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoNamespace}})
}

// watch shows the AccessTokens, their Secrets' keys (never values) and every
// renewal as it happens, until ctx ends.
func (d *demo) watch(ctx context.Context) error {
	interactive := isTerminal(os.Stdout)
	fingerprints := map[string]string{}
	var history []string
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastPrint := time.Time{}
	printedHistory := -1
	for {
		list := &tokensv1alpha1.AccessTokenList{}
		listCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := d.client.List(listCtx, list, client.InNamespace(demoNamespace))
		cancel()
		if err != nil {
			return err
		}
		sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
		for _, at := range list.Items {
			fp := at.Status.TokenFingerprint
			if prev, ok := fingerprints[at.Name]; ok && fp != "" && fp != prev {
				how := "renewed"
				if c := meta.FindStatusCondition(at.Status.Conditions, tokensv1alpha1.ConditionRenewing); c != nil {
					how = strings.ToLower(c.Reason)
				}
				history = append(history, fmt.Sprintf("%s  %-26s %s, new token %s", time.Now().Format("15:04:05"), at.Name, how, short(fp)))
			}
			if fp != "" {
				fingerprints[at.Name] = fp
			}
		}
		if len(history) > 8 {
			history = history[len(history)-8:]
		}
		changed := len(history) != printedHistory
		if interactive || changed || time.Since(lastPrint) >= 15*time.Second {
			printedHistory = len(history)
			if interactive {
				fmt.Print("\033[H\033[2J")
			}
			d.render(ctx, os.Stdout, list.Items, history)
			lastPrint = time.Now()
		}
		select {
		case <-ctx.Done():
			if !interactive {
				d.render(context.Background(), os.Stdout, list.Items, history)
			}
			fmt.Println()
			step("stopping")
			return nil
		case <-tick.C:
		}
	}
}

func (d *demo) render(ctx context.Context, w io.Writer, items []tokensv1alpha1.AccessToken, history []string) {
	now := time.Now()
	fmt.Fprintf(w, "tokenmint demo, %s (namespace %s; Ctrl-C stops)\n\n", now.Format("15:04:05"), demoNamespace)
	fmt.Fprintf(w, "%-26s %-6s %-18s %-10s %-12s %-7s %s\n", "ACCESSTOKEN", "READY", "STATE", "EXPIRES", "NEXT RENEWAL", "MINTED", "SECRET KEYS")
	for _, at := range items {
		ready, state := "-", "Pending"
		if c := meta.FindStatusCondition(at.Status.Conditions, tokensv1alpha1.ConditionReady); c != nil {
			ready = string(c.Status)
			state = c.Reason
		}
		if c := meta.FindStatusCondition(at.Status.Conditions, tokensv1alpha1.ConditionRenewing); c != nil && c.Status == metav1.ConditionFalse {
			state = c.Reason
		}
		minted := "-"
		if b := d.providers[at.Name]; b != nil {
			minted = fmt.Sprint(len(b.Issued()))
		}
		fmt.Fprintf(w, "%-26s %-6s %-18s %-10s %-12s %-7s %s\n", at.Name, ready, state,
			until(now, at.Status.ExpiresAt), until(now, at.Status.RenewalTime), minted, d.secretKeys(ctx, &at))
	}
	fmt.Fprintln(w, "\nrenewals:")
	if len(history) == 0 {
		fmt.Fprintln(w, "  (none yet: tokens renew when two thirds of their lifetime have passed)")
	}
	for _, h := range history {
		fmt.Fprintln(w, "  "+h)
	}
	d.renderNode(ctx, w) // with -node
}

// secretKeys lists the keys of the AccessToken's Secret, never the values.
func (d *demo) secretKeys(ctx context.Context, at *tokensv1alpha1.AccessToken) string {
	s := &corev1.Secret{}
	if err := d.client.Get(ctx, client.ObjectKey{Namespace: at.Namespace, Name: at.Spec.Secret.Name}, s); err != nil {
		return "(no Secret yet)"
	}
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return at.Spec.Secret.Name + ": " + strings.Join(keys, ",")
}

func until(now time.Time, t *metav1.Time) string {
	if t == nil {
		return "never"
	}
	d := t.Sub(now).Round(time.Second)
	if d < 0 {
		return "passed"
	}
	return "in " + d.String()
}

func short(fingerprint string) string {
	_, hex, _ := strings.Cut(fingerprint, ":")
	if len(hex) > 8 {
		hex = hex[:8]
	}
	return hex
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
