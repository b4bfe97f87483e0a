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

// Package e2e runs the built manager binary against a local control plane the
// way users run it: the Helm chart installed with helm, the manager acting as the
// chart's ServiceAccount (so it has exactly the chart's permissions), and the
// samples applied with kubectl, pointed at the provider fakes.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/controlplane"
)

const (
	release              = "tokenmint"
	operatorNamespace    = "tokenmint-system"
	credentialsNamespace = "tokenmint-credentials" // the chart's default, created by the chart
	// scraper is a ServiceAccount the chart binds to the metrics-reader role.
	scraper = "scraper"
	// serviceAccount is the chart's ServiceAccount for release "tokenmint".
	serviceAccount = "system:serviceaccount:" + operatorNamespace + ":tokenmint"
)

var (
	ctx        context.Context
	cancel     context.CancelFunc
	cp         *controlplane.ControlPlane
	dir        string
	admin      string // kubeconfig of a cluster administrator
	asManager  string // kubeconfig acting as the chart's ServiceAccount
	k8sClient  client.Client
	managerBin string
	manager    *managerProcess
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "End-to-end Suite")
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	dir = GinkgoT().TempDir()
	Expect(tokensv1alpha1.AddToScheme(scheme.Scheme)).To(Succeed())

	By("building the manager binary")
	managerBin = filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", managerBin, "./cmd")
	build.Dir, build.Stdout, build.Stderr = controlplane.RepoRoot(), GinkgoWriter, GinkgoWriter
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	Expect(build.Run()).To(Succeed())

	By("starting etcd and kube-apiserver on loopback, without CRDs: the chart installs them")
	var err error
	cp, err = controlplane.Start(controlplane.Options{NoCRDs: true})
	Expect(err).NotTo(HaveOccurred())
	admin = filepath.Join(dir, "admin.kubeconfig")
	Expect(cp.WriteKubeconfig(admin)).To(Succeed())
	k8sClient, err = client.New(cp.Config, client.Options{Scheme: scheme.Scheme})
	Expect(err).NotTo(HaveOccurred())

	By("installing the chart with helm")
	run(helmBinary(), "install", release, filepath.Join(controlplane.RepoRoot(), "dist", "chart"),
		"--kubeconfig", admin, "--namespace", operatorNamespace, "--create-namespace",
		"--set", "allowPrivateDestinations=true", // the provider fakes listen on 127.0.0.1
		"--set", "metrics.readers[0].name="+scraper, "--set", "metrics.readers[0].namespace="+operatorNamespace)
	// The CRDs are templates of the release: helm creates them with everything
	// else and does not wait for them. A manager started before they are
	// established exits and is restarted.
	kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/accesstokens.tokens.tokenmint.dev",
		"crd/tokenissuers.tokens.tokenmint.dev", "crd/clustertokenissuers.tokens.tokenmint.dev")

	By("acting as the chart's ServiceAccount")
	asManager = filepath.Join(dir, "manager.kubeconfig")
	impersonate(admin, asManager, serviceAccount,
		"system:serviceaccounts", "system:serviceaccounts:"+operatorNamespace, "system:authenticated")

	manager = startManager()
})

// On failure, show what the manager logged.
var _ = ReportAfterEach(func(r SpecReport) {
	if r.Failed() && dir != "" {
		if log, err := os.ReadFile(filepath.Join(dir, "manager.log")); err == nil {
			const tail = 20000
			if len(log) > tail {
				log = log[len(log)-tail:]
			}
			AddReportEntry("manager log (tail)", string(log))
		}
		if out, err := execOutput(cp.Kubectl(), "--kubeconfig", admin, "get", "accesstokens", "-A", "-o", "yaml"); err == nil {
			AddReportEntry("AccessTokens", out)
		}
	}
})

var _ = AfterSuite(func() {
	if manager != nil {
		manager.stop()
	}
	cancel()
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})

// helmBinary is bin/helm, installed by `make test` (or $HELM).
func helmBinary() string {
	helm, err := controlplane.Helm()
	Expect(err).NotTo(HaveOccurred())
	return helm
}

// run runs a command, failing the spec with its output when it fails.
func run(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "%s %v:\n%s", filepath.Base(name), args, out)
	return string(out)
}

func kubectl(args ...string) string {
	return run(cp.Kubectl(), append([]string{"--kubeconfig", admin}, args...)...)
}

// impersonate writes a copy of the kubeconfig at from that acts as user.
func impersonate(from, to, user string, groups ...string) {
	cfg, err := clientcmd.LoadFromFile(from)
	Expect(err).NotTo(HaveOccurred())
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = user
		auth.ImpersonateGroups = groups
	}
	Expect(clientcmd.WriteToFile(*cfg, to)).To(Succeed())
}

// managerProcess is the manager binary, running.
type managerProcess struct {
	cmd    *exec.Cmd
	done   chan error
	health string
	// metrics is the secure metrics endpoint (the chart's default).
	metrics string
	log     *os.File
}

// startManager runs the built manager as the chart's ServiceAccount, with the
// flags the chart gives it, and waits until it is healthy.
func startManager() *managerProcess { return startManagerLogging("manager.log") }

// startManagerLogging is startManager with the process's log in dir/logName.
func startManagerLogging(logName string) *managerProcess {
	healthPort, metricsPort := freePort(), freePort()
	logFile, err := os.OpenFile(filepath.Join(dir, logName), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command(managerBin,
		"--kubeconfig", asManager,
		"--leader-elect",
		"--leader-election-lease-duration=6s", "--leader-election-renew-deadline=4s", "--leader-election-retry-period=1s",
		"--operator-namespace", operatorNamespace,
		"--allow-private-destinations",
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", healthPort),
		"--zap-log-level", "debug",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	Expect(cmd.Start()).To(Succeed())
	m := &managerProcess{cmd: cmd, done: make(chan error, 1), log: logFile,
		health:  fmt.Sprintf("http://127.0.0.1:%d/readyz", healthPort),
		metrics: fmt.Sprintf("https://127.0.0.1:%d/metrics", metricsPort)}
	go func() { m.done <- cmd.Wait() }()
	Eventually(func() error {
		select {
		case err := <-m.done:
			Fail(fmt.Sprintf("the manager exited: %v; see %s", err, logFile.Name()))
		default:
		}
		resp, err := http.Get(m.health)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %d", resp.StatusCode)
		}
		return nil
	}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
	return m
}

// leads reports whether the process has acquired the leader lease.
func (m *managerProcess) leads() bool {
	log, _ := os.ReadFile(m.log.Name())
	return bytes.Contains(log, []byte("Successfully acquired lease"))
}

// kill ends the process at once, as a crashed node would: no lease release.
func (m *managerProcess) kill() {
	Expect(m.cmd.Process.Kill()).To(Succeed())
	Eventually(m.done, 10*time.Second).Should(Receive())
	_ = m.log.Close()
}

// stop sends SIGTERM, as the kubelet does, and waits for a clean exit.
func (m *managerProcess) stop() {
	Expect(m.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
	var err error
	Eventually(m.done, 30*time.Second).Should(Receive(&err))
	Expect(err).NotTo(HaveOccurred(), "the manager did not exit cleanly")
	_ = m.log.Close()
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// execOutput runs a command and returns its output, whether or not it fails.
func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
