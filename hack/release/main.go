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

// Command release publishes a tokenmint release (`make release`) to an OCI
// registry from the repository's root:
//
//   - the manager's multi-arch image (linux/amd64, linux/arm64: the reproducible
//     build of `make image`), as an image index <registry>/tokenmint:<version>;
//   - an SPDX 2.3 SBOM of that image naming the Go modules linked into the
//     manager, attached as a signed cosign attestation (type spdxjson) and as
//     an OCI referrer of the index;
//   - the Helm chart, version and appVersion <version>, its image pinned by
//     digest, pushed by helm as <registry>/charts/tokenmint:<version>;
//   - cosign signatures of the image and the chart, with a key (-key) or
//     keyless (Sigstore's OIDC flow, as in CI);
//   - the kubectl plugin's archives (hack/plugin/release.sh) and the krew
//     manifest filled with their sha256, with a signed SHA256SUMS of every file;
//   - release notes naming each artifact with its digest.
//
// The files go to -out (default bin/release). -platforms and
// -plugin-platforms narrow the builds (tests on one machine release
// linux/<its arch> and no plugin), -manager-dir publishes manager binaries
// built earlier, and -source releases another checkout of the repository (an
// earlier commit, say) with this command.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tokenmint/tokenmint/hack/image/managerimage"
)

// Platforms of the manager's image.
const imagePlatforms = "linux/amd64,linux/arm64"

// Platforms of the kubectl plugin's archives.
const pluginPlatforms = "linux/amd64,linux/arm64,darwin/amd64,darwin/arm64,windows/amd64,windows/arm64"

