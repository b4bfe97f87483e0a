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
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/tokenmint/tokenmint/test/controlplane"
	testrelease "github.com/tokenmint/tokenmint/test/release"
)

// upgradeNamespace holds the AccessToken and the pod that live through the
// upgrade from the previous release.
const upgradeNamespace = "node-upgrade"

// publishReleases starts a registry on 127.0.0.1 that accepts pushes and
// releases to it, with make release and a throwaway key, the previous
// release (built from its commit, cached outside the repository) and this
// tree, at the version of dist/chart/Chart.yaml: each an image for this
// machine's architecture only, and no plugin archives, which hack/release's
// own test covers. cosign verifies the images and charts.
func publishReleases() {
	releases = testrelease.StartRegistry(GinkgoTB())
	tools := testrelease.NewTools(GinkgoTB())
	prev := testrelease.PreparePrevious(GinkgoTB(), testrelease.PreviousCommit, testrelease.PreviousVersion, GinkgoWriter)
	previous = testrelease.Make(GinkgoTB(), testrelease.Options{Version: prev.Version, Registry: releases.Host + "/tokenmint",
		Args: prev.Args, Tools: tools})
	fmt.Fprintf(GinkgoWriter, "released %s (commit %s) in %s\n", previous.Version, prev.Commit, previous.Took.Round(time.Second))
	version := chartVersion()
	Expect(version).NotTo(Equal(previous.Version), "this tree's chart has the previous release's version")
	current = testrelease.Make(GinkgoTB(), testrelease.Options{Version: version, Registry: releases.Host + "/tokenmint",
		Args: []string{"-platforms", "linux/" + runtime.GOARCH, "-plugin-platforms", "none"}, Tools: tools})
	fmt.Fprintf(GinkgoWriter, "released %s in %s\n", current.Version, current.Took.Round(time.Second))

	// What is installed is verified first, as docs/install.md has users do.
	for _, r := range []*testrelease.Release{previous, current} {
		for _, ref := range []string{r.ImageRef(), r.Registry + "/charts/tokenmint@" + r.Notes["chart"].Digest} {
			out, err := tools.Command(dir, tools.Cosign, "verify", "--key", tools.Pub, "--insecure-ignore-tlog=true",
				"--allow-insecure-registry", "--allow-http-registry", ref).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "cosign verify %s:\n%s", ref, out)
		}
	}
}

// chartVersion is the version of this tree's chart.
func chartVersion() string {
	data, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "dist", "chart", "Chart.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var chart struct{ Version string }
	Expect(yaml.Unmarshal(data, &chart)).To(Succeed())
	Expect(chart.Version).NotTo(BeEmpty())
	return chart.Version
}

// helmWithReleaseTools runs helm with the configuration and caches of the
// releases' tools, not of $HOME.
func helmWithReleaseTools(args ...string) string {
	cmd := current.Tools.Command(dir, helmBinary(), args...)
	out, err := cmd.CombinedOutput()
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "helm %v:\n%s", args, out)
	return string(out)
}

// expectManagerRunning waits for the manager of release r to be Ready, and
// checks that it runs the image the release notes name, by digest, which
// containerd pulled from the registry over plain HTTP: nothing was imported
// into this node.
func expectManagerRunning(r *testrelease.Release) {
	want := r.ImageRef()
	var pod *corev1.Pod
	Eventually(func(g Gomega) {
		var err error
		pod, err = managerPod()
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(pod.Spec.Containers[0].Image).To(Equal(want))
		g.Expect(pod).To(beReady())
	}, 2*time.Minute, 250*time.Millisecond).Should(Succeed())
	Expect(pod.Status.ContainerStatuses).To(ContainElement(HaveField("ImageID", HaveSuffix("@"+r.Notes["image"].Digest))),
		"the manager's container runs the image the release notes name")
	manifest := "/v2/tokenmint/tokenmint/manifests/" + r.Notes["image"].Digest
	Expect(releases.Requests()).To(ContainElement(HaveField("Path", manifest)),
		"containerd pulled the image index by digest from the release's registry")
	fmt.Fprintf(GinkgoWriter, "the manager of release %s runs %s\n", r.Version, want)
}

