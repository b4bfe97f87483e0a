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

// Command image builds the manager's OCI image without a container engine
// (`make image`), writes it as an OCI layout and as a tarball of that layout for
// `ctr -n k8s.io images import`, and pushes it to a registry (`make image-push`).
// Run it from the repository's root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/tokenmint/tokenmint/hack/image/managerimage"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hack/image:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		img     = flag.String("img", "", "image reference, registry/repository:tag (required)")
		version = flag.String("version", "", "version stamped into the manager (main.version) and its image label; empty means -img's tag")
		arch    = flag.String("arch", "", "GOARCH of the manager and the image, empty for this machine's; "+
			"several, comma-separated (amd64,arm64), make an image index of one image each")
		caBundle = flag.String("ca-bundle", "auto", "PEM bundle copied to "+managerimage.CABundlePath+
			`; "auto" takes `+managerimage.DefaultCABundle+` when this machine has it, "" leaves it out`)
		layoutDir = flag.String("layout", "bin/image", "directory the OCI layout is written to (replaced)")
		archive   = flag.String("archive", "bin/image.tar", `tarball of the OCI layout, for ctr images import; "" writes none`)
		push      = flag.Bool("push", false, "push the image to -img's registry with the default keychain")
	)
	flag.Parse()
	if *img == "" {
		return errors.New("-img is required")
	}
	ref, err := name.ParseReference(*img)
	if err != nil {
		return fmt.Errorf("-img %q: %w", *img, err)
	}
	if _, err := os.Stat("cmd/main.go"); err != nil {
		return fmt.Errorf("run from the repository's root: %w", err)
	}
	if *version == "" {
		*version = "dev"
		if tag, ok := ref.(name.Tag); ok {
			*version = tag.TagStr()
		}
	}
	opts := managerimage.Options{Arch: *arch, Version: *version, CABundle: *caBundle}
	if opts.CABundle == "auto" {
		if opts.CABundle = managerimage.AvailableCABundle(); opts.CABundle == "" {
			fmt.Fprintf(os.Stderr, "warning: %s is missing (apt-get install ca-certificates): the image holds no CA bundle, "+
				"so the manager trusts only issuers' caBundle and what is mounted at %s\n",
				managerimage.DefaultCABundle, managerimage.CABundlePath)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	scratch, err := os.MkdirTemp("", "tokenmint-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	var archs []string
	for _, a := range strings.Split(*arch, ",") {
		if a = strings.TrimSpace(a); a != "" {
			archs = append(archs, a)
		}
	}

	var (
		digest v1.Hash
		images []v1.Image
		pushIt func() error
	)
	if len(archs) <= 1 {
		if len(archs) == 1 {
			opts.Arch = archs[0]
		}
		image, err := managerimage.Build(ctx, ".", scratch, opts, os.Stderr)
		if err != nil {
			return err
		}
		if err := managerimage.WriteLayout(*layoutDir, ref, image); err != nil {
			return fmt.Errorf("writing the OCI layout: %w", err)
		}
		if digest, err = image.Digest(); err != nil {
			return err
		}
		images = []v1.Image{image}
		pushIt = func() error { return managerimage.Push(ctx, ref, image) }
	} else {
		idx, err := managerimage.BuildIndex(ctx, ".", scratch, archs, opts, os.Stderr)
		if err != nil {
			return err
		}
		if err := managerimage.WriteIndexLayout(*layoutDir, ref, idx); err != nil {
			return fmt.Errorf("writing the OCI layout: %w", err)
		}
		if digest, err = idx.Digest(); err != nil {
			return err
		}
		if images, err = imagesOf(idx); err != nil {
			return err
		}
		pushIt = func() error { return managerimage.PushIndex(ctx, ref, idx) }
	}
	if *archive != "" {
		if err := managerimage.WriteArchiveFile(*archive, *layoutDir); err != nil {
			return fmt.Errorf("writing the archive: %w", err)
		}
	}
	if err := describe(os.Stdout, ref, digest, images, opts, *layoutDir, *archive); err != nil {
		return err
	}
	if *push {
		if err := pushIt(); err != nil {
			return err
		}
		fmt.Printf("pushed %s@%s\n", ref.Context().Name(), digest)
	}
	return nil
}

func imagesOf(idx v1.ImageIndex) ([]v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var images []v1.Image
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		images = append(images, img)
	}
	return images, nil
}

func describe(w io.Writer, ref name.Reference, digest v1.Hash, images []v1.Image, opts managerimage.Options, layoutDir, archive string) error {
	fmt.Fprintf(w, "image   %s\ndigest  %s\n", ref.Name(), digest)
	for _, img := range images {
		cfg, err := img.ConfigFile()
		if err != nil {
			return err
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		var compressed int64
		for _, l := range layers {
			size, err := l.Size()
			if err != nil {
				return err
			}
			compressed += size
		}
		fmt.Fprintf(w, "        %s/%s %s, %d layer, %.1f MiB compressed\n",
			cfg.OS, cfg.Architecture, d, len(layers), float64(compressed)/(1<<20))
	}
	ca := "none"
	if opts.CABundle != "" {
		ca = opts.CABundle
	}
	fmt.Fprintf(w, "CA      %s\nlayout  %s\n", ca, layoutDir)
	if archive != "" {
		fmt.Fprintf(w, "archive %s (ctr -n k8s.io images import %s)\n", archive, archive)
	}
	return nil
}
