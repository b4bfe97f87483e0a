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

// Package release makes tokenmint releases in tests as users get them: `make
// release` to an OCI registry on 127.0.0.1 that accepts pushes
// (go-containerregistry's pkg/registry, over plain HTTP), signed with a
// throwaway cosign key, and the artifacts its release notes name, each with
// its digest. Previous releases, built from a fixed earlier commit of the
// repository, are made with the same command (see Previous).
package release

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// PasswordCanary is the password of the throwaway cosign key: no output of a
// release may show it.
const PasswordCanary = "canary-cosign-password-7d1f"

// Registry is an OCI registry on 127.0.0.1 that accepts pushes and records
// every request, so that a test can tell what was pulled from it.
type Registry struct {
	// Host is 127.0.0.1:<port>.
	Host string

	mu       sync.Mutex
	requests []Request
}

// Request is one request the registry served.
type Request struct {
	Method string
	Path   string
}

// StartRegistry starts a registry, closed when the test ends.
func StartRegistry(tb testing.TB) *Registry {
	tb.Helper()
	r := &Registry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, Request{Method: req.Method, Path: req.URL.Path})
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	}))
	tb.Cleanup(s.Close)
	r.Host = strings.TrimPrefix(s.URL, "http://")
	return r
}

// Requests returns every request served so far.
func (r *Registry) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// Options of a release.
type Options struct {
	// Version is the release's version, x.y.z.
	Version string
	// Registry is where it goes, host:port/path.
	Registry string
	// Args are more flags of hack/release (RELEASE_ARGS), such as
	// -platforms linux/amd64 -plugin-platforms none.
	Args []string
	// Tools holds the key and the tools' configuration; empty means a new
	// one (NewTools).
	Tools *Tools
}

// Tools are cosign and helm, with a throwaway key pair, configured and
// caching in a directory of the test rather than $HOME.
type Tools struct {
	Dir    string
	Cosign string
	Helm   string
	Key    string // cosign.key, its password PasswordCanary
	Pub    string // cosign.pub
	// Env is the environment to run cosign and helm with.
	Env []string
}

// NewTools builds cosign (once, cached outside the repository) and makes a
// key pair.
func NewTools(tb testing.TB) *Tools {
	tb.Helper()
	dir := tb.TempDir()
	helm := os.Getenv("HELM")
	if helm == "" {
		helm = filepath.Join(repoRoot(), "bin", "helm")
	}
	if _, err := os.Stat(helm); err != nil {
		tb.Fatalf("helm is missing: run `make helm` (make test does) or set $HELM: %v", err)
	}
	out, err := exec.Command(filepath.Join(repoRoot(), "hack", "cosign", "build.sh")).Output()
	if err != nil {
		tb.Fatalf("hack/cosign/build.sh: %v", err)
	}
	t := &Tools{
		Dir:    dir,
		Cosign: strings.TrimSpace(string(out)),
		Helm:   helm,
		Key:    filepath.Join(dir, "cosign.key"),
		Pub:    filepath.Join(dir, "cosign.pub"),
		Env: append(os.Environ(), "COSIGN_PASSWORD="+PasswordCanary, "DOCKER_CONFIG="+dir,
			"HELM_CACHE_HOME="+filepath.Join(dir, "helm", "cache"), "HELM_CONFIG_HOME="+filepath.Join(dir, "helm", "config"),
			"HELM_DATA_HOME="+filepath.Join(dir, "helm", "data"), "TUF_ROOT="+filepath.Join(dir, "tuf"), "SIGSTORE_NO_CACHE=true"),
	}
	if out, err := t.Command(dir, t.Cosign, "generate-key-pair").CombinedOutput(); err != nil {
		tb.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	return t
}

// Command is a command run in dir with the tools' environment.
func (t *Tools) Command(dir, prog string, args ...string) *exec.Cmd {
	c := exec.Command(prog, args...)
	c.Dir, c.Env = dir, t.Env
	return c
}

// Release is a release made by Make.
type Release struct {
	Version  string
	Registry string
	// Out holds the release's files (RELEASE_OUT).
	Out   string
	Tools *Tools
	// Notes are the artifacts RELEASE-NOTES.md names, by name, or by file
	// name for files.
	Notes map[string]Artifact
	// Logs is what make release printed.
	Logs string
	// Took is how long make release took.
	Took time.Duration
}

// Artifact is one row of the release notes.
type Artifact struct {
	Name      string
	Reference string
	Digest    string
}

// Make runs `make release` in the repository's root, signing with the
// tools' key, and reads the release notes. It fails the test when the release
// fails or its output shows the key's password.
func Make(tb testing.TB, o Options) *Release {
	tb.Helper()
	if o.Tools == nil {
		o.Tools = NewTools(tb)
	}
	r := &Release{Version: o.Version, Registry: o.Registry, Out: filepath.Join(tb.TempDir(), "out"), Tools: o.Tools}
	start := time.Now()
	cmd := o.Tools.Command(repoRoot(), "make", "--no-print-directory", "release",
		"VERSION="+o.Version, "REGISTRY="+o.Registry, "COSIGN_KEY="+o.Tools.Key, "RELEASE_OUT="+r.Out,
		"RELEASE_ARGS="+strings.Join(o.Args, " "))
	out, err := cmd.CombinedOutput()
	r.Took, r.Logs = time.Since(start), string(out)
	if err != nil {
		tb.Fatalf("make release VERSION=%s: %v\n%s", o.Version, err, out)
	}
	if strings.Contains(r.Logs, PasswordCanary) {
		tb.Fatal("the release's output shows the key's password")
	}
	r.Notes, err = ReadNotes(filepath.Join(r.Out, "RELEASE-NOTES.md"))
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// ImageRef is the image's reference by digest, as the chart pins it:
// <registry>/tokenmint@sha256:....
func (r *Release) ImageRef() string {
	return r.Registry + "/tokenmint@" + r.Notes["image"].Digest
}

// Chart is the chart's OCI repository, oci://<registry>/charts/tokenmint,
// which helm installs with --version r.Version.
func (r *Release) Chart() string {
	return "oci://" + r.Registry + "/charts/tokenmint"
}

// repoRoot is the repository's root, from this file's path. (Not
// test/controlplane's: it would add envtest's flags to the commands that use
// this package.)
func repoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("release: cannot locate source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var noteRow = regexp.MustCompile("^\\| (.+) \\| `([^`]+)` \\| `(sha256:[0-9a-f]{64})` \\|$")

// ReadNotes returns the artifacts the release notes in file name: by name,
// or by file name for files.
func ReadNotes(file string) (map[string]Artifact, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	notes := map[string]Artifact{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		m := noteRow.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		a := Artifact{Name: m[1], Reference: m[2], Digest: m[3]}
		key := a.Name
		if key == "file" {
			key = a.Reference
		}
		notes[key] = a
	}
	if _, ok := notes["image"]; !ok {
		return nil, fmt.Errorf("%s names no image:\n%s", file, data)
	}
	return notes, nil
}
