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
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/tokenmint/tokenmint/internal/plugin"
)

const repoRoot = "../.."

// allowed are the programs, and kubectl's and helm's subcommands, that get no
// check of their own beyond those every command gets (the tokenmint resource
// names, annotation keys and patched fields they name; see checkKubectl), with
// the reason.
var allowed = map[string]string{
	// Commands that act on the reader's own cluster: no test has it, and
	// their flags are kubectl's and helm's, not this repository's.
	"kubectl get":      "reads the reader's cluster",
	"kubectl describe": "reads the reader's cluster",
	"kubectl logs":     "reads the reader's cluster",
	"kubectl wait":     "waits on the reader's cluster",
	"kubectl rollout":  "waits on the reader's cluster",
	"kubectl auth":     "asks the reader's cluster",
	"kubectl annotate": "changes the reader's cluster",
	"kubectl label":    "changes the reader's cluster",
	"kubectl patch":    "changes the reader's cluster",
	"kubectl delete":   "changes the reader's cluster",
	"kubectl create":   "changes the reader's cluster",
	"kubectl krew":     "installs into the reader's kubectl from a release archive the release job builds",
	"helm uninstall":   "changes the reader's cluster",
	"ctr":              "runs on the reader's node (the image archive it imports is checked: it must be an output the Makefile names)",
	"install":          "copies a build output onto the reader's PATH (checked: an output the Makefile names)",
	// Shell syntax and tools around the commands above.
	"for":   "shell loop",
	"while": "shell loop",
	"done":  "shell loop",
	"read":  "shell builtin",
	"grep":  "filters another command's output",
	"date":  "prints the time for an annotation",
	// The release's own checksums, of files the reader downloaded.
	"sha256sum": "checks downloaded release files against the release's SHA256SUMS",
	// The Go toolchain's own tool, reading a profile the benchmark wrote.
	"go tool": "the Go toolchain's profile reader",
}

// check checks one simple command and says which check it got.
func check(words []string) (string, error) {
	// Leading variable assignments, and the keywords that start a loop's body.
	for len(words) > 0 && (isAssignment(words[0]) || words[0] == "do" || words[0] == "then") {
		words = words[1:]
	}
	if len(words) == 0 {
		return "assignment", nil
	}
	if err := checkTokenmintNames(words); err != nil {
		return "tokenmint names", err
	}
	if words[0] == "kubectl" {
		words = kubectlWithoutGlobalFlags(words)
	}
	switch prog := words[0]; {
	case prog == "make":
		return checkMake(words[1:])
	case prog == "go" && (len(words) < 2 || words[1] != "tool"):
		return checkGo(words[1:])
	case prog == "kubectl" && len(words) > 1 && words[1] == "tokenmint":
		return "kubectl tokenmint: the plugin's command tree parses it", checkPlugin(words[2:])
	case prog == "kubectl" && len(words) > 2 && words[1] == "explain":
		return "kubectl explain: the fields are in the CRD's schema", checkExplain(words[2])
	case prog == "kubectl" && len(words) > 1 && words[1] == "apply":
		return "kubectl apply: the applied paths exist", checkKubectlApply(words[2:])
	case prog == "cosign":
		return "cosign: the release's artifacts and the workflow that signs them", checkCosign(words[1:])
	case prog == "helm" && len(words) > 1 && (words[1] == "install" || words[1] == "upgrade"):
		return "helm " + words[1] + ": chart path and --set keys exist", checkHelm(words[2:])
	case strings.HasPrefix(prog, "hack/") || strings.HasPrefix(prog, "./"):
		return "script exists", checkScript(prog)
	}
	key := words[0]
	if (key == "kubectl" || key == "helm" || key == "go") && len(words) > 1 {
		key += " " + words[1]
	}
	reason, ok := allowed[key]
	if !ok {
		return "", fmt.Errorf("no check for %q: add one, or an entry with its reason to allowed", key)
	}
	what := "allowed: " + reason
	if words[0] == "kubectl" {
		what += " (tokenmint resource names and keys checked)"
	}
	if key == "kubectl patch" {
		what += " (patch file, and fields of a merge patch, checked)"
		if err := checkPatch(words[2:]); err != nil {
			return what, err
		}
	}
	if key == "ctr" || key == "install" {
		for _, w := range words[1:] {
			if strings.HasPrefix(w, "bin/") {
				if err := checkBuildOutput(w); err != nil {
					return "build output named by the Makefile", err
				}
			}
		}
	}
	return what, nil
}

var assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

func isAssignment(w string) bool { return assignment.MatchString(w) }

// checkScript checks that a script the docs run exists and is executable.
func checkScript(path string) error {
	fi, err := os.Stat(filepath.Join(repoRoot, path))
	if err != nil {
		return err
	}
	if fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", path)
	}
	return nil
}

// checkBuildOutput checks that a file under bin/ is one the Makefile writes.
func checkBuildOutput(path string) error {
	makefile, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		return err
	}
	if !strings.Contains(string(makefile), path) {
		return fmt.Errorf("%s is not named in the Makefile: no target builds it", path)
	}
	return nil
}

// checkMake checks `make TARGET... VAR=value...`: each variable is used by the
// Makefile, the targets exist (make -n, a dry run), and every go command of
// the recipe, with the variables expanded, gets the check of a go command:
// that is how DEMO_ARGS, BENCH_ARGS, MIXED_ARGS and the like reach the flag
// parsing of the program they are for.
// makeChecks remembers the checks of make lines already made: the docs
// repeat `make image` and `make test-node`.
var makeChecks = map[string]struct {
	what []string
	err  error
}{}

func checkMake(args []string) (string, error) {
	key := strings.Join(args, "\x00")
	done, ok := makeChecks[key]
	if !ok {
		done.what, done.err = checkMakeRecipe(args)
		makeChecks[key] = done
	}
	what, err := done.what, done.err
	if len(what) == 0 {
		return "make: variables used, target exists (make -n)", err
	}
	return "make: variables used, target exists (make -n), recipe's " + strings.Join(what, ", "), err
}

func checkMakeRecipe(args []string) ([]string, error) {
	var checked []string
	makefile, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		return nil, err
	}
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			return nil, fmt.Errorf("make option %s: no check for it", a)
		}
		if name, _, ok := strings.Cut(a, "="); ok && !strings.Contains(string(makefile), "$("+name+")") {
			return nil, fmt.Errorf("the Makefile does not use the variable %s", name)
		}
	}
	// The control plane's directory is computed by building it: a dry run
	// needs no control plane.
	dry := exec.Command("make", append([]string{"-n", "KUBEBUILDER_ASSETS_DIR=/nonexistent"}, args...)...)
	dry.Dir = repoRoot
	out, err := dry.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("make -n %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.Contains(l, "go ") {
			continue
		}
		cmds, err := splitShell(l, 1)
		if err != nil {
			continue
		}
		for _, c := range cmds {
			words := c.words
			for len(words) > 0 && isAssignment(words[0]) {
				words = words[1:]
			}
			// The tools' go install lines (make's own prerequisites) are
			// not the docs' commands.
			if len(words) > 1 && words[0] == "go" && slices.Contains([]string{"run", "test", "build"}, words[1]) {
				if _, err := checkGo(words[1:]); err != nil {
					return checked, fmt.Errorf("the recipe's %q: %w", strings.Join(words, " "), err)
				}
				checked = append(checked, fmt.Sprintf("%q (go %s check)", shortRecipe(words), words[1]))
			}
		}
	}
	return checked, nil
}

// shortRecipe is a recipe's go command with absolute paths made relative.
func shortRecipe(words []string) string {
	abs, _ := filepath.Abs(repoRoot)
	return strings.ReplaceAll(strings.Join(words, " "), abs+"/", "")
}

