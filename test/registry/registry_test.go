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

package registry

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/node"
)

const repo = "tokenmint/busybox"

// image is a layout written the way the real-node suite writes its images,
// with its manifest, config and layer as the registry must serve them.
type image struct {
	layout         []byte
	manifest       []byte
	manifestDigest string
	config, layer  string // digests
}

func testImage(t *testing.T) image {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "hello")
	if err := os.WriteFile(file, []byte("hello from the registry\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var layout bytes.Buffer
	img := node.Image{Name: "127.0.0.1:5000/" + repo + ":1", Files: []node.File{{Path: "/hello", Mode: 0o644, Source: file}}, Cmd: []string{"sh"}}
	if err := img.WriteLayout(&layout, dir); err != nil {
		t.Fatal(err)
	}
	files := untar(t, layout.Bytes())
	var index struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	mustUnmarshal(t, files["index.json"], &index)
	im := image{layout: layout.Bytes(), manifestDigest: index.Manifests[0].Digest}
	im.manifest = files[blobPath(im.manifestDigest)]
	var m struct {
		Config struct{ Digest string }   `json:"config"`
		Layers []struct{ Digest string } `json:"layers"`
	}
	mustUnmarshal(t, im.manifest, &m)
	im.config, im.layer = m.Config.Digest, m.Layers[0].Digest
	return im
}

func untar(t *testing.T, archive []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	r := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := r.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = data
	}
}

func mustUnmarshal(t *testing.T, data []byte, into any) {
	t.Helper()
	if err := json.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
}

