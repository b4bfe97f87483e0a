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
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/test/fakes"
)

// Canary credentials: none of them may ever appear in a log line, an event, a
// condition or a status field.
const (
	canaryAuthToken = "CANARY-AUTH-TOKEN-7f3a9c"
)

func jsonValue(v any) *apiextensionsv1.JSON {
	raw, err := json.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	return &apiextensionsv1.JSON{Raw: raw}
}

// transactionsSpec describes the transaction-data API (seed 000) at base.
func transactionsSpec(base string) tokensv1alpha1.IssuerSpec {
	return tokensv1alpha1.IssuerSpec{
		Credentials: []tokensv1alpha1.Credential{{Name: "auth-token",
			SecretKeyRef: &tokensv1alpha1.SecretKeySelector{Name: "cable-auth", Key: "token"}}},
		Request: tokensv1alpha1.RequestSpec{
			URL:  base + fakes.TransactionAPIPath,
			Auth: &tokensv1alpha1.AuthSpec{Bearer: &tokensv1alpha1.ValueSource{Credential: "auth-token"}},
			Body: &tokensv1alpha1.BodySpec{JSON: []tokensv1alpha1.JSONField{
				{Path: "expiry_seconds", ValueSource: tokensv1alpha1.ValueSource{Parameter: "lifetimeSeconds"}},
				{Path: "scopes.organization_id", ValueSource: tokensv1alpha1.ValueSource{Value: ptr.To("org_9f8b7c6d5e4a3b2c1d0e")}},
				{Path: "scopes.scopes", ValueSource: tokensv1alpha1.ValueSource{Parameter: "scopes"}},
			}},
		},
		Parameters: []tokensv1alpha1.ParameterSpec{
			{Name: "lifetimeSeconds", Type: tokensv1alpha1.ParameterInteger, Default: jsonValue(3600),
				Minimum: ptr.To[int64](300), Maximum: ptr.To[int64](86400)},
			{Name: "scopes", Type: tokensv1alpha1.ParameterStringList, Default: jsonValue([]string{"transactions:write"})},
		},
		Response: tokensv1alpha1.ResponseSpec{
			Token:  "token",
			Expiry: &tokensv1alpha1.ExpirySpec{Path: "expiry", Format: tokensv1alpha1.ExpiryUnixSeconds},
			Error:  &tokensv1alpha1.ErrorSpec{Message: "message"},
			Copy:   []tokensv1alpha1.CopyField{{Key: "organization_id", Path: "organization_id"}},
		},
		AllowInsecureHTTP: true,
	}
}

// env is one spec's namespace, provider fake and issuer.
type env struct {
	ns   string
	fake *fakes.TransactionAPI
	url  string
}

func newEnv() *env { return newEnvWith(nil) }

// newEnvWith is newEnv with the issuer's spec changed by mutate first.
func newEnvWith(mutate func(*tokensv1alpha1.IssuerSpec)) *env {
	e := &env{ns: "t-" + rand.String(6)}
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}})).To(Succeed())
	e.fake = fakes.NewTransactionAPI(canaryAuthToken)
	e.fake.Clock = clk
	e.fake.Lifetime = time.Hour
	e.url = serveFake(e.fake, &e.fake.Base)
	Expect(k8sClient.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "cable-auth", Namespace: e.ns},
		StringData: map[string]string{"token": canaryAuthToken},
	})).To(Succeed())
	spec := transactionsSpec(e.url)
	if mutate != nil {
		mutate(&spec)
	}
	Expect(k8sClient.Create(ctx, &tokensv1alpha1.TokenIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: "cable", Namespace: e.ns},
		Spec:       spec,
	})).To(Succeed())
	return e
}

func (e *env) accessToken(name string) *tokensv1alpha1.AccessToken {
	at := &tokensv1alpha1.AccessToken{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: tokensv1alpha1.AccessTokenSpec{
			IssuerRef: tokensv1alpha1.IssuerReference{Name: "cable"},
			Secret:    tokensv1alpha1.SecretTemplate{Name: name + "-token"},
		},
	}
	Expect(k8sClient.Create(ctx, at)).To(Succeed())
	return at
}

func get(at *tokensv1alpha1.AccessToken) *tokensv1alpha1.AccessToken {
	out := &tokensv1alpha1.AccessToken{}
	ExpectWithOffset(1, k8sClient.Get(ctx, client.ObjectKeyFromObject(at), out)).To(Succeed())
	return out
}