// checkGo checks go run (the package exists, its flags parse), go test (the
// packages exist, -run and -bench name tests they hold) and go build.
func checkGo(args []string) (string, error) {
	if len(args) == 0 {
		return "go", errors.New("go without a subcommand")
	}
	switch args[0] {
	case "run":
		if len(args) < 2 {
			return "go run", errors.New("go run without a package")
		}
		p, err := program(args[1])
		if err != nil {
			return "go run", err
		}
		return "go run: the program parses the flags", p.checkArgs(args[2:])
	case "test", "build", "vet":
		var pkgs []string
		var runRE, benchRE, focus string
		for i := 1; i < len(args); i++ {
			a := args[i]
			if !strings.HasPrefix(a, "-") {
				pkgs = append(pkgs, a)
				continue
			}
			name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			switch name {
			case "run", "bench", "benchtime", "ldflags", "o", "count", "coverprofile", "trimpath", "race", "benchmem", "v", "ginkgo.focus", "ginkgo.v", "timeout":
			default:
				if args[0] == "test" && !hasValue && testFlagDefined(pkgs, name) {
					continue // a boolean flag of the package's tests
				}
				return "go " + args[0], fmt.Errorf("go %s flag -%s: no check for it", args[0], name)
			}
			if !hasValue && name != "trimpath" && name != "race" && name != "benchmem" && name != "v" && name != "ginkgo.v" {
				if i+1 >= len(args) {
					return "go " + args[0], fmt.Errorf("-%s needs a value", name)
				}
				i++
				value = args[i]
			}
			switch name {
			case "run":
				runRE = value
			case "bench":
				benchRE = value
			case "ginkgo.focus":
				focus = value
			}
		}
		if len(pkgs) == 0 {
			return "go " + args[0], errors.New("no package named")
		}
		var dirs []string
		for _, p := range pkgs {
			dir := strings.TrimSuffix(strings.TrimSuffix(p, "..."), "/")
			if dir == "." || dir == "" {
				dir = "."
			}
			if _, err := os.Stat(filepath.Join(repoRoot, dir)); err != nil {
				return "go " + args[0], fmt.Errorf("package %s: %w", p, err)
			}
			dirs = append(dirs, dir)
		}
		if runRE != "" && !(runRE == "^$" && benchRE != "") {
			if err := testsMatch(dirs, runRE, "Test|Fuzz|Example"); err != nil {
				return "go test", err
			}
		}
		if benchRE != "" {
			if err := testsMatch(dirs, benchRE, "Benchmark"); err != nil {
				return "go test", err
			}
		}
		if focus != "" {
			if err := specsMatch(dirs, focus); err != nil {
				return "go test", err
			}
		}
		return "go " + args[0] + ": the packages exist, -run/-bench match their tests", nil
	}
	return "go", fmt.Errorf("go %s: no check for it", args[0])
}

// testsMatch checks that pattern (go test's -run or -bench) matches a test
// function of the kinds given in one of the directories.
func testsMatch(dirs []string, pattern, kinds string) error {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return fmt.Errorf("%q: %w", pattern, err)
	}
	decl := regexp.MustCompile(`(?m)^func ((?:` + kinds + `)[A-Za-z0-9_]*)\(`)
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(repoRoot, d, "*_test.go"))
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
				if re.MatchString(m[1]) {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("%q matches no %s function in %s", pattern, kinds, strings.Join(dirs, " "))
}

