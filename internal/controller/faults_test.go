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
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/test/fakes"
)

// faultCase is one way a token endpoint can fail, and what the AccessToken must
// then say, when it must try again, and which outcome the metric counts.
type faultCase struct {
	fault   func(now time.Time) fakes.Fault
	reason  string
	message string
	class   issuer.Class
	backoff time.Duration
}

func status(code int, body string) func(time.Time) fakes.Fault {
	return func(time.Time) fakes.Fault { return fakes.Fault{Status: code, Body: body} }
}

func tokenWithExpiry(expiry string) func(time.Time) fakes.Fault {
	return func(time.Time) fakes.Fault {
		return fakes.Fault{Status: http.StatusOK, Body: `{"token":"CANARY-FAULT-TOKEN","expiry":` + expiry + `}`}
	}
}

// Faults through the real controller: each keeps the last good token byte for
// byte, sets the condition, schedules the retry and counts the outcome.
var _ = Describe("a failing token endpoint", func() {
	DescribeTable("keeps the last good token and backs off",
		func(c faultCase) {
			e := newEnvWith(func(s *tokensv1alpha1.IssuerSpec) { s.Timeout = &tokensv1alpha1.Duration{Duration: time.Second} })
			at := waitReady(e.accessToken("faulty"))
			good, err := secretOf(at)
			Expect(err).NotTo(HaveOccurred())
			counted := testutil.ToFloat64(issuerRequests.WithLabelValues("TokenIssuer", e.ns, "cable", outcome(&issuer.Error{Class: c.class})))

			clk.SetTime(at.Status.RenewalTime.Add(time.Second))
			now := clk.Now()
			e.fake.FailNext(1, c.fault(now))
			poke(at)
			Eventually(func() string { return renewing(at).Reason }, 15*time.Second).Should(Equal(c.reason))

			cond := renewing(at)
			Expect(cond.Status).To(Equal(metav1.ConditionFalse))
			Expect(cond.Message).To(ContainSubstring(c.message))
			Expect(cond.Message).NotTo(ContainSubstring("CANARY"))
			st := get(at).Status
			Expect(st.FailedAttempts).To(Equal(int32(1)))
			Expect(st.RenewalTime.Sub(now)).To(Equal(c.backoff), "retry scheduled at %v after the failure", st.RenewalTime.Sub(now))
			Expect(ready(at).Status).To(Equal(metav1.ConditionTrue), "the last good token is still valid")
			after, err := secretOf(at)
			Expect(err).NotTo(HaveOccurred())
			Expect(after.Data).To(Equal(good.Data), "the Secret changed")
			Expect(after.ResourceVersion).To(Equal(good.ResourceVersion), "the Secret was rewritten")
			Expect(testutil.ToFloat64(issuerRequests.WithLabelValues("TokenIssuer", e.ns, "cable", outcome(&issuer.Error{Class: c.class})))).To(Equal(counted + 1))
			Eventually(func() []string { return eventReasons(e.ns) }, 10*time.Second).Should(ContainElement(c.reason))
		},
		Entry("429 with Retry-After in seconds", faultCase{
			fault: func(time.Time) fakes.Fault {
				return fakes.Fault{Status: 429, Header: http.Header{"Retry-After": {"120"}}, Body: `{"message":"slow down"}`}
			},
			reason: tokensv1alpha1.ReasonRateLimited, message: "HTTP 429", class: issuer.ClassRateLimited, backoff: 120 * time.Second}),
		Entry("429 with Retry-After as an HTTP date", faultCase{
			fault: func(now time.Time) fakes.Fault {
				return fakes.Fault{Status: 429, Header: http.Header{"Retry-After": {now.Add(90 * time.Second).UTC().Format(http.TimeFormat)}}}
			},
			reason: tokensv1alpha1.ReasonRateLimited, message: "HTTP 429", class: issuer.ClassRateLimited, backoff: 90 * time.Second}),
		Entry("500", faultCase{fault: status(500, `{"message":"internal"}`),
			reason: tokensv1alpha1.ReasonEndpointError, message: "HTTP 500", class: issuer.ClassRetryable, backoff: time.Second}),
		Entry("502", faultCase{fault: status(502, "<html>bad gateway</html>"),
			reason: tokensv1alpha1.ReasonEndpointError, message: "HTTP 502", class: issuer.ClassRetryable, backoff: time.Second}),
		Entry("503", faultCase{fault: status(503, ""),
			reason: tokensv1alpha1.ReasonEndpointError, message: "HTTP 503", class: issuer.ClassRetryable, backoff: time.Second}),
		Entry("504", faultCase{fault: status(504, ""),
			reason: tokensv1alpha1.ReasonEndpointError, message: "HTTP 504", class: issuer.ClassRetryable, backoff: time.Second}),
		Entry("a connection reset", faultCase{fault: func(time.Time) fakes.Fault { return fakes.Fault{Reset: true} },
			reason: tokensv1alpha1.ReasonEndpointError, message: "", class: issuer.ClassRetryable, backoff: time.Second}),
		Entry("a timeout", faultCase{fault: func(time.Time) fakes.Fault { return fakes.Fault{Hang: true} },
			reason: tokensv1alpha1.ReasonEndpointError, message: "", class: issuer.ClassRetryable, backoff: time.Second}),
		Entry("a body that never ends", faultCase{
			fault: func(time.Time) fakes.Fault {
				return fakes.Fault{Body: `{"token":"CANARY-PARTIAL`, StallAfterBody: true}
			},
			reason: tokensv1alpha1.ReasonEndpointError, message: "", class: issuer.ClassRetryable, backoff: time.Second}),
		Entry("a 10 MiB body", faultCase{fault: status(200, `{"token":"`+strings.Repeat("a", 10<<20)+`"}`),
			reason: tokensv1alpha1.ReasonInvalidResponse, message: "larger than 262144 bytes", class: issuer.ClassInvalidResponse, backoff: time.Second}),
		Entry("a body that is not JSON", faultCase{fault: status(200, "<html>maintenance</html>"),
			reason: tokensv1alpha1.ReasonInvalidResponse, message: "JSON", class: issuer.ClassInvalidResponse, backoff: time.Second}),
		Entry("no token", faultCase{fault: status(200, `{"expiry": 1999999999}`),
			reason: tokensv1alpha1.ReasonInvalidResponse, message: "token", class: issuer.ClassInvalidResponse, backoff: time.Second}),
		Entry("an expiry in the past", faultCase{
			fault: func(now time.Time) fakes.Fault {
				return tokenWithExpiry(fmt.Sprint(now.Add(-time.Hour).Unix()))(now)
			},
			reason: tokensv1alpha1.ReasonInvalidResponse, message: "expiry", class: issuer.ClassInvalidResponse, backoff: time.Second}),
		Entry("an expiry of zero", faultCase{fault: tokenWithExpiry("0"),
			reason: tokensv1alpha1.ReasonInvalidResponse, message: "expiry", class: issuer.ClassInvalidResponse, backoff: time.Second}),
		Entry("a negative expiry", faultCase{fault: tokenWithExpiry("-5"),
			reason: tokensv1alpha1.ReasonInvalidResponse, message: "expiry", class: issuer.ClassInvalidResponse, backoff: time.Second}),
		Entry("an absurdly far expiry", faultCase{fault: tokenWithExpiry("99999999999"),
			reason: tokensv1alpha1.ReasonInvalidResponse, message: "expiry", class: issuer.ClassInvalidResponse, backoff: time.Second}),
		Entry("401, terminal", faultCase{fault: status(401, `{"message":"invalid token"}`),
			reason: tokensv1alpha1.ReasonUnauthorized, message: "invalid token", class: issuer.ClassUnauthorized, backoff: time.Minute}),
		Entry("a redirect to another host", faultCase{
			fault: func(time.Time) fakes.Fault {
				return fakes.Fault{Status: 302, Header: http.Header{"Location": {"https://elsewhere.example.com/token"}}}
			},
			reason: tokensv1alpha1.ReasonInvalidResponse, message: "redirect", class: issuer.ClassInvalidResponse, backoff: time.Second}),
		Entry("a redirect to the cloud metadata address", faultCase{
			fault: func(time.Time) fakes.Fault {
				return fakes.Fault{Status: 307, Header: http.Header{"Location": {"http://169.254.169.254/latest/meta-data/"}}}
			},
			reason: tokensv1alpha1.ReasonInvalidResponse, message: "redirect", class: issuer.ClassInvalidResponse, backoff: time.Second}),
	)

	It("refuses a certificate from an unknown authority", func() {
		srv := newServer(http.NotFoundHandler())
		srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		srv.StartTLS()
		DeferCleanup(srv.Close)
		e := newEnvWith(func(s *tokensv1alpha1.IssuerSpec) {
			s.Request.URL = srv.URL + fakes.TransactionAPIPath
			s.AllowInsecureHTTP = false
		})
		at := e.accessToken("untrusted")
		Eventually(func() string {
			if c := renewing(at); c != nil {
				return c.Message
			}
			return ""
		}, 10*time.Second).Should(ContainSubstring("certificate"))
		Expect(ready(at).Status).To(Equal(metav1.ConditionFalse))
	})
})

