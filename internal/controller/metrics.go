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
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
)

// Metrics. Labels never hold a value from a token, a credential or a response.
var (
	tokenExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tokenmint_accesstoken_expiration_timestamp_seconds",
		Help: "When the current token of an AccessToken expires (unix seconds; absent when unknown).",
	}, []string{"namespace", "name"})
	tokenRenewal = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tokenmint_accesstoken_renewal_timestamp_seconds",
		Help: "When the token of an AccessToken will next be renewed or retried (unix seconds).",
	}, []string{"namespace", "name"})
	tokenReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tokenmint_accesstoken_ready",
		Help: "1 when the AccessToken's Secret holds a valid token, else 0.",
	}, []string{"namespace", "name"})
	tokenFailures = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tokenmint_accesstoken_failed_attempts",
		Help: "Consecutive failed attempts to obtain a token for the AccessToken.",
	}, []string{"namespace", "name"})
	tokensIssued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenmint_tokens_issued_total",
		Help: "Tokens obtained and written, by issuer.",
	}, []string{"issuer"})
	issuerRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenmint_issuer_requests_total",
		Help: "Calls to token endpoints, by issuer and outcome.",
	}, []string{"issuer", "outcome"})
	issuerDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tokenmint_issuer_request_duration_seconds",
		Help:    "Duration of calls to token endpoints, by issuer.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	}, []string{"issuer"})
)

func init() {
	metrics.Registry.MustRegister(tokenExpiry, tokenRenewal, tokenReady, tokenFailures, tokensIssued, issuerRequests, issuerDuration)
}

// outcome names the result of a call for the requests metric.
func outcome(err error) string {
	if err == nil {
		return "success"
	}
	var ie *issuer.Error
	if errors.As(err, &ie) {
		return ie.Class.String()
	}
	return "error"
}

func observeCall(issuerKey string, start, end time.Time, err error) {
	if c := issuer.ClassOf(err); err != nil && (c == issuer.ClassInvalidParameters || c == issuer.ClassInvalidConfig) {
		return // refused before any request was sent
	}
	issuerRequests.WithLabelValues(issuerKey, outcome(err)).Inc()
	issuerDuration.WithLabelValues(issuerKey).Observe(end.Sub(start).Seconds())
}

func recordMetrics(at *tokensv1alpha1.AccessToken) {
	ns, name := at.Namespace, at.Name
	if at.Status.ExpiresAt != nil {
		tokenExpiry.WithLabelValues(ns, name).Set(float64(at.Status.ExpiresAt.Unix()))
	} else {
		tokenExpiry.DeleteLabelValues(ns, name)
	}
	if at.Status.RenewalTime != nil {
		tokenRenewal.WithLabelValues(ns, name).Set(float64(at.Status.RenewalTime.Unix()))
	} else {
		tokenRenewal.DeleteLabelValues(ns, name)
	}
	ready := 0.0
	if meta.IsStatusConditionTrue(at.Status.Conditions, tokensv1alpha1.ConditionReady) {
		ready = 1
	}
	tokenReady.WithLabelValues(ns, name).Set(ready)
	tokenFailures.WithLabelValues(ns, name).Set(float64(at.Status.FailedAttempts))
}

func forgetMetrics(key types.NamespacedName) {
	for _, g := range []*prometheus.GaugeVec{tokenExpiry, tokenRenewal, tokenReady, tokenFailures} {
		g.DeleteLabelValues(key.Namespace, key.Name)
	}
}
