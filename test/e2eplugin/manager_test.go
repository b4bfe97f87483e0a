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

package e2eplugin

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	kt "github.com/tokenmint/tokenmint/internal/plugin"
	"github.com/tokenmint/tokenmint/test/controlplane"
	"github.com/tokenmint/tokenmint/test/samples"
)

// startManager runs the manager binary, serving only namespace, and stops it
// when the container's specs are done.
func startManager(namespace string) {
	GinkgoHelper()
	bin := filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", bin, "./cmd")
	build.Dir, build.Stdout, build.Stderr = controlplane.RepoRoot(), GinkgoWriter, GinkgoWriter
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	Expect(build.Run()).To(Succeed())

	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	health := l.Addr().String()
	Expect(l.Close()).To(Succeed())
	log, err := os.Create(filepath.Join(dir, "manager.log"))
	Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command(bin, "--kubeconfig", admin,
		"--operator-namespace", operatorNamespace, "--credentials-namespace", credentialsNamespace,
		"--watch-namespaces", namespace, "--allow-private-destinations", "--min-mint-interval", "1s",
		"--metrics-bind-address", "0", "--health-probe-bind-address", health)
	cmd.Stdout, cmd.Stderr = log, log
	Expect(cmd.Start()).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	DeferCleanup(func() {
		Expect(cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
		Eventually(done, 30*time.Second).Should(Receive())
		_ = log.Close()
	})
	Eventually(func() error {
		select {
		case err := <-done:
			Fail(fmt.Sprintf("the manager exited: %v; see %s", err, log.Name()))
		default:
		}
		resp, err := http.Get("http://" + health + "/readyz")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %d", resp.StatusCode)
		}
		return nil
	}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
}

var _ = Describe("with the manager running", Ordered, func() {
	var (
		pl *placed
		at *tokensv1alpha1.AccessToken
	)

	BeforeAll(func() {
		pl = place(samples.Providers[0]) // cable-transactions
		at = pl.sample.AccessToken
		startManager(at.Namespace)
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), at)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(at.Status.Conditions, tokensv1alpha1.ConditionReady)).To(BeTrue())
		}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
	})

	It("shows the status the manager wrote, and the Secret it wrote, without the token", func() {
		r := plugin("status", at.Name, "-n", at.Namespace, "-o", "json")
		Expect(r.code).To(Equal(0), r.stderr)
		var v kt.StatusView
		Expect(json.Unmarshal([]byte(r.stdout), &v)).To(Succeed())
		Expect(v.Conditions).To(ContainElement(And(
			HaveField("Type", tokensv1alpha1.ConditionReady), HaveField("Status", "True"), HaveField("Reason", tokensv1alpha1.ReasonTokenValid))))
		issued := pl.base.Issued()
		Expect(issued).To(HaveLen(1))
		Expect(v.ExpiresAt.Time).To(BeTemporally("~", issued[0].ExpiresAt, time.Second))
		Expect(v.RenewalTime.Time).To(BeTemporally("<", issued[0].ExpiresAt))
		Expect(v.FailedAttempts).To(BeZero())
		Expect(v.IssuerStatus).To(Equal("Ready True Valid"))
		Expect(v.Secret.Keys).To(ConsistOf(
			kt.KeyView{Key: "token", Bytes: len(issued[0].Value)},
			HaveField("Key", "organization_id"), HaveField("Key", "organization_name")))
		Expect(*v.Secret.FingerprintMatches).To(BeTrue(), "the manager's fingerprint annotation is the status's")
		Expect(v.TokenFingerprint).To(HavePrefix("hmac-sha256:"))

		text := plugin("status", at.Name, "-n", at.Namespace)
		Expect(text.code).To(Equal(0), text.stderr)
		inspect := plugin("inspect", "secret", at.Spec.Secret.Name, "-n", at.Namespace)
		Expect(inspect.code).To(Equal(0), inspect.stderr)
		Expect(inspect.stdout).To(ContainSubstring("(matches the AccessToken's status)"))
		expectNoneOf(r.output()+text.output()+inspect.output(), pl.canaries())
	})

	It("renews through the annotation the manager serves", func() {
		r := plugin("renew", at.Name, "-n", at.Namespace)
		Expect(r.code).To(Equal(0), r.stderr)
		Eventually(func() int { return len(pl.base.Issued()) }, 30*time.Second, 200*time.Millisecond).Should(Equal(2))
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), at)).To(Succeed())
			g.Expect(at.Status.LastRenewalRequest).To(Equal(at.Annotations[tokensv1alpha1.AnnotationRenew]))
		}, 30*time.Second, 200*time.Millisecond).Should(Succeed())

		r = plugin("status", at.Name, "-n", at.Namespace)
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).NotTo(ContainSubstring("Renewal requested"), "the manager acted on it")
		Expect(r.stdout).To(MatchRegexp(`Renewing\s+True\s+Renewed`))
		expectNoneOf(r.output(), pl.canaries())
	})
})