var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$`)

type options struct {
	version         string
	registry        string
	out             string
	cosign          string
	helm            string
	key             string
	releaseURL      string
	created         string
	platforms       string // of the image, comma-separated linux/<arch>
	pluginPlatforms string // of the plugin's archives, comma-separated os/arch, or none
	managerDir      string // manager-linux-<arch> binaries built earlier
	source          string // the checkout to release
}

func main() {
	var o options
	flag.StringVar(&o.version, "version", "", "the release's semantic version, x.y.z (required)")
	flag.StringVar(&o.registry, "registry", "", "registry and path the image and chart go to, host[:port][/path] (required)")
	flag.StringVar(&o.out, "out", "bin/release", "directory of the release's files (replaced)")
	flag.StringVar(&o.cosign, "cosign", "cosign", "the cosign binary")
	flag.StringVar(&o.helm, "helm", "helm", "the helm binary")
	flag.StringVar(&o.key, "key", "", "cosign private key to sign with (its password in COSIGN_PASSWORD); empty signs keyless")
	flag.StringVar(&o.releaseURL, "release-url", "", "where the plugin's archives are published, for the krew manifest; "+
		"empty means https://github.com/tokenmint/tokenmint/releases/download/v<version>")
	flag.StringVar(&o.created, "created", "", "creation time of the SBOM (RFC 3339); empty means the commit time of HEAD")
	flag.StringVar(&o.platforms, "platforms", imagePlatforms, "platforms of the manager's image, comma-separated linux/<arch>")
	flag.StringVar(&o.pluginPlatforms, "plugin-platforms", pluginPlatforms, "platforms of the kubectl plugin's archives, comma-separated os/arch; none builds no plugin")
	flag.StringVar(&o.managerDir, "manager-dir", "", "directory of manager binaries built earlier, manager-linux-<arch>, "+
		"published instead of building them (they must be of the released sources and version); empty builds them")
	flag.StringVar(&o.source, "source", "", "checkout of the repository to release (its root); empty means the current directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "hack/release:", err)
		os.Exit(1)
	}
}

// artifact is one line of the release notes.
type artifact struct {
	Name      string `json:"name"`
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
}

func run(ctx context.Context, o options) error {
	if !semver.MatchString(o.version) {
		return fmt.Errorf("-version %q is not a semantic version x.y.z", o.version)
	}
	if o.registry == "" {
		return errors.New("-registry is required")
	}
	o.registry = strings.TrimSuffix(o.registry, "/")
	archs, err := linuxArchs(o.platforms)
	if err != nil {
		return err
	}
	if o.source != "" {
		// Paths given on the command line are of the current directory, and
		// so are the tools' unless they are looked up in $PATH.
		for _, p := range []*string{&o.out, &o.managerDir, &o.key, &o.cosign, &o.helm} {
			isTool := p == &o.cosign || p == &o.helm
			if *p == "" || (isTool && !strings.Contains(*p, "/")) {
				continue
			}
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
		}
		if err := os.Chdir(o.source); err != nil {
			return fmt.Errorf("-source: %w", err)
		}
	}
	if _, err := os.Stat("cmd/main.go"); err != nil {
		return fmt.Errorf("run from the repository's root: %w", err)
	}
	if o.releaseURL == "" {
		o.releaseURL = "https://github.com/tokenmint/tokenmint/releases/download/v" + o.version
	}
	if o.created == "" {
		out, err := exec.CommandContext(ctx, "git", "log", "-1", "--format=%cI").Output()
		if err != nil {
			return fmt.Errorf("the commit time of HEAD: %w", err)
		}
		o.created = strings.TrimSpace(string(out))
	}
	if err := os.RemoveAll(o.out); err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	scratch, err := os.MkdirTemp("", "tokenmint-release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	c := &cosign{bin: o.cosign, key: o.key, insecure: isLoopback(o.registry)}
	var arts []artifact

	// The image.
	imageRef, err := name.NewTag(o.registry + "/tokenmint:" + o.version)
	if err != nil {
		return fmt.Errorf("-registry %q: %w", o.registry, err)
	}
	var (
		images  []v1.Image
		binary0 string
	)
	for _, arch := range archs {
		opts := managerimage.Options{Arch: arch, Version: o.version, CABundle: managerimage.AvailableCABundle()}
		if opts.CABundle == "" {
			return fmt.Errorf("%s is missing (apt-get install ca-certificates): a release's image holds the CA bundle", managerimage.DefaultCABundle)
		}
		bin := filepath.Join(scratch, "manager-"+arch)
		if o.managerDir != "" {
			bin = filepath.Join(o.managerDir, "manager-linux-"+arch)
			logf("publishing the manager for linux/%s built earlier: %s", arch, bin)
		} else {
			logf("building the manager for linux/%s", arch)
			if err := managerimage.BuildBinary(ctx, ".", bin, opts, os.Stderr); err != nil {
				return fmt.Errorf("linux/%s: %w", arch, err)
			}
		}
		img, err := managerimage.FromBinary(bin, opts)
		if err != nil {
			return err
		}
		images = append(images, img)
		if binary0 == "" {
			binary0 = bin
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		arts = append(arts, artifact{Name: "image linux/" + arch, Reference: imageRef.Context().Name() + "@" + d.String(), Digest: d.String()})
	}
	idx, err := managerimage.Index(images...)
	if err != nil {
		return err
	}
	if err := managerimage.PushIndex(ctx, imageRef, idx); err != nil {
		return err
	}
	imageDigest, err := idx.Digest()
	if err != nil {
		return err
	}
	imageByDigest := imageRef.Context().Name() + "@" + imageDigest.String()
	logf("pushed %s", imageByDigest)
	arts = append([]artifact{{Name: "image", Reference: imageRef.Name(), Digest: imageDigest.String()}}, arts...)
	if err := c.sign(ctx, imageByDigest); err != nil {
		return err
	}

	// The SBOM: an attestation cosign verifies, and a referrer of the index.
	sbom, err := spdxOf(binary0, o.version, imageRef.Context().Name(), imageDigest.String(), o.created)
	if err != nil {
		return fmt.Errorf("the SBOM: %w", err)
	}
	sbomFile := filepath.Join(o.out, "tokenmint-"+o.version+".spdx.json")
	if err := os.WriteFile(sbomFile, sbom, 0o644); err != nil {
		return err
	}
	if err := c.attest(ctx, imageByDigest, sbomFile); err != nil {
		return err
	}
	sbomDigest, err := pushReferrer(ctx, imageRef.Context(), imageDigest, idx, sbom)
	if err != nil {
		return fmt.Errorf("the SBOM referrer: %w", err)
	}
	arts = append(arts, artifact{Name: "SBOM (SPDX 2.3, OCI referrer of the image)",
		Reference: imageRef.Context().Name() + "@" + sbomDigest.String(), Digest: sbomDigest.String()})

	// The chart.
	chartRepo := o.registry + "/charts"
	chartFile, err := packageChart(ctx, o, scratch, imageRef.Context(), imageDigest.String())
	if err != nil {
		return fmt.Errorf("the chart: %w", err)
	}
	push := exec.CommandContext(ctx, o.helm, "push", chartFile, "oci://"+chartRepo)
	if c.insecure {
		push.Args = append(push.Args, "--plain-http")
	}
	if err := runCmd(push); err != nil {
		return fmt.Errorf("helm push: %w", err)
	}
	chartRef := chartRepo + "/tokenmint:" + o.version
	chartDigest, err := digestOf(ctx, chartRef)
	if err != nil {
		return err
	}
	chartByDigest := chartRepo + "/tokenmint@" + chartDigest
	logf("pushed %s", chartByDigest)
	if err := c.sign(ctx, chartByDigest); err != nil {
		return err
	}
	arts = append(arts, artifact{Name: "chart", Reference: "oci://" + chartRepo + "/tokenmint --version " + o.version, Digest: chartDigest})

	// The kubectl plugin.
	if o.pluginPlatforms != "none" {
		logf("building the kubectl plugin's archives")
		// krew wants versions with a leading v, as the tag is.
		plugin := exec.CommandContext(ctx, "hack/plugin/release.sh", "v"+o.version, o.releaseURL)
		plugin.Env = append(os.Environ(), "OUT_DIR="+o.out, "PLATFORMS="+strings.ReplaceAll(o.pluginPlatforms, ",", " "),
			"HOMEPAGE=https://github.com/tokenmint/tokenmint")
		if err := runCmd(plugin); err != nil {
			return fmt.Errorf("the plugin's archives: %w", err)
		}
	}

	// Every file, summed and signed.
	sums, err := writeSums(o.out)
	if err != nil {
		return err
	}
	if err := c.signBlob(ctx, filepath.Join(o.out, "SHA256SUMS")); err != nil {
		return err
	}
	for _, f := range sums {
		arts = append(arts, artifact{Name: "file", Reference: f.name, Digest: "sha256:" + f.sum})
	}
	return writeNotes(o, arts)
}

// packageChart packages dist/chart with version and appVersion o.version and
// the image pinned to digest.
func packageChart(ctx context.Context, o options, scratch string, image name.Repository, digest string) (string, error) {
	dir := filepath.Join(scratch, "chart", "tokenmint")
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	if err := runCmd(exec.CommandContext(ctx, "cp", "-r", "dist/chart", dir)); err != nil {
		return "", err
	}
	valuesFile := filepath.Join(dir, "values.yaml")
	values, err := os.ReadFile(valuesFile)
	if err != nil {
		return "", err
	}
	pinned, err := pinImage(string(values), image.RegistryStr(), image.RepositoryStr(), digest)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(valuesFile, []byte(pinned), 0o644); err != nil {
		return "", err
	}
	pkg := exec.CommandContext(ctx, o.helm, "package", dir, "--version", o.version, "--app-version", o.version, "--destination", o.out)
	if err := runCmd(pkg); err != nil {
		return "", fmt.Errorf("helm package: %w", err)
	}
	return filepath.Join(o.out, "tokenmint-"+o.version+".tgz"), nil
}

// pinImage sets image.registry, image.repository and image.digest in the text
// of values.yaml, keeping its comments.
func pinImage(values, registry, repository, digest string) (string, error) {
	for _, r := range []struct{ key, value string }{
		{"registry", registry}, {"repository", repository}, {"digest", digest},
	} {
		re := regexp.MustCompile(`(?m)^(image:\n(?:(?:  .*|\s*)\n)*?  ` + r.key + `:) .*$`)
		if len(re.FindAllStringIndex(values, -1)) != 1 {
			return "", fmt.Errorf("values.yaml: no single image.%s to pin", r.key)
		}
		values = re.ReplaceAllString(values, "${1} "+fmt.Sprintf("%q", r.value))
	}
	return values, nil
}

func digestOf(ctx context.Context, ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	desc, err := remote.Head(r, append(pushAuth(), remote.WithContext(ctx))...)
	if err != nil {
		return "", fmt.Errorf("the digest of %s: %w", ref, err)
	}
	return desc.Digest.String(), nil
}

type sum struct{ name, sum string }

// writeSums writes SHA256SUMS of every file in dir, as sha256sum prints them.
func writeSums(dir string) ([]sum, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var sums []sum
	var b strings.Builder
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		h := sha256.Sum256(data)
		sums = append(sums, sum{e.Name(), hex.EncodeToString(h[:])})
	}
	sort.Slice(sums, func(i, j int) bool { return sums[i].name < sums[j].name })
	for _, s := range sums {
		fmt.Fprintf(&b, "%s  %s\n", s.sum, s.name)
	}
	return sums, os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()), 0o644)
}

// writeNotes writes RELEASE-NOTES.md (the changelog's section of the version,
// each artifact with its digest, and how to verify them) and release.json.
func writeNotes(o options, arts []artifact) error {
	changes := changelogSection(o.version)
	var b strings.Builder
	fmt.Fprintf(&b, "# tokenmint %s\n\n", o.version)
	if changes != "" {
		b.WriteString(changes + "\n\n")
	}
	b.WriteString("## Artifacts\n\n| Artifact | Reference | Digest |\n|---|---|---|\n")
	for _, a := range arts {
		fmt.Fprintf(&b, "| %s | `%s` | `%s` |\n", a.Name, a.Reference, a.Digest)
	}
	image, chart := o.registry+"/tokenmint", o.registry+"/charts/tokenmint"
	verify := "--certificate-identity-regexp '^https://github.com/tokenmint/tokenmint/' --certificate-oidc-issuer https://token.actions.githubusercontent.com"
	if o.key != "" {
		verify = "--key cosign.pub"
	}
	fmt.Fprintf(&b, "\n## Install\n\n```sh\nhelm install tokenmint oci://%s --version %s --namespace tokenmint-system --create-namespace\n```\n", chart, o.version)
	fmt.Fprintf(&b, "\n## Verify\n\n```sh\ncosign verify %s %s@%s\ncosign verify %s %s@%s\n"+
		"cosign verify-attestation --type spdxjson %s %s@%s\ncosign verify-blob %s --bundle SHA256SUMS.bundle SHA256SUMS\nsha256sum -c SHA256SUMS\n```\n",
		verify, image, arts[0].Digest, verify, chart, chartDigestOf(arts), verify, image, arts[0].Digest, verify)
	if err := os.WriteFile(filepath.Join(o.out, "RELEASE-NOTES.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	data, err := json.MarshalIndent(map[string]any{"version": o.version, "artifacts": arts}, "", "  ")
	if err != nil {
		return err
	}
	logf("release notes: %s", filepath.Join(o.out, "RELEASE-NOTES.md"))
	return os.WriteFile(filepath.Join(o.out, "release.json"), append(data, '\n'), 0o644)
}

func chartDigestOf(arts []artifact) string {
	for _, a := range arts {
		if a.Name == "chart" {
			return a.Digest
		}
	}
	return ""
}

// changelogSection returns the text under CHANGELOG.md's "## [version]"
// heading, or "" when there is none.
func changelogSection(version string) string {
	data, err := os.ReadFile("CHANGELOG.md")
	if err != nil {
		return ""
	}
	var lines []string
	in := false
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "## ") {
			if in {
				break
			}
			in = strings.HasPrefix(l, "## ["+version+"]")
			continue
		}
		if in && !strings.HasPrefix(l, "[") {
			lines = append(lines, l)
		}
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// linuxArchs returns the architectures of platforms, comma-separated linux/<arch>.
func linuxArchs(platforms string) ([]string, error) {
	var archs []string
	for _, p := range strings.Split(platforms, ",") {
		arch, ok := strings.CutPrefix(strings.TrimSpace(p), "linux/")
		if !ok || arch == "" || strings.Contains(arch, "/") {
			return nil, fmt.Errorf("-platforms: %q is not linux/<arch>: the manager's image runs on Linux", p)
		}
		archs = append(archs, arch)
	}
	return archs, nil
}

// isLoopback says whether the registry is on this machine, reached over plain HTTP.
func isLoopback(registry string) bool {
	host := strings.SplitN(registry, "/", 2)[0]
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runCmd(cmd *exec.Cmd) error {
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[release] "+format+"\n", args...)
}