func secretOf(at *tokensv1alpha1.AccessToken) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := k8sClient.Get(ctx, client.ObjectKey{Namespace: at.Namespace, Name: at.Spec.Secret.Name}, s)
	return s, err
}

func ready(at *tokensv1alpha1.AccessToken) *metav1.Condition {
	return meta.FindStatusCondition(get(at).Status.Conditions, tokensv1alpha1.ConditionReady)
}

func renewing(at *tokensv1alpha1.AccessToken) *metav1.Condition {
	return meta.FindStatusCondition(get(at).Status.Conditions, tokensv1alpha1.ConditionRenewing)
}

// waitIssued waits until the AccessToken reports n issued tokens from the fake.
func waitReady(at *tokensv1alpha1.AccessToken) *tokensv1alpha1.AccessToken {
	EventuallyWithOffset(1, func(g Gomega) {
		c := ready(at)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "%+v", c)
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
	return get(at)
}

// poke makes the manager reconcile at now, as a requeue would once the fake clock
// has moved: an annotation change is an event the controller watches.
var pokes int

func poke(at *tokensv1alpha1.AccessToken) {
	pokes++
	cur := get(at)
	patch := client.MergeFrom(cur.DeepCopy())
	if cur.Annotations == nil {
		cur.Annotations = map[string]string{}
	}
	cur.Annotations["test.tokenmint.dev/poke"] = strconv.Itoa(pokes)
	ExpectWithOffset(1, k8sClient.Patch(ctx, cur, patch)).To(Succeed())
}

// settle waits until the manager has acted on the last poke: the status has
// not changed for a second (a reconcile takes milliseconds).
func settle(at *tokensv1alpha1.AccessToken) {
	last, since := "", time.Now()
	EventuallyWithOffset(1, func() bool {
		raw, _ := json.Marshal(get(at).Status)
		if cur := string(raw); cur != last {
			last, since = cur, time.Now()
			return false
		}
		return time.Since(since) > time.Second
	}, 20*time.Second, 100*time.Millisecond).Should(BeTrue())
}

var _ = Describe("AccessToken", func() {
	var e *env
	BeforeEach(func() { e = newEnv() })

	It("issues a token into an owned, labelled Secret with the provider's expiry", func() {
		at := e.accessToken("payments")
		got := waitReady(at)

		issued := e.fake.Issued()
		Expect(issued).To(HaveLen(1))
		s, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(s.Data["token"])).To(Equal(issued[0].Value))
		Expect(string(s.Data["organization_id"])).To(Equal("org_9f8b7c6d5e4a3b2c1d0e"))
		Expect(s.Labels).To(HaveKeyWithValue(tokensv1alpha1.LabelManagedBy, tokensv1alpha1.ManagedByValue))
		Expect(metav1.IsControlledBy(s, got)).To(BeTrue())

		Expect(got.Status.ExpiresAt.Unix()).To(Equal(issued[0].ExpiresAt.Unix()))
		Expect(got.Status.IssuedAt).NotTo(BeNil())
		Expect(got.Status.RenewalTime.Time).To(BeTemporally(">=", clk.Now().Add(30*time.Minute)))
		Expect(got.Status.RenewalTime.Time).To(BeTemporally("<=", clk.Now().Add(40*time.Minute)))
		Expect(got.Status.TokenFingerprint).To(HavePrefix("hmac-sha256:"))
		Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, tokensv1alpha1.ConditionRenewing)).To(BeTrue())
		Eventually(func() []string { return reasonsAbout(at) }, 10*time.Second).Should(ContainElement(tokensv1alpha1.ReasonIssued))
	})

	It("renews at the computed time and not before", func() {
		at := waitReady(e.accessToken("rotating"))
		renewal := at.Status.RenewalTime.Time
		before, _ := secretOf(at)

		clk.SetTime(renewal.Add(-time.Second))
		poke(at)
		settle(at)
		Expect(e.fake.Issued()).To(HaveLen(1), "renewed before its time")

		clk.SetTime(renewal.Add(time.Second))
		poke(at)
		Eventually(func() int { return len(e.fake.Issued()) }, 10*time.Second).Should(Equal(2))
		Eventually(func(g Gomega) {
			s, err := secretOf(at)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.Data["token"]).NotTo(Equal(before.Data["token"]))
			g.Expect(string(s.Data["token"])).To(Equal(e.fake.Issued()[1].Value))
		}, 10*time.Second).Should(Succeed())
		settle(at)
		Expect(e.fake.Issued()).To(HaveLen(2), "renewed more than once")
		Expect(get(at).Status.RenewalTime.Time).To(BeTemporally(">", clk.Now().Add(29*time.Minute)))
	})

	It("spreads the renewals of tokens created together", func() {
		times := map[int64]bool{}
		for i := range 5 {
			at := waitReady(e.accessToken(fmt.Sprintf("spread-%d", i)))
			times[at.Status.RenewalTime.Unix()] = true
		}
		Expect(len(times)).To(BeNumerically(">=", 4), "renewal times %v", times)
	})

	It("mints nothing on restart while tokens are valid, and exactly once on a spec change", func() {
		at := waitReady(e.accessToken("restart"))
		Expect(e.fake.Calls()).To(Equal(1))

		mgr.stop()
		mgr = startManager()
		poke(at)
		settle(at)
		Expect(e.fake.Calls()).To(Equal(1), "a restart minted a token")

		clk.Step(DefaultMinMintInterval) // one mint per AccessToken per interval at most
		cur := get(at)
		cur.Spec.Parameters = map[string]apiextensionsv1.JSON{"lifetimeSeconds": *jsonValue(1800)}
		Expect(k8sClient.Update(ctx, cur)).To(Succeed())
		Eventually(e.fake.Calls, 10*time.Second).Should(Equal(2))
		settle(at)
		poke(at)
		settle(at)
		Expect(e.fake.Calls()).To(Equal(2), "a spec change minted more than once")
	})

	It("keeps the last good token on failure, honours Retry-After, and turns Ready False after expiry", func() {
		at := waitReady(e.accessToken("failing"))
		good, _ := secretOf(at)

		e.fake.FailNext(1, fakes.Fault{Status: http.StatusTooManyRequests,
			Header: http.Header{"Retry-After": []string{"120"}}, Body: `{"message":"slow down"}`})
		clk.SetTime(at.Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(func(g Gomega) {
			c := renewing(at)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonRateLimited))
		}, 10*time.Second).Should(Succeed())
		st := get(at).Status
		Expect(st.FailedAttempts).To(Equal(int32(1)))
		Expect(st.RenewalTime.Time).To(BeTemporally(">=", clk.Now().Add(120*time.Second)))
		Expect(meta.IsStatusConditionTrue(st.Conditions, tokensv1alpha1.ConditionReady)).To(BeTrue(), "still valid")
		after, _ := secretOf(at)
		Expect(after.Data).To(Equal(good.Data), "the Secret changed on failure")

		By("not retrying before Retry-After")
		clk.Step(60 * time.Second)
		poke(at)
		settle(at)
		Expect(e.fake.Calls()).To(Equal(2))

		By("turning Ready False once the token has expired")
		e.fake.FailNext(100, fakes.Fault{Status: http.StatusInternalServerError, Body: `{"message":"down"}`})
		clk.SetTime(st.ExpiresAt.Add(time.Second))
		poke(at)
		Eventually(func() string { return ready(at).Reason }, 10*time.Second).Should(Equal(tokensv1alpha1.ReasonExpired))
		after, _ = secretOf(at)
		Expect(after.Data).To(Equal(good.Data), "the Secret changed on failure")
	})

	It("recreates a deleted Secret and restores an edited one", func() {
		at := waitReady(e.accessToken("recreate"))
		s, _ := secretOf(at)
		Expect(k8sClient.Delete(ctx, s)).To(Succeed())
		Eventually(func(g Gomega) {
			again, err := secretOf(at)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(again.UID).NotTo(Equal(s.UID))
			g.Expect(again.Data).To(HaveKey("token"))
		}, 10*time.Second).Should(Succeed())
		waitReady(at)

		again, _ := secretOf(at)
		again.Data["token"] = []byte("edited")
		Expect(k8sClient.Update(ctx, again)).To(Succeed())
		Eventually(func(g Gomega) {
			restored, _ := secretOf(at)
			g.Expect(string(restored.Data["token"])).NotTo(Equal("edited"))
			g.Expect(string(restored.Data["token"])).To(Equal(e.fake.Issued()[len(e.fake.Issued())-1].Value))
		}, 10*time.Second).Should(Succeed())
	})

	It("never takes over a Secret it does not own", func() {
		Expect(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "taken-token", Namespace: e.ns},
			StringData: map[string]string{"token": "someone else's"},
		})).To(Succeed())
		at := e.accessToken("taken")
		Eventually(func() string {
			c := ready(at)
			if c == nil {
				return ""
			}
			return c.Reason
		}, 10*time.Second).Should(Equal(tokensv1alpha1.ReasonSecretNotOwned))
		s, _ := secretOf(at)
		Expect(string(s.Data["token"])).To(Equal("someone else's"))
		Expect(s.OwnerReferences).To(BeEmpty())
		Expect(e.fake.Calls()).To(BeZero())
	})

	It("never takes over a Secret created while its first token was being obtained", func() {
		var once sync.Once
		e.fake.SetFaultHook(func(*http.Request) *fakes.Fault {
			once.Do(func() {
				_ = k8sClient.Create(ctx, &corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Name: "raced-token", Namespace: e.ns},
					StringData: map[string]string{"token": "someone else's"},
				})
			})
			return nil
		})
		at := e.accessToken("raced")
		Eventually(func() string {
			if c := ready(at); c != nil {
				return c.Reason
			}
			return ""
		}, 10*time.Second).Should(Equal(tokensv1alpha1.ReasonSecretNotOwned))
		s, _ := secretOf(at)
		Expect(string(s.Data["token"])).To(Equal("someone else's"))
		Expect(s.OwnerReferences).To(BeEmpty())
		Expect(s.Labels).To(BeEmpty())
		Consistently(e.fake.Calls, 2*time.Second).Should(Equal(1), "minted again for a Secret it cannot write")
	})

	It("removes from the Secret what the template no longer asks for, without minting", func() {
		at := e.accessToken("relabelled")
		waitReady(at)
		// The manager writes status meanwhile: an update may conflict, and is retried.
		Eventually(func() error {
			cur := get(at)
			cur.Spec.Secret.Labels = map[string]string{"keep": "1", "drop": "1"}
			cur.Spec.Secret.Annotations = map[string]string{"note": "x"}
			return k8sClient.Update(ctx, cur)
		}, 10*time.Second).Should(Succeed())
		Eventually(func(g Gomega) {
			s, err := secretOf(at)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.Labels).To(HaveKeyWithValue("drop", "1"))
			g.Expect(s.Annotations).To(HaveKeyWithValue("note", "x"))
		}, 10*time.Second).Should(Succeed())

		Eventually(func() error {
			cur := get(at)
			cur.Spec.Secret.Labels = map[string]string{"keep": "1"}
			cur.Spec.Secret.Annotations = nil
			return k8sClient.Update(ctx, cur)
		}, 10*time.Second).Should(Succeed())
		Eventually(func(g Gomega) {
			s, err := secretOf(at)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.Labels).To(HaveKeyWithValue("keep", "1"))
			g.Expect(s.Labels).NotTo(HaveKey("drop"))
			g.Expect(s.Annotations).NotTo(HaveKey("note"))
			g.Expect(s.Annotations).To(HaveKey(secret.AnnotationFingerprint))
		}, 10*time.Second).Should(Succeed())
		Expect(e.fake.Calls()).To(Equal(1))
	})

	It("renews at once when asked by annotation, past the minimum interval between mints", func() {
		at := waitReady(e.accessToken("manual"))
		clk.Step(DefaultMinMintInterval)
		cur := get(at)
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Annotations = map[string]string{tokensv1alpha1.AnnotationRenew: "2026-01-01T00:00:00Z"}
		Expect(k8sClient.Patch(ctx, cur, patch)).To(Succeed())
		Eventually(e.fake.Calls, 10*time.Second).Should(Equal(2))
		settle(at)
		poke(at)
		settle(at)
		Expect(e.fake.Calls()).To(Equal(2))
		Expect(get(at).Status.LastRenewalRequest).To(Equal("2026-01-01T00:00:00Z"), "%+v", get(at))
	})

	It("re-issues once when a credential Secret changes", func() {
		at := waitReady(e.accessToken("credchange"))
		clk.Step(DefaultMinMintInterval)
		e.fake.AuthToken = canaryAuthToken + "-rotated"
		cred := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "cable-auth"}, cred)).To(Succeed())
		cred.Data["token"] = []byte(canaryAuthToken + "-rotated")
		Expect(k8sClient.Update(ctx, cred)).To(Succeed())
		Eventually(func() int { return e.fake.CallsBy(fakes.OutcomeIssued) }, 10*time.Second).Should(Equal(2))
		settle(at)
		Expect(e.fake.CallsBy(fakes.OutcomeIssued)).To(Equal(2))
	})

	It("re-issues when its credential is another AccessToken's Secret and that token is renewed", func() {
		upstream := waitReady(e.accessToken("upstream"))
		s, err := secretOf(upstream)
		Expect(err).NotTo(HaveOccurred())
		first := string(s.Data["token"])
		// The downstream provider accepts the upstream's first token only.
		down := fakes.NewTransactionAPI(first)
		down.Clock, down.Lifetime = clk, time.Hour
		spec := transactionsSpec(serveFake(down, &down.Base))
		spec.Credentials[0].SecretKeyRef.Name = "upstream-token"
		Expect(k8sClient.Create(ctx, &tokensv1alpha1.TokenIssuer{
			ObjectMeta: metav1.ObjectMeta{Name: "chained", Namespace: e.ns}, Spec: spec})).To(Succeed())
		downstream := &tokensv1alpha1.AccessToken{
			ObjectMeta: metav1.ObjectMeta{Name: "downstream", Namespace: e.ns},
			Spec: tokensv1alpha1.AccessTokenSpec{IssuerRef: tokensv1alpha1.IssuerReference{Name: "chained"},
				Secret: tokensv1alpha1.SecretTemplate{Name: "downstream-token"}},
		}
		Expect(k8sClient.Create(ctx, downstream)).To(Succeed())
		waitReady(downstream)
		Expect(down.CallsBy(fakes.OutcomeIssued)).To(Equal(1))

		By("renewing the upstream token: the downstream issuer's credential changes")
		clk.Step(DefaultMinMintInterval)
		cur := get(upstream)
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Annotations = map[string]string{tokensv1alpha1.AnnotationRenew: "chain-1"}
		Expect(k8sClient.Patch(ctx, cur, patch)).To(Succeed())
		// The downstream calls again at once, with the new upstream token, which
		// its provider does not know: proof that the new value was read.
		Eventually(func() int { return down.CallsBy(fakes.OutcomeUnauthorized) }, 10*time.Second).Should(Equal(1))
		Consistently(down.Calls, 2*time.Second, 200*time.Millisecond).Should(Equal(2))
	})

	It("refuses parameters outside the issuer's limits without calling the endpoint", func() {
		at := &tokensv1alpha1.AccessToken{
			ObjectMeta: metav1.ObjectMeta{Name: "toolong", Namespace: e.ns},
			Spec: tokensv1alpha1.AccessTokenSpec{
				IssuerRef:  tokensv1alpha1.IssuerReference{Name: "cable"},
				Parameters: map[string]apiextensionsv1.JSON{"lifetimeSeconds": *jsonValue(999999)},
				Secret:     tokensv1alpha1.SecretTemplate{Name: "toolong-token"},
			},
		}
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		Eventually(func() string {
			c := renewing(at)
			if c == nil {
				return ""
			}
			return c.Reason
		}, 10*time.Second).Should(Equal(tokensv1alpha1.ReasonInvalidParameters))
		Expect(renewing(at).Message).To(ContainSubstring("lifetimeSeconds"))
		Expect(e.fake.Calls()).To(BeZero())
		_, err := secretOf(at)
		Expect(apierrors.IsNotFound(err)).To(BeTrue())
	})

	It("never shows a credential or a token in logs, events, conditions or status", func() {
		at := waitReady(e.accessToken("leaks"))
		e.fake.FailNext(1, fakes.Fault{Status: http.StatusUnauthorized,
			Body: `{"message":"token ` + canaryAuthToken + ` is not valid"}`})
		clk.SetTime(get(at).Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(func() string { return renewing(at).Reason }, 10*time.Second).Should(Equal(tokensv1alpha1.ReasonUnauthorized))

		canaries := []string{canaryAuthToken}
		for _, t := range e.fake.Issued() {
			canaries = append(canaries, t.Value)
		}
		status, _ := json.Marshal(get(at).Status)
		evs := &eventsv1.EventList{}
		Eventually(func() []eventsv1.Event {
			Expect(k8sClient.List(ctx, evs, client.InNamespace(e.ns))).To(Succeed())
			return evs.Items
		}, 10*time.Second).ShouldNot(BeEmpty(), "the failure raised an event")
		var notes strings.Builder
		for _, ev := range evs.Items {
			notes.WriteString(ev.Note + "\n" + ev.Reason + "\n")
		}
		for _, c := range canaries {
			Expect(logs.String()).NotTo(ContainSubstring(c), "log holds a credential")
			Expect(string(status)).NotTo(ContainSubstring(c), "status holds a credential")
			Expect(notes.String()).NotTo(ContainSubstring(c), "an event holds a credential")
		}
	})
})

