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

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenmint/tokenmint/test/controlplane"
)

func TestRenewalAccounting(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tok := func(arrived, lifetime float64) held { return held{at: at(arrived), expiry: at(arrived + lifetime)} }
	from, to := at(100), at(300)

	seqs := map[string][]held{
		// Renewed at 60 s into each 90 s token: expiries 90, 150, 210, 270,
		// 330; renewals at 60 (before the window), 120, 180, 240 count (lead
		// 30 s each); the token of 240 expires at 330, after the window, and
		// is not due.
		"steady": {tok(0, 90), tok(60, 90), tok(120, 90), tok(180, 90), tok(240, 90)},
		// Out of order in the input; the second renewal is 2 s late (expiry
		// 190, successor at 192), the third 0.5 s early.
		"late": {tok(192, 90), tok(100, 90), tok(281.5, 90)},
		// Its only token expires at 200, in the window, and is never replaced.
		"stuck": {tok(110, 90)},
		// Replaced exactly at expiry: not before it, so late, with lead 0.
		"edge": {tok(150, 60), tok(210, 60)},
	}
	s := summarizeRenewals(seqs, []string{"steady", "late", "stuck", "edge", "never"}, from, to)

	// steady: 120, 180, 240 → 3 on time (the first token's renewal, at 60,
	// lies before the window). late: renewal of the token of 100 happens at
	// 192 (expiry 190: late), of the token of 192 at 281.5 (expiry 282: on
	// time). stuck: missing at 200. edge: renewal at 210 = expiry → late;
	// the token of 210 expires at 270, in the window, and is never replaced.
	if s.due != 3+2+1+2 {
		t.Errorf("due = %d, want 8", s.due)
	}
	if s.onTime != 4 || s.late != 2 || s.missing != 2 {
		t.Errorf("on time %d, late %d, missing %d; want 4, 2, 2", s.onTime, s.late, s.missing)
	}
	if s.renewed != 6 {
		t.Errorf("renewed = %d, want 6", s.renewed)
	}
	if s.minLead != -2*time.Second || s.minLeadKey != "late" {
		t.Errorf("smallest lead %s on %q; want -2s on late", s.minLead, s.minLeadKey)
	}
	if !slices.Equal(s.neverIssued, []string{"never"}) {
		t.Errorf("never issued = %v, want [never]", s.neverIssued)
	}
	if s.perfect() {
		t.Error("a run with late and missing renewals counted as perfect")
	}
	if got := s.percent(); got != 50 {
		t.Errorf("percent = %.1f, want 50", got)
	}

	good := summarizeRenewals(map[string][]held{"steady": seqs["steady"]}, []string{"steady"}, from, to)
	if !good.perfect() || good.minLead != 30*time.Second || good.medianLead != 30*time.Second {
		t.Errorf("steady alone: %+v; want perfect, every lead 30s", good)
	}
	if none := summarizeRenewals(nil, []string{"a"}, from, to); none.perfect() || none.due != 0 || len(none.neverIssued) != 1 {
		t.Errorf("nothing issued: %+v; want not perfect, nothing due, one never issued", none)
	}
}

func TestRenewalWindowBounds(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seq := []held{{at: t0, expiry: t0.Add(10 * time.Second)}, {at: t0.Add(5 * time.Second), expiry: t0.Add(15 * time.Second)}}
	// The renewal at 5 s counts in a window that starts or ends exactly there.
	if got := renewalsOf("k", seq, t0.Add(5*time.Second), t0.Add(6*time.Second)); len(got) != 1 || got[0].lead() != 5*time.Second {
		t.Errorf("window starting at the renewal: %+v", got)
	}
	if got := renewalsOf("k", seq, t0, t0.Add(5*time.Second)); len(got) != 1 || !got[0].onTime() {
		t.Errorf("window ending at the renewal: %+v", got)
	}
	// The second token, unreplaced, is overdue from 15 s.
	if got := renewalsOf("k", seq, t0.Add(6*time.Second), t0.Add(14*time.Second)); len(got) != 0 {
		t.Errorf("nothing due in (6 s, 14 s): %+v", got)
	}
	if got := renewalsOf("k", seq, t0.Add(6*time.Second), t0.Add(15*time.Second)); len(got) != 1 || !got[0].next.IsZero() {
		t.Errorf("the second token overdue at 15 s: %+v", got)
	}
}

