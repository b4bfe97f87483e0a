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
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	kt "github.com/tokenmint/tokenmint/internal/plugin"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// copiedFields are the response.copy keys each provider's fake answers with.
var copiedFields = map[string][]string{
	"cable-transactions":        {"organization_id", "organization_name"},
	"banking-oauth-password":    {"di_fiid", "di_ficustomer"},
	"oauth2-client-credentials": {"scope"},
	"github-app":                {"repository_selection"},
}

// placed is a sample created in the cluster, pointed at its running fake.
type placed struct {
	sample *samples.Sample
	base   *fakes.Base
	// args name the issuer for test, with the sample AccessToken's parameters.
	args []string
}

// place creates the sample's credential Secrets, ServiceAccounts and issuer
// (not its AccessToken) in a namespace of its own, pointed at a fresh fake
// on 127.0.0.1.
func place(p samples.Provider) *placed {
	GinkgoHelper()
	ns := newNamespace()
	fake, base := p.NewFake()
	srv := fakes.Start(GinkgoTB(), fake)
	s, err := samples.Load(p.File)
	Expect(err).NotTo(HaveOccurred())
	Expect(s.PointAt(srv.URL)).To(Succeed())
	s.FillCredentials()
	s.Place(ns, credentialsNamespace, "-"+ns)
	for _, o := range s.Objects() {
		if o == client.Object(s.AccessToken) {
			continue
		}
		Expect(k8sClient.Create(ctx, o)).To(Succeed())
		if o.GetNamespace() == "" || o.GetNamespace() == credentialsNamespace {
			DeferCleanup(k8sClient.Delete, ctx, o)
		}
	}
	pl := &placed{sample: s, base: base}
	if s.ClusterTokenIssuer != nil {
		pl.args = []string{"test", s.ClusterTokenIssuer.Name, "--cluster", "--credentials-namespace", credentialsNamespace}
	} else {
		pl.args = []string{"test", s.TokenIssuer.Name, "-n", ns}
	}
	for name, value := range s.AccessToken.Spec.Parameters {
		pl.args = append(pl.args, "--param", name+"="+string(value.Raw))
	}
	return pl
}

// canaries are the values test must never print: every credential the
// sample's Secrets hold (and each line of a PEM key), every token and refresh
// token the fake issued, and every signed assertion it received.
func (pl *placed) canaries() []string {
	var out []string
	for _, sec := range pl.sample.Secrets {
		for _, v := range sec.StringData {
			out = append(out, v, url.QueryEscape(v), base64.StdEncoding.EncodeToString([]byte(v)))
			for _, line := range strings.Split(v, "\n") {
				if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
					out = append(out, line)
				}
			}
			// A JSON key file's private key, as it sits escaped in the file.
			var doc map[string]any
			if json.Unmarshal([]byte(v), &doc) == nil {
				if key, ok := doc["private_key"].(string); ok {
					for _, line := range strings.Split(key, "\n") {
						if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
							out = append(out, line)
						}
					}
				}
			}
		}
	}
	for _, t := range pl.base.Issued() {
		out = append(out, t.Value, t.RefreshToken)
		out = append(out, t.Secrets...)
	}
	return append(out, pl.base.CredentialsReceived()...)
}

