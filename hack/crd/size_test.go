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

package crd

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// maxCRDJSONBytes is the largest a CRD may be as JSON: 200 KiB. Client-side
// kubectl apply (and Argo CD's default sync) records the whole object in the
// kubectl.kubernetes.io/last-applied-configuration annotation, and the API
// server refuses annotations over 256 KiB in all; the difference leaves room
// for the descriptions and rules still to come.
const maxCRDJSONBytes = 200 << 10

// TestCRDsFitClientSideApply converts each CRD in config/crd/bases to JSON
// and fails, naming the file and its size, when one is over 200 KiB.
func TestCRDsFitClientSideApply(t *testing.T) {
	files, err := filepath.Glob("../../config/crd/bases/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no CRD in config/crd/bases: this test checks nothing")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(js) > maxCRDJSONBytes {
			t.Errorf("%s is %d bytes as JSON (%.0f KiB), over the %d (200 KiB) that leave it room in client-side apply's last-applied-configuration annotation (256 KiB)",
				filepath.Base(f), len(js), float64(len(js))/1024, maxCRDJSONBytes)
		} else {
			t.Logf("%s: %d bytes as JSON", filepath.Base(f), len(js))
		}
	}
}
