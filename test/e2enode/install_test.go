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

package e2enode

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/plugin"
	"github.com/tokenmint/tokenmint/test/controlplane"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

const walkNamespace = "walkthrough"

// walkTheInstallDocs ends the suite as an installation ends in the README and
// docs/install.md, on the release BeforeSuite installed from the registry: a
// first token whose `kubectl tokenmint status` says Ready, a `helm
// upgrade` that changes a CRD, `helm uninstall` (which keeps the CRDs, the
// AccessTokens and their Secrets), and the AccessToken deleted afterwards with
// the patch docs/install.md gives for a manager that is gone. It runs last
// because it uninstalls the manager every other spec uses.
func walkTheInstallDocs() {
	By("a first token: a sample applied, kubectl tokenmint status says Ready")
	kubectl("create", "namespace", walkNamespace)
	p := samples.Providers[slices.IndexFunc(samples.Providers, func(p samples.Provider) bool { return p.Name == "oauth2-client-credentials" })]
	fake, base := p.NewFake()
	base.Lifetime = longLifetime
	s, err := samples.Load(p.File)
	Expect(err).NotTo(HaveOccurred())
	Expect(s.PointAt(fakes.Start(GinkgoTB(), fake).URL)).To(Succeed())
	s.FillCredentials()
	s.Place(walkNamespace, credentialsNamespace, "-walk")
	apply("walkthrough", s.Objects()...)

	kubectlTokenmint := filepath.Join(dir, "kubectl-tokenmint")
	build := exec.Command("go", "build", "-o", kubectlTokenmint, "./cmd/kubectl-tokenmint")
	build.Dir = controlplane.RepoRoot()
	out, err := build.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "%s", out)
	at := s.AccessToken
	Eventually(func(g Gomega) {
		out, err := exec.Command(kubectlTokenmint, "--kubeconfig", admin, "status", at.Name, "-n", walkNamespace, "-o", "json").Output()
		g.Expect(err).NotTo(HaveOccurred())
		var v plugin.StatusView
		g.Expect(json.Unmarshal(out, &v)).To(Succeed())
		g.Expect(v.Conditions).To(ContainElement(And(
			HaveField("Type", tokensv1alpha1.ConditionReady), HaveField("Status", "True"))))
		g.Expect(v.Secret.Exists).To(BeTrue())
	}, 60*time.Second, time.Second).Should(Succeed())
	Expect(base.Issued()).To(HaveLen(1))

	By("helm upgrade with the released chart, its AccessToken CRD changed: the CRD is upgraded")
	chart := pullReleasedChart()
	crdFile := filepath.Join(chart, "templates", "crds", "tokens.tokenmint.dev_accesstokens.yaml")
	crd, err := os.ReadFile(crdFile)
	Expect(err).NotTo(HaveOccurred())
	const before, after = "renewBefore renews the token", "renewBefore (upgraded) renews the token"
	Expect(string(crd)).To(ContainSubstring(before))
	Expect(os.WriteFile(crdFile, []byte(strings.Replace(string(crd), before, after, 1)), 0o600)).To(Succeed())
	run(helmBinary(), "upgrade", release, chart, "--kubeconfig", admin, "--namespace", operatorNamespace, "--reuse-values")
	Expect(kubectl("get", "crd", "accesstokens.tokens.tokenmint.dev", "-o", "yaml")).To(ContainSubstring(after))
	Eventually(managerPod, 2*time.Minute, 250*time.Millisecond).Should(beReady())

	By("helm uninstall: the manager goes, the CRDs, the AccessToken and its Secret stay")
	run(helmBinary(), "uninstall", release, "--kubeconfig", admin, "--namespace", operatorNamespace, "--wait")
	Eventually(func() error { _, err := managerPod(); return err }, 2*time.Minute, time.Second).Should(HaveOccurred())
	kubectl("get", "crd", "accesstokens.tokens.tokenmint.dev", "tokenissuers.tokens.tokenmint.dev",
		"clustertokenissuers.tokens.tokenmint.dev", "clusteraccesstokens.tokens.tokenmint.dev")
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), &tokensv1alpha1.AccessToken{})).To(Succeed())
	kubectl("get", "secret", "-n", walkNamespace, at.Spec.Secret.Name)

	By("the AccessToken, whose revoke finalizer has no manager left, deleted with the documented patch")
	kubectl("delete", "accesstoken", "-n", walkNamespace, at.Name, "--wait=false")
	left := &tokensv1alpha1.AccessToken{}
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), left)).To(Succeed())
	Expect(left.Finalizers).To(Equal([]string{"tokens.tokenmint.dev/revoke"}), "no manager: the finalizer stays")
	kubectl("patch", "accesstoken", "-n", walkNamespace, at.Name, "--type=json", "-p",
		`[{"op": "test", "path": "/metadata/finalizers", "value": ["tokens.tokenmint.dev/revoke"]}, {"op": "remove", "path": "/metadata/finalizers"}]`)
	Eventually(func() bool {
		return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), &tokensv1alpha1.AccessToken{}))
	}, 30*time.Second, 250*time.Millisecond).Should(BeTrue())
	docs, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "docs", "install.md"))
	Expect(err).NotTo(HaveOccurred())
	Expect(string(docs)).To(ContainSubstring(`{"op": "test", "path": "/metadata/finalizers", "value": ["tokens.tokenmint.dev/revoke"]}`),
		"the patch is the one docs/install.md gives")
	Expect(string(docs)).To(ContainSubstring(`{"op": "remove", "path": "/metadata/finalizers"}`))
}
