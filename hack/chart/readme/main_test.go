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
	"fmt"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const values = `# Default values.

# -- How many.
# More about it.
replicaCount: 1
image:
  # -- Repository.
  repository: ghcr.io/x
  # -- Tag; empty means appVersion.
  tag: ""
# -- Probe timing.
probe:
  delay: 5
  period: 10
pdb:
  # -- true, false or null.
  enabled: null
# -- Resources | limits.
resources: {limits: {memory: 256Mi}}
# -- Extra.
extra: []
`

func TestRows(t *testing.T) {
	rows, err := Rows([]byte(values))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s=%s: %s", r.Path, r.Default, r.Description))
	}
	want := []string{
		"replicaCount=`1`: How many. More about it.",
		"image.repository=`ghcr.io/x`: Repository.",
		"image.tag=`\"\"`: Tag; empty means appVersion.",
		"probe=`{\"delay\":5,\"period\":10}`: Probe timing.",
		"pdb.enabled=`null`: true, false or null.",
		"resources=`{\"limits\":{\"memory\":\"256Mi\"}}`: Resources | limits.",
		"extra=`[]`: Extra.",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if table := Table(rows); !strings.Contains(table, "| `resources` | `{\"limits\":{\"memory\":\"256Mi\"}}` | Resources \\| limits. |") {
		t.Errorf("a pipe in a cell is not escaped:\n%s", table)
	}
}

func TestUndocumentedValueIsAnError(t *testing.T) {
	_, err := Rows([]byte(values + "image2:\n  pullPolicy: Always\n# A plain comment, not a description.\nlogLevel: info\n"))
	if err == nil || !strings.Contains(err.Error(), "image2.pullPolicy, logLevel") {
		t.Fatalf("got %v, want an error naming image2.pullPolicy and logLevel", err)
	}
}

func TestTemplateStatesDefaults(t *testing.T) {
	out, err := Render([]byte(values), `Tag {{ value "image.tag" }}, {{ value "replicaCount" }} replica of {{ plain "image.repository" }}.
{{ .Table }}`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "Tag `\"\"`, `1` replica of ghcr.io/x.\n| Value | Default | Meaning |") {
		t.Errorf("rendered:\n%s", out)
	}
	if _, err := Render([]byte(values), `{{ value "image.digest" }}`); err == nil {
		t.Error("a template naming an undocumented value rendered")
	}
}

// TestChartValuesAreAllDocumented checks the chart's own values.yaml: every
// leaf value is documented, and each row states the value values.yaml holds.
func TestChartValuesAreAllDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../../dist/chart/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := Rows(raw)
	if err != nil {
		t.Fatal(err)
	}
	var parsed map[string]any
	if err := yaml.Unmarshal(raw, &parsed); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		var v any = parsed
		for _, key := range strings.Split(r.Path, ".") {
			v = v.(map[string]any)[key]
		}
		var want string
		switch x := v.(type) {
		case string:
			want = "`" + x + "`"
			if x == "" {
				want = "`\"\"`"
			}
		case nil:
			want = "`null`"
		case map[string]any, []any:
			continue // JSON, checked in TestRows
		default:
			want = fmt.Sprintf("`%v`", x)
		}
		if r.Default != want {
			t.Errorf("%s: the README would state %s, values.yaml holds %s", r.Path, r.Default, want)
		}
	}
}
