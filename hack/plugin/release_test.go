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

package plugin

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// manifest is the part of a krew manifest the release fills in.
type manifest struct {
	Kind string `json:"kind"`
	Spec struct {
		Version   string `json:"version"`
		Homepage  string `json:"homepage"`
		Platforms []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
			Files  []struct {
				From string `json:"from"`
				To   string `json:"to"`
			} `json:"files"`
		} `json:"platforms"`
	} `json:"spec"`
}

func readManifest(t *testing.T, path string) manifest {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTemplateNamesEveryPlatformItsArchive(t *testing.T) {
	m := readManifest(t, "../../plugins/tokenmint.yaml")
	if m.Kind != "Plugin" || len(m.Spec.Platforms) != 6 {
		t.Fatalf("kind %q with %d platforms", m.Kind, len(m.Spec.Platforms))
	}
	for _, p := range m.Spec.Platforms {
		goos, arch := p.Selector.MatchLabels["os"], p.Selector.MatchLabels["arch"]
		bin := "kubectl-tokenmint"
		if goos == "windows" {
			bin += ".exe"
		}
		want := "REPLACE-WITH-RELEASE-URL/kubectl-tokenmint_REPLACE-WITH-VERSION_" + goos + "_" + arch + ".tar.gz"
		if p.URI != want || p.SHA256 != "REPLACE-WITH-SHA256-"+goos+"-"+arch || p.Bin != bin ||
			len(p.Files) != 1 || p.Files[0].From != bin {
			t.Errorf("platform %s/%s: uri %s, sha256 %s, bin %s, files %+v", goos, arch, p.URI, p.SHA256, p.Bin, p.Files)
		}
	}
}

func TestReleaseFillsTheManifestWithTheArchivesItBuilt(t *testing.T) {
	out := t.TempDir()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	cmd := exec.Command("./release.sh", "v0.0.0-test", "https://downloads.example.com/tokenmint/v0.0.0-test/")
	cmd.Env = append(os.Environ(), "OUT_DIR="+out, "PLATFORMS="+platform)
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, output)
	}
	m := readManifest(t, filepath.Join(out, "tokenmint.yaml"))
	if m.Spec.Version != "v0.0.0-test" || m.Spec.Homepage != "" {
		t.Errorf("version %q, homepage %q", m.Spec.Version, m.Spec.Homepage)
	}
	archive := "kubectl-tokenmint_v0.0.0-test_" + runtime.GOOS + "_" + runtime.GOARCH + ".tar.gz"
	data, err := os.ReadFile(filepath.Join(out, archive))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	found := false
	for _, p := range m.Spec.Platforms {
		if p.Selector.MatchLabels["os"]+"/"+p.Selector.MatchLabels["arch"] != platform {
			if !strings.HasPrefix(p.SHA256, "REPLACE-WITH-SHA256-") {
				t.Errorf("a platform not built has a checksum: %s", p.SHA256)
			}
			continue
		}
		found = true
		if p.URI != "https://downloads.example.com/tokenmint/v0.0.0-test/"+archive || p.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("uri %s sha256 %s, want the archive's %x", p.URI, p.SHA256, sum)
		}
	}
	if !found {
		t.Fatalf("the manifest has no platform %s", platform)
	}

	bin := filepath.Join(t.TempDir(), "kubectl-tokenmint")
	extract(t, data, "kubectl-tokenmint", bin)
	version, err := exec.Command(bin, "version", "--client").Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(version) != "Plugin: v0.0.0-test\n" {
		t.Errorf("the archived binary says %q", version)
	}
}

// extract writes the archive's file name to path.
func extract(t *testing.T, archive []byte, name, path string) {
	t.Helper()
	gz, err := gzip.NewReader(strings.NewReader(string(archive)))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("%s is not in the archive", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != name {
			continue
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		return
	}
}
