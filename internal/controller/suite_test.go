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
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/test/controlplane"
)

const (
	operatorNamespace    = "tokenmint-system"
	credentialsNamespace = "tokenmint-credentials"
)

var (
	ctx       context.Context
	cancel    context.CancelFunc
	cp        *controlplane.ControlPlane
	cfg       *rest.Config
	k8sClient client.Client
	// clk drives every time decision of the manager and the provider fakes.
	clk *clocktesting.FakeClock
	// logs captures everything the manager logs, for the leak checks.
	logs = &syncBuffer{}
	// mgr is the running manager, restarted by some specs.
	mgr *runningManager
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, logs)), zap.UseDevMode(true), zap.Level(zapcore.Level(-5))))
	ctx, cancel = context.WithCancel(context.TODO())

	Expect(tokensv1alpha1.AddToScheme(scheme.Scheme)).To(Succeed())

	By("starting etcd and kube-apiserver on loopback")
	var err error
	cp, err = controlplane.Start(controlplane.Options{})
	Expect(err).NotTo(HaveOccurred())
	cfg = cp.Config

	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme.Scheme})
	Expect(err).NotTo(HaveOccurred())
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}})).To(Succeed())
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: credentialsNamespace}})).To(Succeed())

	clk = clocktesting.NewFakeClock(time.Now().Truncate(time.Second))
	mgr = startManager()
})

var _ = AfterSuite(func() {
	if cp != nil {
		By("checking that no credential or token was shown anywhere")
		checkNoLeaks()
	}
	if mgr != nil {
		mgr.stop()
	}
	cancel()
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})

// runningManager is a manager started by a spec, stopped by stop.
type runningManager struct {
	cancel context.CancelFunc
	done   chan struct{}
	// shard is the identity of a sharded replica; empty for the suite's.
	shard string
}

func testConfig() Config {
	return Config{
		OperatorNamespace:       operatorNamespace,
		CredentialsNamespace:    credentialsNamespace,
		MaxConcurrentReconciles: 4,
		IssuerConcurrency:       DefaultIssuerConcurrency,
		NamespaceConcurrency:    DefaultNamespaceConcurrency,
		MinMintInterval:         DefaultMinMintInterval,
		ForcedRenewalRate:       DefaultForcedRenewalRate,
		ForcedRenewalBurst:      DefaultForcedRenewalBurst,
		// The flags' defaults: a 429 pauses what it should.
		IssuerRate:               500,
		IssuerBurst:              500,
		FingerprintKeySecret:     "tokenmint-fingerprint-key",
		AllowPrivateDestinations: true, // the provider fakes listen on 127.0.0.1
		ProviderClockCorrection:  true, // the flag's default
		Clock:                    clk,
		// Nothing the manager does in these tests may open a socket to anything
		// but loopback, even if a guard were broken.
		Transport: &issuer.TransportConfig{DialContext: loopbackOnly},
	}
}

// forbiddenDials records every non-loopback destination the manager tried.
var forbiddenDials struct {
	sync.Mutex
	addrs []string
}

// loopbackOnly dials loopback addresses and refuses, and records, any other
// destination instead of connecting; every spec then fails if one was tried.
func loopbackOnly(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		forbiddenDials.Lock()
		forbiddenDials.addrs = append(forbiddenDials.addrs, addr)
		forbiddenDials.Unlock()
		return nil, errors.New("refused by the test dialer")
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

var _ = AfterEach(func() {
	forbiddenDials.Lock()
	defer forbiddenDials.Unlock()
	Expect(forbiddenDials.addrs).To(BeEmpty(), "the manager tried to connect to non-loopback addresses")
})

// startManager starts the controllers as cmd/main.go does, with the fake clock.
func startManager() *runningManager { return startManagerWith(nil) }

// startManagerWith is startManager with the configuration changed by change.
func startManagerWith(change func(*Config)) *runningManager {
	conf := testConfig()
	if change != nil {
		change(&conf)
	}
	// The manager's requests pass the counter of single-Secret reads.
	mcfg := rest.CopyConfig(cfg)
	mcfg.Wrap(secretGets.wrap)
	m, err := ctrl.NewManager(mcfg, ctrl.Options{
		Scheme:                 scheme.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  conf.CacheOptions(),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	mctx, mcancel := context.WithCancel(ctx)
	Expect(Setup(mctx, m, conf)).To(Succeed())
	rm := &runningManager{cancel: mcancel, done: make(chan struct{})}
	go func() {
		defer GinkgoRecover()
		defer close(rm.done)
		Expect(m.Start(mctx)).To(Succeed())
	}()
	return rm
}

func (m *runningManager) stop() {
	m.cancel()
	Eventually(m.done, 30*time.Second).Should(BeClosed())
	delete(liveShards, m.shard)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
