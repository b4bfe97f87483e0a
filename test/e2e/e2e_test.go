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
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

const appNamespace = "e2e-apps"

// shortLived is the provider whose tokens live only seconds, to watch a renewal.
const shortLived = "cable-transactions"

var _ = Describe("tokenmint installed with its chart", Ordered, func() {
	type applied struct {
		provider samples.Provider
		fake     *fakes.Base
		sample   *samples.Sample
	}
	var all []applied

	// The fakes live as long as this ordered container: started in BeforeAll,
	// their cleanup runs after the last spec.
	BeforeAll(func() {
		kubectl("create", "namespace", appNamespace)
		for _, p := range samples.Providers {
			fake, base := p.NewFake()
			base.Lifetime = time.Hour
			if p.Name == shortLived {
				// As short as the manager's default renewal floor
				// (--min-renewal-interval, 30 s) lets a token be renewed
				// before it expires: renewed at two thirds, 30 s.
				base.Lifetime = 45 * time.Second
			}
			url := fakes.Start(GinkgoTB(), fake).URL
			s, err := samples.Load(p.File)
			Expect(err).NotTo(HaveOccurred())
			Expect(s.PointAt(url)).To(Succeed())
			s.FillCredentials()
			s.Place(appNamespace, credentialsNamespace, "")

			var manifest bytes.Buffer
			for _, o := range s.Objects() {
				raw, err := yaml.Marshal(o)
				Expect(err).NotTo(HaveOccurred())
				manifest.WriteString("---\n")
				manifest.Write(raw)
			}
			file := filepath.Join(dir, p.File)
			Expect(os.WriteFile(file, manifest.Bytes(), 0o600)).To(Succeed())
			kubectl("apply", "-f", file)
			all = append(all, applied{p, base, s})
		}
	})

	It("serves every sample applied with kubectl", func() {
		for _, a := range all {
			Eventually(func(g Gomega) {
				at := &tokensv1alpha1.AccessToken{}
				g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(a.sample.AccessToken), at)).To(Succeed())
				g.Expect(meta.IsStatusConditionTrue(at.Status.Conditions, tokensv1alpha1.ConditionReady)).To(BeTrue(),
					"%s: %+v", a.provider.Name, at.Status.Conditions)
				s := &corev1.Secret{}
				g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: appNamespace, Name: at.Spec.Secret.Name}, s)).To(Succeed())
				issued := a.fake.Issued()
				g.Expect(issued).NotTo(BeEmpty())
				g.Expect(string(s.Data[secret.Key(at)])).To(Equal(issued[len(issued)-1].Value))
			}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
		}
		out := kubectl("get", "accesstokens", "-n", appNamespace)
		GinkgoWriter.Println(out)
		Expect(out).To(ContainSubstring("READY"))
	})

	It("lets a Pod mount the generated Secret", func() {
		pod := `apiVersion: v1
kind: Pod
metadata: {name: app, namespace: ` + appNamespace + `}
spec:
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "cat /var/run/tokens/token; sleep 3600"]
    volumeMounts: [{name: token, mountPath: /var/run/tokens, readOnly: true}]
  volumes:
  - name: token
    secret: {secretName: cable-transactions-token}
`
		file := filepath.Join(dir, "pod.yaml")
		Expect(os.WriteFile(file, []byte(pod), 0o600)).To(Succeed())
		Expect(kubectl("apply", "-f", file)).To(ContainSubstring("pod/app created"))
	})

	It("renews a token before it expires", func() {
		a := all[0]
		Expect(a.provider.Name).To(Equal(shortLived))
		before := len(a.fake.Issued())
		Eventually(func() int { return len(a.fake.Issued()) }, 60*time.Second, 250*time.Millisecond).Should(BeNumerically(">", before))
		Eventually(func(g Gomega) {
			s := &corev1.Secret{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: appNamespace, Name: a.sample.AccessToken.Spec.Secret.Name}, s)).To(Succeed())
			issued := a.fake.Issued()
			g.Expect(string(s.Data["token"])).To(Equal(issued[len(issued)-1].Value))
			g.Expect(issued[len(issued)-2].ExpiresAt).To(BeTemporally(">", time.Now()), "renewed only after the old token expired")
		}, 10*time.Second, 250*time.Millisecond).Should(Succeed())
	})

	It("mints nothing when the manager restarts while tokens are valid", func() {
		calls := map[string]int{}
		for _, a := range all[1:] {
			calls[a.provider.Name] = a.fake.Calls()
		}
		manager.stop()
		logPath := filepath.Join(dir, "manager.log")
		offset := len(must(os.ReadFile(logPath)))
		manager = startManager()
		// Every AccessToken is reconciled once the new process leads.
		Eventually(func() string { return string(must(os.ReadFile(logPath))[offset:]) }, 30*time.Second).
			Should(ContainSubstring("Successfully acquired lease"))
		Consistently(func() map[string]int {
			now := map[string]int{}
			for _, a := range all[1:] {
				now[a.provider.Name] = a.fake.Calls()
			}
			return now
		}, 5*time.Second, 250*time.Millisecond).Should(Equal(calls))
	})

	It("fails over to a standby when the leader dies, renewing on time and minting nothing twice", func() {
		standby := startManagerLogging("standby.log")
		Consistently(standby.leads, 3*time.Second, 250*time.Millisecond).Should(BeFalse(), "two leaders")

		a := all[0]
		manager.kill()
		manager = standby
		Eventually(standby.leads, 20*time.Second, 250*time.Millisecond).Should(BeTrue())

		issued := a.fake.Issued()
		last := issued[len(issued)-1]
		Eventually(func() int { return len(a.fake.Issued()) }, time.Until(last.ExpiresAt)+5*time.Second, 250*time.Millisecond).
			Should(BeNumerically(">", len(issued)), "no renewal after the failover")
		next := a.fake.Issued()[len(issued)]
		Expect(next.IssuedAt).To(BeTemporally("<", last.ExpiresAt), "renewed only after the token expired")

		By("never minting two tokens for one renewal")
		issued = a.fake.Issued()
		for i := 1; i < len(issued); i++ {
			Expect(issued[i].IssuedAt.Sub(issued[i-1].IssuedAt)).To(BeNumerically(">=", 8*time.Second),
				"tokens %d and %d were minted %v apart", i-1, i, issued[i].IssuedAt.Sub(issued[i-1].IssuedAt))
		}
	})

	It("finishes a call cut by SIGTERM and leaves the Secret whole", func() {
		var a applied
		for _, x := range all {
			if x.provider.Name == "banking-oauth-password" {
				a = x
			}
		}
		entered, release := make(chan struct{}, 1), make(chan struct{})
		a.fake.SetFaultHook(func(*http.Request) *fakes.Fault {
			entered <- struct{}{}
			<-release // a slow provider: answers once the manager has been told to stop
			return nil
		})
		DeferCleanup(func() { a.fake.SetFaultHook(nil) })
		before := len(a.fake.Issued())

		kubectl("annotate", "accesstoken", a.sample.AccessToken.Name, "-n", appNamespace,
			tokensv1alpha1.AnnotationRenew+"=sigterm-test", "--overwrite")
		Eventually(entered, 20*time.Second).Should(Receive())
		Expect(manager.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
		time.AfterFunc(2*time.Second, func() { close(release) })
		var exit error
		Eventually(manager.done, 40*time.Second).Should(Receive(&exit))
		Expect(exit).NotTo(HaveOccurred())

		issued := a.fake.Issued()
		Expect(issued).To(HaveLen(before + 1))
		at := &tokensv1alpha1.AccessToken{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(a.sample.AccessToken), at)).To(Succeed())
		s := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: appNamespace, Name: at.Spec.Secret.Name}, s)).To(Succeed())
		Expect(string(s.Data["token"])).To(Equal(issued[len(issued)-1].Value), "the Secret lost the minted token")
		Expect(s.Annotations[secret.AnnotationFingerprint]).To(Equal(at.Status.TokenFingerprint), "status and Secret disagree")
		Expect(at.Status.LastRenewalRequest).To(Equal("sigterm-test"))

		manager = startManager()
		Consistently(func() int { return len(a.fake.Issued()) }, 5*time.Second, 250*time.Millisecond).Should(Equal(before + 1))
	})

	It("serves metrics only to a token the API authenticates, of an identity RBAC lets read them", func() {
		token := func(name string) string {
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: operatorNamespace}}
			Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, sa))).To(Succeed())
			tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}
			Expect(k8sClient.SubResource("token").Create(ctx, sa, tr)).To(Succeed())
			Expect(tr.Status.Token).NotTo(BeEmpty())
			return tr.Status.Token
		}
		// The manager serves metrics with a certificate it signs itself.
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed, loopback
		scrapeQuery := func(bearer, query string) (int, string) {
			req := must(http.NewRequestWithContext(ctx, http.MethodGet, manager.metrics+query, nil))
			if bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			resp := must(hc.Do(req))
			defer resp.Body.Close()
			return resp.StatusCode, string(must(io.ReadAll(resp.Body)))
		}
		scrape := func(bearer string) (int, string) { return scrapeQuery(bearer, "") }

		reader := token(scraper) // bound by the chart's metrics.readers
		code, body := scrape(reader)
		Expect(code).To(Equal(http.StatusOK), body)
		Expect(body).To(ContainSubstring(`controller_runtime_reconcile_total{controller="accesstoken"`))
		// A scrape naming its families gets those only, still reviewed first.
		const named = "?name[]=controller_runtime_reconcile_total"
		code, body = scrapeQuery(reader, named)
		Expect(code).To(Equal(http.StatusOK), body)
		Expect(body).To(ContainSubstring(`controller_runtime_reconcile_total{controller="accesstoken"`))
		Expect(body).NotTo(ContainSubstring("tokenmint_"))
		code, _ = scrapeQuery("", named)
		Expect(code).To(Equal(http.StatusUnauthorized))
		denied := token("not-a-reader")
		code, body = scrape(denied)
		Expect(code).To(Equal(http.StatusForbidden), body)
		Expect(body).NotTo(ContainSubstring(denied))
		code, _ = scrape("CANARY-not-a-token")
		Expect(code).To(Equal(http.StatusUnauthorized))
		code, _ = scrape("")
		Expect(code).To(Equal(http.StatusUnauthorized))
		Expect(string(must(os.ReadFile(manager.log.Name())))).NotTo(ContainSubstring("CANARY-not-a-token"))
	})

	It("runs with no more permissions than the chart grants", func() {
		can := func(verb, resource string) string {
			out, _ := execOutput(cp.Kubectl(), "--kubeconfig", admin, "auth", "can-i", verb, resource, "--as", serviceAccount, "-A")
			return strings.TrimSpace(out)
		}
		Expect(can("patch", "secrets")).To(Equal("yes"))
		Expect(can("watch", "accesstokens.tokens.tokenmint.dev")).To(Equal("yes"))
		for _, denied := range [][2]string{
			{"create", "pods"}, {"delete", "deployments.apps"}, {"get", "configmaps"},
			{"create", "accesstokens.tokens.tokenmint.dev"}, {"update", "tokenissuers.tokens.tokenmint.dev"},
			{"create", "clusterrolebindings.rbac.authorization.k8s.io"},
		} {
			Expect(can(denied[0], denied[1])).To(Equal("no"), "%s %s", denied[0], denied[1])
		}
	})
})