func blobPath(digest string) string { return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:") }

// tokens is a valid func over a fixed set.
func tokens(valid ...string) func(string) bool {
	return func(p string) bool {
		for _, v := range valid {
			if p == v {
				return true
			}
		}
		return false
	}
}

type request struct {
	method, path string
	password     string // Basic password, username x-access-token; none if empty
	header       map[string]string
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, base string, r request) answer {
	t.Helper()
	req, err := http.NewRequest(r.method, base+r.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.password != "" {
		req.SetBasicAuth("x-access-token", r.password)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

// errorCode is the first code of a distribution error body.
func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct{ Errors []struct{ Code string } }
	mustUnmarshal(t, body, &e)
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

func TestServesALayoutByTagAndDigest(t *testing.T) {
	im := testImage(t)
	reg := New(tokens("good"))
	digests, err := reg.AddLayout(repo, bytes.NewReader(im.layout))
	if err != nil {
		t.Fatal(err)
	}
	if len(digests) != 1 || digests[0] != im.manifestDigest {
		t.Fatalf("AddLayout = %v, want [%s]", digests, im.manifestDigest)
	}
	srv := Start(t, reg)
	if host := Host(srv); !strings.HasPrefix(host, "127.0.0.1:") {
		t.Fatalf("Host = %s, want 127.0.0.1:<port>", host)
	}
	base := srv.URL
	manifestAccept := map[string]string{"Accept": MediaTypeDockerManifest + ", " + MediaTypeOCIManifest}

	tests := []struct {
		name    string
		request request
		status  int
		header  map[string]string
		body    []byte // nil: not checked
		code    string // the error code, for an error
	}{
		{"version check", request{method: "GET", path: "/v2/", password: "good"}, 200,
			map[string]string{"Docker-Distribution-API-Version": "registry/2.0"}, []byte("{}"), ""},
		{"manifest by tag, HEAD", request{method: "HEAD", path: "/v2/" + repo + "/manifests/1", password: "good", header: manifestAccept}, 200,
			map[string]string{"Content-Type": MediaTypeOCIManifest, "Docker-Content-Digest": im.manifestDigest, "Content-Length": strconv.Itoa(len(im.manifest))}, []byte{}, ""},
		{"manifest by tag", request{method: "GET", path: "/v2/" + repo + "/manifests/1", password: "good", header: manifestAccept}, 200,
			map[string]string{"Content-Type": MediaTypeOCIManifest, "Docker-Content-Digest": im.manifestDigest}, im.manifest, ""},
		{"manifest by digest", request{method: "GET", path: "/v2/" + repo + "/manifests/" + im.manifestDigest, password: "good"}, 200,
			map[string]string{"Content-Type": MediaTypeOCIManifest, "Docker-Content-Digest": im.manifestDigest}, im.manifest, ""},
		{"manifest in a type the client does not accept", request{method: "GET", path: "/v2/" + repo + "/manifests/1", password: "good",
			header: map[string]string{"Accept": "application/vnd.docker.distribution.manifest.list.v2+json"}}, 404, nil, nil, "MANIFEST_UNKNOWN"},
		{"unknown tag", request{method: "GET", path: "/v2/" + repo + "/manifests/2", password: "good"}, 404, nil, nil, "MANIFEST_UNKNOWN"},
		{"unknown repository", request{method: "GET", path: "/v2/tokenmint/other/manifests/1", password: "good"}, 404, nil, nil, "NAME_UNKNOWN"},
		{"config blob", request{method: "GET", path: "/v2/" + repo + "/blobs/" + im.config, password: "good"}, 200,
			map[string]string{"Content-Type": "application/octet-stream", "Docker-Content-Digest": im.config}, nil, ""},
		{"layer blob, HEAD", request{method: "HEAD", path: "/v2/" + repo + "/blobs/" + im.layer, password: "good"}, 200,
			map[string]string{"Docker-Content-Digest": im.layer}, []byte{}, ""},
		{"layer blob, a range", request{method: "GET", path: "/v2/" + repo + "/blobs/" + im.layer, password: "good",
			header: map[string]string{"Range": "bytes=0-9"}}, 206, map[string]string{"Content-Length": "10"}, nil, ""},
		{"unknown blob", request{method: "GET", path: "/v2/" + repo + "/blobs/sha256:" + strings.Repeat("0", 64), password: "good"}, 404, nil, nil, "BLOB_UNKNOWN"},
		{"push", request{method: "PUT", path: "/v2/" + repo + "/manifests/2", password: "good"}, 405, nil, nil, "UNSUPPORTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, base, tt.request)
			if got.status != tt.status {
				t.Fatalf("status %d, want %d: %s", got.status, tt.status, got.body)
			}
			for k, v := range tt.header {
				if got.header.Get(k) != v {
					t.Errorf("%s: %q, want %q", k, got.header.Get(k), v)
				}
			}
			if tt.body != nil && !bytes.Equal(got.body, tt.body) {
				t.Errorf("body %q, want %q", got.body, tt.body)
			}
			if tt.code != "" {
				if code := errorCode(t, got.body); code != tt.code {
					t.Errorf("error code %s, want %s", code, tt.code)
				}
			}
		})
	}

	t.Run("blobs hold what their digests say", func(t *testing.T) {
		for _, d := range []string{im.config, im.layer} {
			if got := digestOf(do(t, base, request{method: "GET", path: "/v2/" + repo + "/blobs/" + d, password: "good"}).body); got != d {
				t.Errorf("blob %s has digest %s", d, got)
			}
		}
	})
}

func TestAsksForCredentialsAndRecordsEachAttempt(t *testing.T) {
	reg := New(tokens("good"))
	srv := Start(t, reg)
	path := "/v2/" + repo + "/manifests/1"
	for _, r := range []request{
		{method: "GET", path: "/v2/"},
		{method: "GET", path: path, password: "bad"},
		{method: "HEAD", path: path, header: map[string]string{"Authorization": "Bearer good"}},
	} {
		got := do(t, srv.URL, r)
		if got.status != http.StatusUnauthorized {
			t.Errorf("%s %s: status %d, want 401", r.method, r.path, got.status)
		}
		if want := `Basic realm="` + Realm + `"`; got.header.Get("WWW-Authenticate") != want {
			t.Errorf("%s %s: WWW-Authenticate %q, want %q", r.method, r.path, got.header.Get("WWW-Authenticate"), want)
		}
		if r.method == "GET" && errorCode(t, got.body) != "UNAUTHORIZED" {
			t.Errorf("%s %s: body %s, want the UNAUTHORIZED error", r.method, r.path, got.body)
		}
	}
	if got := do(t, srv.URL, request{method: "GET", path: "/v2/", password: "good"}); got.status != http.StatusOK {
		t.Fatalf("with a valid token: status %d, want 200", got.status)
	}

	attempts := reg.Attempts()
	want := []Attempt{
		{Method: "GET", Path: "/v2/"},
		{Method: "GET", Path: path, Credentials: true, Username: "x-access-token", Password: "bad"},
		{Method: "HEAD", Path: path, Credentials: true},
		{Method: "GET", Path: "/v2/", Credentials: true, Username: "x-access-token", Password: "good", Accepted: true},
	}
	if len(attempts) != len(want) {
		t.Fatalf("%d attempts recorded, want %d: %+v", len(attempts), len(want), attempts)
	}
	for i := range want {
		if attempts[i].At.IsZero() {
			t.Errorf("attempt %d has no time", i)
		}
		attempts[i].At = time.Time{}
		if attempts[i] != want[i] {
			t.Errorf("attempt %d = %+v, want %+v", i, attempts[i], want[i])
		}
	}
}

// A registry with a fixed username, as Amazon ECR's (AWS), takes the token
// with that username only.
func TestNewBasicChecksTheUsername(t *testing.T) {
	reg := NewBasic(func(username, password string) bool { return username == "AWS" && password == "good" })
	srv := Start(t, reg)
	for _, tc := range []struct {
		username, password string
		status             int
	}{
		{"AWS", "good", http.StatusOK},
		{"x-access-token", "good", http.StatusUnauthorized},
		{"AWS", "bad", http.StatusUnauthorized},
		{"", "good", http.StatusUnauthorized},
	} {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/v2/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(tc.username, tc.password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s:%s: status %d, want %d", tc.username, tc.password, resp.StatusCode, tc.status)
		}
	}
	attempts := reg.Attempts()
	if len(attempts) != 4 || !attempts[0].Accepted || attempts[1].Accepted || attempts[1].Username != "x-access-token" {
		t.Errorf("attempts %+v, want the first accepted and the others refused", attempts)
	}
}

// The token provider decides: a token it revoked, or one that expired, pulls nothing.
func TestRefusesARevokedOrExpiredToken(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	provider := fakes.NewOAuth2Server("client", "secret")
	provider.Clock = clock
	provider.Lifetime = time.Hour
	tokenURL := fakes.Start(t, provider).URL
	reg := New(provider.Valid)
	srv := Start(t, reg)

	issue := func() string {
		t.Helper()
		resp, err := http.PostForm(strings.Replace(tokenURL, "://", "://client:secret@", 1)+fakes.OAuth2TokenPath,
			url.Values{"grant_type": {"client_credentials"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
			t.Fatalf("no token issued (status %d): %v", resp.StatusCode, err)
		}
		return body.AccessToken
	}
	status := func(token string) int {
		t.Helper()
		return do(t, srv.URL, request{method: "GET", path: "/v2/", password: token}).status
	}

	old, current := issue(), issue()
	if status(old) != http.StatusOK || status(current) != http.StatusOK {
		t.Fatal("a valid token was refused")
	}
	resp, err := http.PostForm(strings.Replace(tokenURL, "://", "://client:secret@", 1)+fakes.OAuth2RevokePath, url.Values{"token": {old}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := status(old); got != http.StatusUnauthorized {
		t.Errorf("revoked token: status %d, want 401", got)
	}
	if got := status(current); got != http.StatusOK {
		t.Errorf("the token that replaced it: status %d, want 200", got)
	}
	clock.SetTime(clock.Now().Add(time.Hour))
	if got := status(current); got != http.StatusUnauthorized {
		t.Errorf("expired token: status %d, want 401", got)
	}

	var refused []string
	for _, a := range reg.Attempts() {
		if !a.Accepted {
			refused = append(refused, a.Password)
		}
	}
	if want := []string{old, current}; strings.Join(refused, ",") != strings.Join(want, ",") {
		t.Errorf("refused attempts carried %v, want %v", refused, want)
	}
}

func TestAddLayoutChecksWhatItServes(t *testing.T) {
	im := testImage(t)
	files := untar(t, im.layout)
	rewrite := func(change func(map[string][]byte)) []byte {
		copied := map[string][]byte{}
		for k, v := range files {
			copied[k] = v
		}
		change(copied)
		var buf bytes.Buffer
		w := tar.NewWriter(&buf)
		for name, data := range copied {
			if err := w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644}); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	tests := []struct {
		name       string
		repository string
		layout     []byte
		want       string
	}{
		{"a repository name with capitals", "Tokenmint/busybox", im.layout, "not a repository name"},
		{"no index", repo, rewrite(func(f map[string][]byte) { delete(f, "index.json") }), "no index.json"},
		{"a blob that is not what its name says", repo, rewrite(func(f map[string][]byte) { f[blobPath(im.layer)] = []byte("tampered") }), "has digest"},
		{"a manifest missing", repo, rewrite(func(f map[string][]byte) { delete(f, blobPath(im.manifestDigest)) }), "does not hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tokens()).AddLayout(tt.repository, bytes.NewReader(tt.layout))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("AddLayout: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
