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
		img      = flag.String("img", "", "image reference, registry/repository:tag (required)")
		version  = flag.String("version", "", "version stamped into the manager (main.version) and its image label; empty means -img's tag")
		arch     = flag.String("arch", "", "GOARCH of the manager and the image; empty means this machine's")
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
	image, err := managerimage.Build(ctx, ".", scratch, opts, os.Stderr)
	if err != nil {
		return err
	}
	if err := managerimage.WriteLayout(*layoutDir, ref, image); err != nil {
		return fmt.Errorf("writing the OCI layout: %w", err)
	}
	if *archive != "" {
		if err := managerimage.WriteArchiveFile(*archive, *layoutDir); err != nil {
			return fmt.Errorf("writing the archive: %w", err)
		}
	}
	if err := describe(os.Stdout, ref, image, opts, *layoutDir, *archive); err != nil {
		return err
	}
	if *push {
		if err := managerimage.Push(ctx, ref, image); err != nil {
			return err
		}
		digest, _ := image.Digest()
		fmt.Printf("pushed %s@%s\n", ref.Context().Name(), digest)
	}
	return nil
}

func describe(w io.Writer, ref name.Reference, image v1.Image, opts managerimage.Options, layoutDir, archive string) error {
	digest, err := image.Digest()
	if err != nil {
		return err
	}
	layers, err := image.Layers()
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
	ca := "none"
	if opts.CABundle != "" {
		ca = opts.CABundle
	}
	fmt.Fprintf(w, "image   %s\ndigest  %s\nlayers  %d, %.1f MiB compressed\nCA      %s\nlayout  %s\n",
		ref.Name(), digest, len(layers), float64(compressed)/(1<<20), ca, layoutDir)
	if archive != "" {
		fmt.Fprintf(w, "archive %s (ctr -n k8s.io images import %s)\n", archive, archive)
	}
	return nil
}