var _ = Describe("test --send", func() {
	for _, p := range samples.Providers {
		It("maps a real answer of the "+p.Name+" fake and shows no credential", func() {
			pl := place(p)
			spec := pl.sample.Spec()

			By("rendering the request without sending it")
			r := plugin(append(pl.args, "-o", "json")...)
			Expect(r.code).To(Equal(0), r.stderr)
			Expect(pl.base.Calls()).To(BeZero(), "nothing is sent without --send")
			var dry kt.TestView
			Expect(json.Unmarshal([]byte(r.stdout), &dry)).To(Succeed())
			Expect(dry.Request.URL).To(HavePrefix("http://127.0.0.1:"))
			Expect(dry.Result).To(BeNil())
			outputs := r.output()

			By("sending one request, printed as JSON")
			r = plugin(append(pl.args, "--send", "--allow-private-destinations", "-o", "json")...)
			Expect(r.code).To(Equal(0), r.output())
			outputs += r.output()
			var v kt.TestView
			Expect(json.Unmarshal([]byte(r.stdout), &v)).To(Succeed())
			issued := pl.base.Issued()
			Expect(issued).To(HaveLen(1))
			res := v.Result
			Expect(res).NotTo(BeNil())
			Expect(res.Token.Bytes).To(Equal(len(issued[0].Value)))
			Expect(res.IssuedAt.Time).To(BeTemporally("~", time.Now(), time.Minute))
			if spec.Response.Expiry != nil {
				Expect(res.ExpiresAt).NotTo(BeNil())
				Expect(res.ExpiresAt.Time).To(BeTemporally("~", issued[0].ExpiresAt, time.Second))
			} else {
				Expect(res.ExpiresAt).To(BeNil())
			}
			if spec.Response.Expiry != nil && spec.Response.Expiry.Format == "JWT" {
				Expect(res.Token.JWT).To(BeTrue())
				Expect(res.Token.JWTExpiresAt.Time).To(BeTemporally("==", res.ExpiresAt.Time))
			}
			if issued[0].RefreshToken != "" {
				Expect(res.RefreshToken).NotTo(BeNil())
				Expect(res.RefreshToken.Bytes).To(Equal(len(issued[0].RefreshToken)))
			} else {
				Expect(res.RefreshToken).To(BeNil())
			}
			if spec.Response.TokenID != "" {
				Expect(res.TokenID).To(Equal(issued[0].ID))
			}
			if spec.Revoke != nil {
				Expect(res.Revocation).To(Equal("revoked"))
				Expect(pl.base.Issued()[0].Revoked).To(BeTrue(), "the token the test obtained is revoked at once")
			} else {
				Expect(res.Revocation).To(HavePrefix("the issuer cannot revoke"))
			}
			for _, key := range copiedFields[p.Name] {
				Expect(res.Fields).To(HaveKeyWithValue(key, Not(BeEmpty())))
			}

			By("sending one request, printed as text")
			r = plugin(append(pl.args, "--send", "--allow-private-destinations")...)
			Expect(r.code).To(Equal(0), r.output())
			outputs += r.output()
			Expect(r.stdout).To(ContainSubstring("The call succeeded"))
			Expect(r.stdout).To(MatchRegexp(`Token:\s+\d+ bytes, .*\(value not shown\)`))
			Expect(pl.base.Issued()).To(HaveLen(2))
			if spec.Revoke != nil {
				By("keeping the token when asked to")
				r = plugin(append(pl.args, "--send", "--allow-private-destinations", "--revoke=false")...)
				Expect(r.code).To(Equal(0), r.output())
				outputs += r.output()
				Expect(r.stdout).To(MatchRegexp(`Afterwards:\s+not revoked \(--revoke=false\)`))
				Expect(pl.base.Issued()[2].Revoked).To(BeFalse())
			}

			expectNoneOf(outputs, pl.canaries())
		})
	}

	It("masks the credentials of the request it shows, and sends nothing without --send", func() {
		pl := place(samples.Providers[0]) // cable-transactions: a bearer token and a JSON body
		r := plugin(pl.args...)
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(ContainSubstring("ClusterTokenIssuer/" + pl.sample.ClusterTokenIssuer.Name +
			": the request (credentials from namespace " + credentialsNamespace + ", masked)"))
		Expect(r.stdout).To(MatchRegexp(`\nPOST http://127\.0\.0\.1:\d+/auth/token\n`))
		Expect(r.stdout).To(ContainSubstring("\nAuthorization: Bearer <Secret cable-auth-token/token>\n"))
		Expect(r.stdout).To(ContainSubstring(`"organization_id": "org_9f8b7c6d5e4a3b2c1d0e"`))
		Expect(r.stdout).To(ContainSubstring(`"expiry_seconds": 3600`))
		Expect(pl.base.Calls()).To(BeZero())
		expectNoneOf(r.output(), pl.canaries())

		By("taking parameters from the command line, checked against the issuer's declarations")
		r = plugin("test", pl.sample.ClusterTokenIssuer.Name, "--cluster", "--credentials-namespace", credentialsNamespace,
			"--param", "lifetimeSeconds=100")
		Expect(r.code).To(Equal(1))
		Expect(r.stderr).To(ContainSubstring(`parameter "lifetimeSeconds" is 100, below the minimum 300`))
	})

	It("tests the issuer of an AccessToken with its parameters", func() {
		var invoicing samples.Provider
		for _, p := range samples.Providers {
			if p.Name == "paisr-invoicing" {
				invoicing = p
			}
		}
		pl := place(invoicing) // its scopes parameter is required
		at := pl.sample.AccessToken
		Expect(k8sClient.Create(ctx, at)).To(Succeed())

		r := plugin("test", "--accesstoken", at.Name, "-n", at.Namespace, "-o", "json")
		Expect(r.code).To(Equal(0), r.stderr)
		var v kt.TestView
		Expect(json.Unmarshal([]byte(r.stdout), &v)).To(Succeed())
		Expect(v.Issuer).To(Equal("TokenIssuer/" + pl.sample.TokenIssuer.Name))
		Expect(v.Request.Body).To(Equal(`{"description":"Billing service (prod)","scopes":["invoices.read"]}`))

		By("with a parameter replaced")
		r = plugin("test", "--accesstoken", at.Name, "-n", at.Namespace, "-o", "json", "--param", `scopes=["invoices.write"]`)
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(json.Unmarshal([]byte(r.stdout), &v)).To(Succeed())
		Expect(v.Request.Body).To(Equal(`{"description":"Billing service (prod)","scopes":["invoices.write"]}`))
		expectNoneOf(r.output(), pl.canaries())

		r = plugin("test", pl.sample.TokenIssuer.Name, "--accesstoken", at.Name, "-n", at.Namespace)
		Expect(r.code).To(Equal(1))
		Expect(r.stderr).To(ContainSubstring("not both"))
	})

	It("takes a parameter bound to a namespace label from the namespace, as the manager does", func() {
		var gh samples.Provider
		for _, p := range samples.Providers {
			if p.Name == "github-app" {
				gh = p
			}
		}
		gh.File = "github-app-teams.yaml"
		pl := place(gh)
		ns := pl.sample.AccessToken.Namespace
		args := append(append([]string{}, pl.args...), "-n", ns, "-o", "json")

		By("from a namespace without the label")
		r := plugin(args...)
		Expect(r.code).NotTo(Equal(0), r.stdout)
		Expect(r.stderr).To(ContainSubstring(`label "github.example.com/installation-id"`))

		By("from a namespace with it")
		n := &corev1.Namespace{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Name: ns}, n)).To(Succeed())
		n.Labels = map[string]string{"github.example.com/installation-id": "56781234"}
		Expect(k8sClient.Update(ctx, n)).To(Succeed())
		r = plugin(args...)
		Expect(r.code).To(Equal(0), r.output())
		var v kt.TestView
		Expect(json.Unmarshal([]byte(r.stdout), &v)).To(Succeed())
		Expect(v.Request.URL).To(HaveSuffix("/app/installations/56781234/access_tokens"))
		Expect(pl.base.Calls()).To(BeZero(), "nothing is sent without --send")
		expectNoneOf(r.output(), pl.canaries())
	})

	It("shows a Basic header as the base64 of where its parts come from", func() {
		var banking samples.Provider
		for _, p := range samples.Providers {
			if p.Name == "banking-oauth-password" {
				banking = p
			}
		}
		pl := place(banking)
		r := plugin(pl.args...)
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(ContainSubstring("\nAuthorization: Basic base64(<Secret banking-credentials/consumerKey>:<Secret banking-credentials/consumerSecret>)\n"))
		Expect(r.stdout).To(ContainSubstring("password=<Secret banking-credentials/password>"))
		expectNoneOf(r.output(), pl.canaries())

		By("as YAML, with the masks written as they are")
		r = plugin(append(pl.args, "-o", "yaml")...)
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(ContainSubstring("value: Basic base64(<Secret banking-credentials/consumerKey>:<Secret banking-credentials/consumerSecret>)\n"))
		expectNoneOf(r.output(), pl.canaries())
	})

	It("keeps a TokenIssuer's call off private addresses, as the manager does", func() {
		var invoicing samples.Provider
		for _, p := range samples.Providers {
			if p.Name == "paisr-invoicing" {
				invoicing = p
			}
		}
		pl := place(invoicing)
		Expect(pl.sample.TokenIssuer).NotTo(BeNil())
		r := plugin(append(pl.args, "--send", "-o", "json")...)
		Expect(r.code).To(Equal(1))
		var v kt.TestView
		Expect(json.Unmarshal([]byte(r.stdout), &v)).To(Succeed())
		Expect(v.Result).To(BeNil())
		Expect(v.Error.Class).To(Equal("InvalidConfig"))
		Expect(v.Error.Message).To(ContainSubstring("destination address is not public"))
		Expect(pl.base.Calls()).To(BeZero())
		expectNoneOf(r.output(), pl.canaries())
	})

	It("hides a credential the endpoint echoes into a copied field", func() {
		pl := place(samples.Providers[0]) // cable-transactions copies organization_id
		credential := samples.Credential("cable-auth-token", "token")
		expiry := time.Now().Add(time.Hour).Unix()
		pl.base.FailNext(1, fakes.Fault{Status: 200, Body: fmt.Sprintf(
			`{"token": "echoed-token-canary", "expiry": %d, "organization_id": "org %s", "organization_name": "Example"}`, expiry, credential)})
		r := plugin(append(pl.args, "--send", "-o", "json")...)
		Expect(r.code).To(Equal(0), r.output())
		var v kt.TestView
		Expect(json.Unmarshal([]byte(r.stdout), &v)).To(Succeed())
		Expect(v.Result.Fields).To(Equal(map[string]string{"organization_id": "org [redacted]", "organization_name": "Example"}))
		Expect(v.Result.Token.Bytes).To(Equal(len("echoed-token-canary")))
		expectNoneOf(r.output(), append(pl.canaries(), "echoed-token-canary"))
	})

	It("never reads tokenmint's own Secrets as credentials, as the manager does", func() {
		issuerReading := func(ns, secretName string) *tokensv1alpha1.TokenIssuer {
			ti := &tokensv1alpha1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "greedy-" + rand.String(4), Namespace: ns},
				Spec: tokensv1alpha1.IssuerSpec{
					Credentials: []tokensv1alpha1.Credential{{Name: "key",
						SecretKeyRef: &tokensv1alpha1.SecretKeySelector{Name: secretName, Key: "key"}}},
					Request: tokensv1alpha1.RequestSpec{URL: "https://auth.example.com/token", Auth: &tokensv1alpha1.AuthSpec{
						Bearer: &tokensv1alpha1.ValueSource{Credential: "key"}}},
					Response: tokensv1alpha1.ResponseSpec{Token: "token"}}}
			Expect(k8sClient.Create(ctx, ti)).To(Succeed())
			DeferCleanup(k8sClient.Delete, ctx, ti)
			return ti
		}

		By("a state Secret, wherever it is")
		ns := newNamespace()
		state := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "looks-harmless", Namespace: ns, Labels: map[string]string{
			tokensv1alpha1.LabelManagedBy: tokensv1alpha1.ManagedByValue, secret.LabelComponent: secret.ComponentState}},
			StringData: map[string]string{"key": "state-canary"}}
		Expect(k8sClient.Create(ctx, state)).To(Succeed())
		ti := issuerReading(ns, state.Name)
		r := plugin("test", ti.Name, "-n", ns)
		Expect(r.code).To(Equal(1))
		Expect(r.stderr).To(Equal("error: the Secret " + ns + "/looks-harmless is tokenmint's own and can never be read as a credential\n"))
		expectNoneOf(r.output(), []string{"state-canary"})

		By("the fingerprint key of the operator namespace")
		ti = issuerReading(operatorNamespace, "tokenmint-fingerprint-key")
		r = plugin("test", ti.Name, "-n", operatorNamespace)
		Expect(r.code).To(Equal(1))
		Expect(r.stderr).To(ContainSubstring("tokenmint-system/tokenmint-fingerprint-key is tokenmint's own"))
	})

	It("reports the provider's refusal without the credentials it echoes", func() {
		pl := place(samples.Providers[0])
		pl.base.FailNext(1, fakes.Fault{Status: 401, Body: `{"message": "bad token ` + samples.Credential("cable-auth-token", "token") + `"}`})
		r := plugin(append(pl.args, "--send")...)
		Expect(r.code).To(Equal(1))
		Expect(r.stdout).To(ContainSubstring("The call failed: endpoint answered HTTP 401 Unauthorized: bad token [redacted] (Unauthorized)"))
		Expect(r.stderr).To(Equal("error: the call failed (Unauthorized)\n"))
		expectNoneOf(r.output(), pl.canaries())
	})
})
