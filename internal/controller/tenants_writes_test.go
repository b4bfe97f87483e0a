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
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/test/fakes"
)

// secretWrites counts, through watches on the apiserver, every write of a
// Secret the manager makes for one namespace's AccessTokens: their Secrets in
// the namespace and their state Secrets in the operator namespace.
type secretWrites struct {
	mu                 sync.Mutex
	writes, stateCount int
	bytes              int
}

func (w *secretWrites) add(s *corev1.Secret, state bool) {
	n := 0
	for k, v := range s.Data {
		n += len(k) + len(v)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	w.bytes += n
	if state {
		w.stateCount++
	}
}

func (w *secretWrites) get() (writes, stateWrites, bytes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes, w.stateCount, w.bytes
}

// watchSecretWrites starts counting the writes of Secrets for namespace ns.
func watchSecretWrites(ns string) *secretWrites {
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme.Scheme})
	Expect(err).NotTo(HaveOccurred())
	w := &secretWrites{}
	for _, watched := range []string{ns, operatorNamespace} {
		list := &corev1.SecretList{}
		Expect(wc.List(ctx, list, client.InNamespace(watched))).To(Succeed())
		wi, err := wc.Watch(ctx, &corev1.SecretList{}, client.InNamespace(watched),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(wi.Stop)
		state := watched == operatorNamespace
		go func() {
			for ev := range wi.ResultChan() {
				s, ok := ev.Object.(*corev1.Secret)
				if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
					continue
				}
				if state && !strings.HasPrefix(s.Annotations[secret.AnnotationAccessToken], ns+"/") {
					continue
				}
				w.add(s, state)
			}
		}()
	}
	return w
}

// quiet waits until the manager has acted on the last change: the Secret
// writes, the calls and the statuses of ats have not moved for a second.
func quiet(w *secretWrites, calls func() int, ats ...*tokensv1alpha1.AccessToken) {
	snapshot := func() string {
		writes, _, _ := w.get()
		s := fmt.Sprint(writes, calls())
		for _, at := range ats {
			cur := &tokensv1alpha1.AccessToken{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(at), cur); err == nil {
				raw, _ := json.Marshal(cur.Status)
				s += string(raw)
			}
		}
		return s
	}
	last, since := "", time.Now()
	EventuallyWithOffset(1, func() bool {
		if cur := snapshot(); cur != last {
			last, since = cur, time.Now()
			return false
		}
		return time.Since(since) > time.Second
	}, 60*time.Second, 100*time.Millisecond).Should(BeTrue())
}

// fatTokens is a token endpoint answering what costs the most to store: 15 KiB
// tokens that live a second, a 15 KiB refresh token, 32 fields of 4,000
// characters to copy; its revocation endpoint always fails.
type fatTokens struct {
	mints, revokes atomic.Int32
}

func (f *fatTokens) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/revoke" {
		f.revokes.Add(1)
		http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	f.mints.Add(1)
	token := "fat-" + rand.String(16) + strings.Repeat("a", 15<<10)
	refresh := "fat-refresh-" + rand.String(16) + strings.Repeat("r", 15<<10)
	// Shown nowhere, like every token the suite's fakes issue.
	addCanaries(token, refresh)
	body := map[string]any{"access_token": token, "refresh_token": refresh, "expires_in": 1}
	for i := range 32 {
		body[fmt.Sprintf("f%02d", i)] = strings.Repeat(fmt.Sprint(i%10), 4000)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func fatTokensSpec(url string) tokensv1alpha1.IssuerSpec {
	spec := tokensv1alpha1.IssuerSpec{
		Request: tokensv1alpha1.RequestSpec{
			URL:  url + "/token",
			Body: &tokensv1alpha1.BodySpec{Form: []tokensv1alpha1.FormField{{Name: "grant_type", ValueSource: tokensv1alpha1.ValueSource{Value: ptr.To("client_credentials")}}}},
		},
		Response: tokensv1alpha1.ResponseSpec{
			Token:        "access_token",
			Expiry:       &tokensv1alpha1.ExpirySpec{Path: "expires_in", Format: tokensv1alpha1.ExpiryRelativeSeconds},
			RefreshToken: &tokensv1alpha1.RefreshTokenSpec{Path: "refresh_token"},
		},
		Revoke: &tokensv1alpha1.RequestSpec{
			URL: url + "/revoke",
			Body: &tokensv1alpha1.BodySpec{Form: []tokensv1alpha1.FormField{
				{Name: "token", ValueSource: tokensv1alpha1.ValueSource{Issued: tokensv1alpha1.IssuedAccessToken}}}},
		},
		AllowInsecureHTTP: true,
	}
	for i := range 32 {
		spec.Response.Copy = append(spec.Response.Copy, tokensv1alpha1.CopyField{Key: fmt.Sprintf("f%02d", i), Path: fmt.Sprintf("f%02d", i)})
	}
	return spec
}

// sharedIssuer is an admin's ClusterTokenIssuer on a transactions fake, open
// to the namespaces named.
func sharedIssuer(namespaces ...string) (*tokensv1alpha1.ClusterTokenIssuer, *fakes.TransactionAPI) {
	fake := fakes.NewTransactionAPI(canaryAuthToken)
	fake.Lifetime = time.Hour
	url := serveFake(fake, &fake.Base)
	suffix := "-" + rand.String(6)
	auth := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cable-auth" + suffix, Namespace: credentialsNamespace},
		StringData: map[string]string{"token": canaryAuthToken}}
	Expect(k8sClient.Create(ctx, auth)).To(Succeed())
	DeferCleanup(k8sClient.Delete, ctx, auth)
	cti := &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "shared" + suffix},
		Spec: tokensv1alpha1.ClusterTokenIssuerSpec{IssuerSpec: transactionsSpec(url),
			AllowedNamespaces: &tokensv1alpha1.AllowedNamespaces{Names: namespaces}}}
	renameSecretRefs(&cti.Spec.IssuerSpec, suffix)
	Expect(k8sClient.Create(ctx, cti)).To(Succeed())
	DeferCleanup(func() { _ = k8sClient.Delete(ctx, cti) })
	return cti, fake
}

