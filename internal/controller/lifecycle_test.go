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
	"bytes"
	"io"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// startSample creates the sample of provider name in a fresh namespace, served
// by its fake on the suite's clock, after the changes given.
func startSample(name string, change ...func(*samples.Sample)) (*samples.Sample, *fakes.Base) {
	for _, p := range samples.Providers {
		if p.Name != name {
			continue
		}
		ns := "s-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		fake, base := p.NewFake()
		base.Clock = clk
		s, err := samples.Load(p.File)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.PointAt(serveFake(fake, base))).To(Succeed())
		s.FillCredentials()
		s.Place(ns, credentialsNamespace, "-"+ns)
		for _, c := range change {
			c(s)
		}
		for _, o := range s.Objects() {
			Expect(k8sClient.Create(ctx, o)).To(Succeed())
			if o.GetNamespace() == "" || o.GetNamespace() == credentialsNamespace {
				DeferCleanup(k8sClient.Delete, ctx, o)
			}
		}
		return s, base
	}
	Fail("no sample " + name)
	return nil, nil
}

var _ = Describe("revocation", func() {
	It("revokes a superseded token after the grace period, and the current one on deletion", func() {
		s, fake := startSample("oauth2-client-credentials")
		at := waitReady(s.AccessToken)
		Expect(at.Finalizers).To(ContainElement(RevokeFinalizer))
		first := fake.Issued()[0].Value

		By("renewing: the old token stays valid during the grace period")
		clk.SetTime(at.Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(func() int { return len(fake.Issued()) }, 10*time.Second).Should(Equal(2))
		settle(at)
		Expect(fake.Valid(first)).To(BeTrue())
		Expect(fake.CallsBy(fakes.OutcomeRevoked)).To(BeZero())

		By("revoking it once the grace period is over")
		clk.Step(5*time.Minute + time.Second)
		poke(at)
		Eventually(func() bool { return fake.Valid(first) }, 10*time.Second).Should(BeFalse())
		Expect(fake.CallsBy(fakes.OutcomeRevoked)).To(Equal(1))
		second := fake.Issued()[1].Value
		Expect(fake.Valid(second)).To(BeTrue())

		By("revoking the current token when the AccessToken is deleted")
		Expect(k8sClient.Delete(ctx, get(at))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), &tokensv1alpha1.AccessToken{}))
		}, 10*time.Second).Should(BeTrue())
		Expect(fake.Valid(second)).To(BeFalse())
		Expect(fake.CallsBy(fakes.OutcomeRevoked)).To(Equal(2))
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx,
			client.ObjectKey{Namespace: operatorNamespace, Name: secret.StateName(at)}, &corev1.Secret{}))).To(BeTrue())
	})

	It("adds no finalizer when the issuer cannot revoke", func() {
		s, _ := startSample("cable-transactions")
		Expect(waitReady(s.AccessToken).Finalizers).To(BeEmpty())
	})
})

// createDeployment creates a Deployment of one busybox container in namespace,
// annotated with annotations.
func createDeployment(namespace, name string, annotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
			},
		},
	}
	ExpectWithOffset(1, k8sClient.Create(ctx, dep)).To(Succeed())
	return dep
}

var _ = Describe("restart targets", func() {
	It("restarts the named workloads when the token changes, not when it is first issued", func() {
		e := newEnv()
		dep := createDeployment(e.ns, "reader", map[string]string{tokensv1alpha1.AnnotationRestartOn: "other, restarting"})
		at := &tokensv1alpha1.AccessToken{
			ObjectMeta: metav1.ObjectMeta{Name: "restarting", Namespace: e.ns},
			Spec: tokensv1alpha1.AccessTokenSpec{
				IssuerRef:      tokensv1alpha1.IssuerReference{Name: "cable"},
				Secret:         tokensv1alpha1.SecretTemplate{Name: "restarting-token"},
				RestartTargets: []tokensv1alpha1.RestartTarget{{Kind: "Deployment", Name: "reader"}},
			},
		}
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		at = waitReady(at)
		restartedAt := func() string {
			d := &appsv1.Deployment{}
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(dep), d)).To(Succeed())
			return d.Spec.Template.Annotations[tokensv1alpha1.AnnotationRestartedAt]
		}
		Expect(restartedAt()).To(BeEmpty())

		clk.SetTime(at.Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(restartedAt, 10*time.Second).Should(Equal(clk.Now().UTC().Format(time.RFC3339)))
	})
})

