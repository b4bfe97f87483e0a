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

// Package managerimage builds the manager's OCI image without a container
// engine, as ko does: a static binary, an /etc/passwd naming the non-root user
// 65532, and the build machine's CA bundle, in one layer with fixed timestamps
// and owners, so that the same sources give the same digest. It writes the
// image, or an index of one image per architecture, as an OCI layout, as a
// tarball of that layout (which `ctr -n k8s.io images import` loads), and
// pushes it to a registry.
package managerimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// BinaryPath is where the manager lives in the image: the chart runs
	// command ["/manager"].
	BinaryPath = "/manager"
	// UID and GID of the user the image runs as, the "nonroot" user of
	// distroless images.
	UID = 65532
	GID = 65532
	// CABundlePath is where Go's crypto/x509 looks first for the system roots
	// on Linux, and where the build machine's bundle is copied.
	CABundlePath = "/etc/ssl/certs/ca-certificates.crt"
	// DefaultCABundle is the bundle copied into the image when the build
	// machine has one (Debian's ca-certificates package writes it).
	DefaultCABundle = "/etc/ssl/certs/ca-certificates.crt"

	// ImageNameAnnotation is the annotation of the layout's index entry that
	// `ctr images import` names the image after.
	ImageNameAnnotation = "io.containerd.image.name"
	refNameAnnotation   = "org.opencontainers.image.ref.name"
	sourceURL           = "https://github.com/tokenmint/tokenmint"
)

// Epoch is the time of every file in the layer and of the image's creation:
// fixed, so that two builds of the same sources give the same digest.
var Epoch = time.Unix(0, 0).UTC()

// Options says what goes into the image beside the binary.
type Options struct {
	// Arch is the GOARCH of the binary and the image's architecture;
	// empty means this machine's.
	Arch string
	// Version is stamped into the binary (main.version) and labels the image.
	Version string
	// CABundle is a PEM file copied to /etc/ssl/certs/ca-certificates.crt;
	// empty means none, and the manager then trusts only the caBundle of each
	// issuer and whatever is mounted over that path.
	CABundle string
}

// AvailableCABundle returns DefaultCABundle when this machine has it, else "".
func AvailableCABundle() string {
	if _, err := os.Stat(DefaultCABundle); err != nil {
		return ""
	}
	return DefaultCABundle
}

func (o Options) arch() string {
	if o.Arch == "" {
		return runtime.GOARCH
	}
	return o.Arch
}

// BuildBinary compiles the manager (./cmd of the module at repoRoot) as a static
// binary with the flags of `make build`: CGO off, paths trimmed, symbols
// stripped, the version stamped; and no VCS stamp.
func BuildBinary(ctx context.Context, repoRoot, out string, opts Options, log io.Writer) error {
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	// No VCS stamp: the digest depends on the sources, not on the checkout
	// (a clone, a worktree, a tarball of the same commit give the same image).
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version="+version, "-o", out, "./cmd")
	cmd.Dir = repoRoot
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+opts.arch())
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building the manager: %w", err)
	}
	return nil
}

// Build compiles the manager into scratch and returns its image.
func Build(ctx context.Context, repoRoot, scratch string, opts Options, log io.Writer) (v1.Image, error) {
	bin := filepath.Join(scratch, "manager")
	if err := BuildBinary(ctx, repoRoot, bin, opts, log); err != nil {
		return nil, err
	}
	return FromBinary(bin, opts)
}

// FromBinary returns the image of a manager binary already built.
func FromBinary(binary string, opts Options) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	files := []file{
		{path: BinaryPath, mode: 0o755, data: bin},
		{path: "/etc/passwd", mode: 0o644, data: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\n" +
				fmt.Sprintf("nonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, GID))},
		{path: "/etc/group", mode: 0o644, data: []byte(
			"root:x:0:\n" + fmt.Sprintf("nonroot:x:%d:\n", GID))},
		{path: "/home/nonroot", dir: true, mode: 0o700, uid: UID, gid: GID},
		{path: "/tmp", dir: true, mode: 0o1777},
	}
	if opts.CABundle != "" {
		ca, err := os.ReadFile(opts.CABundle)
		if err != nil {
			return nil, fmt.Errorf("CA bundle: %w", err)
		}
		files = append(files, file{path: CABundlePath, mode: 0o644, data: ca})
	}
	layerTar, err := tarLayer(files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestCompression),
		tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: "hack/image: the manager, /etc/passwd, CA bundle"},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture = opts.arch()
	cfg.OS = "linux"
	cfg.Created = v1.Time{Time: Epoch}
	labels := map[string]string{
		"org.opencontainers.image.title":  "tokenmint",
		"org.opencontainers.image.source": sourceURL,
	}
	if opts.Version != "" {
		labels["org.opencontainers.image.version"] = opts.Version
	}
	cfg.Config = v1.Config{
		Entrypoint: []string{BinaryPath},
		User:       fmt.Sprintf("%d:%d", UID, GID),
		WorkingDir: "/",
		Env:        []string{"PATH=/"},
		Labels:     labels,
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, labels).(v1.Image), nil
}

