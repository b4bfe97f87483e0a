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
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
)

// Metrics. Labels never hold a value from a token, a credential or a response.
var (
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

	// accessTokens exports the per-AccessToken gauges.
	accessTokens = &accessTokenCollector{}
)

// The per-AccessToken gauges are computed from the informer cache when the
// metrics are scraped: the cache already holds every AccessToken's status, so
// ten thousand AccessTokens cost no memory for forty thousand series between
// scrapes, and a deleted AccessToken cannot leave a stale series behind.
var (
	tokenExpiryDesc = prometheus.NewDesc("tokenmint_accesstoken_expiration_timestamp_seconds",
		"When the current token of an AccessToken expires (unix seconds; absent when unknown).",
		[]string{"namespace", "name"}, nil)
	tokenRenewalDesc = prometheus.NewDesc("tokenmint_accesstoken_renewal_timestamp_seconds",
		"When the token of an AccessToken will next be renewed or retried (unix seconds).",
		[]string{"namespace", "name"}, nil)
	tokenReadyDesc = prometheus.NewDesc("tokenmint_accesstoken_ready",
		"1 when the AccessToken's Secret holds a valid token, else 0.",
		[]string{"namespace", "name"}, nil)
	tokenFailuresDesc = prometheus.NewDesc("tokenmint_accesstoken_failed_attempts",
		"Consecutive failed attempts to obtain a token for the AccessToken.",
		[]string{"namespace", "name"}, nil)
)

// accessTokenCollector reads AccessTokens from a cache at scrape time. It
// reports nothing until this replica leads: a standby's cache holds the same
// AccessTokens, and exporting them twice would double every alert.
type accessTokenCollector struct {
	mu      sync.Mutex
	reader  client.Reader
	elected <-chan struct{}
}

// use points the collector at a manager's cache.
func (c *accessTokenCollector) use(reader client.Reader, elected <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reader, c.elected = reader, elected
}

func (c *accessTokenCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{tokenExpiryDesc, tokenRenewalDesc, tokenReadyDesc, tokenFailuresDesc} {
		ch <- d
	}
}

func (c *accessTokenCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	reader, elected := c.reader, c.elected
	c.mu.Unlock()
	if reader == nil {
		return
	}
	select {
	case <-elected:
	default:
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list := &tokensv1alpha1.AccessTokenList{}
	// Read only: the cache's own objects, without copying ten thousand of them.
	if err := reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		ch <- prometheus.NewInvalidMetric(tokenReadyDesc, err)
		return
	}
	for i := range list.Items {
		at := &list.Items[i]
		ns, name := at.Namespace, at.Name
		if at.Status.ExpiresAt != nil {
			ch <- prometheus.MustNewConstMetric(tokenExpiryDesc, prometheus.GaugeValue, float64(at.Status.ExpiresAt.Unix()), ns, name)
		}
		if at.Status.RenewalTime != nil {
			ch <- prometheus.MustNewConstMetric(tokenRenewalDesc, prometheus.GaugeValue, float64(at.Status.RenewalTime.Unix()), ns, name)
		}
		ready := 0.0
		if meta.IsStatusConditionTrue(at.Status.Conditions, tokensv1alpha1.ConditionReady) {
			ready = 1
		}
		ch <- prometheus.MustNewConstMetric(tokenReadyDesc, prometheus.GaugeValue, ready, ns, name)
		ch <- prometheus.MustNewConstMetric(tokenFailuresDesc, prometheus.GaugeValue, float64(at.Status.FailedAttempts), ns, name)
	}
}

func init() {
	metrics.Registry.MustRegister(tokensIssued, issuerRequests, issuerDuration, accessTokens)
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