var _ = Describe("issuer status", func() {
	readyOf := func(ti *tokensv1alpha1.TokenIssuer) *metav1.Condition {
		cur := &tokensv1alpha1.TokenIssuer{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(ti), cur)).To(Succeed())
		return meta.FindStatusCondition(cur.Status.Conditions, tokensv1alpha1.ConditionReady)
	}
	reason := func(ti *tokensv1alpha1.TokenIssuer) func() string {
		return func() string {
			if c := readyOf(ti); c != nil {
				return c.Reason
			}
			return ""
		}
	}

	It("is Ready only once its credential Secret exists", func() {
		ns := "i-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		ti := &tokensv1alpha1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "cable", Namespace: ns}, Spec: transactionsSpec("http://127.0.0.1:1")}
		Expect(k8sClient.Create(ctx, ti)).To(Succeed())
		Eventually(reason(ti), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonSecretMissing))
		Expect(readyOf(ti).Message).To(ContainSubstring("Secret cable-auth"))

		Expect(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "cable-auth", Namespace: ns},
			StringData: map[string]string{"token": canaryAuthToken},
		})).To(Succeed())
		Eventually(reason(ti), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonValid))
		Expect(readyOf(ti).Status).To(Equal(metav1.ConditionTrue))
		Expect(readyOf(ti).Message).NotTo(ContainSubstring(canaryAuthToken))
	})

	It("reports a configuration the engine cannot use", func() {
		spec := transactionsSpec("http://127.0.0.1:1")
		// Admitted (the parameter is declared), but a list has no header form.
		spec.Request.Headers = []tokensv1alpha1.Header{{Name: "X-Scopes", ValueSource: tokensv1alpha1.ValueSource{Parameter: "scopes"}}}
		ti := &tokensv1alpha1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "broken", Namespace: "default"}, Spec: spec}
		Expect(k8sClient.Create(ctx, ti)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, ti)
		Eventually(reason(ti), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonInvalidConfig))
		Expect(readyOf(ti).Message).To(ContainSubstring("StringList"))
	})
})

