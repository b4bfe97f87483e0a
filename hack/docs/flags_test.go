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

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/tokenmint/tokenmint/internal/plugin"
)

// Flags named in prose
//
// An inline code span that is a flag alone, `--name` or `--name=value`, names
// a flag of the manager (`--min-renewal-interval=30s`) or of the kubectl
// plugin (`--cluster`, and the kubectl flags it takes, `--context`); it must
// be one of theirs, or of kubectlFlags below, and a value given with it must
// parse. A span with a single dash, `-name` or `-name value`, names a flag of
// the program a page is about (singleDashProgram); in other pages it is a
// kubectl or go flag (`-o wide`, `-ldflags`) and is not checked.

// singleDashProgram is the program whose flags a page's `-name` spans are.
var singleDashProgram = map[string]string{
	"README.md":           "./test/demo",
	"docs/performance.md": "./test/bench",
}

// kubectlFlags are flags of kubectl itself the docs name in prose.
var kubectlFlags = map[string]string{
	"--server-side": "kubectl apply's",
	"--client":      "kubectl version's",
	"--set":         "helm's",
}

var flagSpan = regexp.MustCompile(`^(--?)([a-z][a-z0-9.-]*)(?:[= ](.+))?$`)

// docFlag is a flag named in an inline code span.
type docFlag struct {
	file        string
	line        int
	dashes      string
	name, value string
	hasValue    bool
}

func (f docFlag) String() string {
	s := fmt.Sprintf("%s:%d: %s%s", f.file, f.line, f.dashes, f.name)
	if f.hasValue {
		s += " " + f.value
	}
	return s
}

// extractFlags returns the flags named in inline code spans of one file.
func extractFlags(file, md string) []docFlag {
	var flags []docFlag
	inBlock := false
	var prose []string
	for _, l := range strings.Split(md, "\n") {
		if fence.MatchString(l) {
			inBlock = !inBlock
			prose = append(prose, "")
			continue
		}
		if inBlock {
			prose = append(prose, "")
			continue
		}
		prose = append(prose, l)
	}
	text := strings.Join(prose, "\n")
	for _, m := range inlineCode.FindAllStringSubmatchIndex(text, -1) {
		span := strings.Join(strings.Fields(text[m[2]:m[3]]), " ")
		f := flagSpan.FindStringSubmatch(span)
		if f == nil {
			continue
		}
		flags = append(flags, docFlag{
			file: file, line: 1 + strings.Count(text[:m[0]], "\n"),
			dashes: f[1], name: f[2], value: f[3], hasValue: f[3] != "",
		})
	}
	return flags
}