// file is one entry of the layer.
type file struct {
	path     string
	dir      bool
	mode     int64
	uid, gid int
	data     []byte
}

// tarLayer writes the files, and the directories above them, as a tarball in
// path order, every entry dated Epoch and owned by root unless it says otherwise.
func tarLayer(files []file) ([]byte, error) {
	entries := map[string]file{}
	for _, f := range files {
		for dir := path.Dir(f.path); dir != "/"; dir = path.Dir(dir) {
			if _, ok := entries[dir]; !ok {
				entries[dir] = file{path: dir, dir: true, mode: 0o755}
			}
		}
		entries[f.path] = f
	}
	paths := make([]string, 0, len(entries))
	for p := range entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		f := entries[p]
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(p, "/"),
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.gid,
			ModTime: Epoch,
			Format:  tar.FormatPAX,
		}
		if f.dir {
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// BuildIndex builds the manager for each architecture, in scratch/<arch>, and
// returns the image index of those images.
func BuildIndex(ctx context.Context, repoRoot, scratch string, archs []string, opts Options, log io.Writer) (v1.ImageIndex, error) {
	var images []v1.Image
	for _, arch := range archs {
		dir := filepath.Join(scratch, arch)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		o := opts
		o.Arch = arch
		img, err := Build(ctx, repoRoot, dir, o, log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", arch, err)
		}
		images = append(images, img)
	}
	return Index(images...)
}

// Index returns the OCI image index of images, each listed with its platform.
func Index(images ...v1.Image) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, img := range images {
		platform, err := platformOf(img)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: platform}})
	}
	return idx, nil
}

func platformOf(img v1.Image) (*v1.Platform, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	return &v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture}, nil
}

// WriteLayout writes img as the only image of a new OCI layout in dir
// (replacing what dir held), its index entry annotated with ref so that
// containerd imports it under that name.
func WriteLayout(dir string, ref name.Reference, img v1.Image) error {
	p, err := newLayout(dir)
	if err != nil {
		return err
	}
	platform, err := platformOf(img)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(nameAnnotations(ref)), layout.WithPlatform(*platform))
}

// WriteIndexLayout is WriteLayout for an image index.
func WriteIndexLayout(dir string, ref name.Reference, idx v1.ImageIndex) error {
	p, err := newLayout(dir)
	if err != nil {
		return err
	}
	return p.AppendIndex(idx, layout.WithAnnotations(nameAnnotations(ref)))
}

func newLayout(dir string) (layout.Path, error) {
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return layout.Write(dir, empty.Index)
}

func nameAnnotations(ref name.Reference) map[string]string {
	annotations := map[string]string{ImageNameAnnotation: ref.Name()}
	if tag, ok := ref.(name.Tag); ok {
		annotations[refNameAnnotation] = tag.TagStr()
	}
	return annotations
}

// WriteArchive writes the OCI layout in dir as a tarball, entries sorted and
// dated Epoch, which `ctr images import` reads.
func WriteArchive(w io.Writer, dir string) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	for _, p := range paths {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, ModTime: Epoch, Format: tar.FormatPAX}
		if fi.IsDir() {
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if err := copyFile(tw, p); err != nil {
			return err
		}
	}
	return tw.Close()
}

func copyFile(w io.Writer, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// WriteArchiveFile writes the layout in dir as a tarball at file.
func WriteArchiveFile(file, dir string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := WriteArchive(f, dir); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Push writes img to the registry of ref with the default keychain (the
// credentials of `docker login`, or those in $DOCKER_CONFIG), as ko and crane do.
func Push(ctx context.Context, ref name.Reference, img v1.Image, opts ...remote.Option) error {
	if err := remote.Write(ref, img, pushOptions(ctx, opts)...); err != nil {
		return fmt.Errorf("pushing %s: %w", ref.Name(), err)
	}
	return nil
}

// PushIndex is Push for an image index: its images, then the index.
func PushIndex(ctx context.Context, ref name.Reference, idx v1.ImageIndex, opts ...remote.Option) error {
	if err := remote.WriteIndex(ref, idx, pushOptions(ctx, opts)...); err != nil {
		return fmt.Errorf("pushing %s: %w", ref.Name(), err)
	}
	return nil
}

func pushOptions(ctx context.Context, opts []remote.Option) []remote.Option {
	return append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
}