// upgradeProof is what a pod read, and what the provider issued, under the
// previous release.
type upgradeProof struct {
	issuer  issuer
	token   string // the one token issued
	calls   int    // the provider's calls so far
	pod     types.UID
	secret  types.UID
	watched *secretTimeline
}

// beforeUpgrade creates, under the previous release, an AccessToken and a pod
// that mounts its Secret, and waits for the pod to read the issued token.
func beforeUpgrade() *upgradeProof {
	kubectl("create", "namespace", upgradeNamespace)
	iss := startIssuer(upgradeNamespace, "upgrade", longLifetime)
	apply("upgrade-token", iss.accessToken("upgrade", 0))
	apply("upgrade-app", mountingApp(upgradeNamespace, "upgrade-app", "upgrade-token"))
	p := &upgradeProof{issuer: iss}
	Eventually(func(g Gomega) {
		issued := iss.fake.Issued()
		g.Expect(issued).To(HaveLen(1))
		pod, err := onlyPod(upgradeNamespace, "upgrade-app")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(latestFingerprint(pod, "app")).To(Equal(fingerprint(issued[0].Value)))
		p.token, p.pod = issued[0].Value, pod.UID
	}, 2*time.Minute, 200*time.Millisecond).Should(Succeed())
	secret := &corev1.Secret{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: upgradeNamespace, Name: "upgrade-token"}, secret)).To(Succeed())
	p.secret = secret.UID
	p.calls = iss.fake.Calls()
	p.watched = watchSecret(upgradeNamespace, "upgrade-token", "token")
	return p
}

// expectNoMintAndNoGap checks, once the upgraded manager has decided that
// the token is still valid, that the provider was not called again and that
// the pod read the same token all along: one fingerprint in its log, the same
// pod, never restarted, and the same Secret, never replaced.
func (p *upgradeProof) expectNoMintAndNoGap() {
	pod, err := managerPod()
	Expect(err).NotTo(HaveOccurred())
	Eventually(func(g Gomega) {
		decided := false
		for _, l := range strings.Split(containerLog(pod, "manager"), "\n") {
			if strings.Contains(l, "decided") && strings.Contains(l, upgradeNamespace) && strings.Contains(l, "TokenValid") {
				decided = true
			}
		}
		g.Expect(decided).To(BeTrue(), "the upgraded manager has not yet found the token valid")
	}, time.Minute, 250*time.Millisecond).Should(Succeed())

	Expect(p.issuer.fake.Calls()).To(Equal(p.calls), "the upgraded manager called the provider for a valid token")
	Expect(p.issuer.fake.Issued()).To(HaveLen(1))
	Expect(p.issuer.fake.Valid(p.token)).To(BeTrue())

	app, err := onlyPod(upgradeNamespace, "upgrade-app")
	Expect(err).NotTo(HaveOccurred())
	Expect(app.UID).To(Equal(p.pod), "the pod was replaced")
	Expect(app.Status.ContainerStatuses).To(ConsistOf(HaveField("RestartCount", BeZero())))
	seen, err := fingerprintsSeen(app, "app")
	Expect(err).NotTo(HaveOccurred())
	Expect(seen).To(ConsistOf(HaveField("Text", fingerprint(p.token))),
		"the pod read something other than the one token, or lost it, across the upgrade")
	secret := &corev1.Secret{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: upgradeNamespace, Name: "upgrade-token"}, secret)).To(Succeed())
	Expect(secret.UID).To(Equal(p.secret), "the Secret was replaced")
	Expect(p.watched.all()).To(ConsistOf(HaveField("Fingerprint", fingerprint(p.token))),
		"the Secret held another token, or none, across the upgrade")
}

// pullReleasedChart pulls this tree's released chart into a new directory and
// returns the chart's directory.
func pullReleasedChart() string {
	into := filepath.Join(dir, "released-chart")
	Expect(os.MkdirAll(into, 0o755)).To(Succeed())
	helmWithReleaseTools("pull", current.Chart(), "--version", current.Version, "--plain-http", "--untar", "--untardir", into)
	return filepath.Join(into, "tokenmint")
}