var _ = Describe("a provider that reports failure in its body", func() {
	DescribeTable("keeps the last good token",
		func(provider, body, reason, message string) {
			s, fake := startSample(provider)
			at := waitReady(s.AccessToken)
			good, err := secretOf(at)
			Expect(err).NotTo(HaveOccurred())

			clk.SetTime(at.Status.RenewalTime.Add(time.Second))
			fake.FailNext(1, fakes.Fault{Status: http.StatusOK, Body: body})
			poke(at)
			Eventually(func() string { return renewing(at).Reason }, 15*time.Second).Should(Equal(reason))
			Expect(renewing(at).Message).To(ContainSubstring(message))
			Expect(renewing(at).Message).NotTo(ContainSubstring("CANARY"))
			after, err := secretOf(at)
			Expect(err).NotTo(HaveOccurred())
			Expect(after.Data).To(Equal(good.Data))
		},
		Entry("success: false inside a 200", "paisr-invoicing",
			`{"success": false, "message": "description already in use"}`,
			tokensv1alpha1.ReasonInvalidResponse, "description already in use"),
		Entry("a JWT without exp", "ca-authentication",
			`{"token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJDQU5BUlkifQ.c2ln"}`,
			tokensv1alpha1.ReasonInvalidResponse, "exp"),
		Entry("a malformed JWT", "ca-authentication",
			`{"token": "CANARY-not-a-jwt"}`,
			tokensv1alpha1.ReasonInvalidResponse, "JWT"),
	)
})