var _ = Describe("tenancy", func() {
	It("refuses a ClusterTokenIssuer that does not allow the namespace", func() {
		e := newEnv()
		cti := &tokensv1alpha1.ClusterTokenIssuer{
			ObjectMeta: metav1.ObjectMeta{Name: "cable-" + e.ns},
			Spec: tokensv1alpha1.ClusterTokenIssuerSpec{
				IssuerSpec:        transactionsSpec(e.url),
				AllowedNamespaces: &tokensv1alpha1.AllowedNamespaces{Names: []string{"somewhere-else"}},
			},
		}
		Expect(k8sClient.Create(ctx, cti)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, cti)
		at := &tokensv1alpha1.AccessToken{
			ObjectMeta: metav1.ObjectMeta{Name: "denied", Namespace: e.ns},
			Spec: tokensv1alpha1.AccessTokenSpec{
				IssuerRef: tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: cti.Name},
				Secret:    tokensv1alpha1.SecretTemplate{Name: "denied-token"},
			},
		}
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		Eventually(func() string {
			c := renewing(at)
			if c == nil {
				return ""
			}
			return c.Reason
		}, 10*time.Second).Should(Equal(tokensv1alpha1.ReasonIssuerNotAllowed))
		Expect(e.fake.Calls()).To(BeZero())
	})

	It("reads a ClusterTokenIssuer's credentials from the credentials namespace only", func() {
		e := newEnv()
		cti := &tokensv1alpha1.ClusterTokenIssuer{
			ObjectMeta: metav1.ObjectMeta{Name: "cable-cluster-" + e.ns},
			Spec:       tokensv1alpha1.ClusterTokenIssuerSpec{IssuerSpec: transactionsSpec(e.url)},
		}
		Expect(k8sClient.Create(ctx, cti)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, cti)
		at := &tokensv1alpha1.AccessToken{
			ObjectMeta: metav1.ObjectMeta{Name: "cluster", Namespace: e.ns},
			Spec: tokensv1alpha1.AccessTokenSpec{
				IssuerRef: tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: cti.Name},
				Secret:    tokensv1alpha1.SecretTemplate{Name: "cluster-token"},
			},
		}
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		By("not finding the credential in the AccessToken's namespace")
		Eventually(func() string {
			c := renewing(at)
			if c == nil {
				return ""
			}
			return c.Reason
		}, 10*time.Second).Should(Equal(tokensv1alpha1.ReasonInvalidConfig))
		Expect(renewing(at).Message).To(ContainSubstring(credentialsNamespace))
		Expect(e.fake.Calls()).To(BeZero())

		By("issuing once the credential is in the credentials namespace")
		clk.Step(DefaultMinMintInterval) // the failed attempt counts toward the minimum interval
		cred := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "cable-auth", Namespace: credentialsNamespace},
			StringData: map[string]string{"token": canaryAuthToken},
		}
		Expect(k8sClient.Create(ctx, cred)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, cred)
		waitReady(at)
		Expect(e.fake.Calls()).To(Equal(1))
	})

	It("reports an issuer that does not exist, such as one in another namespace", func() {
		e := newEnv()
		other := newEnv()
		at := &tokensv1alpha1.AccessToken{
			ObjectMeta: metav1.ObjectMeta{Name: "elsewhere", Namespace: other.ns},
			Spec: tokensv1alpha1.AccessTokenSpec{
				IssuerRef: tokensv1alpha1.IssuerReference{Name: "missing"},
				Secret:    tokensv1alpha1.SecretTemplate{Name: "elsewhere-token"},
			},
		}
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		Eventually(func() string {
			c := ready(at)
			if c == nil {
				return ""
			}
			return renewing(at).Reason
		}, 10*time.Second).Should(Equal(tokensv1alpha1.ReasonIssuerNotFound))
		Expect(e.fake.Calls() + other.fake.Calls()).To(BeZero())
	})
})

