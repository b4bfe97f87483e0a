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

package release

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tokenmint/tokenmint/hack/image/managerimage"
)

// The previous release, which upgrades start from. No release is tagged yet:
// it is the last commit whose chart was 0.2.0 (appVersion 0.1.0), the chart
// users installed from the repository before releases were published. Once a
// release is tagged, its tag's commit and version go here.
const (
	PreviousCommit  = "b2a3f91909d96cd1334a1c3af23404162d737a9d"
	PreviousVersion = "0.2.0"
)

// Previous is a source tree of an earlier commit, ready to be released.
type Previous struct {
	Commit  string
	Version string
	// Source is the commit's tree (git archive), cached outside the
	// repository by commit.
	Source string
	// Args are the flags of hack/release that release Source: its manager
	// for linux/<this machine's arch>, built once and cached beside it, no
	// plugin, the SBOM dated at the commit.
	Args []string
}

// PreparePrevious returns commit's tree and its manager binary, stamped
// version, from ${TOKENMINT_CACHE:-~/.cache/tokenmint}/release-<commit>,
// making them the first time (a Go build of that tree, a minute or so).
func PreparePrevious(tb testing.TB, commit, version string, progress io.Writer) *Previous {
	tb.Helper()
	p, err := Prepare(commit, version, progress)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// Prepare is PreparePrevious outside a test: `make previous-release` runs it
// before go test's timeout starts.
func Prepare(commit, version string, progress io.Writer) (*Previous, error) {
	cache, err := cacheDir()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cache, "release-"+commit)
	p := &Previous{Commit: commit, Version: version, Source: filepath.Join(dir, "src")}
	created, err := exec.Command("git", "-C", repoRoot(), "log", "-1", "--format=%cI", commit).Output()
	if err != nil {
		return nil, fmt.Errorf("commit %s of the previous release is not in this clone (fetch its history): %w", commit, err)
	}
	if err := ensure(p.Source, func(tmp string) error {
		fmt.Fprintf(progress, "[release] extracting commit %s, the previous release, into %s (first time only)\n", commit, p.Source)
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return err
		}
		archive := exec.Command("git", "-C", repoRoot(), "archive", "--format=tar", commit)
		extract := exec.Command("tar", "-x", "-C", tmp)
		pipe, err := archive.StdoutPipe()
		if err != nil {
			return err
		}
		extract.Stdin = pipe
		if err := archive.Start(); err != nil {
			return err
		}
		if out, err := extract.CombinedOutput(); err != nil {
			return fmt.Errorf("extracting commit %s: %w: %s", commit, err, out)
		}
		return archive.Wait()
	}); err != nil {
		return nil, err
	}
	arch := runtime.GOARCH
	bin := filepath.Join(dir, "bin-"+version)
	if err := ensure(filepath.Join(bin, "manager-linux-"+arch), func(tmp string) error {
		fmt.Fprintf(progress, "[release] building the manager %s of commit %s for linux/%s (first time only)\n", version, commit, arch)
		return managerimage.BuildBinary(context.Background(), p.Source, tmp,
			managerimage.Options{Arch: arch, Version: version}, progress)
	}); err != nil {
		return nil, err
	}
	p.Args = []string{"-source", p.Source, "-manager-dir", bin, "-platforms", "linux/" + arch,
		"-plugin-platforms", "none", "-created", strings.TrimSpace(string(created))}
	return p, nil
}

// ensure makes path with make (into a temporary name, then renamed) unless
// it exists: two test runs at once may both make it, and either wins.
func ensure(path string, make func(tmp string) error) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "out")
	if err := make(out); err != nil {
		return err
	}
	if err := os.Rename(out, path); err != nil {
		if _, statErr := os.Stat(path); statErr == nil {
			return nil // another run made it first
		}
		return err
	}
	return nil
}

// cacheDir is where tools and builds are cached outside the repository, as
// hack/controlplane/build.sh and hack/cosign/build.sh cache them.
func cacheDir() (string, error) {
	if dir := os.Getenv("TOKENMINT_CACHE"); dir != "" {
		return dir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "tokenmint"), nil
}
