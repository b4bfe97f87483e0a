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

package chart

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
	"sigs.k8s.io/yaml"
)

// versionsFile records, for each chart version, the digest of what it
// installs: its templates (the CRDs among them) and the files they render.
const versionsFile = "versions.txt"

var recordVersion = flag.Bool("record-version", false,
	"append the chart's new version and its digest to "+versionsFile+" (never rewrites a recorded version)")

// contentDigest is the sha256 of the chart's templates/ and dashboards/: each
// file's path and sha256, sorted.
func contentDigest(t *testing.T) string {
	t.Helper()
	var lines []string
	for _, dir := range []string{"templates", "dashboards"} {
		err := filepath.WalkDir(filepath.Join(chartDir, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(chartDir, p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			lines = append(lines, filepath.ToSlash(rel)+" "+hex.EncodeToString(sum[:]))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n") + "\n"))
	return "sha256:" + hex.EncodeToString(sum[:])
}

type chartMeta struct {
	Version     string `json:"version"`
	AppVersion  string `json:"appVersion"`
	KubeVersion string `json:"kubeVersion"`
}

func readChartMeta(t *testing.T) chartMeta {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m chartMeta
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

type recorded struct{ version, digest string }

func readVersions(t *testing.T) []recorded {
	t.Helper()
	data, err := os.ReadFile(versionsFile)
	if err != nil {
		t.Fatal(err)
	}
	var out []recorded
	for i, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("%s:%d: want VERSION DIGEST, got %q", versionsFile, i+1, l)
		}
		out = append(out, recorded{f[0], f[1]})
	}
	return out
}

// TestChartVersionBumpedWithContent fails when the chart's templates or CRDs
// change while its version stays: a chart version, once recorded, always
// installs the same objects. Bump version in dist/chart/Chart.yaml (and
// appVersion: a release gives both the same version), then run
// go test ./hack/chart/ -run TestChartVersionBumpedWithContent -record-version
// to append the new version's digest.
func TestChartVersionBumpedWithContent(t *testing.T) {
	meta := readChartMeta(t)
	versions := readVersions(t)
	digest := contentDigest(t)
	if len(versions) == 0 && !*recordVersion {
		t.Fatalf("%s records no version", versionsFile)
	}
	last := recorded{version: "0.0.0"}
	if len(versions) > 0 {
		last = versions[len(versions)-1]
	}
	var prev *semver.Version
	for _, r := range versions {
		v, err := semver.StrictNewVersion(r.version)
		if err != nil {
			t.Fatalf("%s: %q is not a semantic version: %v", versionsFile, r.version, err)
		}
		if prev != nil && !v.GreaterThan(prev) {
			t.Fatalf("%s: %s follows %s: versions only go up", versionsFile, v, prev)
		}
		prev = v
	}
	for _, r := range versions {
		if r.version == meta.Version && r.digest != digest {
			t.Fatalf("chart %s is recorded with %s, but its templates and CRDs are now %s: "+
				"bump version in dist/chart/Chart.yaml and run go test ./hack/chart/ -run %s -record-version",
				meta.Version, r.digest, digest, t.Name())
		}
		if r.version != meta.Version && r.digest == digest && r == last {
			t.Fatalf("chart version %s installs what %s does: the version went up with no change", meta.Version, r.version)
		}
	}
	if meta.Version == last.version {
		return
	}
	v, err := semver.StrictNewVersion(meta.Version)
	if err != nil {
		t.Fatalf("Chart.yaml version %q is not a semantic version: %v", meta.Version, err)
	}
	if !v.GreaterThan(semver.MustParse(last.version)) {
		t.Fatalf("Chart.yaml version %s is not above the last recorded %s", v, last.version)
	}
	if !*recordVersion {
		t.Fatalf("chart %s is not recorded in hack/chart/%s: run go test ./hack/chart/ -run %s -record-version",
			meta.Version, versionsFile, t.Name())
	}
	f, err := os.OpenFile(versionsFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%s %s\n", meta.Version, digest); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded chart %s %s", meta.Version, digest)
}

var changelogVersion = regexp.MustCompile(`(?m)^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$`)

// TestVersionsAreStated checks the chart's and the app's versions: semantic,
// one version for both, in CHANGELOG.md (Keep a Changelog, with an Unreleased
// section), and a kubeVersion whose oldest minor is the one docs/install.md
// and hack/controlplane name.
func TestVersionsAreStated(t *testing.T) {
	meta := readChartMeta(t)
	if _, err := semver.StrictNewVersion(meta.Version); err != nil {
		t.Errorf("version %q: %v", meta.Version, err)
	}
	if meta.AppVersion != meta.Version {
		t.Errorf("appVersion %q differs from version %q: a release gives both its version", meta.AppVersion, meta.Version)
	}
	changelog, err := os.ReadFile(filepath.Join(repoRoot, "CHANGELOG.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(changelog), "\n## [Unreleased]\n") {
		t.Error("CHANGELOG.md has no ## [Unreleased] section")
	}
	m := changelogVersion.FindStringSubmatch(string(changelog))
	if m == nil || m[1] != meta.Version {
		t.Errorf("CHANGELOG.md's newest version is %v, the chart's %s", m, meta.Version)
	}

	c, err := semver.NewConstraint(meta.KubeVersion)
	if err != nil {
		t.Fatalf("kubeVersion %q: %v", meta.KubeVersion, err)
	}
	oldest := oldestMinor(t)
	for _, v := range []string{oldest + ".0", newestMinor(t) + ".0"} {
		if !c.Check(semver.MustParse(v)) {
			t.Errorf("kubeVersion %q excludes %s, which the tests run", meta.KubeVersion, v)
		}
	}
	o := semver.MustParse(oldest + ".0")
	older := semver.New(o.Major(), o.Minor()-1, 99, "", "")
	if c.Check(older) {
		t.Errorf("kubeVersion %q admits %s, older than the oldest tested minor %s", meta.KubeVersion, older, oldest)
	}
	install, err := os.ReadFile(filepath.Join(repoRoot, "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, minor := range []string{oldest, newestMinor(t)} {
		if !strings.Contains(string(install), "| "+minor+" |") {
			t.Errorf("docs/install.md's supported versions table has no row | %s |", minor)
		}
	}
	if !strings.Contains(string(install), "`kubeVersion: "+meta.KubeVersion+"`") {
		t.Errorf("docs/install.md does not state the chart's kubeVersion: %s", meta.KubeVersion)
	}
}

var kubeVersionLine = regexp.MustCompile(`(?m)^KUBE_VERSION=\$\{TOKENMINT_KUBE_VERSION:-v(\d+\.\d+)\.\d+\}$`)

// newestMinor is the minor of the control plane every test runs.
func newestMinor(t *testing.T) string {
	data, err := os.ReadFile(filepath.Join(repoRoot, "hack", "controlplane", "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := kubeVersionLine.FindStringSubmatch(string(data))
	if m == nil {
		t.Fatal("hack/controlplane/build.sh sets no KUBE_VERSION")
	}
	return m[1]
}

// oldestMinor is the minor make test-compat runs, from its wrapper module.
func oldestMinor(t *testing.T) string {
	dirs, err := filepath.Glob(filepath.Join(repoRoot, "hack", "controlplane", "kube-1.*"))
	if err != nil || len(dirs) != 1 {
		t.Fatalf("want one hack/controlplane/kube-1.<minor> (the oldest supported minor), got %v %v", dirs, err)
	}
	return strings.TrimPrefix(filepath.Base(dirs[0]), "kube-")
}

// kubeVersionFlag is helm template's --kube-version for the Kubernetes minor the
// tests run: a helm built with go install assumes 1.20, which the chart's
// kubeVersion refuses.
func kubeVersionFlag(t *testing.T) string {
	return "--kube-version=v" + newestMinor(t) + ".0"
}