// specsMatch checks that a -ginkgo.focus regular expression matches the text
// of a Describe, Context or It in one of the directories' tests. The text is
// matched literally in the source, so a focus spanning nested containers
// ("outer inner") is matched word by word against each.
func specsMatch(dirs []string, focus string) error {
	re, err := regexp.Compile(focus)
	if err != nil {
		return fmt.Errorf("-ginkgo.focus %q: %w", focus, err)
	}
	spec := regexp.MustCompile(`(?:Describe|Context|When|It|Entry)\("((?:[^"\\]|\\.)*)"`)
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(repoRoot, d, "*_test.go"))
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			for _, m := range spec.FindAllStringSubmatch(string(src), -1) {
				if re.MatchString(m[1]) {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("-ginkgo.focus %q matches no spec in %s", focus, strings.Join(dirs, " "))
}

// checkPlugin builds the plugin's command tree, finds the subcommand and
// parses the flags and arguments with it, without running it.
func checkPlugin(args []string) error {
	root := plugin.NewCommand(genericiooptions.NewTestIOStreamsDiscard(), "test")
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	if cmd == root {
		return fmt.Errorf("kubectl tokenmint %s: no such subcommand", strings.Join(args, " "))
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return fmt.Errorf("kubectl tokenmint %s: %w", cmd.Name(), err)
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		return fmt.Errorf("kubectl tokenmint %s: %w", cmd.Name(), err)
	}
	return nil
}

// checkKubectlApply checks that the files kubectl apply -f reads exist.
func checkKubectlApply(args []string) error {
	files := 0
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-f" || a == "--filename":
			if i+1 >= len(args) {
				return errors.New("-f needs a path")
			}
			i++
			if _, err := os.Stat(filepath.Join(repoRoot, args[i])); err != nil {
				return err
			}
			files++
		case a == "--server-side":
		default:
			return fmt.Errorf("kubectl apply %s: no check for it", a)
		}
	}
	if files == 0 {
		return errors.New("kubectl apply without -f")
	}
	return nil
}

// checkHelm checks helm install/upgrade RELEASE CHART: the chart is this
// repository's, and each --set key is a value of its values.yaml.
func checkHelm(args []string) error {
	var positional []string
	var version string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(a, "=")
		switch name {
		case "--create-namespace", "--reuse-values":
			continue
		case "-n", "--namespace", "-f", "--values", "--set", "--version":
		default:
			if strings.HasPrefix(a, "-") {
				return fmt.Errorf("helm flag %s: no check for it", a)
			}
			positional = append(positional, a)
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return fmt.Errorf("%s needs a value", name)
			}
			i++
			value = args[i]
		}
		if name == "--set" {
			if err := checkValuesKey(value); err != nil {
				return err
			}
		}
		if name == "--version" {
			version = value
		}
	}
	if len(positional) != 2 {
		return fmt.Errorf("want RELEASE CHART, got %q", positional)
	}
	if strings.HasPrefix(positional[1], "oci://") {
		return checkReleasedChart(positional[1], version)
	}
	if version != "" {
		return fmt.Errorf("--version %s with the chart of a clone (%s)", version, positional[1])
	}
	if _, err := os.Stat(filepath.Join(repoRoot, positional[1], "Chart.yaml")); err != nil {
		return fmt.Errorf("chart %s: %w", positional[1], err)
	}
	return nil
}

// checkValuesKey checks that the key of --set key=value is in values.yaml.
func checkValuesKey(set string) error {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "dist/chart/values.yaml"))
	if err != nil {
		return err
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		return err
	}
	key, _, _ := strings.Cut(set, "=")
	var node any = values
	for _, part := range strings.Split(key, ".") {
		m, ok := node.(map[string]any)
		if !ok {
			return fmt.Errorf("--set %s: %s is not a map in values.yaml", key, part)
		}
		if node, ok = m[part]; !ok {
			return fmt.Errorf("--set %s: values.yaml has no %s", key, key)
		}
	}
	return nil
}

// tokenmintNames are the resource names of tokenmint's CRDs (plural,
// singular, short names) and the CRDs' names.
func tokenmintNames() (map[string]bool, []crdSchema, error) {
	files, err := filepath.Glob(filepath.Join(repoRoot, "config/crd/bases/*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, nil, fmt.Errorf("no CRDs in config/crd/bases: %v", err)
	}
	names := map[string]bool{}
	var schemas []crdSchema
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		var crd struct {
			Metadata struct{ Name string }
			Spec     struct {
				Names struct {
					Plural, Singular, Kind string
					ShortNames, Categories []string
				}
				Versions []struct {
					Schema struct {
						OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
					}
				}
			}
		}
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f, err)
		}
		n := crd.Spec.Names
		for _, s := range slices.Concat([]string{crd.Metadata.Name, n.Plural, n.Singular, strings.ToLower(n.Kind)}, n.ShortNames, n.Categories) {
			names[s] = true
		}
		sc := crdSchema{names: append([]string{n.Plural, n.Singular}, n.ShortNames...)}
		if len(crd.Spec.Versions) > 0 {
			sc.schema = crd.Spec.Versions[0].Schema.OpenAPIV3Schema
		}
		schemas = append(schemas, sc)
	}
	return names, schemas, nil
}

