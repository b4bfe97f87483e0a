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

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/yaml"

	"github.com/tokenmint/tokenmint/hack/image/managerimage"
	testrelease "github.com/tokenmint/tokenmint/test/release"
)

const (
	repoRoot       = "../.."
	testVersion    = "1.2.3"
	helmConfigType = "application/vnd.cncf.helm.config.v1+json"
)

// release is a release made once, by make release, to a loopback registry.
type release struct {
	registry string // 127.0.0.1:<port>/<path>
	out      string
	pub      string // the cosign public key
	env      []string
	notes    map[string]artifact // by name, or by file name for files
	cosign   string
	helm     string
}

// TestRelease runs `make release` against a registry on 127.0.0.1 and checks
// every artifact with the standard tools (cosign, helm), then that a modified
// image, chart or checksum file fails verification.
func TestRelease(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the release is built on linux")
	}
	r := makeRelease(t)

	t.Run("image index", func(t *testing.T) { r.checkImage(t) })
	t.Run("image signature", func(t *testing.T) {
		r.mustCosign(t, "verify", r.ref("image"))
		r.mustCosign(t, "verify", r.registry+"/tokenmint:"+testVersion)
	})
	t.Run("SBOM", func(t *testing.T) { r.checkSBOM(t) })
	t.Run("chart", func(t *testing.T) { r.checkChart(t) })
	t.Run("chart signature", func(t *testing.T) {
		r.mustCosign(t, "verify", strings.TrimPrefix(r.registry+"/charts/tokenmint@"+r.notes["chart"].Digest, "oci://"))
		r.mustCosign(t, "verify", r.registry+"/charts/tokenmint:"+testVersion)
	})
	t.Run("plugin archives and krew manifest", func(t *testing.T) { r.checkPlugin(t) })
	t.Run("files and SHA256SUMS", func(t *testing.T) { r.checkFiles(t) })

	// The negative specs modify what the registry and the files hold: they run last.
	t.Run("another key does not verify", func(t *testing.T) {
		other := t.TempDir()
		r.run(t, other, r.cosign, "generate-key-pair")
		r.failCosign(t, "no matching signatures", "verify", "--key", filepath.Join(other, "cosign.pub"), r.ref("image"))
	})
	t.Run("a modified image fails verification", func(t *testing.T) { r.tamperImage(t) })
	t.Run("a modified chart fails verification", func(t *testing.T) { r.tamperChart(t) })
	t.Run("a modified SHA256SUMS fails verification", func(t *testing.T) {
		sums := filepath.Join(r.out, "SHA256SUMS")
		data, err := os.ReadFile(sums)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(sums, append(data, []byte("0000  extra\n")...), 0o644); err != nil {
			t.Fatal(err)
		}
		r.failCosign(t, "", "verify-blob", "--bundle", sums+".bundle", sums)
	})
}

func makeRelease(t *testing.T) *release {
	t.Helper()
	reg := testrelease.StartRegistry(t)
	made := testrelease.Make(t, testrelease.Options{Version: testVersion, Registry: reg.Host + "/platform"})
	t.Logf("make release took %s", made.Took.Round(time.Second))
	r := &release{
		registry: made.Registry,
		out:      made.Out,
		pub:      made.Tools.Pub,
		env:      made.Tools.Env,
		cosign:   made.Tools.Cosign,
		helm:     made.Tools.Helm,
		notes:    map[string]artifact{},
	}
	for k, a := range made.Notes {
		r.notes[k] = artifact{Name: a.Name, Reference: a.Reference, Digest: a.Digest}
	}
	for _, want := range []string{"image", "image linux/amd64", "image linux/arm64", "chart", "SBOM (SPDX 2.3, OCI referrer of the image)",
		"tokenmint.yaml", "tokenmint-" + testVersion + ".tgz", "tokenmint-" + testVersion + ".spdx.json"} {
		if _, ok := r.notes[want]; !ok {
			t.Errorf("the release notes name no %q:\n%s", want, made.Logs)
		}
	}
	return r
}

// ref is the reference by digest of the named artifact.
func (r *release) ref(name string) string {
	a := r.notes[name]
	repo, _, _ := strings.Cut(a.Reference, ":"+testVersion)
	repo, _, _ = strings.Cut(repo, "@")
	return repo + "@" + a.Digest
}

