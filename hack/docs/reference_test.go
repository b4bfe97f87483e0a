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

package docs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	tableRow   = regexp.MustCompile("(?m)^\\| (`--[^|]+) \\| ([^|]+) \\|")
	backquoted = regexp.MustCompile("`([^`]*)`")
)

// TestReferenceListsManagerFlags checks the manager's flags table of
// docs/reference.md against the manager's own -help: every flag of the
// manager is named in the page, and the default the table gives for a flag
// is the one the manager has.
func TestReferenceListsManagerFlags(t *testing.T) {
	manager, err := program("./cmd")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, "docs", "reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	problems, checked := checkReference(string(raw), manager)
	for _, p := range problems {
		t.Error(p)
	}
	if checked < 20 {
		t.Fatalf("checked only %d defaults in docs/reference.md: the table moved", checked)
	}
}

// TestWrongReferenceFails feeds checkReference tables with a wrong default,
// a flag the manager lacks, and a page missing a flag.
func TestWrongReferenceFails(t *testing.T) {
	manager, err := program("./cmd")
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for name := range manager.flags {
		all.WriteString("`--" + name + "` ")
	}
	for _, tc := range []struct{ table, says string }{
		{"| `--min-renewal-interval` | `1m` | x |\n", "the manager's is \"30s\""},
		{"| `--kube-api-qps` / `--kube-api-burst` | `100` / `100` | x |\n", "--kube-api-burst the default `100`"},
		{"| `--no-such-flag` | `1` | x |\n", "does not have"},
	} {
		problems, _ := checkReference(all.String()+"\n"+tc.table, manager)
		if len(problems) != 1 || !strings.Contains(problems[0], tc.says) {
			t.Errorf("%q: want one problem saying %q, got %q", tc.table, tc.says, problems)
		}
	}
	problems, _ := checkReference("| `--min-renewal-interval` | `30s` | x |\n", manager)
	if len(problems) == 0 || !strings.Contains(strings.Join(problems, "\n"), "does not name the manager's flag --kube-api-qps") {
		t.Errorf("a page without --kube-api-qps passed: %q", problems)
	}
}

// checkReference checks a page against the manager's flags and returns the
// problems found and how many defaults it compared.
func checkReference(ref string, manager *goProgram) (problems []string, checked int) {
	for name := range manager.flags {
		if !strings.Contains(ref, "`--"+name+"`") {
			problems = append(problems, fmt.Sprintf("docs/reference.md does not name the manager's flag --%s", name))
		}
	}
	for _, row := range tableRow.FindAllStringSubmatch(ref, -1) {
		names := backquoted.FindAllStringSubmatch(row[1], -1)
		// A row of flags separated by commas is a group described together
		// (the logging flags), with no default each.
		group := strings.Contains(row[1], "`, `")
		parts := strings.Split(row[2], " / ")
		if len(parts) != len(names) {
			parts = []string{row[2]}
		}
		for i, n := range names {
			name := strings.TrimPrefix(n[1], "--")
			if _, ok := manager.flags[name]; !ok {
				problems = append(problems, fmt.Sprintf("docs/reference.md lists --%s, which the manager does not have", name))
				continue
			}
			part := parts[min(i, len(parts)-1)]
			shown := backquoted.FindAllStringSubmatch(part, -1)
			if len(shown) == 0 || group {
				continue // a default in words: "all", "in-cluster config"
			}
			want := manager.defaults[name]
			if want == "" && manager.flags[name] {
				want = "false"
			}
			ok := false
			for _, s := range shown {
				ok = ok || s[1] == want || sameDuration(s[1], want)
			}
			if !ok {
				problems = append(problems, fmt.Sprintf("docs/reference.md gives --%s the default %s; the manager's is %q", name, strings.TrimSpace(part), want))
			}
			checked++
		}
	}
	return problems, checked
}

// sameDuration reports whether a and b are the same duration written two
// ways (60s and 1m0s).
func sameDuration(a, b string) bool {
	da, errA := time.ParseDuration(a)
	db, errB := time.ParseDuration(b)
	return errA == nil && errB == nil && da == db
}