func TestChartMemoryLimit(t *testing.T) {
	s, b, err := chartMemoryLimit([]byte("image: x\nresources:\n  requests:\n    memory: 64Mi\n  limits:\n    cpu: 500m\n    memory: 256Mi\n"))
	if err != nil || s != "256Mi" || b != 256<<20 {
		t.Errorf("got %q, %v, %v; want 256Mi, %d", s, b, err, 256<<20)
	}
	if _, _, err := chartMemoryLimit([]byte("resources: {}\n")); err == nil {
		t.Error("no limit: want an error")
	}
	// The chart itself has one.
	v, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "dist", "chart", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, b, err := chartMemoryLimit(v); err != nil || b <= 0 {
		t.Errorf("dist/chart/values.yaml: %v, %v", b, err)
	}
}

func TestBigAnswerSize(t *testing.T) {
	// The answer the ~1 MiB endpoint sends stays under the manager's 1 MiB cap.
	if n := bigAnswerSize(1_000_000, 90*time.Second); n >= 1<<20 || n <= 1_000_000 {
		t.Errorf("answer of a 1,000,000-byte token: %d bytes; want between 1,000,000 and 1 MiB", n)
	}
}

func TestCredIssuerSpec(t *testing.T) {
	names := make([]string, 336)
	for i := range names {
		names[i] = fmt.Sprintf("cred-%03d", i)
	}
	for _, n := range []int{16, 288, 336} {
		spec := credIssuerSpec("http://127.0.0.1/token", names[:n])
		credentials := spec["credentials"].([]any)
		if len(credentials) > 16 {
			t.Errorf("%d names: %d credentials, the CRD takes 16", n, len(credentials))
		}
		seen := map[string]bool{}
		for _, c := range credentials {
			if r, ok := c.(map[string]any)["secretKeyRef"].(map[string]any); ok {
				seen[r["name"].(string)] = true
				continue
			}
			jwt := c.(map[string]any)["signedJWT"].(map[string]any)
			for _, field := range []string{"privateKey", "certificate", "keyID", "issuer", "subject"} {
				if v, ok := jwt[field].(map[string]any); ok {
					seen[v["secretKeyRef"].(map[string]any)["name"].(string)] = true
				}
			}
			claims, _ := jwt["claims"].([]any)
			if len(claims) > 16 {
				t.Errorf("%d names: %d claims, the CRD takes 16", n, len(claims))
			}
			for _, claim := range claims {
				seen[claim.(map[string]any)["secretKeyRef"].(map[string]any)["name"].(string)] = true
			}
		}
		if len(seen) != n {
			t.Errorf("%d names: the spec names %d distinct Secrets", n, len(seen))
		}
		if _, jwt := credentials[0].(map[string]any)["signedJWT"]; jwt != (n > 16) {
			t.Errorf("%d names: signed JWT credentials = %v, want them only beyond 16", n, jwt)
		}
		fields := spec["request"].(map[string]any)["body"].(map[string]any)["json"].([]any)
		if len(fields) != len(credentials)+1 {
			t.Errorf("%d names: %d body fields for %d credentials: each must be sent", n, len(fields), len(credentials))
		}
	}
}

