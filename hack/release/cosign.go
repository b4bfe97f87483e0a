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
	"context"
	"os/exec"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// cosign signs with the cosign binary: with a key (its password in
// COSIGN_PASSWORD), and then nothing goes to a transparency log; or keyless,
// with the CI's OIDC identity, recorded in Sigstore's public log.
type cosign struct {
	bin      string
	key      string
	insecure bool // the registry is on loopback, over plain HTTP
}

func (c *cosign) flags(registry bool) []string {
	args := []string{"--yes"}
	if c.key != "" {
		args = append(args, "--key", c.key, "--tlog-upload=false")
	}
	if registry && c.insecure {
		args = append(args, "--allow-insecure-registry", "--allow-http-registry")
	}
	return args
}

// sign signs the image or artifact ref (by digest).
func (c *cosign) sign(ctx context.Context, ref string) error {
	logf("signing %s", ref)
	args := append([]string{"sign"}, c.flags(true)...)
	return runCmd(exec.CommandContext(ctx, c.bin, append(args, ref)...))
}

// attest attaches the SPDX document in file to ref as a signed attestation.
func (c *cosign) attest(ctx context.Context, ref, file string) error {
	logf("attesting the SBOM of %s", ref)
	args := append([]string{"attest", "--type", "spdxjson", "--predicate", file}, c.flags(true)...)
	return runCmd(exec.CommandContext(ctx, c.bin, append(args, ref)...))
}

// signBlob signs file into file.bundle.
func (c *cosign) signBlob(ctx context.Context, file string) error {
	logf("signing %s", file)
	args := append([]string{"sign-blob", "--bundle", file + ".bundle"}, c.flags(false)...)
	return runCmd(exec.CommandContext(ctx, c.bin, append(args, file)...))
}

func pushAuth() []remote.Option {
	return []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain)}
}
