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

package node

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteLayoutIsAValidOCILayout(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "manager")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	img := Image{
		Name:       "tokenmint.local/tokenmint:test",
		Files:      []File{{Path: "/manager", Mode: 0o755, Source: bin}},
		Entrypoint: []string{"/manager"},
	}
	if err := img.WriteLayout(&archive, dir); err != nil {
		t.Fatal(err)
	}
	files := untar(t, archive.Bytes())

	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	mustUnmarshal(t, files["index.json"], &index)
	if len(index.Manifests) != 1 || index.Manifests[0].Annotations["io.containerd.image.name"] != "tokenmint.local/tokenmint:test" {
		t.Fatalf("index.json names no image: %s", files["index.json"])
	}
	var manifest struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	mustUnmarshal(t, blob(t, files, index.Manifests[0]), &manifest)
	var config struct {
		Config struct{ Entrypoint []string }
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	mustUnmarshal(t, blob(t, files, manifest.Config), &config)
	if len(manifest.Layers) != 1 || config.RootFS.DiffIDs[0] != manifest.Layers[0].Digest {
		t.Fatalf("the layer's diff id is not its digest: %+v %+v", manifest.Layers, config.RootFS)
	}
	if strings.Join(config.Config.Entrypoint, " ") != "/manager" {
		t.Fatalf("entrypoint %v", config.Config.Entrypoint)
	}
	layer := untar(t, blob(t, files, manifest.Layers[0]))
	if string(layer["manager"]) != "#!/bin/true\n" {
		t.Fatalf("the layer holds %v", layer)
	}
}

func TestWriteLayoutIsReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	if err := os.WriteFile(bin, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	img := Image{Name: "tokenmint.local/app:1", Files: []File{{Path: "/app", Mode: 0o755, Source: bin}}, Cmd: []string{"/app"}}
	if err := img.WriteLayout(&a, dir); err != nil {
		t.Fatal(err)
	}
	if err := img.WriteLayout(&b, dir); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the same files made different archives")
	}
}

func TestWithParentsPutsDirectoriesFirst(t *testing.T) {
	got := withParents([]File{
		{Path: "/bin/sh", Mode: os.ModeSymlink, Link: "busybox"},
		{Path: "/bin/busybox", Mode: 0o755},
		{Path: "/usr/local/bin/tool", Mode: 0o755},
	})
	var paths []string
	for _, f := range got {
		paths = append(paths, f.Path)
	}
	want := "/bin /bin/busybox /bin/sh /usr /usr/local /usr/local/bin /usr/local/bin/tool"
	if strings.Join(paths, " ") != want {
		t.Fatalf("got %v, want %s", paths, want)
	}
}

func TestReadCRILogJoinsPartialLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	log := "2026-11-22T04:20:36.391505418Z stdout F token sha256:aa\n" +
		"2026-11-22T04:20:37.000000001Z stdout P a long \n" +
		"2026-11-22T04:20:37.000000002Z stdout F line\n" +
		"2026-11-22T04:20:38.5Z stderr F oops\n" +
		"2026-11-22T04:20:39" // still being written
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	lines, err := readCRILog(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 || lines[0].Text != "token sha256:aa" || lines[1].Text != "a long line" || lines[2].Stream != "stderr" {
		t.Fatalf("got %+v", lines)
	}
	if want := time.Date(2026, 11, 22, 4, 20, 36, 391505418, time.UTC); !lines[0].Time.Equal(want) {
		t.Fatalf("time %v, want %v", lines[0].Time, want)
	}
}

func TestUnescapeMountPath(t *testing.T) {
	if got := unescapeMountPath(`/tmp/a\040b/c\134d`); got != `/tmp/a b/c\d` {
		t.Fatalf("got %q", got)
	}
}

func TestContainerdKeepsEveryPathUnderItsDirectory(t *testing.T) {
	n := &Node{}
	n.Dir = "/tmp/tokenmint-node-test"
	n.Socket = n.path("containerd.sock")
	for _, line := range strings.Split(n.containerdConfig(), "\n") {
		_, value, ok := strings.Cut(line, " = \"/")
		if ok && !strings.HasPrefix("/"+value, n.Dir+"/") {
			t.Errorf("a path outside the node's directory: %s", line)
		}
	}
}

func untar(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	r := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := r.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = content
	}
}

// blob returns the blob d points to, checking its digest and size.
func blob(t *testing.T, files map[string][]byte, d descriptor) []byte {
	t.Helper()
	data, ok := files[blobPath(d.Digest)]
	if !ok {
		t.Fatalf("no blob %s", d.Digest)
	}
	sum := sha256.Sum256(data)
	if "sha256:"+hex.EncodeToString(sum[:]) != d.Digest || int64(len(data)) != d.Size {
		t.Fatalf("blob %s does not match its descriptor", d.Digest)
	}
	return data
}

func mustUnmarshal(t *testing.T, data []byte, into any) {
	t.Helper()
	if err := json.Unmarshal(data, into); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
}
