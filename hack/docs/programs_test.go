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
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// goProgram is a command of this repository (the manager, the demo, the
// benchmark...), built once, whose flags are checked by its own flag parsing.
type goProgram struct {
	pkg   string
	bin   string
	flags map[string]bool // name: whether it is a bool flag (takes no value)
	// defaults are the defaults -help shows, "" when it shows none (the
	// zero value).
	defaults map[string]string
}

var (
	programsMu sync.Mutex
	programs   = map[string]*goProgram{}
	binDir     string
)

// usageFlag matches a flag in the usage the flag package prints:
// "  -name type" or "  -name" (a bool), followed by a tab or a newline.
var usageFlag = regexp.MustCompile(`(?m)^  -([A-Za-z0-9_.-]+)( [^\t\n]+)?[\t\n]`)

// usageDefault matches the default at the end of a flag's usage.
var usageDefault = regexp.MustCompile(`\(default (.*)\)$`)

// program builds the package pkg (a directory or a .go file relative to the
// repository root) and reads its flags from its -help output.
func program(pkg string) (*goProgram, error) {
	if strings.HasSuffix(pkg, ".go") {
		pkg = filepath.Dir(pkg)
	}
	pkg = "./" + strings.TrimPrefix(filepath.ToSlash(filepath.Clean(pkg)), "./")
	programsMu.Lock()
	defer programsMu.Unlock()
	if p, ok := programs[pkg]; ok {
		return p, nil
	}
	if binDir == "" {
		dir, err := os.MkdirTemp("", "docs-programs-")
		if err != nil {
			return nil, err
		}
		binDir = dir
	}
	bin := filepath.Join(binDir, strings.NewReplacer("/", "_", ".", "_").Replace(pkg))
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	out, code, err := runBinary(bin, "-help")
	if err != nil || code != 0 {
		return nil, fmt.Errorf("%s -help: exit %d, %v\n%s", pkg, code, err, out)
	}
	p := &goProgram{pkg: pkg, bin: bin, flags: map[string]bool{}, defaults: map[string]string{}}
	matches := usageFlag.FindAllStringSubmatchIndex(out, -1)
	for i, m := range matches {
		name := out[m[2]:m[3]]
		p.flags[name] = m[4] < 0
		end := len(out)
		if i+1 < len(matches) {
			end = matches[i+1][0]
		}
		if d := usageDefault.FindStringSubmatch(strings.TrimSpace(out[m[1]:end])); d != nil {
			p.defaults[name] = strings.Trim(d[1], `"`)
		}
	}
	if len(p.flags) == 0 {
		return nil, fmt.Errorf("%s -help lists no flags:\n%s", pkg, out)
	}
	programs[pkg] = p
	return p, nil
}

// TestMain removes the programs built for the checks.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// runBinary runs bin with args and returns its combined output and exit code.
func runBinary(bin string, args ...string) (string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = repoRoot
	// Nothing the program could reach: were -help not reached, it fails
	// at once instead of acting on a cluster.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(os.TempDir(), "no-such-kubeconfig"), "KUBERNETES_SERVICE_HOST=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		return out.String(), exit.ExitCode(), nil
	}
	return out.String(), 0, err
}

// checkArgs checks args against the program's flags: every argument must be
// a flag it defines (these programs take no other arguments), and then the
// program itself parses them, followed by -help, so that a value it refuses
// (a malformed duration, a -lifetime under a minute) fails as it would for a
// user. Flags whose value is more flags for another program (the
// benchmark's -manager-args) are checked against that program too.
func (p *goProgram) checkArgs(args []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			return fmt.Errorf("%s takes flags only, not the argument %q", p.pkg, a)
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		isBool, ok := p.flags[name]
		if !ok {
			return fmt.Errorf("%s has no flag -%s (its flags: %s)", p.pkg, name, p.flagList())
		}
		if !isBool && !hasValue {
			if i+1 >= len(args) {
				return fmt.Errorf("%s: flag -%s needs a value", p.pkg, name)
			}
			i++
			value = args[i]
		}
		if nested, ok := nestedArgs[p.pkg+" -"+name]; ok {
			q, err := program(nested)
			if err != nil {
				return err
			}
			if err := q.checkArgs(strings.Fields(value)); err != nil {
				return fmt.Errorf("%s -%s: %w", p.pkg, name, err)
			}
		}
	}
	out, code, err := runBinary(p.bin, append(append([]string{}, args...), "-help")...)
	if err != nil {
		return fmt.Errorf("%s %s: %w", p.pkg, strings.Join(args, " "), err)
	}
	if code != 0 || !strings.Contains(out, "Usage of") {
		first, _, _ := strings.Cut(out, "\n")
		return fmt.Errorf("%s refuses %q (exit %d): %s", p.pkg, strings.Join(args, " "), code, first)
	}
	return nil
}

func (p *goProgram) flagList() string {
	names := make([]string, 0, len(p.flags))
	for n := range p.flags {
		names = append(names, "-"+n)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// nestedArgs names the flags whose value holds flags of another program.
var nestedArgs = map[string]string{
	"./test/bench -manager-args": "./cmd",
}