func newNamespace(prefix string) string {
	ns := prefix + rand.String(6)
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	return ns
}

func onIssuer(ns, name string, cti *tokensv1alpha1.ClusterTokenIssuer) *tokensv1alpha1.AccessToken {
	at := &tokensv1alpha1.AccessToken{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: tokensv1alpha1.AccessTokenSpec{
			IssuerRef: tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: cti.Name},
			Secret:    tokensv1alpha1.SecretTemplate{Name: name + "-token"},
		},
	}
	Expect(k8sClient.Create(ctx, at)).To(Succeed())
	return at
}

// Budgets the specs below restart the manager with: small enough for a few
// AccessTokens to reach them within the specs' minutes.
const (
	specWriteBytesPerMinute = 1 << 20
	specWriteBurstBytes     = 4 << 20
	specMintRate            = 1.0
	specMintBurst           = 100
)

// withBudgets restarts the manager with the specs' budgets, and with the
// defaults again when the spec ends.
func withBudgets() {
	mgr.stop()
	mgr = startManagerWith(func(c *Config) {
		c.NamespaceWriteBytesPerMinute, c.NamespaceWriteBurstBytes = specWriteBytesPerMinute, specWriteBurstBytes
		c.NamespaceMintRate, c.NamespaceMintBurst = specMintRate, specMintBurst
	})
	DeferCleanup(func() {
		mgr.stop()
		mgr = startManager()
	})
}

