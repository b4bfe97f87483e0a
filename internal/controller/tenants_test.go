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
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// inFlight counts the calls a fake is holding, and the most it ever held.
type inFlight struct {
	now, most atomic.Int32
}

// enter counts a call in, keeping the most ever held.
func (f *inFlight) enter() {
	n := f.now.Add(1)
	for {
		most := f.most.Load()
		if n <= most || f.most.CompareAndSwap(most, n) {
			return
		}
	}
}

// hangAll makes every call to fake hang until the client gives up or the fake
// closes, counting the calls held.
func (f *inFlight) hangAll(fake *fakes.Base) {
	fake.SetFaultHook(func(r *http.Request) *fakes.Fault {
		f.enter()
		go func() {
			<-r.Context().Done()
			f.now.Add(-1)
		}()
		return &fakes.Fault{Hang: true}
	})
}

// The tenant against the operator: one namespace's objects, written to do harm,
// beside an honest namespace whose tokens must keep renewing on time.
var _ = Describe("a hostile tenant", func() {
	It("cannot stall other tenants' renewals with a silent endpoint", func() {
		By("a hostile issuer whose endpoint accepts every call and never answers, at the longest timeout admitted")
		hostile := newEnvWith(func(s *tokensv1alpha1.IssuerSpec) { s.Timeout = &tokensv1alpha1.Duration{Duration: time.Minute} })
		held := &inFlight{}
		held.hangAll(&hostile.fake.Base)
		for i := range 30 {
			hostile.accessToken(fmt.Sprintf("stall-%d", i))
		}
		Eventually(held.now.Load, 10*time.Second).Should(BeEquivalentTo(DefaultIssuerConcurrency),
			"the silent endpoint holds its own issuer's call slots")

		By("an honest tenant's token is issued and renewed at once, while those calls hang")
		honest := newEnv()
		start := time.Now()
		at := waitReady(honest.accessToken("honest"))
		Expect(time.Since(start)).To(BeNumerically("<", 10*time.Second))
		first := at.Status.TokenFingerprint
		clk.SetTime(at.Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(func() string { return get(at).Status.TokenFingerprint }, 10*time.Second).ShouldNot(Equal(first))
		renewed := get(at)
		Expect(ready(renewed).Status).To(Equal(metav1.ConditionTrue))
		Expect(renewed.Status.IssuedAt.Time.Before(at.Status.ExpiresAt.Time)).To(BeTrue(), "renewed before the old token expired")

		By("the hostile issuer never held more than its own slots, and its AccessTokens say they wait")
		Expect(held.most.Load()).To(BeEquivalentTo(DefaultIssuerConcurrency))
		if c := ready(&tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: hostile.ns, Name: "stall-0"}}); c != nil {
			Expect(c.Status).To(Equal(metav1.ConditionFalse))
		}
	})

	It("cannot ask for a timeout that holds a call for an hour", func() {
		spec := transactionsSpec("http://127.0.0.1:1")
		spec.Timeout = &tokensv1alpha1.Duration{Duration: time.Hour}
		err := k8sClient.Create(ctx, &tokensv1alpha1.TokenIssuer{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "slow-", Namespace: "default"}, Spec: spec})
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("timeout must be between 1s and 60s"))
	})

	It("gets calls at the issuer's concurrency, not the reconcile workers'", func() {
		e := newEnv()
		held := &inFlight{}
		e.fake.SetFaultHook(func(r *http.Request) *fakes.Fault {
			held.enter()
			defer held.now.Add(-1)
			time.Sleep(250 * time.Millisecond) // a provider's latency
			return nil
		})
		var ats []*tokensv1alpha1.AccessToken
		for i := range 60 {
			ats = append(ats, e.accessToken(fmt.Sprintf("busy-%d", i)))
		}
		for _, at := range ats {
			waitReady(at)
		}
		Expect(held.most.Load()).To(BeNumerically(">", testConfig().MaxConcurrentReconciles),
			"calls ran beyond the %d reconcile workers", testConfig().MaxConcurrentReconciles)
		Expect(held.most.Load()).To(BeNumerically("<=", DefaultIssuerConcurrency))
	})

	It("cannot send an admin's refresh token to its own server", func() {
		ns := "steal-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		bank := fakes.NewBankingAPI(samples.Credential("banking-credentials", "consumerKey"), samples.Credential("banking-credentials", "consumerSecret"),
			samples.Credential("banking-credentials", "username"), samples.Credential("banking-credentials", "password"))
		s, err := samples.Load("banking-oauth-password.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.PointAt(serveFake(bank, &bank.Base))).To(Succeed())
		s.FillCredentials()

		By("an admin's ClusterTokenIssuer with a refresh grant, and the tenant's AccessToken on it")
		adminSpec := s.TokenIssuer.Spec
		cti := &tokensv1alpha1.ClusterTokenIssuer{
			ObjectMeta: metav1.ObjectMeta{Name: "bank-" + ns},
			Spec: tokensv1alpha1.ClusterTokenIssuerSpec{IssuerSpec: *adminSpec.DeepCopy(),
				AllowedNamespaces: &tokensv1alpha1.AllowedNamespaces{Names: []string{ns}}},
		}
		for _, sec := range s.Secrets {
			sec.Namespace = credentialsNamespace
			sec.Name += "-" + ns
			Expect(k8sClient.Create(ctx, sec)).To(Succeed())
			DeferCleanup(k8sClient.Delete, ctx, sec)
		}
		renameSecretRefs(&cti.Spec.IssuerSpec, "-"+ns)
		Expect(k8sClient.Create(ctx, cti)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(ctx, cti) })
		at := s.AccessToken.DeepCopy()
		at.Namespace = ns
		at.Spec.IssuerRef = tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: cti.Name}
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		at = waitReady(at)
		refreshToken := bank.Issued()[0].RefreshToken
		Expect(refreshToken).NotTo(BeEmpty())

		By("the tenant's own TokenIssuer, whose every URL is the tenant's server")
		var thief struct {
			sync.Mutex
			requests []string
		}
		thiefServer := newServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			thief.Lock()
			thief.requests = append(thief.requests, fmt.Sprintf("%s %v %s", r.URL, r.Header, body))
			thief.Unlock()
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
		}))
		thiefServer.Start()
		DeferCleanup(thiefServer.Close)
		thiefSpec := *adminSpec.DeepCopy()
		thiefSpec.Request.URL = thiefServer.URL + "/token"
		thiefSpec.Refresh.URL = thiefServer.URL + "/token"
		for _, sec := range s.Secrets {
			own := sec.DeepCopy()
			own.Namespace, own.Name, own.ResourceVersion = ns, strings.TrimSuffix(sec.Name, "-"+ns), ""
			Expect(k8sClient.Create(ctx, own)).To(Succeed())
		}
		Expect(k8sClient.Create(ctx, &tokensv1alpha1.TokenIssuer{
			ObjectMeta: metav1.ObjectMeta{Name: "thief", Namespace: ns}, Spec: thiefSpec})).To(Succeed())

		noneStolen := func() {
			thief.Lock()
			defer thief.Unlock()
			Expect(thief.requests).NotTo(BeEmpty())
			for _, r := range thief.requests {
				Expect(r).NotTo(ContainSubstring(refreshToken), "the refresh token reached another issuer")
				Expect(r).NotTo(ContainSubstring(bank.Issued()[0].Value), "the admin issuer's token reached another issuer")
				Expect(r).NotTo(ContainSubstring("grant_type=refresh_token"))
			}
		}

		By("a new issuer under the admin issuer's name never gets the old issuer's refresh token")
		Expect(k8sClient.Delete(ctx, cti)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(cti), &tokensv1alpha1.ClusterTokenIssuer{}))
		}, 10*time.Second).Should(BeTrue())
		again := &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: cti.Name},
			Spec: tokensv1alpha1.ClusterTokenIssuerSpec{IssuerSpec: *thiefSpec.DeepCopy(), AllowedNamespaces: cti.Spec.AllowedNamespaces}}
		renameSecretRefs(&again.Spec.IssuerSpec, "-"+ns)
		Expect(k8sClient.Create(ctx, again)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(ctx, again) })
		clk.Step(DefaultMinMintInterval)
		poke(at)
		Eventually(func() int {
			thief.Lock()
			defer thief.Unlock()
			return len(thief.requests)
		}, 15*time.Second).Should(BeNumerically(">", 0))
		settle(at)
		noneStolen()
		Expect(bank.CallsBy(fakes.OutcomeRefreshed)).To(BeZero())

		By("moving the AccessToken to the tenant's own issuer: it is asked for a new token, with nothing of the admin's")
		thief.Lock()
		thief.requests = nil
		thief.Unlock()
		cur := get(at)
		cur.Spec.IssuerRef = tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.TokenIssuerKind, Name: "thief"}
		Expect(k8sClient.Update(ctx, cur)).To(Succeed())
		clk.Step(DefaultMinMintInterval)
		poke(at)
		Eventually(func() int {
			thief.Lock()
			defer thief.Unlock()
			return len(thief.requests)
		}, 15*time.Second).Should(BeNumerically(">", 0))
		settle(at)
		noneStolen()
		Expect(bank.CallsBy(fakes.OutcomeRefreshed)).To(BeZero())
		Expect(bank.CallsBy(fakes.OutcomeRevoked)).To(BeZero())
	})

	It("cannot have the operator write a Secret Kubernetes fills with a ServiceAccount token", func() {
		for _, mutate := range []func(*tokensv1alpha1.SecretTemplate){
			func(t *tokensv1alpha1.SecretTemplate) { t.Type = corev1.SecretTypeServiceAccountToken },
			func(t *tokensv1alpha1.SecretTemplate) {
				t.Annotations = map[string]string{corev1.ServiceAccountNameKey: "default"}
			},
			func(t *tokensv1alpha1.SecretTemplate) { t.Type = corev1.SecretTypeBootstrapToken },
		} {
			at := &tokensv1alpha1.AccessToken{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "sa-", Namespace: "default"},
				Spec: tokensv1alpha1.AccessTokenSpec{
					IssuerRef: tokensv1alpha1.IssuerReference{Name: "cable"},
					Secret:    tokensv1alpha1.SecretTemplate{Name: "sa-token"},
				},
			}
			mutate(&at.Spec.Secret)
			err := k8sClient.Create(ctx, at)
			Expect(err).To(HaveOccurred())
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		}
	})

	It("cannot mint more often than the floor with a renew-annotation loop, while a neighbour renews", func() {
		e := newEnv()
		at := waitReady(e.accessToken("looping"))
		neighbour := waitReady(e.accessToken("neighbour"))
		calls := e.fake.Calls()
		for i := range 10 {
			cur := get(at)
			patch := client.MergeFrom(cur.DeepCopy())
			cur.Annotations = map[string]string{tokensv1alpha1.AnnotationRenew: fmt.Sprint("loop-", i)}
			Expect(k8sClient.Patch(ctx, cur, patch)).To(Succeed())
			time.Sleep(50 * time.Millisecond)
		}
		Eventually(func() string { return renewing(at).Reason }, 10*time.Second).Should(Equal(tokensv1alpha1.ReasonThrottled))
		Expect(renewing(at).Message).To(ContainSubstring("at most once every 10s"))
		settle(at)
		Expect(e.fake.Calls()).To(Equal(calls), "no mint within the floor of the last one")

		By("once the floor has passed, the last request is served once")
		clk.Step(DefaultMinMintInterval)
		Eventually(e.fake.Calls, 10*time.Second).Should(Equal(calls + 1))
		settle(at)
		Expect(e.fake.Calls()).To(Equal(calls + 1))
		Expect(get(at).Status.LastRenewalRequest).To(Equal("loop-9"))

		By("the neighbour's scheduled renewal is not held back")
		clk.SetTime(neighbour.Status.RenewalTime.Add(time.Second))
		poke(neighbour)
		Eventually(func() string { return get(neighbour).Status.TokenFingerprint }, 10*time.Second).
			ShouldNot(Equal(neighbour.Status.TokenFingerprint))
	})

	It("cannot restart a workload that did not agree", func() {
		e := newEnv()
		dep := createDeployment(e.ns, "victim", nil)
		at := &tokensv1alpha1.AccessToken{
			ObjectMeta: metav1.ObjectMeta{Name: "restarter", Namespace: e.ns},
			Spec: tokensv1alpha1.AccessTokenSpec{
				IssuerRef:      tokensv1alpha1.IssuerReference{Name: "cable"},
				Secret:         tokensv1alpha1.SecretTemplate{Name: "restarter-token"},
				RestartTargets: []tokensv1alpha1.RestartTarget{{Kind: "Deployment", Name: "victim"}},
			},
		}
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		at = waitReady(at)
		clk.SetTime(at.Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(func() []string { return eventReasons(e.ns) }, 10*time.Second).
			Should(ContainElement(tokensv1alpha1.ReasonRestartNotAllowed))
		cur := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(dep), cur)).To(Succeed())
		Expect(cur.Spec.Template.Annotations).NotTo(HaveKey(tokensv1alpha1.AnnotationRestartedAt))
	})

	It("cannot skip revocation on deletion by corrupting what revocation reads", func() {
		s, fake := startSample("oauth2-client-credentials")
		at := waitReady(s.AccessToken)
		token := fake.Issued()[0].Value
		state := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: secret.StateName(at)}, state)).To(Succeed())
		state.Data = map[string][]byte{"state.json": []byte("{not json")}
		Expect(k8sClient.Update(ctx, state)).To(Succeed())

		Expect(k8sClient.Delete(ctx, get(at))).To(Succeed())
		Consistently(func() error {
			return k8sClient.Get(ctx, client.ObjectKeyFromObject(at), &tokensv1alpha1.AccessToken{})
		}, 3*time.Second).Should(Succeed(), "the AccessToken was let go without trying to revoke")
		Expect(fake.Valid(token)).To(BeTrue())

		By("once the state is readable again, the token is revoked and the AccessToken goes")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(state), state)).To(Succeed())
		raw := fmt.Sprintf(`{"issuer":%q,"issuerUID":%q,"token":%q}`,
			"ClusterTokenIssuer//"+s.ClusterTokenIssuer.Name, string(getCTI(s.ClusterTokenIssuer.Name).UID), token)
		state.Data = map[string][]byte{"state.json": []byte(raw)}
		Expect(k8sClient.Update(ctx, state)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), &tokensv1alpha1.AccessToken{}))
		}, 30*time.Second).Should(BeTrue())
		Expect(fake.Valid(token)).To(BeFalse())
	})
})

func getCTI(name string) *tokensv1alpha1.ClusterTokenIssuer {
	cti := &tokensv1alpha1.ClusterTokenIssuer{}
	ExpectWithOffset(1, k8sClient.Get(ctx, client.ObjectKey{Name: name}, cti)).To(Succeed())
	return cti
}

// renameSecretRefs adds suffix to the name of every Secret spec reads.
func renameSecretRefs(spec *tokensv1alpha1.IssuerSpec, suffix string) {
	for _, c := range spec.Credentials {
		if c.SecretKeyRef != nil && !strings.HasSuffix(c.SecretKeyRef.Name, suffix) {
			c.SecretKeyRef.Name += suffix
		}
	}
}