// historyColumns is the jsonpath docs/operations.md gives to follow a move.
const historyColumns = `jsonpath={range .status.history[*]}{.issuer.kind}/{.issuer.name} {.fingerprint} issued {.issuedAt} replaced {.replacedAt} revoked {.revokedAt}{"\n"}{end}`

var _ = Describe("moving an AccessToken to another issuer", func() {
	It("switches the Secret to the new issuer's token with one kubectl apply, never leaving it without a valid token", func() {
		const ns = "e2e-move"
		kubectl("create", "namespace", ns)
		var p samples.Provider
		for _, x := range samples.Providers {
			if x.Name == "oauth2-client-credentials" {
				p = x
			}
		}
		// Two ClusterTokenIssuers of the sample, each served by its own fake;
		// both read the sample's credential Secret.
		start := func(suffix string) (*fakes.Base, *samples.Sample) {
			fake, base := p.NewFake()
			base.Lifetime = time.Hour
			url := fakes.Start(GinkgoTB(), fake).URL
			s, err := samples.Load(p.File)
			Expect(err).NotTo(HaveOccurred())
			Expect(s.PointAt(url)).To(Succeed())
			s.FillCredentials()
			s.Place(ns, credentialsNamespace, suffix)
			return base, s
		}
		apply := func(name string, objs ...client.Object) {
			var manifest bytes.Buffer
			for _, o := range objs {
				raw, err := yaml.Marshal(o)
				Expect(err).NotTo(HaveOccurred())
				manifest.WriteString("---\n")
				manifest.Write(raw)
			}
			file := filepath.Join(dir, name)
			Expect(os.WriteFile(file, manifest.Bytes(), 0o600)).To(Succeed())
			kubectl("apply", "-f", file)
		}
		fakeA, a := start("-move-a")
		fakeB, b := start("-move-b")
		apply("move-a.yaml", a.Objects()...)
		apply("move-b.yaml", b.ClusterTokenIssuer)

		token := func() string {
			sec := &corev1.Secret{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: a.AccessToken.Spec.Secret.Name}, sec); err != nil {
				return ""
			}
			return string(sec.Data["token"])
		}
		Eventually(fakeA.Issued, 30*time.Second, 250*time.Millisecond).Should(HaveLen(1))
		Eventually(token, 10*time.Second, 100*time.Millisecond).Should(Equal(fakeA.Issued()[0].Value))
		tokenA := token()

		By("watching the Secret while issuerRef and parameters change in one apply")
		var gaps atomic.Int32
		done, finished := make(chan struct{}), make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(finished)
			for {
				select {
				case <-done:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if v := token(); !fakeA.Valid(v) && !fakeB.Valid(v) {
					gaps.Add(1)
				}
			}
		}()
		moved := a.AccessToken.DeepCopy()
		moved.Spec.IssuerRef.Name = b.ClusterTokenIssuer.Name
		moved.Spec.Parameters = map[string]apiextensionsv1.JSON{"scopes": {Raw: []byte(`["orders.write"]`)}}
		apply("move-accesstoken.yaml", moved)
		Eventually(fakeB.Issued, 30*time.Second, 250*time.Millisecond).Should(HaveLen(1))
		Eventually(token, 10*time.Second, 100*time.Millisecond).Should(Equal(fakeB.Issued()[0].Value))
		Eventually(func() string {
			return kubectl("get", "accesstoken", a.AccessToken.Name, "-n", ns, "-o", historyColumns)
		}, 10*time.Second, 250*time.Millisecond).Should(And(
			MatchRegexp(`(?m)^ClusterTokenIssuer/`+b.ClusterTokenIssuer.Name+` hmac-sha256:\S+ issued \S+ replaced  revoked $`),
			MatchRegexp(`(?m)^ClusterTokenIssuer/`+a.ClusterTokenIssuer.Name+` hmac-sha256:\S+ issued \S+ replaced \S+ revoked $`)))
		GinkgoWriter.Println(kubectl("get", "accesstoken", a.AccessToken.Name, "-n", ns, "-o", "wide"))
		close(done)
		<-finished
		Expect(gaps.Load()).To(BeZero(), "the Secret held no valid token at some moment")
		Expect(fakeB.Issued()).To(HaveLen(1))
		Expect(fakeA.Issued()).To(HaveLen(1), "the old issuer renews nothing")
		Expect(fakeA.Valid(tokenA)).To(BeTrue(), "revoked only after the old issuer's revokeGracePeriod (5m)")
	})
})

func must[T any](v T, err error) T {
	Expect(err).NotTo(HaveOccurred())
	return v
}
