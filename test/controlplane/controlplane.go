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

// Package controlplane starts a local Kubernetes control plane (etcd and
// kube-apiserver on loopback) for the envtest suites, the end-to-end suite, the
// demo and the benchmark. The binaries are built from Go modules by
// hack/controlplane/build.sh and cached outside the repository.
package controlplane

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// RepoRoot returns the root of the tokenmint source tree this package was built from.
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("controlplane: cannot locate source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Assets returns a directory holding the requested binaries (default:
// kube-apiserver, etcd and kubectl), honouring KUBEBUILDER_ASSETS when it already
// holds them and building what is missing otherwise. Build progress goes to stderr.
func Assets(binaries ...string) (string, error) {
	if len(binaries) == 0 {
		binaries = []string{"kube-apiserver", "etcd", "kubectl"}
	}
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" && hasAll(dir, binaries) {
		return dir, nil
	}
	cmd := exec.Command(filepath.Join(RepoRoot(), "hack", "controlplane", "build.sh"), binaries...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building control plane binaries: %w", err)
	}
	return strings.TrimSpace(out.String()), nil
}

func hasAll(dir string, binaries []string) bool {
	for _, b := range binaries {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
			return false
		}
	}
	return true
}

// ControlPlane is a running etcd and kube-apiserver.
type ControlPlane struct {
	// Config reaches the apiserver as a cluster administrator.
	Config *rest.Config
	// AssetsDir holds the binaries, kubectl included.
	AssetsDir string
	env       *envtest.Environment
}

// Options configure Start.
type Options struct {
	// CRDDirectories are installed before Start returns; default config/crd/bases.
	CRDDirectories []string
	// NoCRDs skips installing CRDs.
	NoCRDs bool
	// APIServerFlags are extra kube-apiserver flags, as name=value.
	APIServerFlags map[string]string
}

// Start builds (if needed) and starts etcd and kube-apiserver on loopback and
// installs tokenmint's CRDs.
func Start(opts Options) (*ControlPlane, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	crds := opts.CRDDirectories
	if len(crds) == 0 && !opts.NoCRDs {
		crds = []string{filepath.Join(RepoRoot(), "config", "crd", "bases")}
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     crds,
		ErrorIfCRDPathMissing: len(crds) > 0,
		BinaryAssetsDirectory: assets,
	}
	env.ControlPlane.GetAPIServer().Configure().Set("bind-address", "127.0.0.1")
	for k, v := range opts.APIServerFlags {
		env.ControlPlane.GetAPIServer().Configure().Set(k, v)
	}
	cfg, err := env.Start()
	if err != nil {
		// A half-started control plane (CRDs refused, say) must not outlive us.
		_ = env.Stop()
		return nil, fmt.Errorf("starting control plane: %w", err)
	}
	return &ControlPlane{Config: cfg, AssetsDir: assets, env: env}, nil
}

// WriteKubeconfig writes a kubeconfig for a cluster administrator to path.
func (c *ControlPlane) WriteKubeconfig(path string) error {
	user, err := c.env.ControlPlane.AddUser(envtest.User{Name: "tokenmint-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding admin user: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("rendering kubeconfig: %w", err)
	}
	return os.WriteFile(path, data, 0o600)
}

// Kubectl returns the path of the kubectl built with the control plane.
func (c *ControlPlane) Kubectl() string { return filepath.Join(c.AssetsDir, "kubectl") }

// ServiceAccountKeyFile is the private key kube-apiserver signs service account
// tokens with (and verifies them by), for a kube-controller-manager's
// --service-account-private-key-file.
func (c *ControlPlane) ServiceAccountKeyFile() string {
	return filepath.Join(c.env.ControlPlane.APIServer.CertDir, "sa-signer.key")
}

// Stop stops kube-apiserver and etcd and removes their data.
func (c *ControlPlane) Stop() error { return c.env.Stop() }

// Helm returns bin/helm, installed by `make test` (or $HELM).
func Helm() (string, error) {
	helm := os.Getenv("HELM")
	if helm == "" {
		helm = filepath.Join(RepoRoot(), "bin", "helm")
	}
	if _, err := os.Stat(helm); err != nil {
		return "", fmt.Errorf("helm is missing: run `make helm` (make test does) or set $HELM: %w", err)
	}
	return helm, nil
}