type crdSchema struct {
	names  []string
	schema map[string]any
}

var (
	ownKey = regexp.MustCompile(`tokens\.tokenmint\.dev/[A-Za-z0-9._-]+`)
)

// kubectlWithoutGlobalFlags moves the flags that come before kubectl's verb
// (kubectl -n argocd patch ...) after it.
func kubectlWithoutGlobalFlags(words []string) []string {
	var global []string
	i := 1
	for i < len(words) && strings.HasPrefix(words[i], "-") {
		global = append(global, words[i])
		if !strings.Contains(words[i], "=") && i+1 < len(words) {
			global = append(global, words[i+1])
			i++
		}
		i++
	}
	if i >= len(words) {
		return words
	}
	return append(append([]string{"kubectl", words[i]}, global...), words[i+1:]...)
}

// resourceVerbs are kubectl's verbs whose first argument is a resource type.
var resourceVerbs = []string{"get", "describe", "delete", "patch", "annotate", "label", "edit"}

// checkTokenmintNames checks, in any command, the names that are
// tokenmint's: the resource type a kubectl verb acts on, when it mentions
// tokens (accesstokens, tokenissuer/NAME, tokenissuers,clustertokenissuers),
// must be one of the CRDs', as must a CRD name under tokens.tokenmint.dev;
// and an annotation, label or finalizer key under tokens.tokenmint.dev/ must
// be one the code uses.
func checkTokenmintNames(words []string) error {
	if words[0] == "kubectl" {
		words := kubectlWithoutGlobalFlags(words)
		names, _, err := tokenmintNames()
		if err != nil {
			return err
		}
		var args []string
		for i := 2; i < len(words); i++ {
			w := words[i]
			if strings.HasPrefix(w, "-") {
				if !strings.Contains(w, "=") && flagTakesValue(w) {
					i++
				}
				continue
			}
			args = append(args, w)
		}
		if len(words) > 1 && slices.Contains(resourceVerbs, words[1]) && len(args) > 0 {
			kinds, _, _ := strings.Cut(args[0], "/")
			for _, k := range strings.Split(kinds, ",") {
				if strings.Contains(k, "token") && !names[strings.TrimSuffix(k, ".tokens.tokenmint.dev")] {
					return fmt.Errorf("%q is not a resource of tokenmint's CRDs", k)
				}
			}
		}
		for _, a := range args {
			if strings.HasSuffix(a, ".tokens.tokenmint.dev") && !strings.HasPrefix(a, "$") && !names[a] {
				return fmt.Errorf("%q is not one of tokenmint's CRDs", a)
			}
		}
	}
	for _, w := range words {
		for _, key := range ownKey.FindAllString(w, -1) {
			if ok, err := usedInCode(key); err != nil || !ok {
				return fmt.Errorf("the key %q is not one the code uses (%v)", key, err)
			}
		}
	}
	return nil
}

// flagTakesValue reports whether a kubectl flag written without = takes the
// next word as its value.
func flagTakesValue(flag string) bool {
	switch strings.TrimLeft(flag, "-") {
	case "A", "all-namespaces", "all", "overwrite", "server-side", "ignore-not-found", "create-namespace", "watch", "w":
		return false
	}
	return true
}

// usedInCode reports whether the Go code of api/ or internal/ has the string
// literal s.
func usedInCode(s string) (bool, error) {
	found := false
	for _, dir := range []string{"api", "internal"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || found || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			found = strings.Contains(string(src), `"`+s+`"`)
			return nil
		})
		if err != nil {
			return false, err
		}
	}
	return found, nil
}

