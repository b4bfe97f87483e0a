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
	"net/http"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
)

// secretGets counts, by namespace, the manager's GETs of single Secrets (not
// lists or watches): what the caches are there to spare.
var secretGets = &getCounter{byNamespace: map[string]int{}}

type getCounter struct {
	mu          sync.Mutex
	byNamespace map[string]int
}

func (c *getCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		// /api/v1/namespaces/<ns>/secrets/<name>
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if r.Method == http.MethodGet && len(parts) == 6 && parts[0] == "api" && parts[2] == "namespaces" && parts[4] == "secrets" {
			c.mu.Lock()
			c.byNamespace[parts[3]]++
			c.mu.Unlock()
		}
		return rt.RoundTrip(r)
	})
}

func (c *getCounter) in(ns string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byNamespace[ns]
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// withCredentialSecrets makes the issuer read n credential Secrets: cable-auth
// and n-1 more, each created in ns. Up to the bound they are credentials sent in
// headers; beyond it (which the CRD's 16 credentials cannot name) they are the
// key and claims of one signed JWT, as a tenant could write them.
func withCredentialSecrets(n int) func(*tokensv1alpha1.IssuerSpec) {
	return func(s *tokensv1alpha1.IssuerSpec) {
		if n > issuer.MaxCredentialSecrets {
			jwt := &tokensv1alpha1.SignedJWT{Algorithm: "RS256",
				PrivateKey: tokensv1alpha1.JWTSecretValue{SecretKeyRef: tokensv1alpha1.SecretKeySelector{Name: "extra-0", Key: "v"}}}
			for i := 1; i < n-1; i++ {
				jwt.Claims = append(jwt.Claims, tokensv1alpha1.JWTClaim{Name: fmt.Sprint("c", i),
					JWTValue: tokensv1alpha1.JWTValue{SecretKeyRef: &tokensv1alpha1.SecretKeySelector{Name: fmt.Sprintf("extra-%d", i), Key: "v"}}})
			}
			s.Credentials = append(s.Credentials, tokensv1alpha1.Credential{Name: "assertion", SignedJWT: jwt})
			s.Request.Headers = append(s.Request.Headers, tokensv1alpha1.Header{Name: "X-Assertion",
				ValueSource: tokensv1alpha1.ValueSource{Credential: "assertion"}})
			return
		}
		for i := range n - 1 {
			name := fmt.Sprintf("extra-%d", i)
			s.Credentials = append(s.Credentials, tokensv1alpha1.Credential{Name: name,
				SecretKeyRef: &tokensv1alpha1.SecretKeySelector{Name: name, Key: "v"}})
			s.Request.Headers = append(s.Request.Headers, tokensv1alpha1.Header{Name: fmt.Sprintf("X-Extra-%d", i),
				ValueSource: tokensv1alpha1.ValueSource{Credential: name}})
		}
	}
}

func createExtraSecrets(ns string, n int) {
	for i := range n - 1 {
		Expect(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("extra-%d", i), Namespace: ns},
			StringData: map[string]string{"v": fmt.Sprint("value-", i)},
		})).To(Succeed())
	}
}

// annotate changes a credential Secret without changing its values: a new
// resourceVersion, as a write loop of the tenant's would make.
func annotate(ns, name string, i int) {
	s := &corev1.Secret{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s)).To(Succeed())
	patch := client.MergeFrom(s.DeepCopy())
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations["test.tokenmint.dev/churn"] = fmt.Sprint(i)
	Expect(k8sClient.Patch(ctx, s, patch)).To(Succeed())
}

var _ = Describe("a hostile tenant's writes", func() {
	It("do not make the manager read Secrets per AccessToken per credential, while a neighbour renews on time", func() {
		const (
			secrets      = issuer.MaxCredentialSecrets
			accessTokens = 40
			rounds       = 12
		)
		By("an honest tenant with a one-minute token")
		honest := newEnv()
		honest.fake.Lifetime = time.Minute
		canary := waitReady(honest.accessToken("canary"))

		By(fmt.Sprintf("a hostile issuer reading %d credential Secrets, with %d AccessTokens", secrets, accessTokens))
		hostile := newEnvWith(withCredentialSecrets(secrets))
		createExtraSecrets(hostile.ns, secrets)
		var ats []*tokensv1alpha1.AccessToken
		for i := range accessTokens {
			ats = append(ats, hostile.accessToken(fmt.Sprintf("churn-%d", i)))
		}
		for _, at := range ats {
			waitReady(at)
		}

		By("one credential Secret annotated every ten seconds")
		gets, calls := secretGets.in(hostile.ns), hostile.fake.Calls()
		renewals := 0
		for i := range rounds {
			annotate(hostile.ns, "extra-3", i)
			clk.Step(10 * time.Second)
			if cur := get(canary); !clk.Now().Before(cur.Status.RenewalTime.Time) {
				poke(cur)
				Eventually(func() string { return get(canary).Status.TokenFingerprint }, 10*time.Second).
					ShouldNot(Equal(cur.Status.TokenFingerprint), "the honest token renews on time")
				renewals++
			}
			cur := get(canary)
			Expect(cur.Status.ExpiresAt.Time.After(clk.Now())).To(BeTrue(), "the honest token never expires")
			Expect(ready(cur).Status).To(Equal(metav1.ConditionTrue))
		}
		Expect(renewals).To(BeNumerically(">=", 2))

		By("the hostile AccessTokens noticed the change and minted within their budget")
		Eventually(hostile.fake.Calls, 10*time.Second).Should(BeNumerically(">", calls))

		By("the reads stay within a bound that does not grow with AccessTokens × Secrets")
		// Per change: the issuer reconciler reads the changed Secret, and the
		// first mint after it reads its values once for all. Per mint: the
		// AccessToken's own Secret may be read live before the write.
		bound := func() int { return 2*rounds + 2*(hostile.fake.Calls()-calls) + 10 }
		Consistently(func() int { return secretGets.in(hostile.ns) - gets }, 3*time.Second, 100*time.Millisecond).
			Should(BeNumerically("<=", bound()))
		GinkgoWriter.Printf("Secret GETs in the hostile namespace over %d changes: %d, with %d mints; %d AccessTokens × %d Secrets\n",
			rounds, secretGets.in(hostile.ns)-gets, hostile.fake.Calls()-calls, accessTokens, secrets)
	})

	It("cannot have an issuer name more credential Secrets than the bound, nor have them read", func() {
		e := newEnvWith(withCredentialSecrets(issuer.MaxCredentialSecrets + 1))
		createExtraSecrets(e.ns, issuer.MaxCredentialSecrets+1)
		at := e.accessToken("too-many")
		Eventually(func(g Gomega) {
			c := renewing(at)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonInvalidConfig))
			g.Expect(c.Message).To(ContainSubstring("distinct credential Secrets"))
		}, 20*time.Second).Should(Succeed())
		ti := &tokensv1alpha1.TokenIssuer{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "cable"}, ti)).To(Succeed())
			g.Expect(ti.Status.Conditions).To(ContainElement(And(
				HaveField("Type", tokensv1alpha1.ConditionReady), HaveField("Reason", tokensv1alpha1.ReasonInvalidConfig))))
		}, 20*time.Second).Should(Succeed())
		Expect(e.fake.Calls()).To(BeZero())
		Expect(secretGets.in(e.ns)).To(BeZero(), "no credential Secret of a refused issuer is read")
	})
})
