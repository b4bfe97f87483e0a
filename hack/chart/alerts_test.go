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

package chart

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestAlertsLinkTheirRunbooksAndUseExportedMetrics renders the chart's
// PrometheusRule and checks every alert: named Tokenmint..., a runbook_url
// whose anchor is a heading of docs/runbooks.md, and only metrics and labels
// the manager exports.
func TestAlertsLinkTheirRunbooksAndUseExportedMetrics(t *testing.T) {
	root := filepath.Join("..", "..")
	helm := filepath.Join(root, "bin", "helm")
	if _, err := os.Stat(helm); err != nil {
		t.Skip("bin/helm is not installed (make helm)")
	}
	out, err := exec.Command(helm, "template", "t", filepath.Join(root, "dist", "chart"), "--set", "prometheusRule.enabled=true", kubeVersionFlag(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	var rule struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert       string
					Expr        string
					Annotations map[string]string
				}
			}
		}
	}
	for _, doc := range splitDocuments(out) {
		if strings.Contains(string(doc), "kind: PrometheusRule") {
			if err := yaml.Unmarshal(doc, &rule); err != nil {
				t.Fatal(err)
			}
		}
	}
	runbooks := strings.ToLower(string(readFile(t, filepath.Join(root, "docs", "runbooks.md"))))
	// Metrics are registered in metrics.go and beside what they measure.
	exported := string(readFile(t, filepath.Join(root, "internal", "controller", "metrics.go"))) +
		string(readFile(t, filepath.Join(root, "internal", "controller", "provider_clocks.go")))
	metric := regexp.MustCompile(`tokenmint_[a-z_]+`)
	alerts := 0
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			alerts++
			if !strings.HasPrefix(r.Alert, "Tokenmint") {
				t.Errorf("alert %s is not named Tokenmint...", r.Alert)
			}
			anchor := strings.ToLower(r.Alert)
			if !strings.HasSuffix(r.Annotations["runbook_url"], "/docs/runbooks.md#"+anchor) {
				t.Errorf("alert %s: runbook_url %q", r.Alert, r.Annotations["runbook_url"])
			}
			if !strings.Contains(runbooks, "\n## "+anchor+"\n") {
				t.Errorf("alert %s has no section in docs/runbooks.md", r.Alert)
			}
			for _, m := range metric.FindAllString(r.Expr, -1) {
				if !strings.Contains(exported, `"`+m+`"`) {
					t.Errorf("alert %s uses %s, which the manager does not export", r.Alert, m)
				}
			}
			if strings.Contains(r.Expr, "by (issuer)") {
				t.Errorf("alert %s groups by a label the manager does not export", r.Alert)
			}
		}
	}
	if alerts < 5 {
		t.Fatalf("found %d alerts", alerts)
	}
}

// TestDashboardUsesExportedMetrics checks the chart's Grafana dashboard: valid
// JSON whose queries use only metrics and labels the manager exports.
func TestDashboardUsesExportedMetrics(t *testing.T) {
	root := filepath.Join("..", "..")
	var dash struct {
		UID    string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(root, "dist", "chart", "dashboards", "tokenmint.json")), &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	exported := string(readFile(t, filepath.Join(root, "internal", "controller", "metrics.go")))
	metric := regexp.MustCompile(`tokenmint_[a-z_]+`)
	by := regexp.MustCompile(`by \(([^)]*)\)`)
	known := map[string]bool{"namespace": true, "name": true, "issuer_kind": true, "issuer_namespace": true, "issuer_name": true,
		"outcome": true, "le": true, "controller": true, "result": true}
	queries := 0
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			queries++
			for _, m := range metric.FindAllString(target.Expr, -1) {
				name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
				if !strings.Contains(exported, `"`+name+`"`) {
					t.Errorf("panel %q uses %s, which the manager does not export", p.Title, m)
				}
			}
			for _, g := range by.FindAllStringSubmatch(target.Expr, -1) {
				for _, l := range strings.Split(g[1], ",") {
					if l = strings.TrimSpace(l); !known[l] && l != "" {
						t.Errorf("panel %q groups by %q, a label tokenmint's metrics do not have", p.Title, l)
					}
				}
			}
		}
	}
	if dash.UID == "" || queries < 10 {
		t.Fatalf("uid %q, %d queries", dash.UID, queries)
	}
}

// TestDashboardConfigMapHoldsTheDashboard renders the chart with the dashboard
// on: its ConfigMap holds dashboards/tokenmint.json as it is, under the
// sidecar's label.
func TestDashboardConfigMapHoldsTheDashboard(t *testing.T) {
	root := filepath.Join("..", "..")
	helm := filepath.Join(root, "bin", "helm")
	if _, err := os.Stat(helm); err != nil {
		t.Skip("bin/helm is not installed (make helm)")
	}
	out, err := exec.Command(helm, "template", "t", filepath.Join(root, "dist", "chart"), "--set", "grafanaDashboard.enabled=true", kubeVersionFlag(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	want := strings.TrimSuffix(string(readFile(t, filepath.Join(root, "dist", "chart", "dashboards", "tokenmint.json"))), "\n")
	for _, doc := range splitDocuments(out) {
		var cm struct {
			Kind     string
			Metadata struct{ Labels map[string]string }
			Data     map[string]string
		}
		if err := yaml.Unmarshal(doc, &cm); err != nil || cm.Kind != "ConfigMap" {
			continue
		}
		if cm.Data["tokenmint.json"] != want || cm.Metadata.Labels["grafana_dashboard"] != "1" {
			t.Fatalf("the ConfigMap does not hold the dashboard under the sidecar's label: %v", cm.Metadata.Labels)
		}
		return
	}
	t.Fatal("no dashboard ConfigMap rendered")
}
