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
	"strings"
	"testing"
)

// checkCommand splits one documented command into simple commands and checks
// each, and each command substitution in it; it returns the checks made.
func checkCommand(c docCommand) ([]string, error) {
	cmds, err := splitShell(c.text, c.line)
	if err != nil {
		return nil, err
	}
	if len(cmds) == 0 {
		return nil, fmt.Errorf("no command in %q", c.text)
	}
	var checks []string
	for _, sc := range cmds {
		what, err := check(sc.words)
		if err != nil {
			return checks, fmt.Errorf("%s: %w", strings.Join(sc.words, " "), err)
		}
		checks = append(checks, what)
		for _, sub := range sc.subs {
			inner, err := checkCommand(docCommand{file: c.file, line: sc.line, text: sub})
			if err != nil {
				return checks, fmt.Errorf("$(%s): %w", sub, err)
			}
			checks = append(checks, inner...)
		}
	}
	return checks, nil
}

// TestDocumentedCommands checks every command line of README.md and
// docs/*.md (see commands_test.go for which lines count).
func TestDocumentedCommands(t *testing.T) {
	cmds, err := repoCommands()
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) < 50 {
		t.Fatalf("found only %d commands in the docs: the extraction is broken", len(cmds))
	}
	for _, c := range cmds {
		checks, err := checkCommand(c)
		if err != nil {
			t.Errorf("%s\n    fails: %v", c, err)
			continue
		}
		t.Logf("%s\n    %s", c, strings.Join(checks, "; "))
	}
}

