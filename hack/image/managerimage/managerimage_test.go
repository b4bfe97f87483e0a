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

package managerimage

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const repoRoot = "../../.."

// fakeInputs writes a stand-in manager binary and CA bundle and returns their paths.
func fakeInputs(t *testing.T) (binary, ca string) {
	t.Helper()
	dir := t.TempDir()
	binary, ca = filepath.Join(dir, "manager"), filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(binary, []byte("\x7fELF not really"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return binary, ca
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSameFilesSameDigest builds the image of the same files twice, their
// modification times changed in between, and writes each as a layout and an
// archive: the digests and the archives are the same.
func TestSameFilesSameDigest(t *testing.T) {
	binary, ca := fakeInputs(t)
	opts := Options{Arch: "amd64", Version: "1.2.3", CABundle: ca}
	ref := name.MustParseReference("registry.example/tokenmint:1.2.3")
	build := func() (v1.Hash, []byte) {
		img, err := FromBinary(binary, opts)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "layout")
		if err := WriteLayout(dir, ref, img); err != nil {
			t.Fatal(err)
		}
		var archive bytes.Buffer
		if err := WriteArchive(&archive, dir); err != nil {
			t.Fatal(err)
		}
		return digest(t, img), archive.Bytes()
	}
	first, firstArchive := build()
	later := time.Date(2031, 5, 4, 3, 2, 1, 0, time.UTC)
	for _, f := range []string{binary, ca} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	second, secondArchive := build()
	if first != second {
		t.Errorf("the same files gave %s, then %s", first, second)
	}
	if !bytes.Equal(firstArchive, secondArchive) {
		t.Error("the same image gave two different archives")
	}

	// And a different binary gives a different image.
	if err := os.WriteFile(binary, []byte("\x7fELF another"), 0o755); err != nil {
		t.Fatal(err)
	}
	if third, _ := build(); third == first {
		t.Errorf("another binary gave the same digest %s", third)
	}
}

// TestImageContents checks the image's configuration and the files of its layer.
func TestImageContents(t *testing.T) {
	binary, ca := fakeInputs(t)
	img, err := FromBinary(binary, Options{Arch: "arm64", Version: "1.2.3", CABundle: ca})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != "arm64" || cfg.OS != "linux" {
		t.Errorf("platform %s/%s, want linux/arm64", cfg.OS, cfg.Architecture)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cfg.Config.User)
	}
	if strings.Join(cfg.Config.Entrypoint, " ") != "/manager" {
		t.Errorf("entrypoint %v, want [/manager]", cfg.Config.Entrypoint)
	}
	if !cfg.Created.Time.Equal(Epoch) {
		t.Errorf("created %s, want %s", cfg.Created.Time, Epoch)
	}
	if cfg.Config.Labels["org.opencontainers.image.version"] != "1.2.3" {
		t.Errorf("labels %v", cfg.Config.Labels)
	}

	files := layerFiles(t, img)
	want := map[string]int64{
		"etc/": 0o755, "etc/group": 0o644, "etc/passwd": 0o644, "etc/ssl/": 0o755, "etc/ssl/certs/": 0o755,
		"etc/ssl/certs/ca-certificates.crt": 0o644, "home/": 0o755, "home/nonroot/": 0o700,
		"manager": 0o755, "tmp/": 0o1777,
	}
	for name, hdr := range files {
		mode, ok := want[name]
		if !ok {
			t.Errorf("unexpected entry %s", name)
			continue
		}
		if hdr.Mode != mode {
			t.Errorf("%s: mode %o, want %o", name, hdr.Mode, mode)
		}
		if !hdr.ModTime.Equal(Epoch) {
			t.Errorf("%s: dated %s, want %s", name, hdr.ModTime, Epoch)
		}
		owner := 0
		if name == "home/nonroot/" {
			owner = UID
		}
		if hdr.Uid != owner || hdr.Gid != owner {
			t.Errorf("%s: owned by %d:%d, want %d:%d", name, hdr.Uid, hdr.Gid, owner, owner)
		}
	}
	for name := range want {
		if _, ok := files[name]; !ok {
			t.Errorf("missing %s", name)
		}
	}
	if got := contents(t, img)["manager"]; got != "\x7fELF not really" {
		t.Errorf("/manager holds %q", got)
	}
	if got := contents(t, img)["etc/passwd"]; !strings.Contains(got, "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd names no nonroot user 65532:\n%s", got)
	}

	// Without a CA bundle, the image holds none.
	img, err = FromBinary(binary, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := layerFiles(t, img)["etc/ssl/certs/ca-certificates.crt"]; ok {
		t.Error("an image built without a CA bundle holds one")
	}
}

// TestLayoutNamesTheImage checks that the layout's index names the image for
// containerd and that the layout and its archive read back as the same image.
func TestLayoutNamesTheImage(t *testing.T) {
	binary, ca := fakeInputs(t)
	img, err := FromBinary(binary, Options{CABundle: ca})
	if err != nil {
		t.Fatal(err)
	}
	ref := name.MustParseReference("ghcr.io/tokenmint/tokenmint:0.1.0")
	dir := filepath.Join(t.TempDir(), "layout")
	// Write twice: the second replaces the first rather than adding to it.
	for range 2 {
		if err := WriteLayout(dir, ref, img); err != nil {
			t.Fatal(err)
		}
	}
	var index v1.IndexManifest
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "index.json")), &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want 1", len(index.Manifests))
	}
	m := index.Manifests[0]
	if m.Annotations[ImageNameAnnotation] != "ghcr.io/tokenmint/tokenmint:0.1.0" || m.Annotations[refNameAnnotation] != "0.1.0" {
		t.Errorf("annotations %v", m.Annotations)
	}
	if m.Digest != digest(t, img) {
		t.Errorf("index.json lists %s, want %s", m.Digest, digest(t, img))
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	back, err := p.Image(m.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if got := contents(t, back)["manager"]; got != "\x7fELF not really" {
		t.Errorf("the layout's image holds /manager %q", got)
	}

	var archive bytes.Buffer
	if err := WriteArchive(&archive, dir); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&archive)
	entries := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		entries[hdr.Name] = data
	}
	if !bytes.Equal(entries["index.json"], readFile(t, filepath.Join(dir, "index.json"))) {
		t.Error("the archive's index.json differs from the layout's")
	}
	if _, ok := entries["oci-layout"]; !ok {
		t.Error("the archive has no oci-layout")
	}
	if _, ok := entries["blobs/sha256/"+m.Digest.Hex]; !ok {
		t.Error("the archive lacks the manifest")
	}
}