// checkPatch checks kubectl patch: a --patch-file exists, and a merge patch
// (--type merge -p JSON) of a tokenmint resource sets only fields of the CRD's
// schema.
func checkPatch(args []string) error {
	var kind, patch, typ string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(a, "=")
		switch name {
		case "--patch-file":
			if !hasValue && i+1 < len(args) {
				i++
				value = args[i]
			}
			if _, err := os.Stat(filepath.Join(repoRoot, value)); err != nil {
				return err
			}
		case "-p", "--patch", "--type", "-n", "--namespace":
			if !hasValue && i+1 < len(args) {
				i++
				value = args[i]
			}
			switch name {
			case "-p", "--patch":
				patch = value
			case "--type":
				typ = value
			}
		default:
			if kind == "" && !strings.HasPrefix(a, "-") {
				kind, _, _ = strings.Cut(a, "/")
			}
		}
	}
	if typ != "merge" || patch == "" {
		return nil
	}
	_, schemas, err := tokenmintNames()
	if err != nil {
		return err
	}
	for _, s := range schemas {
		if !slices.Contains(s.names, kind) {
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(patch), &doc); err != nil {
			return fmt.Errorf("patch %s: %w", patch, err)
		}
		return fieldsInSchema("", doc, s.schema)
	}
	return nil
}