// TestWrongCommandsFail feeds the checks Markdown with commands that are
// wrong, each in one way, and expects each to be refused; and the same
// commands made right to pass, so that a refusal is for the reason given.
func TestWrongCommandsFail(t *testing.T) {
	for _, tc := range []struct {
		name, wrong, right, says string
	}{
		{"demo lifetime under its floor", "make demo DEMO_ARGS=\"-lifetime 30s\"", "make demo DEMO_ARGS=\"-lifetime 1m\"", "invalid value"},
		{"demo flag misspelt", "make demo DEMO_ARGS=\"-lifetme 1m\"", "make demo DEMO_ARGS=\"-duration 5m\"", "no flag -lifetme"},
		{"demo flag given to go run", "go run ./test/demo --no-such-flag", "go run ./test/demo -use-kubeconfig", "no flag -no-such-flag"},
		{"malformed duration", "go run ./test/demo -duration 5 minutes", "go run ./test/demo -duration 5m", "takes flags only"},
		{"bench flag", "make bench-mixed MIXED_ARGS='-mixed-smok'", "make bench-mixed MIXED_ARGS='-mixed-smoke'", "no flag -mixed-smok"},
		{"bench value", "go run ./test/bench -n ten", "go run ./test/bench -n 10", "invalid value"},
		{"manager flag through the bench", "make bench BENCH_ARGS='-manager-args \"--kube-api-qps=fast\"'", "make bench BENCH_ARGS='-manager-args \"--kube-api-qps=50\"'", "invalid value"},
		{"manager flag", "go run ./cmd/main.go --no-such-flag", "go run ./cmd/main.go --min-renewal-interval=30s", "no flag -no-such-flag"},
		{"manager value", "go run ./cmd/main.go --min-renewal-interval=soon", "go run ./cmd/main.go --min-renewal-interval=30s", "invalid value"},
		{"make target", "make no-such-target", "make help", "No rule to make target"},
		{"make variable", "make demo DEMO_ARG=-use-kubeconfig", "make demo DEMO_ARGS=-use-kubeconfig", "does not use the variable DEMO_ARG"},
		{"plugin subcommand", "kubectl tokenmint stat orders -n billing", "kubectl tokenmint status orders -n billing", "unknown command \"stat\""},
		{"plugin flag", "kubectl tokenmint renew --no-such-flag", "kubectl tokenmint renew --all", "unknown flag"},
		{"plugin arguments", "kubectl tokenmint check orders", "kubectl tokenmint check", "unknown command"},
		{"applied path", "kubectl apply -f config/samples/no-such.yaml", "kubectl apply -f config/samples/", "no such file"},
		{"chart value", "helm install tokenmint dist/chart --set image.digst=x", "helm install tokenmint dist/chart --set image.digest=x", "values.yaml has no image.digst"},
		{"chart path", "helm install tokenmint dist/chrt", "helm install tokenmint dist/chart", "chart dist/chrt"},
		{"test package", "go test ./internal/no-such-package/", "go test ./internal/rotation/", "no such file"},
		{"test name", "go test ./internal/controller/ -run TestNoSuchSuite", "go test ./internal/controller/ -run TestControllers", "matches no"},
		{"resource", "kubectl get accesstokenz -A", "kubectl get accesstokens -A", "not a resource of tokenmint's CRDs"},
		{"annotation", "kubectl annotate accesstoken x tokens.tokenmint.dev/renw=1", "kubectl annotate accesstoken x tokens.tokenmint.dev/renew=1", "not one the code uses"},
		{"patched field", `kubectl patch accesstoken x --type merge -p '{"spec":{"suspnd":true}}'`, `kubectl patch accesstoken x --type merge -p '{"spec":{"suspend":true}}'`, "no field spec.suspnd"},
		{"explained field", "kubectl explain accesstoken.spec.secret.nam", "kubectl explain accesstoken.spec.secret.name", "no field accesstoken.spec.secret.nam"},
		{"focused spec", "go test ./internal/controller/ -run TestControllers -ginkgo.focus='no such spec'", "go test ./internal/controller/ -run TestControllers -ginkgo.focus='hostile tenant'", "matches no spec"},
		{"unchecked command", "kubectl proxy --port=8001", "kubectl get crd", "no check for \"kubectl proxy\""},
		{"released chart version", "helm install tokenmint oci://ghcr.io/tokenmint/charts/tokenmint --version 0.0.9", "helm install tokenmint oci://ghcr.io/tokenmint/charts/tokenmint --version 0.4.0", "the chart's version is"},
		{"released chart name", "helm install tokenmint oci://ghcr.io/tokenmint/tokenmint --version 0.4.0", "helm install tokenmint oci://ghcr.io/tokenmint/charts/tokenmint --version 0.4.0", "the release publishes"},
		{"verified image", "cosign verify ghcr.io/tokenmint/tokenmnt:0.4.0 --certificate-identity-regexp '^https://github.com/tokenmint/tokenmint/[.]github/workflows/release[.]yaml@refs/tags/v' --certificate-oidc-issuer https://token.actions.githubusercontent.com", "cosign verify ghcr.io/tokenmint/tokenmint:0.4.0 --certificate-identity-regexp '^https://github.com/tokenmint/tokenmint/[.]github/workflows/release[.]yaml@refs/tags/v' --certificate-oidc-issuer https://token.actions.githubusercontent.com", "the release publishes"},
		{"signer identity", "cosign verify ghcr.io/tokenmint/tokenmint:0.4.0 --certificate-identity-regexp 'release' --certificate-oidc-issuer https://token.actions.githubusercontent.com", "cosign verify ghcr.io/tokenmint/tokenmint:0.4.0 --certificate-identity-regexp '^https://github.com/tokenmint/tokenmint/[.]github/workflows/release[.]yaml@refs/tags/v' --certificate-oidc-issuer https://token.actions.githubusercontent.com", "does not name this repository"},
		{"test flag", "go test ./hack/chart/ -run TestChartVersionBumpedWithContent -record-versions", "go test ./hack/chart/ -run TestChartVersionBumpedWithContent -record-version", "no check for it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, wrapped := range []func(string) string{
				func(c string) string { return "```sh\n" + c + "   # a comment\n```\n" },
				func(c string) string { return "Run `" + c + "` to see.\n" },
				func(c string) string { return "```\n$ " + c + "\noutput\n```\n" },
			} {
				if !inlineCmd.MatchString(tc.wrong) && strings.HasPrefix(wrapped(""), "Run") {
					continue // inline spans are commands only for make, go, kubectl and helm
				}
				wrong := extractCommands("fake.md", wrapped(tc.wrong))
				if len(wrong) != 1 {
					t.Fatalf("%q: found %d commands, want 1", wrapped(tc.wrong), len(wrong))
				}
				_, err := checkCommand(wrong[0])
				if err == nil {
					t.Errorf("%q passed the checks", tc.wrong)
				} else if !strings.Contains(err.Error(), tc.says) {
					t.Errorf("%q failed for another reason than %q: %v", tc.wrong, tc.says, err)
				}
				right := extractCommands("fake.md", wrapped(tc.right))
				if len(right) != 1 {
					t.Fatalf("%q: found %d commands, want 1", wrapped(tc.right), len(right))
				}
				if _, err := checkCommand(right[0]); err != nil {
					t.Errorf("%q failed: %v", tc.right, err)
				}
			}
		})
	}
}
