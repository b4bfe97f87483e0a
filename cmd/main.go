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

// Command manager runs the tokenmint operator.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"log/slog"
	"math"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/KimMachineGun/automemlimit/memlimit"
	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"

	"github.com/tokenmint/tokenmint/internal/controller"
	"github.com/tokenmint/tokenmint/internal/metricsauth"
)

var (
	scheme   = runtime.NewScheme()
	setupLog = ctrl.Log.WithName("setup")
	// version is stamped at build time with -ldflags "-X main.version=...".
	version = "dev"
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(tokensv1alpha1.AddToScheme(scheme))
}

func main() {
	var (
		metricsAddr          string
		probeAddr            string
		pprofAddr            string
		secureMetrics        bool
		enableHTTP2          bool
		enableLeaderElection bool
		leaseDuration        time.Duration
		renewDeadline        time.Duration
		retryPeriod          time.Duration
		shutdownTimeout      time.Duration
		cfg                  = controller.Config{}
		metricsAuth          metricsauth.Options
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443",
		"The address the metrics endpoint binds to (use :8080 with --metrics-secure=false for plain HTTP, 0 to disable).")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "",
		"The address a Go profiling endpoint (/debug/pprof) binds to; empty disables it. Bind it to 127.0.0.1 only: it is not authenticated.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS, with authentication and authorization through the Kubernetes API.")
	flag.Float64Var(&metricsAuth.ReviewQPS, "metrics-auth-review-qps", metricsauth.DefaultReviewQPS,
		"TokenReviews and SubjectAccessReviews per second for metrics requests, on a client of their own; a request needing a review beyond it is refused with 429.")
	flag.IntVar(&metricsAuth.ReviewBurst, "metrics-auth-review-burst", metricsauth.DefaultReviewBurst,
		"Burst of --metrics-auth-review-qps.")
	flag.IntVar(&metricsAuth.MaxReviewsInFlight, "metrics-auth-max-reviews-in-flight", metricsauth.DefaultMaxReviewsInFlight,
		"Reviews for metrics requests waiting for the API server at once; a request needing one more is refused with 429.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false,
		"Enable HTTP/2 for the metrics server (off by default because of HTTP/2 rapid reset attacks).")
	flag.BoolVar(&enableLeaderElection, "leader-elect", false,
		"Enable leader election, so that only one of several replicas is active.")
	flag.DurationVar(&leaseDuration, "leader-election-lease-duration", 15*time.Second,
		"How long a non-leader waits before trying to take over an expired lease.")
	flag.DurationVar(&renewDeadline, "leader-election-renew-deadline", 10*time.Second,
		"How long the leader keeps retrying to renew its lease before giving up leadership.")
	flag.DurationVar(&retryPeriod, "leader-election-retry-period", 2*time.Second,
		"How often leader election clients retry.")
	flag.DurationVar(&shutdownTimeout, "graceful-shutdown-timeout", 60*time.Second,
		"How long a stopping manager waits for reconciles in flight; a call to a token endpoint and the writes of its result are never cut short before that.")
	cfg.BindFlags(flag.CommandLine)
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod = leaseDuration, renewDeadline, retryPeriod

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	tuneMemory()
	// A stop signal first hands this replica's ranges over (with
	// --shard-ranges) while it still serves them, then stops the manager; a
	// second signal exits at once.
	signals := ctrl.SetupSignalHandler()
	ctx, stopManager := context.WithCancel(context.Background())
	defer stopManager()
	go func() {
		<-signals.Done()
		cfg.HandOverShards()
		stopManager()
	}()
	setupLog.Info("starting tokenmint", "version", version)

	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOptions := metricsserver.Options{
		BindAddress:   metricsAddr,
		SecureServing: secureMetrics,
		TLSOpts:       tlsOpts,
	}
	baseConfig := ctrl.GetConfigOrDie()
	metricsOptions.FilterProvider = metricsFilters(baseConfig, secureMetrics, metricsAuth)

	restConfig, leaderElectionConfig := cfg.RESTConfigs(baseConfig)
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Cache:                         cfg.CacheOptions(),
		Scheme:                        scheme,
		Metrics:                       metricsOptions,
		HealthProbeBindAddress:        probeAddr,
		PprofBindAddress:              pprofAddr,
		LeaderElection:                enableLeaderElection,
		LeaderElectionConfig:          leaderElectionConfig,
		LeaderElectionID:              "tokenmint.tokens.tokenmint.dev",
		LeaderElectionNamespace:       cfg.OperatorNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &leaseDuration,
		RenewDeadline:                 &renewDeadline,
		RetryPeriod:                   &retryPeriod,
		GracefulShutdownTimeout:       &shutdownTimeout,
	})
	if err != nil {
		setupLog.Error(err, "unable to create manager")
		os.Exit(1)
	}

	if cfg.ShardRanges > 0 && !enableLeaderElection {
		setupLog.Info("--shard-ranges without --leader-elect: every replica also runs the cluster-scoped controllers")
	}
	if err := controller.Setup(ctx, mgr, cfg); err != nil {
		setupLog.Error(err, "unable to set up controllers")
		os.Exit(1)
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "unable to set up health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		setupLog.Error(err, "unable to set up ready check")
		os.Exit(1)
	}

	setupLog.Info("starting manager")
	if err := mgr.Start(ctx); err != nil {
		setupLog.Error(err, "problem running manager")
		os.Exit(1)
	}
}

// defaultGCPercent is the garbage collector's target when GOGC is not set:
// the heap may grow to 1.5 times what is live instead of twice, which keeps
// ten thousand AccessTokens within 128 MiB for a little more collector CPU.
const defaultGCPercent = 50

// tuneMemory sets the collector's target (GOGC, default 50) and a soft memory
// limit of 90 % of the container's memory limit (GOMEMLIMIT overrides it), so
// that the collector works harder before the container would be killed.
func tuneMemory() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	limit, err := memlimit.Set(
		memlimit.WithRatio(0.9),
		memlimit.WithProvider(memlimit.FromCgroup),
		memlimit.WithLogger(slog.New(slog.DiscardHandler)),
	)
	switch {
	case os.Getenv("GOMEMLIMIT") != "":
		setupLog.Info("memory limit from GOMEMLIMIT", "bytes", debug.SetMemoryLimit(-1))
	case err == nil && limit > 0 && limit < math.MaxInt64:
		setupLog.Info("soft memory limit from the container's limit", "bytes", limit)
	}
}

// metricsFilters wraps the metrics endpoint: a scrape naming only some
// families (name[]) skips the per-AccessToken ones unless it names them; with
// secure metrics, every request is authenticated and authorized first, by
// reviews on a client of their own, not the manager's: they never spend
// --kube-api-qps nor wait behind reconciles.
func metricsFilters(base *rest.Config, secure bool, auth metricsauth.Options) func(*rest.Config, *http.Client) (metricsserver.Filter, error) {
	return func(c *rest.Config, hc *http.Client) (metricsserver.Filter, error) {
		if !secure {
			return func(_ logr.Logger, h http.Handler) (http.Handler, error) {
				return controller.SkipTokenFamiliesUnlessNamed(h), nil
			}, nil
		}
		reviews, err := metricsauth.FilterProvider(base, auth)(c, hc)
		if err != nil {
			return nil, err
		}
		return func(log logr.Logger, h http.Handler) (http.Handler, error) {
			return reviews(log, controller.SkipTokenFamiliesUnlessNamed(h))
		}, nil
	}
}