func fieldsInSchema(path string, doc map[string]any, schema map[string]any) error {
	props, _ := schema["properties"].(map[string]any)
	for k, v := range doc {
		if path == "" && (k == "metadata" || k == "apiVersion" || k == "kind") {
			continue
		}
		sub, ok := props[k].(map[string]any)
		if !ok {
			if schema["x-kubernetes-preserve-unknown-fields"] == true || schema["additionalProperties"] != nil {
				continue
			}
			return fmt.Errorf("the schema has no field %s", strings.TrimPrefix(path+"."+k, "."))
		}
		if m, ok := v.(map[string]any); ok {
			if err := fieldsInSchema(path+"."+k, m, sub); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkExplain checks kubectl explain KIND.FIELD.FIELD... of a tokenmint
// kind: the fields are in the CRD's schema.
func checkExplain(path string) error {
	parts := strings.Split(path, ".")
	_, schemas, err := tokenmintNames()
	if err != nil {
		return err
	}
	for _, s := range schemas {
		if !slices.Contains(s.names, parts[0]) {
			continue
		}
		node := s.schema
		for i, f := range parts[1:] {
			if items, ok := node["items"].(map[string]any); ok {
				node = items
			}
			props, _ := node["properties"].(map[string]any)
			next, ok := props[f].(map[string]any)
			if !ok {
				return fmt.Errorf("the schema has no field %s", strings.Join(parts[:i+2], "."))
			}
			node = next
		}
		return nil
	}
	return fmt.Errorf("%q is not a resource of tokenmint's CRDs", parts[0])
}

// testFlagDefined says whether the tests of one of the packages define the flag.
func testFlagDefined(pkgs []string, name string) bool {
	def := regexp.MustCompile(`flag\.[A-Za-z0-9]+(?:Var)?\((?:&?[A-Za-z0-9_.]+, )?"` + regexp.QuoteMeta(name) + `"`)
	for _, p := range pkgs {
		files, _ := filepath.Glob(filepath.Join(repoRoot, strings.TrimSuffix(p, "..."), "*_test.go"))
		for _, f := range files {
			if src, err := os.ReadFile(f); err == nil && def.Match(src) {
				return true
			}
		}
	}
	return false
}

// The release's chart and image, as make release REGISTRY=ghcr.io/tokenmint
// in the release workflow publishes them (the chart's default image, less its
// repository's last part, is the release's registry).
func releaseRegistry() (string, error) {
	var values struct {
		Image struct{ Registry, Repository string }
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, "dist", "chart", "values.yaml"))
	if err != nil {
		return "", err
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		return "", err
	}
	return values.Image.Registry + "/" + filepath.Dir(values.Image.Repository), nil
}

// chartVersion is the version of dist/chart, which a release gives its chart and app.
func chartVersion() (string, error) {
	var chart struct{ Version string }
	data, err := os.ReadFile(filepath.Join(repoRoot, "dist", "chart", "Chart.yaml"))
	if err != nil {
		return "", err
	}
	return chart.Version, yaml.Unmarshal(data, &chart)
}

// checkReleasedChart checks an oci:// chart: the release's, at the chart's version.
func checkReleasedChart(chart, version string) error {
	registry, err := releaseRegistry()
	if err != nil {
		return err
	}
	if want := "oci://" + registry + "/charts/tokenmint"; chart != want {
		return fmt.Errorf("chart %s: the release publishes %s", chart, want)
	}
	current, err := chartVersion()
	if err != nil {
		return err
	}
	if version != current {
		return fmt.Errorf("--version %q: the chart's version is %s", version, current)
	}
	return nil
}

// checkCosign checks a cosign verify command: what it verifies is the
// release's image or chart at the chart's version (or the release's
// SHA256SUMS), and the identity it expects is the release workflow's, which
// must exist and sign keyless.
func checkCosign(args []string) error {
	if len(args) == 0 || !slices.Contains([]string{"verify", "verify-attestation", "verify-blob"}, args[0]) {
		return fmt.Errorf("cosign %v: only verify, verify-attestation and verify-blob are checked", args)
	}
	registry, err := releaseRegistry()
	if err != nil {
		return err
	}
	version, err := chartVersion()
	if err != nil {
		return err
	}
	var identity, issuer string
	var positional []string
	for i := 1; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		switch name {
		case "--certificate-identity-regexp", "--certificate-oidc-issuer", "--type", "--bundle":
		default:
			if strings.HasPrefix(name, "-") {
				return fmt.Errorf("cosign flag %s: no check for it", name)
			}
			positional = append(positional, args[i])
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return fmt.Errorf("%s needs a value", name)
			}
			i++
			value = args[i]
		}
		switch name {
		case "--certificate-identity-regexp":
			identity = value
		case "--certificate-oidc-issuer":
			issuer = value
		case "--type":
			if value != "spdxjson" {
				return fmt.Errorf("--type %s: the release attests its SBOM as spdxjson", value)
			}
		case "--bundle":
			if filepath.Base(value) != "SHA256SUMS.bundle" {
				return fmt.Errorf("--bundle %s: the release signs SHA256SUMS into SHA256SUMS.bundle", value)
			}
		}
	}
	if len(positional) != 1 {
		return fmt.Errorf("want one thing to verify, got %q", positional)
	}
	want := []string{registry + "/tokenmint:" + version, registry + "/charts/tokenmint:" + version}
	if args[0] == "verify-blob" {
		want = []string{"SHA256SUMS"}
	}
	if !slices.Contains(want, positional[0]) {
		return fmt.Errorf("cosign %s %s: the release publishes %v", args[0], positional[0], want)
	}
	if issuer != "https://token.actions.githubusercontent.com" {
		return fmt.Errorf("--certificate-oidc-issuer %q: the release workflow signs with GitHub Actions' OIDC tokens", issuer)
	}
	re, err := regexp.Compile(identity)
	if err != nil {
		return fmt.Errorf("--certificate-identity-regexp: %w", err)
	}
	workflow := ".github/workflows/release.yaml"
	if !re.MatchString("https://github.com/tokenmint/tokenmint/"+workflow+"@refs/tags/v"+version) ||
		re.MatchString("https://github.com/someone/else/"+workflow+"@refs/tags/v"+version) {
		return fmt.Errorf("--certificate-identity-regexp %q does not name this repository's %s at a tag", identity, workflow)
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, workflow))
	if err != nil {
		return err
	}
	if !strings.Contains(string(data), "id-token: write") || !strings.Contains(string(data), "make release") ||
		strings.Contains(string(data), "COSIGN_KEY") {
		return fmt.Errorf("%s does not run make release signing keyless (id-token: write, no COSIGN_KEY)", workflow)
	}
	return nil
}
