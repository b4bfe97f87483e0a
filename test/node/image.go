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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"
)

// File is one entry of an image's single layer.
type File struct {
	// Path inside the image, absolute ("/bin/busybox").
	Path string
	// Mode is the permission bits, with os.ModeDir for a directory or
	// os.ModeSymlink for a symbolic link.
	Mode os.FileMode
	// Link is the target of a symbolic link.
	Link string
	// Source is a file on this machine whose content the entry takes.
	Source string
}

// Image is a single-layer OCI image assembled from files on this machine,
// without a registry or a container engine.
type Image struct {
	// Name is the reference containerd stores it under
	// ("tokenmint.local/busybox:node"); pods name it with imagePullPolicy Never.
	Name       string
	Files      []File
	Entrypoint []string
	Cmd        []string
	User       string
}

// OCI media types of the layout written by WriteLayout.
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// WriteLayout writes img as a tar archive of an OCI image layout, as
// `ctr images import` reads it. scratch is a directory for the layer's
// temporary file.
func (img Image) WriteLayout(w io.Writer, scratch string) error {
	layer, err := os.CreateTemp(scratch, "layer-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(layer.Name())
	defer layer.Close()
	layerDesc, err := img.writeLayer(layer)
	if err != nil {
		return fmt.Errorf("image %s: %w", img.Name, err)
	}

	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config": map[string]any{
			"Entrypoint": img.Entrypoint,
			"Cmd":        img.Cmd,
			"User":       img.User,
			"Env":        []string{"PATH=/bin"},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDesc.Digest}},
	})
	if err != nil {
		return err
	}
	configDesc := blobDescriptor(mediaTypeConfig, config)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeManifest,
		"config":        configDesc,
		"layers":        []descriptor{layerDesc},
	})
	if err != nil {
		return err
	}
	manifestDesc := blobDescriptor(mediaTypeManifest, manifest)
	manifestDesc.Platform = &platform{Architecture: runtime.GOARCH, OS: "linux"}
	manifestDesc.Annotations = map[string]string{
		"io.containerd.image.name":          img.Name,
		"org.opencontainers.image.ref.name": img.Name[strings.LastIndex(img.Name, ":")+1:],
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeIndex,
		"manifests":     []descriptor{manifestDesc},
	})
	if err != nil {
		return err
	}

	out := tar.NewWriter(w)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{blobPath(configDesc.Digest), config},
		{blobPath(manifestDesc.Digest), manifest},
	} {
		if err := writeBytes(out, f.name, f.data); err != nil {
			return err
		}
	}
	if _, err := layer.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := out.WriteHeader(regular(blobPath(layerDesc.Digest), layerDesc.Size, 0o644)); err != nil {
		return err
	}
	if _, err := io.Copy(out, layer); err != nil {
		return err
	}
	return out.Close()
}

// writeLayer writes the layer tarball and returns its descriptor: an
// uncompressed layer, so its digest is also its diff id.
func (img Image) writeLayer(w io.Writer) (descriptor, error) {
	digest := sha256.New()
	counter := &countingWriter{w: io.MultiWriter(w, digest)}
	tw := tar.NewWriter(counter)
	for _, f := range withParents(img.Files) {
		if err := writeEntry(tw, f); err != nil {
			return descriptor{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return descriptor{}, err
	}
	return descriptor{MediaType: mediaTypeLayer, Digest: digestOf(digest), Size: counter.n}, nil
}

// withParents adds the missing parent directories and sorts the entries so
// that every directory comes before what it holds.
func withParents(files []File) []File {
	seen := map[string]bool{}
	var all []File
	for _, f := range files {
		for dir := path.Dir(f.Path); dir != "/" && !seen[dir]; dir = path.Dir(dir) {
			seen[dir] = true
			all = append(all, File{Path: dir, Mode: os.ModeDir | 0o755})
		}
	}
	for _, f := range files {
		if !(f.Mode.IsDir() && seen[f.Path]) {
			all = append(all, f)
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Path < all[j].Path })
	return all
}

// epoch is every entry's modification time, so the same files make the same layer.
var epoch = time.Unix(0, 0)

func writeEntry(tw *tar.Writer, f File) error {
	name := strings.TrimPrefix(f.Path, "/")
	perm := int64(f.Mode.Perm())
	switch {
	case f.Mode.IsDir():
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: perm, ModTime: epoch})
	case f.Mode&os.ModeSymlink != 0:
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: f.Link, Mode: 0o777, ModTime: epoch})
	}
	src, err := os.Open(f.Source)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(regular(name, fi.Size(), perm)); err != nil {
		return err
	}
	_, err = io.Copy(tw, src)
	return err
}

func regular(name string, size, mode int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: mode, ModTime: epoch}
}

func writeBytes(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(regular(name, int64(len(data)), 0o644)); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func blobDescriptor(mediaType string, data []byte) descriptor {
	sum := sha256.Sum256(data)
	return descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))}
}

func blobPath(digest string) string { return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:") }

func digestOf(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
