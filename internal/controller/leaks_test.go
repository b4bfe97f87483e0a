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
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
)

// Every fake the suite started, so that the leak check knows every token and
// refresh token that was ever issued.
var served struct {
	sync.Mutex
	fakes []*fakes.Base
}

// serveFake starts fake on 127.0.0.1 for the current spec, on the suite's clock,
// and returns its URL.
func serveFake(fake fakes.Server, base *fakes.Base) string {
	base.Clock = clk
	served.Lock()
	served.fakes = append(served.fakes, base)
	served.Unlock()
	return fakes.Start(GinkgoTB(), fake).URL
}

// newServer is httptest.NewUnstartedServer on a port no earlier server of the
// suite had (fakes.Listen): the AccessTokens a spec leaves behind keep calling
// its servers' URLs after they are closed.
func newServer(h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = fakes.Listen(GinkgoTB())
	return srv
}

// canaries are the values that must never be shown: every credential the specs
// put in a Secret, and every token, refresh token and secret value (copied
// with response.copy[].secret) a fake issued.
// extraCanaries are credentials no Secret or fake record holds, such as the
// ServiceAccount tokens a token exchange received.
var extraCanaries struct {
	sync.Mutex
	values []string
}

func addCanaries(values ...string) {
	extraCanaries.Lock()
	defer extraCanaries.Unlock()
	extraCanaries.values = append(extraCanaries.values, values...)
}

func canaries() []string {
	out := []string{canaryAuthToken}
	extraCanaries.Lock()
	out = append(out, extraCanaries.values...)
	extraCanaries.Unlock()
	secrets := &corev1.SecretList{}
	Expect(k8sClient.List(ctx, secrets)).To(Succeed())
	for _, s := range secrets.Items {
		if s.Labels[tokensv1alpha1.LabelManagedBy] != "" || (s.Type != corev1.SecretTypeOpaque && s.Type != corev1.SecretTypeTLS) {
			continue // tokenmint's own Secrets hold the tokens, counted below
		}
		for _, v := range s.Data {
			if len(v) >= 8 {
				out = append(out, string(v))
			}
		}
	}
	served.Lock()
	defer served.Unlock()
	for _, f := range served.fakes {
		out = append(out, f.CredentialsReceived()...)
		for _, t := range f.Issued() {
			out = append(out, t.Value)
			if t.RefreshToken != "" {
				out = append(out, t.RefreshToken)
			}
			out = append(out, t.Secrets...) // such as an AWS secret access key
		}
	}
	return out
}

// checkNoLeaks runs after every spec, the manager having logged at its most
// verbose: no credential or token in any log line, event, AccessToken or issuer
// status, or the metrics page.
func checkNoLeaks() {
	{
		var where bytes.Buffer
		where.WriteString(logs.String())

		evs := &eventsv1.EventList{}
		Expect(k8sClient.List(ctx, evs)).To(Succeed())
		for _, ev := range evs.Items {
			where.WriteString(ev.Reason + " " + ev.Note + "\n")
		}
		ats := &tokensv1alpha1.AccessTokenList{}
		Expect(k8sClient.List(ctx, ats)).To(Succeed())
		for _, at := range ats.Items {
			raw, _ := json.Marshal(at.Status)
			where.Write(raw)
		}
		tis := &tokensv1alpha1.TokenIssuerList{}
		Expect(k8sClient.List(ctx, tis)).To(Succeed())
		for _, ti := range tis.Items {
			raw, _ := json.Marshal(ti.Status)
			where.Write(raw)
		}
		families, err := metrics.Registry.Gather()
		Expect(err).NotTo(HaveOccurred())
		for _, f := range families {
			_, err := expfmt.MetricFamilyToText(&where, f)
			Expect(err).NotTo(HaveOccurred())
		}

		all := where.String()
		cs := canaries()
		Expect(len(cs)).To(BeNumerically(">", 1), "the suite issued tokens to check against")
		for i, c := range cs {
			if strings.Contains(all, c) {
				Fail(fmt.Sprintf("canary %d of %d (a credential or token) was shown", i, len(cs)))
			}
		}
	}
}