func (r *release) run(t *testing.T, dir, prog string, args ...string) string {
	t.Helper()
	out, err := r.cmd(dir, prog, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(prog), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (r *release) cmd(dir, prog string, args ...string) *exec.Cmd {
	c := exec.Command(prog, args...)
	c.Dir, c.Env = dir, r.env
	return c
}

func (r *release) cosignArgs(cmd string, args []string) []string {
	a := []string{cmd, "--insecure-ignore-tlog=true", "--allow-insecure-registry", "--allow-http-registry"}
	if cmd == "verify-blob" {
		a = []string{cmd, "--insecure-ignore-tlog=true"}
	}
	if !containsString(args, "--key") {
		a = append(a, "--key", r.pub)
	}
	return append(a, args...)
}

func (r *release) mustCosign(t *testing.T, cmd string, args ...string) string {
	t.Helper()
	out, err := r.cmd(t.TempDir(), r.cosign, r.cosignArgs(cmd, args)...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("cosign %s %s: %v\n%s", cmd, strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// failCosign checks that cosign fails, saying want when it is not empty.
func (r *release) failCosign(t *testing.T, want, cmd string, args ...string) {
	t.Helper()
	out, err := r.cmd(t.TempDir(), r.cosign, r.cosignArgs(cmd, args)...).CombinedOutput()
	if err == nil {
		t.Fatalf("cosign %s %s passed; want a failure\n%s", cmd, strings.Join(args, " "), out)
	}
	if want != "" && !strings.Contains(string(out), want) {
		t.Fatalf("cosign %s failed without saying %q:\n%s", cmd, want, out)
	}
	t.Logf("cosign %s fails as it should: %s", cmd, lastLine(string(out)))
}

func (r *release) checkImage(t *testing.T) {
	ref, err := name.ParseReference(r.registry + "/tokenmint:" + testVersion)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if digest.String() != r.notes["image"].Digest {
		t.Errorf("the tag's index is %s, the notes say %s", digest, r.notes["image"].Digest)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 2 {
		t.Fatalf("the index lists %d images, want linux/amd64 and linux/arm64", len(m.Manifests))
	}
	for _, d := range m.Manifests {
		p := d.Platform.OS + "/" + d.Platform.Architecture
		if got := r.notes["image "+p].Digest; got != d.Digest.String() {
			t.Errorf("%s is %s, the notes say %q", p, d.Digest, got)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Config.Labels["org.opencontainers.image.version"] != testVersion {
			t.Errorf("%s is labelled version %q", p, cfg.Config.Labels["org.opencontainers.image.version"])
		}
	}
}

// checkSBOM checks the signed SPDX attestation and the referrer: they name
// every Go module linked into the manager, each at its version in go.mod.
func (r *release) checkSBOM(t *testing.T) {
	out := r.mustCosign(t, "verify-attestation", "--type", "spdxjson", r.ref("image"))
	var envelope struct{ Payload string }
	if err := json.Unmarshal([]byte(strings.SplitN(strings.TrimSpace(out), "\n", 2)[0]), &envelope); err != nil {
		t.Fatalf("cosign verify-attestation printed %q: %v", out, err)
	}
	payload, err := base64.StdEncoding.DecodeString(envelope.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var statement struct {
		PredicateType string          `json:"predicateType"`
		Predicate     json.RawMessage `json:"predicate"`
		Subject       []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(payload, &statement); err != nil {
		t.Fatal(err)
	}
	if statement.PredicateType != "https://spdx.dev/Document" {
		t.Errorf("predicate type %q", statement.PredicateType)
	}
	if len(statement.Subject) != 1 || "sha256:"+statement.Subject[0].Digest["sha256"] != r.notes["image"].Digest {
		t.Errorf("the attestation's subject is %+v, not the image", statement.Subject)
	}
	var doc spdxDocument
	if err := json.Unmarshal(statement.Predicate, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXID != "SPDXRef-DOCUMENT" {
		t.Errorf("not an SPDX 2.3 document: %s %s %s", doc.SPDXVersion, doc.DataLicense, doc.SPDXID)
	}
	inSBOM := map[string]string{}
	for _, p := range doc.Packages {
		inSBOM[p.Name] = p.VersionInfo
	}
	required := goModRequires(t)
	linked := linkedModules(t)
	if len(linked) < 20 {
		t.Fatalf("only %d modules linked into the manager: %v", len(linked), linked)
	}
	for mod, version := range linked {
		if required[mod] != version {
			t.Errorf("go.mod requires %s %q, the manager links %q", mod, required[mod], version)
		}
		if inSBOM[mod] != version {
			t.Errorf("the SBOM names %s %q, want go.mod's %q", mod, inSBOM[mod], version)
		}
	}
	for _, p := range doc.Packages[2:] {
		if _, ok := linked[p.Name]; !ok {
			t.Errorf("the SBOM names %s, which the manager does not link", p.Name)
		}
	}
	if inSBOM["github.com/tokenmint/tokenmint"] != testVersion {
		t.Errorf("the SBOM names the main module at %q", inSBOM["github.com/tokenmint/tokenmint"])
	}

	// The same document is a referrer of the image, and the file of the release.
	file, err := os.ReadFile(filepath.Join(r.out, "tokenmint-"+testVersion+".spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fromFile spdxDocument
	if err := json.Unmarshal(file, &fromFile); err != nil {
		t.Fatal(err)
	}
	if len(fromFile.Packages) != len(doc.Packages) {
		t.Errorf("the SBOM file has %d packages, the attestation %d", len(fromFile.Packages), len(doc.Packages))
	}
	d, err := name.NewDigest(r.ref("image"))
	if err != nil {
		t.Fatal(err)
	}
	refs, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	m, err := refs.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, desc := range m.Manifests {
		if desc.ArtifactType != SPDXMediaType {
			continue
		}
		found = true
		if desc.Digest.String() != r.notes["SBOM (SPDX 2.3, OCI referrer of the image)"].Digest {
			t.Errorf("the SBOM referrer is %s, the notes say %s", desc.Digest, r.notes["SBOM (SPDX 2.3, OCI referrer of the image)"].Digest)
		}
		img, err := remote.Image(d.Context().Digest(desc.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("the SBOM referrer has %d layers: %v", len(layers), err)
		}
		rc, err := layers[0].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, file) {
			t.Error("the SBOM referrer is not the release's SBOM file")
		}
	}
	if !found {
		t.Errorf("no SPDX referrer of the image: %+v", m.Manifests)
	}
}

// goModRequires returns go.mod's requirements, module path to version.
func goModRequires(t *testing.T) map[string]string {
	out, err := exec.Command("go", "mod", "edit", "-json", filepath.Join(repoRoot, "go.mod")).Output()
	if err != nil {
		t.Fatal(err)
	}
	var mod struct {
		Require []struct{ Path, Version string }
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatal(err)
	}
	req := map[string]string{}
	for _, r := range mod.Require {
		req[r.Path] = r.Version
	}
	return req
}

// linkedModules returns the modules whose packages the manager imports.
func linkedModules(t *testing.T) map[string]string {
	c := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}}{{end}}{{end}}", "./cmd")
	c.Dir = repoRoot
	c.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
	out, err := c.Output()
	if err != nil {
		t.Fatal(err)
	}
	mods := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if p, v, ok := strings.Cut(strings.TrimSpace(l), " "); ok {
			mods[p] = v
		}
	}
	return mods
}

func (r *release) checkChart(t *testing.T) {
	chart := r.registry + "/charts/tokenmint"
	if want := "oci://" + chart + " --version " + testVersion; r.notes["chart"].Reference != want {
		t.Errorf("the notes name the chart %q, want %q", r.notes["chart"].Reference, want)
	}
	ref, err := name.ParseReference(chart + ":" + testVersion)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != r.notes["chart"].Digest {
		t.Errorf("the chart is %s, the notes say %s", desc.Digest, r.notes["chart"].Digest)
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != helmConfigType {
		t.Errorf("the chart's config is %s, not helm's %s", m.Config.MediaType, helmConfigType)
	}

	dir := t.TempDir()
	r.run(t, dir, r.helm, "pull", "oci://"+chart, "--version", testVersion, "--plain-http", "--untar")
	var meta struct{ Version, AppVersion, KubeVersion string }
	readYAML(t, filepath.Join(dir, "tokenmint", "Chart.yaml"), &meta)
	if meta.Version != testVersion || meta.AppVersion != testVersion {
		t.Errorf("the chart is version %q, appVersion %q", meta.Version, meta.AppVersion)
	}
	if meta.KubeVersion == "" {
		t.Error("the chart states no kubeVersion")
	}
	manifests := r.run(t, dir, r.helm, "template", "tokenmint", "./tokenmint", "--namespace", "tokenmint-system", "--kube-version", "v1.34.0")
	want := "image: " + r.registry + "/tokenmint@" + r.notes["image"].Digest
	if !strings.Contains(manifests, want) {
		t.Errorf("the chart does not run %q", want)
	}
}

func (r *release) checkPlugin(t *testing.T) {
	var m struct {
		Spec struct {
			Version   string
			Platforms []struct {
				Selector struct{ MatchLabels map[string]string } `json:"selector"`
				URI      string                                  `json:"uri"`
				SHA256   string                                  `json:"sha256"`
				Bin      string                                  `json:"bin"`
			}
		}
	}
	readYAML(t, filepath.Join(r.out, "tokenmint.yaml"), &m)
	if m.Spec.Version != "v"+testVersion {
		t.Errorf("the krew manifest is version %q", m.Spec.Version)
	}
	seen := map[string]bool{}
	for _, p := range m.Spec.Platforms {
		platform := p.Selector.MatchLabels["os"] + "/" + p.Selector.MatchLabels["arch"]
		seen[platform] = true
		archive := filepath.Join(r.out, path.Base(p.URI))
		data, err := os.ReadFile(archive)
		if err != nil {
			t.Errorf("%s: %v", platform, err)
			continue
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != p.SHA256 {
			t.Errorf("%s: the manifest says sha256 %s, the archive is %x", platform, p.SHA256, sum)
		}
		if !strings.HasPrefix(p.URI, "https://github.com/tokenmint/tokenmint/releases/download/v"+testVersion+"/") {
			t.Errorf("%s: uri %s", platform, p.URI)
		}
		// What krew does: unpack the archive and run the manifest's bin.
		if platform == "linux/"+runtime.GOARCH {
			bin := filepath.Join(t.TempDir(), "kubectl-tokenmint")
			if err := os.WriteFile(bin, untar(t, data, p.Bin), 0o755); err != nil {
				t.Fatal(err)
			}
			if out := r.run(t, filepath.Dir(bin), bin, "version"); !strings.Contains(out, testVersion) {
				t.Errorf("the installed plugin says %q, not its version", out)
			}
		}
	}
	for _, os := range []string{"linux", "darwin", "windows"} {
		for _, arch := range []string{"amd64", "arm64"} {
			if !seen[os+"/"+arch] {
				t.Errorf("the krew manifest has no %s/%s", os, arch)
			}
		}
	}
}

func untar(t *testing.T, archive []byte, file string) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s is not in the archive: %v", file, err)
		}
		if h.Name == file {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
}

func (r *release) checkFiles(t *testing.T) {
	sums := filepath.Join(r.out, "SHA256SUMS")
	r.mustCosign(t, "verify-blob", "--bundle", sums+".bundle", sums)
	data, err := os.ReadFile(sums)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		sum, file, ok := strings.Cut(l, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", l)
		}
		content, err := os.ReadFile(filepath.Join(r.out, file))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(content)
		if hex.EncodeToString(h[:]) != sum {
			t.Errorf("%s: SHA256SUMS says %s, the file is %x", file, sum, h)
		}
		if r.notes[file].Digest != "sha256:"+sum {
			t.Errorf("%s: the notes say %q, SHA256SUMS %s", file, r.notes[file].Digest, sum)
		}
		n++
	}
	// 6 plugin archives, the krew manifest, the chart, the SBOM.
	if n != 9 {
		t.Errorf("SHA256SUMS names %d files, want 9", n)
	}
}

// tamperImage pushes, under the release's tag, the image with a file added.
func (r *release) tamperImage(t *testing.T) {
	tag, err := name.NewTag(r.registry + "/tokenmint:" + testVersion)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(tag)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var images []v1.Image
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		var layer bytes.Buffer
		tw := tar.NewWriter(&layer)
		content := []byte("#!/bin/sh\n")
		if err := tw.WriteHeader(&tar.Header{Name: "bin/extra", Mode: 0o755, Size: int64(len(content))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(content); err != nil {
			t.Fatal(err)
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		img, err = mutate.AppendLayers(img, static.NewLayer(layer.Bytes(), types.OCIUncompressedLayer))
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, img)
	}
	tampered, err := managerimage.Index(images...)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, tampered); err != nil {
		t.Fatal(err)
	}
	digest, err := tampered.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if digest.String() == r.notes["image"].Digest {
		t.Fatal("the modified image has the release's digest")
	}
	r.failCosign(t, "no signatures found", "verify", tag.Name())
	r.failCosign(t, "", "verify-attestation", "--type", "spdxjson", tag.Name())
}

// tamperChart pushes, under the release's version, the chart running another image.
func (r *release) tamperChart(t *testing.T) {
	chart := r.registry + "/charts/tokenmint"
	dir := t.TempDir()
	r.run(t, dir, r.helm, "pull", "oci://"+chart, "--version", testVersion, "--plain-http", "--untar")
	values := filepath.Join(dir, "tokenmint", "values.yaml")
	data, err := os.ReadFile(values)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(data), r.notes["image"].Digest, "sha256:"+strings.Repeat("0", 64), 1)
	if changed == string(data) {
		t.Fatal("the chart's values do not pin the image's digest")
	}
	if err := os.WriteFile(values, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	r.run(t, dir, r.helm, "package", "./tokenmint", "--destination", dir)
	r.run(t, dir, r.helm, "push", filepath.Join(dir, "tokenmint-"+testVersion+".tgz"), "oci://"+r.registry+"/charts", "--plain-http")
	ref, err := name.ParseReference(chart + ":" + testVersion)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() == r.notes["chart"].Digest {
		t.Fatal("the modified chart has the release's digest")
	}
	r.failCosign(t, "no signatures found", "verify", ref.Name())
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func containsString(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
