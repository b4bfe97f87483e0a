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
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
)

// Metrics. Labels never hold a value from a token, a credential or a response.
var (
	// issuerLabels name an issuer: its kind, namespace ("" for a
	// ClusterTokenIssuer) and name.
	issuerLabels = []string{"issuer_kind", "issuer_namespace", "issuer_name"}

	tokensIssued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenmint_tokens_issued_total",
		Help: "Tokens obtained and written, by issuer.",
	}, issuerLabels)
	issuerRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenmint_issuer_requests_total",
		Help: "Calls to token endpoints, by issuer and outcome (success, retryable, unauthorized, bad_request, rate_limited, permanent, invalid_response, error).",
	}, append(slices.Clone(issuerLabels), "outcome"))
	issuerDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tokenmint_issuer_request_duration_seconds",
		Help:    "Duration of calls to token endpoints, by issuer.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	}, issuerLabels)

	// accessTokens exports the per-AccessToken gauges.
	accessTokens = &accessTokenCollector{}

	// currentCalls is the Calls whose queue the endpoint call gauges show.
	currentCalls atomic.Pointer[Calls]
	callsWaiting = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tokenmint_endpoint_calls_waiting",
		Help: "Calls to token endpoints waiting for a slot of their issuer or namespace.",
	}, func() float64 { w, _ := currentCalls.Load().Waiting(); return float64(w) })
	callsRunning = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tokenmint_endpoint_calls_in_flight",
		Help: "Calls to token endpoints in flight.",
	}, func() float64 { _, r := currentCalls.Load().Waiting(); return float64(r) })
)

// The per-AccessToken gauges are computed from the informer cache when the
// metrics are scraped: the cache already holds every AccessToken's status, so
// ten thousand AccessTokens cost no memory for forty thousand series between
// scrapes, and a deleted AccessToken cannot leave a stale series behind.
//
// They are built as the exposition's own structures, not as prometheus.Metrics
// that the registry converts and checks one by one, from the cache's objects
// without copying them: a scrape of 10,000 AccessTokens allocates 9 MB in 33
// allocations instead of 31 MB in 560,000 (BenchmarkScrapeAccessTokens). What
// a scrape holds while it is written is room the manager's heap must make.
const (
	tokenExpiryName   = "tokenmint_accesstoken_expiration_timestamp_seconds"
	tokenRenewalName  = "tokenmint_accesstoken_renewal_timestamp_seconds"
	tokenReadyName    = "tokenmint_accesstoken_ready"
	tokenFailuresName = "tokenmint_accesstoken_failed_attempts"
	tokenNoExpiryName = "tokenmint_accesstoken_expiry_unknown"
)

var (
	tokenExpiryHelp   = "When the current token of an AccessToken expires (unix seconds; absent when unknown)."
	tokenRenewalHelp  = "When the token of an AccessToken will next be renewed or retried (unix seconds)."
	tokenReadyHelp    = "1 when the AccessToken's Secret holds a valid token, else 0."
	tokenFailuresHelp = "Consecutive failed attempts to obtain a token for the AccessToken."
	tokenNoExpiryHelp = "1 for an AccessToken whose token has no known expiry (none reported, no issuer defaultLifetime, no maxAge): it is never renewed. Absent otherwise."
	labelNamespace    = "namespace"
	labelName         = "name"
	labelIssuerKind   = "issuer_kind"
	labelIssuerName   = "issuer_name"
	gaugeType         = dto.MetricType_GAUGE
)

// accessTokenCollector reads AccessTokens from a cache at scrape time. It
// reports nothing until this replica leads: a standby's cache holds the same
// AccessTokens, and exporting them twice would double every alert.
type accessTokenCollector struct {
	mu      sync.Mutex
	reader  client.Reader
	elected <-chan struct{}
	// keep, when set, reports only the AccessTokens of the namespaces it
	// accepts (a replica's shard).
	keep func(namespace string) bool
}

