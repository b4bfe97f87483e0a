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
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// countedLists counts the lists of AccessTokens and of ClusterAccessTokens
// the collector makes.
type countedLists struct {
	listReader
	tokens, clusterTokens *atomic.Int64
}

func (r countedLists) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	switch list.(type) {
	case *tokensv1alpha1.AccessTokenList:
		r.tokens.Add(1)
	case *tokensv1alpha1.ClusterAccessTokenList:
		r.clusterTokens.Add(1)
	}
	return r.listReader.List(ctx, list, opts...)
}

// TestScrapeNamingOtherFamiliesSkipsTokens: a scrape that names only other
// families (name[]) neither reads the cached AccessTokens nor gets their
// series; one naming none, or one of them, gets them.
func TestScrapeNamingOtherFamiliesSkipsTokens(t *testing.T) {
	elected := make(chan struct{})
	close(elected)
	tokens, clusterTokens := &atomic.Int64{}, &atomic.Int64{}
	c := &accessTokenCollector{}
	c.use(countedLists{listReader{items: issuedAccessTokens(3)}, tokens, clusterTokens}, elected)
	inner := prometheus.NewPedanticRegistry()
	issued := prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenmint_tokens_issued_total", Help: "Tokens."})
	inner.MustRegister(issued)
	issued.Add(7)
	reg := &registry{RegistererGatherer: inner, tokens: c}
	srv := httptest.NewServer(reg.skipTokenFamiliesUnlessNamed(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})))
	defer srv.Close()

	for _, tc := range []struct {
		query      string
		wantTokens bool  // per-AccessToken series in the answer
		wantLists  int64 // lists of each kind made for it
	}{
		{"?name[]=tokenmint_tokens_issued_total", false, 0},
		{"?name[]=tokenmint_tokens_issued_total&name[]=" + tokenReadyName, true, 1},
		{"?name[]=" + clusterNamespacesName, false, 1},
		{"", true, 1},
	} {
		t.Run(tc.query, func(t *testing.T) {
			before, beforeCluster := tokens.Load(), clusterTokens.Load()
			resp, err := http.Get(srv.URL + "/" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %v %s", resp.Status, err, body)
			}
			page := string(body)
			if named := strings.Contains(tc.query, "tokenmint_tokens_issued_total"); named || tc.query == "" {
				if !strings.Contains(page, "tokenmint_tokens_issued_total 7") {
					t.Errorf("the issued counter is missing:\n%s", page)
				}
			}
			if got := strings.Contains(page, tokenReadyName+`{`); got != tc.wantTokens {
				t.Errorf("per-AccessToken series present %v, want %v:\n%s", got, tc.wantTokens, page)
			}
			if got := clusterTokens.Load() - beforeCluster; got != tc.wantLists {
				t.Errorf("ClusterAccessTokens listed %d times, want %d", got, tc.wantLists)
			}
			if got := tokens.Load() - before; got != tc.wantLists {
				t.Errorf("AccessTokens listed %d times, want %d", got, tc.wantLists)
			}
		})
	}
}
