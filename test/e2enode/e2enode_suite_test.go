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

// Package e2enode proves that tokens reach pods: a real kubelet, with
// containerd and runc, runs the operator the way users install it, from the
// published release (`make release` to a registry on 127.0.0.1: the OCI chart,
// the image pulled by digest), upgraded from the previous release, and busybox
// workloads that read the token from a mounted Secret, an environment variable
// or a subPath mount. It needs root; a machine that cannot run containers
// fails the suite with the reason.
package e2enode

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/controlplane"
	"github.com/tokenmint/tokenmint/test/node"
	testrelease "github.com/tokenmint/tokenmint/test/release"
)

const (
	release              = "tokenmint"
	operatorNamespace    = "tokenmint-system"
	credentialsNamespace = "tokenmint-credentials" // the chart's default, created by the chart
)

var (
	ctx       context.Context
	cancel    context.CancelFunc
	cp        *controlplane.ControlPlane
	theNode   *node.Node
	dir       string
	admin     string // kubeconfig of a cluster administrator
	k8sClient client.WithWatch
	scheme    = runtime.NewScheme()

	// releases is the registry on 127.0.0.1 the releases are published to.
	releases *testrelease.Registry
	// previous is the previous release, current this tree's: the suite
	// installs the first and upgrades to the second.
	previous, current *testrelease.Release
)

func TestE2ENode(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "End-to-end Suite on a real node")
}

var _ = BeforeSuite(func() {
	Expect(os.Geteuid()).To(BeZero(), "this suite runs a real kubelet, containerd and runc, which need root: "+
		"run it as root on a machine that can run containers (make test-node)")
	ctx, cancel = context.WithCancel(context.Background())
	dir = GinkgoT().TempDir()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(tokensv1alpha1.AddToScheme(scheme)).To(Succeed())

	By("starting etcd and kube-apiserver on loopback, with service account tokens for pods")
	var err error
	cp, err = controlplane.Start(controlplane.Options{NoCRDs: true, APIServerFlags: node.APIServerFlags()})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(cp.Stop()).To(Succeed()) })
	admin = filepath.Join(dir, "admin.kubeconfig")
	Expect(cp.WriteKubeconfig(admin)).To(Succeed())
	k8sClient, err = client.NewWithWatch(cp.Config, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	// The releases build while the node starts, whose timeouts are generous;
	// not while kube-apiserver starts, which a busy machine slows past envtest's.
	By("releasing the previous version and this tree with make release, to a registry on 127.0.0.1, meanwhile starting the node")
	published := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(published)
		publishReleases()
	}()

	By("starting a node: containerd, runc, kubelet, kube-controller-manager, kube-scheduler")
	theNode, err = node.Start(ctx, cp, node.Options{})
	Expect(err).NotTo(HaveOccurred(), "this suite needs a machine that can run containers")
	// Registered after the control plane's, so it runs before it.
	DeferCleanup(func() { Expect(theNode.Stop()).To(Succeed()) })

	<-published
	Expect(current).NotTo(BeNil(), "the releases failed")
	values := filepath.Join(dir, "values.yaml")
	Expect(os.WriteFile(values, chartValues(), 0o600)).To(Succeed())
	By(fmt.Sprintf("installing the previous release, %s: helm install %s --version %s", previous.Version, previous.Chart(), previous.Version))
	helmWithReleaseTools("install", release, previous.Chart(), "--version", previous.Version, "--plain-http",
		"--kubeconfig", admin, "--namespace", operatorNamespace, "--create-namespace", "--values", values)
	// The CRDs are templates of the release: helm creates them with everything
	// else and does not wait for them. A manager started before they are
	// established exits and is restarted.
	kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/accesstokens.tokens.tokenmint.dev",
		"crd/tokenissuers.tokens.tokenmint.dev", "crd/clustertokenissuers.tokens.tokenmint.dev")
	expectManagerRunning(previous)

	By("tokens of the previous release, read by a pod")
	upgrade := beforeUpgrade()

	By(fmt.Sprintf("upgrading to this tree's release, %s: helm upgrade %s --version %s", current.Version, current.Chart(), current.Version))
	// The new manager starts beside the old one, as a rolling update starts
	// it, and on the host's network it needs ports of its own.
	upgradeValues := filepath.Join(dir, "upgrade-values.yaml")
	Expect(os.WriteFile(upgradeValues, chartValues(), 0o600)).To(Succeed())
	helmWithReleaseTools("upgrade", release, current.Chart(), "--version", current.Version, "--plain-http",
		"--kubeconfig", admin, "--namespace", operatorNamespace, "--values", upgradeValues)
	expectManagerRunning(current)
	upgrade.expectNoMintAndNoGap()
})

var _ = AfterSuite(func() {
	if cp != nil && theNode != nil && current != nil {
		walkTheInstallDocs()
	}
	if cancel != nil {
		cancel()
	}
})

// chartValues are the settings a node without a CNI plugin or kube-proxy needs,
// all of them chart values, of this release and the previous one: host
// networking on loopback ports (new ones at each call), a toleration of the
// NotReady node, and the apiserver's address in place of the kubernetes
// Service's unroutable ClusterIP; and a corporate CA, mounted as
// docs/install.md tells.
func chartValues() []byte {
	api, err := url.Parse(cp.Config.Host)
	Expect(err).NotTo(HaveOccurred())
	host, port, err := net.SplitHostPort(api.Host)
	Expect(err).NotTo(HaveOccurred())
	metricsPort, probePort := freePort(), freePort()
	values := map[string]any{
		"hostNetwork":              true,
		"tolerations":              []any{node.Toleration},
		"allowPrivateDestinations": true, // the provider fakes listen on 127.0.0.1
		"extraEnv": []map[string]string{
			{"name": "KUBERNETES_SERVICE_HOST", "value": host},
			{"name": "KUBERNETES_SERVICE_PORT", "value": port},
			{"name": "SSL_CERT_DIR", "value": "/etc/tokenmint/ca"}, // see corporateCAValues
		},
		"metrics":     map[string]any{"port": metricsPort},
		"healthProbe": map[string]any{"port": probePort},
		// The chart binds every address; on the host's network, bind loopback only.
		"extraArgs": []string{
			fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort),
			fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort),
		},
		"leaderElection": map[string]any{"leaseDuration": "6s", "renewDeadline": "4s", "retryPeriod": "1s"},
		"readinessProbe": map[string]any{"initialDelaySeconds": 1, "periodSeconds": 1},
		"logLevel":       "debug",
		"logEncoder":     "console",
	}
	for k, v := range corporateCAValues() {
		values[k] = v
	}
	raw, err := yaml.Marshal(values)
	Expect(err).NotTo(HaveOccurred())
	return raw
}

// On failure, show what the manager, the kubelet and the cluster say.
var _ = ReportAfterEach(func(r SpecReport) {
	if !r.Failed() || cp == nil {
		return
	}
	if pod, err := managerPod(); err == nil && theNode != nil {
		AddReportEntry("manager log (tail)", lastLines(containerLog(pod, "manager"), 150))
	}
	for _, args := range [][]string{
		{"get", "pods", "-A", "-o", "wide"},
		{"get", "events", "-A", "--sort-by=.lastTimestamp"},
		{"get", "accesstokens", "-A", "-o", "yaml"},
	} {
		out, _ := execOutput(cp.Kubectl(), append([]string{"--kubeconfig", admin}, args...)...)
		AddReportEntry("kubectl "+args[0]+" "+args[1], out)
	}
})
