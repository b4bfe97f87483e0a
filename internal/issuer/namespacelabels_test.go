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

package issuer

import (
	"context"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
)

const installationLabel = "github.example.com/installation-id"

func TestNamespaceBoundParameters(t *testing.T) {
	spec := &v1alpha1.IssuerSpec{Parameters: []v1alpha1.ParameterSpec{
		{Name: "installation_id", Type: v1alpha1.ParameterInteger, Minimum: ptr(int64(1)), FromNamespaceLabel: installationLabel},
		{Name: "team", Pattern: `[a-z]+`, FromNamespaceLabel: "team"},
		{Name: "scope", Default: ptr(raw(`"read"`))},
	}}
	if got, want := NamespaceLabelKeys(spec), []string{installationLabel, "team"}; !slices.Equal(got, want) {
		t.Errorf("NamespaceLabelKeys = %q, want %q", got, want)
	}
	if got := NamespaceLabelKeys(&v1alpha1.IssuerSpec{Parameters: spec.Parameters[2:]}); got != nil {
		t.Errorf("NamespaceLabelKeys of an issuer binding nothing = %q, want none", got)
	}

	got, err := ResolveParameters(spec, nil, map[string]string{installationLabel: "56781234", "team": "payments", "other": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if got["installation_id"] != int64(56781234) || got["team"] != "payments" || got["scope"] != "read" {
		t.Errorf("ResolveParameters = %#v", got)
	}

	for _, tt := range []struct {
		name   string
		params map[string]apiextensionsv1.JSON
		labels map[string]string
		want   string
	}{
		{"the namespace lacks the label", nil, map[string]string{"team": "payments"},
			`"installation_id" comes from the label "github.example.com/installation-id" of the AccessToken's namespace, which the namespace does not carry`},
		{"an empty label is no value", nil, map[string]string{installationLabel: "", "team": "payments"}, "does not carry"},
		{"no labels at all", nil, nil, `"team" comes from the label "team"`},
		{"the AccessToken sets a bound parameter", map[string]apiextensionsv1.JSON{"installation_id": raw("99")},
			map[string]string{installationLabel: "56781234", "team": "payments"}, "the AccessToken cannot set it"},
		{"even to the label's own value", map[string]apiextensionsv1.JSON{"installation_id": raw("56781234")},
			map[string]string{installationLabel: "56781234", "team": "payments"}, "the AccessToken cannot set it"},
		{"a label that is not a number", nil, map[string]string{installationLabel: "abc", "team": "payments"}, `is "abc", not a whole number`},
		{"a label below the minimum", nil, map[string]string{installationLabel: "0", "team": "payments"}, "below the minimum 1"},
		{"a label breaking the pattern", nil, map[string]string{installationLabel: "1", "team": "Pay-ments"}, "does not match the pattern"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ResolveParameters(spec, tt.params, tt.labels)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestValidateNamespaceBinding(t *testing.T) {
	for _, tt := range []struct {
		name string
		decl v1alpha1.ParameterSpec
		want string
	}{
		{"not a label key", v1alpha1.ParameterSpec{Name: "p", FromNamespaceLabel: "not a key!"}, "fromNamespaceLabel is not a label key"},
		{"a list", v1alpha1.ParameterSpec{Name: "p", Type: v1alpha1.ParameterStringList, FromNamespaceLabel: "k"}, "String and Integer parameters only"},
		{"a default", v1alpha1.ParameterSpec{Name: "p", Default: ptr(raw(`"x"`)), FromNamespaceLabel: "k"}, "has no default"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := tokenSpec("https://example.com/token")
			spec.Parameters = []v1alpha1.ParameterSpec{tt.decl}
			if err := Validate(spec); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestSampleGitHubAppTeams runs the shared GitHub App sample against the fake
// of GitHub, which knows two installations: each namespace gets only the
// installation its label names, and nothing reaches the endpoint when the
// label is missing or the AccessToken tries to choose the installation.
func TestSampleGitHubAppTeams(t *testing.T) {
	fake := fakes.NewGitHubApps("Iv23liEXAMPLE1234567", "123456", "56781234", &testRSAKey.PublicKey)
	fake.Installations = append(fake.Installations, "56789999")
	run := startSample(t, "github-app-teams.yaml", fake, &fake.Base)
	if _, set := run.token.Spec.Parameters["installation_id"]; set {
		t.Fatal("the sample's AccessToken sets installation_id")
	}

	for _, id := range []string{"56781234", "56789999"} {
		call := run.call
		call.NamespaceLabels = map[string]string{installationLabel: id}
		token, err := run.engine.Issue(context.Background(), call)
		if err != nil {
			t.Fatalf("installation %s: %v", id, err)
		}
		issued := fake.Issued()
		if last := issued[len(issued)-1]; last.Value != token.Value || last.Request["installation"] != id {
			t.Errorf("a namespace labelled %s got a token of installation %v", id, last.Request["installation"])
		}
	}

	calls := fake.Calls()
	for what, c := range map[string]Call{
		"no label": run.call,
		"the AccessToken names another installation": func() Call {
			c := run.call
			c.NamespaceLabels = map[string]string{installationLabel: "56781234"}
			c.Parameters = map[string]apiextensionsv1.JSON{"installation_id": raw("56789999")}
			return c
		}(),
	} {
		_, err := run.engine.Issue(context.Background(), c)
		if ClassOf(err) != ClassInvalidParameters || !strings.Contains(err.Error(), `"installation_id" comes from the label`) {
			t.Errorf("%s: error %v, want InvalidParameters naming the label", what, err)
		}
	}
	if fake.Calls() != calls {
		t.Errorf("the endpoint saw %d calls for refused parameters", fake.Calls()-calls)
	}
}
