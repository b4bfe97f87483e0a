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
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// yamlBlock matches a fenced yaml block of Markdown.
var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestDocumentedExamplesPassTheCRDs checks the YAML examples of the README and
// docs/ against the CRDs, as kubectl apply would, and issuers against the
// manager's own validation: whole objects as they are, and excerpts that are
// an issuer's or an AccessToken's spec wrapped in one. An example that no
// longer matches the API fails here.
func TestDocumentedExamplesPassTheCRDs(t *testing.T) {
	schemas := loadCRDSchemas(t)
	files, _ := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	files = append(files, filepath.Join("..", "..", "README.md"))
	checked := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range yamlBlock.FindAllStringSubmatch(string(data), -1) {
			for j, doc := range strings.Split(m[1], "\n---\n") {
				obj := exampleObject(doc)
				if obj == nil {
					continue
				}
				checked++
				name := filepath.Base(file)
				kind, _ := obj["kind"].(string)
				if refusals := schemas[kind].admit(obj); len(refusals) > 0 {
					t.Errorf("%s, block %d, document %d (%s) would be refused:\n%s", name, i+1, j+1, kind, strings.Join(refusals, "\n"))
					continue
				}
				if kind == "TokenIssuer" {
					raw, _ := json.Marshal(obj["spec"])
					var spec v1alpha1.IssuerSpec
					if err := json.Unmarshal(raw, &spec); err != nil {
						t.Errorf("%s, block %d: %v", name, i+1, err)
					} else if err := Validate(&spec); err != nil {
						t.Errorf("%s, block %d: the issuer does not validate: %v", name, i+1, err)
					}
				}
			}
		}
	}
	if checked < 18 {
		t.Fatalf("checked only %d examples", checked)
	}
}

// exampleObject decodes one YAML document of an example: a tokenmint object,
// or an excerpt that is the spec of one (an issuer's has a request or a
// signedJWT or an awsPresignedURL, an AccessToken's an issuerRef and a
// secret). Anything else is nil.
func exampleObject(doc string) map[string]any {
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil || obj == nil {
		return nil
	}
	if api, _ := obj["apiVersion"].(string); strings.HasPrefix(api, "tokens.tokenmint.dev/") {
		return roundTrip(obj)
	}
	spec, ok := obj["spec"].(map[string]any)
	if !ok || len(obj) != 1 {
		return nil
	}
	wrap := func(kind string) map[string]any {
		return roundTrip(map[string]any{"apiVersion": "tokens.tokenmint.dev/v1alpha1", "kind": kind,
			"metadata": map[string]any{"name": "example", "namespace": "default"}, "spec": spec})
	}
	_, request := spec["request"]
	_, signed := spec["signedJWT"]
	_, presigned := spec["awsPresignedURL"]
	_, issuerRef := spec["issuerRef"]
	_, secret := spec["secret"]
	switch {
	case (request && spec["response"] != nil) || signed || presigned:
		return wrap("TokenIssuer")
	case issuerRef && secret:
		return wrap("AccessToken")
	}
	return nil
}

// roundTrip gives obj the types the apiserver decodes into (int64 numbers).
func roundTrip(obj map[string]any) map[string]any {
	raw, _ := json.Marshal(obj)
	var out map[string]any
	if err := utilyaml.Unmarshal(raw, &out); err != nil {
		return nil
	}
	return out
}