// reasonsAbout lists the reasons of the events about obj.
func reasonsAbout(obj client.Object) []string {
	evs := &eventsv1.EventList{}
	Expect(k8sClient.List(ctx, evs, client.InNamespace(obj.GetNamespace()))).To(Succeed())
	var reasons []string
	for _, ev := range evs.Items {
		if ev.Regarding.Name == obj.GetName() && ev.Regarding.UID == obj.GetUID() {
			reasons = append(reasons, ev.Reason)
		}
	}
	return reasons
}

var _ = Describe("an issuer's Ready", func() {
	It("tells that its endpoint refuses its credentials, and when it accepts them again", func() {
		e := newEnv()
		creds := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "cable-auth"}, creds)).To(Succeed())
		patch := client.MergeFrom(creds.DeepCopy())
		creds.Data = map[string][]byte{"token": []byte("not-the-token")}
		Expect(k8sClient.Patch(ctx, creds, patch)).To(Succeed())
		ti := &tokensv1alpha1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "cable"}}
		issuerReady := func() *metav1.Condition {
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(ti), ti)).To(Succeed())
			return meta.FindStatusCondition(ti.Status.Conditions, tokensv1alpha1.ConditionReady)
		}

		at := e.accessToken("refused")
		Eventually(func() string { return ptr.Deref(issuerReady(), metav1.Condition{}).Reason }, 10*time.Second).
			Should(Equal(tokensv1alpha1.ReasonUnauthorized))
		Expect(issuerReady().Status).To(Equal(metav1.ConditionFalse))
		Expect(issuerReady().Message).To(ContainSubstring("the last call to the endpoint"))
		Eventually(func() []string { return reasonsAbout(ti) }, 10*time.Second).Should(ContainElement(tokensv1alpha1.ReasonUnauthorized))

		patch = client.MergeFrom(creds.DeepCopy())
		creds.Data = map[string][]byte{"token": []byte(canaryAuthToken)}
		clk.Step(DefaultMinMintInterval)
		Expect(k8sClient.Patch(ctx, creds, patch)).To(Succeed())
		poke(at)
		waitReady(at)
		Eventually(func() metav1.ConditionStatus { return ptr.Deref(issuerReady(), metav1.Condition{}).Status }, 10*time.Second).
			Should(Equal(metav1.ConditionTrue))
		Expect(issuerReady().Message).To(ContainSubstring("the endpoint accepted the last call"))
		Eventually(func() []string { return reasonsAbout(ti) }, 10*time.Second).Should(ContainElement(tokensv1alpha1.ReasonEndpointRecovered))
	})

	It("is not made False by a failure that concerns one AccessToken", func() {
		e := newEnv()
		ti := &tokensv1alpha1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "cable"}}
		issuerReady := func() metav1.Condition {
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(ti), ti)).To(Succeed())
			return ptr.Deref(meta.FindStatusCondition(ti.Status.Conditions, tokensv1alpha1.ConditionReady), metav1.Condition{})
		}
		waitReady(e.accessToken("honest"))
		Eventually(func() string { return issuerReady().Message }, 10*time.Second).Should(ContainSubstring("accepted the last call"))

		e.fake.FailNext(1, fakes.Fault{Status: http.StatusBadRequest, Body: `{"message": "organization not allowed"}`})
		bad := e.accessToken("refused-for-its-parameters")
		Eventually(func() string { return ptr.Deref(renewing(bad), metav1.Condition{}).Reason }, 10*time.Second).
			Should(Equal(tokensv1alpha1.ReasonBadRequest))
		Consistently(func() metav1.ConditionStatus { return issuerReady().Status }, 2*time.Second, 200*time.Millisecond).
			Should(Equal(metav1.ConditionTrue))
	})
})
