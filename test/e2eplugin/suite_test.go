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

// Package e2eplugin runs the built kubectl-tokenmint binary against a local
// control plane with tokenmint's CRDs, as a user would: through its own
// kubeconfig flags, and through kubectl's plugin lookup.
package e2eplugin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/controlplane"
)

const (
	operatorNamespace    = "tokenmint-system"
	credentialsNamespace = "tokenmint-credentials"
	// pluginVersion is stamped into the binary the suite builds.
	pluginVersion = "v0.0.0-e2e"
)

var (
	ctx       context.Context
	cp        *controlplane.ControlPlane
	dir       string
	admin     string // kubeconfig of a cluster administrator
	binary    string // the built kubectl-tokenmint
	k8sClient client.Client
	// beforeCRDs is check's report on the cluster before the CRDs were installed.
	beforeCRDs result
	// statusBeforeCRDs is status's answer then.
	statusBeforeCRDs result
)

func TestPlugin(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "kubectl-tokenmint Suite")
}

var _ = BeforeSuite(func() {
	ctx = context.Background()
	dir = GinkgoT().TempDir()
	Expect(tokensv1alpha1.AddToScheme(scheme.Scheme)).To(Succeed())

	By("building kubectl-tokenmint with its version stamped")
	binary = filepath.Join(dir, "kubectl-tokenmint")
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+pluginVersion, "-o", binary, "./cmd/kubectl-tokenmint")
	build.Dir, build.Stdout, build.Stderr = controlplane.RepoRoot(), GinkgoWriter, GinkgoWriter
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	Expect(build.Run()).To(Succeed())

	By("starting etcd and kube-apiserver on loopback, without CRDs")
	var err error
	cp, err = controlplane.Start(controlplane.Options{NoCRDs: true})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(cp.Stop()).To(Succeed()) })
	admin = filepath.Join(dir, "admin.kubeconfig")
	Expect(cp.WriteKubeconfig(admin)).To(Succeed())
	k8sClient, err = client.New(cp.Config, client.Options{Scheme: scheme.Scheme})
	Expect(err).NotTo(HaveOccurred())

	By("checking the cluster before tokenmint is installed")
	beforeCRDs = plugin("check")
	statusBeforeCRDs = plugin("status", "--all")

	By("installing the CRDs")
	_, err = envtest.InstallCRDs(cp.Config, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join(controlplane.RepoRoot(), "config", "crd", "bases")}, ErrorIfPathMissing: true})
	Expect(err).NotTo(HaveOccurred())
	for _, ns := range []string{operatorNamespace, credentialsNamespace} {
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
})

// result is one run of the plugin.
type result struct {
	stdout, stderr string
	code           int
}

// output is everything the run printed.
func (r result) output() string { return r.stdout + r.stderr }

// plugin runs the built binary as a cluster administrator.
func plugin(args ...string) result {
	return run(exec.Command(binary, append(args, "--kubeconfig", admin)...))
}

func run(cmd *exec.Cmd) result {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		Fail("running " + strings.Join(cmd.Args, " ") + ": " + err.Error())
	}
	GinkgoWriter.Printf("$ %s\n%s%s(exit %d)\n", strings.Join(cmd.Args, " "), r.stdout, r.stderr, r.code)
	return r
}

// newNamespace creates a namespace of its own for a spec.
func newNamespace() string {
	ns := "p-" + rand.String(6)
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	return ns
}

// expectNoneOf fails when text holds any of values.
func expectNoneOf(text string, values []string) {
	GinkgoHelper()
	for _, v := range values {
		if v != "" {
			Expect(text).NotTo(ContainSubstring(v))
		}
	}
}