// only reports only the AccessTokens of the namespaces keep accepts.
func (c *accessTokenCollector) only(keep func(namespace string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keep = keep
}

func closedChannel() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

// use points the collector at a manager's cache.
func (c *accessTokenCollector) use(reader client.Reader, elected <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reader, c.elected, c.keep = reader, elected, nil
}

// gather returns the per-AccessToken families; none before this replica leads.
func (c *accessTokenCollector) gather() ([]*dto.MetricFamily, error) {
	c.mu.Lock()
	reader, elected, keep := c.reader, c.elected, c.keep
	c.mu.Unlock()
	if reader == nil {
		return nil, nil
	}
	select {
	case <-elected:
	default:
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	items, err := cachedAccessTokens(ctx, reader)
	if err != nil {
		return nil, fmt.Errorf("listing AccessTokens for their metrics: %w", err)
	}
	if keep != nil {
		items = slices.DeleteFunc(items, func(at *tokensv1alpha1.AccessToken) bool { return !keep(at.Namespace) })
	}
	n := len(items)
	// One allocation per kind of structure: the labels of an AccessToken are
	// shared by its four series.
	const perToken = 4
	pairs := make([]dto.LabelPair, perToken*n)
	labels := make([]*dto.LabelPair, perToken*n)
	// Four series per AccessToken, and a fifth for the few whose expiry is unknown.
	size := 4 * n
	for _, at := range items {
		if expiryUnknown(at) {
			size++
		}
	}
	series := make([]dto.Metric, size)
	gauges := make([]dto.Gauge, size)
	values := make([]float64, size)
	families := []*dto.MetricFamily{
		{Name: ptr.To(tokenExpiryName), Help: &tokenExpiryHelp, Type: &gaugeType, Metric: make([]*dto.Metric, 0, n)},
		{Name: ptr.To(tokenRenewalName), Help: &tokenRenewalHelp, Type: &gaugeType, Metric: make([]*dto.Metric, 0, n)},
		{Name: ptr.To(tokenReadyName), Help: &tokenReadyHelp, Type: &gaugeType, Metric: make([]*dto.Metric, 0, n)},
		{Name: ptr.To(tokenFailuresName), Help: &tokenFailuresHelp, Type: &gaugeType, Metric: make([]*dto.Metric, 0, n)},
		{Name: ptr.To(tokenNoExpiryName), Help: &tokenNoExpiryHelp, Type: &gaugeType},
	}
	next := 0
	add := func(f int, l []*dto.LabelPair, v float64) {
		values[next] = v
		gauges[next].Value = &values[next]
		series[next].Label, series[next].Gauge = l, &gauges[next]
		families[f].Metric = append(families[f].Metric, &series[next])
		next++
	}
	for i, at := range items {
		// Sorted by label name, as the exposition requires.
		kind := string(at.Spec.IssuerRef.Kind)
		if kind == "" {
			kind = string(tokensv1alpha1.TokenIssuerKind)
		}
		p := pairs[perToken*i : perToken*(i+1)]
		p[0] = dto.LabelPair{Name: &labelIssuerKind, Value: &kind}
		p[1] = dto.LabelPair{Name: &labelIssuerName, Value: &at.Spec.IssuerRef.Name}
		p[2] = dto.LabelPair{Name: &labelName, Value: &at.Name}
		p[3] = dto.LabelPair{Name: &labelNamespace, Value: &at.Namespace}
		l := labels[perToken*i : perToken*(i+1) : perToken*(i+1)]
		for j := range p {
			l[j] = &p[j]
		}
		if at.Status.ExpiresAt != nil {
			add(0, l, float64(at.Status.ExpiresAt.Unix()))
		}
		if at.Status.RenewalTime != nil {
			add(1, l, float64(at.Status.RenewalTime.Unix()))
		}
		ready := 0.0
		if meta.IsStatusConditionTrue(at.Status.Conditions, tokensv1alpha1.ConditionReady) {
			ready = 1
		}
		add(2, l, ready)
		add(3, l, float64(at.Status.FailedAttempts))
		if expiryUnknown(at) {
			add(4, l, 1)
		}
	}
	clusterFamily, err := clusterAccessTokenFamily(ctx, reader)
	if err != nil {
		return nil, err
	}
	families = append(families, clusterFamily)
	// A family without series is not valid exposition: leave it out.
	families = slices.DeleteFunc(families, func(f *dto.MetricFamily) bool { return len(f.Metric) == 0 })
	for _, f := range families {
		// In label order, as a registry sorts them.
		slices.SortFunc(f.Metric, func(a, b *dto.Metric) int {
			for i := range a.Label {
				if c := strings.Compare(a.Label[i].GetValue(), b.Label[i].GetValue()); c != 0 {
					return c
				}
			}
			return 0
		})
	}
	return families, nil
}

const clusterNamespacesName = "tokenmint_clusteraccesstoken_namespaces"

var (
	clusterNamespacesHelp = "Namespaces of a ClusterAccessToken by state: selected (and allowed by the issuer), written (holding the current token), failing (not written; status.failures says why)."
	labelState            = "state"
	clusterStates         = []string{"failing", "selected", "written"}
)

// clusterAccessTokenFamily returns the per-ClusterAccessToken namespace counts,
// read from status at scrape time as the AccessTokens' are. There are few
// ClusterAccessTokens: plain allocations do.
func clusterAccessTokenFamily(ctx context.Context, reader client.Reader) (*dto.MetricFamily, error) {
	list := &tokensv1alpha1.ClusterAccessTokenList{}
	if err := reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing ClusterAccessTokens for their metrics: %w", err)
	}
	f := &dto.MetricFamily{Name: ptr.To(clusterNamespacesName), Help: &clusterNamespacesHelp, Type: &gaugeType,
		Metric: make([]*dto.Metric, 0, len(clusterStates)*len(list.Items))}
	for i := range list.Items {
		st := &list.Items[i].Status
		name := &list.Items[i].Name
		for j, v := range []int32{st.Failing, st.Namespaces, st.Written} {
			// Labels sorted by name, as the exposition requires.
			f.Metric = append(f.Metric, &dto.Metric{
				Label: []*dto.LabelPair{{Name: &labelName, Value: name}, {Name: &labelState, Value: &clusterStates[j]}},
				Gauge: &dto.Gauge{Value: ptr.To(float64(v))}})
		}
	}
	return f, nil
}

// cachedAccessTokens returns the cache's own AccessTokens, read only: from the
// informer's store when reader is a single informer cache (no copy at all),
// else from a list that copies the objects but not what they point to.
func cachedAccessTokens(ctx context.Context, reader client.Reader) ([]*tokensv1alpha1.AccessToken, error) {
	if informers, ok := reader.(cache.Informers); ok {
		inf, err := informers.GetInformer(ctx, &tokensv1alpha1.AccessToken{}, cache.BlockUntilSynced(false))
		if err != nil {
			return nil, err
		}
		if s, ok := inf.(interface{ GetStore() toolscache.Store }); ok {
			objs := s.GetStore().List()
			items := make([]*tokensv1alpha1.AccessToken, 0, len(objs))
			for _, o := range objs {
				if at, ok := o.(*tokensv1alpha1.AccessToken); ok {
					items = append(items, at)
				}
			}
			return items, nil
		}
	}
	list := &tokensv1alpha1.AccessTokenList{}
	if err := reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	items := make([]*tokensv1alpha1.AccessToken, len(list.Items))
	for i := range list.Items {
		items[i] = &list.Items[i]
	}
	return items, nil
}

// registry is controller-runtime's registry, which the metrics endpoint serves,
// with the per-AccessToken families added to what it gathers.
type registry struct {
	metrics.RegistererGatherer
	tokens *accessTokenCollector
}

func (r *registry) Gather() ([]*dto.MetricFamily, error) {
	families, err := r.RegistererGatherer.Gather()
	own, ownErr := r.tokens.gather()
	if len(own) > 0 {
		families = append(families, own...)
		slices.SortFunc(families, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	}
	return families, errors.Join(err, ownErr)
}

// gatheredFamilies are the families the registry adds at each scrape from
// the cache: one series or more per AccessToken and per ClusterAccessToken.
var gatheredFamilies = []string{tokenExpiryName, tokenRenewalName, tokenReadyName, tokenFailuresName, tokenNoExpiryName, clusterNamespacesName}

// SkipTokenFamiliesUnlessNamed wraps the metrics endpoint's handler: a
// scrape that names the families it wants (the Prometheus handler's name[]
// parameter) and none of the per-AccessToken or per-ClusterAccessToken ones
// is answered from the registry without them, so that it does not read every
// cached AccessToken and build four series of each only for them to be
// dropped. A scrape that names none, or one of them, is handled by handler.
func SkipTokenFamiliesUnlessNamed(handler http.Handler) http.Handler {
	r, ok := metrics.Registry.(*registry)
	if !ok {
		return handler
	}
	return r.skipTokenFamiliesUnlessNamed(handler)
}

func (r *registry) skipTokenFamiliesUnlessNamed(all http.Handler) http.Handler {
	withoutTokens := promhttp.HandlerFor(r.RegistererGatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		names := req.URL.Query()["name[]"]
		if len(names) == 0 || slices.ContainsFunc(names, func(n string) bool { return slices.Contains(gatheredFamilies, n) }) {
			all.ServeHTTP(w, req)
			return
		}
		withoutTokens.ServeHTTP(w, req)
	})
}

func init() {
	metrics.Registry.MustRegister(tokensIssued, issuerRequests, issuerDuration, callsWaiting, callsRunning)
	metrics.Registry = &registry{RegistererGatherer: metrics.Registry, tokens: accessTokens}
}

// outcome names the result of a call for the requests metric, in snake case.
func outcome(err error) string {
	if err == nil {
		return "success"
	}
	var ie *issuer.Error
	if !errors.As(err, &ie) {
		return "error"
	}
	var b strings.Builder
	for i, r := range ie.Class.String() {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

func observeCall(issuerKey string, start, end time.Time, err error) {
	if c := issuer.ClassOf(err); err != nil && (c == issuer.ClassInvalidParameters || c == issuer.ClassInvalidConfig) {
		return // refused before any request was sent
	}
	kind, ns, name := splitIssuerKey(issuerKey)
	issuerRequests.WithLabelValues(kind, ns, name, outcome(err)).Inc()
	issuerDuration.WithLabelValues(kind, ns, name).Observe(end.Sub(start).Seconds())
}
