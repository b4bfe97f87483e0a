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

// Package registry is an OCI distribution registry for tests, pull only. It
// serves the images of OCI image layouts through the endpoints a container
// runtime pulls with (GET /v2/, manifests by tag or by digest, blobs), over
// plain HTTP on loopback, and asks every request for HTTP Basic credentials
// whose password a token provider's fake vouches for: an image pull Secret
// holding a revoked or expired token pulls nothing. Every attempt is recorded,
// so that a test can tell which token a pull used.
package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Realm is the realm of the registry's Basic challenge.
const Realm = "tokenmint test registry"

// Media types of image manifests the registry serves.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
)

// Attempt is one request and what the registry made of its credentials.
type Attempt struct {
	At     time.Time
	Method string
	Path   string
	// Credentials is false for a request without an Authorization header: a
	// client's first try, answered with the challenge.
	Credentials bool
	// Username and Password are the request's Basic credentials, if any.
	Username string
	Password string
	// Accepted is true when the password was a valid token.
	Accepted bool
}

// Registry serves images to clients whose password is a valid token.
type Registry struct {
	valid func(username, password string) bool

	mu       sync.Mutex
	repos    map[string]*repository
	attempts []Attempt
}

type repository struct {
	tags      map[string]string // tag to manifest digest
	manifests map[string]manifest
	blobs     map[string][]byte
}

type manifest struct {
	mediaType string
	data      []byte
}

// New returns an empty registry that accepts a request when valid says its
// Basic password is a valid token (a fake's Base.Valid), whatever the username.
func New(valid func(password string) bool) *Registry {
	return NewBasic(func(_, password string) bool { return valid(password) })
}

// NewBasic returns an empty registry that accepts a request when valid says
// its Basic username and password are: for a registry, such as Amazon ECR's,
// that takes one fixed username beside the token.
func NewBasic(valid func(username, password string) bool) *Registry {
	return &Registry{valid: valid, repos: map[string]*repository{}}
}

// Attempts returns every request so far, oldest first.
func (r *Registry) Attempts() []Attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Attempt(nil), r.attempts...)
}

// repositoryName is the distribution specification's grammar of repository names.
var repositoryName = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)

// tagName is the specification's grammar of tags.
var tagName = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// AddManifest serves manifest, of mediaType, under repository by its digest
// and, when tag is not empty, by tag; it returns the digest. The blobs it
// names are added with AddBlob.
func (r *Registry) AddManifest(repository, tag, mediaType string, data []byte) (string, error) {
	if tag != "" && !tagName.MatchString(tag) {
		return "", fmt.Errorf("%q is not a tag", tag)
	}
	repo, err := r.repository(repository)
	if err != nil {
		return "", err
	}
	digest := digestOf(data)
	r.mu.Lock()
	defer r.mu.Unlock()
	repo.manifests[digest] = manifest{mediaType: mediaType, data: bytes.Clone(data)}
	if tag != "" {
		repo.tags[tag] = digest
	}
	return digest, nil
}

// AddBlob serves data under repository by its digest, which it returns.
func (r *Registry) AddBlob(repository string, data []byte) (string, error) {
	repo, err := r.repository(repository)
	if err != nil {
		return "", err
	}
	digest := digestOf(data)
	r.mu.Lock()
	defer r.mu.Unlock()
	repo.blobs[digest] = bytes.Clone(data)
	return digest, nil
}

func (r *Registry) repository(name string) (*repository, error) {
	if !repositoryName.MatchString(name) {
		return nil, fmt.Errorf("%q is not a repository name", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	repo := r.repos[name]
	if repo == nil {
		repo = &repository{tags: map[string]string{}, manifests: map[string]manifest{}, blobs: map[string][]byte{}}
		r.repos[name] = repo
	}
	return repo, nil
}

func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "this registry only serves pulls")
		return
	}
	if !r.authorize(req) {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`"`)
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	}
	if req.URL.Path == "/v2/" || req.URL.Path == "/v2" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
		return
	}
	name, kind, ref, ok := route(req.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, "NAME_UNKNOWN", "no such endpoint")
		return
	}
	r.mu.Lock()
	repo := r.repos[name]
	r.mu.Unlock()
	if repo == nil {
		writeError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
		return
	}
	if kind == "manifests" {
		r.serveManifest(w, req, repo, ref)
	} else {
		r.serveBlob(w, req, repo, ref)
	}
}

// authorize records the request's credentials and reports whether they are
// valid.
func (r *Registry) authorize(req *http.Request) bool {
	a := Attempt{At: time.Now(), Method: req.Method, Path: req.URL.Path, Credentials: req.Header.Get("Authorization") != ""}
	var basic bool
	a.Username, a.Password, basic = req.BasicAuth()
	a.Accepted = basic && a.Password != "" && r.valid(a.Username, a.Password)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts = append(r.attempts, a)
	return a.Accepted
}

// route splits /v2/<name>/manifests/<reference> and /v2/<name>/blobs/<digest>.
func route(path string) (name, kind, ref string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return "", "", "", false
	}
	for _, kind := range []string{"manifests", "blobs"} {
		if i := strings.LastIndex(rest, "/"+kind+"/"); i > 0 {
			name, ref = rest[:i], rest[i+len(kind)+2:]
			return name, kind, ref, ref != "" && !strings.Contains(ref, "/")
		}
	}
	return "", "", "", false
}

func (r *Registry) serveManifest(w http.ResponseWriter, req *http.Request, repo *repository, ref string) {
	r.mu.Lock()
	digest := ref
	if !strings.Contains(ref, ":") {
		digest = repo.tags[ref]
	}
	m, found := repo.manifests[digest]
	r.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown to registry")
		return
	}
	if !accepts(req, m.mediaType) {
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "the manifest is "+m.mediaType+", which the request does not accept")
		return
	}
	w.Header().Set("Content-Type", m.mediaType)
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", fmt.Sprint(len(m.data)))
	if req.Method == http.MethodGet {
		_, _ = w.Write(m.data)
	}
}

func (r *Registry) serveBlob(w http.ResponseWriter, req *http.Request, repo *repository, digest string) {
	r.mu.Lock()
	data, found := repo.blobs[digest]
	r.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Docker-Content-Digest", digest)
	// Range requests, which resume a download, and HEAD.
	http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(data))
}

// accepts reports whether the request's Accept header, if any, takes mediaType.
func accepts(req *http.Request, mediaType string) bool {
	values := req.Header.Values("Accept")
	if len(values) == 0 {
		return true
	}
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			accepted, _, err := mime.ParseMediaType(strings.TrimSpace(item))
			if err == nil && (accepted == mediaType || accepted == "*/*" || accepted == "application/*") {
				return true
			}
		}
	}
	return false
}

// writeError writes the specification's error body.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": message}}})
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Start serves r over plain HTTP on 127.0.0.1 (never another interface) until
// the test ends. Images are named <Host(server)>/<repository>:<tag>.
func Start(t testing.TB, r *Registry) *httptest.Server {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening on 127.0.0.1: %v", err)
	}
	srv := httptest.NewUnstartedServer(r)
	_ = srv.Listener.Close()
	srv.Listener = listener
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// Host is the registry's host:port, as image references and
// .dockerconfigjson name it.
func Host(srv *httptest.Server) string {
	return srv.Listener.Addr().String()
}