var _ = Describe("metrics", func() {
	It("report readiness, expiry and endpoint calls, and never a credential", func() {
		e := newEnv()
		measured := e.accessToken("measured")
		waitReady(measured)
		var page bytes.Buffer
		Eventually(func(g Gomega) {
			page.Reset()
			families, err := metrics.Registry.Gather()
			g.Expect(err).NotTo(HaveOccurred())
			for _, f := range families {
				_, err := expfmt.MetricFamilyToText(&page, f)
				g.Expect(err).NotTo(HaveOccurred())
			}
			text := page.String()
			g.Expect(text).To(ContainSubstring(`tokenmint_accesstoken_ready{issuer_kind="TokenIssuer",issuer_name="cable",name="measured",namespace="` + e.ns + `"} 1`))
			g.Expect(text).To(MatchRegexp(`tokenmint_accesstoken_expiration_timestamp_seconds\{issuer_kind="TokenIssuer",issuer_name="cable",name="measured",namespace="` + e.ns + `"\} \S+`))
			g.Expect(text).To(MatchRegexp(`tokenmint_issuer_requests_total\{issuer_kind="TokenIssuer",issuer_name="cable",issuer_namespace="` + e.ns + `",outcome="success"\} 1`))
		}, 10*time.Second).Should(Succeed())
		Expect(page.String()).NotTo(ContainSubstring(canaryAuthToken))
		for _, t := range e.fake.Issued() {
			Expect(page.String()).NotTo(ContainSubstring(t.Value))
		}

		By("dropping the series of a deleted AccessToken")
		Expect(k8sClient.Delete(ctx, measured)).To(Succeed())
		Eventually(func(g Gomega) {
			families, err := metrics.Registry.Gather()
			g.Expect(err).NotTo(HaveOccurred())
			for _, f := range families {
				for _, m := range f.GetMetric() {
					for _, l := range m.GetLabel() {
						g.Expect(l.GetName() == "namespace" && l.GetValue() == e.ns).To(BeFalse(), "series %s still exported", f.GetName())
					}
				}
			}
		}, 10*time.Second).Should(Succeed())
	})

	It("exports per-AccessToken gauges only while this replica leads", func() {
		at := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "n"},
			Spec: tokensv1alpha1.AccessTokenSpec{IssuerRef: tokensv1alpha1.IssuerReference{Name: "x"}}}
		at.Status.FailedAttempts = 3
		at.Status.ExpiresAt = &metav1.Time{Time: time.Unix(1700000000, 0)}
		other := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "m"},
			Spec: tokensv1alpha1.AccessTokenSpec{IssuerRef: tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: "shared"}}}
		other.Status.RenewalTime = &metav1.Time{Time: time.Unix(1700000600, 0)}
		meta.SetStatusCondition(&other.Status.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue})
		third := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "m"},
			Spec: tokensv1alpha1.AccessTokenSpec{IssuerRef: tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.TokenIssuerKind, Name: "x"}}}
		reader := fake.NewClientBuilder().WithScheme(k8sClient.Scheme()).WithObjects(third, at, other).Build()
		elected := make(chan struct{})
		c := &accessTokenCollector{}
		c.use(reader, elected)
		inner := prometheus.NewPedanticRegistry()
		issued := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenmint_tokens_issued_total",
			Help: "Tokens obtained and written, by issuer."}, issuerLabels)
		inner.MustRegister(issued)
		issued.WithLabelValues("TokenIssuer", "n", "x").Add(0)
		reg := &registry{RegistererGatherer: inner, tokens: c}

		Expect(testutil.GatherAndCount(reg, tokenReadyName, tokenFailuresName)).To(Equal(0))
		close(elected)
		Expect(testutil.GatherAndCount(reg, tokenExpiryName, tokenRenewalName, tokenReadyName, tokenFailuresName)).To(Equal(8))
		Expect(testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP tokenmint_accesstoken_failed_attempts Consecutive failed attempts to obtain a token for the AccessToken.
# TYPE tokenmint_accesstoken_failed_attempts gauge
tokenmint_accesstoken_failed_attempts{issuer_kind="ClusterTokenIssuer",issuer_name="shared",name="a",namespace="m"} 0
tokenmint_accesstoken_failed_attempts{issuer_kind="TokenIssuer",issuer_name="x",name="a",namespace="n"} 3
tokenmint_accesstoken_failed_attempts{issuer_kind="TokenIssuer",issuer_name="x",name="b",namespace="m"} 0
# HELP tokenmint_accesstoken_expiration_timestamp_seconds When the current token of an AccessToken expires (unix seconds; absent when unknown).
# TYPE tokenmint_accesstoken_expiration_timestamp_seconds gauge
tokenmint_accesstoken_expiration_timestamp_seconds{issuer_kind="TokenIssuer",issuer_name="x",name="a",namespace="n"} 1.7e+09
# HELP tokenmint_accesstoken_ready 1 when the AccessToken's Secret holds a valid token, else 0.
# TYPE tokenmint_accesstoken_ready gauge
tokenmint_accesstoken_ready{issuer_kind="ClusterTokenIssuer",issuer_name="shared",name="a",namespace="m"} 1
tokenmint_accesstoken_ready{issuer_kind="TokenIssuer",issuer_name="x",name="a",namespace="n"} 0
tokenmint_accesstoken_ready{issuer_kind="TokenIssuer",issuer_name="x",name="b",namespace="m"} 0
# HELP tokenmint_accesstoken_renewal_timestamp_seconds When the token of an AccessToken will next be renewed or retried (unix seconds).
# TYPE tokenmint_accesstoken_renewal_timestamp_seconds gauge
tokenmint_accesstoken_renewal_timestamp_seconds{issuer_kind="ClusterTokenIssuer",issuer_name="shared",name="a",namespace="m"} 1.7000006e+09
# HELP tokenmint_tokens_issued_total Tokens obtained and written, by issuer.
# TYPE tokenmint_tokens_issued_total counter
tokenmint_tokens_issued_total{issuer_kind="TokenIssuer",issuer_name="x",issuer_namespace="n"} 0
`))).To(Succeed())

		By("writing families in name order, and series in label order, as a pedantic registry checks")
		families, err := reg.Gather()
		Expect(err).NotTo(HaveOccurred())
		Expect(slices.IsSortedFunc(families, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })).To(BeTrue())
		var page bytes.Buffer
		for _, f := range families {
			_, err := expfmt.MetricFamilyToText(&page, f)
			Expect(err).NotTo(HaveOccurred())
		}
		By("leaving out a family no AccessToken has a value for, which would fail the whole scrape")
		c.use(fake.NewClientBuilder().WithScheme(k8sClient.Scheme()).WithObjects(third).Build(), elected)
		Expect(testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP tokenmint_accesstoken_failed_attempts Consecutive failed attempts to obtain a token for the AccessToken.
# TYPE tokenmint_accesstoken_failed_attempts gauge
tokenmint_accesstoken_failed_attempts{issuer_kind="TokenIssuer",issuer_name="x",name="b",namespace="m"} 0
# HELP tokenmint_accesstoken_ready 1 when the AccessToken's Secret holds a valid token, else 0.
# TYPE tokenmint_accesstoken_ready gauge
tokenmint_accesstoken_ready{issuer_kind="TokenIssuer",issuer_name="x",name="b",namespace="m"} 0
`), tokenExpiryName, tokenRenewalName, tokenReadyName, tokenFailuresName)).To(Succeed())
		families, err = reg.Gather()
		Expect(err).NotTo(HaveOccurred())
		for _, f := range families {
			_, err := expfmt.MetricFamilyToText(io.Discard, f)
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(page.String()).To(ContainSubstring(`tokenmint_accesstoken_ready{issuer_kind="ClusterTokenIssuer",issuer_name="shared",name="a",namespace="m"} 1` + "\n" +
			`tokenmint_accesstoken_ready{issuer_kind="TokenIssuer",issuer_name="x",name="a",namespace="n"} 0` + "\n" +
			`tokenmint_accesstoken_ready{issuer_kind="TokenIssuer",issuer_name="x",name="b",namespace="m"} 0`))
	})
})
