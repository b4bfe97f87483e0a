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

package e2e

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/tokenmint/tokenmint/test/controlplane"
)

// lastApplied is the annotation client-side kubectl apply records the whole
// applied object in; the API server refuses annotations over 256 KiB in all.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// These specs apply the repository's files as a user or a GitOps tool that
// applies client-side would: kubectl apply without --server-side.
var _ = Describe("the repository's manifests applied with client-side kubectl apply", func() {
	It("takes every CRD, recording it in the last-applied annotation", func() {
		files, err := filepath.Glob(filepath.Join(controlplane.RepoRoot(), "config", "crd", "bases", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).NotTo(BeEmpty())
		for _, f := range files {
			// The chart created the CRD without the annotation: apply adds
			// it, so the whole CRD must fit in it.
			out, err := execOutput(cp.Kubectl(), "--kubeconfig", admin, "apply", "-f", f)
			Expect(err).NotTo(HaveOccurred(), "kubectl apply -f %s:\n%s", filepath.Base(f), out)
			Expect(out).To(ContainSubstring("customresourcedefinition.apiextensions.k8s.io/"))

			raw, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			crd := &metav1.PartialObjectMetadata{}
			Expect(yaml.Unmarshal(raw, crd)).To(Succeed())
			name := crd.Name
			Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, crd)).To(Succeed())
			Expect(crd.Annotations).To(HaveKey(lastApplied), "%s was applied without recording it", name)
		}
	})

	It("takes every sample as it is in config/samples (a server-side dry run, so nothing is created)", func() {
		// The samples' namespaces: default, the chart's credentials
		// namespace, and the team of the ClusterAccessToken sample.
		_, _ = execOutput(cp.Kubectl(), "--kubeconfig", admin, "create", "namespace", "team-a")
		files, err := filepath.Glob(filepath.Join(controlplane.RepoRoot(), "config", "samples", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).NotTo(BeEmpty())
		for _, f := range files {
			out, err := execOutput(cp.Kubectl(), "--kubeconfig", admin, "apply", "--dry-run=server", "-f", f)
			Expect(err).NotTo(HaveOccurred(), "kubectl apply -f %s:\n%s", filepath.Base(f), out)
			Expect(out).To(ContainSubstring("(server dry run)"))
		}
	})
})