var _ = Describe("a tenant's writes and mints", func() {
	It("cannot fill etcd with a provider answering expires_in: 1", func() {
		// Enough that the bytes written (each mint about 140 KiB of Secret and
		// 64 KiB of state at most) outrun the budget within the window.
		const tokens = 10
		simulated := 2 * time.Minute
		withBudgets()
		provider := &fatTokens{}
		srv := newServer(provider)
		srv.Start()
		DeferCleanup(srv.Close)
		ns := newNamespace("fat-")
		writes := watchSecretWrites(ns)
		Expect(k8sClient.Create(ctx, &tokensv1alpha1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "fat", Namespace: ns},
			Spec: fatTokensSpec(srv.URL)})).To(Succeed())
		var ats []*tokensv1alpha1.AccessToken
		for i := range tokens {
			at := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("fat-", i), Namespace: ns},
				Spec: tokensv1alpha1.AccessTokenSpec{IssuerRef: tokensv1alpha1.IssuerReference{Name: "fat"},
					Secret: tokensv1alpha1.SecretTemplate{Name: fmt.Sprint("fat-", i, "-token")}}}
			Expect(k8sClient.Create(ctx, at)).To(Succeed())
			ats = append(ats, at)
		}
		mints := func() int { return int(provider.mints.Load()) }
		Eventually(mints, 20*time.Second).Should(Equal(tokens))
		quiet(writes, mints, ats...)

		By("each token is served, and says it is short-lived and renewed at the floor")
		for _, at := range ats {
			c := renewing(at)
			Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonShortLivedToken), "%+v", c)
			Expect(c.Message).To(ContainSubstring("renewal floor of 30s"))
			st := get(at).Status
			Expect(st.RenewalTime.Time).To(Equal(st.IssuedAt.Add(DefaultMinRenewalInterval)))
			s, err := secretOf(at)
			Expect(err).NotTo(HaveOccurred())
			Expect(s.Data["token"]).To(HavePrefix("fat-"), "the short-lived token is served")
		}
		Eventually(func() []string { return eventReasons(ns) }, 10*time.Second).Should(ContainElement(tokensv1alpha1.ReasonShortLivedToken))

		By(fmt.Sprintf("%s of the manager's time, in steps of 5s, each AccessToken reconciled at every step", simulated))
		start := clk.Now()
		throttledByBytes := false
		for clk.Since(start) < simulated {
			clk.Step(5 * time.Second)
			for _, at := range ats {
				poke(at)
			}
			quiet(writes, mints, ats...)
			for _, at := range ats {
				cur := get(at)
				c := meta.FindStatusCondition(cur.Status.Conditions, tokensv1alpha1.ConditionReady)
				if c != nil && c.Status == metav1.ConditionTrue {
					Expect(cur.Status.ExpiresAt.After(clk.Now())).To(BeTrue(), "Ready while the token expired at %s", cur.Status.ExpiresAt)
				}
				if r := meta.FindStatusCondition(cur.Status.Conditions, tokensv1alpha1.ConditionRenewing); r != nil &&
					r.Reason == tokensv1alpha1.ReasonThrottled && strings.Contains(r.Message, "budget of bytes") {
					throttledByBytes = true
				}
			}
		}
		elapsed := clk.Since(start)
		n, stateWrites, bytes := writes.get()
		GinkgoWriter.Printf("expires_in 1: %d AccessTokens, %s: %d mints, %d Secret writes (%d state), %d bytes (%.2f MiB a minute)\n",
			tokens, elapsed, mints(), n, stateWrites, bytes, float64(bytes)/(1<<20)/elapsed.Minutes())

		By("mints are bounded by the renewal floor, and every mint writes the state once")
		Expect(mints()).To(BeNumerically("<=", tokens*(1+int(elapsed/DefaultMinRenewalInterval))))
		Expect(stateWrites).To(Equal(mints()), "state Secret writes per mint")
		Expect(provider.revokes.Load()).To(BeZero(), "no superseded token's grace period is over yet")

		By("the bytes written for the namespace stay within its budget, which the attack reached")
		Expect(throttledByBytes).To(BeTrue(), "no AccessToken waited for the namespace's byte budget")
		largestWrite := 512 << 10
		budget := specWriteBurstBytes + int(elapsed.Minutes()*specWriteBytesPerMinute) + tokens*largestWrite
		Expect(bytes).To(BeNumerically("<=", budget))
	})

	It("cannot mint past its namespace's budget by deleting and re-creating AccessTokens", func() {
		const tokens = 20
		withBudgets()
		churn, honestNS := newNamespace("churn-"), newNamespace("honest-")
		cti, fake := sharedIssuer(churn, honestNS)
		honest := waitReady(onIssuer(honestNS, "honest", cti))
		base := fake.Calls()

		names := make([]string, tokens)
		for i := range names {
			names[i] = fmt.Sprint("churn-", i)
		}
		createAll := func() []*tokensv1alpha1.AccessToken {
			var ats []*tokensv1alpha1.AccessToken
			for _, name := range names {
				ats = append(ats, onIssuer(churn, name, cti))
			}
			return ats
		}
		// deleteAll deletes the AccessTokens and, as the garbage collector
		// would, their Secrets.
		deleteAll := func(ats []*tokensv1alpha1.AccessToken) {
			for _, at := range ats {
				Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, at))).To(Succeed())
				Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, &corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Namespace: churn, Name: at.Spec.Secret.Name}}))).To(Succeed())
			}
			for _, at := range ats {
				Eventually(func() bool {
					return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), &tokensv1alpha1.AccessToken{}))
				}, 10*time.Second).Should(BeTrue())
			}
		}
		calls := func() int { return fake.Calls() - base }
		writes := watchSecretWrites(churn)
		// settleAll waits for the manager to act on the re-created
		// AccessTokens. A manager that had not yet seen a deletion may have
		// restored the deleted AccessToken's Secret, which the new
		// AccessToken of that name then takes back with its token; the
		// garbage collector (absent here) would have deleted it first, and
		// the new AccessToken is reconciled again on that deletion.
		settleAll := func(ats []*tokensv1alpha1.AccessToken) {
			quiet(writes, calls, ats...)
			poked := false
			for _, at := range ats {
				if c := renewing(at); c != nil && c.Reason == tokensv1alpha1.ReasonRenewed && strings.Contains(c.Message, "status rebuilt") {
					s, err := secretOf(at)
					Expect(err).NotTo(HaveOccurred())
					Expect(k8sClient.Delete(ctx, s)).To(Succeed())
					poke(at)
					poked = true
				}
			}
			if poked {
				quiet(writes, calls, ats...)
			}
		}

		By("a first issue of all of them")
		ats := createAll()
		for _, at := range ats {
			waitReady(at)
		}
		Expect(calls()).To(Equal(tokens))

		By("re-created within the floor, none is minted again")
		deleteAll(ats)
		ats = createAll()
		settleAll(ats)
		Expect(calls()).To(Equal(tokens))
		for _, at := range ats {
			c := renewing(at)
			Expect(c).NotTo(BeNil())
			Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonThrottled))
			Expect(c.Message).To(ContainSubstring("at most once every 10s"))
		}

		By("deleted and re-created every 10s of the manager's time")
		start := clk.Now()
		byBudget := false
		for range 12 {
			deleteAll(ats)
			clk.Step(DefaultMinMintInterval)
			ats = createAll()
			settleAll(ats)
			for _, at := range ats {
				if c := renewing(at); c != nil && strings.Contains(c.Message, "re-created AccessTokens") {
					byBudget = true
				}
			}
		}
		elapsed := clk.Since(start)
		GinkgoWriter.Printf("delete and re-create: %d AccessTokens, %s: %d mints\n", tokens, elapsed, calls())
		Expect(byBudget).To(BeTrue(), "no AccessToken waited for the namespace's mint budget")
		Expect(calls()).To(BeNumerically("<=", specMintBurst+int(elapsed.Seconds()*specMintRate)))
		// Re-creations spend the strict forced-renewal budget: after the first
		// issue of each, about one mint a second, whatever the number churned.
		Expect(calls()).To(BeNumerically("<=", tokens+DefaultForcedRenewalBurst+int(elapsed.Seconds()*DefaultForcedRenewalRate)))
		Expect(calls()).To(BeNumerically("<", tokens*(2+12)), "as many mints as without a namespace budget")
		deleteAll(ats)

		By("the honest namespace on the same issuer renews on time")
		clk.SetTime(get(honest).Status.RenewalTime.Add(time.Second))
		poke(honest)
		Eventually(func() string { return get(honest).Status.TokenFingerprint }, 10*time.Second).
			ShouldNot(Equal(honest.Status.TokenFingerprint))
		Expect(ready(honest).Status).To(Equal(metav1.ConditionTrue))
	})

	It("cannot pause other namespaces on a shared ClusterTokenIssuer by provoking 429s", func() {
		noisy, honestNS := newNamespace("noisy-"), newNamespace("honest-")
		cti, fake := sharedIssuer(noisy, honestNS)
		honest := waitReady(onIssuer(honestNS, "honest", cti))

		By("the provider answers the noisy namespace's burst with 429 and Retry-After: 300")
		fake.SetFaultHook(func(*http.Request) *fakes.Fault {
			return &fakes.Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"300"}},
				Body: `{"message":"too many requests"}`}
		})
		var ats []*tokensv1alpha1.AccessToken
		for i := range 5 {
			ats = append(ats, onIssuer(noisy, fmt.Sprint("noisy-", i), cti))
		}
		for _, at := range ats {
			Eventually(func() string {
				if c := renewing(at); c != nil {
					return c.Reason
				}
				return ""
			}, 10*time.Second).Should(Equal(tokensv1alpha1.ReasonRateLimited))
		}
		fake.SetFaultHook(nil)

		By("within the Retry-After, the honest namespace still gets its new token and its renewal")
		calls := fake.Calls()
		second := waitReady(onIssuer(honestNS, "second", cti))
		Expect(second.Status.TokenFingerprint).NotTo(BeEmpty())
		clk.Step(DefaultMinMintInterval)
		cur := get(honest)
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Annotations = map[string]string{tokensv1alpha1.AnnotationRenew: "now"}
		Expect(k8sClient.Patch(ctx, cur, patch)).To(Succeed())
		Eventually(func() string { return get(honest).Status.TokenFingerprint }, 10*time.Second).
			ShouldNot(Equal(honest.Status.TokenFingerprint))
		Expect(fake.Calls()).To(Equal(calls + 2))

		By("while the noisy namespace waits for the provider")
		for _, at := range ats {
			poke(at)
		}
		settle(ats[0])
		Expect(fake.Calls()).To(Equal(calls+2), "the noisy namespace called within its Retry-After")
		Expect(renewing(ats[0]).Reason).To(Equal(tokensv1alpha1.ReasonRateLimited))
	})
})