// TestPushUsesTheDefaultKeychain pushes to a registry on 127.0.0.1 that wants
// the credentials of a docker config file, and pulls the image back.
func TestPushUsesTheDefaultKeychain(t *testing.T) {
	binary, ca := fakeInputs(t)
	img, err := FromBinary(binary, Options{CABundle: ca})
	if err != nil {
		t.Fatal(err)
	}
	const user, password = "pusher", "s3cret"
	regHandler := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		regHandler.ServeHTTP(w, r)
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	host := l.Addr().String()
	ref, err := name.ParseReference(host + "/tokenmint/tokenmint:test")
	if err != nil {
		t.Fatal(err)
	}

	// No credentials: refused.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	if err := Push(context.Background(), ref, img); err == nil {
		t.Fatal("a push without credentials succeeded")
	}

	config := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	docker := `{"auths": {"` + host + `": {"auth": "` + auth + `"}}}`
	if err := os.WriteFile(filepath.Join(config, "config.json"), []byte(docker), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", config)
	if err := Push(context.Background(), ref, img); err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: user, Password: password}))
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, pulled) != digest(t, img) {
		t.Errorf("pulled %s, pushed %s", digest(t, pulled), digest(t, img))
	}
}

// TestIndexListsEachArchitecture builds an index of an amd64 and an arm64
// image twice, writes it as a layout and pushes it to a registry on 127.0.0.1.
func TestIndexListsEachArchitecture(t *testing.T) {
	binary, ca := fakeInputs(t)
	index := func() v1.ImageIndex {
		var images []v1.Image
		for _, arch := range []string{"amd64", "arm64"} {
			img, err := FromBinary(binary, Options{Arch: arch, CABundle: ca})
			if err != nil {
				t.Fatal(err)
			}
			images = append(images, img)
		}
		idx, err := Index(images...)
		if err != nil {
			t.Fatal(err)
		}
		return idx
	}
	idx := index()
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != "application/vnd.oci.image.index.v1+json" || len(m.Manifests) != 2 {
		t.Fatalf("index %s with %d manifests, want an OCI index of 2", m.MediaType, len(m.Manifests))
	}
	for i, arch := range []string{"amd64", "arm64"} {
		d := m.Manifests[i]
		if d.Platform == nil || d.Platform.OS != "linux" || d.Platform.Architecture != arch {
			t.Errorf("manifest %d: platform %+v, want linux/%s", i, d.Platform, arch)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if cfg, err := img.ConfigFile(); err != nil || cfg.Architecture != arch {
			t.Errorf("manifest %d: configuration for %v (%v), want %s", i, cfg.Architecture, err, arch)
		}
	}
	first, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if second, err := index().Digest(); err != nil || second != first {
		t.Errorf("the same files gave indexes %s, then %s (%v)", first, second, err)
	}

	ref := name.MustParseReference("ghcr.io/tokenmint/tokenmint:0.1.0")
	dir := filepath.Join(t.TempDir(), "layout")
	if err := WriteIndexLayout(dir, ref, idx); err != nil {
		t.Fatal(err)
	}
	var top v1.IndexManifest
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "index.json")), &top); err != nil {
		t.Fatal(err)
	}
	if len(top.Manifests) != 1 || top.Manifests[0].Digest != first ||
		top.Manifests[0].MediaType != "application/vnd.oci.image.index.v1+json" ||
		top.Manifests[0].Annotations[ImageNameAnnotation] != ref.Name() {
		t.Errorf("index.json: %+v", top.Manifests)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	pushed, err := name.ParseReference(l.Addr().String() + "/tokenmint/tokenmint:multi")
	if err != nil {
		t.Fatal(err)
	}
	if err := PushIndex(context.Background(), pushed, idx); err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Index(pushed)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := pulled.Digest(); err != nil || d != first {
		t.Errorf("pulled index %s (%v), pushed %s", d, err, first)
	}
}

// TestBuildIsStaticAndReproducible builds the real manager twice: the binary is
// static, and both builds give the same digest.
func TestBuildIsStaticAndReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the manager")
	}
	var digests []v1.Hash
	for range 2 {
		scratch := t.TempDir()
		img, err := Build(context.Background(), repoRoot, scratch, Options{Version: "test", CABundle: ""}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, digest(t, img))
		f, err := elf.Open(filepath.Join(scratch, "manager"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the manager is dynamically linked")
			}
		}
		if _, err := f.DynamicSymbols(); err == nil {
			t.Error("the manager has dynamic symbols")
		}
		f.Close()
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds gave %s and %s", digests[0], digests[1])
	}
}

func layerFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	files := map[string]*tar.Header{}
	walkLayer(t, img, func(hdr *tar.Header, _ []byte) { files[hdr.Name] = hdr })
	return files
}

func contents(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	files := map[string]string{}
	walkLayer(t, img, func(hdr *tar.Header, data []byte) { files[hdr.Name] = string(data) })
	return files
}

func walkLayer(t *testing.T, img v1.Image, fn func(*tar.Header, []byte)) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		fn(hdr, data)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