func TestShortEndpointAnswer(t *testing.T) {
	e, err := startShortEndpoint(15<<10, 32, 4000)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	var a map[string]any
	if err := json.Unmarshal(e.body(), &a); err != nil {
		t.Fatal(err)
	}
	if got := len(a["access_token"].(string)); got != 15<<10 {
		t.Errorf("token of %d bytes, want %d", got, 15<<10)
	}
	if got := len(a["refresh_token"].(string)); got != 15<<10 {
		t.Errorf("refresh token of %d bytes, want %d", got, 15<<10)
	}
	if a["expires_in"] != 1.0 || len(a["f31"].(string)) != 4000 || a["f32"] != nil {
		t.Errorf("expires_in %v, f31 of %d characters, f32 %v; want 1, 4000, none", a["expires_in"], len(a["f31"].(string)), a["f32"])
	}
	resp, err := http.Post(e.RevokeURL, "application/x-www-form-urlencoded", strings.NewReader("token=x"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode < 500 || e.revokes.Load() != 1 {
		t.Errorf("revoke answered %d (%d revokes counted); want a 5xx, 1", resp.StatusCode, e.revokes.Load())
	}
}

func TestWriteWatchCounts(t *testing.T) {
	w := &writeWatch{on: true}
	s := func(name, rv string, size int) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}, Data: map[string][]byte{"token": make([]byte, size)}}
	}
	w.observe(nsShort, nil, s("short-00000-token", "1", 100))
	w.observe(nsShort, s("short-00000-token", "1", 100), s("short-00000-token", "1", 100)) // resync: no write
	w.observe(nsShort, s("short-00000-token", "1", 100), s("short-00000-token", "2", 200))
	w.observe(operatorNamespace, nil, s("state", "5", 300))
	w.observe(operatorNamespace, nil, s("state2", "6", 30))
	tk := int64(len("token"))
	if w.shortWrites != 2 || w.shortBytes != 300+2*tk {
		t.Errorf("short: %d writes, %d bytes; want 2, %d", w.shortWrites, w.shortBytes, 300+2*tk)
	}
	if w.stateWrites != 2 || w.stateBytes != 330+2*tk || w.largestState != 300+tk {
		t.Errorf("state: %d writes, %d bytes, largest %d", w.stateWrites, w.stateBytes, w.largestState)
	}
}

func TestApplySmoke(t *testing.T) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	mo := registerMixedFlags(fs)
	if err := fs.Parse([]string{"-mixed", "-mixed-smoke", "-mixed-honest", "7"}); err != nil {
		t.Fatal(err)
	}
	if err := applySmoke(fs); err != nil {
		t.Fatal(err)
	}
	if mo.honest != 7 {
		t.Errorf("-mixed-honest given as 7, smoke made it %d", mo.honest)
	}
	if mo.duration != time.Minute || mo.cost.credTokens != 50 || mo.cost.metricsConns != 50 || mo.cost.paramBytes != 900_000 {
		t.Errorf("smoke sizes not applied: duration %s, cred tokens %d, metrics connections %d, parameter %d",
			mo.duration, mo.cost.credTokens, mo.cost.metricsConns, mo.cost.paramBytes)
	}
	for k := range smokeSizes {
		if fs.Lookup(k) == nil {
			t.Errorf("smoke size for %s, which is no flag", k)
		}
	}
}

func TestCostRows(t *testing.T) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	mo := registerMixedFlags(fs)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &mixedResults{mo: *mo, windowStart: t0, windowEnd: t0.Add(time.Minute), chartLimit: "256Mi", chartLimitBytes: 256 << 20,
		cost: costResults{credNamed: 16, credRefused: "288 admitted, then refused by the manager", secretGETs: 120,
			paramBytes: 450_000, paramRefused: []string{"900000 (too long)"}, paramRSSPeak: 300 << 20, restarted: true, restartRSSPeak: 100 << 20,
			shortMints: 60, shortBytes: 10 << 20, stateBytes: 5 << 20, largestState: 200 << 10,
			metricsRequests: 600, metricsStatus: map[int]int64{401: 100, 429: 500}, tokenReviews: 300,
			churnMints: 30, sharedMints: 4}}
	md := r.markdown()
	for _, want := range []string{
		"| hostile e |", "288 admitted, then refused by the manager", "120 (2.0/s)",
		"| hostile f |", "900000 (too long)", "| 300.0 MiB | **no** |", "peak 100.0 MiB",
		"| hostile g |", "60 (1.00/s)", "10.0 MiB/min", "5.0 MiB/min; largest 200 KiB",
		"| hostile h |", "600 (10/s; 401 ×100, 429 ×500; 0 errors); 300 TokenReviews (5.00/s)",
		"| hostile i |", "30 (0.50/s) vs 4",
		"0 (and 1 by the benchmark, before the honest tenant)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report has no %q:\n%s", want, md)
		}
	}
	r.mo.cost = costOptions{}
	if md := r.markdown(); strings.Contains(md, "| hostile e |") || strings.Contains(md, "| hostile i |") {
		t.Errorf("attacks turned off still reported:\n%s", md)
	}
}
