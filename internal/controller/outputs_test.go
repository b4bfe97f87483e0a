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
	"cmp"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// withTemplate creates an AccessToken of e whose Secret is t.
func (e *env) withTemplate(name string, t tokensv1alpha1.SecretTemplate) *tokensv1alpha1.AccessToken {
	t.Name = name + "-token"
	at := &tokensv1alpha1.AccessToken{}
	at.Name, at.Namespace = name, e.ns
	at.Spec = tokensv1alpha1.AccessTokenSpec{IssuerRef: tokensv1alpha1.IssuerReference{Name: "cable"}, Secret: t}
	Expect(k8sClient.Create(ctx, at)).To(Succeed())
	return at
}

// consistent checks that every key of s built from its token was built from
// that token: a pod never reads a new token beside an old header.
func consistent(g Gomega, s *corev1.Secret) {
	token := string(s.Data["token"])
	g.Expect(string(s.Data["header"])).To(Equal("Authorization: Bearer " + token))
	var doc map[string]any
	g.Expect(json.Unmarshal(s.Data["doc.json"], &doc)).To(Succeed())
	g.Expect(doc["token"]).To(Equal(token))
	g.Expect(doc["org"]).To(Equal(string(s.Data["organization_id"])))
}

var _ = Describe("what lands in the Secret", func() {
	var e *env
	BeforeEach(func() { e = newEnv() })

	derived := []tokensv1alpha1.DerivedKey{
		{Key: "header", Template: "Authorization: Bearer ${token}"},
		{Key: "doc.json", Encoding: tokensv1alpha1.KeyEncodingJSON,
			Template: `{"token": ${token}, "org": ${copy.organization_id}, "expiresAt": ${expiresAt}, "note": "costs $$0"}`},
	}

	It("writes an image pull Secret and a basic-auth Secret Kubernetes accepts as typed", func() {
		pull := e.withTemplate("pull", tokensv1alpha1.SecretTemplate{Type: corev1.SecretTypeDockerConfigJson,
			DockerConfigJSON: &tokensv1alpha1.DockerConfigJSONOutput{Registries: []string{"ghcr.io", "127.0.0.1:5000"},
				Username: tokensv1alpha1.OutputUsername{Value: "x-access-token"}}})
		git := e.withTemplate("git", tokensv1alpha1.SecretTemplate{Type: corev1.SecretTypeBasicAuth,
			BasicAuth: &tokensv1alpha1.BasicAuthOutput{Username: tokensv1alpha1.OutputUsername{Copy: "organization_id"}}})
		waitReady(pull)
		waitReady(git)

		s, err := secretOf(pull)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Type).To(Equal(corev1.SecretTypeDockerConfigJson))
		token := string(s.Data["token"])
		var config struct {
			Auths map[string]struct{ Auth string }
		}
		Expect(json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &config)).To(Succeed())
		for _, registry := range []string{"ghcr.io", "127.0.0.1:5000"} {
			auth, err := base64.StdEncoding.DecodeString(config.Auths[registry].Auth)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(auth)).To(Equal("x-access-token:" + token))
		}

		s, err = secretOf(git)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Type).To(Equal(corev1.SecretTypeBasicAuth))
		Expect(string(s.Data[corev1.BasicAuthUsernameKey])).To(Equal("org_9f8b7c6d5e4a3b2c1d0e"))
		Expect(string(s.Data[corev1.BasicAuthPasswordKey])).To(Equal(string(s.Data["token"])))
	})

	It("writes derived keys with the token in one write, and restores an edited one without minting", func() {
		at := waitReady(e.withTemplate("files", tokensv1alpha1.SecretTemplate{Keys: derived}))
		s, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		consistent(Default, s)

		By("renewing: every version of the Secret a pod could read is consistent")
		var mu sync.Mutex
		var versions []*corev1.Secret
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if s, err := secretOf(at); err == nil {
					mu.Lock()
					versions = append(versions, s)
					mu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		clk.SetTime(at.Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(func() int { return len(e.fake.Issued()) }, 10*time.Second).Should(Equal(2))
		Eventually(func() string { s, _ := secretOf(at); return string(s.Data["token"]) }, 10*time.Second).Should(Equal(e.fake.Issued()[1].Value))
		close(stop)
		<-done
		mu.Lock()
		for _, v := range versions {
			consistent(Default, v)
		}
		mu.Unlock()

		By("restoring an edited derived key from the token the Secret holds")
		s, err = secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		patch := client.MergeFrom(s.DeepCopy())
		s.Data["header"] = []byte("Authorization: Bearer forged")
		Expect(k8sClient.Patch(ctx, s, patch)).To(Succeed())
		Eventually(func(g Gomega) {
			s, err := secretOf(at)
			g.Expect(err).NotTo(HaveOccurred())
			consistent(g, s)
		}, 10*time.Second).Should(Succeed())
		Expect(e.fake.Issued()).To(HaveLen(2), "restoring a derived key minted a token")
	})

	It("refuses, before any call, a template that uses a field the issuer does not copy", func() {
		at := e.withTemplate("unknown-field", tokensv1alpha1.SecretTemplate{Keys: []tokensv1alpha1.DerivedKey{
			{Key: "header", Template: "${copy.tenant}: ${token}"}}})
		Eventually(func() string {
			if c := renewing(at); c != nil && c.Reason == tokensv1alpha1.ReasonInvalidConfig {
				return c.Message
			}
			return ""
		}, 10*time.Second).Should(ContainSubstring(`uses the field "tenant", which the issuer does not copy`))
		Expect(e.fake.Calls()).To(BeZero())
		_, err := secretOf(at)
		Expect(err).To(HaveOccurred(), "a Secret was written")
	})
})

