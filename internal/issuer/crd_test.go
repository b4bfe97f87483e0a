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
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// crdSchema validates objects of one kind the way the apiserver does on create:
// defaults, then the OpenAPI schema, then the CEL rules.
type crdSchema struct {
	structural *structuralschema.Structural
	schema     validation.SchemaValidator
	rules      *cel.Validator
}

func loadCRDSchemas(t *testing.T) map[string]*crdSchema {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs under config/crd/bases: %v", err)
	}
	schemas := map[string]*crdSchema{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(data, &crd); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var internal apiextensions.JSONSchemaProps
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(crd.Spec.Versions[0].Schema.OpenAPIV3Schema, &internal, nil); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		structural, err := structuralschema.NewStructural(&internal)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		schema, _, err := validation.NewSchemaValidator(&internal)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		schemas[crd.Spec.Names.Kind] = &crdSchema{structural: structural, schema: schema,
			rules: cel.NewValidator(structural, true, celconfig.PerCallLimit)}
	}
	return schemas
}

// admit returns what the apiserver would refuse in obj, an object of kind.
func (s *crdSchema) admit(obj map[string]any) []string {
	defaulting.Default(obj, s.structural)
	var refusals []string
	for _, err := range validation.ValidateCustomResource(nil, obj, s.schema) {
		refusals = append(refusals, err.Error())
	}
	celErrs, _ := s.rules.Validate(context.Background(), nil, s.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	for _, err := range celErrs {
		refusals = append(refusals, err.Error())
	}
	return refusals
}

// sampleObjects decodes every tokenmint object of a sample as the apiserver
// receives it.
func sampleObjects(t *testing.T, name string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	var objects []map[string]any
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(string(data))))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objects
		}
		if err != nil {
			t.Fatal(err)
		}
		asJSON, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		// apimachinery's json decodes whole numbers as int64, as the apiserver does.
		if err := json.Unmarshal(asJSON, &obj); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(obj["apiVersion"].(string), "tokens.tokenmint.dev/") {
			objects = append(objects, obj)
		}
	}
}

// TestSamplesPassTheCRDs checks every sample against the generated CRDs'
// schemas and CEL rules, offline, as kubectl apply would.
func TestSamplesPassTheCRDs(t *testing.T) {
	schemas := loadCRDSchemas(t)
	files, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "*.yaml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("samples: %v %v", files, err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			objects := sampleObjects(t, name)
			if len(objects) != 2 && (len(objects) != 1 || (objects[0]["kind"] != "AccessToken" && objects[0]["kind"] != "ClusterAccessToken")) {
				t.Fatalf("found %d tokenmint objects, want an issuer and an AccessToken, or an AccessToken or ClusterAccessToken alone", len(objects))
			}
			for _, obj := range objects {
				kind := obj["kind"].(string)
				schema := schemas[kind]
				if schema == nil {
					t.Fatalf("no CRD for kind %s", kind)
				}
				if refusals := schema.admit(obj); len(refusals) > 0 {
					t.Errorf("%s would be refused:\n%s", kind, strings.Join(refusals, "\n"))
				}
			}
		})
	}
}

// TestCRDRulesRefuseBrokenSamples shows the check above can fail: broken
// copies of a sample are refused for the reason the CRD gives.
func TestCRDRulesRefuseBrokenSamples(t *testing.T) {
	schemas := loadCRDSchemas(t)
	tests := []struct {
		name   string
		mutate func(spec map[string]any)
		want   string
	}{
		{"plain http", func(spec map[string]any) {
			spec["request"].(map[string]any)["url"] = "http://transaction-api.cable.tech/auth/token"
		}, "must use https"},
		{"two value sources", func(spec map[string]any) {
			field := spec["request"].(map[string]any)["body"].(map[string]any)["json"].([]any)[1].(map[string]any)
			field["generate"] = "UUID"
		}, "exactly one of value, json, credential, generate, parameter or issued"},
		{"minimum on a list", func(spec map[string]any) {
			spec["parameters"].([]any)[1].(map[string]any)["minimum"] = int64(1)
		}, "minimum and maximum apply to Integer parameters only"},
		{"a namespace-bound list", func(spec map[string]any) {
			scopes := spec["parameters"].([]any)[1].(map[string]any)
			delete(scopes, "default")
			scopes["fromNamespaceLabel"] = "example.com/scopes"
		}, "fromNamespaceLabel applies to String and Integer parameters only"},
		{"a namespace label that is no label key", func(spec map[string]any) {
			lifetime := spec["parameters"].([]any)[0].(map[string]any)
			delete(lifetime, "default")
			lifetime["fromNamespaceLabel"] = "not a label!"
		}, "spec.parameters[0].fromNamespaceLabel"},
		{"an unknown response format", func(spec map[string]any) {
			spec["response"].(map[string]any)["format"] = "YAML"
		}, `supported values: "JSON", "XML", "Form"`},
		{"a transform splitting both ways", func(spec map[string]any) {
			spec["response"].(map[string]any)["tokenTransform"] = map[string]any{"before": ":", "after": ":"}
		}, "set at most one of before or after"},
		{"a transform doing nothing", func(spec map[string]any) {
			spec["response"].(map[string]any)["tokenTransform"] = map[string]any{}
		}, "set base64, before or after"},
		{"a long separator", func(spec map[string]any) {
			copied := spec["response"].(map[string]any)["copy"].([]any)[0].(map[string]any)
			copied["transform"] = map[string]any{"before": strings.Repeat(":", 17)}
		}, "spec.response.copy[0].transform.before"},
		{"an unknown base64 alphabet", func(spec map[string]any) {
			spec["response"].(map[string]any)["tokenTransform"] = map[string]any{"base64": "Hex"}
		}, `supported values: "Standard", "URL"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issuer := sampleObjects(t, "cable-transactions.yaml")[0]
			tt.mutate(issuer["spec"].(map[string]any))
			refusals := strings.Join(schemas[issuer["kind"].(string)].admit(issuer), "\n")
			if !strings.Contains(refusals, tt.want) {
				t.Errorf("refusals %q, want one containing %q", refusals, tt.want)
			}
		})
	}
}

// TestCRDRulesKeepNamespaceBindingForClusterIssuers: a TokenIssuer serves
// only its own namespace, so binding a parameter to the namespace's labels is
// refused there, and admitted on a ClusterTokenIssuer.
func TestCRDRulesKeepNamespaceBindingForClusterIssuers(t *testing.T) {
	schemas := loadCRDSchemas(t)
	issuer := sampleObjects(t, "github-app.yaml")[0]
	issuer["spec"].(map[string]any)["parameters"].([]any)[0].(map[string]any)["fromNamespaceLabel"] = "example.com/installation-id"
	const want = "fromNamespaceLabel is for ClusterTokenIssuers"
	if refusals := strings.Join(schemas["TokenIssuer"].admit(issuer), "\n"); !strings.Contains(refusals, want) {
		t.Errorf("TokenIssuer refusals %q, want one containing %q", refusals, want)
	}
	cluster := sampleObjects(t, "github-app-teams.yaml")[0]
	if cluster["kind"] != "ClusterTokenIssuer" {
		t.Fatalf("github-app-teams.yaml starts with a %v", cluster["kind"])
	}
	if refusals := schemas["ClusterTokenIssuer"].admit(cluster); len(refusals) > 0 {
		t.Errorf("the shared GitHub App issuer is refused: %q", refusals)
	}
}