// pluginFlags maps each flag of the plugin to a subcommand that has it.
func pluginFlags() map[string]*cobra.Command {
	root := plugin.NewCommand(genericiooptions.NewTestIOStreamsDiscard(), "test")
	flags := map[string]*cobra.Command{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(f *pflag.Flag) {
			if _, ok := flags[f.Name]; !ok {
				flags[f.Name] = c
			}
		}
		c.Flags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return flags
}

// checkFlag checks one flag named in prose: a flag named alone must be
// defined; one with a value must be parsed by its program.
func checkFlag(f docFlag, plugins map[string]*cobra.Command) (string, error) {
	if f.dashes == "-" {
		pkg, ok := singleDashProgram[f.file]
		if !ok {
			return "not checked: a kubectl or go flag", nil
		}
		p, err := program(pkg)
		if err != nil {
			return "", err
		}
		if _, ok := p.flags[f.name]; !ok {
			return "", fmt.Errorf("%s has no flag -%s (its flags: %s)", pkg, f.name, p.flagList())
		}
		if !f.hasValue {
			return pkg + " has it", nil
		}
		return pkg + " parses it", p.checkArgs([]string{"-" + f.name + "=" + f.value})
	}
	manager, err := program("./cmd")
	if err != nil {
		return "", err
	}
	checkManager := func() (string, bool, error) {
		if _, ok := manager.flags[f.name]; !ok {
			return "", false, nil
		}
		if !f.hasValue {
			return "a flag of the manager", true, nil
		}
		return "the manager parses it", true, manager.checkArgs([]string{"--" + f.name + "=" + f.value})
	}
	checkPlugin := func() (string, bool, error) {
		cmd, ok := plugins[f.name]
		if !ok {
			return "", false, nil
		}
		if !f.hasValue {
			return "a flag of kubectl tokenmint " + cmd.Name(), true, nil
		}
		if err := cmd.ParseFlags([]string{"--" + f.name + "=" + f.value}); err != nil {
			return "", true, fmt.Errorf("kubectl tokenmint %s: %w", cmd.Name(), err)
		}
		return "kubectl tokenmint " + cmd.Name() + " parses it", true, nil
	}
	order := []func() (string, bool, error){checkManager, checkPlugin}
	if f.file == "docs/kubectl-plugin.md" {
		order = []func() (string, bool, error){checkPlugin, checkManager}
	}
	for _, c := range order {
		if what, found, err := c(); found {
			return what, err
		}
	}
	if whose, ok := kubectlFlags["--"+f.name]; ok && !f.hasValue {
		return "not checked: " + whose, nil
	}
	return "", fmt.Errorf("--%s is a flag of neither the manager nor kubectl tokenmint", f.name)
}

// TestDocumentedFlags checks the flags README.md and docs/*.md name in
// prose: see the rule above.
func TestDocumentedFlags(t *testing.T) {
	files, err := docFiles()
	if err != nil {
		t.Fatal(err)
	}
	plugins := pluginFlags()
	n := 0
	for _, file := range files {
		md, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, file)
		for _, f := range extractFlags(rel, string(md)) {
			n++
			what, err := checkFlag(f, plugins)
			if err != nil {
				t.Errorf("%s\n    fails: %v", f, err)
				continue
			}
			t.Logf("%s\n    %s", f, what)
		}
	}
	if n < 50 {
		t.Fatalf("found only %d flags in the docs: the extraction is broken", n)
	}
}

// TestWrongFlagsFail feeds the flag check prose naming wrong flags.
func TestWrongFlagsFail(t *testing.T) {
	plugins := pluginFlags()
	for _, tc := range []struct{ file, wrong, right, says string }{
		{"docs/reference.md", "`--issuer-rate`", "`--issuer-rate-limit`", "neither the manager nor"},
		{"docs/reference.md", "`--min-renewal-interval=soon`", "`--min-renewal-interval=30s`", "invalid value"},
		{"docs/security.md", "`--no-such-flag`", "`--cluster`", "neither the manager nor"},
		{"docs/kubectl-plugin.md", "`--revoke=maybe`", "`--revoke=false`", "invalid argument"},
		{"README.md", "`-lifetime 30s`", "`-lifetime 1m`", "invalid value"},
		{"README.md", "`-lifetme 1m`", "`-duration 5m`", "no flag -lifetme"},
		{"docs/performance.md", "`-mixed-smok`", "`-mixed-smoke`", "no flag -mixed-smok"},
	} {
		wrong := extractFlags(tc.file, "Set "+tc.wrong+" to see.\n")
		right := extractFlags(tc.file, "Set "+tc.right+" to see.\n")
		if len(wrong) != 1 || len(right) != 1 {
			t.Fatalf("%s / %s: found %d and %d flags, want 1", tc.wrong, tc.right, len(wrong), len(right))
		}
		if _, err := checkFlag(wrong[0], plugins); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s in %s: want an error saying %q, got %v", tc.wrong, tc.file, tc.says, err)
		}
		if _, err := checkFlag(right[0], plugins); err != nil {
			t.Errorf("%s in %s: %v", tc.right, tc.file, err)
		}
	}
}