var _ = Describe("the previous token", func() {
	It("stays under previousKey after a renewal until its window ends, and leaves before it is revoked", func() {
		s, base := startSample("oauth2-client-credentials", func(s *samples.Sample) {
			s.AccessToken.Spec.Secret.PreviousKey = "token.previous"
			s.AccessToken.Spec.Secret.PreviousKeyFor = &tokensv1alpha1.Duration{Duration: 10 * time.Minute}
		})
		at := waitReady(s.AccessToken)
		first := base.Issued()[0].Value
		sec, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(sec.Data).NotTo(HaveKey("token.previous"))

		// The revocation endpoint notes whether the Secret still offered the
		// token being revoked.
		var mu sync.Mutex
		offeredWhenRevoked := false
		base.SetFaultHook(func(r *http.Request) *fakes.Fault {
			if strings.HasSuffix(r.URL.Path, "/revoke") {
				if cur, err := secretOf(at); err == nil && string(cur.Data["token.previous"]) == first {
					mu.Lock()
					offeredWhenRevoked = true
					mu.Unlock()
				}
			}
			return nil
		})

		By("renewing: the replaced token moves to previousKey")
		clk.SetTime(at.Status.RenewalTime.Add(time.Second))
		renewedAt := clk.Now()
		poke(at)
		Eventually(func() string { s, _ := secretOf(at); return string(s.Data["token.previous"]) }, 10*time.Second).Should(Equal(first))
		sec, err = secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(sec.Data["token"])).To(Equal(base.Issued()[1].Value))
		until, ok := secret.PreviousUntil(sec)
		Expect(ok).To(BeTrue())
		// The issuer revokes after 5 minutes: that ends the 10-minute window.
		Expect(until).To(BeTemporally("~", renewedAt.Add(5*time.Minute), time.Second))
		Expect(base.Valid(first)).To(BeTrue())

		By("removing it when the window ends, then revoking it")
		clk.SetTime(until.Add(time.Second))
		poke(at)
		Eventually(func() bool { return base.Valid(first) }, 10*time.Second).Should(BeFalse())
		sec, err = secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(sec.Data).NotTo(HaveKey("token.previous"))
		Expect(sec.Annotations).NotTo(HaveKey(secret.AnnotationPreviousUntil))
		mu.Lock()
		Expect(offeredWhenRevoked).To(BeFalse(), "the token was revoked while pods could still read it")
		mu.Unlock()
		Expect(base.Issued()).To(HaveLen(2))
	})
})

var _ = Describe("the output samples", func() {
	// alongside loads an AccessToken-only sample into the namespace of base,
	// naming base's issuer.
	alongside := func(file string, base *samples.Sample) *tokensv1alpha1.AccessToken {
		s, err := samples.Load(file)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.TokenIssuer).To(BeNil())
		at := s.AccessToken
		at.Namespace = base.AccessToken.Namespace
		kind := func(k tokensv1alpha1.IssuerKind) tokensv1alpha1.IssuerKind {
			return cmp.Or(k, tokensv1alpha1.TokenIssuerKind)
		}
		Expect(kind(at.Spec.IssuerRef.Kind)).To(Equal(kind(base.AccessToken.Spec.IssuerRef.Kind)))
		at.Spec.IssuerRef.Name = base.AccessToken.Spec.IssuerRef.Name
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		return waitReady(at)
	}

	It("make a GHCR pull Secret and git credentials from the GitHub App", func() {
		app, base := startSample("github-app")
		waitReady(app.AccessToken)

		pull := alongside("github-app-pull-secret.yaml", app)
		s, err := secretOf(pull)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Type).To(Equal(corev1.SecretTypeDockerConfigJson))
		var config struct {
			Auths map[string]struct{ Auth string }
		}
		Expect(json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &config)).To(Succeed())
		auth, err := base64.StdEncoding.DecodeString(config.Auths["ghcr.io"].Auth)
		Expect(err).NotTo(HaveOccurred())
		user, token, _ := strings.Cut(string(auth), ":")
		Expect(user).To(Equal("x-access-token"))
		Expect(base.Valid(token)).To(BeTrue())

		git := alongside("github-app-git-credentials.yaml", app)
		s, err = secretOf(git)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Type).To(Equal(corev1.SecretTypeBasicAuth))
		Expect(string(s.Data["username"])).To(Equal("x-access-token"))
		Expect(base.Valid(string(s.Data["password"]))).To(BeTrue())

		asked := map[string]any{}
		for _, t := range base.Issued() {
			asked[t.Value] = t.Request["permissions"]
		}
		Expect(asked[token]).To(Equal(map[string]string{"packages": "read"}))
		Expect(asked[string(s.Data["password"])]).To(Equal(map[string]string{"contents": "read"}))
	})

	It("write a header line, a JSON document and a .env file from the OAuth2 issuer", func() {
		oauth2, _ := startSample("oauth2-client-credentials")
		files := alongside("oauth2-token-files.yaml", oauth2)
		s, err := secretOf(files)
		Expect(err).NotTo(HaveOccurred())
		token := string(s.Data["token"])
		Expect(string(s.Data["authorization"])).To(Equal("Authorization: Bearer " + token))
		var doc map[string]any
		Expect(json.Unmarshal(s.Data["token.json"], &doc)).To(Succeed())
		Expect(doc).To(HaveKeyWithValue("access_token", token))
		Expect(doc).To(HaveKeyWithValue("scope", "orders.read"))
		Expect(doc).To(HaveKeyWithValue("expires_at", files.Status.ExpiresAt.UTC().Format(time.RFC3339)))
		Expect(string(s.Data["token.env"])).To(Equal("ACCESS_TOKEN=" + token + "\nACCESS_TOKEN_EXPIRES_AT=" +
			files.Status.ExpiresAt.UTC().Format(time.RFC3339) + "\n"))
	})
})
